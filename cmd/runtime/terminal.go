package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// terminal relays a container's pty to husk's own stdio for foreground run and exec. The
// container side gets one end of a socketpair as its console socket and sends the pty master.
type terminal struct {
	local, remote *os.File
	master        console.Console
	current       console.Console
	wg            sync.WaitGroup
}

func newTerminal() (*terminal, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socketpair: %w", err)
	}
	return &terminal{local: os.NewFile(uintptr(fds[0]), "console-local"), remote: os.NewFile(uintptr(fds[1]), "console-remote")}, nil
}

// receive takes the pty master and starts copying.
func (t *terminal) receive() error {
	t.remote.Close()
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(t.local.Fd()), buf, oob, 0)
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("receive pty master: bad control message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fmt.Errorf("receive pty master: no fd")
	}
	f := os.NewFile(uintptr(fds[0]), "pty-master")
	m, err := console.ConsoleFromFile(f)
	if err != nil {
		return fmt.Errorf("pty master: %w", err)
	}
	// As runc: no \n -> \r\n translation on the container's output, which goes to our own
	// terminal (or a pipe) as the process wrote it.
	if err := console.ClearONLCR(m.Fd()); err != nil {
		return fmt.Errorf("pty master: clear ONLCR: %w", err)
	}
	t.master = m
	if c, err := console.ConsoleFromFile(os.Stdin); err == nil {
		t.current = c
		_ = c.SetRaw()
		t.resize()
	}
	go io.Copy(m, os.Stdin)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		io.Copy(os.Stdout, m)
	}()
	return nil
}

func (t *terminal) resize() {
	if t.current != nil && t.master != nil {
		_ = t.master.ResizeFrom(t.current)
	}
}

// drain waits for the container's last output once it has exited.
func (t *terminal) drain() { t.wg.Wait() }

func (t *terminal) Close() {
	if t.current != nil {
		_ = t.current.Reset()
	}
	if t.master != nil {
		t.master.Close()
	}
	t.local.Close()
	t.remote.Close()
}
