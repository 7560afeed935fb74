package specs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// namespaceTypes lists every namespace type husk can create or join.
var namespaceTypes = map[rspec.LinuxNamespaceType]bool{
	rspec.PIDNamespace: true, rspec.NetworkNamespace: true, rspec.MountNamespace: true,
	rspec.IPCNamespace: true, rspec.UTSNamespace: true, rspec.UserNamespace: true,
	rspec.CgroupNamespace: true, rspec.TimeNamespace: true,
}

// Validate checks what husk needs before it touches the system, so a bad config fails early
// with an error naming the field instead of half-way through create.
func Validate(s *rspec.Spec, bundle string) error {
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("root.path is required")
	}
	rootfs := RootfsPath(s, bundle)
	st, err := os.Stat(rootfs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("root.path: rootfs %q does not exist", rootfs)
		}
		return fmt.Errorf("root.path: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("root.path: rootfs %q is not a directory", rootfs)
	}
	if s.Process == nil {
		return errors.New("process is required")
	}
	if err := ValidateProcess(s.Process); err != nil {
		return err
	}
	if s.Linux == nil {
		return errors.New("linux section is required on Linux")
	}
	seen := map[rspec.LinuxNamespaceType]bool{}
	for i, ns := range s.Linux.Namespaces {
		if !namespaceTypes[ns.Type] {
			return fmt.Errorf("linux.namespaces[%d].type: unknown namespace type %q", i, ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("linux.namespaces[%d].type: duplicate namespace %q", i, ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return fmt.Errorf("linux.namespaces[%d].path %q must be absolute", i, ns.Path)
		}
	}
	hasUserNS := seen[rspec.UserNamespace]
	if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !hasUserNS {
		return errors.New("linux.uidMappings: mappings need a user namespace in linux.namespaces")
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == rspec.UserNamespace && ns.Path == "" && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
			return errors.New("linux.uidMappings and linux.gidMappings are required for a new user namespace")
		}
	}
	if s.Hostname != "" && !seen[rspec.UTSNamespace] {
		return errors.New("hostname: setting a hostname needs a new uts namespace")
	}
	if s.Domainname != "" && !seen[rspec.UTSNamespace] {
		return errors.New("domainname: setting a domainname needs a new uts namespace")
	}
	for i, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mounts[%d].destination %q must be an absolute path", i, m.Destination)
		}
		opts, err := ParseMountOptions(m.Options)
		if err != nil {
			return fmt.Errorf("mounts[%d] (%q): %w", i, m.Destination, err)
		}
		if err := validateMount(m, opts); err != nil {
			return fmt.Errorf("mounts[%d] (%q): %w", i, m.Destination, err)
		}
		if opts.IDMap && len(m.UIDMappings) == 0 && !hasUserNS {
			return fmt.Errorf("mounts[%d] (%q): idmap without uidMappings and gidMappings takes the container's user namespace, and there is none", i, m.Destination)
		}
	}
	for i, d := range s.Linux.Devices {
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return fmt.Errorf("linux.devices[%d] (%s): unknown device type %q", i, d.Path, d.Type)
		}
		if !filepath.IsAbs(d.Path) {
			return fmt.Errorf("linux.devices[%d].path %q must be absolute", i, d.Path)
		}
	}
	if s.Linux.RootfsPropagation != "" {
		if _, ok := PropagationFlags[s.Linux.RootfsPropagation]; !ok {
			return fmt.Errorf("linux.rootfsPropagation: unknown propagation %q", s.Linux.RootfsPropagation)
		}
	}
	if s.Linux.Personality != nil {
		if _, err := Personality(s.Linux.Personality); err != nil {
			return err
		}
	}
	if s.Linux.MemoryPolicy != nil {
		if _, _, err := MemPolicy(s.Linux.MemoryPolicy); err != nil {
			return err
		}
	}
	if s.Linux.IntelRdt != nil {
		// Nothing in a config is silently ignored: without resctrl there is nothing to apply it to.
		if _, err := os.Stat("/sys/fs/resctrl/schemata"); err != nil {
			return errors.New("linux.intelRdt: Intel RDT (resctrl) is not available on this host")
		}
		return errors.New("linux.intelRdt: not supported by husk yet")
	}
	if sc := s.Linux.Seccomp; sc != nil {
		notify := sc.DefaultAction == rspec.ActNotify
		for _, call := range sc.Syscalls {
			notify = notify || call.Action == rspec.ActNotify
		}
		if notify && sc.ListenerPath == "" {
			return errors.New("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
		}
		if sc.ListenerPath != "" && !filepath.IsAbs(sc.ListenerPath) {
			return fmt.Errorf("linux.seccomp.listenerPath %q must be an absolute path", sc.ListenerPath)
		}
		if _, err := SeccompFlags(sc.Flags, notify); err != nil {
			return err
		}
	}
	if s.Linux.MountLabel != "" && !SELinuxEnabled() {
		return fmt.Errorf("linux.mountLabel %q: SELinux is not enabled on this host", s.Linux.MountLabel)
	}
	if err := validateNetDevices(s, seen); err != nil {
		return err
	}
	return validateSysctls(s)
}

// seccompFlagBits are the seccomp(2) filter flags linux.seccomp.flags may name. TSYNC is
// accepted and means nothing here, as in runc: the init is the only thread that execs, the
// others die with the exec.
var seccompFlagBits = map[rspec.LinuxSeccompFlag]uintptr{
	"SECCOMP_FILTER_FLAG_TSYNC":            0,
	rspec.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	rspec.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	rspec.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// SeccompFlagNames lists the flags `husk features` reports as supported.
func SeccompFlagNames() []string { return sortedKeys(seccompFlagBits) }

// SeccompFlags turns linux.seccomp.flags into seccomp(2)'s flags. No flags at all (absent, not
// an empty list) means SPEC_ALLOW, as runc 1.2+ does: containers keep the speculative-store-
// bypass mitigations of the host's choosing instead of seccomp forcing them on. notify: the
// profile has SCMP_ACT_NOTIFY (WAIT_KILLABLE_RECV needs its listener).
func SeccompFlags(flags []rspec.LinuxSeccompFlag, notify bool) (uintptr, error) {
	if flags == nil {
		return unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, nil
	}
	var out uintptr
	for _, f := range flags {
		bit, ok := seccompFlagBits[f]
		if !ok {
			return 0, fmt.Errorf("linux.seccomp.flags: unknown flag %q", f)
		}
		if f == rspec.LinuxSeccompFlagWaitKillableRecv && !notify {
			return 0, fmt.Errorf("linux.seccomp.flags: %q needs a SCMP_ACT_NOTIFY rule (a listener)", f)
		}
		out |= bit
	}
	return out, nil
}

// ipcSysctls are the kernel.* sysctls of the IPC namespace (with fs.mqueue.*).
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// SysctlPath is where a sysctl key lives under /proc/sys: "net.ipv4.conf.eth0/1.forwarding"
// (or "net/ipv4/conf/eth0.1/forwarding") is net/ipv4/conf/eth0.1/forwarding.
func SysctlPath(key string) string { return swapDotsSlashes(SysctlDots(key)) }

func swapDotsSlashes(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, s)
}

// SysctlDots is a sysctl key in its dotted form: "net/ipv4/conf/eth0.1/forwarding" becomes
// "net.ipv4.conf.eth0/1.forwarding", as runc reads it.
func SysctlDots(key string) string {
	i := strings.IndexAny(key, "./")
	if i < 0 || key[i] == '.' {
		return key
	}
	return swapDotsSlashes(key)
}

// validateSysctls allows only sysctls of a namespace the container does not share with the
// host, with runc 1.5's rules: anything else would be written to the host's kernel.
func validateSysctls(s *rspec.Spec) error {
	ns := map[rspec.LinuxNamespaceType]*rspec.LinuxNamespace{}
	for i := range s.Linux.Namespaces {
		ns[s.Linux.Namespaces[i].Type] = &s.Linux.Namespaces[i]
	}
	// own: a namespace that is the container's, new or joined by a path that is not this
	// process's own (a pod's).
	own := func(t rspec.LinuxNamespaceType, proc string) (bool, error) {
		n := ns[t]
		if n == nil {
			return false, nil
		}
		if n.Path == "" {
			return true, nil
		}
		var a, b unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+proc, &a); err != nil {
			return false, err
		}
		if err := unix.Stat(n.Path, &b); err != nil {
			return false, fmt.Errorf("linux.namespaces: %s path %q: %w", t, n.Path, err)
		}
		return a.Dev != b.Dev || a.Ino != b.Ino, nil
	}
	for key := range s.Linux.Sysctl {
		k := SysctlDots(key)
		if k == "" || strings.Contains(k, "..") || strings.HasPrefix(k, ".") || strings.Contains(key, "..") || strings.HasPrefix(key, "/") {
			return fmt.Errorf("linux.sysctl: invalid key %q", key)
		}
		var t rspec.LinuxNamespaceType
		var proc, what string
		switch {
		case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
			t, proc, what = rspec.IPCNamespace, "ipc", "an ipc namespace"
		case strings.HasPrefix(k, "net."):
			t, proc, what = rspec.NetworkNamespace, "net", "a network namespace"
		case k == "kernel.domainname":
			t, proc, what = rspec.UTSNamespace, "uts", "a uts namespace"
		case k == "kernel.hostname":
			return fmt.Errorf("linux.sysctl: %q is not allowed as it conflicts with the OCI \"hostname\" field", key)
		case strings.HasPrefix(k, "user."):
			t, proc, what = rspec.UserNamespace, "user", "a user namespace"
		default:
			return fmt.Errorf("linux.sysctl: %q is not in a separate kernel namespace: it would change the host's kernel", key)
		}
		ok, err := own(t, proc)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("linux.sysctl: %q needs %s of the container's own (new, or joined from another than the host's)", key, what)
		}
	}
	return nil
}

// UnknownCapabilities lists the capability names of caps that husk does not know, sorted and
// once each: runc 1.1.5 and 1.5 warn about them and run without them ("ignoring unknown or
// unavailable capabilities"), and so does husk: an image or a newer orchestrator naming a
// capability an older kernel lacks still runs.
func UnknownCapabilities(caps *rspec.LinuxCapabilities) []string {
	if caps == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, set := range [][]string{caps.Bounding, caps.Effective, caps.Permitted, caps.Inheritable, caps.Ambient} {
		for _, c := range set {
			if _, ok := Capability(c); !ok && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	sort.Strings(out)
	return out
}

// SELinuxEnabled reports whether the host runs SELinux (selinuxfs is mounted).
func SELinuxEnabled() bool {
	var sfs unix.Statfs_t
	return unix.Statfs("/sys/fs/selinux", &sfs) == nil && sfs.Type == unix.SELINUX_MAGIC
}

// MountData is a mount's filesystem data with the SELinux context of linux.mountLabel added,
// as runc gives it to the filesystems it mounts (binds, proc, sysfs and cgroups excepted).
func MountData(data, fstype, mountLabel string) string {
	switch fstype {
	case "", "bind", "proc", "sysfs", "cgroup", "cgroup2", "mqueue":
		return data
	}
	if mountLabel == "" {
		return data
	}
	ctx := "context=\"" + mountLabel + "\""
	if data == "" {
		return ctx
	}
	return data + "," + ctx
}

// MaxID is the largest uid or gid husk accepts, as runc. setresuid(2) takes (uid_t)-1,
// 4294967295, as "leave unchanged": such an id would leave the process running as root.
const MaxID = 1<<31 - 1

// ValidateID checks that a uid or gid (field names it) is one a process can run as.
func ValidateID(field string, id uint32) error {
	if id > MaxID {
		return fmt.Errorf("%s %d is out of range (0-%d)", field, id, MaxID)
	}
	return nil
}

// validateNetDevices checks linux.netDevices: interface names the kernel takes, moved into a
// network namespace of the container's own.
func validateNetDevices(s *rspec.Spec, seen map[rspec.LinuxNamespaceType]bool) error {
	if len(s.Linux.NetDevices) == 0 {
		return nil
	}
	if !seen[rspec.NetworkNamespace] {
		return errors.New("linux.netDevices: moving a device needs a network namespace for the container")
	}
	targets := map[string]bool{}
	for host, d := range s.Linux.NetDevices {
		if err := validIfName(host); err != nil {
			return fmt.Errorf("linux.netDevices: device %q: %w", host, err)
		}
		name := d.Name
		if name == "" {
			name = host
		}
		if err := validIfName(name); err != nil {
			return fmt.Errorf("linux.netDevices[%q].name %q: %w", host, d.Name, err)
		}
		if targets[name] {
			return fmt.Errorf("linux.netDevices: two devices are named %q in the container", name)
		}
		targets[name] = true
	}
	return nil
}

// validIfName is the kernel's dev_valid_name.
func validIfName(n string) error {
	if n == "" || len(n) >= 16 || n == "." || n == ".." || strings.ContainsAny(n, "/: \t\n\x00") {
		return errors.New("not a valid interface name")
	}
	return nil
}

// validateMount refuses what husk would otherwise have to drop silently.
func validateMount(m rspec.Mount, opts MountOptions) error {
	bind := opts.Bind || m.Type == "bind"
	if bind && opts.Data != "" {
		unknown, _, _ := strings.Cut(opts.Data, ",")
		// runc 1.5.3 refuses the same (measured): a bind has no filesystem to take them.
		return fmt.Errorf("unknown mount option %q for a bind mount: bind mounts cannot have any filesystem-specific options applied", unknown)
	}
	if opts.TmpCopyUp && m.Type != "tmpfs" {
		return fmt.Errorf("tmpcopyup is for tmpfs mounts, not type %q", m.Type)
	}
	if opts.IDMap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
		if !bind {
			return errors.New("idmapped mounts (idmap, ridmap, uidMappings, gidMappings) must be bind mounts")
		}
		if (len(m.UIDMappings) == 0) != (len(m.GIDMappings) == 0) {
			return errors.New("an idmapped mount needs both uidMappings and gidMappings, or neither (then the container's user namespace gives them)")
		}
		for _, mp := range append(append([]rspec.LinuxIDMapping(nil), m.UIDMappings...), m.GIDMappings...) {
			if mp.Size == 0 || uint64(mp.ContainerID)+uint64(mp.Size) > 1<<32 || uint64(mp.HostID)+uint64(mp.Size) > 1<<32 {
				return fmt.Errorf("mapping %d:%d:%d is out of range", mp.ContainerID, mp.HostID, mp.Size)
			}
		}
	}
	return nil
}

// maxArgStrlen is the kernel's MAX_ARG_STRLEN: one argument or environment string, with its NUL.
const maxArgStrlen = 32 * 4096

// checkArgSize refuses what execve(2) would refuse with E2BIG, so the user reads "argument list
// too long" instead of the init's failure to take a request that size. The total follows the
// kernel: a quarter of the stack limit (the process's RLIMIT_STACK, else husk's), at most 6 MB.
func checkArgSize(p *rspec.Process) error {
	var total uint64
	for _, set := range [][]string{p.Args, p.Env} {
		for _, s := range set {
			if len(s)+1 > maxArgStrlen {
				return fmt.Errorf("process: argument list too long (one argument or variable of %d bytes; the limit is %d)", len(s), maxArgStrlen-1)
			}
			total += uint64(len(s)) + 1 + 8
		}
	}
	var stack unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &stack); err != nil {
		stack.Cur = 8 << 20
	}
	for _, r := range p.Rlimits {
		if r.Type == "RLIMIT_STACK" {
			stack.Cur = r.Soft
		}
	}
	limit := uint64(6 << 20)
	if stack.Cur/4 < limit {
		limit = stack.Cur / 4
	}
	if limit < maxArgStrlen {
		limit = maxArgStrlen
	}
	if total > limit {
		return fmt.Errorf("process: argument list too long (%d bytes of arguments and environment; the limit is %d)", total, limit)
	}
	return nil
}

// ValidateProcess checks a process section, for create and for exec.
func ValidateProcess(p *rspec.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return errors.New("process.args must not be empty")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q must be an absolute path", p.Cwd)
	}
	for i, r := range p.Rlimits {
		if _, ok := Rlimits[r.Type]; !ok {
			return fmt.Errorf("process.rlimits[%d]: unknown rlimit %q", i, r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits[%d] (%s): soft limit %d exceeds hard limit %d", i, r.Type, r.Soft, r.Hard)
		}
	}
	if err := ValidateID("process.user.uid", p.User.UID); err != nil {
		return err
	}
	if err := ValidateID("process.user.gid", p.User.GID); err != nil {
		return err
	}
	for i, g := range p.User.AdditionalGids {
		if err := ValidateID(fmt.Sprintf("process.user.additionalGids[%d]", i), g); err != nil {
			return err
		}
	}
	if err := checkArgSize(p); err != nil {
		return err
	}
	if err := validateProcessAttrs(p); err != nil {
		return err
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fmt.Errorf("process.oomScoreAdj %d is outside -1000..1000", *p.OOMScoreAdj)
	}
	return nil
}
