// Package rootfs builds a container's root filesystem from inside its mount namespace: the
// rootfs bind, the spec's mounts, devices, masked and read-only paths, and the switch of root.
// It runs in the Go init, or in husk create on a thread joined to the C init's namespaces; Site
// says which.
package rootfs

import (
	"fmt"
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/libcontainer/procfs"
	"github.com/husk-runtime/husk/specs"
)

// Config is what a build builds from.
type Config struct {
	Spec         *rspec.Spec
	Rootfs       string // absolute
	Bundle       string
	NoPivot      bool
	SharedMounts bool // the container has no mount namespace of its own
	// MountFds maps a mount's index to a detached clone of its source (open_tree).
	MountFds map[string]int
	// LateMountSources are bind mounts (by index) whose clone the builder asks Conn for when
	// it gets to them (initproto's MountSource step; the Go init's only).
	LateMountSources []int
	Conn             *initproto.Conn
}

// ConfigFrom is what the builder needs of an init config (the wire record) and its decoded
// spec; conn is the Go init's connection to husk (nil from husk).
func ConfigFrom(c *initproto.InitConfig, spec *rspec.Spec, conn *initproto.Conn) *Config {
	return &Config{
		Spec: spec, Rootfs: c.Rootfs, Bundle: c.Bundle, NoPivot: c.NoPivot, SharedMounts: c.SharedMounts,
		MountFds: c.MountFds, LateMountSources: c.LateMountSources, Conn: conn,
	}
}

// Site says where a build runs: the zero value is in the Go init, inside the container; husk
// create's fast path builds from a thread joined to the init's namespaces, which is not in the
// init's pid namespace.
type Site struct {
	InitPid int      // the init, seen from husk
	ProcCtx *os.File // a procfs context in the init's pid namespace, for /proc
}

// fromParent reports whether the build runs in husk, not in the init.
func (s Site) fromParent() bool { return s.InitPid > 0 }

// build is one build of a container's rootfs: what it builds from, where it runs, and what it
// keeps between its steps.
type build struct {
	cfg  *Config
	site Site
	// readonlyTmpfs are the read-only tmpfs mounts, mounted writable and made read-only once
	// the rootfs is built.
	readonlyTmpfs []readonlyMount
}

// readonlyMount is a mount made writable and made read-only at the end, with its other flags.
type readonlyMount struct {
	dest  string
	flags uintptr
}

// Build sets up everything of a new container but its process, from inside its namespaces:
// the loopback interface, the rootfs and the spec's mounts, hostname, sysctls, the protected
// paths, and last the switch of root. afterMounts runs between the spec's mounts and the rest:
// the runtime and createContainer hooks.
func Build(cfg *Config, site Site, afterMounts func() error) error {
	b := &build{cfg: cfg, site: site}
	spec := cfg.Spec
	if specs.HasNewNamespace(spec, rspec.NetworkNamespace) {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if err := prepareRootfs(b); err != nil {
		return err
	}
	if afterMounts != nil {
		if err := afterMounts(); err != nil {
			return err
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("setdomainname: %w", err)
		}
	}
	for k, v := range spec.Linux.Sysctl {
		if err := procfs.WriteSysctl(k, v); err != nil {
			return err
		}
	}
	if err := protectRootfs(b); err != nil {
		return err
	}
	return finishRootfs(b)
}

// loopbackUp brings up lo in a new network namespace, as runc does.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}
