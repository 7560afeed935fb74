package shimapi

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Flags are the shim's command line, as containerd passes it.
type Flags struct {
	Namespace string
	Address   string // containerd's grpc address
	ID        string
	Bundle    string
	Debug     bool
	Socket    string // serve on this socket path instead of fd 3
}

const socketDir = "/run/containerd/s"

// groupID is the shim key: containers of one pod share one shim.
func groupID(bundle, id string) string {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return id
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(data, &spec) != nil {
		return id
	}
	for _, k := range []string{"io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"} {
		if g := spec.Annotations[k]; g != "" {
			return g
		}
	}
	return id
}

// socketPathIn is containerd's scheme: a file socket in dir (never abstract, CVE-2020-15257)
// named by the hash of containerd's address, the namespace and the group.
func socketPathIn(dir, address, ns, group string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, ns, group)))
	return filepath.Join(dir, fmt.Sprintf("%x", sum))
}

// bootstrapParams returns what containerd 2.3+ sends a starting shim on stdin, nil for what
// older versions send there (the runtime options, which Create gets too) or nothing. As
// containerd's own shims tell them apart: the parameters name this shim's id and namespace.
func bootstrapParams(input []byte, f Flags) *bootapi.BootstrapParams {
	var p bootapi.BootstrapParams
	if len(input) == 0 || proto.Unmarshal(input, &p) != nil || p.InstanceID != f.ID || p.Namespace != f.Namespace {
		return nil
	}
	return &p
}

// socketDirFile, in the bundle, names the socket directory containerd chose (BootstrapParams),
// for the delete action, which gets no parameters.
const socketDirFile = "socket-dir"

// Start is the `start` action: give containerd the address of the shim serving this
// container's group, starting a daemon for it if there is none: as a BootstrapResult when
// containerd sent BootstrapParams (2.3+), else as the plain address 1.6-2.2 read. Nothing else
// may reach stdout or stderr.
func Start(f Flags, stdout io.Writer) error {
	input, err := io.ReadAll(io.LimitReader(os.Stdin, 10<<20))
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	params := bootstrapParams(input, f)
	bundle, err := os.Getwd()
	if err != nil {
		return err
	}
	dir := socketDir
	if params != nil && params.GetSocketDir() != "" {
		dir = filepath.Clean(params.GetSocketDir())
		if err := os.WriteFile(filepath.Join(bundle, socketDirFile), []byte(dir), 0o600); err != nil {
			return err
		}
	}
	path := socketPathIn(dir, f.Address, f.Namespace, groupID(bundle, f.ID))
	addr := "unix://" + path
	reply := func() error {
		if err := os.WriteFile(filepath.Join(bundle, "address"), []byte(addr), 0o600); err != nil {
			return err
		}
		if params == nil {
			_, err := fmt.Fprint(stdout, addr)
			return err
		}
		b, err := proto.Marshal(&bootapi.BootstrapResult{Version: 3, Address: addr, Protocol: "ttrpc"})
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	l, err := listen(path)
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			if c, derr := net.DialTimeout("unix", path, time.Second); derr == nil {
				c.Close() // a shim of the group is alive: share it
				return reply()
			}
			os.Remove(path)
			l, err = listen(path)
		}
		if err != nil {
			return fmt.Errorf("shim socket %s: %w", path, err)
		}
	}
	lf, err := l.File()
	l.Close()
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := startDaemon(f, bundle, lf); err != nil {
		os.Remove(path)
		return err
	}
	return reply()
}

// startDaemon starts the shim's daemon on the socket l, in its own process group, with its
// caller's oom_score_adj plus one, and records its pid in the bundle.
func startDaemon(f Flags, bundle string, l *os.File) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{self, "-namespace", f.Namespace, "-id", f.ID, "-address", f.Address}
	if f.Debug {
		args = append(args, "-debug")
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	logf := openShimLog(bundle, null)
	// One P from the first instruction: containerd passes GOMAXPROCS=2, and shrinking to one
	// later hands the dropped P's cached spans to the central lists, whose blocks the runtime
	// never frees (~900 KB of a ~4 MB shim).
	env := []string{"GOMAXPROCS=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	pid, err := syscall.ForkExec(self, args, &syscall.ProcAttr{
		Dir: bundle, Env: env, Files: []uintptr{null.Fd(), null.Fd(), logf.Fd(), l.Fd()},
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	if logf != null {
		logf.Close()
	}
	if err != nil {
		return fmt.Errorf("start shim daemon: %w", err)
	}
	if err := adjustOOMScore(pid); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return err
	}
	_ = os.WriteFile(filepath.Join(bundle, "shim.pid"), []byte(fmt.Sprint(pid)), 0o600)
	return nil
}

// adjustOOMScore gives the shim its caller's (containerd's) oom_score_adj plus one, as the runc
// shim does: under memory pressure the kernel takes a shim before containerd, never the reverse.
func adjustOOMScore(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", os.Getppid()))
	if err != nil {
		return fmt.Errorf("read the caller's oom_score_adj: %w", err)
	}
	score, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("the caller's oom_score_adj %q: %w", b, err)
	}
	if score++; score > 1000 {
		score = 1000
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(score)), 0); err != nil {
		return fmt.Errorf("set the shim's oom_score_adj to %d: %w", score, err)
	}
	return nil
}

func listen(path string) (*net.UnixListener, error) {
	// The socket is born 0600: a chmod after bind leaves a window in which it has the
	// umask's mode and anyone may connect (the shim starts its server before anything else
	// creates files, so the process-wide umask is ours to change for the bind).
	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		os.Remove(path)
		return nil, err
	}
	return l, nil
}

// openShimLog opens the "log" fifo containerd reads shim logs from, without blocking.
func openShimLog(bundle string, fallback *os.File) *os.File {
	f, err := os.OpenFile(filepath.Join(bundle, "log"), os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fallback
	}
	unix.SetNonblock(int(f.Fd()), false)
	return f
}

// Delete is the `delete` action, run by containerd when the shim is gone: force-delete the
// container with the runtime, unmount its rootfs, report it killed.
func Delete(f Flags, stdout io.Writer) error {
	bundle := f.Bundle
	if bundle == "" {
		bundle, _ = os.Getwd()
	}
	o := shimOptions{Binary: DefaultRuntime, Root: filepath.Join("/run/containerd/husk", f.Namespace)}
	if data, err := os.ReadFile(filepath.Join(bundle, "options.json")); err == nil {
		json.Unmarshal(data, &o)
	}
	rt := &runtimeClient{binary: o.Binary, root: o.Root, logPath: filepath.Join(bundle, "log.json"), systemd: o.Systemd, reaper: newReaper()}
	rt.run([3]*os.File{}, false, nil, "delete", "--force", f.ID)
	unmountAll(filepath.Join(bundle, "rootfs"))
	removeDeadSocket(bundle)
	pid, _ := readPidFile(filepath.Join(bundle, "init.pid"))
	b, err := proto.Marshal(&taskapi.DeleteResponse{
		Pid: uint32(pid), ExitStatus: 128 + uint32(unix.SIGKILL), ExitedAt: timestamppb.Now(),
	})
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}

// removeDeadSocket removes the socket of the dead shim named in the bundle's address file. A
// shim of the same pod group may still serve on it: only a socket nobody answers on goes.
func removeDeadSocket(bundle string) {
	data, err := os.ReadFile(filepath.Join(bundle, "address"))
	if err != nil {
		return
	}
	path := strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://")
	dir := socketDir
	if d, err := os.ReadFile(filepath.Join(bundle, socketDirFile)); err == nil {
		dir = string(d)
	}
	if filepath.Dir(path) != dir {
		return // not a shim socket: the bundle's address file is not ours to trust
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return
	}
	os.Remove(path)
}

// Serve is the daemon: a child subreaper serving the Task API on the listener containerd's
// start action handed over (fd 3) or on f.Socket.
func Serve(f Flags) error {
	// An idle shim is resident for the container's whole life: keep the heap small.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(20)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set child subreaper: %w", err)
	}
	dumpStacksOnSIGUSR1(os.Stderr)
	profileCPUUntilSIGUSR2()
	var l net.Listener
	var err error
	if f.Socket != "" {
		os.Remove(f.Socket)
		l, err = listen(f.Socket)
	} else {
		// FileListener dups the fd; close our *os.File (not the raw fd, or its finalizer would
		// later close whatever connection reuses fd 3).
		lf := os.NewFile(3, "shim-socket")
		l, err = net.FileListener(lf)
		lf.Close()
	}
	if err != nil {
		return fmt.Errorf("shim listener: %w", err)
	}
	srv, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	svc := NewService(f.Namespace, os.Getenv("TTRPC_ADDRESS"), func() {
		// The socket file goes before the Shutdown reply: containerd closes its end and
		// returns from the task's delete without waiting for the shim to exit, and a socket
		// still there then is a leak to it (its TestShimDoesNotLeakSockets).
		removeSocket(l)
		go func() {
			time.Sleep(20 * time.Millisecond) // let the Shutdown reply reach containerd
			close(done)
		}()
	})
	svc.idle = newIdleTrimmer()
	Register(srv, svc)
	return serveUntil(srv, l, done)
}

// serveUntil serves l until done is closed, and returns only once l's socket file is gone.
func serveUntil(srv *ttrpc.Server, l net.Listener, done <-chan struct{}) error {
	go func() {
		<-done
		// The socket goes before the server: once closed, Serve returns and main may exit
		// before anything after the Close runs (a socket left in /run/containerd/s).
		removeSocket(l)
		srv.Close()
	}()
	err := srv.Serve(context.Background(), l)
	removeSocket(l)
	if err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
		return err
	}
	return nil
}

// removeSocket removes the file of a unix listener; no error when it is gone already.
func removeSocket(l net.Listener) {
	if ul, ok := l.(*net.UnixListener); ok {
		if p := ul.Addr().String(); p != "" && p != "@" {
			os.Remove(p)
		}
	}
}
