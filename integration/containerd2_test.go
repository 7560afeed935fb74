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

// TestContainerd2BinaryV2Logger: containerd 2.4 hands the shim a binary-v2:// log URI (its
// loggers signal readiness with a byte on fd 5) and the container's output reaches the logger.
// (ctr -t ignores --log-uri; a logger with a terminal is TestShimBinaryV2AndTerminalLoggers,
// at the Task API containerd forwards.)
func TestContainerd2BinaryV2Logger(t *testing.T) {
	bin := containerd2Bin(t)
	b := newBundle(t)
	c := startContainerdWith(t, containerdOpts{bin: bin, path: shimDir(t), v3: true})
	dir := t.TempDir()
	logger := filepath.Join(dir, "logger.sh")
	os.WriteFile(logger, []byte("#!/bin/sh\nprintf R >&5; exec 5>&-\ncat <&3 > \"$1.out\" &\ncat <&4 > \"$1.err\"\nwait\n"), 0o755)
	base := filepath.Join(dir, "v2log")
	if out, code := c.ctr(t, "run", "--rm", "--runtime", "io.containerd.husk.v2", "--env", "PATH=/bin", "--rootfs", b.rootfs(),
		"--log-uri", "binary-v2://"+logger+"?"+base, "v2log", "sh", "-c", "echo logged-by-binary-v2; echo err-by-binary-v2 >&2"); code != 0 {
		t.Fatalf("ctr run --log-uri binary-v2://: exit %d, %q", code, out)
	}
	for _, f := range []struct{ file, want string }{{base + ".out", "logged-by-binary-v2"}, {base + ".err", "err-by-binary-v2"}} {
		var got string
		for i := 0; i < 100; i++ {
			data, _ := os.ReadFile(f.file)
			if got = string(data); strings.Contains(got, f.want) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(got, f.want) {
			t.Errorf("the logger's %s: %q, want %q", filepath.Base(f.file), got, f.want)
		}
	}
}
