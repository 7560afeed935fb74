package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/libcontainer/procfs"
	"github.com/husk-runtime/husk/libcontainer/rootfs"
	"github.com/husk-runtime/husk/specs"
)

// IsInit reports whether this process was started as a husk init.
func IsInit() bool { return os.Getenv(initproto.EnvInit) != "" }

// Init is the entry point of `husk init`, the process that becomes the container. It never
// returns: it execs the user's process or reports an error to the parent and exits.
func Init() {
	// Capabilities, no_new_privs and the seccomp filter are per thread: everything happens on
	// this thread, which is the one that finally calls execve.
	runtime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(initproto.EnvSyncFd))
	if err != nil {
		os.Exit(1)
	}
	os.Unsetenv(initproto.EnvInit)
	os.Unsetenv(initproto.EnvSyncFd)
	os.Unsetenv("GOMAXPROCS")
	pipe := initproto.NewConn(os.NewFile(uintptr(fd), "sync"))
	cfg := &initConfig{}
	if err := pipe.WaitConfig(cfg); err != nil {
		os.Exit(1)
	}
	if err := decodeSpec(cfg); err != nil {
		pipe.Fail(err)
		os.Exit(1)
	}
	if cfg.Mode == initproto.ModeCreate {
		err = initContainer(pipe, cfg)
	} else {
		err = initExec(pipe, cfg)
	}
	// If the parent is gone it has already reported (or aborted) the create: stay silent.
	pipe.Fail(err)
	os.Exit(1)
}

// initSpec is the part of the spec the init reads; husk validated the whole of it already.
// encoding/json builds a codec for every type reachable from the one it decodes into,
// present in the document or not: rspec.Spec reaches linux.resources, Windows, VM and z/OS,
// and decoding it cost the init twice as long (~1 ms more per create).
type initSpec struct {
	Process     *rspec.Process    `json:"process,omitempty"`
	Root        *rspec.Root       `json:"root,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	Domainname  string            `json:"domainname,omitempty"`
	Mounts      []rspec.Mount     `json:"mounts,omitempty"`
	Hooks       *rspec.Hooks      `json:"hooks,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       *struct {
		UIDMappings       []rspec.LinuxIDMapping           `json:"uidMappings,omitempty"`
		GIDMappings       []rspec.LinuxIDMapping           `json:"gidMappings,omitempty"`
		Sysctl            map[string]string                `json:"sysctl,omitempty"`
		Namespaces        []rspec.LinuxNamespace           `json:"namespaces,omitempty"`
		Devices           []rspec.LinuxDevice              `json:"devices,omitempty"`
		Seccomp           *rspec.LinuxSeccomp              `json:"seccomp,omitempty"`
		RootfsPropagation string                           `json:"rootfsPropagation,omitempty"`
		MaskedPaths       []string                         `json:"maskedPaths,omitempty"`
		ReadonlyPaths     []string                         `json:"readonlyPaths,omitempty"`
		TimeOffsets       map[string]rspec.LinuxTimeOffset `json:"timeOffsets,omitempty"`
		Personality       *rspec.LinuxPersonality          `json:"personality,omitempty"`
		MemoryPolicy      *rspec.LinuxMemoryPolicy         `json:"memoryPolicy,omitempty"`
		// Only the cpuset's CPUs: the init names them when the kernel refuses a scheduler.
		Resources *struct {
			CPU *struct {
				Cpus string `json:"cpus,omitempty"`
			} `json:"cpu,omitempty"`
		} `json:"resources,omitempty"`
	} `json:"linux,omitempty"`
}

// decodeSpec decodes the spec the parent passed on as JSON and picks the process to run.
func decodeSpec(cfg *initConfig) error {
	if cfg == nil {
		return errors.New("init: no config")
	}
	var is initSpec
	if err := json.Unmarshal(cfg.RawSpec, &is); err != nil {
		return fmt.Errorf("init: decode spec: %w", err)
	}
	if is.Linux == nil || (is.Process == nil && cfg.Process == nil) {
		return errors.New("init: the spec has no process or linux section")
	}
	l := is.Linux
	s := rspec.Spec{
		Process: is.Process, Root: is.Root, Hostname: is.Hostname, Domainname: is.Domainname,
		Mounts: is.Mounts, Hooks: is.Hooks, Annotations: is.Annotations,
		Linux: &rspec.Linux{
			UIDMappings: l.UIDMappings, GIDMappings: l.GIDMappings, Sysctl: l.Sysctl,
			Namespaces: l.Namespaces, Devices: l.Devices, Seccomp: l.Seccomp,
			RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths,
			ReadonlyPaths: l.ReadonlyPaths, TimeOffsets: l.TimeOffsets,
			Personality: l.Personality, MemoryPolicy: l.MemoryPolicy,
		},
	}
	if r := l.Resources; r != nil && r.CPU != nil && r.CPU.Cpus != "" {
		s.Linux.Resources = &rspec.LinuxResources{CPU: &rspec.LinuxCPU{Cpus: r.CPU.Cpus}}
	}
	specs.AbsMountDestinations(&s) // the parent warned
	cfg.Spec = &s
	if cfg.Process == nil {
		cfg.Process = s.Process
	}
	cfg.Process.Env = append(cfg.Process.Env, cfg.ExtraEnv...)
	return nil
}

func initContainer(pipe *initproto.Conn, cfg *initConfig) error {
	spec := cfg.Spec
	if err := enterOwnNamespaces(cfg); err != nil {
		return err
	}
	sc := &initSeccomp{}
	err := rootfs.Build(cfg.rootfsConfig(pipe), rootfs.Site{}, func() error {
		if cfg.HasRuntimeHooks {
			if err := pipe.RunHooks(); err != nil {
				return err
			}
		}
		if spec.Hooks != nil && len(spec.Hooks.CreateContainer) > 0 {
			// As runc: in the container's rootfs, before pivot_root (the hooks that
			// install libraries into the image use relative paths).
			return runHooksIn(nil, cfg.Rootfs, spec.Hooks.CreateContainer, "createContainer", &rspec.State{
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
		if err := runHooks(nil, spec.Hooks.StartContainer, "startContainer", &rspec.State{
			Version: rspec.Version, ID: cfg.ID, Status: rspec.StateCreated, Pid: os.Getpid(),
			Bundle: cfg.Bundle, Annotations: spec.Annotations,
		}); err != nil {
			return err
		}
	}
	return execProcess(name, cfg, nil, sc)
}

func initExec(pipe *initproto.Conn, cfg *initConfig) error {
	if cfg.Process.Terminal {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	sc := &initSeccomp{}
	name, err := prepareProcess(cfg, pipe, sc)
	if err != nil {
		return err
	}
	err = execProcess(name, cfg, pipe, sc)
	// Reached only if execve failed; the pipe is still open because exec did not happen.
	return err
}

// execProcess loads a no_new_privs seccomp filter as late as possible (so the filter need not
// allow husk's own syscalls), then replaces this process with the user's.
func execProcess(name string, cfg *initConfig, pipe *initproto.Conn, sc *initSeccomp) error {
	p := cfg.Process
	if cfg.Spec.Linux.Seccomp != nil && p.NoNewPrivileges && !sc.loaded {
		if err := loadSeccomp(cfg, pipe, sc); err != nil {
			return err
		}
	}
	if err := unix.Exec(name, p.Args, os.Environ()); err != nil {
		// runc's words, which its suite reads: "exec /run.sh: no such file or directory".
		return &os.PathError{Op: "exec", Path: p.Args[0], Err: err}
	}
	return nil
}

// prepareProcess applies everything about the process (console, limits, credentials,
// capabilities, cwd, fds) and returns the resolved path of the program to exec.
func prepareProcess(cfg *initConfig, pipe *initproto.Conn, sc *initSeccomp) (string, error) {
	p := cfg.Process
	if cfg.ConsoleFd > 0 {
		if err := setupConsole(cfg.ConsoleFd, p.ConsoleSize, p.User.UID); err != nil {
			return "", err
		}
	}
	for _, r := range p.Rlimits {
		res := specs.Rlimits[r.Type]
		if err := unix.Prlimit(0, res, &unix.Rlimit{Cur: r.Soft, Max: r.Hard}, nil); err != nil {
			return "", fmt.Errorf("setrlimit %s: %w", r.Type, err)
		}
	}
	// process.oomScoreAdj: written by the parent (initProcess.start).
	// Before the capabilities are dropped: a real-time policy or class needs CAP_SYS_NICE.
	if err := applyProcessAttrs(p, cfg.Spec.Linux); err != nil {
		return "", err
	}
	if err := applyLabels(p); err != nil {
		return "", err
	}
	setProcessEnv(p, cfg.PreserveFds)
	// As runc: chdir first with husk's own access (a cwd the container user cannot reach
	// but root can), and again as the user only if that was refused (a volume owned by
	// the user that root may not enter, e.g. on NFS with root squash).
	chdirAgain := false
	if err := unix.Chdir(p.Cwd); err != nil {
		if err != unix.EACCES && err != unix.EPERM {
			return "", fmt.Errorf("chdir to cwd %q: %w", p.Cwd, err)
		}
		chdirAgain = true
	}
	// CVE-2024-21626: a cwd reached through a leaked fd lies outside the root, which getcwd
	// reports as unreachable.
	if wd, err := unix.Getwd(); !chdirAgain && (err != nil || !strings.HasPrefix(wd, "/")) {
		return "", fmt.Errorf("cwd %q is outside the container root", p.Cwd)
	}
	name, err := exec.LookPath(p.Args[0])
	if err != nil {
		return "", fmt.Errorf("exec: %q: executable file not found in $PATH", p.Args[0])
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	// Nothing of husk's may reach the user process: mark every fd past stdio and the preserved
	// ones close-on-exec (CVE-2024-21626). Before any filter is loaded: husk's own setup must
	// not depend on what the container's profile allows (a profile that denies close_range by
	// default would otherwise fail every container).
	if err := unix.CloseRange(uint(3+cfg.PreserveFds), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return "", fmt.Errorf("close fds: %w", err)
	}
	if cfg.Spec.Linux.Seccomp != nil && !p.NoNewPrivileges {
		// Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: do it now.
		if err := loadSeccomp(cfg, pipe, sc); err != nil {
			return "", err
		}
	}
	if err := setupUser(p); err != nil {
		return "", err
	}
	if chdirAgain {
		if err := unix.Chdir(p.Cwd); err != nil {
			return "", fmt.Errorf("chdir to cwd %q as uid %d: %w", p.Cwd, p.User.UID, err)
		}
		if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
			return "", fmt.Errorf("cwd %q is outside the container root", p.Cwd)
		}
	}
	return name, nil
}

// setProcessEnv makes the process's environment the init's, with HOME from the container's
// /etc/passwd when the spec sets none.
func setProcessEnv(p *rspec.Process, preserveFds int) {
	os.Clearenv()
	home := ""
	if !hasHome(p.Env) {
		home = "/"
		// The init's root is the container's now: /etc/passwd is the image's.
		if root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			home = homeInRoot(root, p.User.UID)
			root.Close()
		}
	}
	for _, kv := range processEnv(p.Env, preserveFds, home) {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
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
