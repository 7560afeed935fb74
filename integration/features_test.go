package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

func TestTimeNamespace(t *testing.T) {
	b := newBundle(t, "cat", "/proc/uptime")
	timeNamespaced(t, b)
	out := b.mustRun(t, uniqueID(t))
	var up float64
	if _, err := fmtSscan(out, &up); err != nil || up < 86400*365 {
		t.Fatalf("uptime inside a time namespace offset by a year: %q", out)
	}
}

func TestNoPivotAndPropagation(t *testing.T) {
	b := newBundle(t, "sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo; cat /proc/1/cmdline")
	b.spec.Linux.RootfsPropagation = "rprivate"
	b.write(t)
	out := b.must(t, "run", "--no-pivot", uniqueID(t))
	if !strings.Contains(out, b.rootfs()+" / ") || strings.Contains(out, "shared:") || strings.Contains(out, "master:") {
		t.Fatalf("root mount with --no-pivot and rprivate: %q", out)
	}
}

func TestOOMScoreAdj(t *testing.T) {
	b := newBundle(t, "cat", "/proc/self/oom_score_adj")
	score := 500
	b.spec.Process.OOMScoreAdj = &score
	if out := strings.TrimSpace(b.mustRun(t, uniqueID(t))); out != "500" {
		t.Fatalf("oom_score_adj = %q, want 500", out)
	}
}

func TestLabelsOnHostWithoutLSM(t *testing.T) {
	data, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if strings.TrimSpace(string(data)) == "Y" {
		t.Skip("AppArmor is enabled here; this test checks the error on hosts without it")
	}
	b := newBundle(t, "true")
	b.spec.Process.ApparmorProfile = "husk-default"
	b.write(t)
	assertOneLineError(t, b.husk(t, "create", uniqueID(t)), "AppArmor is not enabled")
	b = newBundle(t, "true")
	b.spec.Process.SelinuxLabel = "system_u:system_r:container_t:s0"
	b.write(t)
	assertOneLineError(t, b.husk(t, "create", uniqueID(t)), "SELinux is not enabled")
}

func TestListenFds(t *testing.T) {
	b := newBundle(t, "sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd | tr '\\n' ' '")
	b.write(t)
	extra, _ := os.CreateTemp(t.TempDir(), "sock")
	defer extra.Close()
	cmd := exec.Command(huskBin, "--root", b.root, "run", uniqueID(t))
	cmd.Dir = b.dir
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{extra}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] != "1 1" || strings.TrimSpace(lines[1]) != "0 1 2 3 4" {
		t.Fatalf("socket activation: %q", out)
	}
}

func TestHookTimeout(t *testing.T) {
	b := newBundle(t, "true")
	one := 1
	b.spec.Hooks = &rspec.Hooks{CreateRuntime: []rspec.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: &one}}}
	b.write(t)
	id := uniqueID(t)
	assertOneLineError(t, b.husk(t, "create", id), "timed out after 1s")
	assertClean(t, b, id)
}

func TestExecIntoUserNamespace(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, rspec.LinuxNamespace{Type: rspec.UserNamespace})
	b.spec.Linux.UIDMappings = []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	b.spec.Linux.GIDMappings = []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	os.Chmod(b.dir, 0o755)
	os.Chmod(filepath.Dir(b.dir), 0o755)
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	out := b.must(t, "exec", id, "sh", "-c", "cat /proc/self/uid_map; cat /proc/1/cmdline")
	if f := strings.Fields(out); len(f) < 4 || f[1] != "200000" || !strings.HasPrefix(f[3], "sleep") {
		t.Fatalf("exec into a user namespace: %q", out)
	}
	if r := b.husk(t, "exec", id, "sh", "-c", "exit 9"); r.code != 9 {
		t.Fatalf("exit code through the pid-namespace fork: %s", r)
	}
}

// TestExecIntoTimeNamespace: an exec joins the container's time namespace (runc 1.5's
// timens.bats); husk joined it from a multithreaded process, which the kernel refuses ("join
// .../ns/time: too many users"). Also before the init has exec'd (a created container, or a
// started one whose init is still on its way to execve, as on a loaded machine): the init
// enters the namespace it unshared only at its execve, and exec joined the host's then.
func TestExecIntoTimeNamespace(t *testing.T) {
	for _, started := range []bool{true, false} {
		b := newBundle(t, "sleep", "1000")
		timeNamespaced(t, b)
		b.write(t)
		id := uniqueID(t)
		if started {
			b.must(t, "run", "-d", id)
		} else {
			b.must(t, "create", id)
		}
		defer b.husk(t, "delete", "-f", id)
		for _, args := range [][]string{{"exec", id, "cat", "/proc/uptime"}, {"exec", "--no-fast-path", id, "cat", "/proc/uptime"}} {
			out := b.must(t, args...)
			var up float64
			if _, err := fmtSscan(out, &up); err != nil || up < 86400*365 {
				t.Fatalf("started %v, %v: uptime in the container's time namespace: %q", started, args, out)
			}
		}
	}
}

// TestCPUAffinityIsReset: a container started by a husk pinned to one CPU (taskset -c 0) may
// run on every CPU its cpuset allows, as with runc 1.2.7+; husk's pinning was inherited. The
// same for exec.
func TestCPUAffinityIsReset(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: nothing to reset")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset is not installed")
	}
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", "grep Cpus_allowed_list /proc/self/status")
		b.write(t)
		husk := func(args ...string) string {
			cmd := exec.Command("taskset", append([]string{"-c", "0", huskBin, "--root", b.root}, args...)...)
			cmd.Dir = b.dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("taskset -c 0 husk %v: %v: %s", args, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		if out := husk(append(append([]string{"run"}, flags...), uniqueID(t))...); !strings.HasSuffix(out, all) {
			t.Fatalf("run: %q, want the CPUs %s", out, all)
		}
		b.spec.Process.Args = []string{"sleep", "1000"}
		b.write(t)
		id := uniqueID(t)
		b.must(t, append(append([]string{"run", "-d"}, flags...), id)...)
		defer b.husk(t, "delete", "-f", id)
		if out := husk(append(append([]string{"exec"}, flags...), id, "grep", "Cpus_allowed_list", "/proc/self/status")...); !strings.HasSuffix(out, all) {
			t.Fatalf("exec: %q, want the CPUs %s", out, all)
		}
	})
}

// timeNamespaced gives b a time namespace whose boottime is a year ahead (skips without one).
func timeNamespaced(t *testing.T, b *bundle) {
	t.Helper()
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("kernel without time namespaces")
	}
	b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, rspec.LinuxNamespace{Type: rspec.TimeNamespace})
	b.spec.Linux.TimeOffsets = map[string]rspec.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
}
