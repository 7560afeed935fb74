package integration

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// recvMaster accepts one connection on a console socket and returns the pty master it carries.
func recvMaster(t *testing.T, l *net.UnixListener) *os.File {
	t.Helper()
	l.SetDeadline(time.Now().Add(20 * time.Second))
	c, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master")
}

func TestConsoleSocket(t *testing.T) {
	b := newBundle(t, "sh", "-c", "tty; ls -l /dev/console | cut -c1; stty size; echo done")
	b.spec.Process.Terminal = true
	b.spec.Process.ConsoleSize = nil
	b.write(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	id := uniqueID(t)
	masterc := make(chan *os.File, 1)
	go func() { masterc <- recvMaster(t, l) }()
	b.must(t, "create", "--console-socket", sock, id)
	defer b.husk(t, "delete", "-f", id)
	master := <-masterc
	defer master.Close()
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 111})
	b.must(t, "start", id)
	var out bytes.Buffer
	buf := make([]byte, 4096)
	master.SetReadDeadline(time.Now().Add(20 * time.Second))
	for !strings.Contains(out.String(), "done") {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"/dev/pts/0\n", "c\n", "33 111\n", "done"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in tty output %q", want, got)
		}
	}
}
