package shimapi

import (
	"sync"
	"time"

	"github.com/containerd/containerd/api/types/task"
)

// process is the init or an exec of a container, as the shim tracks it.
type process struct {
	id       string // container id
	execID   string // "" for the init
	pid      int
	status   task.Status
	exitCode int
	exitedAt time.Time
	done     chan struct{} // closed once the exit is final (and published)
	io       *procIO
	stdin    string
	stdout   string
	stderr   string
	terminal bool
	spec     []byte // exec: the OCI process JSON
	starting bool   // a Start of it is under way
	once     sync.Once
}

func newProcess(id, execID string, stdin, stdout, stderr string, terminal bool) *process {
	return &process{id: id, execID: execID, status: task.Status_CREATED, done: make(chan struct{}),
		stdin: stdin, stdout: stdout, stderr: stderr, terminal: terminal}
}

// setExited records the exit; the caller holds the service lock.
func (p *process) setExited(code int, at time.Time) {
	p.once.Do(func() {
		p.status = task.Status_STOPPED
		p.exitCode = code
		p.exitedAt = at
		if p.io != nil {
			go p.io.exited()
		}
		close(p.done)
	})
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
