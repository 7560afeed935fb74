package specs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// MountOptions is a parsed mount option list: kernel flags, propagation changes applied after
// the mount, and the data string for the filesystem.
type MountOptions struct {
	Flags       uintptr
	ClearFlags  uintptr // flags the user asked to clear ("rw", "suid", ...), for remounts
	Propagation []uintptr
	Data        string
	Bind        bool
	Recursive   bool
}

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
	"defaults": {false, 0},
}

// PropagationFlags maps the propagation names used by mounts and linux.rootfsPropagation.
var PropagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// ParseMountOptions splits OCI mount options into flags, propagation and fs data. Unknown
// options are passed to the filesystem as data, as mount(8) does.
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
		switch o {
		case "bind":
			mo.Bind = true
		case "rbind":
			mo.Bind, mo.Recursive = true, true
		case "tmpcopyup", "idmap", "ridmap":
			// Accepted and ignored: husk does not implement them yet; they are optional in the spec.
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

// AllCapabilities returns every capability name husk knows, for `features`.
func AllCapabilities() []string { return append([]string(nil), capNames...) }
