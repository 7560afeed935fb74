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
	at     time.Time
}

// reaper owns every wait4 of the shim: the shim is a child subreaper, so container processes,
// runtime commands and loggers all end up here. A pid someone subscribed to (a runtime command
// the shim forked) goes to its subscriber; every other exit goes to the exit loop.
type reaper struct {
	mu     sync.Mutex
	subs   map[int]chan exit
	others chan exit
}

func newReaper() *reaper {
	r := &reaper{subs: map[int]chan exit{}, others: make(chan exit, 256)}
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
		e := exit{pid: pid, status: exitCode(ws), at: time.Now()}
		r.mu.Lock()
		ch, ok := r.subs[pid]
		delete(r.subs, pid)
		r.mu.Unlock()
		if ok {
			ch <- e
		} else {
			r.others <- e
		}
	}
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
