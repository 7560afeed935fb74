package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
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

// TestRunForegroundTerminal: `husk run` of a terminal container relays the pty to husk's own
// terminal, as `runc run` does for a user at a shell.
func TestRunForegroundTerminal(t *testing.T) {
	b := newBundle(t, "sh", "-c", "tty; read x; echo got-$x; exit 5")
	b.spec.Process.Terminal = true
	b.write(t)
	pty, slave, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	sf, _ := os.OpenFile(slave, os.O_RDWR, 0)
	cmd := exec.Command(huskBin, "--root", b.root, "run", uniqueID(t))
	cmd.Dir = b.dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = sf, sf, sf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := pty.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				break
			}
		}
		close(done)
	}()
	time.Sleep(500 * time.Millisecond)
	pty.Write([]byte("hello\r"))
	err = cmd.Wait()
	pty.Close()
	<-done
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
		t.Fatalf("run with a terminal: %v, output %q", err, out.String())
	}
	if s := out.String(); !strings.Contains(s, "/dev/pts/0") || !strings.Contains(s, "got-hello") {
		t.Fatalf("terminal output %q", s)
	}
}

// TestRunForwardsSignals: signals sent to a foreground `husk run` or `husk exec` reach the
// container's process: the usual termination signals and the rest (SIGALRM here), which husk
// registers in the background while it creates, before the process runs.
func TestRunForwardsSignals(t *testing.T) {
	script := "trap 'echo got-alrm' ALRM; trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done"
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	long := uniqueID(t)
	b.must(t, "run", "-d", long)
	for _, args := range [][]string{{"run", uniqueID(t) + "-run"}, {"exec", long, "sh", "-c", script}} {
		if args[0] == "run" {
			b.spec.Process.Args = []string{"sh", "-c", script}
			b.write(t)
		}
		cmd := exec.Command(huskBin, append([]string{"--root", b.root}, args...)...)
		cmd.Dir = b.dir
		out := tempFile(t)
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100 && !strings.Contains(readFile(out), "ready"); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGALRM)
		for i := 0; i < 100 && !strings.Contains(readFile(out), "got-alrm"); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 || !strings.Contains(readFile(out), "got-alrm\ngot-term") {
			t.Fatalf("husk %s: SIGALRM then SIGTERM: %v, output %q", args[0], err, readFile(out))
		}
	}
	b.husk(t, "delete", "-f", long)
}

// TestTerminalOutputIsNotTranslated: a foreground run with terminal: true passes the process's
// output on as written: husk's side of the pty clears ONLCR, as runc does (runc 1.5's suite
// reads exact lines; husk printed "\r\n" for every "\n", seen through a terminal as "\r\r\n").
func TestTerminalOutputIsNotTranslated(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed")
	}
	b := newBundle(t, "printf", "one\\ntwo\\n")
	b.spec.Process.Terminal = true
	b.write(t)
	cmd := exec.Command("script", "-q", "-e", "-c", fmt.Sprintf("%s --root %s run %s", huskBin, b.root, uniqueID(t)), "/dev/null")
	cmd.Dir = b.dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run under script: %v: %q", err, out)
	}
	// script's own terminal turns each "\n" into "\r\n" once; a second translation by the
	// container's pty would make it "\r\r\n".
	if strings.Contains(string(out), "\r\r\n") || !strings.Contains(string(out), "one\r\ntwo\r\n") {
		t.Fatalf("output through the container's terminal: %q", out)
	}
}
