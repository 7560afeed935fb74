package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestRunReportsProcessView(t *testing.T) {
	b := newBundle(t, "sh", "-c", `echo "host=$(hostname) pid=$$ cwd=$(pwd) uid=$(id -u) gid=$(id -g) foo=$FOO"`)
	b.spec.Hostname = "inside"
	b.spec.Process.Env = append(b.spec.Process.Env, "FOO=bar")
	b.spec.Process.Cwd = "/tmp"
	id := uniqueID(t)
	out := b.mustRun(t, id)
	want := "host=inside pid=1 cwd=/tmp uid=0 gid=0 foo=bar"
	if strings.TrimSpace(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	assertClean(t, b, id)
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
	}{{"exit 0", 0}, {"exit 3", 3}, {"kill -9 $$", 137}, {"kill -TERM $$", 143}} {
		b := newBundle(t, "sh", "-c", tc.script)
		// Without a pid namespace the shell is not an init, so it can die of its own signal.
		b.spec.Linux.Namespaces = b.spec.Linux.Namespaces[1:]
		if r := b.run(t, uniqueID(t)); r.code != tc.code {
			t.Errorf("%q: %s, want exit %d", tc.script, r, tc.code)
		}
	}
}

func TestCapabilitiesAndNoNewPrivs(t *testing.T) {
	b := newBundle(t, "cat", "/proc/self/status")
	out := b.mustRun(t, uniqueID(t))
	// CAP_AUDIT_WRITE(29) | CAP_KILL(5) | CAP_NET_BIND_SERVICE(10)
	want := fmt.Sprintf("%016x", uint64(1)<<29|1<<5|1<<10)
	for _, f := range []string{"CapEff", "CapPrm", "CapBnd"} {
		if got := statusField(out, f); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	if got := statusField(out, "CapInh"); got != "0000000000000000" {
		t.Errorf("CapInh = %s, want empty (CVE-2022-29162)", got)
	}
	if got := statusField(out, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %s, want 1", got)
	}

	b = newBundle(t, "cat", "/proc/self/status")
	b.spec.Process.NoNewPrivileges = false
	b.spec.Process.Capabilities.Ambient = []string{"CAP_KILL"}
	b.spec.Process.Capabilities.Inheritable = []string{"CAP_KILL"}
	b.spec.Process.User = rspec.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}}
	out = b.mustRun(t, uniqueID(t))
	if got := statusField(out, "CapAmb"); got != fmt.Sprintf("%016x", 1<<5) {
		t.Errorf("CapAmb = %s, want CAP_KILL", got)
	}
	if got := statusField(out, "NoNewPrivs"); got != "0" {
		t.Errorf("NoNewPrivs = %s, want 0", got)
	}
	if got := statusField(out, "Uid"); got != "1000\t1000\t1000\t1000" {
		t.Errorf("Uid = %q", got)
	}
	if got := statusField(out, "Groups"); got != "10 20" {
		t.Errorf("Groups = %q, want 10 20", got)
	}
}

func TestRlimitsAndUmask(t *testing.T) {
	b := newBundle(t, "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c; umask")
	b.spec.Process.Rlimits = []rspec.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}, {Type: "RLIMIT_CORE", Soft: 0, Hard: 0}}
	mask := uint32(0o027)
	b.spec.Process.User.Umask = &mask
	out := strings.Fields(b.mustRun(t, uniqueID(t)))
	if strings.Join(out, " ") != "512 1024 0 0027" {
		t.Fatalf("got %v, want [512 1024 0 0027]", out)
	}
}

func TestMountsMaskedAndReadonlyPaths(t *testing.T) {
	b := newBundle(t, "sh", "-c", `
		cat /proc/self/mountinfo
		cat /proc/kcore >/dev/null 2>&1 && echo KCORE-READABLE
		ls /sys/firmware | wc -l | sed 's/^/FIRMWARE=/'
		echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo PROCSYS-WRITABLE
		touch /rootfile 2>/dev/null && echo ROOT-WRITABLE
		echo x > /data/f 2>/dev/null && echo DATA-WRITABLE
		cat /data/hello; cat /etc/host-file
		touch /scratch/ok && echo SCRATCH-OK`)
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "hello"), []byte("HELLO\n"), 0o644)
	file := filepath.Join(t.TempDir(), "host-file")
	os.WriteFile(file, []byte("FILE-BIND\n"), 0o644)
	b.spec.Mounts = append(b.spec.Mounts,
		rspec.Mount{Destination: "/data", Type: "bind", Source: data, Options: []string{"rbind", "ro", "nosuid", "nodev"}},
		rspec.Mount{Destination: "/etc/host-file", Type: "bind", Source: file, Options: []string{"bind", "ro"}},
		rspec.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=1777"}},
	)
	b.spec.Mounts[len(b.spec.Mounts)-3].Destination = "/data" // keep order stable
	b.spec.Root.Readonly = true
	out := b.mustRun(t, uniqueID(t))
	for _, bad := range []string{"KCORE-READABLE", "PROCSYS-WRITABLE", "ROOT-WRITABLE", "DATA-WRITABLE"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s\n%s", bad, out)
		}
	}
	for _, good := range []string{"FIRMWARE=0", "HELLO", "FILE-BIND", "SCRATCH-OK"} {
		if !strings.Contains(out, good) {
			t.Errorf("missing %s in\n%s", good, out)
		}
	}
	mounts := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 8 {
			for i, x := range f {
				if x == "-" && i+1 < len(f) {
					mounts[f[4]] = f[i+1] + " " + f[5]
				}
			}
		}
	}
	for mp, want := range map[string]string{"/": "", "/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs", "/dev/mqueue": "mqueue", "/sys": "sysfs", "/sys/fs/cgroup": "tmpfs", "/data": "", "/scratch": "tmpfs"} {
		got, ok := mounts[mp]
		if !ok || (want != "" && !strings.HasPrefix(got, want+" ")) {
			t.Errorf("mount %s: got %q, want type %q", mp, got, want)
		}
	}
	if !strings.Contains(mounts["/"], "ro") || !strings.Contains(mounts["/data"], "ro,nosuid,nodev") {
		t.Errorf("/ and /data should be read-only: / %q, /data %q", mounts["/"], mounts["/data"])
	}
}

func TestDevices(t *testing.T) {
	b := newBundle(t, "sh", "-c", "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/fuse; for l in /dev/ptmx /dev/fd /dev/stdin; do readlink $l; done; echo x > /dev/null && echo NULL-OK; head -c 4 /dev/zero | wc -c")
	mode := os.FileMode(0o600)
	b.spec.Linux.Devices = []rspec.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode}}
	out := b.mustRun(t, uniqueID(t))
	for _, want := range []string{"crw-rw-rw-    1 root     root        1,   3 ", "1,   5 ", "1,   7 ", "1,   8 ", "1,   9 ", "5,   0 ", "crw-------    1 root     root       10, 229 ", "pts/ptmx", "/proc/self/fd\n", "/proc/self/fd/0", "NULL-OK", "\n4\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestUserNamespace(t *testing.T) {
	b := newBundle(t, "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/x && stat -c %u /tmp/x")
	b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, rspec.LinuxNamespace{Type: rspec.UserNamespace})
	b.spec.Root.Readonly = false
	b.spec.Linux.UIDMappings = []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.spec.Linux.GIDMappings = []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	// The mapped root must be able to reach the rootfs (as with runc) and own it for a
	// writable /tmp.
	ownedByMappedRoot(b)
	out := b.mustRun(t, uniqueID(t))
	f := strings.Fields(out)
	if len(f) < 8 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" || f[6] != "0" || f[7] != "0" {
		t.Fatalf("unexpected user namespace view:\n%s", out)
	}
	if st, err := os.Stat(filepath.Join(b.rootfs(), "tmp/x")); err != nil || st.Sys().(interface{}) == nil {
		t.Fatalf("file made in the container is missing: %v", err)
	}
}

func TestJoinNamespacesByPath(t *testing.T) {
	// A first container plays the pod sandbox; a second joins its network, ipc and uts
	// namespaces by path, as containers of a Kubernetes pod do.
	sandbox := newBundle(t, "sleep", "1000")
	sandbox.spec.Hostname = "pod"
	sandbox.write(t)
	sid := uniqueID(t) + "-sandbox"
	sandbox.must(t, "run", "-d", sid)
	defer sandbox.husk(t, "delete", "-f", sid)
	pid := int(sandbox.state(t, sid)["pid"].(float64))

	b := newBundle(t, "sh", "-c", "for n in net ipc uts; do readlink /proc/self/ns/$n; done; hostname")
	b.root = sandbox.root
	b.spec.Hostname = ""
	var ns []rspec.LinuxNamespace
	for _, n := range b.spec.Linux.Namespaces {
		switch n.Type {
		case rspec.NetworkNamespace, rspec.IPCNamespace, rspec.UTSNamespace:
			n.Path = fmt.Sprintf("/proc/%d/ns/%s", pid, map[rspec.LinuxNamespaceType]string{rspec.NetworkNamespace: "net", rspec.IPCNamespace: "ipc", rspec.UTSNamespace: "uts"}[n.Type])
		}
		ns = append(ns, n)
	}
	b.spec.Linux.Namespaces = ns
	out := b.mustRun(t, uniqueID(t))
	for _, n := range []string{"net", "ipc", "uts"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
		if !strings.Contains(out, want) {
			t.Errorf("%s namespace: want %s in\n%s", n, want, out)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(out), "pod") {
		t.Errorf("hostname: want the sandbox's, got\n%s", out)
	}
}

func TestSeccomp(t *testing.T) {
	b := newBundle(t, "sh", "-c", "mkdir /tmp/a 2>&1; chmod 600 /tmp 2>&1; echo done")
	eperm, enospc := uint(1), uint(28)
	b.spec.Linux.Seccomp = &rspec.LinuxSeccomp{
		DefaultAction: rspec.ActAllow,
		Architectures: []rspec.Arch{rspec.ArchX86_64, rspec.ArchX86, rspec.ArchX32},
		Syscalls: []rspec.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: rspec.ActErrno, ErrnoRet: &enospc},
			{Names: []string{"chmod", "fchmodat", "fchmodat2"}, Action: rspec.ActErrno, ErrnoRet: &eperm,
				Args: []rspec.LinuxSeccompArg{{Index: 1, Value: 0o600, Op: rspec.OpEqualTo}}},
		},
	}
	out := b.mustRun(t, uniqueID(t))
	if !strings.Contains(out, "No space left on device") || !strings.Contains(out, "Operation not permitted") || !strings.Contains(out, "done") {
		t.Fatalf("seccomp rules not applied:\n%s", out)
	}
	// Without no_new_privs the filter must still load (husk still holds CAP_SYS_ADMIN then).
	b.spec.Process.NoNewPrivileges = false
	if out := b.mustRun(t, uniqueID(t)); !strings.Contains(out, "No space left on device") {
		t.Fatalf("seccomp without no_new_privs:\n%s", out)
	}
}

func TestSysctlAndDomainname(t *testing.T) {
	b := newBundle(t, "sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname")
	b.spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	b.spec.Domainname = "example.org"
	if out := strings.Fields(b.mustRun(t, uniqueID(t))); strings.Join(out, " ") != "1 example.org" {
		t.Fatalf("got %v", out)
	}
}

func TestHooks(t *testing.T) {
	b := newBundle(t, "true")
	log := filepath.Join(t.TempDir(), "hooks.log")
	hook := func(name string) rspec.Hook {
		// Each hook records its name and the state's status and pid (from stdin).
		return rspec.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `read s; echo "` + name + ` $s" >> ` + log}}
	}
	b.spec.Hooks = &rspec.Hooks{
		CreateRuntime:   []rspec.Hook{hook("createRuntime")},
		CreateContainer: []rspec.Hook{hook("createContainer")},
		StartContainer:  []rspec.Hook{{Path: "/bin/true"}},
		Poststart:       []rspec.Hook{hook("poststart")},
		Poststop:        []rspec.Hook{hook("poststop")},
	}
	id := uniqueID(t)
	b.mustRun(t, id)
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var names []string
	for _, l := range lines {
		names = append(names, strings.Fields(l)[0])
		if !strings.Contains(l, `"id":"`+id+`"`) {
			t.Errorf("hook state lacks the id: %s", l)
		}
	}
	if strings.Join(names, ",") != "createRuntime,createContainer,poststart,poststop" {
		t.Fatalf("hook order: %v", names)
	}
	// A failing hook fails create and leaves nothing behind.
	b.spec.Hooks = &rspec.Hooks{CreateRuntime: []rspec.Hook{{Path: "/bin/false"}}}
	b.write(t)
	id = uniqueID(t)
	if r := b.husk(t, "create", id); r.code == 0 || !strings.Contains(r.stderr, "error running createRuntime hook #0:") {
		t.Fatalf("failing hook: %s", r)
	}
	assertClean(t, b, id)
}

func TestLifecycleAndState(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.spec.Annotations = map[string]string{"org.example": "yes"}
	b.write(t)
	id := uniqueID(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	b.must(t, "create", "--pid-file", pidFile, id)
	st := b.state(t, id)
	pidData, _ := os.ReadFile(pidFile)
	if st["status"] != "created" || st["id"] != id || st["bundle"] != b.dir || st["rootfs"] != b.rootfs() ||
		strconv.Itoa(int(st["pid"].(float64))) != string(pidData) || st["annotations"].(map[string]any)["org.example"] != "yes" {
		t.Fatalf("state after create: %v (pid file %q)", st, pidData)
	}
	// The init sits in the container's cgroup from the start.
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%s/cgroup", pidData))
	if !strings.Contains(string(cg), "/"+id+"\n") {
		t.Errorf("init is not in the container cgroup:\n%s", cg)
	}
	b.must(t, "start", id)
	if st := b.state(t, id); st["status"] != "running" {
		t.Fatalf("after start: %v", st)
	}
	if r := b.husk(t, "start", id); r.code == 0 || !strings.Contains(r.stderr, "running") {
		t.Errorf("second start: %s", r)
	}
	if r := b.husk(t, "delete", id); r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("delete of a running container: %s", r)
	}
	list := b.must(t, "list", "--format", "json")
	// One line, as runc's list prints it.
	if !strings.Contains(list, `"id":"`+id+`"`) || strings.Count(strings.TrimSpace(list), "\n") != 0 {
		t.Errorf("list: %s", list)
	}
	if q := strings.TrimSpace(b.must(t, "list", "-q")); q != id {
		t.Errorf("list -q: %q", q)
	}
	b.must(t, "pause", id)
	if st := b.state(t, id); st["status"] != "paused" {
		t.Fatalf("after pause: %v", st)
	}
	b.must(t, "resume", id)
	b.must(t, "kill", id, "SIGUSR1") // ignored by sleep as pid 1
	b.must(t, "kill", id, "KILL")
	b.waitStatus(t, id, "stopped")
	if st := b.state(t, id); st["pid"].(float64) != 0 {
		t.Errorf("stopped container reports pid %v", st["pid"])
	}
	b.must(t, "delete", id)
	assertClean(t, b, id)
	if r := b.husk(t, "state", id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("state of deleted: %s", r)
	}
}

func TestKillSignalForms(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	for _, sig := range []string{"9", "KILL", "SIGKILL", "kill"} {
		id := uniqueID(t)
		b.must(t, "run", "-d", id)
		b.must(t, "kill", id, sig)
		b.waitStatus(t, id, "stopped")
		b.must(t, "delete", id)
	}
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	if r := b.husk(t, "kill", id, "NOPE"); r.code == 0 || !strings.Contains(r.stderr, "unknown signal") {
		t.Errorf("bad signal: %s", r)
	}
	b.must(t, "kill", "--all", id, "KILL")
	b.waitStatus(t, id, "stopped")
}

func TestExec(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	out := b.must(t, "exec", "--env", "X=1", "--cwd", "/tmp", "--user", "1000:1000", id, "sh", "-c", "echo $X $(pwd) $(id -u):$(id -g); cat /proc/self/status | grep NoNewPrivs")
	if !strings.Contains(out, "1 /tmp 1000:1000") || !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Fatalf("exec: %q", out)
	}
	// CVE-2022-29162: --cap grants the capability, never an inheritable one.
	out = b.must(t, "exec", "--cap", "CAP_SYS_ADMIN", id, "cat", "/proc/self/status")
	if statusField(out, "CapInh") != "0000000000000000" || statusField(out, "CapEff") != fmt.Sprintf("%016x", uint64(1)<<29|1<<5|1<<10|1<<21) {
		t.Errorf("exec --cap CAP_SYS_ADMIN: CapInh %s CapEff %s", statusField(out, "CapInh"), statusField(out, "CapEff"))
	}
	if r := b.husk(t, "exec", id, "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exec exit code: %s", r)
	}
	// exec joins the container's pid namespace.
	if out := b.must(t, "exec", id, "cat", "/proc/1/cmdline"); !strings.HasPrefix(out, "sleep") {
		t.Errorf("exec pid namespace: %q", out)
	}
	proc := `{"args":["sh","-c","echo from-process-json $Y"],"env":["PATH=/bin","Y=2"],"cwd":"/","user":{"uid":0,"gid":0}}`
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, []byte(proc), 0o644)
	if out := b.must(t, "exec", "--process", pf, id); strings.TrimSpace(out) != "from-process-json 2" {
		t.Errorf("exec --process: %q", out)
	}
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	b.must(t, "exec", "-d", "--pid-file", pidFile, id, "sleep", "1000")
	data, err := os.ReadFile(pidFile)
	if err != nil || len(data) == 0 {
		t.Fatalf("exec --pid-file: %v %q", err, data)
	}
	// ... and its cgroup, as the host sees it.
	if cg, _ := os.ReadFile("/proc/" + string(data) + "/cgroup"); !strings.Contains(string(cg), "/"+id+"\n") {
		t.Errorf("exec'd process is not in the container's cgroup:\n%s", cg)
	}
	if r := b.husk(t, "exec", id, "/no/such/binary"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("exec of a missing binary: %s", r)
	}
}

func TestPsAndUpdate(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	if out := b.must(t, "ps", "--format", "json", id); strings.TrimSpace(strings.Join(strings.Fields(out), "")) != fmt.Sprintf("[%d]", pid) {
		t.Errorf("ps json: %q, want [%d]", out, pid)
	}
	if out := b.must(t, "ps", id); !strings.Contains(out, "PID") || !strings.Contains(out, "sleep 1000") {
		t.Errorf("ps table: %q", out)
	}
	b.must(t, "update", "--pids-limit", "42", id)
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, l := range strings.Split(string(cg), "\n") {
		if strings.Contains(l, ":pids:") {
			lim, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", strings.SplitN(l, ":", 3)[2], "pids.max"))
			if err != nil || strings.TrimSpace(string(lim)) != "42" {
				t.Errorf("pids.max after update: %q %v", lim, err)
			}
		}
	}
}

// TestExecFastPathMatchesGoInit: an exec is set up by husk-init's C constructor unless it needs
// the Go init (a terminal, an LSM label) or is told not to. Both must give the process the
// same user, groups, umask, capabilities, no_new_privs, seccomp filter, limits, environment,
// cwd and fds.
func TestExecFastPathMatchesGoInit(t *testing.T) {
	report := `id; umask; ulimit -n; pwd; env | sort; ls /proc/self/fd | wc -l; grep -E '^(Cap|NoNewPrivs|Groups|Seccomp:)' /proc/self/status; mkdir /tmp/d 2>&1 || echo mkdir-denied`
	for _, seccomp := range []bool{false, true} {
		b := newBundle(t, "sleep", "1000")
		umask := uint32(0o027)
		b.spec.Process.User.Umask = &umask
		b.spec.Process.Rlimits = []rspec.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 321, Hard: 654}}
		b.spec.Process.Env = append(b.spec.Process.Env, "DUP=first", "DUP=last", "NOEQUALS")
		if seccomp {
			b.spec.Linux.Seccomp = denyMkdir()
		}
		b.write(t)
		id := uniqueID(t)
		b.must(t, "run", "-d", id)
		exec := func(extra ...string) string {
			args := append([]string{"exec"}, extra...)
			return b.must(t, append(args, "--user", "1000:1001", "--additional-gids", "7", "--cwd", "/tmp",
				"--cap", "CAP_NET_RAW", "--env", "X=1", id, "sh", "-c", report)...)
		}
		fast, slow := exec(), exec("--no-fast-path")
		b.husk(t, "delete", "-f", id)
		if fast != slow {
			t.Fatalf("seccomp %v: the fast exec path and the Go init differ:\nfast:\n%s\ngo:\n%s", seccomp, fast, slow)
		}
		wants := []string{"uid=1000 gid=1001 groups=7\n", "0027", "321", "/tmp", "DUP=last", "X=1", "HOME=/", "NoNewPrivs:\t1"}
		if seccomp {
			wants = append(wants, "Seccomp:\t2", "mkdir-denied")
		}
		for _, want := range wants {
			if !strings.Contains(fast, want) {
				t.Errorf("seccomp %v: exec report lacks %q:\n%s", seccomp, want, fast)
			}
		}
		if strings.Contains(fast, "NOEQUALS") {
			t.Errorf("an env entry without = reached the process:\n%s", fast)
		}
	}
}

// A container built by husk create for the C init (the create fast path) is the container the
// Go init builds: same mounts, devices, names, sysctls, protected paths, process. With a seccomp
// filter, the first create compiles it in the Go init and the next one loads the kept program.
func TestCreateFastPathMatchesGoInit(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testCreateFastPath(t, false) })
	t.Run("seccomp", func(t *testing.T) { testCreateFastPath(t, true) })
}

func testCreateFastPath(t *testing.T, seccomp bool) {
	report := `exec > /out/report 2>&1; hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax
id; umask; ulimit -n; pwd; env | sort; ls /proc/self/fd | wc -l; grep -E '^(Cap|NoNewPrivs|Groups|Seccomp:)' /proc/self/status
cat /proc/self/oom_score_adj /proc/self/cgroup; echo sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$
awk '{for (i = 7; i <= NF; i++) if ($i == "-") print $5, $6, $(i+1), $(i+2), $(i+3)}' /proc/self/mountinfo
ls -ln /dev | awk '{print $1, $3, $4, $5, $6, $NF}'; cat /sys/class/net/lo/operstate
wc -c < /proc/keys; ls /sys/firmware | wc -l; touch /proc/sys/kernel/x; echo 0 > /proc/sys/net/ipv4/ip_forward
touch /rootfile; touch /scratch/ok && echo scratch-ok; mkdir /scratch/d 2>/dev/null || echo mkdir-denied`
	reports := map[bool]string{}
	root := t.TempDir() // shared: the seccomp program the first create compiles is kept there
	for _, slow := range []bool{true, false} {
		b := newBundle(t, "sh", "-c", report)
		b.root = root
		out := t.TempDir()
		os.Chmod(out, 0o777)
		b.spec.Mounts = append(b.spec.Mounts,
			rspec.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}},
			rspec.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=1m", "mode=1777"}})
		b.spec.Hostname, b.spec.Domainname = "fasthost", "example.org"
		b.spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"}
		umask, oom, mode := uint32(0o027), 100, os.FileMode(0o640)
		b.spec.Process.User = rspec.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{7}, Umask: &umask}
		b.spec.Process.Rlimits = []rspec.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 321, Hard: 654}}
		b.spec.Process.OOMScoreAdj = &oom
		b.spec.Process.Cwd = "/tmp"
		b.spec.Process.Env = append(b.spec.Process.Env, "DUP=first", "DUP=last")
		b.spec.Root.Readonly = true
		b.spec.Linux.Devices = []rspec.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode}}
		if seccomp {
			b.spec.Linux.Seccomp = denyMkdir()
		}
		b.write(t)
		id := uniqueID(t)
		args := []string{"create", id}
		if slow {
			args = []string{"create", "--no-fast-path", id}
		}
		b.must(t, args...)
		// The C init is one thread; the Go init has its runtime's.
		pid := int(b.state(t, id)["pid"].(float64))
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		if threads := statusField(string(status), "Threads"); (threads == "1") == slow {
			t.Errorf("slow path %v: the created init has %s threads", slow, threads)
		}
		b.must(t, "start", id)
		b.waitStatus(t, id, "stopped")
		b.must(t, "delete", id)
		data, err := os.ReadFile(filepath.Join(out, "report"))
		if err != nil {
			t.Fatal(err)
		}
		reports[slow] = string(data)
	}
	fast, slow := reports[false], reports[true]
	if fast != slow {
		t.Fatalf("the create fast path and the Go init differ:\nfast:\n%s\ngo:\n%s", fast, slow)
	}
	for _, want := range []string{"fasthost\nexample.org\n1\n4096\n", "uid=1000 gid=1000 groups=7", "0027", "321", "/tmp",
		"DUP=last", "NoNewPrivs:\t1", "100\n", "sid=1 pid=1", "/proc rw,relatime proc proc rw", "/sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime cgroup cgroup rw,memory",
		"crw-r----- 0 0 10, 229 fuse", "\n0\n0\n", "Read-only file system", "scratch-ok"} {
		if !strings.Contains(fast, want) {
			t.Errorf("report lacks %q:\n%s", want, fast)
		}
	}
	if denied := strings.Contains(fast, "mkdir-denied") && strings.Contains(fast, "Seccomp:\t2"); denied != seccomp {
		t.Errorf("seccomp %v, but the report says otherwise:\n%s", seccomp, fast)
	}
}

// denyMkdir is a seccomp profile that allows everything but mkdir (EPERM).
func denyMkdir() *rspec.LinuxSeccomp {
	errno := uint(1)
	return &rspec.LinuxSeccomp{DefaultAction: rspec.ActAllow,
		Syscalls: []rspec.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: rspec.ActErrno, ErrnoRet: &errno}}}
}

// TestPidfdSocket: --pidfd-socket hands a pidfd of the container's init ("standard") and of an
// exec'd process ("setns") to the socket, as runc 1.2+; husk accepted the flag and did nothing.
func TestPidfdSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pidfd.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type got struct {
		kind string
		pid  int
	}
	recv := make(chan got, 2)
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
			n, oobn, _, _, _ := c.ReadMsgUnix(buf, oob)
			c.Close()
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			pid := -1
			if len(msgs) == 1 {
				if fds, _ := unix.ParseUnixRights(&msgs[0]); len(fds) == 1 {
					info, _ := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fds[0]))
					for _, l := range strings.Split(string(info), "\n") {
						if v, ok := strings.CutPrefix(l, "Pid:"); ok {
							pid, _ = strconv.Atoi(strings.TrimSpace(v))
						}
					}
					unix.Close(fds[0])
				}
			}
			recv <- got{string(buf[:n]), pid}
		}
	}()
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", "--pidfd-socket", sock, id)
	defer b.husk(t, "delete", "-f", id)
	init := int(b.state(t, id)["pid"].(float64))
	if g := <-recv; g.kind != "standard" || g.pid != init {
		t.Fatalf("run: got %+v, want a pidfd of the init %d named standard", g, init)
	}
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	b.must(t, "exec", "-d", "--pid-file", pidFile, "--pidfd-socket", sock, id, "sleep", "1000")
	data, _ := os.ReadFile(pidFile)
	execPid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if g := <-recv; g.kind != "setns" || g.pid != execPid {
		t.Fatalf("exec: got %+v, want a pidfd of the exec'd process %d named setns", g, execPid)
	}
}

// TestUnknownCapabilityWarnsAndRuns: an unknown capability name is a warning, and the process
// runs without it, as with runc 1.1.5 and 1.5 (husk refused the config); it grants nothing.
func TestUnknownCapabilityWarnsAndRuns(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sh", "-c", "grep -E 'CapInh|CapAmb' /proc/self/status")
		b.spec.Process.Capabilities.Bounding = []string{"CAP_UNKNOWN", "UNKNOWN_CAP"}
		b.spec.Process.Capabilities.Ambient = []string{"CAP_UNKNOWN"}
		b.write(t)
		r := b.husk(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
		if r.code != 0 || !strings.Contains(r.stderr, "ignoring unknown or unavailable capabilities: [CAP_UNKNOWN UNKNOWN_CAP]") {
			t.Fatalf("run with unknown capabilities: %s", r)
		}
		if !strings.Contains(r.stdout, "CapInh:\t0000000000000000") || !strings.Contains(r.stdout, "CapAmb:\t0000000000000000") {
			t.Fatalf("an unknown capability granted something: %q", r.stdout)
		}
	})
}

// TestExecCapAddsAmbientWithInheritable: `exec --cap` adds the capability to the ambient set
// when the config has an inheritable set, as runc 1.5 (never to the inheritable set:
// CVE-2022-29162).
func TestExecCapAddsAmbientWithInheritable(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.spec.Process.Capabilities = &rspec.LinuxCapabilities{
		Bounding: []string{"CAP_CHOWN", "CAP_KILL", "CAP_SYSLOG"}, Effective: []string{"CAP_CHOWN", "CAP_KILL"},
		Permitted: []string{"CAP_CHOWN", "CAP_KILL"}, Inheritable: []string{"CAP_CHOWN", "CAP_SYSLOG"}, Ambient: []string{"CAP_CHOWN"},
	}
	b.spec.Process.NoNewPrivileges = false
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	out := b.must(t, "exec", "--cap", "CAP_SYSLOG", id, "cat", "/proc/self/status")
	for _, want := range []string{"CapInh:\t0000000400000001", "CapPrm:\t0000000400000021", "CapEff:\t0000000400000021", "CapAmb:\t0000000400000001"} {
		if !strings.Contains(out, want) {
			t.Errorf("exec --cap CAP_SYSLOG: no %q in\n%s", want, out)
		}
	}
}

// TestListWithMissingRoot: `list` with a --root that does not exist fails, as runc 1.5; the
// default root may be missing (no container yet).
func TestListWithMissingRoot(t *testing.T) {
	r := runHusk(t, t.TempDir(), filepath.Join(t.TempDir(), "missing"), nil, "list")
	if r.code == 0 {
		t.Fatalf("list with a missing --root: %s", r)
	}
}

// TestExecveErrorInRuncsWords: a process whose exec fails reports it in runc's one line,
// "exec /run.sh: no such file or directory" (runc 1.5's suite reads exactly that), on both
// create paths and for exec.
func TestExecveErrorInRuncsWords(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "/run.sh")
		os.WriteFile(filepath.Join(b.rootfs(), "run.sh"), []byte("#!/mmnnttbb foo bar\nsh\n"), 0o755)
		b.write(t)
		r := b.husk(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
		if r.code == 0 || strings.TrimSpace(r.stderr) != "exec /run.sh: no such file or directory" {
			t.Fatalf("run: %s", r)
		}
		id := runSleeping(t, b, flags)
		defer b.husk(t, "delete", "-f", id)
		r = b.husk(t, append(append([]string{"exec"}, flags...), id, "/run.sh")...)
		if r.code == 0 || !strings.Contains(r.stderr, "exec /run.sh: no such file or directory") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Fatalf("exec: %s", r)
		}
	})
}
