// Package shimapi is husk's containerd shim v2 as a library: the Task service, process
// bookkeeping, stdio, the reaper, event publishing and the start/delete actions.
package shimapi

import (
	"context"
	"fmt"
	"os"
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

	"github.com/husk-runtime/husk/libcontainer"
	"github.com/husk-runtime/husk/specs"
)

// DefaultRuntime is the OCI runtime the shim drives unless BinaryName says otherwise.
const DefaultRuntime = "husk"

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
	// initBinary is husk-init's sealed view, made once for every create and exec of this
	// shim's in-process engines.
	initBinary libcontainer.InitBinary
	// execs keeps what an exec needs of each container's state between execs (probes).
	execs     libcontainer.ExecCache
	epollOnce sync.Once
	epoller   *console.Epoller
	epollErr  error
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

// Create mounts the rootfs, sets up stdio and creates the init (create.go has the stages).
func (s *Service) Create(ctx context.Context, r *taskapi.CreateTaskRequest) (*taskapi.CreateTaskResponse, error) {
	c, release, err := s.reserve(r.ID, r.Bundle)
	if err != nil {
		return nil, err
	}
	defer c.op.Unlock()
	opts, err := parseOptions(r.Options)
	if err == nil {
		err = s.configure(c, opts)
	}
	var p *process
	var undo func()
	if err == nil {
		p, undo, err = s.prepare(c, r)
	}
	if err != nil {
		release()
		return nil, toStatus(err)
	}
	started := time.Now()
	pid, err := s.launch(c, p, r, opts)
	if err != nil {
		undo()
		release()
		return nil, toStatus(err)
	}
	s.register(c, p, pid, started, r)
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
	pid, err := s.startExec(c, p)
	if err != nil {
		return nil, toStatus(err)
	}
	return &taskapi.StartResponse{Pid: uint32(pid)}, nil
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
	resp, err := s.remove(c, p)
	return resp, toStatus(err)
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
