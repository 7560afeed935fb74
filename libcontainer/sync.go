package libcontainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The parent and the init process talk over one socketpair with typed JSON messages, one per
// line. The C constructor in nsenter writes msgError in the same form.
const (
	msgConfig    = "config"     // parent -> init: the initConfig
	msgHooks     = "hooks"      // init -> parent: namespaces and mounts are ready, run createRuntime hooks
	msgHooksDone = "hooks-done" // parent -> init
	msgReady     = "ready"      // init -> parent: blocked on exec.fifo (create) or about to exec (exec)
	msgError     = "error"      // init -> parent: setup failed; Message says why
	msgPid       = "pid"        // nsenter -> parent: the pid of the process forked into a joined pid namespace
	msgSeccomp   = "seccomp"    // init -> parent: the compiled seccomp filter, kept for exec
	// init -> parent: a filter with SCMP_ACT_NOTIFY is loaded; Pid is the listener's fd number
	// in the init, which the parent takes with pidfd_getfd and sends to linux.seccomp.listenerPath.
	msgSeccompFd     = "seccomp-fd"
	msgSeccompFdDone = "seccomp-fd-done" // parent -> init: the agent has the listener
	// init -> parent: Pid is the index of a bind mount whose source lies in the rootfs, which
	// the parent clones now, in the init's mount namespace, so the earlier mounts are in it.
	msgMountSource = "mount-source"
	// parent -> init: the clone, as an SCM_RIGHTS fd with this message; Message says why not.
	msgMountSourceFd = "mount-source-fd"
)

// initConfig is what the parent sends the init process once it sits in its cgroup.
type initConfig struct {
	Mode            string          `json:"mode"` // "create" or "exec"
	ID              string          `json:"id"`
	RawSpec         json.RawMessage `json:"spec"`              // the spec, passed on as JSON: never re-encoded
	Spec            *rspec.Spec     `json:"-"`                 // RawSpec decoded, by the init
	Process         *rspec.Process  `json:"process,omitempty"` // exec's process; the spec's when nil
	ExtraEnv        []string        `json:"extra_env,omitempty"`
	Rootfs          string          `json:"rootfs,omitempty"`
	Bundle          string          `json:"bundle,omitempty"`
	NoPivot         bool            `json:"no_pivot,omitempty"`
	SharedMounts    bool            `json:"shared_mounts,omitempty"` // no mount namespace: see mountns_linux.go
	NoNewKeyring    bool            `json:"no_new_keyring,omitempty"`
	HasRuntimeHooks bool            `json:"has_runtime_hooks,omitempty"`
	FifoFd          int             `json:"fifo_fd,omitempty"`
	ConsoleFd       int             `json:"console_fd,omitempty"`
	PreserveFds     int             `json:"preserve_fds,omitempty"`
	MountFds        map[string]int  `json:"mount_fds,omitempty"` // mount index -> a detached clone of its source (open_tree)
	// Bind mounts (by index) whose clone the init asks for when it gets to them (msgMountSource).
	LateMountSources []int `json:"late_mount_sources,omitempty"`

	seccompBPF []byte   // the init's compiled filter, once compiled
	initPid    int      // set when husk create builds the rootfs for the init (createfast.go)
	procCtx    *os.File // then: a procfs context in the init's pid namespace
	// readonlyTmpfs are the read-only tmpfs mounts, mounted writable and made read-only once
	// the rootfs is built.
	readonlyTmpfs []readonlyMount
	seccompLoaded bool      // the filter is on this thread already
	pipe          *syncPipe // to the parent, for LateMountSources
}

// readonlyMount is a mount made writable and made read-only at the end, with its other flags.
type readonlyMount struct {
	dest  string
	flags uintptr
}

type syncMsg struct {
	Type    string      `json:"type"`
	Message string      `json:"message,omitempty"`
	Config  *initConfig `json:"config,omitempty"`
	Pid     int         `json:"pid,omitempty"`
	Data    []byte      `json:"data,omitempty"`
}

type syncPipe struct {
	f   *os.File
	dec *json.Decoder
}

func newSyncPipe(f *os.File) *syncPipe {
	return &syncPipe{f: f, dec: json.NewDecoder(f)}
}

func (p *syncPipe) send(m syncMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = p.f.Write(append(b, '\n'))
	return err
}

// recv reads the next message; an error message from the other side becomes a Go error.
func (p *syncPipe) recv() (syncMsg, error) {
	var m syncMsg
	if err := p.dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return m, io.ErrUnexpectedEOF
		}
		return m, err
	}
	if m.Type == msgError {
		return m, errors.New(m.Message)
	}
	return m, nil
}

// expect reads one message and checks its type.
func (p *syncPipe) expect(typ string) (syncMsg, error) {
	m, err := p.recv()
	if err != nil {
		return m, err
	}
	if m.Type != typ {
		return m, fmt.Errorf("protocol error: got %q, want %q", m.Type, typ)
	}
	return m, nil
}

func (p *syncPipe) Close() error { return p.f.Close() }

// sendFd sends m with fd attached (SCM_RIGHTS), in one message.
func (p *syncPipe) sendFd(m syncMsg, fd int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return unix.Sendmsg(int(p.f.Fd()), append(b, '\n'), unix.UnixRights(fd), nil, 0)
}

// recvFd reads the reply to a request that sendFd answers: the message and its fd (-1 if none
// came). The decoder must hold nothing unread, as it does after the request (nothing else is
// in flight): an fd travels with the bytes it was sent with, and a plain read drops it.
func (p *syncPipe) recvFd() (syncMsg, int, error) {
	var m syncMsg
	if rest, _ := io.ReadAll(p.dec.Buffered()); len(bytes.TrimSpace(rest)) > 0 {
		return m, -1, fmt.Errorf("protocol error: %d unread bytes before an fd", len(rest))
	}
	buf := make([]byte, 0, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	fd := -1
	for !bytes.HasSuffix(buf, []byte("\n")) {
		chunk := make([]byte, 4096)
		n, oobn, _, _, err := unix.Recvmsg(int(p.f.Fd()), chunk, oob, unix.MSG_CMSG_CLOEXEC)
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
