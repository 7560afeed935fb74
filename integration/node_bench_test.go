package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestNodeBenchmark runs integration/nodebench (make bench-node builds it) against containerd
// 2.4's CRI with three handlers on one node: husk's, runc's (the runc shim driving runc), and
// the runc shim driving crun, rotated at each pod count. containerd and its shims run in a
// cpuacct cgroup of their own, the pods under a cgroup parent of their own: the CPU a probe
// costs is read from both. It measures, it does not judge: the figures and the targets with
// met or missed are printed and written to HUSK_NODEBENCH_OUT.
func TestNodeBenchmark(t *testing.T) {
	bench := os.Getenv("HUSK_NODEBENCH")
	if bench == "" {
		t.Skip("HUSK_NODEBENCH is not set (make bench-node builds integration/nodebench and sets it)")
	}
	// crun 1.8 refuses containerd 2.x's spec version: make bench-node gives its wrapper.
	crun := os.Getenv("HUSK_NODEBENCH_CRUN")
	if crun == "" {
		t.Skip("HUSK_NODEBENCH_CRUN is not set (make bench-node builds integration/nodebench/crunwrap/crunwrap.c)")
	}
	daemonCg := fmt.Sprintf("husk-nodebench-daemon-%d", os.Getpid())
	podsCg := fmt.Sprintf("husk-nodebench-pods-%d", os.Getpid())
	t.Cleanup(func() { removeCgroupEverywhere(daemonCg); removeCgroupEverywhere(podsCg) })
	c := startCRIWith(t, criOpts{bin: containerd2Bin(t), crun: crun})
	// containerd (no shim has started yet) and so every shim it starts are accounted together.
	cpuacct := "/sys/fs/cgroup/cpuacct"
	if err := os.MkdirAll(filepath.Join(cpuacct, daemonCg), 0o755); err != nil {
		t.Fatal(err)
	}
	pid := c.cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(cpuacct, daemonCg, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("move containerd into its cpuacct cgroup: %v", err)
	}
	t.Cleanup(func() {
		// Back to the root before the cgroup goes: cleanups run last-registered first, so
		// containerd still runs here (its pid is still its own); it stops next.
		os.WriteFile(filepath.Join(cpuacct, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
	})
	maskDir := t.TempDir()
	for i := 0; i < 256; i++ {
		os.Mkdir(filepath.Join(maskDir, strconv.Itoa(i)), 0o755)
	}
	handlers := "husk,runc,crun"
	if v := os.Getenv("HUSK_NODEBENCH_HANDLERS"); v != "" {
		handlers = v // husk's first: the ratios are husk's to the others'
	}
	args := []string{"-socket", c.sock, "-handlers", handlers, "-cgroup-parent", "/" + podsCg,
		"-cpuacct", cpuacct, "-daemon-cgroup", daemonCg, "-daemon-pid", strconv.Itoa(pid), "-mask-dir", maskDir}
	if v := os.Getenv("HUSK_NODEBENCH_PODS"); v != "" {
		args = append(args, "-pods", v)
	}
	if v := os.Getenv("HUSK_NODEBENCH_PROBE_FOR"); v != "" {
		args = append(args, "-probe-for", v)
	}
	if v := os.Getenv("HUSK_NODEBENCH_OUT"); v != "" {
		args = append(args, "-json", v)
	}
	cmd := exec.Command(bench, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("nodebench: %v", err)
	}
}
