package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// containerd is a private containerd started by a test: its own root, state and sockets.
type containerd struct {
	dir  string
	sock string
	cmd  *exec.Cmd
}

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd is not installed (make test-deps installs Debian's containerd)")
	}
	// Socket paths must stay short (108 bytes), so not under t.TempDir.
	dir, err := os.MkdirTemp("/tmp", "ctd")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{dir: dir, sock: filepath.Join(dir, "c.sock")}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc")
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600)
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	c.cmd = exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Tasks first, then the daemon: shims outlive containerd by design.
		out, _ := c.ctrOut("task", "ls", "-q")
		for _, id := range strings.Fields(out) {
			c.ctrOut("task", "kill", "-s", "KILL", id)
			time.Sleep(100 * time.Millisecond)
			c.ctrOut("task", "delete", id)
		}
		out, _ = c.ctrOut("container", "ls", "-q")
		for _, id := range strings.Fields(out) {
			c.ctrOut("container", "delete", id)
		}
		c.cmd.Process.Kill()
		c.cmd.Wait()
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Logf("containerd log (tail):\n%s", tail(string(data), 30))
		}
		exec.Command("umount", "-R", filepath.Join(dir, "state")).Run()
		os.RemoveAll(dir)
	})
	for i := 0; i < 100; i++ {
		if _, err := c.ctrOut("version"); err == nil {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("containerd did not come up")
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *containerd) ctrOut(args ...string) (string, error) {
	cmd := exec.Command("ctr", append([]string{"--address", c.sock}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ctr runs ctr and returns output and exit code.
func (c *containerd) ctr(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := c.ctrOut(args...)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ctr %v: %v", args, err)
	}
	return out, code
}

// TestContainerdRuncShimDrivesHusk proves husk is a drop-in for runc under containerd: Debian's
// containerd 1.6 and its containerd-shim-runc-v2 run containers with husk as the runc binary.
func TestContainerdRuncShimDrivesHusk(t *testing.T) {
	b := newBundle(t)
	c := startContainerd(t)
	// ctr takes flags before the positionals; with --rootfs the first positional is the rootfs.
	run := func(flag string) []string {
		return []string{"run", flag, "--runtime", "io.containerd.runc.v2", "--runc-binary", huskBin, "--env", "PATH=/bin", "--rootfs", b.rootfs()}
	}
	out, code := c.ctr(t, append(run("--rm"), "c-exit", "sh", "-c", "echo hello from husk; exit 3")...)
	if code != 3 || !strings.Contains(out, "hello from husk") {
		t.Fatalf("ctr run: exit %d, output %q", code, out)
	}

	out, code = c.ctr(t, append(run("-d"), "c-long", "sleep", "1000")...)
	if code != 0 {
		t.Fatalf("ctr run -d: %d %s", code, out)
	}
	if out, _ := c.ctr(t, "task", "ls"); !strings.Contains(out, "RUNNING") {
		t.Fatalf("task ls: %s", out)
	}
	out, code = c.ctr(t, "task", "exec", "--exec-id", "e1", "c-long", "sh", "-c", "echo exec-ok; exit 5")
	if code != 5 || !strings.Contains(out, "exec-ok") {
		t.Fatalf("task exec: exit %d, output %q", code, out)
	}
	if out, code := c.ctr(t, "task", "exec", "--exec-id", "e2", "c-long", "/nope"); code == 0 {
		t.Fatalf("exec of a missing binary succeeded: %s", out)
	}
	if out, code := c.ctr(t, "task", "pause", "c-long"); code != 0 {
		t.Fatalf("pause: %s", out)
	}
	if out, _ := c.ctr(t, "task", "ls"); !strings.Contains(out, "PAUSED") {
		t.Fatalf("task ls after pause: %s", out)
	}
	c.ctr(t, "task", "resume", "c-long")
	if out, code := c.ctr(t, "task", "ps", "c-long"); code != 0 || len(strings.Fields(out)) < 3 {
		t.Fatalf("task ps: %d %s", code, out)
	}
	if out, code := c.ctr(t, "task", "kill", "-s", "KILL", "c-long"); code != 0 {
		t.Fatalf("kill: %s", out)
	}
	for i := 0; i < 100; i++ {
		if out, _ := c.ctr(t, "task", "ls"); strings.Contains(out, "STOPPED") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, code := c.ctr(t, "task", "delete", "c-long"); code != 0 {
		t.Fatalf("task delete: %s", out)
	}
	c.ctr(t, "container", "delete", "c-long")
	// husk's state for the container is gone with it.
	if entries, _ := os.ReadDir("/run/containerd/runc/default"); len(entries) != 0 {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "c-") {
				t.Errorf("husk state left: %s", e.Name())
			}
		}
	}
}

// TestPodmanDrivesHusk runs a container through podman and conmon (the path cri-o uses too).
func TestPodmanDrivesHusk(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed (make test-deps installs it)")
	}
	b := newBundle(t)
	root := t.TempDir()
	args := []string{"--runtime", huskBin, "--root", filepath.Join(root, "storage"), "--runroot", filepath.Join(root, "run"),
		"--cgroup-manager", "cgroupfs", "--events-backend", "none", "run", "--rm", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--rootfs", b.rootfs(),
		"sh", "-c", "echo hello from podman; cat /proc/self/status | grep NoNewPrivs; exit 4"}
	cmd := exec.Command("podman", args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 4 || !strings.Contains(string(out), "hello from podman") {
		t.Fatalf("podman run: exit %d, output:\n%s", code, out)
	}
}
