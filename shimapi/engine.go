package shimapi

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer"
	"github.com/husk-runtime/husk/specs"
)

// engine runs husk's own engine (libcontainer) inside the shim for the operations containerd
// asks for most (create, start, exec, kill, delete, pause, resume, update, ps): each of them
// would otherwise start a husk process, and the Go runtime's start is most of what a husk
// command costs. The state directory is the one `husk --root` reads, so containers made here
// stay visible to `husk list/state/ps/exec`, and the per-container flock still orders the
// shim against husk commands. Checkpoint and restore keep going through husk-criu.
type engine struct {
	root    string
	systemd bool
	reaper  *reaper
	command *runtimeClient           // husk's command line, for checkpoint and restore (husk-criu)
	init    *libcontainer.InitBinary // husk-init's sealed view, shared by the shim's engines
	execs   *libcontainer.ExecCache  // containers' state as execs need it, shared likewise
}

// inProcessEngine returns an engine when binary is the husk installed beside this shim (whose
// husk-init, and husk-systemd, the engine finds beside its own executable), else nil: another
// runtime, or a husk elsewhere, is run as a command.
func inProcessEngine(binary, root string, systemd bool, r *reaper, command *runtimeClient, init *libcontainer.InitBinary, execs *libcontainer.ExecCache) *engine {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	dir := filepath.Dir(self)
	path := binary
	if !strings.Contains(binary, "/") {
		if path, err = exec.LookPath(binary); err != nil {
			return nil
		}
	}
	if filepath.Clean(path) != filepath.Join(dir, DefaultRuntime) {
		return nil
	}
	for _, b := range []string{DefaultRuntime, "husk-init"} {
		if st, err := os.Stat(filepath.Join(dir, b)); err != nil || !st.Mode().IsRegular() {
			return nil
		}
	}
	return &engine{root: root, systemd: systemd, reaper: r, command: command, init: init, execs: execs}
}

// warn reports what goes wrong without failing an operation (a failing poststop hook) in the
// shim's log, which containerd keeps.
func (e *engine) warn(msg string) {
	fmt.Fprintf(os.Stderr, "containerd-shim-husk-v2: warning: %s\n", msg)
}

// do runs one operation and words its error as a failed runtime command's. (Its children go
// through the reaper, the containers' Monitor: nothing is held off while it runs.)
func (e *engine) do(cmd string, f func() error) error {
	if err := f(); err != nil {
		return &runtimeError{cmd: cmd, msg: err.Error()}
	}
	return nil
}

func (e *engine) withContainer(id string, f func(*libcontainer.Container) error) error {
	ct, err := libcontainer.Load(e.root, id)
	if err != nil {
		return err
	}
	defer ct.Close()
	ct.Warn, ct.Monitor = e.warn, e.reaper
	return f(ct)
}

// create returns the init's pid.
func (e *engine) create(a createArgs) (int, error) {
	pid := 0
	err := e.do("create", func() error {
		spec, raw, abs, err := specs.Load(a.bundle, e.warn)
		if err != nil {
			return err
		}
		ct, err := libcontainer.Create(e.root, libcontainer.CreateOpts{
			ID: a.id, Bundle: abs, Spec: spec, RawSpec: raw, ConsoleSocket: a.consoleSocket,
			PidFile: a.pidFile, NoPivot: a.noPivot, NoNewKeyring: a.noNewKeyring, SystemdCgroup: e.systemd,
			Stdio:      libcontainer.Stdio{Stdin: a.stdio[0], Stdout: a.stdio[1], Stderr: a.stdio[2]},
			Warn:       e.warn,
			Monitor:    e.reaper,
			InitBinary: e.init,
		})
		if err != nil {
			return err
		}
		pid = ct.Pid()
		ct.Close()
		return nil
	})
	return pid, err
}

func (e *engine) start(id string) error {
	return e.do("start", func() error {
		return e.withContainer(id, func(ct *libcontainer.Container) error { return ct.Start() })
	})
}

// exec starts process spec (OCI Process JSON) in container id, detached, as `husk exec
// --process --detach` does, and returns its pid.
func (e *engine) exec(id string, spec []byte, consoleSocket string, stdio [3]*os.File) (int, error) {
	pid := 0
	err := e.do("exec", func() error {
		p, err := specs.ParseProcess(spec)
		if err != nil {
			return fmt.Errorf("exec --process: %w", err)
		}
		if err := libcontainer.PrepareExecProcess(p); err != nil {
			return err
		}
		proc, err := e.execs.Exec(e.root, id, e.reaper, libcontainer.ExecOpts{
			Process: p, ConsoleSocket: consoleSocket, InitBinary: e.init,
			Stdio: libcontainer.Stdio{Stdin: stdio[0], Stdout: stdio[1], Stderr: stdio[2]},
		})
		if err != nil {
			return fmt.Errorf("exec failed: %w", err)
		}
		pid = proc.Pid
		return nil
	})
	return pid, err
}

// signal sends sig to the init; signalAll to every process of the container.
func (e *engine) signal(id string, sig uint32) error {
	return e.do("kill", func() error {
		return e.withContainer(id, func(ct *libcontainer.Container) error { return ct.Signal(unix.Signal(sig)) })
	})
}

func (e *engine) signalAll(id string, sig uint32) error {
	return e.do("kill", func() error {
		return e.withContainer(id, func(ct *libcontainer.Container) error { return ct.SignalAll(unix.Signal(sig)) })
	})
}

// restore and checkpoint go through husk's command line: CRIU runs under husk-criu.
func (e *engine) restore(a restoreArgs) (int, error)        { return e.command.restore(a) }
func (e *engine) checkpoint(id string, args []string) error { return e.command.checkpoint(id, args) }

// forceDelete is `husk delete --force`.
func (e *engine) forceDelete(id string) error {
	// Forgotten once gone: an exec between the two would otherwise keep an entry for good.
	defer e.execs.Forget(e.root, id)
	return e.do("delete", func() error { return libcontainer.ForceDeleteID(e.root, id, e.warn, e.reaper) })
}

func (e *engine) pause(id string) error {
	return e.do("pause", func() error {
		return e.withContainer(id, func(ct *libcontainer.Container) error { return ct.Pause() })
	})
}

func (e *engine) resume(id string) error {
	return e.do("resume", func() error {
		return e.withContainer(id, func(ct *libcontainer.Container) error { return ct.Resume() })
	})
}

// update applies LinuxResources JSON, as `husk update --resources -`.
func (e *engine) update(id string, resources []byte) error {
	return e.do("update", func() error {
		res, err := libcontainer.DecodeResources(resources)
		if err != nil {
			return err
		}
		return e.withContainer(id, func(ct *libcontainer.Container) error { return ct.Update(res) })
	})
}

func (e *engine) ps(id string) ([]int, error) {
	var pids []int
	err := e.do("ps", func() error {
		return e.withContainer(id, func(ct *libcontainer.Container) error {
			var err error
			if pids, err = ct.Cgroup().Pids(); err != nil {
				return fmt.Errorf("ps: %w", err)
			}
			return nil
		})
	})
	return pids, err
}
