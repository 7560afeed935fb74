package integration

// What a container's delete and kill may touch in its cgroup: only the container's own
// processes (safety issue, items 2, 10 and 25; fresh-machine issue, item 4).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupDirsOf lists the cgroup directories of pid in every mounted hierarchy, as an admin
// reads them from /proc/<pid>/cgroup (named hierarchies left out).
func cgroupDirsOf(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		// Of the named hierarchies husk (as runc) joins name=systemd only.
		if len(parts) != 3 || strings.HasPrefix(parts[1], "name=") && parts[1] != "name=systemd" {
			continue
		}
		var d string
		if parts[1] == "name=systemd" {
			if parts[2] == "/" {
				continue // not joined (husk before it joined name=systemd)
			}
			d = filepath.Join("/sys/fs/cgroup/systemd", parts[2])
		} else if parts[1] == "" {
			d = filepath.Join("/sys/fs/cgroup/unified", parts[2])
			if _, err := os.Stat("/sys/fs/cgroup/unified"); err != nil {
				d = filepath.Join("/sys/fs/cgroup", parts[2])
			}
		} else {
			d = filepath.Join("/sys/fs/cgroup", parts[1], parts[2])
		}
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// hostSleeper starts a host process (not the container's) that lives until the test ends.
func hostSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// moveTo puts pid into each cgroup directory (made if missing).
func moveTo(t *testing.T, pid int, dirs []string) {
	t.Helper()
	for _, d := range dirs {
		os.MkdirAll(d, 0o755)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} { // v1 cpuset starts empty
			if b, err := os.ReadFile(filepath.Join(d, f)); err == nil && strings.TrimSpace(string(b)) == "" {
				parent, _ := os.ReadFile(filepath.Join(filepath.Dir(d), f))
				os.WriteFile(filepath.Join(d, f), parent, 0o644)
			}
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatalf("move %d to %s: %v", pid, d, err)
		}
	}
}

// hierarchyRoot is the mount directory of the hierarchy that cgroup directory d is in.
func hierarchyRoot(d string) string {
	for _, p := range []string{"/sys/fs/cgroup/unified/", "/sys/fs/cgroup/"} {
		if rest, ok := strings.CutPrefix(d, p); ok {
			if p == "/sys/fs/cgroup/unified/" {
				return "/sys/fs/cgroup/unified"
			}
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				return "/sys/fs/cgroup" // cgroup v2 only
			}
			return filepath.Join("/sys/fs/cgroup", strings.SplitN(rest, "/", 2)[0])
		}
	}
	return d
}

// leaveAndRemove moves pid back to the root cgroups and removes dirs.
func leaveAndRemove(pid int, dirs []string) {
	for _, d := range dirs {
		os.WriteFile(filepath.Join(hierarchyRoot(d), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
		syscall.Rmdir(d)
	}
}

// cgroupProcs lists the pids in cgroup directory d.
func cgroupProcs(d string) []string {
	data, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
	return strings.Fields(string(data))
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// TestAttackDeleteSparesOthersInTheCgroup: a process that is not the container's but sits in
// its cgroup (an admin's, or another container's placed there later) survives `delete --force`
// of a container with a pid namespace of its own. husk used to kill the whole cgroup
// (cgroup.kill); runc 1.1.5 and 1.5 kill only the init, whose namespace takes the container's
// processes with it.
func TestAttackDeleteSparesOthersInTheCgroup(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t)
		b.spec.Linux.CgroupsPath = "/husk-test-shared-" + uniqueID(t)
		id := runSleeping(t, b, flags)
		pid := int(b.state(t, id)["pid"].(float64))
		dirs := cgroupDirsOf(t, pid)
		other := hostSleeper(t)
		defer leaveAndRemove(other.Process.Pid, dirs)
		moveTo(t, other.Process.Pid, dirs)
		r := b.husk(t, "delete", "--force", id)
		if !alive(other.Process.Pid) {
			t.Fatalf("delete --force killed a host process that shared the container's cgroup (delete: %s)", r)
		}
		if r.code != 0 {
			t.Fatalf("delete --force: %s", r)
		}
		if alive(pid) {
			t.Fatalf("the container's init %d survived delete --force", pid)
		}
		if out := b.must(t, "list", "-q"); strings.Contains(out, id) {
			t.Fatalf("the container is still listed: %q", out)
		}
	})
}

// TestNonEmptyCgroupIsRefused: a cgroupsPath that already holds processes is refused at create
// with runc 1.5's words, and nothing is left behind; the other process lives on.
func TestNonEmptyCgroupIsRefused(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		name := "/husk-test-nonempty-" + uniqueID(t)
		other := hostSleeper(t)
		var dirs []string
		for _, d := range cgroupDirsOf(t, os.Getpid()) {
			dirs = append(dirs, filepath.Join(hierarchyRoot(d), name))
		}
		defer leaveAndRemove(other.Process.Pid, dirs)
		moveTo(t, other.Process.Pid, dirs)
		b := newBundle(t)
		b.spec.Linux.CgroupsPath = name
		b.write(t)
		id := uniqueID(t)
		r := b.husk(t, append(append([]string{"run", "-d"}, flags...), id)...)
		if r.code == 0 || !strings.Contains(r.stderr, "container's cgroup is not empty: 1 process(es) found") {
			t.Fatalf("run in a cgroup with a process: %s", r)
		}
		assertClean(t, b, id)
		if !alive(other.Process.Pid) {
			t.Fatal("the process in the cgroup died")
		}
	})
}

// TestKillWithoutPidNamespaceKillsAll: `kill ID KILL` (no --all) of a container that shares the
// host's pid namespace kills every process of it, as runc 1.2+ does: the init's death alone
// leaves its children running.
func TestKillWithoutPidNamespaceKillsAll(t *testing.T) {
	b := newBundle(t, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
	b.spec.Linux.Namespaces = withoutNamespace(b.spec.Linux.Namespaces, rspec.PIDNamespace)
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	dirs := cgroupDirsOf(t, pid)
	procs := func() []string { return cgroupProcs(dirs[0]) }
	for i := 0; i < 200 && len(procs()) < 3; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if n := len(procs()); n < 3 {
		t.Fatalf("want 3 processes in the container, got %d", n)
	}
	b.must(t, "kill", id, "KILL")
	for i := 0; i < 200 && len(procs()) > 0; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if left := procs(); len(left) > 0 {
		t.Fatalf("kill KILL left processes of the container running: %v", left)
	}
}

// TestDeleteForceUnderLoadLeavesNothing: `delete --force` returns only once every process of
// the container's cgroup is gone and the cgroup removed, also on a loaded machine with a
// process that ignores SIGTERM and children that keep forking (the fresh-machine issue: a
// following create in the same cgroup found a process left behind). Repeated, with and
// without a pid namespace of the container's own.
func TestDeleteForceUnderLoadLeavesNothing(t *testing.T) {
	for i := 0; i < 2; i++ {
		hog := exec.Command("sh", "-c", "while :; do :; done")
		if err := hog.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { hog.Process.Kill(); hog.Wait() }()
	}
	for _, pidns := range []bool{true, false} {
		t.Run(fmt.Sprintf("pidns=%v", pidns), func(t *testing.T) {
			// Without a pid namespace nothing dies with the init: a loop that keeps leaving
			// orphans (each subshell starts a sleep and exits) outruns one kill pass, which is
			// all husk did before (and then returned 0 with the cgroup still full).
			b := newBundle(t, "sh", "-c", "trap '' TERM; for i in $(seq 1 100); do sleep 1000 & done; (while :; do sleep 1 & sleep 0.01; done) & (while :; do (sleep 1000 &); done) & (trap '' TERM; while :; do :; done) & sleep 1000")
			if !pidns {
				b.spec.Linux.Namespaces = withoutNamespace(b.spec.Linux.Namespaces, rspec.PIDNamespace)
			}
			b.spec.Linux.CgroupsPath = "/husk-test-delrace-" + uniqueID(t)
			b.write(t)
			for round := 0; round < 8; round++ {
				id := fmt.Sprintf("%s-%d", uniqueID(t), round)
				b.must(t, "run", "-d", id)
				pid := int(b.state(t, id)["pid"].(float64))
				dirs := cgroupDirsOf(t, pid)
				time.Sleep(300 * time.Millisecond)
				b.must(t, "delete", "--force", id)
				for _, d := range dirs {
					if data, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
						t.Fatalf("round %d: delete --force returned with %s still there, holding %q", round, d, strings.Fields(string(data)))
					}
				}
				assertClean(t, b, id)
			}
		})
	}
}

// TestAttackTamperedCgroupPathsAreNotActedOn: a state whose cgroup paths name the root cgroup
// or leave cgroupfs ("/../../../../tmp/x") is corrupt: `delete --force` kills the real container by
// its init and the cgroup create recorded, and removes nothing outside it. husk used to kill
// every process of the named cgroup and remove directories outside cgroupfs.
func TestAttackTamperedCgroupPathsAreNotActedOn(t *testing.T) {
	victimDir := t.TempDir()
	victims := []string{"/../../../../" + strings.TrimPrefix(filepath.Join(victimDir, "kept"), "/")}
	if os.Getenv("HUSK_TEST_ROOT_CGROUP_ATTACK") != "no" {
		// Against a husk without the check this kills every process of the machine.
		victims = append(victims, "/")
	}
	for i, tampered := range victims {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			os.MkdirAll(filepath.Join(victimDir, "kept", "sub"), 0o755)
			b := newBundle(t)
			id := runSleeping(t, b, nil)
			pid := int(b.state(t, id)["pid"].(float64))
			dirs := cgroupDirsOf(t, pid)
			other := hostSleeper(t)
			for _, name := range []string{"state.json", "cgroup.json"} {
				f := filepath.Join(b.root, id, name)
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				s := string(data)
				for _, d := range dirs {
					rel := strings.TrimPrefix(d, hierarchyRoot(d))
					s = strings.ReplaceAll(s, `"`+rel+`"`, `"`+tampered+`"`)
				}
				os.WriteFile(f, []byte(s), 0o600)
			}
			r := b.husk(t, "delete", "--force", id)
			if !alive(other.Process.Pid) {
				t.Fatalf("delete --force of a tampered state killed a host process: %s", r)
			}
			if _, err := os.Stat(filepath.Join(victimDir, "kept", "sub")); err != nil {
				t.Fatalf("delete --force removed a directory outside cgroupfs: %v (%s)", err, r)
			}
			if alive(pid) {
				t.Fatalf("the real container (init %d) is still running after delete --force: %s", pid, r)
			}
			for _, d := range dirs {
				syscall.Rmdir(d)
			}
		})
	}
}

// TestKillAfterInitExitedKillsWhatIsLeft: in a container that shares the host's pid namespace,
// the init's children outlive it; `kill ID KILL` once the init is gone kills them, as runc 1.2+
// does, where husk said "container is not running" and left them.
func TestKillAfterInitExitedKillsWhatIsLeft(t *testing.T) {
	b := newBundle(t, "sh", "-c", "sleep 1000 & sleep 0.2")
	b.spec.Linux.Namespaces = withoutNamespace(b.spec.Linux.Namespaces, rspec.PIDNamespace)
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	dirs := cgroupDirsOf(t, int(b.state(t, id)["pid"].(float64)))
	b.waitStatus(t, id, "stopped")
	procs := func() []string { return cgroupProcs(dirs[0]) }
	if len(procs()) == 0 {
		t.Fatal("the init's child is not running")
	}
	b.must(t, "kill", id, "KILL")
	for i := 0; i < 200 && len(procs()) > 0; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if left := procs(); len(left) > 0 {
		t.Fatalf("kill KILL after the init exited left %v", left)
	}
	// runc's words, which containerd's runc shim matches to take a kill of a finished process.
	if r := b.husk(t, "kill", id, "KILL"); r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Fatalf("kill of a stopped container with nothing left: %s", r)
	}
}

// TestAttackSelfFrozenSubCgroupCannotBlockDelete: a container that may write its cgroup freezes
// a sub-cgroup of its own with a process in it; SIGKILL cannot take a frozen process, and
// thawing the container's cgroup does not thaw a child that froze itself. delete --force then
// failed after 10 s and left the container (runc 1.5.3 too, measured: rc 1, "unable to remove
// container's cgroup"). husk thaws the whole subtree while it kills: delete succeeds, and
// nothing is left, with and without a pid namespace.
func TestAttackSelfFrozenSubCgroupCannotBlockDelete(t *testing.T) {
	freezer := "/sys/fs/cgroup/freezer"
	state, frozen := "freezer.state", "FROZEN"
	if _, err := os.Stat(filepath.Join(freezer, "cgroup.procs")); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
			t.Skip("no freezer on this host")
		}
		freezer, state, frozen = "/sys/fs/cgroup", "cgroup.freeze", "1" // cgroup v2
	}
	script := fmt.Sprintf(`d=%s/sub; mkdir $d && (sleep 1000 & echo $! > $d/cgroup.procs; wait) & sleep 0.3; echo %s > $d/%s; sleep 1000`, freezer, frozen, state)
	for _, pidns := range []bool{true, false} {
		t.Run(fmt.Sprintf("pidns=%v", pidns), func(t *testing.T) {
			b := newBundle(t, "sh", "-c", script)
			if !pidns {
				b.spec.Linux.Namespaces = withoutNamespace(b.spec.Linux.Namespaces, rspec.PIDNamespace)
			}
			for i, m := range b.spec.Mounts {
				if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
					var opts []string
					for _, o := range m.Options {
						if o != "ro" {
							opts = append(opts, o)
						}
					}
					b.spec.Mounts[i].Options = opts
				}
			}
			id := uniqueID(t)
			b.spec.Linux.CgroupsPath = "/husk-test-frozen-" + id
			b.write(t)
			b.must(t, "run", "-d", id)
			pid := int(b.state(t, id)["pid"].(float64))
			dirs := cgroupDirsOf(t, pid)
			var sub string
			for _, d := range dirs {
				if strings.HasPrefix(d, freezer+"/") || freezer == "/sys/fs/cgroup" {
					sub = filepath.Join(d, "sub")
				}
			}
			ok := false
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !ok; time.Sleep(50 * time.Millisecond) {
				b, _ := os.ReadFile(filepath.Join(sub, state))
				ok = strings.TrimSpace(string(b)) == frozen && len(cgroupProcs(sub)) > 0
			}
			if !ok {
				t.Fatalf("the container did not freeze its sub-cgroup %s", sub)
			}
			frozenPids := cgroupProcs(sub)
			r := b.husk(t, "delete", "--force", id)
			if r.code != 0 {
				// Leave nothing for the next test.
				os.WriteFile(filepath.Join(sub, state), []byte("THAWED"), 0o644)
				os.WriteFile(filepath.Join(sub, state), []byte("0"), 0o644)
				b.husk(t, "delete", "--force", id)
				t.Fatalf("delete --force of a container with a self-frozen sub-cgroup: %s", r)
			}
			for _, d := range dirs {
				if _, err := os.Stat(d); err == nil {
					t.Errorf("delete --force left %s", d)
				}
			}
			for _, p := range frozenPids {
				if alive(atoi(p)) {
					t.Errorf("the frozen process %s outlived delete --force", p)
				}
			}
		})
	}
}
