package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/hooks"
	"github.com/husk-runtime/husk/specs"
)

// Start releases a created container's init, which then execs the user process.
func (c *Container) Start() error {
	switch st := c.status(); st {
	case Created:
	case Stopped:
		return fmt.Errorf("container %s: cannot start a container that has stopped", c.state.ID)
	default:
		return fmt.Errorf("container %s: cannot start an already %s container", c.state.ID, st)
	}
	fifo := filepath.Join(c.dir, fifoName)
	f, err := os.OpenFile(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: open exec fifo: %w", c.state.ID, err)
	}
	defer f.Close()
	// Opening the read end released the init's blocking open; wait for its byte, watching
	// that it has not died meanwhile.
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 100)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("container %s: wait for init: %w", c.state.ID, err)
		}
		if n > 0 {
			break
		}
		if !c.state.initAlive() {
			return fmt.Errorf("container %s: init process died before start", c.state.ID)
		}
	}
	buf := make([]byte, 1)
	if n, _ := unix.Read(int(f.Fd()), buf); n != 1 {
		return fmt.Errorf("container %s: init process died before start", c.state.ID)
	}
	if err := os.Remove(fifo); err != nil {
		return fmt.Errorf("container %s: %w", c.state.ID, err)
	}
	if h := c.state.Hooks; h != nil && len(h.Poststart) > 0 {
		// As runc (1.0 to 1.5), not as the spec's "log a warning and go on" (crun's way): the
		// first failing poststart hook fails start and the container is killed, so a caller
		// never gets a running container whose start-up step failed; the later hooks do not run.
		if err := hooks.Run(c.Monitor, h.Poststart, "poststart", c.hookState(Running)); err != nil {
			if kerr := c.Signal(unix.SIGKILL); kerr != nil && !errors.Is(kerr, ErrNotRunning) {
				c.warn(fmt.Sprintf("poststart hook failed and the container could not be killed: %v", kerr))
			}
			return fmt.Errorf("container %s: %w", c.state.ID, err)
		}
	}
	return nil
}

// Wait waits for the init process of a container this process created (run) and returns its
// wait status.
func (c *Container) Wait() (syscall.WaitStatus, error) {
	if c.init == nil {
		return 0, errors.New("not the parent of this container's init")
	}
	return c.init.Wait()
}

// InitProcess returns the init when this process created it.
func (c *Container) InitProcess() *Process { return c.init }

// Signal sends sig to the init (a SIGKILL to every process, when the container has no pid
// namespace of its own).
func (c *Container) Signal(sig unix.Signal) error { return c.signal(sig, false) }

// SignalAll sends sig to every process of the container.
func (c *Container) SignalAll(sig unix.Signal) error { return c.signal(sig, true) }

func (c *Container) signal(sig unix.Signal, all bool) error {
	st := c.status()
	// Without a pid namespace of its own the init's death leaves the rest running: SIGKILL
	// goes to the whole cgroup, as runc 1.2+ does, also once the init is gone.
	killAll := sig == unix.SIGKILL && !all && !c.privatePidNamespace()
	if st == Stopped && !all && !killAll {
		return fmt.Errorf("container %s: %w", c.state.ID, ErrNotRunning)
	}
	var err error
	switch {
	case all:
		err = c.Cgroup().Signal(sig)
	case killAll:
		if pids, _ := c.Cgroup().Pids(); st == Stopped && len(pids) == 0 {
			return fmt.Errorf("container %s: %w", c.state.ID, ErrNotRunning)
		}
		// The init first: it may exit on its own meanwhile, which is no error here.
		_ = c.signalInit(sig)
		err = c.Cgroup().Signal(sig)
	default:
		err = c.signalInit(sig)
	}
	if err != nil {
		return fmt.Errorf("container %s: kill: %w", c.state.ID, err)
	}
	if sig == unix.SIGKILL {
		// A frozen process cannot die (the container paused, or a sub-cgroup it froze
		// itself): thaw them so the kill takes effect.
		c.Cgroup().ThawTree()
	}
	return nil
}

// Update applies new resources to the container's cgroup, as `update` does: not to a
// stopped container.
func (c *Container) Update(res *rspec.LinuxResources) error {
	if c.status() == Stopped {
		return fmt.Errorf("container %s: cannot update a stopped container", c.state.ID)
	}
	return c.Cgroup().Update(res)
}

// DecodeResources reads `update --resources` JSON (LinuxResources), for both frontends.
func DecodeResources(data []byte) (*rspec.LinuxResources, error) {
	if len(data) > specs.MaxProcessSize {
		return nil, fmt.Errorf("update --resources: larger than %d bytes", specs.MaxProcessSize)
	}
	var res rspec.LinuxResources
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("update --resources: invalid JSON: %w", err)
	}
	return &res, nil
}

// Pause freezes the container.
func (c *Container) Pause() error {
	switch st := c.status(); st {
	case Running, Created:
	default:
		return fmt.Errorf("container %s: cannot pause a %s container", c.state.ID, st)
	}
	if err := c.Cgroup().Freeze(); err != nil {
		return fmt.Errorf("container %s: pause: %w", c.state.ID, err)
	}
	return nil
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.status(); st != Paused {
		return fmt.Errorf("container %s: cannot resume a %s container", c.state.ID, st)
	}
	if err := c.Cgroup().Thaw(); err != nil {
		return fmt.Errorf("container %s: resume: %w", c.state.ID, err)
	}
	return nil
}
