package shimapi

import (
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
)

// container is one task of the shim (a shim serves a whole pod group).
//
// Locking: s.mu guards the maps and every process's fields, and is only held for bookkeeping,
// never across a runtime command. op serialises the runtime operations on one container
// (create, start, delete, pause, resume, update, checkpoint), so that a slow command on one
// container never holds up another of the pod: the lock order is op, then s.mu. Exec starts
// share op (read): one slow exec start (a runtime waiting on something) must not hold up the
// container's other execs, as it does not in the runc shim (containerd's TestIssue10589).
type container struct {
	op       sync.RWMutex
	gone     bool // deleted, or its create failed; guarded by s.mu
	id       string
	bundle   string
	rt       containerRuntime
	init     *process
	execs    map[string]*process
	mounted  bool
	initExit *exit // the init's exit, held while execs still run
	ioUID    int   // IoUid/IoGid options: the owner of the stdio of its processes (-1: unchanged)
	ioGID    int
	oom      *oomWatch
	cg       *cgroups.Manager // the init's cgroup as created, nil if it has none
	// killAllOnExit: no pid namespace of its own (none, or a joined one), so the init's exit
	// leaves its other processes running; they are killed with it, as the runc shim does.
	killAllOnExit bool
	// criuWork and criuImage are the CriuWorkPath and CriuImagePath options: where CRIU works,
	// and where a checkpoint goes when the request names no path.
	criuWork, criuImage string
	restored            bool // created from a checkpoint: running already, Start starts nothing
}

func errNotFound(format string, a ...any) error {
	return status.Errorf(codes.NotFound, format, a...)
}

func errState(format string, a ...any) error {
	return status.Errorf(codes.FailedPrecondition, format, a...)
}

func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unknown, err.Error())
}

// get returns a created container; the caller holds s.mu. One still being created is not
// found yet, as with containerd's runc shim.
func (s *Service) get(id string) (*container, error) {
	c, ok := s.containers[id]
	if !ok || c.init == nil || c.gone {
		return nil, errNotFound("container %s not found", id)
	}
	return c, nil
}

// lock takes container id's operation lock; unlock with c.op.Unlock. A container deleted
// while the caller waited is not found.
func (s *Service) lock(id string) (*container, error) { return s.lockOp(id, false) }

// lockShared is lock for exec starts: op taken shared; unlock with c.op.RUnlock.
func (s *Service) lockShared(id string) (*container, error) { return s.lockOp(id, true) }

func (s *Service) lockOp(id string, shared bool) (*container, error) {
	s.mu.Lock()
	c, err := s.get(id)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	lock, unlock := c.op.Lock, c.op.Unlock
	if shared {
		lock, unlock = c.op.RLock, c.op.RUnlock
	}
	lock()
	s.mu.Lock()
	gone := c.gone
	s.mu.Unlock()
	if gone {
		unlock()
		return nil, errNotFound("container %s not found", id)
	}
	return c, nil
}

func (s *Service) getProcess(id, execID string) (*container, *process, error) {
	c, err := s.get(id)
	if err != nil {
		return nil, nil, err
	}
	if execID == "" {
		return c, c.init, nil
	}
	p, ok := c.execs[execID]
	if !ok {
		return nil, nil, errNotFound("exec %s of container %s not found", execID, id)
	}
	return c, p, nil
}

func displayID(p *process) string {
	if p.execID == "" {
		return "init"
	}
	return p.execID
}
