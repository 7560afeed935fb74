// Package children starts the helper processes an operation forks (hooks, the init's
// intermediate, the systemd and idmap helpers) and waits for them, through a Monitor: a
// process that reaps every child it has (the shim, a child subreaper) must get their exits
// to the right waiter instead of racing it with wait4.
package children

import (
	"fmt"
	"os/exec"
	"syscall"
)

// Monitor starts children and waits for them.
type Monitor interface {
	// Run starts cmd and waits for it, as cmd.Run does (its output is copied in full).
	Run(cmd *exec.Cmd) error
	// ForkExec starts a program as syscall.ForkExec does; Wait waits for a pid it started.
	ForkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error)
	Wait(pid int) (syscall.WaitStatus, error)
	// Release gives up waiting for a pid ForkExec started, which outlives the operation (a
	// container's process): its exit goes wherever the process's other exits go.
	Release(pid int)
}

// Direct forks and waits with wait4: the monitor of a process nothing else reaps in (husk).
var Direct Monitor = direct{}

// Or returns m, or Direct when m is nil.
func Or(m Monitor) Monitor {
	if m == nil {
		return Direct
	}
	return m
}

type direct struct{}

func (direct) Run(cmd *exec.Cmd) error { return cmd.Run() }

func (direct) ForkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
	return syscall.ForkExec(argv0, argv, attr)
}

func (direct) Release(int) {}

func (direct) Wait(pid int) (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws, err
		}
	}
}

// ExitError is a child's unsuccessful exit, worded as os/exec words one ("exit status 1",
// "signal: killed"): a monitor that reaps for os/exec cannot hand back its *exec.ExitError.
type ExitError struct {
	Status syscall.WaitStatus
}

func (e *ExitError) Error() string {
	if e.Status.Signaled() {
		return "signal: " + e.Status.Signal().String()
	}
	return fmt.Sprintf("exit status %d", e.Status.ExitStatus())
}
