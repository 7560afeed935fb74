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
	dir    string
	sock   string
	ctrBin string // the ctr binary matching this containerd
	opts   containerdOpts
	cmd    *exec.Cmd
	log    *os.File
}

// containerdOpts says which containerd to start and how.
type containerdOpts struct {
	bin         string // directory holding containerd and ctr; "" means Debian's, on PATH
	path        string // prepended to containerd's PATH, where it looks for shims
	v3          bool   // a version 3 config (containerd 2.x)
	maskCgroup2 bool   // run in a mount namespace with cgroup2's cgroup.controllers masked (crun 1.8)
	cri         bool   // keep the CRI plugin (its configuration in extraConfig)
	extraConfig string // appended to config.toml
}

func startContainerd(t *testing.T) *containerd { return startContainerdWith(t, containerdOpts{}) }

func startContainerdWith(t *testing.T, o containerdOpts) *containerd {
	t.Helper()
	daemon, ctr := "containerd", "ctr"
	if o.bin != "" {
		daemon, ctr = filepath.Join(o.bin, "containerd"), filepath.Join(o.bin, "ctr")
	} else if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd is not installed (make test-deps installs Debian's containerd)")
	}
	// Socket paths must stay short (108 bytes), so not under t.TempDir.
	dir, err := os.MkdirTemp("/tmp", "ctd")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{dir: dir, sock: filepath.Join(dir, "c.sock"), ctrBin: ctr, opts: o}
	version, disabled := 2, `"io.containerd.grpc.v1.cri"`
	if o.v3 {
		version, disabled = 3, `"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"`
	}
	if o.cri {
		disabled = ""
	}
	cfg := fmt.Sprintf("version = %d\nroot = %q\nstate = %q\ndisabled_plugins = [%s]\n[grpc]\n  address = %q\n[ttrpc]\n  address = %q\n",
		version, filepath.Join(dir, "root"), filepath.Join(dir, "state"), disabled, c.sock, c.sock+".ttrpc") + o.extraConfig
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600)
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
	c.log, _ = os.Create(filepath.Join(dir, "containerd.log"))
	c.start(t, daemon)
	t.Cleanup(func() {
		// Tasks first, then the daemon: shims outlive containerd by design.
		out, _ := c.ctrOut("task", "ls", "-q")
		for _, id := range strings.Fields(out) {
			c.ctrOut("task", "kill", "-s", "KILL", id)
		}
		if len(strings.Fields(out)) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		for _, id := range strings.Fields(out) {
			c.ctrOut("task", "delete", id)
		}
		out, _ = c.ctrOut("container", "ls", "-q")
		for _, id := range strings.Fields(out) {
			c.ctrOut("container", "delete", id)
		}
		c.stop()
		c.log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Logf("containerd log (tail):\n%s", tail(string(data), 30))
			keepFailureLog(t, "containerd.log", data)
		}
		exec.Command("umount", "-R", filepath.Join(dir, "state")).Run()
		os.RemoveAll(dir)
	})
	return c
}

// start runs the daemon and waits until it answers.
func (c *containerd) start(t *testing.T, daemon string) {
	t.Helper()
	cfg := filepath.Join(c.dir, "config.toml")
	c.cmd = exec.Command(daemon, "--config", cfg)
	if c.opts.maskCgroup2 {
		c.cmd = exec.Command("unshare", "-m", "sh", "-c", fmt.Sprintf(
			"mount --bind %s /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; exec %s --config %s",
			filepath.Join(c.dir, "empty"), daemon, cfg))
	}
	path := c.opts.path
	if c.opts.bin != "" {
		path += ":" + c.opts.bin // containerd 2.x's own runc shim before Debian's 1.6 one
	}
	c.cmd.Env = append(os.Environ(), "PATH="+path+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := c.ctrOut("version"); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("containerd did not come up")
}

func (c *containerd) stop() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// restart stops and starts containerd, leaving its shims running.
func (c *containerd) restart(t *testing.T) {
	c.stop()
	daemon := "containerd"
	if c.opts.bin != "" {
		daemon = filepath.Join(c.opts.bin, "containerd")
	}
	c.start(t, daemon)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// keepFailureLog saves a failed test's log under $HUSK_FAILURE_LOGS (CI sets a fixed directory
// outside its clone: CI's output shows only a few lines of a failure, and the clone goes).
func keepFailureLog(t *testing.T, name string, data []byte) {
	dir := os.Getenv("HUSK_FAILURE_LOGS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keep %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Logf("keep %s: %v", name, err)
		return
	}
	t.Logf("kept %s", path)
}

func (c *containerd) ctrOut(args ...string) (string, error) {
	cmd := exec.Command(c.ctrBin, append([]string{"--address", c.sock}, args...)...)
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
