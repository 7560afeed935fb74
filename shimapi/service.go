// Package shimapi is husk's containerd shim v2 as a library: the Task service, process
// bookkeeping, stdio, the reaper, event publishing and the start/delete actions.
package shimapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/console"
	eventstypes "github.com/containerd/containerd/api/events"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	apitypes "github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/specs"
)

// DefaultRuntime is the OCI runtime the shim drives unless BinaryName says otherwise.
const DefaultRuntime = "husk"

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

// Service implements containerd's Task API (v2) for the containers of one shim.
type Service struct {
	mu         sync.Mutex
	ns         string
	containers map[string]*container
	byPid      map[int]*process
	held       map[int]exit
	reaper     *reaper
	events     *publisher
	shutdown   func()
	idle       *idleTrimmer // nil: never trims (tests, the delete action)
	epollOnce  sync.Once
	epoller    *console.Epoller
	epollErr   error
}

var empty = &emptypb.Empty{}

// NewService makes the Task service; shutdown is called when containerd shuts an empty shim down.
func NewService(ns, eventsAddress string, shutdown func()) *Service {
	s := &Service{
		ns: ns, containers: map[string]*container{}, byPid: map[int]*process{}, held: map[int]exit{},
		reaper: newReaper(), events: newPublisher(eventsAddress, ns), shutdown: shutdown,
	}
	go s.exitLoop()
	return s
}

// consoleEpoller is the one epoller that copies every terminal of this shim, made on first use.
func (s *Service) consoleEpoller() (*console.Epoller, error) {
	s.epollOnce.Do(func() {
		s.epoller, s.epollErr = console.NewEpoller()
		if s.epollErr == nil {
			go s.epoller.Wait()
		}
	})
	return s.epoller, s.epollErr
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

// Create mounts the rootfs, sets up stdio and runs `runtime create`.
func (s *Service) Create(ctx context.Context, r *taskapi.CreateTaskRequest) (_ *taskapi.CreateTaskResponse, retErr error) {
	// The id is taken at once, so that a second Create of it fails; the container is found by
	// other calls only once created.
	c := &container{id: r.ID, bundle: r.Bundle, execs: map[string]*process{}}
	c.op.Lock()
	defer c.op.Unlock()
	s.mu.Lock()
	if _, ok := s.containers[r.ID]; ok {
		s.mu.Unlock()
		return nil, status.Errorf(codes.AlreadyExists, "container %s already exists", r.ID)
	}
	s.containers[r.ID] = c
	s.mu.Unlock()
	defer func() {
		if retErr != nil {
			s.mu.Lock()
			c.gone = true
			delete(s.containers, r.ID)
			s.mu.Unlock()
		}
	}()
	opts, err := parseOptions(r.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	if opts != nil && opts.ShimCgroup != "" {
		if err := joinCgroup(opts.ShimCgroup); err != nil {
			return nil, toStatus(err)
		}
	}
	c.rt = s.runtimeFor(r.Bundle, opts)
	if opts != nil {
		c.criuWork, c.criuImage = opts.CriuWorkPath, opts.CriuImagePath
	}
	rootfs := filepath.Join(r.Bundle, "rootfs")
	if err := mountAll(r.Rootfs, rootfs, s.reaper); err != nil {
		return nil, toStatus(err)
	}
	c.mounted = len(r.Rootfs) > 0
	defer func() {
		if retErr != nil && c.mounted {
			unmountAll(rootfs)
		}
	}()
	p := newProcess(r.ID, "", r.Stdin, r.Stdout, r.Stderr, r.Terminal)
	pio, err := newProcIO(s.reaper, r.Stdin, r.Stdout, r.Stderr, r.Terminal, s.ns, r.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	c.ioUID, c.ioGID = -1, -1
	if opts != nil && (opts.IoUid != 0 || opts.IoGid != 0) {
		c.ioUID, c.ioGID = int(opts.IoUid), int(opts.IoGid)
	}
	if err := pio.chown(c.ioUID, c.ioGID); err != nil {
		pio.Close()
		return nil, toStatus(err)
	}
	p.io = pio
	a := createArgs{
		id: r.ID, bundle: r.Bundle, pidFile: filepath.Join(r.Bundle, "init.pid"), consoleSocket: pio.consoleSocket(),
		stdio: pio.runtimeStdio(), noPivot: opts != nil && opts.NoPivotRoot, noNewKeyring: opts != nil && opts.NoNewKeyring,
	}
	started := time.Now()
	var pid int
	if r.Checkpoint != "" {
		// A task created from a checkpoint is restored here, running: Start has nothing to
		// start (containerd's runc shim defers the restore to Start; the result is the same).
		pid, err = c.rt.restore(restoreArgs{createArgs: a, image: r.Checkpoint, work: c.criuWork, parent: r.ParentCheckpoint})
	} else {
		pid, err = c.rt.create(a)
	}
	if err == nil {
		if err = pio.started(s.consoleEpoller); err != nil {
			c.rt.forceDelete(r.ID)
		}
	}
	if err != nil {
		pio.Close()
		return nil, toStatus(err)
	}
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
	return &taskapi.CreateTaskResponse{Pid: uint32(pid)}, nil
}

// Start starts the init (`runtime start`) or an exec (`runtime exec --detach`).
func (s *Service) Start(ctx context.Context, r *taskapi.StartRequest) (*taskapi.StartResponse, error) {
	lock, unlock := s.lock, func(c *container) { c.op.Unlock() }
	if r.ExecID != "" {
		lock, unlock = s.lockShared, func(c *container) { c.op.RUnlock() }
	}
	c, err := lock(r.ID)
	if err != nil {
		return nil, err
	}
	defer unlock(c)
	s.mu.Lock()
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err == nil && (p.status != task.Status_CREATED || p.starting) {
		err = errState("process %s of container %s is %s, not created", displayID(p), r.ID, strings.ToLower(p.status.String()))
	}
	if err == nil && r.ExecID != "" && (c.init.exited() || c.initExit != nil) {
		err = errState("container %s has stopped", r.ID)
	}
	if err == nil {
		p.starting = true // another Start of it (exec starts run concurrently) is refused
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	defer func() {
		s.mu.Lock()
		p.starting = false
		// An init that exited while this exec was starting waits for it; if it never
		// started, nothing else will finish the init.
		if c.initExit != nil && !c.execsRunning() {
			s.finishInit(c, *c.initExit)
		}
		s.mu.Unlock()
	}()
	if r.ExecID == "" {
		if !c.restored {
			if err := c.rt.start(r.ID); err != nil {
				return nil, toStatus(err)
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !p.exited() {
			p.status = task.Status_RUNNING
		}
		s.events.publish(topicStart, &eventstypes.TaskStart{ContainerID: r.ID, Pid: uint32(p.pid)})
		return &taskapi.StartResponse{Pid: uint32(p.pid)}, nil
	}
	pio, err := newProcIO(s.reaper, p.stdin, p.stdout, p.stderr, p.terminal, s.ns, r.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := pio.chown(c.ioUID, c.ioGID); err != nil {
		pio.Close()
		return nil, toStatus(err)
	}
	started := time.Now()
	pid, err := c.rt.exec(r.ID, p.spec, pio.consoleSocket(), pio.runtimeStdio())
	if err == nil {
		err = pio.started(s.consoleEpoller)
	}
	if err != nil {
		pio.Close()
		return nil, toStatus(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.io = pio
	p.pid = pid
	p.status = task.Status_RUNNING
	s.events.publish(topicExecStarted, &eventstypes.TaskExecStarted{ContainerID: r.ID, ExecID: r.ExecID, Pid: uint32(pid)})
	s.track(p, started)
	return &taskapi.StartResponse{Pid: uint32(pid)}, nil
}

func displayID(p *process) string {
	if p.execID == "" {
		return "init"
	}
	return p.execID
}

// Delete removes an exec, or the container with its runtime state and rootfs mounts.
func (s *Service) Delete(ctx context.Context, r *taskapi.DeleteRequest) (*taskapi.DeleteResponse, error) {
	c, err := s.lock(r.ID)
	if err != nil {
		return nil, err
	}
	defer c.op.Unlock()
	s.mu.Lock()
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if r.ExecID != "" {
		defer s.mu.Unlock()
		if p.pid > 0 && !p.exited() {
			return nil, errState("exec %s of container %s is still running", r.ExecID, r.ID)
		}
		delete(c.execs, r.ExecID)
		if p.io != nil {
			p.io.Close()
		}
		return &taskapi.DeleteResponse{Pid: uint32(p.pid), ExitStatus: uint32(p.exitCode), ExitedAt: timestamppb.New(p.exitedAt)}, nil
	}
	if p.status != task.Status_CREATED && !p.exited() {
		s.mu.Unlock()
		return nil, errState("container %s must be stopped before delete", r.ID)
	}
	s.mu.Unlock()
	if err := c.rt.forceDelete(r.ID); err != nil {
		return nil, toStatus(err)
	}
	// A created container was killed by the delete: wait for its exit to come through.
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		s.mu.Lock()
		p.setExited(128+int(unix.SIGKILL), time.Now())
		s.mu.Unlock()
	}
	if c.mounted {
		unmountAll(filepath.Join(c.bundle, "rootfs"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.io != nil {
		p.io.Close()
	}
	c.gone = true
	delete(s.containers, r.ID)
	if s.byPid[p.pid] == p {
		// Only when its exit never came: the pid may be another container's by now.
		delete(s.byPid, p.pid)
	}
	s.events.publish(topicDelete, &eventstypes.TaskDelete{
		ContainerID: r.ID, ID: r.ID, Pid: uint32(p.pid), ExitStatus: uint32(p.exitCode), ExitedAt: timestamppb.New(p.exitedAt),
	})
	return &taskapi.DeleteResponse{Pid: uint32(p.pid), ExitStatus: uint32(p.exitCode), ExitedAt: timestamppb.New(p.exitedAt)}, nil
}

// Exec registers an exec process; Start runs it.
func (s *Service) Exec(ctx context.Context, r *taskapi.ExecProcessRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	if _, ok := c.execs[r.ExecID]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "exec %s already exists in container %s", r.ExecID, r.ID)
	}
	if c.init.exited() {
		return nil, errState("container %s has stopped", r.ID)
	}
	if r.Spec == nil {
		return nil, status.Errorf(codes.InvalidArgument, "exec %s: no process spec", r.ExecID)
	}
	if _, err := specs.ParseProcess(r.Spec.Value); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "exec %s: %v", r.ExecID, err)
	}
	spec, err := withTerminal(r.Spec.Value, r.Terminal)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "exec %s: %v", r.ExecID, err)
	}
	p := newProcess(r.ID, r.ExecID, r.Stdin, r.Stdout, r.Stderr, r.Terminal)
	p.spec = spec
	c.execs[r.ExecID] = p
	s.events.publish(topicExecAdded, &eventstypes.TaskExecAdded{ContainerID: r.ID, ExecID: r.ExecID})
	return empty, nil
}

// withTerminal returns the process spec with its terminal field set to the request's, which
// decides (as in the runc shim): containerd's client asks for a terminal through the IO it
// sets up and may send a spec that says terminal false (the container's own process).
func withTerminal(spec []byte, terminal bool) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(spec, &fields); err != nil {
		return nil, err
	}
	fields["terminal"], _ = json.Marshal(terminal)
	return json.Marshal(fields)
}

// State reports a process's status and exit.
func (s *Service) State(ctx context.Context, r *taskapi.StateRequest) (*taskapi.StateResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	resp := &taskapi.StateResponse{
		ID: r.ID, ExecID: r.ExecID, Bundle: c.bundle, Pid: uint32(p.pid), Status: p.status,
		Stdin: p.stdin, Stdout: p.stdout, Stderr: p.stderr, Terminal: p.terminal,
	}
	if p.exited() {
		resp.ExitStatus = uint32(p.exitCode)
		resp.ExitedAt = timestamppb.New(p.exitedAt)
	}
	return resp, nil
}

// Wait blocks until the process has exited for good.
func (s *Service) Wait(ctx context.Context, r *taskapi.WaitRequest) (*taskapi.WaitResponse, error) {
	s.mu.Lock()
	_, p, err := s.getProcess(r.ID, r.ExecID)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &taskapi.WaitResponse{ExitStatus: uint32(p.exitCode), ExitedAt: timestamppb.New(p.exitedAt)}, nil
}

// Kill signals the init (through the runtime, so --all reaches every process) or an exec.
// It takes no operation lock: a kill must get through while a slow operation (a stuck exec
// start, a long checkpoint) holds the container.
func (s *Service) Kill(ctx context.Context, r *taskapi.KillRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if r.ExecID != "" {
		defer s.mu.Unlock()
		if p.pid == 0 || p.exited() {
			return nil, errNotFound("exec %s of container %s is not running", r.ExecID, r.ID)
		}
		if err := unix.Kill(p.pid, unix.Signal(r.Signal)); err != nil {
			return nil, toStatus(fmt.Errorf("kill exec %s: %w", r.ExecID, err))
		}
		return empty, nil
	}
	exited := p.exited()
	s.mu.Unlock()
	if exited && !r.All {
		return nil, errNotFound("container %s: process already finished", r.ID)
	}
	kill := c.rt.signal
	if r.All {
		kill = c.rt.signalAll
	}
	if err := kill(r.ID, r.Signal); err != nil {
		s.mu.Lock()
		exited := p.exited()
		s.mu.Unlock()
		if exited || r.All {
			return empty, nil
		}
		return nil, toStatus(err)
	}
	return empty, nil
}

// Pids lists the container's processes, marking execs with their exec id.
func (s *Service) Pids(ctx context.Context, r *taskapi.PidsRequest) (*taskapi.PidsResponse, error) {
	s.mu.Lock()
	c, err := s.get(r.ID)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	pids, err := c.rt.ps(r.ID)
	if err != nil {
		return nil, toStatus(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	execByPid := map[int]string{}
	for id, x := range c.execs {
		execByPid[x.pid] = id
	}
	resp := &taskapi.PidsResponse{}
	for _, pid := range pids {
		info := &task.ProcessInfo{Pid: uint32(pid)}
		if id, ok := execByPid[pid]; ok {
			if a, err := typeurl.MarshalAnyToProto(&options.ProcessDetails{ExecID: id}); err == nil {
				info.Info = a
			}
		}
		resp.Processes = append(resp.Processes, info)
	}
	return resp, nil
}

// Pause freezes the container.
func (s *Service) Pause(ctx context.Context, r *taskapi.PauseRequest) (*emptypb.Empty, error) {
	return s.freeze(r.ID, containerRuntime.pause, task.Status_PAUSED, topicPaused, &eventstypes.TaskPaused{ContainerID: r.ID})
}

// Resume thaws the container.
func (s *Service) Resume(ctx context.Context, r *taskapi.ResumeRequest) (*emptypb.Empty, error) {
	return s.freeze(r.ID, containerRuntime.resume, task.Status_RUNNING, topicResumed, &eventstypes.TaskResumed{ContainerID: r.ID})
}

// freeze pauses or resumes (op) a container, which then has status st, and publishes ev.
func (s *Service) freeze(id string, op func(containerRuntime, string) error, st task.Status, topic string, ev any) (*emptypb.Empty, error) {
	c, err := s.lock(id)
	if err != nil {
		return nil, err
	}
	defer c.op.Unlock()
	if err := op(c.rt, id); err != nil {
		return nil, toStatus(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.init.exited() {
		c.init.status = st
	}
	s.events.publish(topic, ev)
	return empty, nil
}

// Update passes new resources (LinuxResources JSON) to `runtime update`.
func (s *Service) Update(ctx context.Context, r *taskapi.UpdateTaskRequest) (*emptypb.Empty, error) {
	c, err := s.lock(r.ID)
	if err != nil {
		return nil, err
	}
	defer c.op.Unlock()
	if r.Resources == nil {
		return empty, nil
	}
	if err := c.rt.update(r.ID, r.Resources.Value); err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

// ResizePty resizes a process's terminal.
func (s *Service) ResizePty(ctx context.Context, r *taskapi.ResizePtyRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if p.io == nil {
		return nil, errState("process has no terminal")
	}
	if err := p.io.resize(r.Width, r.Height); err != nil {
		return nil, toStatus(err)
	}
	return empty, nil
}

// CloseIO closes a process's stdin.
func (s *Service) CloseIO(ctx context.Context, r *taskapi.CloseIORequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if r.Stdin && p.io != nil {
		p.io.closeStdin()
	}
	return empty, nil
}

// Connect tells containerd the shim's and the task's pids.
func (s *Service) Connect(ctx context.Context, r *taskapi.ConnectRequest) (*taskapi.ConnectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &taskapi.ConnectResponse{ShimPid: uint32(os.Getpid()), Version: "husk"}
	if c, err := s.get(r.ID); err == nil {
		resp.TaskPid = uint32(c.init.pid)
	}
	return resp, nil
}

// Shutdown ends the shim once it serves no container.
func (s *Service) Shutdown(ctx context.Context, r *taskapi.ShutdownRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	n := len(s.containers)
	s.mu.Unlock()
	if n > 0 {
		return empty, nil
	}
	s.events.drain()
	if s.shutdown != nil {
		s.shutdown() // quick: removes the socket file; the server stops after the reply
	}
	return empty, nil
}

// rootfsMounts is the mount list type of CreateTaskRequest.
type rootfsMounts = []*apitypes.Mount
