package shimapi

import (
	"errors"
	"os/exec"
	"syscall"

	"github.com/husk-runtime/husk/internal/children"
)

// The reaper is the children.Monitor of husk's in-process engine: a child is subscribed to as
// it is forked (under the reaper's lock, so its exit cannot be routed elsewhere however fast it
// comes), and its exit reaches the operation that waits for it, while every other exit goes on
// reaching the exit loop.
var _ children.Monitor = (*reaper)(nil)

var errNotMonitored = errors.New("not a child this operation started")

// ForkExec starts a program and subscribes to its exit.
func (r *reaper) ForkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
	ch := make(chan exit, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv0, argv, attr)
	if err != nil {
		return 0, err
	}
	r.subs[pid], r.children[pid] = ch, ch
	return pid, nil
}

// Wait waits for a child ForkExec or Run started. Any other pid (a grandchild, a released
// process) is the exit loop's: an error at once.
func (r *reaper) Wait(pid int) (syscall.WaitStatus, error) {
	r.mu.Lock()
	ch, ok := r.children[pid]
	r.mu.Unlock()
	if !ok {
		return 0, errNotMonitored
	}
	e := <-ch
	r.mu.Lock()
	delete(r.children, pid)
	r.mu.Unlock()
	return e.ws, nil
}

// Release hands a child's exit over to the exit loop: the process is a container's now.
func (r *reaper) Release(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch, ok := r.children[pid]
	if !ok {
		return
	}
	delete(r.children, pid)
	if _, waiting := r.subs[pid]; waiting {
		delete(r.subs, pid)
		return
	}
	// Reaped already (the reaper sends under mu): the exit is in ch.
	select {
	case e := <-ch:
		r.pending = append(r.pending, e)
		select {
		case r.notify <- struct{}{}:
		default:
		}
	default:
	}
}

// Run starts cmd, subscribed to, and waits for it and its output, as cmd.Run does.
func (r *reaper) Run(cmd *exec.Cmd) error {
	ch := make(chan exit, 1)
	r.mu.Lock()
	err := cmd.Start()
	if err == nil {
		r.subs[cmd.Process.Pid] = ch
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	e := <-ch
	// Its own wait finds the process reaped (ECHILD); it still waits for the output copies.
	_ = cmd.Wait()
	if e.ws.Exited() && e.ws.ExitStatus() == 0 {
		return nil
	}
	return &children.ExitError{Status: e.ws}
}
