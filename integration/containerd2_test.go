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

// TestContainerd2RunsHuskShim: containerd 2.3 (protobuf BootstrapParams on the shim's stdin,
// -info introspection, task v3 clients) runs containers through the husk shim.
func TestContainerd2RunsHuskShim(t *testing.T) {
	bin := os.Getenv("HUSK_CONTAINERD2")
	if bin == "" {
		t.Skip("HUSK_CONTAINERD2 is not set (make test builds containerd 2.3 into build/containerd2)")
	}
	b := newBundle(t)
	dir, _ := os.MkdirTemp("/tmp", "ctd2")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "c.sock")
	cfg := fmt.Sprintf("version = 3\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.cri.v1.images\", \"io.containerd.cri.v1.runtime\"]\n[grpc]\n  address = %q\n[ttrpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600)
	shimDir := filepath.Dir(shimBinary(t))
	if _, err := os.Stat(filepath.Join(shimDir, "husk")); err != nil {
		os.Symlink(huskBin, filepath.Join(shimDir, "husk"))
	}
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	defer logf.Close()
	ctd := exec.Command(filepath.Join(bin, "containerd"), "--config", filepath.Join(dir, "config.toml"))
	ctd.Env = append(os.Environ(), "PATH="+shimDir+":"+os.Getenv("PATH"))
	ctd.Stdout, ctd.Stderr = logf, logf
	if err := ctd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctd.Process.Kill()
		ctd.Wait()
		exec.Command("umount", "-R", filepath.Join(dir, "state")).Run()
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Logf("containerd 2 log:\n%s", tail(string(data), 20))
		}
	}()
	ctr := func(args ...string) (string, int) {
		out, err := exec.Command(filepath.Join(bin, "ctr"), append([]string{"--address", sock}, args...)...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	for i := 0; i < 100; i++ {
		if _, code := ctr("version"); code == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	run := []string{"--runtime", "io.containerd.husk.v2", "--env", "PATH=/bin", "--rootfs", b.rootfs()}
	out, code := ctr(append(append([]string{"run", "--rm"}, run...), "v2a", "sh", "-c", "echo hello from containerd 2; exit 3")...)
	if code != 3 || !strings.Contains(out, "hello from containerd 2") {
		t.Fatalf("ctr run: exit %d, %q", code, out)
	}
	if out, code := ctr(append(append([]string{"run", "-d"}, run...), "v2b", "sleep", "1000")...); code != 0 {
		t.Fatalf("run -d: %s", out)
	}
	if out, code := ctr("task", "exec", "--exec-id", "e", "v2b", "sh", "-c", "exit 6"); code != 6 {
		t.Errorf("exec: %d %s", code, out)
	}
	ctr("task", "kill", "-s", "KILL", "v2b")
	for i := 0; i < 100; i++ {
		if out, _ := ctr("task", "ls"); strings.Contains(out, "STOPPED") {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if out, code := ctr("task", "rm", "v2b"); code != 0 {
		t.Errorf("task rm: %s", out)
	}
	ctr("container", "rm", "v2b")
	if data, _ := os.ReadFile(filepath.Join(dir, "containerd.log")); strings.Contains(string(data), "failed to load runtime info") {
		t.Errorf("containerd could not read the shim's -info")
	}
}
