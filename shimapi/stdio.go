package shimapi

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// procIO is a process's stdio as the shim sets it up. Without a terminal the container gets the
// client's fifos (or files, or logger pipes) directly: no copying goroutine, no buffer. The shim
// keeps one read-write fd per fifo so the container never sees a premature EOF or EPIPE (closing
// the stdin keepalive is CloseIO), and opens an output fifo only once the client reads it.
type procIO struct {
	stdin, stdout, stderr *os.File // given to the runtime; closed by the shim once the process holds them
	stdinKeep             *os.File
	keep                  []*os.File
	terminal              bool
	sockDir               string
	listener              *net.UnixListener
	masterc               chan masterResult
	master                console.Console
	epoller               *console.Epoller
	copies                sync.WaitGroup
	stdinPath, stdoutPath string
	loggerOut             *os.File // with a terminal: the logger's stdout, fed from the pty master
	mu                    sync.Mutex
}

type masterResult struct {
	f   *os.File
	err error
}

// openStdin opens a client's stdin fifo: a read-write keepalive first (never blocks), then the
// container's read end, reopened through the keepalive so it cannot block either.
func openStdin(path string) (*os.File, *os.File, error) {
	keep, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open fifo %s: %w", path, err)
	}
	end, err := reopen(keep, os.O_RDONLY)
	if err != nil {
		keep.Close()
		return nil, nil, fmt.Errorf("open fifo %s: %w", path, err)
	}
	return keep, end, nil
}

// reopen opens f's file again through /proc/self/fd, without File.Fd: that would turn f
// blocking and take it out of Go's poller, and the drain of an exited process's stdin keepalive
// must end when the keepalive is closed.
func reopen(f *os.File, flag int) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var reopened *os.File
	if cerr := rc.Control(func(fd uintptr) {
		reopened, err = os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), flag|unix.O_CLOEXEC, 0)
	}); cerr != nil {
		return nil, cerr
	}
	return reopened, err
}

// openOutput opens stdout or stderr from a containerd stdio URI: a fifo path, file:// or
// binary:// (handled by the caller).
func (p *procIO) openOutput(uri string) (*os.File, error) {
	if uri == "" {
		return nil, nil
	}
	u, err := url.Parse(uri)
	if err == nil && u.Scheme == "file" {
		if err := os.MkdirAll(filepath.Dir(u.Path), 0o755); err != nil {
			return nil, err
		}
		return os.OpenFile(u.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o640)
	}
	path := uri
	if err == nil && u.Scheme == "fifo" {
		path = u.Path
	}
	end, err := openWhenRead(path, readerWait)
	if err != nil {
		return nil, err
	}
	keep, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", end.Fd()), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		end.Close()
		return nil, fmt.Errorf("open fifo %s: %w", path, err)
	}
	p.keep = append(p.keep, keep)
	return end, nil
}

// readerWait bounds the wait for a client's reader of an output fifo. Clients start opening
// it before they ask for the process (containerd's fifo package opens in the background), so
// it is there at once or within milliseconds; one that never comes is a broken client.
const readerWait = 30 * time.Second

// openWhenRead opens the container's end of an output fifo once the client's reader is there,
// as the runc shim's blocking write open does. The shim's read-write keepalive alone would not
// wait: a process that exits before the client's background open runs takes the fifo's last
// writer with it, and that open then blocks for good (a CRI exec whose output never ends).
func openWhenRead(path string, wait time.Duration) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ENXIO { // no reader yet
		fd, err = waitForReader(path, wait)
	}
	if err != nil {
		return nil, fmt.Errorf("open fifo %s: %w", path, err)
	}
	// The container's output blocks as a pipe's does: O_NONBLOCK is the open file's, which it shares.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open fifo %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// waitForReader opens path write-only, blocked in open(2) until a reader comes, at most wait.
// It opens through an O_PATH handle, so the reader of the shim's own that releases a blocked
// open at the end reaches the same fifo even if the client has removed or replaced its path.
func waitForReader(path string, wait time.Duration) (int, error) {
	h, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(h)
	via := fmt.Sprintf("/proc/self/fd/%d", h)
	type opened struct {
		fd  int
		err error
	}
	done := make(chan opened, 1)
	go func() {
		fd, err := unix.Open(via, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		done <- opened{fd, err}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case o := <-done:
		return o.fd, o.err
	case <-timer.C:
	}
	r, err := unix.Open(via, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if o := <-done; o.err == nil {
		unix.Close(o.fd)
	}
	if err == nil {
		unix.Close(r)
	}
	return -1, fmt.Errorf("no reader opened it within %v", wait)
}

func newProcIO(r *reaper, stdin, stdout, stderr string, terminal bool, ns, id string) (_ *procIO, err error) {
	p := &procIO{terminal: terminal, stdinPath: stdin, stdoutPath: stdout}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if isLoggerURI(stdout) {
		out, errW, err := p.startLogger(r, stdout, ns, id)
		if err != nil {
			return nil, err
		}
		if terminal {
			// The terminal's output, copied from the pty master once the process runs, is the
			// logger's stdout; a terminal has no stderr, so the logger's ends at once.
			p.loggerOut = out
			errW.Close()
		} else {
			p.stdout, p.stderr = out, errW
		}
	}
	if terminal {
		dir, err := os.MkdirTemp("", "husk-pty")
		if err != nil {
			return nil, err
		}
		p.sockDir = dir
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "pty.sock"), Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("console socket: %w", err)
		}
		p.listener = l
		p.masterc = make(chan masterResult, 1)
		go p.acceptMaster()
		return p, nil
	}
	if stdin != "" {
		keep, end, err := openStdin(stdin)
		if err != nil {
			return nil, err
		}
		p.stdinKeep, p.stdin = keep, end
	}
	if p.stdout == nil {
		if p.stdout, err = p.openOutput(stdout); err != nil {
			return nil, err
		}
		if stderr == stdout && strings.HasPrefix(stdout, "file://") {
			p.stderr = p.stdout
		} else if p.stderr, err = p.openOutput(stderr); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// isLoggerURI reports whether a stdio URI names a logger binary: binary:// (ready when it
// closes fd 5 or writes to it) or binary-v2:// (containerd 2.3+: ready only once it has
// written a byte to fd 5, so a logger that dies at start is an error, not a silent loss).
func isLoggerURI(uri string) bool {
	return strings.HasPrefix(uri, "binary://") || strings.HasPrefix(uri, "binary-v2://")
}

// startLogger runs a binary:// or binary-v2:// logger with the container's output on its fds
// 3 and 4 and waits for it to be ready; it returns the write ends of those two pipes.
func (p *procIO) startLogger(r *reaper, uri, ns, id string) (out, errOut *os.File, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, nil, fmt.Errorf("stdio %q: %w", uri, err)
	}
	var fds []*os.File
	defer func() {
		for _, f := range fds {
			f.Close()
		}
	}()
	pipe := func() (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err == nil {
			fds = append(fds, r, w)
		}
		return r, w, err
	}
	outR, outW, err := pipe()
	if err != nil {
		return nil, nil, err
	}
	errR, errW, err := pipe()
	if err != nil {
		return nil, nil, err
	}
	waitR, waitW, err := pipe()
	if err != nil {
		return nil, nil, err
	}
	args := []string{u.Path}
	for k, vs := range u.Query() {
		for _, v := range vs {
			if v == "" {
				args = append(args, k)
			} else {
				args = append(args, k, v)
			}
		}
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	fds = append(fds, null)
	env := append(os.Environ(), "CONTAINER_ID="+id, "CONTAINER_NAMESPACE="+ns)
	r.mu.Lock()
	pid, err := forkLogger(args, env, []uintptr{null.Fd(), null.Fd(), null.Fd(), outR.Fd(), errR.Fd(), waitW.Fd()})
	r.mu.Unlock()
	if err != nil {
		return nil, nil, fmt.Errorf("start logger %q: %w", u.Path, err)
	}
	// The logger's copy is the only one left: its exit is an EOF here. (A second Close of it
	// below, on an error, is a no-op of os.File.)
	waitW.Close()
	defer waitR.Close()
	buf := make([]byte, 1)
	n, err := waitR.Read(buf)
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("logger %q: wait for it to be ready: %w", u.Path, err)
	}
	if u.Scheme == "binary-v2" && n == 0 {
		unix.Kill(pid, unix.SIGKILL) // closed fd 5 without a word: not a logger to trust with output
		return nil, nil, fmt.Errorf("logger %q did not signal ready (binary-v2 wants a byte on fd 5): it may have crashed or exited at start", u.Path)
	}
	fds = nil
	outR.Close()
	errR.Close()
	null.Close()
	return outW, errW, nil
}

// acceptMaster receives the pty master the runtime sends to the console socket.
func (p *procIO) acceptMaster() {
	conn, err := p.listener.AcceptUnix()
	if err != nil {
		p.masterc <- masterResult{err: err}
		return
	}
	defer conn.Close()
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		p.masterc <- masterResult{err: err}
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		p.masterc <- masterResult{err: fmt.Errorf("console socket: bad message")}
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		p.masterc <- masterResult{err: fmt.Errorf("console socket: no fd")}
		return
	}
	p.masterc <- masterResult{f: os.NewFile(uintptr(fds[0]), "pty-master")}
}

func (p *procIO) consoleSocket() string {
	if p.listener == nil {
		return ""
	}
	return p.listener.Addr().String()
}

// chown gives the container's ends of its stdio to uid:gid (the IoUid/IoGid options: a
// user-namespaced pod's root is a host id, and a process that reopens /dev/stdout needs to own
// it). -1 leaves one unchanged.
func (p *procIO) chown(uid, gid int) error {
	if uid < 0 && gid < 0 {
		return nil
	}
	for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
		if f == nil {
			continue
		}
		if err := unix.Fchown(int(f.Fd()), uid, gid); err != nil {
			return fmt.Errorf("chown stdio to %d:%d: %w", uid, gid, err)
		}
	}
	return nil
}

// runtimeStdio is what the runtime command (and so the container process) gets.
func (p *procIO) runtimeStdio() [3]*os.File { return [3]*os.File{p.stdin, p.stdout, p.stderr} }

// started is called once the runtime has handed the stdio to the process: the shim drops its
// copies of the container ends and, with a terminal, starts copying between pty and fifos.
func (p *procIO) started(ep func() (*console.Epoller, error)) error {
	for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
		if f != nil {
			f.Close()
		}
	}
	p.stdin, p.stdout, p.stderr = nil, nil, nil
	if !p.terminal {
		return nil
	}
	res := <-p.masterc
	p.listener.Close()
	os.RemoveAll(p.sockDir)
	if res.err != nil {
		return fmt.Errorf("receive pty master: %w", res.err)
	}
	cons, err := console.ConsoleFromFile(res.f)
	if err != nil {
		return err
	}
	epoller, err := ep()
	if err != nil {
		cons.Close()
		return err
	}
	m, err := epoller.Add(cons)
	if err != nil {
		cons.Close()
		return fmt.Errorf("pty master: %w", err)
	}
	p.master, p.epoller = m, epoller
	if p.stdinPath != "" {
		keep, in, err := openStdin(p.stdinPath)
		if err != nil {
			return err
		}
		p.stdinKeep = keep
		go func() {
			io.Copy(m, in)
			in.Close()
		}()
	}
	if p.stdoutPath != "" {
		out := p.loggerOut
		p.loggerOut = nil
		if out == nil {
			if out, err = p.openOutput(p.stdoutPath); err != nil {
				return err
			}
		}
		p.copies.Add(1)
		go func() {
			defer p.copies.Done()
			io.Copy(out, m)
			out.Close()
		}()
	}
	return nil
}

func (p *procIO) resize(w, h uint32) error {
	if p.master == nil {
		return fmt.Errorf("process has no terminal")
	}
	return p.master.Resize(console.WinSize{Width: uint16(w), Height: uint16(h)})
}

// closeStdin gives the process EOF on stdin once the client has closed its end too.
func (p *procIO) closeStdin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stdinKeep != nil {
		p.stdinKeep.Close()
		p.stdinKeep = nil
	}
}

// drainStdin keeps stdin's fifo open once the process is gone, reading and discarding what
// comes, until CloseIO or Delete closes it: containerd opens its stdin writer in the background
// (as it opens its output readers), and an open that runs after the exit would otherwise find
// no reader and wait in open(2) for good, holding up the client's attach and so the exec. (The
// runc shim's stdin copy likewise keeps its reader until the client's stream ends.)
func (p *procIO) drainStdin() {
	p.mu.Lock()
	keep := p.stdinKeep
	p.mu.Unlock()
	if keep != nil {
		go io.Copy(io.Discard, keep) // ends when closeStdin or Close closes keep
	}
}

// exited drops the shim's output keepalives once the process is gone, so the client reading the
// fifos sees EOF after the last byte (unless a background child still holds the output), and
// drains stdin until the client is done with it.
func (p *procIO) exited() {
	p.drainStdin()
	if p.master != nil {
		// An epoll console waits out EIO as if the slave might come back: shutting it down makes
		// the copy return EOF once the last output is read.
		if ec, ok := p.master.(*console.EpollConsole); ok && p.epoller != nil {
			ec.Shutdown(p.epoller.CloseConsole)
		}
		p.copies.Wait()
	}
	p.mu.Lock()
	for _, f := range p.keep {
		f.Close()
	}
	p.keep = nil
	p.mu.Unlock()
}

// Close releases everything once the process has exited: its last output has been copied.
func (p *procIO) Close() {
	p.closeStdin()
	if p.master != nil {
		p.copies.Wait()
		p.master.Close()
	}
	p.mu.Lock()
	for _, f := range append(p.keep, p.stdin, p.stdout, p.stderr, p.loggerOut) {
		if f != nil {
			f.Close()
		}
	}
	p.keep = nil
	p.mu.Unlock()
	if p.listener != nil {
		p.listener.Close()
	}
	if p.sockDir != "" {
		os.RemoveAll(p.sockDir)
	}
}
