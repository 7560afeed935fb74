package integration

// Attacks from the safety issue: each test fails on a husk without its defence (make
// check-security runs them).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// TestAttackDeviceNodeDoesNotWidenCgroup: a node in linux.devices is not permission to use it.
// husk used to append an allow rule per linux.devices entry after the spec's own rules, which
// overrode an explicit deny: with /dev/kmsg listed and denied, the container wrote to the host's
// kernel log.
func TestAttackDeviceNodeDoesNotWidenCgroup(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/devices"); err != nil {
		t.Skip("no v1 devices controller on this host (the v2 eBPF path is covered by the cgroup2 VM test)")
	}
	for _, slow := range []bool{false, true} {
		t.Run(fmt.Sprintf("slow=%v", slow), func(t *testing.T) {
			b := newBundle(t, "sh", "-c", "(exec 3>/dev/kmsg) 2>&1 && echo KMSG-OPENED; (exec 3</dev/kmsg) 2>&1 && echo KMSG-READ; echo x > /dev/null && echo NULL-OK")
			b.spec.Linux.Devices = []rspec.LinuxDevice{{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11}}
			major, minor := int64(1), int64(11)
			b.spec.Linux.Resources = &rspec.LinuxResources{Devices: []rspec.LinuxDeviceCgroup{
				{Allow: false, Type: "c", Major: &major, Minor: &minor, Access: "rwm"},
			}}
			b.write(t)
			args := []string{"run", uniqueID(t)}
			if slow {
				args = []string{"run", "--no-fast-path", uniqueID(t)}
			}
			r := b.husk(t, args...)
			if r.code != 0 {
				t.Fatalf("run: %s", r)
			}
			if strings.Contains(r.stdout, "KMSG-") || !strings.Contains(r.stdout, "NULL-OK") {
				t.Fatalf("a denied device was usable (or /dev/null was not): %q", r.stdout)
			}
		})
	}
}

// TestAttackRecursiveReadOnlyBind: "rro" (what Kubernetes sends for a recursively read-only
// volume) makes every mount below a bind read-only; before, it went to the filesystem as data,
// which a bind ignores, and the volume stayed writable. An option husk does not know is refused
// for a bind mount instead of being dropped.
func TestAttackRecursiveReadOnlyBind(t *testing.T) {
	vol := t.TempDir()
	sub := filepath.Join(vol, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(sub, syscall.MNT_DETACH)
	for _, slow := range []bool{false, true} {
		b := newBundle(t, "sh", "-c", "touch /vol/a 2>&1; touch /vol/sub/b 2>&1; grep ' /vol' /proc/self/mountinfo")
		b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rro"}})
		b.write(t)
		args := []string{"run", uniqueID(t)}
		if slow {
			args = []string{"run", "--no-fast-path", uniqueID(t)}
		}
		out := b.must(t, args...)
		if strings.Count(out, "Read-only file system") != 2 {
			t.Fatalf("slow=%v: rro left a mount writable:\n%s", slow, out)
		}
		for _, f := range []string{"a", "sub/b"} {
			if _, err := os.Stat(filepath.Join(vol, f)); err == nil {
				t.Fatalf("slow=%v: the container wrote %s through a read-only volume", slow, f)
			}
		}
	}
	b := newBundle(t, "true")
	b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rdonly"}})
	id := uniqueID(t)
	r := b.run(t, id)
	if r.code == 0 || !strings.Contains(r.stderr, `unknown mount option "rdonly" for a bind mount`) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Fatalf("an unknown bind option was not refused in one line: %s", r)
	}
	assertClean(t, b, id)
}

// TestAttackNoPivotHidesHostProc: with --no-pivot the old root stays below the container's
// root, and with it the host's unmasked procfs. A process in the container that makes its own
// user, mount and pid namespaces may then mount a fresh, unmasked procfs: the kernel allows it
// when some procfs in the namespace is fully visible. husk detaches the host's proc and sysfs
// mounts first, as runc does. (CAP_SETFCAP lets the container map its root in the new user
// namespace; with pivot_root the same attack is refused, the control case.)
func TestAttackNoPivotHidesHostProc(t *testing.T) {
	for _, flag := range []string{"--no-pivot", "--no-fast-path"} {
		b := newBundle(t, "sh", "-c", "mkdir -p /tmp/p; unshare -Urmpf sh -c 'mount -t proc proc /tmp/p 2>&1 && echo PROC-MOUNTED' 2>&1")
		b.spec.Root.Readonly = false
		caps := append(b.spec.Process.Capabilities.Bounding, "CAP_SETFCAP")
		b.spec.Process.Capabilities.Bounding, b.spec.Process.Capabilities.Effective, b.spec.Process.Capabilities.Permitted = caps, caps, caps
		b.write(t)
		r := b.husk(t, "run", flag, uniqueID(t))
		if strings.Contains(r.stdout, "PROC-MOUNTED") {
			t.Fatalf("%s: the container mounted an unmasked procfs: %s", flag, r)
		}
		if !strings.Contains(r.stdout, "mount: permission denied") {
			t.Fatalf("%s: the attack did not get as far as mount(2): %s", flag, r)
		}
	}
}

// TestAttackNamespacePathOfWrongType: a namespace path is joined only as the type it is listed
// as. {"type":"ipc","path":"/proc/self/ns/mnt"} made the init join husk's own mount namespace
// and pivot_root the container's rootfs there (on the host: the root of every process). Run in
// a throwaway mount namespace so that a husk without the check cannot reach the host.
func TestAttackNamespacePathOfWrongType(t *testing.T) {
	cases := []struct {
		typ  rspec.LinuxNamespaceType
		path string
		want string
	}{
		{rspec.IPCNamespace, "/proc/self/ns/mnt", `path "/proc/self/ns/mnt" is a namespace of type mount, not ipc`},
		{rspec.CgroupNamespace, "/proc/self/ns/ipc", `path "/proc/self/ns/ipc" is a namespace of type ipc, not cgroup`},
		{rspec.NetworkNamespace, "/etc/hostname", `path "/etc/hostname" is not a namespace file`},
	}
	for _, c := range cases {
		for _, slow := range []bool{false, true} {
			b := newBundle(t, "true")
			var nss []rspec.LinuxNamespace
			for _, ns := range b.spec.Linux.Namespaces {
				if ns.Type != c.typ {
					nss = append(nss, ns)
				}
			}
			b.spec.Linux.Namespaces = append(nss, rspec.LinuxNamespace{Type: c.typ, Path: c.path})
			b.write(t)
			id := uniqueID(t)
			args := []string{"-m", "--propagation", "private", huskBin, "--root", b.root, "run"}
			if slow {
				args = append(args, "--no-fast-path")
			}
			cmd := exec.Command("unshare", append(args, id)...)
			cmd.Dir = b.dir
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Fatalf("%s namespace at %s (slow=%v): err %v, output %q; want %q", c.typ, c.path, slow, err, out, c.want)
			}
			assertClean(t, b, id)
		}
	}
}

// TestAttackUIDOutOfRange: setresuid(-1) means "leave unchanged", so uid 4294967295 ran the
// process as root. Ids past 2147483647 are refused everywhere a user can give one.
func TestAttackUIDOutOfRange(t *testing.T) {
	const bad = 4294967295
	for _, set := range []func(*rspec.User){
		func(u *rspec.User) { u.UID = bad },
		func(u *rspec.User) { u.GID = bad },
		func(u *rspec.User) { u.AdditionalGids = []uint32{bad} },
	} {
		b := newBundle(t, "id")
		set(&b.spec.Process.User)
		id := uniqueID(t)
		r := b.run(t, id)
		if r.code == 0 || !strings.Contains(r.stderr, "4294967295 is out of range") {
			t.Fatalf("an id of 4294967295 was not refused: %s", r)
		}
		assertClean(t, b, id)
	}
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	for _, args := range [][]string{{"--user", "4294967295"}, {"--user", "0:4294967295"}, {"--additional-gids", "4294967295"}} {
		r := b.husk(t, append(append([]string{"exec"}, args...), id, "id", "-u")...)
		if r.code == 0 || strings.TrimSpace(r.stdout) == "0" {
			t.Fatalf("exec %v ran: %s", args, r)
		}
	}
	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"args":["id","-u"],"cwd":"/","user":{"uid":4294967295,"gid":0}}`), 0o644)
	if r := b.husk(t, "exec", "--process", proc, id); r.code == 0 || !strings.Contains(r.stderr, "out of range") {
		t.Fatalf("exec --process with uid 4294967295: %s", r)
	}
}

// TestAttackUnboundedInput: every file husk reads from its caller is bounded; `exec --process
// /dev/zero` used to read gigabytes.
func TestAttackUnboundedInput(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	if r := b.husk(t, "exec", "--process", "/dev/zero", id); r.code == 0 || !strings.Contains(r.stderr, "process.json is larger than") {
		t.Fatalf("exec --process /dev/zero: %s", r)
	}
	if r := b.husk(t, "update", "--resources", "/dev/zero", id); r.code == 0 || !strings.Contains(r.stderr, "larger than") {
		t.Fatalf("update --resources /dev/zero: %s", r)
	}
	// A config.json of 64 MB (sparse: zeros cost no disk) is refused before it is parsed.
	big := newBundle(t, "true")
	big.write(t)
	if err := os.Truncate(filepath.Join(big.dir, "config.json"), 64<<20); err != nil {
		t.Fatal(err)
	}
	id2 := uniqueID(t)
	if r := big.husk(t, "run", id2); r.code == 0 || !strings.Contains(r.stderr, "config.json is larger than") {
		t.Fatalf("a 64 MB config.json: %s", r)
	}
	assertClean(t, big, id2)
}

// TestAttackManyMountFdsNeverRunAsInit: with ~60 or more detached mount fds handed to the init
// (idmapped binds, or binds in a user-namespaced container), one of them took the fd number
// husk exec'd the sealed husk-init by, and the bind's source file ran instead: as the
// container's first process, on the host's filesystem, before pivot_root, capability drop and
// seccomp. Here every source is a script that writes a file on the host when it runs (through
// env -S, as the script is not readable by the fd path it is exec'd by); the container must
// start with all its mounts and the file must never appear.
func TestAttackManyMountFdsNeverRunAsInit(t *testing.T) {
	for _, kind := range []string{"idmap", "userns"} {
		for _, n := range []int{100, 1000} {
			t.Run(fmt.Sprintf("%s-%d", kind, n), func(t *testing.T) {
				bothPaths(t, func(t *testing.T, flags []string) {
					marker := filepath.Join(t.TempDir(), "ran-on-host")
					src := t.TempDir()
					os.Chmod(src, 0o755)
					script := filepath.Join(src, "payload")
					if err := os.WriteFile(script, []byte("#!/usr/bin/env -S sh -c 'echo pwned > "+marker+"'\n"), 0o755); err != nil {
						t.Fatal(err)
					}
					last := fmt.Sprintf("/m/%d", n-1)
					b := newBundle(t, "sh", "-c", "grep -c ' /m/' /proc/self/mountinfo; cat "+last+" | head -1")
					b.spec.Root.Readonly = false
					if kind == "userns" {
						userNamespaced(b)
					}
					for i := 0; i < n; i++ {
						m := rspec.Mount{Destination: fmt.Sprintf("/m/%d", i), Type: "bind", Source: script, Options: []string{"bind", "ro"}}
						if kind == "idmap" {
							m.Options = append(m.Options, "idmap")
							m.UIDMappings = []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
							m.GIDMappings = m.UIDMappings
						}
						b.spec.Mounts = append(b.spec.Mounts, m)
					}
					b.write(t)
					r := b.husk(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
					if _, err := os.Stat(marker); err == nil {
						t.Fatalf("a bind source ran on the host as the container's init (run: %s)", r)
					}
					if r.code != 0 {
						t.Fatalf("run with %d %s mounts: %s", n, kind, r)
					}
					lines := strings.Fields(r.stdout)
					if len(lines) < 2 || lines[0] != fmt.Sprint(n) || lines[1] != "#!/usr/bin/env" {
						t.Fatalf("want %d mounts of the script, got %q", n, r.stdout)
					}
				})
			})
		}
	}
}

// TestAttackSysctlsStayInTheContainersNamespaces: a sysctl that no namespace of the container's
// own holds would be written to the host's kernel (vm.overcommit_memory, or an IPC sysctl without
// an ipc namespace, or net.* in a joined host network namespace). husk wrote them; runc 1.1.5,
// 1.5 and crun refuse. Each is refused with one line, and the host's value is unchanged.
func TestAttackSysctlsStayInTheContainersNamespaces(t *testing.T) {
	without := func(ns []rspec.LinuxNamespace, drop rspec.LinuxNamespaceType) []rspec.LinuxNamespace {
		var out []rspec.LinuxNamespace
		for _, n := range ns {
			if n.Type != drop {
				out = append(out, n)
			}
		}
		return out
	}
	hostNet := func(ns []rspec.LinuxNamespace) []rspec.LinuxNamespace {
		out := without(ns, rspec.NetworkNamespace)
		return append(out, rspec.LinuxNamespace{Type: rspec.NetworkNamespace, Path: fmt.Sprintf("/proc/%d/ns/net", os.Getpid())})
	}
	cases := []struct {
		key, value, proc, want string
		ns                     func([]rspec.LinuxNamespace) []rspec.LinuxNamespace
	}{
		{"vm.overcommit_memory", "", "vm/overcommit_memory", "not in a separate kernel namespace", nil},
		{"kernel.shm_rmid_forced", "", "kernel/shm_rmid_forced", "needs an ipc namespace", func(ns []rspec.LinuxNamespace) []rspec.LinuxNamespace { return without(ns, rspec.IPCNamespace) }},
		{"fs.mqueue.msg_max", "", "fs/mqueue/msg_max", "needs an ipc namespace", func(ns []rspec.LinuxNamespace) []rspec.LinuxNamespace { return without(ns, rspec.IPCNamespace) }},
		{"net.ipv4.ip_default_ttl", "", "net/ipv4/ip_default_ttl", "needs a network namespace", func(ns []rspec.LinuxNamespace) []rspec.LinuxNamespace { return without(ns, rspec.NetworkNamespace) }},
		{"net.ipv4.ip_default_ttl", "", "net/ipv4/ip_default_ttl", "needs a network namespace", hostNet},
		{"kernel.domainname", "", "kernel/domainname", "needs a uts namespace", func(ns []rspec.LinuxNamespace) []rspec.LinuxNamespace { return without(ns, rspec.UTSNamespace) }},
		{"kernel.hostname", "", "kernel/hostname", "conflicts with the OCI", nil},
		{"user.max_user_namespaces", "", "user/max_user_namespaces", "needs a user namespace", nil},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d-%s", i, c.key), func(t *testing.T) {
			before, err := os.ReadFile("/proc/sys/" + c.proc)
			if err != nil {
				t.Skipf("no %s here: %v", c.proc, err)
			}
			// A value that differs from the host's, so a write would show.
			val := "1"
			if strings.TrimSpace(string(before)) == "1" {
				val = "2"
			}
			if c.key == "kernel.domainname" || c.key == "kernel.hostname" {
				val = "husk-attack"
			}
			b := newBundle(t, "true")
			if c.ns != nil {
				b.spec.Linux.Namespaces = c.ns(b.spec.Linux.Namespaces)
			}
			if c.key == "kernel.domainname" {
				b.spec.Hostname = ""
			}
			b.spec.Linux.Sysctl = map[string]string{c.key: val}
			b.write(t)
			id := uniqueID(t)
			r := b.husk(t, "run", id)
			after, _ := os.ReadFile("/proc/sys/" + c.proc)
			if string(after) != string(before) {
				os.WriteFile("/proc/sys/"+c.proc, before, 0o644)
				t.Fatalf("the host's %s changed from %q to %q (run: %s)", c.key, before, after, r)
			}
			assertOneLineError(t, r, c.want)
			assertClean(t, b, id)
		})
	}
}

// TestAttackReadOnlyHostMountStaysReadOnlyInUserns: a source mounted read-only on the host,
// bound with "bind,nosuid,nodev" into a user-namespaced container, must stay read-only: the
// kernel locks a mount's flags when it is copied into a less privileged namespace, and husk's
// detached clone (made by the host's root) was not locked, so the remount dropped "ro" and the
// container wrote to it. As runc 1.5: lockable flags of the source are kept, a config that
// clears one ("bind,rw") fails with one line; without a user namespace the config's flags are
// exactly what the mount gets ("bind,dev" clears ro and noexec).
func TestAttackReadOnlyHostMountStaysReadOnlyInUserns(t *testing.T) {
	src := hostMountWithFlags(t, syscall.MS_RDONLY|syscall.MS_NOEXEC)
	run := func(t *testing.T, userns bool, opts []string, flags []string) result {
		b := newBundle(t, "sh", "-c", "awk '$2 == \"/mnt\" {print $4}' /proc/self/mounts; touch /mnt/written 2>&1; true")
		if userns {
			userNamespaced(b)
		}
		b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: opts})
		b.write(t)
		return b.husk(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
	}
	hasOpt := func(out, opt string) bool {
		first, _, _ := strings.Cut(out, "\n")
		for _, o := range strings.Split(first, ",") {
			if o == opt {
				return true
			}
		}
		return false
	}
	bothPaths(t, func(t *testing.T, flags []string) {
		r := run(t, true, []string{"bind", "nosuid", "nodev"}, flags)
		if _, err := os.Stat(filepath.Join(src, "written")); err == nil {
			t.Fatalf("the container wrote to a read-only host mount: %s", r)
		}
		if r.code != 0 || !hasOpt(r.stdout, "ro") || !hasOpt(r.stdout, "noexec") || !hasOpt(r.stdout, "nosuid") {
			t.Fatalf("userns, bind,nosuid,nodev of a ro,noexec source: want ro,noexec,nosuid kept/applied: %s", r)
		}
		r = run(t, true, []string{"bind", "rw", "nosuid"}, flags)
		assertOneLineError(t, r, "operation not permitted")
		if _, err := os.Stat(filepath.Join(src, "written")); err == nil {
			t.Fatal("the container wrote to a read-only host mount")
		}
		// Without a user namespace the host's root asks for it: the config's flags are the mount's.
		r = run(t, false, []string{"bind", "dev"}, flags)
		if r.code != 0 || !hasOpt(r.stdout, "rw") || hasOpt(r.stdout, "noexec") {
			t.Fatalf("no userns, bind,dev of a ro,noexec source: want rw and exec: %s", r)
		}
		// That container could write (the same filesystem): take its file away for the next round.
		syscall.Mount("", src, "", syscall.MS_BIND|syscall.MS_REMOUNT, "")
		os.Remove(filepath.Join(src, "written"))
		syscall.Mount("", src, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOEXEC, "")
	})
}

// TestAttackInheritedFdsNeverReachTheInit: an fd husk inherited without close-on-exec (from
// whatever ran it) must not be open in the container's init, not even while the created
// container waits for start (runc 1.5's create.bats "detect fd leak"; CVE-2024-21626 is the
// kind of attack such an fd opens): husk marks its fds close-on-exec before it starts the init.
func TestAttackInheritedFdsNeverReachTheInit(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		b := newBundle(t, "sleep", "1000")
		b.write(t)
		marker := filepath.Join(t.TempDir(), "inherited-marker")
		f, err := os.Create(marker)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		id := uniqueID(t)
		cmd := exec.Command(huskBin, append(append([]string{"--root", b.root, "create"}, flags...), id)...)
		cmd.Dir = b.dir
		cmd.ExtraFiles = []*os.File{f, f, f, f, f, f, f, f} // fds 3-10, as a shell's or a runner's
		// The init keeps husk's stdio: a file, not a pipe this test would wait on.
		out := tempFile(t)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			t.Fatalf("create: %v: %s", err, readFile(out))
		}
		defer b.husk(t, "delete", "-f", id)
		pid := int(b.state(t, id)["pid"].(float64))
		entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
			if target == marker {
				t.Fatalf("the created container's init holds fd %s -> %s, inherited from husk's caller", e.Name(), target)
			}
		}
	})
}

// vethPair makes a veth pair on the host (this kernel has no dummy driver): name is lent to a
// container, its peer stays and keeps the pair alive. Both go when the test ends.
func vethPair(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 is not installed")
	}
	if out, err := exec.Command("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p").CombinedOutput(); err != nil {
		t.Skipf("cannot make a veth pair: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", name+"p").Run() })
}

func hostLink(name string) bool { return exec.Command("ip", "link", "show", name).Run() == nil }

// TestAttackNetDevicesAreNeverLost: a lent host interface comes back, the same device, whatever
// the container or a failed create does. husk moved and renamed in one step and returned
// devices by name: a container-side name taken in the namespace ("lo") failed the create after
// the move and destroyed the host's interface with the namespace; a container with
// CAP_NET_ADMIN that renamed its device and gave another the lent name got that one moved to
// the host; a device lent from a joined namespace (a pod's) stayed there after the init was
// killed.
func TestAttackNetDevicesAreNeverLost(t *testing.T) {
	base := fmt.Sprintf("hn%d", os.Getpid()%10000)
	t.Run("taken-name", func(t *testing.T) {
		host := base + "a"
		vethPair(t, host)
		b := newBundle(t, "sleep", "1000")
		b.spec.Linux.NetDevices = map[string]rspec.LinuxNetDevice{host: {Name: "lo"}}
		b.write(t)
		id := uniqueID(t)
		assertOneLineError(t, b.run(t, id), `has a device named "lo" already`)
		if !hostLink(host) {
			t.Fatalf("the host's %s was destroyed by a failed create", host)
		}
		assertClean(t, b, id)
	})
	t.Run("renamed-inside", func(t *testing.T) {
		host := base + "b"
		vethPair(t, host)
		b := newBundle(t, "sleep", "1000")
		b.spec.Process.Capabilities.Bounding = append(b.spec.Process.Capabilities.Bounding, "CAP_NET_ADMIN")
		b.spec.Process.Capabilities.Effective = append(b.spec.Process.Capabilities.Effective, "CAP_NET_ADMIN")
		b.spec.Process.Capabilities.Permitted = append(b.spec.Process.Capabilities.Permitted, "CAP_NET_ADMIN")
		b.spec.Linux.NetDevices = map[string]rspec.LinuxNetDevice{host: {Name: "ctr0"}}
		b.write(t)
		id := uniqueID(t)
		b.must(t, "run", "-d", id)
		// The container renames its device and gives its loopback the lent name.
		b.must(t, "exec", id, "sh", "-c", "ip link set ctr0 name moved0 && ip link set lo down && ip link set lo name ctr0")
		r := b.husk(t, "delete", "-f", id)
		if !hostLink(host) {
			t.Fatalf("the lent %s did not come back (delete: %s)", host, r)
		}
		if r.code != 0 {
			t.Fatalf("delete: %s", r)
		}
	})
	t.Run("host-name-reused", func(t *testing.T) {
		host := base + "d"
		vethPair(t, host)
		b := newBundle(t, "sleep", "1000")
		b.spec.Linux.NetDevices = map[string]rspec.LinuxNetDevice{host: {Name: "ctr0"}}
		b.write(t)
		id := uniqueID(t)
		b.must(t, "run", "-d", id)
		// Meanwhile the host names another device as the lent one was.
		if out, err := exec.Command("ip", "link", "add", host, "type", "veth", "peer", "name", host+"q").CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		defer exec.Command("ip", "link", "del", host+"q").Run()
		r := b.husk(t, "delete", "-f", id)
		// The device is back under a name of husk's, and the warning says which: never a
		// silent new name, never lost.
		if !strings.Contains(r.stderr, "is back on the host as") {
			t.Fatalf("delete with the lent name taken on the host: %s", r)
		}
		parked := strings.Fields(strings.SplitN(r.stderr, "is back on the host as ", 2)[1])[0]
		parked = strings.Trim(parked, `":`)
		if !hostLink(parked) {
			t.Fatalf("the lent device is not on the host as %q: %s", parked, r)
		}
		exec.Command("ip", "link", "del", parked).Run()
	})
	// lentInPod runs a pod and a container joining its network namespace with host lent to it
	// as ctrName; the pod outlives the test's container, so the device's way home is delete's.
	lentInPod := func(t *testing.T, host, ctrName string) (*bundle, string) {
		vethPair(t, host)
		pod := newBundle(t, "sleep", "1000")
		pod.write(t)
		podID := uniqueID(t) + "-pod"
		pod.must(t, "run", "-d", podID)
		t.Cleanup(func() { pod.husk(t, "delete", "-f", podID) })
		podPid := int(pod.state(t, podID)["pid"].(float64))
		b := newBundle(t, "sleep", "1000")
		b.root = pod.root
		var ns []rspec.LinuxNamespace
		for _, n := range b.spec.Linux.Namespaces {
			if n.Type == rspec.NetworkNamespace {
				n.Path = fmt.Sprintf("/proc/%d/ns/net", podPid)
			}
			ns = append(ns, n)
		}
		b.spec.Linux.Namespaces = ns
		b.spec.Linux.NetDevices = map[string]rspec.LinuxNetDevice{host: {Name: ctrName}}
		b.write(t)
		id := uniqueID(t)
		b.must(t, "run", "-d", id)
		return b, id
	}
	t.Run("joined-netns-init-killed", func(t *testing.T) {
		host := base + "c"
		b, id := lentInPod(t, host, "ctr0")
		syscall.Kill(int(b.state(t, id)["pid"].(float64)), syscall.SIGKILL)
		b.waitStatus(t, id, "stopped")
		r := b.husk(t, "delete", id)
		if !hostLink(host) {
			t.Fatalf("the lent %s stayed in the pod's namespace after its container's init was killed (delete: %s)", host, r)
		}
	})
	t.Run("empty-state-json", func(t *testing.T) {
		// A state.json lost (emptied by a crash mid-write) while a device is lent: the forced
		// delete finds the device in netdevices.json and brings it back from the pod's namespace.
		host := base + "d"
		b, id := lentInPod(t, host, "ctr1")
		if hostLink(host) {
			t.Fatalf("%s was not lent to the container", host)
		}
		syscall.Kill(int(b.state(t, id)["pid"].(float64)), syscall.SIGKILL)
		if err := os.WriteFile(filepath.Join(b.root, id, "state.json"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		r := b.husk(t, "delete", "--force", id)
		if !hostLink(host) {
			t.Fatalf("with state.json empty, the lent %s stayed in the pod's namespace (delete --force: %s)", host, r)
		}
		if _, err := os.Stat(filepath.Join(b.root, id)); !os.IsNotExist(err) {
			t.Errorf("delete --force left the state directory: %v (%s)", err, r)
		}
	})
}

// userNamespaced gives b a user namespace mapping container root to 100000 and hands the
// bundle to that uid, as a user-namespaced pod's runtime sees it.
func userNamespaced(b *bundle) {
	mapping := []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, rspec.LinuxNamespace{Type: rspec.UserNamespace})
	b.spec.Linux.UIDMappings, b.spec.Linux.GIDMappings = mapping, mapping
	ownedByMappedRoot(b)
}

// ownedByMappedRoot hands the bundle to host uid 100000 (the mapped root of userNamespaced): it
// must reach the bundle and own the rootfs, as with runc.
func ownedByMappedRoot(b *bundle) {
	os.Chmod(b.dir, 0o755)
	os.Chmod(filepath.Dir(b.dir), 0o755)
	filepath.Walk(b.rootfs(), func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 100000, 100000) })
}

// TestBindSourceInsideRootfsSeesEarlierMounts: a bind whose source is a path of the rootfs
// binds what the container has there at that point, the mounts made before it included (runc
// 1.5's mounts.bats "mount order, container bind-mount source / idmap source"). In a user
// namespace, and for idmapped binds, husk cloned every source before the init made any mount,
// so such a source missed them.
func TestBindSourceInsideRootfsSeesEarlierMounts(t *testing.T) {
	for _, c := range []struct {
		name   string
		userns bool
		opts   []string
	}{{"plain", false, []string{"rbind"}}, {"userns", true, []string{"rbind"}}, {"idmap", false, []string{"rbind", "idmap"}}, {"userns-idmap", true, []string{"rbind", "idmap"}}} {
		t.Run(c.name, func(t *testing.T) {
			hostA, hostB := t.TempDir(), t.TempDir()
			os.Mkdir(filepath.Join(hostA, "sub"), 0o755)
			os.WriteFile(filepath.Join(hostB, "file"), []byte("from-b\n"), 0o644)
			os.Chmod(hostB, 0o755)
			os.Chmod(filepath.Join(hostB, "file"), 0o644)
			b := newBundle(t, "cat", "/final/sub/file")
			os.MkdirAll(filepath.Join(b.rootfs(), "mnt"), 0o755)
			os.MkdirAll(filepath.Join(b.rootfs(), "final"), 0o755)
			if c.userns {
				userNamespaced(b)
			}
			if c.name == "idmap" {
				// idmap without a user namespace of the container needs mappings of its own.
				m := []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
				b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/mnt", Type: "bind", Source: hostA, Options: []string{"bind"}},
					rspec.Mount{Destination: "/mnt/sub", Type: "bind", Source: hostB, Options: []string{"bind"}},
					rspec.Mount{Destination: "/final", Type: "bind", Source: filepath.Join(b.rootfs(), "mnt"), Options: c.opts, UIDMappings: m, GIDMappings: m})
			} else {
				b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/mnt", Type: "bind", Source: hostA, Options: []string{"bind"}},
					rspec.Mount{Destination: "/mnt/sub", Type: "bind", Source: hostB, Options: []string{"bind"}},
					rspec.Mount{Destination: "/final", Type: "bind", Source: filepath.Join(b.rootfs(), "mnt"), Options: c.opts})
			}
			b.write(t)
			id := uniqueID(t)
			if r := b.husk(t, "run", id); r.code != 0 || r.stdout != "from-b\n" {
				t.Fatalf("cat /final/sub/file: want the file of the bind made before: %s", r)
			}
			assertClean(t, b, id)
		})
	}
}

// TestAttackBindSourceInRootfsCannotFollowImageSymlinkToHost: a bind source that is a path of
// the rootfs resolves inside the rootfs. The image can hold a symlink there ("etc-link" ->
// "/etc", absolute); followed on the host it bound the host's /etc into the container (as host
// root's clone in a user namespace, or by the init before pivot_root). Now it binds the
// image's own /etc, with and without a user namespace, on both create paths.
func TestAttackBindSourceInRootfsCannotFollowImageSymlinkToHost(t *testing.T) {
	hostMarker := filepath.Join("/etc", "husk-attack-"+strings.ReplaceAll(t.Name(), "/", "-"))
	if err := os.WriteFile(hostMarker, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(hostMarker)
	for _, userns := range []bool{false, true} {
		t.Run(fmt.Sprintf("userns=%v", userns), func(t *testing.T) {
			bothPaths(t, func(t *testing.T, flags []string) {
				b := newBundle(t, "sh", "-c", "ls /seen/ | grep -c husk-attack; true")
				os.Symlink("/etc", filepath.Join(b.rootfs(), "etc-link"))
				os.MkdirAll(filepath.Join(b.rootfs(), "seen"), 0o755)
				if userns {
					userNamespaced(b)
				}
				b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/seen", Type: "bind", Source: filepath.Join(b.rootfs(), "etc-link"), Options: []string{"rbind", "ro"}})
				b.write(t)
				id := uniqueID(t)
				r := b.husk(t, append(append([]string{"run"}, flags...), id)...)
				if r.code != 0 || strings.TrimSpace(r.stdout) != "0" {
					t.Fatalf("the bind of <rootfs>/etc-link (-> /etc) showed the host's /etc, or failed: %s", r)
				}
				assertClean(t, b, id)
			})
		})
	}
}

// TestAttackUsernsBindCannotChangeLockedAtime: the kernel locks a mount's atime mode as a whole
// when it is copied into a user namespace; husk's clones are the host root's and are not locked,
// so a user-namespaced container could get another atime mode than the host mount's (runc 1.5's
// mounts_sshfs.bats "{no,rel,strict}atime semantics"). Now a bind that names an atime flag must
// end at the source's mode, or fails with EPERM; one that names none keeps the source's, also
// one that clears an atime flag ("diratime": the kernel is asked for no atime mode, as in runc).
func TestAttackUsernsBindCannotChangeLockedAtime(t *testing.T) {
	src := hostMountWithFlags(t, syscall.MS_NODIRATIME|syscall.MS_RELATIME)
	run := func(t *testing.T, opts []string, flags []string) result {
		b := newBundle(t, "sh", "-c", "awk '$2 == \"/mnt\" {print $4}' /proc/self/mounts")
		userNamespaced(b)
		b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: opts})
		b.write(t)
		return b.husk(t, append(append([]string{"run"}, flags...), uniqueID(t))...)
	}
	bothPaths(t, func(t *testing.T, flags []string) {
		for _, opts := range [][]string{{"bind", "strictatime"}, {"bind", "noatime"}, {"bind", "nosuid", "strictatime"}} {
			assertOneLineError(t, run(t, opts, flags), "operation not permitted")
		}
		for _, opts := range [][]string{{"bind"}, {"bind", "nodiratime"}, {"bind", "nosuid", "relatime", "nodiratime"}, {"bind", "norelatime"}, {"bind", "diratime"}} {
			if r := run(t, opts, flags); r.code != 0 || !strings.Contains(r.stdout, "nodiratime") {
				t.Errorf("%v of a relatime,nodiratime source: want it kept: %s", opts, r)
			}
		}
	})
}

// hostMountWithFlags is a fresh tmpfs on the host, remounted with the given per-mount flags, as
// a volume a container binds; it is detached when the test ends.
func hostMountWithFlags(t *testing.T, flags uintptr) string {
	t.Helper()
	src := t.TempDir()
	if err := syscall.Mount("tmpfs", src, "tmpfs", 0, "size=1m,mode=0777"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(src, syscall.MNT_DETACH) })
	if err := syscall.Mount("", src, "", syscall.MS_BIND|syscall.MS_REMOUNT|flags, ""); err != nil {
		t.Fatal(err)
	}
	return src
}
