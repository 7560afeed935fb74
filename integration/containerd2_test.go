package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// containerd2Bin is the directory holding containerd 2.4's binaries; the test skips without it.
func containerd2Bin(t *testing.T) string {
	bin := os.Getenv("HUSK_CONTAINERD2")
	if bin == "" {
		t.Skip("HUSK_CONTAINERD2 is not set (make test builds containerd 2.4 into build/containerd2)")
	}
	return bin
}

// TestContainerd2RunsHuskShim: containerd 2.4 (protobuf BootstrapParams on the shim's stdin,
// -info introspection, task v3 clients) runs containers through the husk shim.
func TestContainerd2RunsHuskShim(t *testing.T) {
	bin := containerd2Bin(t)
	b := newBundle(t)
	c := startContainerdWith(t, containerdOpts{bin: bin, path: shimDir(t), v3: true})
	run := []string{"--runtime", "io.containerd.husk.v2", "--env", "PATH=/bin", "--rootfs", b.rootfs()}
	out, code := c.ctr(t, append(append([]string{"run", "--rm"}, run...), "v2a", "sh", "-c", "echo hello from containerd 2; exit 3")...)
	if code != 3 || !strings.Contains(out, "hello from containerd 2") {
		t.Fatalf("ctr run: exit %d, %q", code, out)
	}
	if out, code := c.ctr(t, append(append([]string{"run", "-d"}, run...), "v2b", "sleep", "1000")...); code != 0 {
		t.Fatalf("run -d: %s", out)
	}
	if out, code := c.ctr(t, "task", "exec", "--exec-id", "e", "v2b", "sh", "-c", "exit 6"); code != 6 {
		t.Errorf("exec: %d %s", code, out)
	}
	c.ctr(t, "task", "kill", "-s", "KILL", "v2b")
	c.waitTaskStatus(t, "v2b", "STOPPED")
	if out, code := c.ctr(t, "task", "rm", "v2b"); code != 0 {
		t.Errorf("task rm: %s", out)
	}
	c.ctr(t, "container", "rm", "v2b")
	time.Sleep(100 * time.Millisecond)
	if data, _ := os.ReadFile(filepath.Join(c.dir, "containerd.log")); strings.Contains(string(data), "failed to load runtime info") {
		t.Errorf("containerd could not read the shim's -info")
	}
}
