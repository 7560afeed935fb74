package specs

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// MountOptions is a parsed mount option list: kernel flags, propagation changes applied after
// the mount, recursive attributes, and the data string for the filesystem.
type MountOptions struct {
	Flags       uintptr
	ClearFlags  uintptr // flags the user asked to clear ("rw", "suid", ...), for remounts
	Propagation []uintptr
	// RecAttrSet and RecAttrClr are MOUNT_ATTR_* values applied with mount_setattr(2) and
	// AT_RECURSIVE to the mount and every mount below it ("rro", "rnosuid", ...).
	RecAttrSet, RecAttrClr uint64
	Data                   string
	Bind                   bool
	Recursive              bool
	TmpCopyUp              bool // tmpfs: copy the directory's contents into the new tmpfs
	IDMap                  bool // "idmap"/"ridmap": an idmapped mount (ridmap: recursive)
	RecursiveIDMap         bool
}

// recAttrs are the recursive mount attributes runc 1.1+ accepts, applied with
// mount_setattr(AT_RECURSIVE). Kubernetes sends "rro" for recursively read-only volumes: as
// data for the filesystem, a bind mount would silently ignore it and stay writable.
var recAttrs = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro": {false, unix.MOUNT_ATTR_RDONLY}, "rrw": {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid": {false, unix.MOUNT_ATTR_NOSUID}, "rsuid": {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev": {false, unix.MOUNT_ATTR_NODEV}, "rdev": {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec": {false, unix.MOUNT_ATTR_NOEXEC}, "rexec": {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime": {false, unix.MOUNT_ATTR_NODIRATIME}, "rdiratime": {true, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime": {false, unix.MOUNT_ATTR_RELATIME}, "rnorelatime": {true, unix.MOUNT_ATTR_RELATIME},
	"rnoatime": {false, unix.MOUNT_ATTR_NOATIME}, "ratime": {true, unix.MOUNT_ATTR_NOATIME},
	"rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME}, "rnostrictatime": {true, unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW}, "rsymfollow": {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// atimeOpts are the recursive options that choose an atime mode: setting one needs the whole
// MOUNT_ATTR__ATIME field cleared first (mount_setattr(2)).
var atimeOpts = map[string]bool{"rrelatime": true, "rnoatime": true, "rstrictatime": true}

type flagOpt struct {
	clear bool
	flag  uintptr
}

var mountFlags = map[string]flagOpt{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
	"lazytime": {false, unix.MS_LAZYTIME}, "nolazytime": {true, unix.MS_LAZYTIME},
	"nosymfollow": {false, unix.MS_NOSYMFOLLOW}, "symfollow": {true, unix.MS_NOSYMFOLLOW},
	"acl": {false, unix.MS_POSIXACL}, "noacl": {true, unix.MS_POSIXACL},
	"iversion": {false, unix.MS_I_VERSION}, "noiversion": {true, unix.MS_I_VERSION},
	"defaults": {false, 0},
}

// IsBind reports whether a mount is a bind mount: type "bind", or a bind/rbind option.
func IsBind(m rspec.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// KnownMountOptions lists every option husk applies itself (the rest is filesystem data), for
// `husk features`.
func KnownMountOptions() []string {
	var out []string
	for o := range mountFlags {
		out = append(out, o)
	}
	for o := range PropagationFlags {
		out = append(out, o)
	}
	for o := range recAttrs {
		out = append(out, o)
	}
	out = append(out, "bind", "rbind", "tmpcopyup", "idmap", "ridmap")
	sort.Strings(out)
	return out
}

// PropagationFlags maps the propagation names used by mounts and linux.rootfsPropagation.
var PropagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// ParseMountOptions splits OCI mount options into flags, propagation, recursive attributes and
// fs data. Unknown options are passed to the filesystem as data, as mount(8) does; a bind mount
// has no filesystem to take them, and refuses them (BindData).
func ParseMountOptions(opts []string) (MountOptions, error) {
	var mo MountOptions
	var data []string
	for _, o := range opts {
		if o == "" {
			return mo, fmt.Errorf("empty mount option")
		}
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				mo.Flags &^= f.flag
				mo.ClearFlags |= f.flag
			} else {
				mo.Flags |= f.flag
			}
			continue
		}
		if p, ok := PropagationFlags[o]; ok {
			mo.Propagation = append(mo.Propagation, p)
			continue
		}
		if r, ok := recAttrs[o]; ok {
			if r.clear {
				mo.RecAttrClr |= r.attr
				mo.RecAttrSet &^= r.attr
			} else {
				mo.RecAttrSet |= r.attr
				mo.RecAttrClr &^= r.attr
			}
			if atimeOpts[o] {
				mo.RecAttrClr |= unix.MOUNT_ATTR__ATIME
			}
			continue
		}
		switch o {
		case "bind":
			mo.Bind = true
		case "rbind":
			mo.Bind, mo.Recursive = true, true
		case "tmpcopyup":
			mo.TmpCopyUp = true
		case "idmap":
			mo.IDMap = true
		case "ridmap":
			mo.IDMap, mo.RecursiveIDMap = true, true
		default:
			if strings.ContainsAny(o, "\n\x00") {
				return mo, fmt.Errorf("mount option %q contains an invalid character", o)
			}
			data = append(data, o)
		}
	}
	mo.Data = strings.Join(data, ",")
	return mo, nil
}

// Rlimits maps OCI rlimit names to their resource numbers.
var Rlimits = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": 10,
	"RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// capNames lists capabilities by number; the index is the capability's value.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Capability returns the number of a capability name ("CAP_KILL" or "KILL").
func Capability(name string) (int, bool) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, c := range capNames {
		if c == n {
			return i, true
		}
	}
	return 0, false
}

// UnraisableAmbient lists the ambient capabilities of caps that the kernel will not raise
// because they are not both permitted and inheritable. `runc spec` writes an ambient set and no
// inheritable one; runc and crun run such a config and warn, and so does husk.
func UnraisableAmbient(caps *rspec.LinuxCapabilities) []string {
	if caps == nil {
		return nil
	}
	in := func(set []string, c int) bool {
		for _, n := range set {
			if k, ok := Capability(n); ok && k == c {
				return true
			}
		}
		return false
	}
	var out []string
	for _, name := range caps.Ambient {
		c, ok := Capability(name)
		if ok && !(in(caps.Permitted, c) && in(caps.Inheritable, c)) {
			out = append(out, name)
		}
	}
	return out
}

// AllCapabilities returns every capability name husk knows, for `features`.
func AllCapabilities() []string { return append([]string(nil), capNames...) }

// HasNamespace reports whether the namespaces list one of type t, new or joined by path.
func HasNamespace(namespaces []rspec.LinuxNamespace, t rspec.LinuxNamespaceType) bool {
	for _, ns := range namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// HasNewNamespace reports whether the container gets a new namespace of type t (one listed
// without a path).
func HasNewNamespace(s *rspec.Spec, t rspec.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// CapMask is the bit mask of the named capabilities that this kernel has (last is its highest
// number); names husk does not know grant nothing (they were warned about at load).
func CapMask(names []string, last int) uint64 {
	var m uint64
	for _, n := range names {
		c, ok := Capability(n)
		if !ok || c > last {
			continue // unknown to husk (warned about) or this kernel: nothing to grant
		}
		m |= 1 << uint(c)
	}
	return m
}

// LastCap is the kernel's highest capability number (40 when /proc does not say), read once
// per process: the shim asks it for every exec.
var LastCap = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 40
	}
	return n
})

// HasNotify reports whether a profile has a SCMP_ACT_NOTIFY rule: its filter needs a listener
// passed to the seccomp agent, which only the Go init (and its parent) can do.
func HasNotify(s *rspec.LinuxSeccomp) bool {
	if s == nil {
		return false
	}
	for _, sc := range s.Syscalls {
		if sc.Action == rspec.ActNotify {
			return true
		}
	}
	return s.DefaultAction == rspec.ActNotify
}
