package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/specs"
)

// TestCgroup2InVM boots a pure cgroup v2 kernel (Debian's, under qemu) with husk and busybox in
// an initramfs, and runs testdata/cgroup2-init.sh there: resources, placement, update, cgroup
// namespace, freeze, cgroup.kill, OOM events and the eBPF device filter, on cgroup v2 proper.
func TestCgroup2InVM(t *testing.T) {
	if os.Getenv("HUSK_CGROUP2_VM") == "" {
		t.Skip("boots a cgroup v2 kernel in qemu; run by make test-cgroup2")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 is not installed (make test-cgroup2 installs it)")
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		t.Fatal("no kernel in /boot (make test-cgroup2 installs linux-image-amd64)")
	}
	sort.Strings(kernels)
	kernel := kernels[len(kernels)-1]
	needBusybox(t)

	root := t.TempDir()
	for _, d := range []string{"bin", "proc", "sys", "dev", "run", "tmp", "b", "mnt"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	copyFile(t, busyboxBin, filepath.Join(root, "bin/busybox"))
	copyFile(t, huskBin, filepath.Join(root, "bin/husk"))
	copyFile(t, filepath.Join(filepath.Dir(huskBin), "husk-init"), filepath.Join(root, "bin/husk-init"))
	copyFile(t, "testdata/cgroup2-init.sh", filepath.Join(root, "init"))
	bundle := func(name string, args []string, mutate func(*rspec.Spec)) {
		dir := filepath.Join(root, "b", name)
		for _, d := range []string{"rootfs/bin", "rootfs/proc", "rootfs/sys", "rootfs/dev", "rootfs/tmp"} {
			os.MkdirAll(filepath.Join(dir, d), 0o755)
		}
		copyFile(t, busyboxBin, filepath.Join(dir, "rootfs/bin/busybox"))
		for _, a := range []string{"sh", "sleep", "cat", "mknod", "echo"} {
			os.Symlink("busybox", filepath.Join(dir, "rootfs/bin", a))
		}
		s := specs.Default()
		s.Process.Terminal = false
		s.Process.Args = args
		s.Process.Env = []string{"PATH=/bin"}
		s.Process.Rlimits = nil
		s.Root.Readonly = false
		if mutate != nil {
			mutate(s)
		}
		data, _ := json.Marshal(s)
		os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
	}
	mem, pids, shares := int64(32<<20), int64(20), uint64(512)
	bundle("limits", []string{"sleep", "1000"}, func(s *rspec.Spec) {
		s.Linux.Resources.Memory = &rspec.LinuxMemory{Limit: &mem}
		s.Linux.Resources.Pids = &rspec.LinuxPids{Limit: &pids}
		quota, period := int64(50000), uint64(100000)
		burst := uint64(10000)
		s.Linux.Resources.CPU = &rspec.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period, Cpus: "0", Burst: &burst}
		s.Linux.Resources.Memory.Swap = &mem // swap limit == memory limit: no swap on top
		s.Linux.Resources.Unified = map[string]string{"memory.high": "31457280"}
	})
	oom := int64(16 << 20)
	bundle("oom", []string{"sh", "-c", "sleep 1; x=a; while true; do x=$x$x; done"}, func(s *rspec.Spec) {
		s.Linux.Resources.Memory = &rspec.LinuxMemory{Limit: &oom}
		idle := int64(1) // an idle cgroup reports cpu.weight 0: checked here, not with the weight
		s.Linux.Resources.CPU = &rspec.LinuxCPU{Idle: &idle}
	})
	bundle("dev", []string{"sh", "-c", "mknod /tmp/mem c 1 1 && cat /tmp/mem >/dev/null 2>/tmp/err; cat /tmp/err; echo x > /dev/null && echo NULL-OK"}, func(s *rspec.Spec) {
		c := s.Process.Capabilities
		c.Bounding, c.Effective, c.Permitted = append(c.Bounding, "CAP_MKNOD"), append(c.Effective, "CAP_MKNOD"), append(c.Permitted, "CAP_MKNOD")
	})

	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	pack := exec.Command("sh", "-c", "find . | "+busyboxBin+" cpio -o -H newc > "+initrd)
	pack.Dir = root
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 rdinit=/init")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("guest ran %.1fs (kernel %s)", time.Since(start).Seconds(), filepath.Base(kernel))
	passed, done := 0, false
	s := bufio.NewScanner(&out)
	var log []string
	for s.Scan() {
		line := strings.TrimSpace(strings.ReplaceAll(s.Text(), "\r", ""))
		log = append(log, line)
		i := strings.Index(line, "HUSKTEST ")
		if i < 0 {
			continue
		}
		line = line[i+len("HUSKTEST "):]
		switch {
		case strings.HasPrefix(line, "PASS "):
			passed++
		case strings.HasPrefix(line, "FAIL "):
			t.Errorf("guest: %s", strings.TrimPrefix(line, "FAIL "))
		case strings.HasPrefix(line, "INFO "):
			t.Log(strings.TrimPrefix(line, "INFO "))
		case line == "DONE":
			done = true
		}
	}
	if !done {
		t.Fatalf("guest did not finish (qemu: %v); console tail:\n%s", err, strings.Join(tailLines(log, 40), "\n"))
	}
	t.Logf("%d checks passed on cgroup v2", passed)
}

func tailLines(l []string, n int) []string {
	if len(l) > n {
		return l[len(l)-n:]
	}
	return l
}

func copyFile(t *testing.T, src, dst string) {
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
