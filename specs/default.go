// Package specs holds husk's OCI runtime-spec helpers: the default config that `husk spec`
// writes, loading a bundle's config.json, and validation whose errors name the offending field.
package specs

import (
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCapabilities are the capabilities a container gets by default, the same set runc and
// Docker grant. Inheritable stays empty (CVE-2022-29162).
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE",
	"CAP_KILL",
	"CAP_NET_BIND_SERVICE",
}

// Default returns the config.json that `husk spec` writes: a `sh` in a rootfs directory with
// the usual namespaces, mounts, masked and read-only paths, like `runc spec`.
func Default() *rspec.Spec {
	return &rspec.Spec{
		Version: rspec.Version,
		Root:    &rspec.Root{Path: "rootfs", Readonly: true},
		Process: &rspec.Process{
			Terminal: true,
			User:     rspec.User{},
			Args:     []string{"sh"},
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &rspec.LinuxCapabilities{
				Bounding:  append([]string(nil), DefaultCapabilities...),
				Effective: append([]string(nil), DefaultCapabilities...),
				Permitted: append([]string(nil), DefaultCapabilities...),
			},
			Rlimits:         []rspec.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "husk",
		Mounts: []rspec.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &rspec.Linux{
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
				"/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
			Resources: &rspec.LinuxResources{
				Devices: []rspec.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []rspec.LinuxNamespace{
				{Type: rspec.PIDNamespace},
				{Type: rspec.NetworkNamespace},
				{Type: rspec.IPCNamespace},
				{Type: rspec.UTSNamespace},
				{Type: rspec.MountNamespace},
				{Type: rspec.CgroupNamespace},
			},
		},
	}
}

// ToRootless adapts a default spec to run as an unprivileged user, as `runc spec --rootless`
// does: a user namespace mapping the caller to root, no network namespace, no cgroup limits,
// and /sys bind-mounted from the host because a fresh sysfs needs a network namespace we own.
func ToRootless(s *rspec.Spec, uid, gid uint32) {
	var ns []rspec.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type == rspec.NetworkNamespace || n.Type == rspec.UserNamespace {
			continue
		}
		ns = append(ns, n)
	}
	s.Linux.Namespaces = append(ns, rspec.LinuxNamespace{Type: rspec.UserNamespace})
	s.Linux.UIDMappings = []rspec.LinuxIDMapping{{HostID: uid, ContainerID: 0, Size: 1}}
	s.Linux.GIDMappings = []rspec.LinuxIDMapping{{HostID: gid, ContainerID: 0, Size: 1}}
	var mounts []rspec.Mount
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/sys":
			m = rspec.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
		case "/sys/fs/cgroup":
			continue
		case "/dev/pts":
			var opts []string
			for _, o := range m.Options {
				if o != "gid=5" {
					opts = append(opts, o)
				}
			}
			m.Options = opts
		}
		mounts = append(mounts, m)
	}
	s.Mounts = mounts
	s.Linux.Resources = nil
}
