package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const rootlessUser = "huskrl"

// TestRootless runs husk as a real unprivileged user: `husk spec --rootless` gives a working
// config, the container runs in a user namespace mapping that user to root, state lives under
// $XDG_RUNTIME_DIR/husk, and cgroups are skipped.
func TestRootless(t *testing.T) {
	if _, err := user.Lookup(rootlessUser); err != nil {
		if out, err := exec.Command("useradd", "-M", "-s", "/bin/sh", rootlessUser).CombinedOutput(); err != nil {
			t.Skipf("cannot create user %s: %v %s", rootlessUser, err, out)
		}
	}
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	b := newBundle(t)
	dir, err := os.MkdirTemp("/tmp", "husk-rootless")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bundle := filepath.Join(dir, "bundle")
	runDir := filepath.Join(dir, "run")
	os.MkdirAll(bundle, 0o755)
	os.MkdirAll(runDir, 0o700)
	if out, err := exec.Command("cp", "-a", b.rootfs(), bundle).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v %s", err, out)
	}
	exec.Command("chown", "-R", u.Uid+":"+u.Gid, dir).Run()
	os.Chmod(dir, 0o755)
	// husk must be reachable by the user.
	for p := filepath.Dir(huskBin); p != "/"; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s is not traversable by other users", p)
		}
	}
	asUser := func(args ...string) (string, string, int) {
		cmd := exec.Command(huskBin, args...)
		cmd.Dir = bundle
		cmd.Env = []string{"PATH=/usr/bin:/bin", "XDG_RUNTIME_DIR=" + runDir, "HOME=" + dir}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		// Files, not pipes: a detached container keeps its stdio open.
		out, errb := tempFile(t), tempFile(t)
		defer out.Close()
		defer errb.Close()
		cmd.Stdout, cmd.Stderr = out, errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return readFile(out), readFile(errb), code
	}
	if _, stderr, code := asUser("spec", "--rootless"); code != 0 {
		t.Fatalf("spec --rootless: %s", stderr)
	}
	cfgPath := filepath.Join(bundle, "config.json")
	var cfg map[string]any
	data, _ := os.ReadFile(cfgPath)
	json.Unmarshal(data, &cfg)
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"sh", "-c", "id -u; cat /proc/self/uid_map; hostname"}
	proc["env"] = []string{"PATH=/bin"}
	data, _ = json.Marshal(cfg)
	os.WriteFile(cfgPath, data, 0o644)
	os.Chown(cfgPath, uid, gid)

	out, stderr, code := asUser("run", "rl-run")
	f := strings.Fields(out)
	if code != 0 || len(f) < 5 || f[0] != "0" || f[1] != "0" || f[2] != u.Uid || f[3] != "1" {
		t.Fatalf("rootless run: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	proc["args"] = []string{"sleep", "1000"}
	data, _ = json.Marshal(cfg)
	os.WriteFile(cfgPath, data, 0o644)
	if _, stderr, code := asUser("run", "-d", "rl-long"); code != 0 {
		t.Fatalf("rootless run -d: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(runDir, "husk", "rl-long", "state.json")); err != nil {
		t.Errorf("state is not under $XDG_RUNTIME_DIR/husk: %v", err)
	}
	if out, _, code := asUser("exec", "rl-long", "cat", "/proc/self/uid_map"); code != 0 || !strings.Contains(out, u.Uid) {
		t.Errorf("rootless exec: %d %q", code, out)
	}
	if _, stderr, code := asUser("delete", "--force", "rl-long"); code != 0 {
		t.Errorf("rootless delete: %s", stderr)
	}
	if entries, _ := os.ReadDir(filepath.Join(runDir, "husk")); len(entries) != 0 {
		t.Errorf("rootless state left: %v", entries)
	}
}
