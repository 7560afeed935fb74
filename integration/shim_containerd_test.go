package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
)

// startContainerdWithShim starts a private containerd that finds containerd-shim-husk-v2 (and
// husk) on its PATH.
func startContainerdWithShim(t *testing.T) *containerd {
	t.Helper()
	return startContainerdWith(t, containerdOpts{path: shimDir(t)})
}

// shimDir is the directory holding the husk shim, with husk beside it as the shim expects.
func shimDir(t *testing.T) string {
	dir := filepath.Dir(shimBinary(t))
	if _, err := os.Stat(filepath.Join(dir, "husk")); err != nil {
		os.Symlink(huskBin, filepath.Join(dir, "husk"))
	}
	return dir
}

func (c *containerd) waitTaskStatus(t *testing.T, id, status string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		out, _ := c.ctr(t, "task", "ls")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == id && f[2] == status {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	out, _ := c.ctr(t, "task", "ls")
	t.Fatalf("task %s never reached %s:\n%s", id, status, out)
}

func TestContainerdRunsHuskShim(t *testing.T) {
	b := newBundle(t)
	c := startContainerdWithShim(t)
	events := exec.Command(c.ctrBin, "--address", c.sock, "events")
	var evOut strings.Builder
	events.Stdout = &evOut
	events.Start()
	defer events.Process.Kill()
	run := func(flag string) []string {
		return []string{"run", flag, "--runtime", "io.containerd.husk.v2", "--env", "PATH=/bin", "--rootfs", b.rootfs()}
	}
	out, code := c.ctr(t, append(run("--rm"), "h-exit", "sh", "-c", "echo hello through the husk shim; exit 3")...)
	if code != 3 || !strings.Contains(out, "hello through the husk shim") {
		t.Fatalf("ctr run: exit %d, %q", code, out)
	}
	if out, code := c.ctr(t, append(run("-d"), "h-long", "sleep", "1000")...); code != 0 {
		t.Fatalf("run -d: %s", out)
	}
	out, code = c.ctr(t, "task", "exec", "--exec-id", "e1", "h-long", "sh", "-c", "echo exec-ok; exit 5")
	if code != 5 || !strings.Contains(out, "exec-ok") {
		t.Fatalf("task exec: %d %q", code, out)
	}
	// exec with a terminal: ctr needs a real tty of its own.
	pty, slave, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	tty := exec.Command(c.ctrBin, "--address", c.sock, "task", "exec", "-t", "--exec-id", "e2", "h-long", "sh", "-c", "tty; exit 4")
	sf, _ := os.OpenFile(slave, os.O_RDWR, 0)
	tty.Stdin, tty.Stdout, tty.Stderr = sf, sf, sf
	tty.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := tty.Start(); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	var ttyOut []byte
	readDone := make(chan struct{})
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := pty.Read(buf)
			ttyOut = append(ttyOut, buf[:n]...)
			if err != nil {
				break
			}
		}
		close(readDone)
	}()
	err = tty.Wait()
	pty.Close()
	<-readDone
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 || !strings.Contains(string(ttyOut), "/dev/pts/") {
		t.Errorf("exec -t: %v, output %q", err, ttyOut)
	}
	if out, code := c.ctr(t, "task", "pause", "h-long"); code != 0 {
		t.Fatalf("pause: %s", out)
	}
	c.waitTaskStatus(t, "h-long", "PAUSED")
	c.ctr(t, "task", "resume", "h-long")
	c.waitTaskStatus(t, "h-long", "RUNNING")
	if out, code := c.ctr(t, "task", "ps", "h-long"); code != 0 || len(strings.Fields(out)) < 3 {
		t.Errorf("task ps: %q", out)
	}
	if out, code := c.ctr(t, "task", "metrics", "h-long"); code != 0 || !strings.Contains(out, "memory") {
		t.Errorf("task metrics: %d %q", code, out)
	}
	c.ctr(t, "task", "kill", "-s", "KILL", "h-long")
	c.waitTaskStatus(t, "h-long", "STOPPED")
	if out, code := c.ctr(t, "task", "delete", "h-long"); code != 0 {
		t.Fatalf("task delete: %s", out)
	}
	c.ctr(t, "container", "delete", "h-long")
	time.Sleep(300 * time.Millisecond)
	ev := evOut.String()
	for _, topic := range []string{"/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit", "/tasks/paused", "/tasks/resumed", "/tasks/delete"} {
		if !strings.Contains(ev, topic) {
			t.Errorf("ctr events missed %s", topic)
		}
	}
	// The shims shut down with their last container.
	for i := 0; i < 100 && shimCount(t, c.sock) > 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if n := shimCount(t, c.sock); n != 0 {
		t.Errorf("%d husk shims still running", n)
	}
}

// shimCount counts the husk shims serving the containerd at address.
func shimCount(t *testing.T, address string) int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmd), "containerd-shim-husk-v2") && strings.Contains(string(cmd), address) {
			n++
		}
	}
	return n
}

// TestHuskShimFaults: a killed shim is cleaned up by containerd through the delete action, and
// a containerd restart leaves running containers controllable.
func TestHuskShimFaults(t *testing.T) {
	b := newBundle(t)
	c := startContainerdWithShim(t)
	run := []string{"run", "-d", "--runtime", "io.containerd.husk.v2", "--env", "PATH=/bin", "--rootfs", b.rootfs()}
	if out, code := c.ctr(t, append(run, "f1", "sleep", "1000")...); code != 0 {
		t.Fatalf("run: %s", out)
	}
	var taskPid int
	if out, _ := c.ctr(t, "task", "ls"); true {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "f1" {
				taskPid = atoi(f[1])
			}
		}
	}
	// Restart containerd: the task survives and is still controllable.
	c.restart(t)
	c.waitTaskStatus(t, "f1", "RUNNING")
	if out, code := c.ctr(t, "task", "exec", "--exec-id", "after-restart", "f1", "true"); code != 0 {
		t.Fatalf("exec after containerd restart: %s", out)
	}
	// kill -9 the shim: containerd notices, runs the delete action, and the task is gone.
	pidData, _ := os.ReadFile(filepath.Join(c.dir, "state/io.containerd.runtime.v2.task/default/f1/shim.pid"))
	shimAddr, err := os.ReadFile(filepath.Join(c.dir, "state/io.containerd.runtime.v2.task/default/f1/address"))
	if err != nil || !strings.HasPrefix(string(shimAddr), "unix:///run/containerd/s/") {
		t.Fatalf("shim address file: %q %v", shimAddr, err)
	}
	shimPid := atoi(strings.TrimSpace(string(pidData)))
	if shimPid <= 0 {
		t.Fatalf("no shim pid: %q", pidData)
	}
	syscall.Kill(shimPid, syscall.SIGKILL)
	for i := 0; i < 200; i++ {
		out, _ := c.ctr(t, "task", "ls", "-q")
		if !strings.Contains(out, "f1") {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if out, _ := c.ctr(t, "task", "ls", "-q"); strings.Contains(out, "f1") {
		t.Fatalf("task still listed after its shim died: %s", out)
	}
	if out, code := c.ctr(t, "container", "delete", "f1"); code != 0 {
		t.Fatalf("container delete: %s", out)
	}
	// The dead shim's socket went with it (the delete action removes it).
	if _, err := os.Stat(strings.TrimPrefix(string(shimAddr), "unix://")); err == nil {
		t.Errorf("socket of the killed shim left: %s", shimAddr)
	}
	if taskPid <= 0 {
		t.Fatal("no task pid")
	}
	for i := 0; i < 100; i++ {
		if err := syscall.Kill(taskPid, 0); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(taskPid, 0); err == nil {
		if st, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(taskPid), "stat")); !strings.Contains(string(st), ") Z") {
			t.Errorf("container process %d still alive after its shim died", taskPid)
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
