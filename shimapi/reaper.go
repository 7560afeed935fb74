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
// the shim forked) goes to its subscriber; every other exit is queued for the exit loop. The
// queue is unbounded: the reaper must never wait on the exit loop, which may be waiting (through
// the service lock) for a runtime command whose exit only the reaper can deliver.
type reaper struct {
	// own is held (read) while husk's engine runs in this process: it forks and waits for
	// children of its own (the init's intermediate, hooks, the systemd and idmap helpers), and
	// a wait4(-1) here would take their exits from it. The reaper waits (write) until no
	// operation runs; a waiting reaper holds new operations back, so exits are never starved.
	// Operations never wait for the reaper.
	own     sync.RWMutex
	mu      sync.Mutex
	subs    map[int]chan exit
	pending []exit
	notify  chan struct{} // one token: pending is not empty
}

func newReaper() *reaper {
	r := &reaper{subs: map[int]chan exit{}, notify: make(chan struct{}, 1)}
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
	r.own.Lock()
	defer r.own.Unlock()
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
		if !ok {
			r.pending = append(r.pending, e)
		}
		r.mu.Unlock()
		if ok {
			ch <- e // buffered: never blocks
			continue
		}
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}
}

// hold keeps the reaper from reaping until the returned function is called: for the length of
// an operation of the in-process engine, which waits for its own children.
func (r *reaper) hold() func() {
	r.own.RLock()
	return r.own.RUnlock
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
