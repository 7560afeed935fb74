package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHuskShimBinaryName: installed as containerd-shim-runc-v2 (it is a drop-in), the husk shim
// honours the runc options ctr sends (--runc-binary becomes BinaryName) and runs containers with
// runc and with crun. containerd runs in a mount namespace where cgroup2's cgroup.controllers is
// masked, because crun 1.8 refuses this host's hybrid layout otherwise.
func TestHuskShimBinaryName(t *testing.T) {
	for _, rt := range []string{"runc", "crun"} {
		if _, err := exec.LookPath(rt); err != nil {
			t.Skipf("%s is not installed", rt)
		}
	}
	b := newBundle(t)
	bin := t.TempDir()
	os.Chmod(bin, 0o755)
	os.Symlink(shimBinary(t), filepath.Join(bin, "containerd-shim-runc-v2"))
	os.Symlink(huskBin, filepath.Join(bin, "husk"))
	c := startContainerdWith(t, containerdOpts{path: bin, maskCgroup2: true})
	for _, rt := range []string{"runc", "crun"} {
		flags := []string{"--runtime", "io.containerd.runc.v2", "--runc-binary", rt, "--env", "PATH=/bin", "--rootfs", b.rootfs()}
		out, code := c.ctr(t, append(append([]string{"run", "--rm"}, flags...), "bn-"+rt, "sh", "-c", "echo hello from "+rt+"; exit 4")...)
		if code != 4 || !strings.Contains(out, "hello from "+rt) {
			t.Errorf("%s through the husk shim: exit %d, %q", rt, code, out)
			continue
		}
		if out, code := c.ctr(t, append(append([]string{"run", "-d"}, flags...), "bn-"+rt+"-d", "sleep", "1000")...); code != 0 {
			t.Errorf("%s run -d: %s", rt, out)
			continue
		}
		// The runtime that really holds the container is the one asked for.
		if st, err := exec.Command(rt, "--root", "/run/containerd/husk/default", "state", "bn-"+rt+"-d").CombinedOutput(); err != nil || !strings.Contains(string(st), `"running"`) {
			t.Errorf("%s state of its container: %v %s", rt, err, st)
		}
		if out, code := c.ctr(t, "task", "exec", "--exec-id", "x", "bn-"+rt+"-d", "sh", "-c", "exit 6"); code != 6 {
			t.Errorf("%s exec: %d %s", rt, code, out)
		}
		pidData, _ := os.ReadFile(filepath.Join(c.dir, "state/io.containerd.runtime.v2.task/default/bn-"+rt+"-d/shim.pid"))
		if exe, _ := os.Readlink("/proc/" + strings.TrimSpace(string(pidData)) + "/exe"); exe != shimBinary(t) {
			t.Errorf("the shim serving %s is %q, not the husk shim", rt, exe)
		}
	}
}
