package libcontainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/libcontainer/procenv"
	"github.com/husk-runtime/husk/specs"
)

// nsOrder is the order namespaces are joined in: user first so its capabilities apply to the
// rest, mount last so /proc paths of the others still resolve.
var nsOrder = []rspec.LinuxNamespaceType{
	rspec.UserNamespace, rspec.IPCNamespace, rspec.UTSNamespace, rspec.NetworkNamespace,
	rspec.CgroupNamespace, rspec.MountNamespace,
}

var cloneFlags = map[rspec.LinuxNamespaceType]uintptr{
	rspec.UserNamespace: unix.CLONE_NEWUSER, rspec.IPCNamespace: unix.CLONE_NEWIPC,
	rspec.UTSNamespace: unix.CLONE_NEWUTS, rspec.NetworkNamespace: unix.CLONE_NEWNET,
	rspec.MountNamespace: unix.CLONE_NEWNS, rspec.PIDNamespace: unix.CLONE_NEWPID,
}

// nsProcName maps namespace types to their /proc/<pid>/ns entry.
var nsProcName = map[rspec.LinuxNamespaceType]string{
	rspec.UserNamespace: "user", rspec.IPCNamespace: "ipc", rspec.UTSNamespace: "uts",
	rspec.NetworkNamespace: "net", rspec.CgroupNamespace: "cgroup", rspec.MountNamespace: "mnt",
	rspec.PIDNamespace: "pid", rspec.TimeNamespace: "time",
}

// initProcess describes the child to start: how it enters its namespaces and which fds it gets.
type initProcess struct {
	stdio       Stdio
	preserveFds int
	console     *os.File
	fifo        *os.File
	namespaces  []rspec.LinuxNamespace // create: new (no path) or joined (path)
	joinPaths   map[rspec.LinuxNamespaceType]string
	uidMaps     []rspec.LinuxIDMapping
	gidMaps     []rspec.LinuxIDMapping
	setup       setup              // who sets the child up, and from what
	beforeRun   func()             // called right before the child gets its config or request
	affinity    *rspec.CPUAffinity // process.execCPUAffinity
	oomScoreAdj *int               // process.oomScoreAdj, written by the parent
	monitor     children.Monitor   // forks the child (and the intermediate) and waits for it
	initBinary  *InitBinary        // a sealed husk-init kept by the caller; nil: one per start
	debug       func(string)       // --debug
	// mountSources are detached clones of bind mount sources (idmapped, or for an init in a new
	// user namespace), by mount index: see detachedMounts.
	mountSources map[string]*os.File
}

// Process is a child husk started (an init or an exec'd process), tracked by pid. husk forks
// with syscall.ForkExec rather than os/exec: nothing to copy, no pidfd probe child.
type Process struct {
	Pid int
	mon children.Monitor // what started it and waits for it (nil: directly)
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error {
	return unix.Kill(p.Pid, sig.(syscall.Signal))
}

// Wait reaps the process and returns its wait status.
func (p *Process) Wait() (syscall.WaitStatus, error) {
	return children.Or(p.mon).Wait(p.Pid)
}

// handOver ends the operation's claim on the process's exit once it is the caller's process
// (the container's init, an exec'd process): a monitor then routes it as any other exit.
func (p *Process) handOver() {
	children.Or(p.mon).Release(p.Pid)
}

func (p *Process) kill() {
	_ = unix.Kill(p.Pid, unix.SIGKILL)
	_, _ = p.Wait()
}

func fdOr(f *os.File, null *os.File) uintptr {
	if f == nil {
		return null.Fd()
	}
	return f.Fd()
}

// allCPUs is a CPU mask with every bit set, as large as the kernel's largest (64Ki CPUs).
var allCPUs = bytes.Repeat([]byte{0xff}, 64*1024/8)

// resetCPUAffinity lets the process run on every CPU its cgroup's cpuset allows (the kernel
// masks the rest), instead of inheriting husk's own affinity: a husk started under
// `taskset -c 0` would otherwise pin every container to CPU 0. runc 1.2.7+ does the same; a
// failure leaves the inherited affinity, as there.
func resetCPUAffinity(pid int) {
	unix.RawSyscall(unix.SYS_SCHED_SETAFFINITY, uintptr(pid), uintptr(len(allCPUs)), uintptr(unsafe.Pointer(&allCPUs[0])))
}

// logAffinity logs the CPUs the new process starts on, before its cgroup may change them, in
// runc's words and as a mask of the first 64 CPUs (runc's cpu_affinity tests read this line).
func logAffinity(debug func(string), pid int) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &set); err != nil {
		debugf(debug, "nsexec[%d]: sched_getaffinity: %v", pid, err)
		return
	}
	var mask uint64
	for cpu := 0; cpu < 64; cpu++ {
		if set.IsSet(cpu) {
			mask |= 1 << cpu
		}
	}
	debugf(debug, "nsexec[%d]: affinity: %#x", pid, mask)
}

// execFdAbove gives the sealed binary a number the child's fd placement cannot reach. The child
// (syscall.forkAndExecInChild) puts files[i] at fd i, and before that moves the files that sit
// below their slot, and its own error pipe, to max(len(files), largest fd in files)+1, +2, ...:
// any number up to that base plus len(files)+1 may hold something else by the time the child
// calls execve. With ~60 mount fds the binary's old fixed number (64) held a bind source, which
// ran as the container's init on the host's filesystem; in the shim, whose stdio fds are high
// numbers, a number just above them held a directory (execve: permission denied). A check of
// /proc/<pid>/exe after the fork was tried too: it gave false alarms on a 6.1 kernel under
// cgroup v1 (the systemd guest), so the placement is the defence, and its tests.
func execFdAbove(bin *os.File, files []uintptr) (*os.File, error) {
	base := len(files)
	for _, f := range files {
		base = max(base, int(f))
	}
	floor := base + len(files) + 8
	fd, err := unix.FcntlInt(bin.Fd(), unix.F_DUPFD_CLOEXEC, floor)
	if err != nil {
		return nil, fmt.Errorf("place the sealed husk-init above fd %d: %w", floor, err)
	}
	return os.NewFile(uintptr(fd), bin.Name()), nil
}

// nsTypeFlags is the CLONE_NEW* value NS_GET_NSTYPE reports for each namespace type.
var nsTypeFlags = map[rspec.LinuxNamespaceType]int{
	rspec.UserNamespace: unix.CLONE_NEWUSER, rspec.IPCNamespace: unix.CLONE_NEWIPC,
	rspec.UTSNamespace: unix.CLONE_NEWUTS, rspec.NetworkNamespace: unix.CLONE_NEWNET,
	rspec.MountNamespace: unix.CLONE_NEWNS, rspec.PIDNamespace: unix.CLONE_NEWPID,
	rspec.CgroupNamespace: unix.CLONE_NEWCGROUP, rspec.TimeNamespace: unix.CLONE_NEWTIME,
}

// openNamespace opens a namespace to join and checks it is one of type t. setns(fd, 0) joins
// whatever the file is: an "ipc" path naming a mount namespace would make the init build and
// pivot the rootfs in that namespace (husk's own, or the host's).
func openNamespace(t rspec.LinuxNamespaceType, path string) (*os.File, error) {
	// A bare open: os.OpenFile would try the file on Go's poller, four more system calls
	// for each namespace of each exec.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", t, &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	got, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("namespace %s: path %q is not a namespace file", t, path)
	}
	if got != nsTypeFlags[t] {
		f.Close()
		name := "unknown"
		for nt, flag := range nsTypeFlags {
			if flag == got {
				name = string(nt)
			}
		}
		return nil, fmt.Errorf("namespace %s: path %q is a namespace of type %s, not %s", t, path, name, t)
	}
	return f, nil
}

func idMaps(m []rspec.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

// consoleConn connects to the console socket that will receive the pty master.
func consoleConn(path string, conn *os.File) (*os.File, error) {
	if conn != nil {
		return conn, nil
	}
	if path == "" {
		return nil, nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), "console-socket"), nil
}

// PrepareExecProcess gives an exec's process (`exec --process`, a shim's exec) its defaults,
// a cwd of "/" as runc's, and validates it; for both frontends.
func PrepareExecProcess(p *rspec.Process) error {
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	return specs.ValidateProcess(p)
}

// ExecOpts carries what `husk exec` is given.
type ExecOpts struct {
	Process       *rspec.Process
	ConsoleSocket string
	ConsoleConn   *os.File
	PidFile       string
	PreserveFds   int
	Stdio         Stdio
	SlowPath      bool             // set up the process in the Go init even when the fast path could
	BeforeRun     func()           // called once the process is in its cgroup, before it is let run
	InitBinary    *InitBinary      // a sealed husk-init the caller keeps for many starts (nil: one per start)
	Debug         func(msg string) // --debug: the steps of the exec, as runc logs them
	Cgroups       []string         // --cgroup: sub-cgroups of the container's to run in
	IgnorePaused  bool             // --ignore-paused: exec into a paused container
}

// Exec starts a new process inside the running container and returns it once it has exec'd.
func (c *Container) Exec(o ExecOpts) (*Process, error) {
	cg := c.Cgroup()
	if err := c.execable(c.statusWith(cg), o); err != nil {
		return nil, err
	}
	v, err := c.execView()
	if err != nil {
		return nil, err
	}
	return c.execChecked(o, v, c.execJoins(v), cg)
}

// execable reports whether a container in status st takes an exec of o, and why not.
func (c *Container) execable(st Status, o ExecOpts) error {
	if st != Running && st != Created && !(st == Paused && o.IgnorePaused) {
		return fmt.Errorf("container %s: cannot exec in a %s container", c.state.ID, st)
	}
	return nil
}

// execChecked is Exec once the container's status has said yes, with what it needs of the
// container's state worked out (by Exec, or kept by an ExecCache): its exec view, the
// namespaces to join and its cgroup.
func (c *Container) execChecked(o ExecOpts, v *execView, joins map[rspec.LinuxNamespaceType]string, cg *cgroups.Manager) (*Process, error) {
	if o.Process.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return nil, errors.New("process.terminal is true: --console-socket is required")
	}
	console, err := consoleConn(o.ConsoleSocket, o.ConsoleConn)
	if err != nil {
		return nil, err
	}
	if console != nil && o.ConsoleConn == nil {
		defer console.Close()
	}
	p := &initProcess{setup: c.planExec(o, v, console), stdio: o.Stdio, preserveFds: o.PreserveFds, console: console, joinPaths: joins,
		beforeRun: o.BeforeRun, affinity: o.Process.ExecCPUAffinity, debug: o.Debug, oomScoreAdj: o.Process.OOMScoreAdj, monitor: c.Monitor,
		initBinary: o.InitBinary}
	cfg, err := execConfig(c.state.ID, o.Process, v)
	if err != nil {
		return nil, fmt.Errorf("container %s: exec: %w", c.state.ID, err)
	}
	if len(o.Cgroups) > 0 {
		if cg, err = cg.Sub(o.Cgroups); err != nil {
			return nil, fmt.Errorf("container %s: exec: %w", c.state.ID, err)
		}
	}
	cmd, pipe, err := p.start(cfg, cg)
	if err != nil {
		return nil, fmt.Errorf("container %s: exec: %w", c.state.ID, err)
	}
	defer pipe.Close()
	// The init closes its end by exec'ing (close-on-exec), or reports why it could not; on
	// the way it may hand over a seccomp listener for the agent.
	err = pipe.WaitExec(initproto.Handlers{SeccompFd: func(fd int) error {
		return sendSeccompListener(cmd.Pid, fd, seccompOfSpec(v.Linux.Seccomp), *c.hookState(c.status()))
	}})
	if err != nil {
		cmd.kill()
		return nil, fmt.Errorf("container %s: exec: %w", c.state.ID, err)
	}
	debugf(o.Debug, "setns_init: about to exec: pid %d runs %q", cmd.Pid, o.Process.Args[0])
	if err := writePidFile(o.PidFile, cmd.Pid); err != nil {
		cmd.kill()
		return nil, err
	}
	cmd.handOver()
	return cmd, nil
}

// execJoins names the namespaces of the container an exec joins: every one it lists that is
// not husk's own. (Each compared through the two processes' ns directories, opened once: an
// exec of a probe does this for every namespace.)
func (c *Container) execJoins(v *execView) map[rspec.LinuxNamespaceType]string {
	joins := map[rspec.LinuxNamespaceType]string{}
	dir := fmt.Sprintf("/proc/%d/ns", c.state.InitPid)
	initNs, err1 := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	selfNs, err2 := unix.Open("/proc/self/ns", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err1 == nil {
		defer unix.Close(initNs)
	}
	if err2 == nil {
		defer unix.Close(selfNs)
	}
	for _, ns := range v.Linux.Namespaces {
		name := nsProcName[ns.Type]
		theirs := name
		if ns.Type == rspec.TimeNamespace {
			// The init unshares its time namespace and enters it only at its execve, which
			// may still be under way when start has returned: time_for_children is the
			// container's from the unshare on (and equals time once the init has exec'd).
			theirs += "_for_children"
		}
		if err1 == nil && err2 == nil && sameNamespaceAt(initNs, theirs, selfNs, name) {
			continue
		}
		joins[ns.Type] = dir + "/" + theirs
	}
	return joins
}

// sameNamespaceAt reports whether two ns directory entries are the same namespace.
func sameNamespaceAt(dirA int, a string, dirB int, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Fstatat(dirA, a, &sa, 0) != nil || unix.Fstatat(dirB, b, &sb, 0) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// planExec decides, once, who sets an exec up: the constructor (the fast path: no terminal,
// and a seccomp filter only if the create left its program) or the Go init, which also
// applies the container's personality and memory policy to an exec'd process.
func (c *Container) planExec(o ExecOpts, v *execView, console *os.File) setup {
	attrs := len(v.Linux.Personality) > 0 || len(v.Linux.MemoryPolicy) > 0 || rawHasNotify(v.Linux.Seccomp)
	if console != nil || o.SlowPath || attrs {
		return goInitSetup{}
	}
	var bpf []byte
	hasSeccomp := len(v.Linux.Seccomp) > 0 && string(v.Linux.Seccomp) != "null"
	if hasSeccomp {
		if bpf, _ = os.ReadFile(filepath.Join(c.dir, seccompFile)); len(bpf) == 0 {
			return goInitSetup{}
		}
	}
	home := ""
	if !procenv.HasHome(o.Process.Env) {
		home = procenv.ContainerHome(c.state.InitPid, o.Process.User.UID)
	}
	flags := rawSeccompFlags(v.Linux.Seccomp)
	if hasSeccomp {
		debugf(o.Debug, "seccomp filter flags: %d", flags)
	}
	if r := fastExecRequest(o.Process, bpf, flags, o.PreserveFds, home); r != nil {
		return fastExecSetup{req: r.Encode()}
	}
	return goInitSetup{}
}

// execConfig is the Go init's config for an exec: the process, and of the spec only what an
// exec'd process needs.
func execConfig(id string, process *rspec.Process, v *execView) (*initproto.InitConfig, error) {
	linux := map[string]json.RawMessage{}
	for key, val := range map[string]json.RawMessage{"seccomp": v.Linux.Seccomp, "personality": v.Linux.Personality, "memoryPolicy": v.Linux.MemoryPolicy} {
		if len(val) > 0 && string(val) != "null" {
			linux[key] = val
		}
	}
	spec, err := json.Marshal(map[string]any{"linux": linux})
	if err != nil {
		return nil, err
	}
	return &initproto.InitConfig{Mode: initproto.ModeExec, ID: id, RawSpec: spec, Process: process, NoNewKeyring: true}, nil
}

// sameNamespace reports whether two ns paths are the same namespace.
func sameNamespace(a, b string) bool { return sameNamespaceAt(unix.AT_FDCWD, a, unix.AT_FDCWD, b) }
