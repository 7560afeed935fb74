package initproto

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func pair(t *testing.T) (parent, child *Conn) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	parent, child = NewConn(os.NewFile(uintptr(fds[0]), "parent")), NewConn(os.NewFile(uintptr(fds[1]), "child"))
	t.Cleanup(func() { parent.Close(); child.Close() })
	return parent, child
}

// A step that gets another message says which step expected what.
func TestStepErrorsNameTheStep(t *testing.T) {
	parent, child := pair(t)
	go child.Send(Msg{Type: Hooks})
	_, err := parent.WaitNsReady()
	if err == nil || err.Error() != "init protocol: waiting for nsready, got hooks" {
		t.Fatalf("WaitNsReady: %v", err)
	}
	go child.Send(Msg{Type: Seccomp})
	err = parent.WaitReady(Handlers{Hooks: func() error { return nil }})
	if err == nil || err.Error() != "init protocol: waiting for ready, got seccomp" {
		t.Fatalf("WaitReady without a seccomp handler: %v", err)
	}
}

// The create's conversation on the Go init's path, both sides through their steps.
func TestCreateConversation(t *testing.T) {
	parent, child := pair(t)
	type cfg struct {
		InitConfig
		Local string `json:"-"`
	}
	done := make(chan error, 1)
	go func() {
		got := &cfg{Local: "kept"}
		err := child.WaitConfig(got)
		if err == nil && (got.ID != "c1" || got.Mode != ModeCreate || got.Local != "kept") {
			err = errors.New("config: " + got.ID)
		}
		if err == nil {
			err = child.RunHooks()
		}
		if err == nil {
			err = child.SendSeccomp([]byte{1, 2})
		}
		if err == nil {
			err = child.HandOverSeccompFd(7)
		}
		if err == nil {
			err = child.SendReady()
		}
		done <- err
	}()
	if err := parent.SendConfig(&cfg{InitConfig: InitConfig{Mode: ModeCreate, ID: "c1"}}); err != nil {
		t.Fatal(err)
	}
	var steps []string
	err := parent.WaitReady(Handlers{
		Hooks:     func() error { steps = append(steps, "hooks"); return nil },
		Seccomp:   func(b []byte) error { steps = append(steps, "seccomp"); return nil },
		SeccompFd: func(fd int) error { steps = append(steps, "fd"); return nil },
	})
	if err != nil || strings.Join(steps, ",") != "hooks,seccomp,fd" {
		t.Fatalf("WaitReady: %v after %v", err, steps)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// An Error message is the child's error, as is; a closed socket is an unexpected EOF, which
// ends an exec's conversation.
func TestErrorAndEOF(t *testing.T) {
	parent, child := pair(t)
	go child.Fail(errors.New(`exec "nope": no such file`))
	if err := parent.WaitReady(Handlers{}); err == nil || err.Error() != `exec "nope": no such file` {
		t.Fatalf("WaitReady: %v", err)
	}
	child.Close()
	if _, err := parent.Recv(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Recv after close: %v", err)
	}
	if err := parent.WaitExec(Handlers{}); err != nil {
		t.Fatalf("WaitExec after the child's exec: %v", err)
	}
}

// A mount source goes over as an fd with its message; a refusal as the message alone.
func TestMountSource(t *testing.T) {
	parent, child := pair(t)
	go func() {
		parent.WaitReady(Handlers{MountSource: func(index int) error {
			if index == 1 {
				return parent.SendMountSource(-1, errors.New("no such source"))
			}
			f, _ := os.Open("/")
			defer f.Close()
			return parent.SendMountSource(int(f.Fd()), nil)
		}})
	}()
	fd, err := child.AskMountSource(0)
	if err != nil || fd < 0 {
		t.Fatalf("AskMountSource(0): %d %v", fd, err)
	}
	unix.Close(fd)
	if _, err := child.AskMountSource(1); err == nil || err.Error() != "no such source" {
		t.Fatalf("AskMountSource(1): %v", err)
	}
}

func TestBootEncode(t *testing.T) {
	env := Boot{SyncFd: 3, Path: PathCreateFast, NsFds: []int{4, 5}, NsFdsFork: []int{6}, Unshare: 0x20000}.Encode()
	want := "_HUSK_INIT=1 _HUSK_SYNCFD=3 GOMAXPROCS=1 GOGC=off _HUSK_CREATEFAST=1 _HUSK_NSFDS=4,5 _HUSK_UNSHARE=20000 _HUSK_NSFDS_FORK=6"
	if got := strings.Join(env, " "); got != want {
		t.Fatalf("Boot.Encode:\n%s\nwant\n%s", got, want)
	}
}

// What a handler fails with is the parent's own error (HandlerError); what the child reports
// is not.
func TestHandlerErrorsAreTheParents(t *testing.T) {
	parent, child := pair(t)
	go child.Send(Msg{Type: Hooks})
	err := parent.WaitReady(Handlers{Hooks: func() error { return errors.New("hook #0 failed") }})
	var he *HandlerError
	if !errors.As(err, &he) || err.Error() != "hook #0 failed" {
		t.Fatalf("a failing hook: %v (%T), want a HandlerError with the hook's text", err, err)
	}
	go child.Fail(errors.New("mount failed"))
	if err := parent.WaitReady(Handlers{}); errors.As(err, &he) {
		t.Fatalf("the child's error came back as the parent's: %v", err)
	}
}
