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
	dir, _ := os.MkdirTemp("/tmp", "ctdb")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "c.sock")
	cfg := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n[ttrpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600)
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
	script := fmt.Sprintf("mount --bind %s /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; exec containerd --config %s",
		filepath.Join(dir, "empty"), filepath.Join(dir, "config.toml"))
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	defer logf.Close()
	ctd := exec.Command("unshare", "-m", "sh", "-c", script)
	ctd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	ctd.Stdout, ctd.Stderr = logf, logf
	if err := ctd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &containerd{dir: dir, sock: sock, cmd: ctd}
	defer func() {
		out, _ := c.ctrOut("task", "ls", "-q")
		for _, id := range strings.Fields(out) {
			c.ctrOut("task", "kill", "-s", "KILL", id)
		}
		time.Sleep(200 * time.Millisecond)
		for _, id := range strings.Fields(out) {
			c.ctrOut("task", "delete", id)
			c.ctrOut("container", "delete", id)
		}
		ctd.Process.Kill()
		ctd.Wait()
		exec.Command("umount", "-R", filepath.Join(dir, "state")).Run()
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Logf("containerd log:\n%s", tail(string(data), 20))
		}
	}()
	for i := 0; i < 100; i++ {
		if _, err := c.ctrOut("version"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, rt := range []string{"runc", "crun"} {
		args := []string{"run", "--runtime", "io.containerd.runc.v2", "--runc-binary", rt, "--env", "PATH=/bin", "--rootfs", b.rootfs()}
		out, code := c.ctr(t, append([]string{"run", "--rm"}, append(args[1:], "bn-"+rt, "sh", "-c", "echo hello from "+rt+"; exit 4")...)...)
		if code != 4 || !strings.Contains(out, "hello from "+rt) {
			t.Errorf("%s through the husk shim: exit %d, %q", rt, code, out)
			continue
		}
		out, code = c.ctr(t, append([]string{"run", "-d"}, append(args[1:], "bn-"+rt+"-d", "sleep", "1000")...)...)
		if code != 0 {
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
		pidData, _ := os.ReadFile(filepath.Join(dir, "state/io.containerd.runtime.v2.task/default/bn-"+rt+"-d/shim.pid"))
		if exe, _ := os.Readlink("/proc/" + strings.TrimSpace(string(pidData)) + "/exe"); exe != shimBinary(t) {
			t.Errorf("the shim serving %s is %q, not the husk shim", rt, exe)
		}
	}
}
