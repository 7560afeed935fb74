package integration

// Conformance defects found by running husk the way other tools do: configs they write, the
// runtime spec's rules, and what runc and crun do with the same input.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// runSleeping runs the bundle's container detached (flags: create's), as `sleep 1000`, and
// returns its id; the bundle's cleanup deletes it.
func runSleeping(t *testing.T, b *bundle, flags []string) string {
	t.Helper()
	b.spec.Process.Args = []string{"sleep", "1000"}
	b.write(t)
	id := uniqueID(t)
	b.must(t, append(append([]string{"run", "-d"}, flags...), id)...)
	return id
}

// bothPaths runs f for the create fast path and for the Go init (--no-fast-path).
func bothPaths(t *testing.T, f func(t *testing.T, flags []string)) {
	for _, slow := range []bool{false, true} {
		t.Run(fmt.Sprintf("slow=%v", slow), func(t *testing.T) {
			var flags []string
			if slow {
				flags = []string{"--no-fast-path"}
			}
			f(t, flags)
		})
	}
}

// errnoProfile is a seccomp profile that answers EPERM to everything it does not list, and
// lists what a shell needs, but not close_range.
func errnoProfile() *rspec.LinuxSeccomp {
	errno := uint(1)
	return &rspec.LinuxSeccomp{DefaultAction: rspec.ActErrno, DefaultErrnoRet: &errno, Syscalls: []rspec.LinuxSyscall{{
		Action: rspec.ActAllow,
		Names: []string{"read", "write", "openat", "open", "close", "fstat", "newfstatat", "stat", "lstat", "statx",
			"mmap", "munmap", "mprotect", "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "ioctl",
			"access", "faccessat", "faccessat2", "execve", "execveat", "exit", "exit_group", "getpid", "getppid",
			"getuid", "geteuid", "getgid", "getegid", "getgroups", "setgroups", "setresuid", "setresgid",
			"setuid", "setgid", "capget", "capset", "prctl", "arch_prctl", "set_tid_address", "set_robust_list",
			"rseq", "prlimit64", "getrlimit", "setrlimit", "chdir", "fchdir", "getcwd", "umask", "setsid",
			"fcntl", "dup", "dup2", "dup3", "pipe", "pipe2", "wait4", "clone", "clone3", "fork", "vfork",
			"uname", "getdents64", "lseek", "readlink", "readlinkat", "sysinfo", "getrandom", "futex",
			"nanosleep", "clock_nanosleep", "clock_gettime", "gettid", "tgkill", "sigaltstack", "poll",
			"ppoll", "pselect6", "select", "madvise", "mremap", "pread64", "writev", "readv", "seccomp",
			"sched_getaffinity", "sched_yield"},
	}}}
}

// TestSeccompProfileWithoutCloseRange: husk marks its fds close-on-exec before it loads the
// container's filter, so a profile that denies close_range by default still runs (every
// container used to fail with "close fds: Operation not permitted").
func TestSeccompProfileWithoutCloseRange(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", "echo SECCOMP-RAN")
		b.spec.Process.NoNewPrivileges = false
		b.spec.Linux.Seccomp = errnoProfile()
		b.write(t)
		// The first create compiles the profile in the Go init; the second takes the fast path.
		for i := 0; i < 2; i++ {
			r := b.husk(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
			if r.code != 0 || !strings.Contains(r.stdout, "SECCOMP-RAN") {
				t.Fatalf("run %d: %s", i, r)
			}
		}
		id := runSleeping(t, b, flags)
		for _, ef := range [][]string{nil, {"--no-fast-path"}} {
			r := b.husk(t, append(append([]string{"exec"}, ef...), id, "echo", "EXEC-RAN")...)
			if r.code != 0 || !strings.Contains(r.stdout, "EXEC-RAN") {
				t.Fatalf("exec %v: %s", ef, r)
			}
		}
	})
}

// TestRuncSpecConfigRuns: the config Debian's `runc spec` writes (an ambient set and no
// inheritable one) runs, with the ambient capabilities that cannot be raised skipped and a
// warning, as runc and crun do.
func TestRuncSpecConfigRuns(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed (make test-deps installs it)")
	}
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t)
		os.Remove(filepath.Join(b.dir, "config.json"))
		cmd := exec.Command("runc", "spec")
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("runc spec: %v %s", err, out)
		}
		data, _ := os.ReadFile(filepath.Join(b.dir, "config.json"))
		var s rspec.Spec
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		if s.Process.Capabilities == nil || len(s.Process.Capabilities.Ambient) == 0 || len(s.Process.Capabilities.Inheritable) != 0 {
			t.Skip("this runc spec writes an inheritable set or no ambient one")
		}
		// Only what runs the test: no terminal, a command, this machine's nofile limit.
		s.Process.Terminal = false
		s.Process.Args = []string{"sh", "-c", "grep -E '^Cap(Amb|Eff)' /proc/self/status"}
		s.Process.Rlimits = nil
		b.spec = &s
		b.write(t)
		r := b.husk(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
		if r.code != 0 {
			t.Fatalf("a config written by runc spec did not run: %s", r)
		}
		if statusField(r.stdout, "CapAmb") != "0000000000000000" {
			t.Fatalf("CapAmb: %q", r.stdout)
		}
		if !strings.Contains(r.stderr, "can't raise ambient capability CAP_") {
			t.Fatalf("no warning about the ambient set: %s", r)
		}
	})
}

// mountinfoLine returns the container's mountinfo line for mount point mp (printed by the
// container with `cat /proc/self/mountinfo`).
func mountinfoLine(out, mp string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == mp {
			return l
		}
	}
	return ""
}

// TestPropagationOfNewMounts: a propagation option on a mount that is not a bind (a tmpfs
// with "shared") applies to the new mount; it failed with EINVAL, applied to the directory
// below.
func TestPropagationOfNewMounts(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "cat", "/proc/self/mountinfo")
		for _, p := range []string{"shared", "slave", "private", "unbindable"} {
			b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/" + p, Type: "tmpfs", Source: "tmpfs", Options: []string{p}})
		}
		b.write(t)
		out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
		want := map[string]string{"/shared": "shared:", "/unbindable": "unbindable"}
		for mp, tag := range want {
			if l := mountinfoLine(out, mp); !strings.Contains(l, tag) {
				t.Errorf("%s: %q lacks %q", mp, l, tag)
			}
		}
		for _, mp := range []string{"/slave", "/private"} {
			if l := mountinfoLine(out, mp); l == "" || strings.Contains(l, "shared:") {
				t.Errorf("%s: %q", mp, l)
			}
		}
	})
}

// TestRootfsPropagationSharedAndUnbindable: crun runs these (runc fails both); husk builds with
// a slave root and applies them to the container's root at the end.
func TestRootfsPropagationSharedAndUnbindable(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		for prop, tag := range map[string]string{"shared": "shared:", "rshared": "shared:", "unbindable": "unbindable", "runbindable": "unbindable"} {
			b := newBundle(t, "cat", "/proc/self/mountinfo")
			b.spec.Linux.RootfsPropagation = prop
			b.write(t)
			r := b.husk(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
			if r.code != 0 {
				t.Fatalf("rootfsPropagation %s: %s", prop, r)
			}
			if l := mountinfoLine(r.stdout, "/"); !strings.Contains(l, tag) {
				t.Errorf("rootfsPropagation %s: / is %q", prop, l)
			}
		}
	})
}

// TestDeviceNodeTypes: every node type the spec allows is created (p: a fifo, u: an
// unbuffered character device); cgroup rules are never derived from them.
func TestDeviceNodeTypes(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", "stat -c '%n %F %t:%T' /dev/myfifo /dev/mynull")
		b.spec.Linux.Devices = []rspec.LinuxDevice{
			{Path: "/dev/myfifo", Type: "p"},
			{Path: "/dev/mynull", Type: "u", Major: 1, Minor: 3},
		}
		b.write(t)
		out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
		for _, want := range []string{"/dev/myfifo fifo", "/dev/mynull character special file 1:3"} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in %q", want, out)
			}
		}
	})
}

// TestFailingPoststartFailsStartPoststopWarns: a failing poststart hook fails start and the
// container is killed, as runc 1.0-1.5 do (runc 1.5's hooks.bats "runc run [hook fails]"; husk
// followed the spec's "warn and go on" and left it running); the hooks after it do not run. A
// failing poststop hook is a warning and the next one runs, as in runc.
func TestFailingPoststartFailsStartPoststopWarns(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	b := newBundle(t, "sleep", "1000")
	fail := rspec.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook-failed >&2; exit 3"}}
	after := rspec.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo x >> " + marker}}
	b.spec.Hooks = &rspec.Hooks{Poststart: []rspec.Hook{after, fail, after}, Poststop: []rspec.Hook{fail, after}}
	b.write(t)
	id := uniqueID(t)
	log := filepath.Join(t.TempDir(), "log.json")
	b.must(t, "create", id)
	r := b.husk(t, "--log", log, "--log-format", "json", "start", id)
	if r.code == 0 || !strings.Contains(r.stderr, "error running poststart hook #1:") {
		t.Fatalf("start with a failing poststart hook: %s", r)
	}
	var st any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st = b.state(t, id)["status"]; st == "stopped" {
			break
		}
	}
	if st != "stopped" {
		t.Fatalf("status after a failing poststart hook: %v, want stopped", st)
	}
	r = b.husk(t, "--log", log, "--log-format", "json", "delete", id)
	if r.code != 0 {
		t.Fatalf("delete with a failing poststop hook: %s", r)
	}
	data, _ := os.ReadFile(log)
	if strings.Count(string(data), `"level":"warning"`) != 1 || !strings.Contains(string(data), "poststop hook #0:") {
		t.Fatalf("log: %s", data)
	}
	if ran, _ := os.ReadFile(marker); string(ran) != "x\nx\n" {
		t.Fatalf("the hook before the failing poststart and the one after the failing poststop ran %q times, want 2", ran)
	}
	assertClean(t, b, id)
}

// TestForceDeleteWithCorruptState: `delete --force` cleans up a container whose state.json is
// truncated or garbage: the init, its cgroup and the state directory go (runc leaves them).
func TestForceDeleteWithCorruptState(t *testing.T) {
	for name, corrupt := range map[string]func([]byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"empty":     func([]byte) []byte { return nil },
		"garbage":   func([]byte) []byte { return []byte("\x00\x01not json") },
	} {
		t.Run(name, func(t *testing.T) {
			b := newBundle(t, "sleep", "1000")
			b.write(t)
			id := uniqueID(t)
			b.must(t, "run", "-d", id)
			pid := int(b.state(t, id)["pid"].(float64))
			path := filepath.Join(b.root, id, "state.json")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(path, corrupt(data), 0o600)
			r := b.husk(t, "delete", "--force", id)
			if r.code != 0 {
				t.Fatalf("delete --force: %s", r)
			}
			if st, _, err := procState(pid); err == nil && st != "Z" {
				t.Fatalf("the init (pid %d) still runs, state %s", pid, st)
			}
			assertClean(t, b, id)
		})
	}
}

// procState returns a process's state letter from /proc/pid/stat.
func procState(pid int) (string, string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	return f[0], s, nil
}

// TestHugeArgumentSaysTooLong: what execve would refuse is refused up front with its meaning,
// not as "write sync-parent: broken pipe".
func TestHugeArgumentSaysTooLong(t *testing.T) {
	b := newBundle(t, "echo", strings.Repeat("x", 10<<20))
	id := uniqueID(t)
	r := b.run(t, id)
	if r.code == 0 || !strings.Contains(r.stderr, "argument list too long") || strings.Contains(r.stderr, "broken pipe") {
		t.Fatalf("a 10 MB argument: %s", r)
	}
	assertClean(t, b, id)
}

// TestConfigStringsQuotedInErrors: a string from the config is quoted in an error, so a
// newline in it cannot split or forge the one-line error.
func TestConfigStringsQuotedInErrors(t *testing.T) {
	b := newBundle(t, "true")
	b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/x", Type: "\nforged", Source: "none"})
	id := uniqueID(t)
	r := b.run(t, id)
	if r.code == 0 || strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") != 0 || !strings.Contains(r.stderr, `"\nforged"`) {
		t.Fatalf("want one line with the type quoted: %s", r)
	}
	assertClean(t, b, id)
}

// TestHomeFromPasswd: a process whose environment lacks HOME gets its user's home from the
// container's /etc/passwd, as with runc, on every path.
func TestHomeFromPasswd(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", "echo HOME=$HOME")
		os.WriteFile(filepath.Join(b.rootfs(), "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n"), 0o644)
		b.spec.Process.User = rspec.User{UID: 1000, GID: 1000}
		b.write(t)
		if out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...); !strings.Contains(out, "HOME=/home/u") {
			t.Fatalf("run: %q", out)
		}
		id := runSleeping(t, b, flags)
		for _, ef := range [][]string{nil, {"--no-fast-path"}} {
			if out := b.must(t, append(append([]string{"exec"}, ef...), id, "sh", "-c", "echo HOME=$HOME")...); !strings.Contains(out, "HOME=/home/u") {
				t.Fatalf("exec %v: %q", ef, out)
			}
			if out := b.must(t, append(append([]string{"exec", "--user", "0"}, ef...), id, "sh", "-c", "echo HOME=$HOME")...); !strings.Contains(out, "HOME=/root") {
				t.Fatalf("exec --user 0 %v: %q", ef, out)
			}
		}
	})
}

// TestDeadlineSchedulerWithCpusetInRuncsWords: the kernel refuses SCHED_DEADLINE to a task
// confined to some CPUs; the error says why in runc 1.5's words (its scheduler.bats reads them)
// instead of a bare "operation not permitted", on both create paths.
func TestDeadlineSchedulerWithCpusetInRuncsWords(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs: a cpuset of one must not be the whole machine")
	}
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "true")
		b.spec.Linux.Resources = &rspec.LinuxResources{CPU: &rspec.LinuxCPU{Cpus: "0"}}
		b.spec.Process.Scheduler = &rspec.Scheduler{Policy: rspec.SchedDeadline, Nice: 19, Runtime: 42000, Deadline: 1000000, Period: 1000000}
		b.write(t)
		id := uniqueID(t)
		r := b.husk(t, append(append([]string{"run"}, flags...), id)...)
		assertOneLineError(t, r, "process scheduler can't be used together with AllowedCPUs")
		assertClean(t, b, id)
	})
}

// TestProcessAttributesApplied: process.scheduler, process.ioPriority, linux.personality and
// linux.memoryPolicy are applied (they were silently ignored), on create and exec, whichever
// path the caller asks for.
func TestProcessAttributesApplied(t *testing.T) {
	// /proc/self/sched's policy line, ionice-style ioprio from /proc (busybox has neither
	// chrt nor ionice), the personality via uname -m, the memory policy from numa_maps.
	report := "grep -E '^policy' /proc/self/sched; grep -E '^se.load.weight|^prio' /proc/self/sched | head -1; uname -m; head -1 /proc/self/numa_maps 2>/dev/null | cut -d' ' -f2"
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", report)
		b.spec.Process.Scheduler = &rspec.Scheduler{Policy: rspec.SchedBatch, Nice: 5}
		b.spec.Process.IOPriority = &rspec.LinuxIOPriority{Class: rspec.IOPRIO_CLASS_IDLE}
		b.spec.Linux.Personality = &rspec.LinuxPersonality{Domain: rspec.PerLinux32}
		b.spec.Linux.MemoryPolicy = &rspec.LinuxMemoryPolicy{Mode: rspec.MpolInterleave, Nodes: "0"}
		b.write(t)
		out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
		for _, want := range []string{"policy", "i686", "interleave:0"} {
			if !strings.Contains(out, want) {
				t.Errorf("create: missing %q in\n%s", want, out)
			}
		}
		if !strings.Contains(out, "policy                                       :                    3") {
			t.Errorf("create: not SCHED_BATCH:\n%s", out)
		}
		id := runSleeping(t, b, flags)
		pid := int(b.state(t, id)["pid"].(float64))
		// ioprio of the container's process as the kernel reports it: class 3 (idle).
		if got := ioprioOf(t, pid); got>>13 != 3 {
			t.Errorf("ioprio of the init: %#x, want the idle class", got)
		}
		out = b.must(t, "exec", id, "sh", "-c", report)
		if !strings.Contains(out, "i686") || !strings.Contains(out, "interleave:0") {
			t.Errorf("exec: the container's personality and memory policy are missing:\n%s", out)
		}
	})
}

// ioprioOf returns ioprio_get(IOPRIO_WHO_PROCESS, pid).
func ioprioOf(t *testing.T, pid int) int {
	r, _, e := syscallIoprioGet(pid)
	if e != 0 {
		t.Fatalf("ioprio_get %d: %v", pid, e)
	}
	return r
}

// TestExecCPUAffinity: process.execCPUAffinity's final set is the exec'd process's affinity.
func TestExecCPUAffinity(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"args":["grep","Cpus_allowed_list","/proc/self/status"],"cwd":"/","env":["PATH=/bin"],"execCPUAffinity":{"initial":"0","final":"0"}}`), 0o644)
	for _, ef := range [][]string{nil, {"--no-fast-path"}} {
		out := b.must(t, append(append([]string{"exec"}, ef...), "--process", proc, id)...)
		if statusField(out, "Cpus_allowed_list") != "0" {
			t.Fatalf("exec %v: %q", ef, out)
		}
	}
	os.WriteFile(proc, []byte(`{"args":["true"],"cwd":"/","execCPUAffinity":{"final":"99999"}}`), 0o644)
	if r := b.husk(t, "exec", "--process", proc, id); r.code == 0 || !strings.Contains(r.stderr, "process.execCPUAffinity.final") {
		t.Fatalf("a bad cpu list: %s", r)
	}
}

// TestNetDevicesMovedAndReturned: linux.netDevices moves a host interface into the container,
// renamed, and back under its host name on delete.
func TestNetDevicesMovedAndReturned(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 is not installed")
	}
	// One end of a veth pair (this kernel has no dummy driver): the peer stays on the host and
	// keeps the pair alive while the container holds the other end.
	host := fmt.Sprintf("hk%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "link", "add", host, "type", "veth", "peer", "name", host+"p").CombinedOutput(); err != nil {
		t.Skipf("cannot make a veth pair: %v %s", err, out)
	}
	defer exec.Command("ip", "link", "del", host+"p").Run()
	b := newBundle(t, "sleep", "1000")
	b.spec.Linux.NetDevices = map[string]rspec.LinuxNetDevice{host: {Name: "ctr0"}}
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	if out := b.must(t, "exec", id, "ip", "link", "show", "ctr0"); !strings.Contains(out, "ctr0") {
		t.Fatalf("inside: %q", out)
	}
	if err := exec.Command("ip", "link", "show", host).Run(); err == nil {
		t.Fatalf("%s is still on the host", host)
	}
	b.must(t, "delete", "-f", id)
	if out, err := exec.Command("ip", "link", "show", host).CombinedOutput(); err != nil {
		t.Fatalf("%s did not come back to the host: %v %s", host, err, out)
	}
	// A device that does not exist fails the create cleanly.
	b.spec.Linux.NetDevices = map[string]rspec.LinuxNetDevice{"nosuchdev0": {}}
	id = uniqueID(t)
	r := b.run(t, id)
	if r.code == 0 || !strings.Contains(r.stderr, `linux.netDevices: move "nosuchdev0"`) {
		t.Fatalf("a missing device: %s", r)
	}
	assertClean(t, b, id)
}

// TestUnavailableFieldsRefused: what the host cannot apply is refused with one line, never
// ignored.
func TestUnavailableFieldsRefused(t *testing.T) {
	if _, err := os.Stat("/sys/fs/resctrl/schemata"); err == nil {
		t.Skip("this host has resctrl")
	}
	b := newBundle(t, "true")
	b.spec.Linux.IntelRdt = &rspec.LinuxIntelRdt{L3CacheSchema: "L3:0=f"}
	id := uniqueID(t)
	r := b.run(t, id)
	if r.code == 0 || !strings.Contains(r.stderr, "linux.intelRdt") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("intelRdt: %s", r)
	}
	assertClean(t, b, id)
}

// withoutNamespace returns the spec's namespaces less those of type t.
func withoutNamespace(nss []rspec.LinuxNamespace, t rspec.LinuxNamespaceType) []rspec.LinuxNamespace {
	var out []rspec.LinuxNamespace
	for _, ns := range nss {
		if ns.Type != t {
			out = append(out, ns)
		}
	}
	return out
}

// TestMountNamespaceInheritedOrJoined: a spec without a mount namespace runs in the caller's
// (the spec: an unlisted namespace is inherited), with the spec's mounts under the rootfs only
// and gone after delete; a mount namespace path is joined; pid 1's is refused.
func TestMountNamespaceInheritedOrJoined(t *testing.T) {
	own, _ := os.Readlink("/proc/self/ns/mnt")
	b := newBundle(t, "sh", "-c", "readlink /proc/1/ns/mnt; grep -c . /proc/self/mountinfo >/dev/null && echo MOUNTS-READ; touch /etc/x 2>&1; true")
	b.spec.Linux.Namespaces = withoutNamespace(b.spec.Linux.Namespaces, rspec.MountNamespace)
	b.write(t)
	id := uniqueID(t)
	out := b.must(t, "run", id)
	if !strings.Contains(out, own) || !strings.Contains(out, "MOUNTS-READ") || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("without a mount namespace: %q, want the caller's %s and a read-only root", out, own)
	}
	assertClean(t, b, id)
	b.spec.Process.Args = []string{"sleep", "1000"}
	b.write(t)
	id = uniqueID(t)
	b.must(t, "run", "-d", id)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if !strings.Contains(string(mi), b.rootfs()+"/proc ") {
		t.Fatalf("the container's /proc is not under its rootfs in the caller's namespace")
	}
	b.must(t, "delete", "-f", id)
	assertClean(t, b, id)

	// Joined by path: the mount namespace of a process that made its own.
	holder := exec.Command("unshare", "-m", "--propagation", "private", "sleep", "1000")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	var path, want string
	for i := 0; i < 200; i++ {
		path = fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid)
		if want, _ = os.Readlink(path); want != "" && want != own {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	j := newBundle(t, "readlink", "/proc/1/ns/mnt")
	j.spec.Linux.Namespaces = append(withoutNamespace(j.spec.Linux.Namespaces, rspec.MountNamespace), rspec.LinuxNamespace{Type: rspec.MountNamespace, Path: path})
	j.write(t)
	if out := j.must(t, "run", uniqueID(t)); strings.TrimSpace(out) != want {
		t.Fatalf("joined mount namespace: %q, want %s", out, want)
	}

	// pid 1's mount namespace, from husk in a namespace of its own: refused.
	t.Run("pid1", func(t *testing.T) {
		if _, err := os.Readlink("/proc/1/ns/mnt"); err != nil {
			t.Skipf("pid 1's namespaces are not readable from this sandbox: %v", err)
		}
		r := newBundle(t, "true")
		r.spec.Linux.Namespaces = append(withoutNamespace(r.spec.Linux.Namespaces, rspec.MountNamespace), rspec.LinuxNamespace{Type: rspec.MountNamespace, Path: "/proc/1/ns/mnt"})
		r.write(t)
		cmd := exec.Command("unshare", "-m", "--propagation", "private", huskBin, "--root", r.root, "run", uniqueID(t))
		cmd.Dir = r.dir
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is the one of pid 1") {
			t.Fatalf("pid 1's mount namespace: %v %s", err, out)
		}
	})
}

// TestHelpAndVersionLikeRunc: runc's help.bats and version.bats with husk's name for runc's
// (those three tests are the naming-only exceptions of make test-runc-compat): every command
// has -h, an unknown one says runc's words, the version has runc's three lines.
func TestHelpAndVersionLikeRunc(t *testing.T) {
	run := func(args ...string) (string, int) {
		out, err := exec.Command(huskBin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	for _, flag := range []string{"-h", "--help"} {
		out, code := run(flag)
		lines := strings.Split(out, "\n")
		if code != 0 || len(lines) < 2 || !strings.HasPrefix(lines[0], "NAME:") || !strings.Contains(lines[1], "husk - Open Container Initiative runtime") {
			t.Fatalf("husk %s: %d %q", flag, code, out)
		}
	}
	for _, cmd := range []string{"checkpoint", "delete", "events", "exec", "kill", "list", "pause", "restore", "resume", "spec", "start", "run", "state", "update"} {
		out, code := run(cmd, "-h")
		lines := strings.Split(out, "\n")
		if code != 0 || len(lines) < 2 || !strings.Contains(lines[1], "husk "+cmd) {
			t.Errorf("husk %s -h: %d %q", cmd, code, out)
		}
	}
	if out, code := run("foo", "-h"); code == 0 || !strings.Contains(out, "No help topic for 'foo'") {
		t.Errorf("husk foo -h: %d %q", code, out)
	}
	out, code := run("-v")
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 3 || !regexpMatch(`^husk version [0-9]+\.[0-9]+\.[0-9]+`, lines[0]) || !strings.HasPrefix(lines[1], "commit:") || !regexpMatch(`^spec: [0-9]+\.[0-9]+\.[0-9]+`, lines[2]) {
		t.Errorf("husk -v: %d %q", code, out)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// TestIDMappedMount: a bind mount with uidMappings/gidMappings (and "idmap"/"ridmap") is an
// idmapped mount: in a user-namespaced container whose root is host uid 100000, the volume's
// host-root files appear owned by root and files the container writes there stay host root's,
// while what it writes to its rootfs belongs to 100000.
func TestIDMappedMount(t *testing.T) {
	vol := t.TempDir()
	os.WriteFile(filepath.Join(vol, "hostfile"), []byte("x"), 0o644)
	os.Chmod(vol, 0o755)
	mapping := []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	for _, opt := range []string{"idmap", "ridmap"} {
		b := newBundle(t, "sh", "-c", "stat -c %u:%g /vol/hostfile; touch /vol/made-inside /tmp/rootfs-file && echo WROTE")
		userNamespaced(b)
		b.spec.Root.Readonly = false
		b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/vol", Type: "bind", Source: vol,
			Options: []string{"rbind", opt}, UIDMappings: mapping, GIDMappings: mapping})
		out := b.mustRun(t, uniqueID(t))
		if !strings.HasPrefix(out, "0:0\n") || !strings.Contains(out, "WROTE") {
			t.Fatalf("%s: %q", opt, out)
		}
		for file, want := range map[string]uint32{filepath.Join(vol, "made-inside"): 0, filepath.Join(b.rootfs(), "tmp/rootfs-file"): 100000} {
			var st syscall.Stat_t
			if err := syscall.Stat(file, &st); err != nil || st.Uid != want {
				t.Errorf("%s: %s owned by %d (%v), want %d", opt, file, st.Uid, err, want)
			}
		}
		os.Remove(filepath.Join(vol, "made-inside"))
	}
	// Without a user namespace too: on-disk id 0 (the mapping's containerID) shows as host id
	// 1000 (its hostID), the same reading as the user-namespaced case above.
	b := newBundle(t, "stat", "-c", "%u", "/vol/hostfile")
	b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/vol", Type: "bind", Source: vol,
		Options: []string{"bind", "idmap"}, UIDMappings: []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
		GIDMappings: []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}})
	if out := strings.TrimSpace(b.mustRun(t, uniqueID(t))); out != "1000" {
		t.Fatalf("idmapped mount without a user namespace: owner %q, want 1000", out)
	}
}

// Checkpoint and restore without a usable CRIU (here: --criu naming none; CRIU cannot dump on
// this host's kernel anyway, make test-systemd runs it in the guest): one line naming what to
// install; the container keeps running, and a failed restore leaves nothing.
func TestCheckpointRestoreWithoutCRIU(t *testing.T) {
	b := newBundle(t)
	id := runSleeping(t, b, nil)
	defer b.husk(t, "delete", "-f", id)
	img := t.TempDir()
	assertOneLineError(t, b.husk(t, "--criu", "/nonexistent/criu", "checkpoint", "--image-path", img, id), "apt-get install criu")
	// runc 1.3's flags are taken (passed to CRIU; the guest's CRIU runs them).
	assertOneLineError(t, b.husk(t, "--criu", "/nonexistent/criu", "checkpoint", "--tcp-skip-in-flight", "--link-remap", "--image-path", img, id), "apt-get install criu")
	if st := b.state(t, id)["status"]; st != "running" {
		t.Errorf("after a failed checkpoint the container is %v", st)
	}
	other := uniqueID(t)
	assertOneLineError(t, b.husk(t, "--criu", "/nonexistent/criu", "restore", "-d", "--image-path", img, other), "apt-get install criu")
	assertClean(t, b, other)
	if out := b.must(t, "features"); !strings.Contains(out, `"org.opencontainers.runc.checkpoint.enabled"`) {
		t.Errorf("features: no checkpoint annotation:\n%s", out)
	}
}

// The init's stdio that is the host's /dev/null is pointed at the container's own, as runc's
// init does: a file of the host's mount namespace is a host inode held open in the container,
// and CRIU refuses to checkpoint it ("Can't lookup mount"); CRI containers without stdin have it.
func TestInitStdioDevNullIsTheContainers(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t)
		id := runSleeping(t, b, flags) // husk's stdin is the host's /dev/null
		defer b.husk(t, "delete", "-f", id)
		pid := int(b.state(t, id)["pid"].(float64))
		var host, got syscall.Stat_t
		if err := syscall.Stat("/dev/null", &host); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/fd/0", pid), &got); err != nil {
			t.Fatal(err)
		}
		if got.Rdev != host.Rdev {
			t.Fatalf("the init's stdin is not a null device (rdev %x)", got.Rdev)
		}
		if got.Dev == host.Dev && got.Ino == host.Ino {
			t.Errorf("the init's stdin is the host's /dev/null (dev %x ino %d), not the container's", got.Dev, got.Ino)
		}
	})
}

// TestTmpCopyUp: a tmpfs with "tmpcopyup" starts with a copy of what the directory it covers
// held (files with their modes and owners, subdirectories, symlinks as symlinks, never
// followed), and writes stay in the tmpfs. It failed with "bad file descriptor" for any
// content, on both create paths. Content larger than the tmpfs fails the create with one
// line and leaves nothing behind.
func TestTmpCopyUp(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", "cat /data/a; stat -c '%a %u' /data/a /data/d; cat /data/d/b; readlink /data/l; touch /data/new && echo WROTE")
		data := filepath.Join(b.rootfs(), "data")
		os.MkdirAll(filepath.Join(data, "d"), 0o755)
		os.WriteFile(filepath.Join(data, "a"), []byte("content-a\n"), 0o640)
		os.Chown(filepath.Join(data, "a"), 123, 0)
		os.WriteFile(filepath.Join(data, "d", "b"), []byte("content-b\n"), 0o644)
		hostSecret := filepath.Join(t.TempDir(), "secret")
		os.WriteFile(hostSecret, []byte("host"), 0o600)
		os.Symlink(hostSecret, filepath.Join(data, "l"))
		b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "nosuid", "nodev"}})
		b.write(t)
		out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
		want := "content-a\n640 123\n755 0\ncontent-b\n" + hostSecret + "\nWROTE\n"
		if out != want {
			t.Fatalf("got %q, want %q", out, want)
		}
		if _, err := os.Stat(filepath.Join(data, "new")); err == nil {
			t.Fatal("a write to the tmpcopyup tmpfs reached the rootfs")
		}
		// Too much to copy: one clean line, nothing left.
		os.WriteFile(filepath.Join(data, "big"), make([]byte, 2<<20), 0o644)
		b.spec.Mounts[len(b.spec.Mounts)-1].Options = []string{"tmpcopyup", "size=1m"}
		b.write(t)
		id := uniqueID(t)
		r := b.husk(t, append(append([]string{"run"}, flags...), id)...)
		assertOneLineError(t, r, "tmpcopyup")
		assertClean(t, b, id)
	})
}

// TestIDMapTopMountOnlyAndImpliedMappings: as runc 1.5, "idmap" (or mappings alone) maps the
// top mount of an rbind and leaves its submounts unmapped (their files show as the overflow
// id), "ridmap" maps them too; idmap without mappings takes the container's user namespace's.
// husk mapped the submounts for rbind,idmap and refused idmap without mappings.
func TestIDMapTopMountOnlyAndImpliedMappings(t *testing.T) {
	vol := t.TempDir()
	os.Chmod(vol, 0o755)
	sub := filepath.Join(vol, "sub")
	os.Mkdir(sub, 0o755)
	if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, "size=1m,mode=755"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(sub, syscall.MNT_DETACH)
	// Both owned by host root: through a mapping of the container's (0 -> 100000), an
	// idmapped mount shows them as host 100000, which the container sees as its root; a mount
	// that is not idmapped shows host root, which the container cannot map (overflow id).
	os.WriteFile(filepath.Join(vol, "top"), nil, 0o644)
	os.WriteFile(filepath.Join(sub, "inner"), nil, 0o644)
	overflow, _ := os.ReadFile("/proc/sys/kernel/overflowuid")
	of := strings.TrimSpace(string(overflow))
	mapping := []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	for _, c := range []struct {
		opt      string
		mappings bool
		want     string // owner of top, then of sub/inner, as the container sees them
	}{
		{"idmap", true, "0 " + of},
		{"ridmap", true, "0 0"},
		{"idmap", false, "0 " + of},
		{"ridmap", false, "0 0"},
	} {
		t.Run(fmt.Sprintf("%s-mappings=%v", c.opt, c.mappings), func(t *testing.T) {
			b := newBundle(t, "sh", "-c", "echo $(stat -c %u /vol/top) $(stat -c %u /vol/sub/inner)")
			userNamespaced(b)
			m := rspec.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", c.opt}}
			if c.mappings {
				m.UIDMappings, m.GIDMappings = mapping, mapping
			}
			b.spec.Mounts = append(b.spec.Mounts, m)
			if out := strings.TrimSpace(b.mustRun(t, uniqueID(t))); out != c.want {
				t.Fatalf("owners of /vol/top and /vol/sub/inner: %q, want %q", out, c.want)
			}
		})
	}
}

// TestSeccompFlags: linux.seccomp.flags are applied, as runc 1.5 applies them, on both create
// paths and for exec: an unknown flag is refused with one line (husk accepted and ignored every
// flag); no flags at all means SPEC_ALLOW, an empty list none (the --debug log says which, in
// runc's words); SECCOMP_FILTER_FLAG_LOG reaches the kernel, which then logs the filter's
// errno actions (an audit line in the kernel log).
func TestSeccompFlags(t *testing.T) {
	b := newBundle(t, "true")
	b.spec.Linux.Seccomp = denyMkdir()
	b.spec.Linux.Seccomp.Flags = []rspec.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}
	b.write(t)
	id := uniqueID(t)
	assertOneLineError(t, b.husk(t, "run", id), `linux.seccomp.flags: unknown flag "SECCOMP_FILTER_FLAG_BOGUS"`)
	assertClean(t, b, id)
	b.spec.Linux.Seccomp.Flags = []rspec.LinuxSeccompFlag{rspec.LinuxSeccompFlagWaitKillableRecv}
	b.write(t)
	assertOneLineError(t, b.husk(t, "run", id), "needs a SCMP_ACT_NOTIFY rule")

	// The newest audit line of a mkdir, not a count: the kernel ring buffer drops old lines
	// as it fills, so a count can stay put while a new line arrives.
	lastSeccompLog := func() string {
		out, err := exec.Command("dmesg").Output()
		if err != nil {
			t.Skipf("dmesg: %v", err)
		}
		last := ""
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, `comm="mkdir"`) {
				last = line
			}
		}
		return last
	}
	bothPaths(t, func(t *testing.T, flags []string) {
		for _, c := range []struct {
			name  string
			flags []rspec.LinuxSeccompFlag
			want  string
			logs  bool
		}{
			{"absent", nil, "seccomp filter flags: 4", false},
			{"empty", []rspec.LinuxSeccompFlag{}, "seccomp filter flags: 0", false},
			{"log", []rspec.LinuxSeccompFlag{rspec.LinuxSeccompFlagLog, "SECCOMP_FILTER_FLAG_TSYNC"}, "seccomp filter flags: 2", true},
			{"all", []rspec.LinuxSeccompFlag{rspec.LinuxSeccompFlagLog, rspec.LinuxSeccompFlagSpecAllow}, "seccomp filter flags: 6", true},
		} {
			b := newBundle(t, "sh", "-c", "mkdir /tmp/x 2>&1; true")
			b.spec.Root.Readonly = false
			b.spec.Linux.Seccomp = denyMkdir()
			b.spec.Linux.Seccomp.Flags = c.flags
			b.write(t)
			if c.flags != nil && len(c.flags) == 0 {
				// rspec drops an empty list (omitempty): write it by hand.
				cfg := filepath.Join(b.dir, "config.json")
				data, _ := os.ReadFile(cfg)
				os.WriteFile(cfg, []byte(strings.Replace(string(data), `"defaultAction"`, `"flags": [], "defaultAction"`, 1)), 0o644)
			}
			// The kernel prints audit lines through printk_ratelimit (10 per 5 s, shared with
			// every other ratelimited message of the machine), so a logged denial can be
			// dropped on a busy machine: a run that should log gets two more tries, each after
			// the ratelimit interval has passed.
			logged := false
			for try := 0; try < 3 && !logged; try++ {
				if try > 0 {
					time.Sleep(5500 * time.Millisecond)
				}
				before := lastSeccompLog()
				r := b.husk(t, append(append([]string{"--debug", "run"}, flags...), uniqueID(t))...)
				if r.code != 0 || !strings.Contains(r.stdout, "Operation not permitted") {
					t.Fatalf("%s: the filter did not deny mkdir: %s", c.name, r)
				}
				if !strings.Contains(r.stderr, c.want) {
					t.Errorf("%s: no %q in the debug log:\n%s", c.name, c.want, r.stderr)
				}
				// The kernel writes the audit line as the syscall returns; give the log a moment.
				for i := 0; i < 20 && !logged; i++ {
					logged = lastSeccompLog() != before
					if !logged && c.logs {
						time.Sleep(50 * time.Millisecond)
					}
				}
				if !c.logs {
					break
				}
			}
			if logged != c.logs {
				t.Errorf("%s: kernel log of the denied mkdir: %v, want %v", c.name, logged, c.logs)
			}
		}
	})
}

// TestMountLabelWithoutSELinuxRefused: linux.mountLabel was never read, while features said
// SELinux is supported. On a host without SELinux it is refused with one line, as
// process.selinuxLabel is; with SELinux the filesystems husk mounts get it as their context.
func TestMountLabelWithoutSELinuxRefused(t *testing.T) {
	if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
		t.Skip("this host runs SELinux")
	}
	b := newBundle(t, "true")
	b.spec.Linux.MountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
	b.write(t)
	id := uniqueID(t)
	assertOneLineError(t, b.run(t, id), `linux.mountLabel "system_u:object_r:container_file_t:s0:c1,c2": SELinux is not enabled on this host`)
	assertClean(t, b, id)
}

// TestTmpfsTakesMountpointMode: a tmpfs over an existing directory takes the directory's mode,
// as runc does (husk gave every tmpfs the kernel's 1777); a mode= option still decides.
func TestTmpfsTakesMountpointMode(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", "stat -c %a /m0711 /mset")
		for _, d := range []string{"m0711", "mset"} {
			os.Mkdir(filepath.Join(b.rootfs(), d), 0o711)
			os.Chmod(filepath.Join(b.rootfs(), d), 0o711)
		}
		b.spec.Mounts = append(b.spec.Mounts,
			rspec.Mount{Destination: "/m0711", Type: "tmpfs", Source: "tmpfs"},
			rspec.Mount{Destination: "/mset", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=750"}})
		b.write(t)
		if out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...); out != "711\n750\n" {
			t.Fatalf("tmpfs modes: %q, want 711 (the directory's) and 750 (mode=)", out)
		}
	})
}

// TestDuplicateMaskedPathMountedOnce: a path listed twice in maskedPaths is masked once (one
// mount, as runc), not two stacked ones.
func TestDuplicateMaskedPathMountedOnce(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", "grep -c ' /proc/uptime ' /proc/self/mountinfo")
		b.spec.Linux.MaskedPaths = []string{"/proc/uptime", "/proc/uptime", "/proc//uptime"}
		b.write(t)
		if out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...); out != "1\n" {
			t.Fatalf("mounts on /proc/uptime: %q, want 1", out)
		}
	})
}

// TestMaskedDirectoriesShareOneTmpfs: every masked directory is the same read-only, empty
// tmpfs (one filesystem, binds of it), as runc 1.5 (mask.bats "directories share tmpfs"); husk
// mounted one tmpfs per directory, which a node masking a directory per CPU pays per container.
func TestMaskedDirectoriesShareOneTmpfs(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", `stat -c %d /m1 /m2 /m3 | uniq | wc -l; ls -A /m1 /m2 /m3 | grep -v : | grep -c . ; touch /m2/x 2>&1; grep -c ' /m[123] .* - tmpfs tmpfs ro' /proc/self/mountinfo`)
		for _, d := range []string{"m1", "m2", "m3"} {
			os.MkdirAll(filepath.Join(b.rootfs(), d, "hidden"), 0o755)
		}
		b.spec.Root.Readonly = false
		b.spec.Linux.MaskedPaths = []string{"/m1", "/m2", "/m3"}
		b.write(t)
		out := b.husk(t, append(append([]string{"run"}, flags...), uniqueID(t))...).stdout
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || lines[0] != "1" || lines[1] != "0" || !strings.Contains(lines[2], "Read-only file system") || lines[3] != "3" {
			t.Fatalf("masked directories: want one device, empty, read-only, three ro tmpfs mounts; got:\n%s", out)
		}
	})
}

// TestMaskedPathsResolveInsideTheRootfs: a masked path is looked up inside the rootfs, its
// symlinked parents too (an absolute one, and one that climbs past the root, both land inside
// it, as runc's securejoin lookup), and a symlink as its last component is left alone (not
// followed to what it names). Kept when masking went from two opens per path to one openat2.
func TestMaskedPathsResolveInsideTheRootfs(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", `ls -A /target/a /target/b /target/keep | grep -v -e : -e '^$' | tr '\n' ' '`)
		for _, d := range []string{"target/a/seen-a", "target/b/seen-b", "target/keep/seen-keep"} {
			os.MkdirAll(filepath.Join(b.rootfs(), d), 0o755)
		}
		os.Symlink("/target", filepath.Join(b.rootfs(), "abs"))
		os.Symlink("../../../../../../../../target", filepath.Join(b.rootfs(), "climb"))
		os.Symlink("/target/keep", filepath.Join(b.rootfs(), "last"))
		b.spec.Root.Readonly = false
		b.spec.Linux.MaskedPaths = []string{"/abs/a", "/climb/b", "/last", "/proc/self/root/target/keep"}
		b.write(t)
		if out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...); out != "seen-keep " {
			t.Fatalf("visible under /target/a, /target/b, /target/keep: %q, want only seen-keep (a and b masked through their symlinked parents, keep named only by a symlink and a magic link)", out)
		}
	})
}

// TestEmptyHomeFromPasswd: an empty HOME= in the config is replaced from the image's
// /etc/passwd, as runc 1.5 does (husk kept it empty), on both create paths and for exec.
func TestEmptyHomeFromPasswd(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", "env | grep -c '^HOME=' ; echo HOME=$HOME")
		os.WriteFile(filepath.Join(b.rootfs(), "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
		b.spec.Process.Env = append(b.spec.Process.Env, "HOME=")
		b.write(t)
		if out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...); out != "1\nHOME=/root\n" {
			t.Fatalf("run with HOME=: %q", out)
		}
		id := runSleeping(t, b, flags)
		defer b.husk(t, "delete", "-f", id)
		for _, ef := range [][]string{nil, {"--no-fast-path"}} {
			if out := b.must(t, append(append([]string{"exec", "--env", "HOME="}, ef...), id, "sh", "-c", "echo HOME=$HOME")...); out != "HOME=/root\n" {
				t.Fatalf("exec %v with HOME=: %q", ef, out)
			}
		}
	})
}

// TestReadonlyRootfsKeepsItsFlags: root.readonly makes the rootfs read-only on top of its own
// flags: a rootfs bound nosuid,nodev on the host stays so, as runc 1.5 (husk's remount cleared
// them).
func TestReadonlyRootfsKeepsItsFlags(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "awk", `$5 == "/" {print "," $6 ","}`, "/proc/self/mountinfo")
		b.spec.Root.Readonly = true
		b.write(t)
		rootfs := b.rootfs()
		if err := syscall.Mount(rootfs, rootfs, "", syscall.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		defer syscall.Unmount(rootfs, syscall.MNT_DETACH)
		if err := syscall.Mount("", rootfs, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
			t.Fatal(err)
		}
		out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
		for _, want := range []string{",ro,", ",nosuid,", ",nodev,"} {
			if !strings.Contains(out, want) {
				t.Errorf("the read-only rootfs's options %q lack %s", strings.TrimSpace(out), want)
			}
		}
	})
}

// TestBindThroughDanglingSymlink: a mount destination through a dangling symlink of the image
// gets its target made inside the rootfs, as runc 1.5 (husk failed with "no such file or
// directory"); one that climbs out of the rootfs is still refused.
func TestBindThroughDanglingSymlink(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		for _, c := range []struct{ link, target, dest, resolved string }{
			{"/etc/hosts", "/tmp/hosts", "/etc/hosts", "tmp/hosts"},
			{"/jump", "/tmp/foo/bar", "/jump/baz/hosts", "tmp/foo/bar/baz/hosts"},
		} {
			b := newBundle(t, "cat", c.dest)
			os.Remove(filepath.Join(b.rootfs(), c.link))
			if err := os.Symlink(c.target, filepath.Join(b.rootfs(), c.link)); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(t.TempDir(), "hosts")
			os.WriteFile(src, []byte("127.0.0.1 bound\n"), 0o644)
			b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: c.dest, Type: "bind", Source: src, Options: []string{"bind"}})
			b.write(t)
			if out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...); out != "127.0.0.1 bound\n" {
				t.Fatalf("%s -> %s: %q", c.link, c.target, out)
			}
			if _, err := os.Stat(filepath.Join(b.rootfs(), c.resolved)); err != nil {
				t.Fatalf("%s -> %s: the target %s was not made in the rootfs: %v", c.link, c.target, c.resolved, err)
			}
		}
		// A relative one that climbs out stays refused (CVE-2021-30465), and nothing is made.
		b := newBundle(t, "true")
		os.Symlink("../../../../outside-hosts", filepath.Join(b.rootfs(), "etc/escape"))
		b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/etc/escape", Type: "bind", Source: "/etc/hostname", Options: []string{"bind"}})
		b.write(t)
		id := uniqueID(t)
		r := b.husk(t, append(append([]string{"run"}, flags...), id)...)
		assertOneLineError(t, r, "escapes the rootfs")
		if _, err := os.Stat("/outside-hosts"); err == nil {
			t.Fatal("a symlink's target was made outside the rootfs")
		}
		assertClean(t, b, id)
	})
}

// TestDestinationWithRootfsPrefix: a mount destination written with the rootfs's host path in
// front names the same place inside (runc's LexicallyStripRoot; runc 1.5's mount-order test
// writes them so), and a bind source inside the rootfs sees the mounts made before it.
func TestDestinationWithRootfsPrefix(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "cat", "/final/file")
		src := t.TempDir()
		os.Chmod(src, 0o755)
		os.WriteFile(filepath.Join(src, "file"), []byte("from the first mount\n"), 0o644)
		os.MkdirAll(filepath.Join(b.rootfs(), "mnt"), 0o755)
		b.spec.Mounts = append(b.spec.Mounts,
			rspec.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"rbind"}},
			rspec.Mount{Destination: filepath.Join(b.rootfs(), "final"), Type: "bind", Source: filepath.Join(b.rootfs(), "mnt"), Options: []string{"rbind"}})
		b.write(t)
		if out := b.must(t, append(append([]string{"run"}, flags...), uniqueID(t))...); out != "from the first mount\n" {
			t.Fatalf("got %q", out)
		}
	})
}

// TestDebugLogNamesTheSealedInit: --debug says how the init binary was sealed, as runc logs its
// exeseal step (runc 1.5's run.bats "[/proc/self/exe clone]" reads runc's words; husk's name
// its own binary), for run and exec.
func TestDebugLogNamesTheSealedInit(t *testing.T) {
	b := newBundle(t, "true")
	b.write(t)
	r := b.husk(t, "--debug", "run", uniqueID(t))
	if r.code != 0 || !strings.Contains(r.stderr, "husk exeseal: using husk-init clone") {
		t.Fatalf("run --debug: no exeseal line: %s", r)
	}
	overlay, _ := os.ReadFile("/proc/filesystems")
	if strings.Contains(string(overlay), "\toverlay\n") && !strings.Contains(r.stderr, "husk exeseal: using overlayfs for sealed husk-init") {
		t.Errorf("run --debug: overlayfs is available, but the log does not say it sealed with it:\n%s", r.stderr)
	}
	id := runSleeping(t, b, nil)
	defer b.husk(t, "delete", "-f", id)
	if r := b.husk(t, "--debug", "exec", id, "true"); !strings.Contains(r.stderr, "husk exeseal: using husk-init clone") {
		t.Errorf("exec --debug: no exeseal line: %s", r)
	}
}

// TestRelativeMountDestinationWarnsAndRuns: a relative mount destination ("tmp/m") names the
// same place as "/tmp/m", with runc 1.5's warning (husk refused it; runc 1.5's idmap.bats "idmap
// mount with relative path" runs one), on both create paths and in a user namespace.
func TestRelativeMountDestinationWarnsAndRuns(t *testing.T) {
	src := t.TempDir()
	os.Chmod(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("here\n"), 0o644)
	for _, userns := range []bool{false, true} {
		t.Run(fmt.Sprintf("userns=%v", userns), func(t *testing.T) {
			bothPaths(t, func(t *testing.T, flags []string) {
				b := newBundle(t, "cat", "/tmp/m/f")
				if userns {
					userNamespaced(b)
				}
				b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "tmp/m", Type: "bind", Source: src, Options: []string{"rbind"}})
				b.write(t)
				id := uniqueID(t)
				r := b.husk(t, append(append([]string{"run"}, flags...), id)...)
				if r.code != 0 || r.stdout != "here\n" || !strings.Contains(r.stderr, "mount destination tmp/m is not absolute") {
					t.Fatalf("relative destination: want it run at /tmp/m with a warning: %s", r)
				}
				assertClean(t, b, id)
			})
		})
	}
}

// TestRsharedVolumePropagatesBothWays: with rootfsPropagation "rshared" (what containerd sets
// for a Bidirectional volume), a volume bound "rbind,rshared" from a shared host mount is a
// peer of the host's: a mount made in the container appears on the host, and one made on the
// host appears in the container (critest's "rshared should support propagation from host to
// container and vice versa"; husk made / rslave first, so the volume was only a slave). The
// container's own mounts (proc, dev, its rootfs) never reach the host, on both create paths.
func TestRsharedVolumePropagatesBothWays(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		vol := t.TempDir()
		if err := syscall.Mount(vol, vol, "", syscall.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		defer syscall.Unmount(vol, syscall.MNT_DETACH)
		if err := syscall.Mount("", vol, "", syscall.MS_SHARED|syscall.MS_REC, ""); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(vol, "from-container"), 0o755)
		os.MkdirAll(filepath.Join(vol, "from-host"), 0o755)
		b := newBundle(t, "sh", "-c", "mount -t tmpfs -o size=1k husk-propagation /vol/from-container && touch /vol/from-container/made && while [ ! -e /vol/from-host/seen ]; do sleep 0.05; done; echo seen; sleep 1000")
		b.spec.Root.Readonly = false
		b.spec.Process.Capabilities.Bounding = append(b.spec.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		b.spec.Process.Capabilities.Effective = append(b.spec.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
		b.spec.Process.Capabilities.Permitted = append(b.spec.Process.Capabilities.Permitted, "CAP_SYS_ADMIN")
		b.spec.Linux.RootfsPropagation = "rshared"
		b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rshared"}})
		b.write(t)
		id := uniqueID(t)
		b.must(t, append(append([]string{"run", "-d"}, flags...), id)...)
		defer b.husk(t, "delete", "-f", id)
		made := filepath.Join(vol, "from-container", "made")
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(made); err == nil {
				break
			}
		}
		if _, err := os.Stat(made); err != nil {
			t.Fatalf("the container's mount under the rshared volume did not reach the host: %v", err)
		}
		defer syscall.Unmount(filepath.Join(vol, "from-container"), syscall.MNT_DETACH)
		if err := syscall.Mount("tmpfs", filepath.Join(vol, "from-host"), "tmpfs", 0, "size=1k"); err != nil {
			t.Fatal(err)
		}
		defer syscall.Unmount(filepath.Join(vol, "from-host"), syscall.MNT_DETACH)
		os.WriteFile(filepath.Join(vol, "from-host", "seen"), nil, 0o644)
		ok := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !ok; time.Sleep(50 * time.Millisecond) {
			out, _ := exec.Command("sh", "-c", "cat /proc/"+fmt.Sprint(int(b.state(t, id)["pid"].(float64)))+"/mountinfo").Output()
			ok = strings.Contains(string(out), "/vol/from-host ")
		}
		if !ok {
			t.Errorf("the host's mount under the shared volume did not reach the container")
		}
		// Nothing of the container's own reached the host.
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mi), b.rootfs()+"/proc ") || strings.Contains(string(mi), b.rootfs()+"/dev ") {
			t.Errorf("the container's proc or dev mount is on the host:\n%s", mi)
		}
	})
}

// TestOOMScoreAdjInJoinedUserNamespace: a container that joins another's user namespace by
// path (containerd 2.x's user-namespaced pods) gets its process.oomScoreAdj (containerd always
// sets one). husk wrote it from the init after joining, where /proc/self/oom_score_adj is not
// the init's to write (permission denied); the parent writes it now, as runc's nsexec does
// before joining, on both create paths and for exec.
func TestOOMScoreAdjInJoinedUserNamespace(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		pod := newBundle(t)
		userNamespaced(pod)
		podID := runSleeping(t, pod, flags)
		defer pod.husk(t, "delete", "-f", podID)
		podPid := int(pod.state(t, podID)["pid"].(float64))

		b := newBundle(t, "cat", "/proc/self/oom_score_adj")
		ownedByMappedRoot(b)
		b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, rspec.LinuxNamespace{Type: rspec.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", podPid)})
		adj := 500
		b.spec.Process.OOMScoreAdj = &adj
		b.write(t)
		id := uniqueID(t)
		if r := b.husk(t, append(append([]string{"run"}, flags...), id)...); r.code != 0 || r.stdout != "500\n" {
			t.Fatalf("oomScoreAdj 500 in a joined user namespace: %s", r)
		}
		assertClean(t, b, id)
		proc := filepath.Join(t.TempDir(), "process.json")
		os.WriteFile(proc, []byte(`{"args":["cat","/proc/self/oom_score_adj"],"env":["PATH=/bin:/usr/bin"],"cwd":"/","oomScoreAdj":300,"user":{"uid":0,"gid":0}}`), 0o644)
		if out := pod.must(t, "exec", "--process", proc, podID); out != "300\n" {
			t.Errorf("exec with oomScoreAdj 300 in a user-namespaced container: %q", out)
		}
	})
}

// TestRunFailureInRuncsWords: a container whose init fails to mount reports it on one line in
// runc's chain, "husk run failed: unable to start container process: error during container
// init: error mounting "<source>" to rootfs at "<destination>": ..." (runc 1.5's mounts_sshfs
// tests read it with runc's name), and "husk create failed: ..." for create; both create paths.
func TestRunFailureInRuncsWords(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "true")
		b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=bogus"}})
		b.write(t)
		for _, cmd := range []string{"run", "create"} {
			id := uniqueID(t) + "-" + cmd
			r := b.husk(t, append(append([]string{cmd}, flags...), id)...)
			assertOneLineError(t, r, `husk `+cmd+` failed: unable to start container process: error during container init: error mounting "tmpfs" to rootfs at "/mnt": `)
			assertClean(t, b, id)
		}
	})
}
