package shimapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// containerRuntime is what the shim asks of the runtime of a container, chosen once when the
// container is created (runtimeFor): husk's engine in this process (engine), or any
// runc-compatible binary through its command line (runtimeClient).
type containerRuntime interface {
	create(a createArgs) (pid int, err error)
	restore(a restoreArgs) (pid int, err error) // a created task from a checkpoint, running
	start(id string) error
	exec(id string, spec []byte, consoleSocket string, stdio [3]*os.File) (pid int, err error)
	signal(id string, sig uint32) error    // the init
	signalAll(id string, sig uint32) error // every process of the container
	forceDelete(id string) error
	pause(id string) error
	resume(id string) error
	update(id string, resources []byte) error
	ps(id string) ([]int, error)
	checkpoint(id string, args []string) error // `checkpoint` with its flags
}

// createArgs is a create's request, in either runtime.
type createArgs struct {
	id, bundle, pidFile, consoleSocket string
	stdio                              [3]*os.File
	noPivot, noNewKeyring              bool
}

// restoreArgs is a restore's: a create from CRIU's images (noNewKeyring does not apply).
type restoreArgs struct {
	createArgs
	image, work, parent string
}

// runtimeClient drives any runc-compatible binary (husk, runc, crun) through its command line,
// as containerd's go-runc does: global flags first, json logs whose last error explains a
// failure.
type runtimeClient struct {
	binary  string
	root    string
	logPath string
	systemd bool
	reaper  *reaper
}

type runtimeError struct {
	cmd string
	msg string
}

func (e *runtimeError) Error() string { return fmt.Sprintf("OCI runtime %s failed: %s", e.cmd, e.msg) }

func (r *runtimeClient) argv(args ...string) []string {
	a := []string{r.binary, "--root", r.root, "--log", r.logPath, "--log-format", "json"}
	if r.systemd {
		a = append(a, "--systemd-cgroup")
	}
	return append(a, args...)
}

// run executes a runtime command with the given stdio (nil: /dev/null; stdout is captured when
// capture is set) and waits for it through the reaper.
func (r *runtimeClient) run(stdio [3]*os.File, capture bool, stdin []byte, args ...string) ([]byte, error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	fds := [3]uintptr{}
	for i, f := range stdio {
		if f == nil {
			f = null
		}
		fds[i] = f.Fd()
	}
	var outR, outW, inW *os.File
	if capture {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer pr.Close()
		fds[1] = pw.Fd()
		outR, outW = pr, pw
	}
	if stdin != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		fds[0] = pr.Fd()
		inW = pw
		defer pr.Close()
	}
	argv := r.argv(args...)
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, &runtimeError{cmd: args[0], msg: fmt.Sprintf("runtime binary %q not found: %v", argv[0], err)}
	}
	argv[0] = bin
	_, done, err := r.reaper.forkExec(argv, os.Environ(), "", fds[:])
	if outW != nil {
		// Our copy of the write end must go, or reading never sees EOF.
		outW.Close()
	}
	if err != nil {
		return nil, &runtimeError{cmd: args[0], msg: err.Error()}
	}
	var out []byte
	var readErr error
	readDone := make(chan struct{})
	if capture {
		go func() {
			out, readErr = io.ReadAll(outR)
			close(readDone)
		}()
	} else {
		close(readDone)
	}
	if inW != nil {
		go func() {
			inW.Write(stdin)
			inW.Close()
		}()
	}
	e := <-done
	<-readDone
	if e.status != 0 {
		return out, &runtimeError{cmd: args[0], msg: r.lastError(e.status)}
	}
	return out, readErr
}

// lastError returns the last error the runtime logged, which is what the user needs to see.
func (r *runtimeClient) lastError(status int) string {
	f, err := os.Open(r.logPath)
	if err != nil {
		return fmt.Sprintf("exit status %d", status)
	}
	defer f.Close()
	var last string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(s.Bytes(), &l) == nil && l.Level == "error" {
			last = l.Msg
		}
	}
	if last == "" {
		return fmt.Sprintf("exit status %d", status)
	}
	return last
}

// ociState is the part of `runtime state` the shim needs.
type ociState struct {
	Pid    int    `json:"pid"`
	Status string `json:"status"`
}

func (r *runtimeClient) state(id string) (*ociState, error) {
	out, err := r.run([3]*os.File{}, true, nil, "state", id)
	if err != nil {
		return nil, err
	}
	var st ociState
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("runtime state: %w", err)
	}
	return &st, nil
}

func (r *runtimeClient) ps(id string) ([]int, error) {
	out, err := r.run([3]*os.File{}, true, nil, "ps", "--format", "json", id)
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(bytes.TrimSpace(out), &pids); err != nil {
		return nil, fmt.Errorf("runtime ps: %w", err)
	}
	return pids, nil
}

// create runs `create` and returns the init's pid; a create whose pid cannot be read is
// deleted again.
func (r *runtimeClient) create(a createArgs) (int, error) {
	args := []string{"create", "--bundle", a.bundle, "--pid-file", a.pidFile}
	if a.noNewKeyring {
		args = append(args, "--no-new-keyring")
	}
	return r.createWith(a.withShared(args), a)
}

// restore runs `restore --detach` from a checkpoint's images and returns the init's pid.
func (r *runtimeClient) restore(a restoreArgs) (int, error) {
	args := []string{"restore", "--detach", "--no-subreaper", "--bundle", a.bundle, "--pid-file", a.pidFile, "--image-path", a.image}
	if a.work != "" {
		args = append(args, "--work-path", a.work)
	}
	if a.parent != "" {
		args = append(args, "--parent-path", a.parent)
	}
	return r.createWith(a.withShared(args), a.createArgs)
}

// withShared adds the flags create and restore share, and the id, to args.
func (a createArgs) withShared(args []string) []string {
	if a.consoleSocket != "" {
		args = append(args, "--console-socket", a.consoleSocket)
	}
	if a.noPivot {
		args = append(args, "--no-pivot")
	}
	return append(args, a.id)
}

func (r *runtimeClient) createWith(argv []string, a createArgs) (int, error) {
	if _, err := r.run(a.stdio, false, nil, argv...); err != nil {
		return 0, err
	}
	pid, err := readPidFile(a.pidFile)
	if err != nil {
		r.forceDelete(a.id)
	}
	return pid, err
}

func (r *runtimeClient) checkpoint(id string, args []string) error {
	_, err := r.run([3]*os.File{}, false, nil, append(args, id)...)
	return err
}

func (r *runtimeClient) start(id string) error {
	_, err := r.run([3]*os.File{}, false, nil, "start", id)
	return err
}

// exec starts an exec process (OCI Process JSON), detached, and returns its pid.
func (r *runtimeClient) exec(id string, spec []byte, consoleSocket string, stdio [3]*os.File) (int, error) {
	f, err := os.CreateTemp(filepath.Dir(r.logPath), ".exec-*.json")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(spec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	pidFile := f.Name() + ".pid"
	defer os.Remove(pidFile)
	args := []string{"exec", "--process", f.Name(), "--detach", "--pid-file", pidFile}
	if consoleSocket != "" {
		args = append(args, "--console-socket", consoleSocket)
	}
	if _, err := r.run(stdio, false, nil, append(args, id)...); err != nil {
		return 0, err
	}
	return readPidFile(pidFile)
}

// signal sends sig to the container's init.
func (r *runtimeClient) signal(id string, sig uint32) error {
	_, err := r.run([3]*os.File{}, false, nil, "kill", id, strconv.FormatUint(uint64(sig), 10))
	return err
}

// signalAll sends sig to every process of the container.
func (r *runtimeClient) signalAll(id string, sig uint32) error {
	_, err := r.run([3]*os.File{}, false, nil, "kill", "--all", id, strconv.FormatUint(uint64(sig), 10))
	return err
}

func (r *runtimeClient) forceDelete(id string) error {
	_, err := r.run([3]*os.File{}, false, nil, "delete", "--force", id)
	return err
}

func (r *runtimeClient) pause(id string) error {
	_, err := r.run([3]*os.File{}, false, nil, "pause", id)
	return err
}

func (r *runtimeClient) resume(id string) error {
	_, err := r.run([3]*os.File{}, false, nil, "resume", id)
	return err
}

// update applies LinuxResources JSON.
func (r *runtimeClient) update(id string, resources []byte) error {
	_, err := r.run([3]*os.File{}, false, resources, "update", "--resources", "-", id)
	return err
}

func readPidFile(path string) (int, error) {
	for i := 0; i < 50; i++ {
		data, err := os.ReadFile(path)
		if err == nil {
			var pid int
			if _, err := fmt.Sscan(string(data), &pid); err == nil && pid > 0 {
				return pid, nil
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("pid file %s: no pid", path)
}
