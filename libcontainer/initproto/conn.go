package initproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Conn is one side of the sync socket. Its methods are the protocol's steps: the parent's
// (SendConfig, WaitPid, WaitNsReady, WaitReady, WaitExec) and the Go init's (WaitConfig,
// RunHooks, SendSeccomp, HandOverSeccompFd, AskMountSource, SendReady, Fail).
type Conn struct {
	f   *os.File
	dec *json.Decoder
}

// NewConn wraps the sync socket f.
func NewConn(f *os.File) *Conn {
	return &Conn{f: f, dec: json.NewDecoder(f)}
}

// File is the socket, for the constructor's requests and for closing on exec.
func (c *Conn) File() *os.File { return c.f }

func (c *Conn) Close() error { return c.f.Close() }

// Send writes one message.
func (c *Conn) Send(m Msg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = c.f.Write(append(b, '\n'))
	return err
}

// Recv reads the next message; an Error message from the other side becomes a Go error
// carrying its text as is, and a closed socket io.ErrUnexpectedEOF.
func (c *Conn) Recv() (Msg, error) {
	return c.recvInto(nil)
}

func (c *Conn) recvInto(config any) (Msg, error) {
	m := Msg{Config: config}
	if err := c.dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return m, io.ErrUnexpectedEOF
		}
		return m, err
	}
	if m.Type == Error {
		return m, errors.New(m.Message)
	}
	return m, nil
}

// StepError is a message other than the one a step waits for.
type StepError struct {
	Step string  // what the side was doing, "waiting for nsready"
	Got  MsgType // what came
}

func (e *StepError) Error() string {
	return fmt.Sprintf("init protocol: %s, got %s", e.Step, e.Got)
}

// expect reads one message of type t, for the step named by what.
func (c *Conn) expect(t MsgType, config any) (Msg, error) {
	m, err := c.recvInto(config)
	if err != nil {
		return m, err
	}
	if m.Type != t {
		return m, &StepError{Step: "waiting for " + string(t), Got: m.Type}
	}
	return m, nil
}

// The parent's steps.

// SendConfig sends the Go init its request.
func (c *Conn) SendConfig(cfg any) error {
	return c.Send(Msg{Type: Config, Config: cfg})
}

// SendRequest sends the constructor a request (ExecRequest.Encode, CreateRequest.Encode).
func (c *Conn) SendRequest(req []byte) error {
	_, err := c.f.Write(req)
	return err
}

// WaitPid waits for the pid of the process the constructor forked into a pid namespace.
func (c *Conn) WaitPid() (int, error) {
	m, err := c.expect(Pid, nil)
	return m.Pid, err
}

// WaitNsReady waits for the create fast path's child to have made its namespaces; it returns
// the child's fd of a procfs context, -1 if it made none.
func (c *Conn) WaitNsReady() (int, error) {
	m, err := c.expect(NsReady, nil)
	return m.Pid, err
}

// Handlers answer the requests a child may make before it is ready. A nil handler makes its
// request a protocol error; a handler's own failure comes back as a *HandlerError, told apart
// from the child's.
type Handlers struct {
	Hooks       func() error           // run the prestart and createRuntime hooks; HooksDone follows
	Seccomp     func(bpf []byte) error // keep the child's compiled filter
	SeccompFd   func(fd int) error     // take listener fd from the child and hand it to the agent; SeccompFdDone follows
	MountSource func(index int) error  // answer with SendMountSource
}

// WaitReady serves the create's requests until the child says Ready.
func (c *Conn) WaitReady(h Handlers) error {
	for {
		m, err := c.Recv()
		if err != nil {
			return err
		}
		if m.Type == Ready {
			return nil
		}
		if err := c.serve(m, h, "waiting for ready"); err != nil {
			return err
		}
	}
}

// WaitExec serves an exec's requests until the child closes its end by exec'ing.
func (c *Conn) WaitExec(h Handlers) error {
	for {
		m, err := c.Recv()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.serve(m, h, "waiting for the exec"); err != nil {
			return err
		}
	}
}

// HandlerError is the failure of what the parent did for the child (a Handlers function).
type HandlerError struct{ Err error }

func (e *HandlerError) Error() string { return e.Err.Error() }
func (e *HandlerError) Unwrap() error { return e.Err }

func handled(err error) error {
	if err != nil {
		return &HandlerError{err}
	}
	return nil
}

func (c *Conn) serve(m Msg, h Handlers, step string) error {
	switch {
	case m.Type == Hooks && h.Hooks != nil:
		if err := h.Hooks(); err != nil {
			return handled(err)
		}
		return c.Send(Msg{Type: HooksDone})
	case m.Type == Seccomp && h.Seccomp != nil:
		return handled(h.Seccomp(m.Data))
	case m.Type == SeccompFd && h.SeccompFd != nil:
		if err := h.SeccompFd(m.Pid); err != nil {
			return handled(err)
		}
		return c.Send(Msg{Type: SeccompFdDone})
	case m.Type == MountSource && h.MountSource != nil:
		return handled(h.MountSource(m.Pid))
	}
	return &StepError{Step: step, Got: m.Type}
}

// SendMountSource answers MountSource with the clone of the source (fd), or with why not.
func (c *Conn) SendMountSource(fd int, why error) error {
	if why != nil {
		return c.Send(Msg{Type: MountSourceFd, Message: why.Error()})
	}
	return c.sendFd(Msg{Type: MountSourceFd}, fd)
}

// The Go init's steps.

// WaitConfig reads the request into cfg.
func (c *Conn) WaitConfig(cfg any) error {
	_, err := c.expect(Config, cfg)
	return err
}

// RunHooks asks the parent to run the createRuntime hooks and waits until it has.
func (c *Conn) RunHooks() error {
	if err := c.Send(Msg{Type: Hooks}); err != nil {
		return err
	}
	_, err := c.expect(HooksDone, nil)
	return err
}

// SendSeccomp hands the parent the compiled filter.
func (c *Conn) SendSeccomp(bpf []byte) error {
	return c.Send(Msg{Type: Seccomp, Data: bpf})
}

// HandOverSeccompFd tells the parent the listener's fd number and waits until it has it.
func (c *Conn) HandOverSeccompFd(fd int) error {
	if err := c.Send(Msg{Type: SeccompFd, Pid: fd}); err != nil {
		return err
	}
	_, err := c.expect(SeccompFdDone, nil)
	return err
}

// AskMountSource asks the parent for the clone of bind mount index's source.
func (c *Conn) AskMountSource(index int) (int, error) {
	if err := c.Send(Msg{Type: MountSource, Pid: index}); err != nil {
		return -1, err
	}
	m, fd, err := c.recvFd()
	if err != nil {
		return -1, err
	}
	if m.Type != MountSourceFd {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, &StepError{Step: "waiting for " + string(MountSourceFd), Got: m.Type}
	}
	if m.Message != "" || fd < 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, errors.New(m.Message)
	}
	return fd, nil
}

// SendReady says the child is set up.
func (c *Conn) SendReady() error { return c.Send(Msg{Type: Ready}) }

// Fail tells the parent why the child gives up.
func (c *Conn) Fail(err error) { _ = c.Send(Msg{Type: Error, Message: err.Error()}) }

// sendFd sends m with fd attached (SCM_RIGHTS), in one message.
func (c *Conn) sendFd(m Msg, fd int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return unix.Sendmsg(int(c.f.Fd()), append(b, '\n'), unix.UnixRights(fd), nil, 0)
}

// recvFd reads the reply to a request that sendFd answers: the message and its fd (-1 if none
// came). The decoder must hold nothing unread, as it does after the request (nothing else is
// in flight): an fd travels with the bytes it was sent with, and a plain read drops it.
func (c *Conn) recvFd() (Msg, int, error) {
	var m Msg
	if rest, _ := io.ReadAll(c.dec.Buffered()); len(bytes.TrimSpace(rest)) > 0 {
		return m, -1, fmt.Errorf("init protocol: %d unread bytes before an fd", len(rest))
	}
	buf := make([]byte, 0, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	fd := -1
	for !bytes.HasSuffix(buf, []byte("\n")) {
		chunk := make([]byte, 4096)
		n, oobn, _, _, err := unix.Recvmsg(int(c.f.Fd()), chunk, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return m, fd, err
		}
		if n == 0 {
			return m, fd, io.ErrUnexpectedEOF
		}
		if oobn > 0 && fd < 0 {
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) > 0 {
				if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) > 0 {
					fd = fds[0]
					for _, extra := range fds[1:] {
						unix.Close(extra)
					}
				}
			}
		}
		buf = append(buf, chunk[:n]...)
	}
	if err := json.Unmarshal(buf, &m); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return m, -1, err
	}
	return m, fd, nil
}
