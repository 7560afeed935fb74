package shimapi

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// exit is one reaped child.
type exit struct {
	pid    int
	status int // exit code, or 128+signal
	ws     syscall.WaitStatus
	at     time.Time
}

// reaper owns every wait4 of the shim: the shim is a child subreaper, so container processes,
// runtime commands, loggers and the children of husk's in-process engine (hooks, the init's
// intermediate, the systemd and idmap helpers) all end up here. A pid someone subscribed to as
// it was forked (a runtime command, an engine child: the reaper is the engine's
// children.Monitor) goes to its subscriber; every other exit is queued for the exit loop. The
// queue is unbounded: the reaper must never wait on the exit loop, which may be waiting (through
// the service lock) for a runtime command whose exit only the reaper can deliver. Nothing holds
// the reaper off: one container's slow hook delays no other container's exit.
type reaper struct {
	mu       sync.Mutex
	subs     map[int]chan exit
	children map[int]chan exit // the engine's children, until waited for or released
	pending  []exit
	notify   chan struct{} // one token: pending is not empty
}

func newReaper() *reaper {
	r := &reaper{subs: map[int]chan exit{}, children: map[int]chan exit{}, notify: make(chan struct{}, 1)}
	sigc := make(chan os.Signal, 32)
	signal.Notify(sigc, unix.SIGCHLD)
	go func() {
		for range sigc {
			r.reap()
		}
	}()
	return r
}

func (r *reaper) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		e := exit{pid: pid, status: exitCode(ws), ws: ws, at: time.Now()}
		r.mu.Lock()
		ch, ok := r.subs[pid]
		delete(r.subs, pid)
		if ok {
			ch <- e // buffered: never blocks; under mu, so a Release sees it there
		} else {
			r.pending = append(r.pending, e)
		}
		r.mu.Unlock()
		if ok {
			continue
		}
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}
}

// others waits for exits nobody subscribed to and returns them in order.
func (r *reaper) others() []exit {
	<-r.notify
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.pending
	r.pending = nil
	return out
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// forkExec starts a command and subscribes to its exit atomically: the reaper cannot route the
// exit elsewhere, however fast the command ends.
func (r *reaper) forkExec(argv []string, env []string, dir string, files []uintptr) (int, chan exit, error) {
	ch := make(chan exit, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Dir: dir, Env: env, Files: files})
	if err != nil {
		return 0, nil, err
	}
	r.subs[pid] = ch
	return pid, ch, nil
}
