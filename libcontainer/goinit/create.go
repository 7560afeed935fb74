package goinit

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/hooks"
	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/libcontainer/procfs"
	"github.com/husk-runtime/husk/libcontainer/rootfs"
	"github.com/husk-runtime/husk/specs"
)

func initContainer(pipe *initproto.Conn, cfg *initConfig) error {
	spec := cfg.Spec
	if err := enterOwnNamespaces(cfg); err != nil {
		return err
	}
	sc := &initSeccomp{}
	err := rootfs.Build(rootfs.ConfigFrom(&cfg.InitConfig, cfg.Spec, pipe), rootfs.Site{}, func() error {
		if cfg.HasRuntimeHooks {
			if err := pipe.RunHooks(); err != nil {
				return err
			}
		}
		if spec.Hooks != nil && len(spec.Hooks.CreateContainer) > 0 {
			// As runc: in the container's rootfs, before pivot_root (the hooks that
			// install libraries into the image use relative paths).
			return hooks.RunIn(nil, cfg.Rootfs, spec.Hooks.CreateContainer, "createContainer", &rspec.State{
				Version: rspec.Version, ID: cfg.ID, Status: rspec.StateCreating, Pid: os.Getpid(),
				Bundle: cfg.Bundle, Annotations: spec.Annotations,
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := reopenDevNull(); err != nil {
		return err
	}
	if spec.Linux.Seccomp != nil {
		// Compiled once: loaded below or at exec, and kept by the parent for later execs.
		bpf, err := compileSeccomp(spec.Linux.Seccomp)
		if err != nil {
			return err
		}
		sc.bpf = bpf
		if err := pipe.SendSeccomp(bpf); err != nil {
			return err
		}
	}
	name, err := prepareProcess(cfg, pipe, sc)
	if err != nil {
		return err
	}
	// With no_new_privs, the filter is loaded as late as the pipe allows, as runc does: a
	// listener (SCMP_ACT_NOTIFY) still needs the parent, and the startContainer hooks run
	// with the filter applied.
	if spec.Linux.Seccomp != nil && cfg.Process.NoNewPrivileges {
		if err := loadSeccomp(cfg, pipe, sc); err != nil {
			return err
		}
	}
	if err := pipe.SendReady(); err != nil {
		return err
	}
	pipe.Close()
	// From here on nobody waits on the pipe: a failure is the container's own, reported on
	// its stderr and in its exit status.
	if err := awaitStart(cfg, name, sc); err != nil {
		fmt.Fprintln(os.Stderr, err) // the one line runc's init prints there too
		os.Exit(127)
	}
	return nil
}

// enterOwnNamespaces makes the cgroup and time namespaces, here, after the parent placed us in
// our cgroup, so the cgroup namespace is rooted at the container's own cgroup; and joins the
// container's session keyring.
func enterOwnNamespaces(cfg *initConfig) error {
	spec := cfg.Spec
	if specs.HasNewNamespace(spec, rspec.CgroupNamespace) {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("new cgroup namespace: %w", err)
		}
	}
	if specs.HasNewNamespace(spec, rspec.TimeNamespace) {
		if err := setupTimeNamespace(spec.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	if !cfg.NoNewKeyring {
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID); err != nil && err != unix.ENOSYS {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	return nil
}

// awaitStart blocks until `husk start` opens the other end of the exec fifo, runs the
// startContainer hooks and execs the process (name).
func awaitStart(cfg *initConfig, name string, sc *initSeccomp) error {
	spec := cfg.Spec
	// Block until `husk start` opens the other end of the exec fifo.
	ff, err := unix.Open("/proc/self/fd/"+strconv.Itoa(cfg.FifoFd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := unix.Write(ff, []byte("0")); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	unix.Close(ff)
	unix.Close(cfg.FifoFd)
	if spec.Hooks != nil && len(spec.Hooks.StartContainer) > 0 {
		if err := hooks.Run(nil, spec.Hooks.StartContainer, "startContainer", &rspec.State{
			Version: rspec.Version, ID: cfg.ID, Status: rspec.StateCreated, Pid: os.Getpid(),
			Bundle: cfg.Bundle, Annotations: spec.Annotations,
		}); err != nil {
			return err
		}
	}
	return execProcess(name, cfg, nil, sc)
}

func setupTimeNamespace(offsets map[string]rspec.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("new time namespace: %w", err)
	}
	var b strings.Builder
	for clock, off := range offsets {
		switch clock {
		case "monotonic", "boottime":
		default:
			return fmt.Errorf("linux.timeOffsets: unknown clock %q", clock)
		}
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	if b.Len() > 0 {
		if err := procfs.WriteFile("self/timens_offsets", b.String()); err != nil {
			return err
		}
	}
	return nil
}

// reopenDevNull points the init's stdio that is the host's /dev/null at the container's, as
// runc's init does (execfast.c does the same for the create fast path): the host's is a file
// of another mount namespace, which CRIU cannot checkpoint, and a host inode held open.
func reopenDevNull() error {
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		return nil // a rootfs without /dev/null: nothing to point at
	}
	defer null.Close()
	var ns, st unix.Stat_t
	if err := unix.Fstat(int(null.Fd()), &ns); err != nil || ns.Mode&unix.S_IFMT != unix.S_IFCHR {
		return nil
	}
	for fd := 0; fd < 3; fd++ {
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == ns.Rdev {
			if err := unix.Dup3(int(null.Fd()), fd, 0); err != nil {
				return fmt.Errorf("reopen /dev/null as fd %d: %w", fd, err)
			}
		}
	}
	return nil
}
