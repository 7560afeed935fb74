package shimapi

import (
	"path/filepath"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
)

// A task is created in stages: its id reserved, the shim options applied, the rootfs mounted
// and the stdio opened, the init launched (created, or restored from a checkpoint), and the
// container registered where other calls find it. A failed stage undoes the ones before it.

// reserve takes id at once, so that a second Create of it fails; other calls find the
// container only once it is registered. It comes with its operation lock held; release drops
// it again if the create fails.
func (s *Service) reserve(id, bundle string) (c *container, release func(), err error) {
	c = &container{id: id, bundle: bundle, execs: map[string]*process{}, ioUID: -1, ioGID: -1}
	c.op.Lock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.containers[id]; ok {
		c.op.Unlock()
		return nil, nil, status.Errorf(codes.AlreadyExists, "container %s already exists", id)
	}
	s.containers[id] = c
	return c, func() {
		s.mu.Lock()
		c.gone = true
		delete(s.containers, id)
		s.mu.Unlock()
	}, nil
}

// configure applies the shim options (runc's, or husk's from a ConfigPath file) to c.
func (s *Service) configure(c *container, opts *options.Options) error {
	if opts != nil && opts.ShimCgroup != "" {
		if err := joinCgroup(opts.ShimCgroup); err != nil {
			return err
		}
	}
	c.rt = s.runtimeFor(c.bundle, opts)
	if opts == nil {
		return nil
	}
	c.criuWork, c.criuImage = opts.CriuWorkPath, opts.CriuImagePath
	if opts.IoUid != 0 || opts.IoGid != 0 {
		c.ioUID, c.ioGID = int(opts.IoUid), int(opts.IoGid)
	}
	return nil
}

// prepare mounts the rootfs and opens the init's stdio; undo reverses both.
func (s *Service) prepare(c *container, r *taskapi.CreateTaskRequest) (p *process, undo func(), err error) {
	rootfs := filepath.Join(r.Bundle, "rootfs")
	if err := mountAll(r.Rootfs, rootfs, s.reaper); err != nil {
		return nil, nil, err
	}
	c.mounted = len(r.Rootfs) > 0
	unmount := func() {
		if c.mounted {
			unmountAll(rootfs)
		}
	}
	p = newProcess(r.ID, "", r.Stdin, r.Stdout, r.Stderr, r.Terminal)
	pio, err := newProcIO(s.reaper, r.Stdin, r.Stdout, r.Stderr, r.Terminal, s.ns, r.ID)
	if err == nil {
		if err = pio.chown(c.ioUID, c.ioGID); err != nil {
			pio.Close()
		}
	}
	if err != nil {
		unmount()
		return nil, nil, err
	}
	p.io = pio
	return p, func() { pio.Close(); unmount() }, nil
}

// launch creates the init (or restores it from r.Checkpoint: running already, so Start has
// nothing to start; containerd's runc shim defers the restore to Start, with the same result)
// and hands its stdio over.
func (s *Service) launch(c *container, p *process, r *taskapi.CreateTaskRequest, opts *options.Options) (int, error) {
	a := createArgs{
		id: r.ID, bundle: r.Bundle, pidFile: filepath.Join(r.Bundle, "init.pid"), consoleSocket: p.io.consoleSocket(),
		stdio: p.io.runtimeStdio(), noPivot: opts != nil && opts.NoPivotRoot, noNewKeyring: opts != nil && opts.NoNewKeyring,
	}
	var pid int
	var err error
	if r.Checkpoint != "" {
		pid, err = c.rt.restore(restoreArgs{createArgs: a, image: r.Checkpoint, work: c.criuWork, parent: r.ParentCheckpoint})
	} else {
		pid, err = c.rt.create(a)
	}
	if err != nil {
		return 0, err
	}
	if err := p.io.started(s.consoleEpoller); err != nil {
		c.rt.forceDelete(r.ID)
		return 0, err
	}
	return pid, nil
}

// register makes the created container visible to the other calls, with its exit tracked
// from started on and its OOM kills watched, and publishes its creation.
func (s *Service) register(c *container, p *process, pid int, started time.Time, r *taskapi.CreateTaskRequest) {
	// The container's cgroup, found once through its init: stats and OOM counts read it until
	// the task is deleted, after the init is gone too (containerd asks for stats on an exit
	// with 137, to tell an OOM kill it has not seen yet).
	cg, _ := cgroups.Of(pid)
	if cg != nil && cg.Paths().Check() != nil {
		cg = nil // not a container's own cgroup (the root of a hierarchy): never acted on
	}
	oom := newOOMWatch(cg)
	killAll := sharesPidNamespace(r.Bundle)
	s.mu.Lock()
	defer s.mu.Unlock()
	p.pid = pid
	c.cg, c.killAllOnExit = cg, killAll
	c.restored = r.Checkpoint != ""
	c.init = p
	c.oom = oom
	s.watchOOM(c)
	s.track(p, started)
	s.events.publish(topicCreate, &eventstypes.TaskCreate{
		ContainerID: r.ID, Bundle: r.Bundle, Rootfs: r.Rootfs, Checkpoint: r.Checkpoint, Pid: uint32(pid),
		IO: &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
	})
}
