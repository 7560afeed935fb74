//go:build !huskinit

package libcontainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"unsafe"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/libcontainer/initproto"
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
	mode        initproto.Mode
	stdio       Stdio
	preserveFds int
	console     *os.File
	fifo        *os.File
	namespaces  []rspec.LinuxNamespace // create: new (no path) or joined (path)
	joinPaths   map[rspec.LinuxNamespaceType]string
	uidMaps     []rspec.LinuxIDMapping
	gidMaps     []rspec.LinuxIDMapping
	fastExec    []byte             // set: the constructor sets up and execs the process (fastExecRequest)
	fastCreate  []byte             // set: the constructor is the whole init; husk builds the rootfs (createfast.go)
	beforeRun   func()             // called right before the child gets its config or request
	affinity    *rspec.CPUAffinity // process.execCPUAffinity
	oomScoreAdj *int               // process.oomScoreAdj, written by the parent
	monitor     children.Monitor   // forks the child (and the intermediate) and waits for it
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

// start launches `husk init` from the sealed binary, places it in cg before it does anything,
// and sends it cfg. The returned pipe carries the rest of the conversation.
func (p *initProcess) start(cfg *initConfig, cg *cgroups.Manager) (*Process, *initproto.Conn, error) {
	// What husk inherited without close-on-exec (its caller's fds) must not reach the init,
	// even for the moment before the init's own exec (CVE-2024-21626; runc does the same): the
	// fds handed over on purpose are dup'd into place by the child, which clears the flag.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("mark inherited fds close-on-exec: %w", err)
	}
	bin, err := sealedBinary()
	if err != nil {
		return nil, nil, err
	}
	defer bin.Close()
	if p.debug != nil {
		// runc logs the same step ("runc exeseal: ..."); its tests read these lines.
		var fs unix.Statfs_t
		if unix.Fstatfs(int(bin.Fd()), &fs) == nil && fs.Type == unix.OVERLAYFS_SUPER_MAGIC {
			debugf(p.debug, "husk exeseal: using husk-init clone")
			debugf(p.debug, "husk exeseal: using overlayfs for sealed husk-init")
		} else {
			debugf(p.debug, "husk exeseal: using husk-init clone (sealed memfd copy)")
		}
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "sync-parent")
	child := os.NewFile(uintptr(fds[1]), "sync-child")
	defer child.Close()

	var null *os.File
	if p.stdio.Stdin == nil || p.stdio.Stdout == nil || p.stdio.Stderr == nil {
		if null, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
			return nil, nil, err
		}
		defer null.Close()
	}
	files := []uintptr{fdOr(p.stdio.Stdin, null), fdOr(p.stdio.Stdout, null), fdOr(p.stdio.Stderr, null)}
	for i := 0; i < p.preserveFds; i++ {
		files = append(files, uintptr(3+i))
	}
	addFd := func(f *os.File) int {
		files = append(files, f.Fd())
		return len(files) - 1
	}
	syncFd := addFd(child)
	if p.fifo != nil {
		cfg.FifoFd = addFd(p.fifo)
	}
	if p.console != nil {
		cfg.ConsoleFd = addFd(p.console)
	}
	for src, f := range p.mountSources {
		if cfg.MountFds == nil {
			cfg.MountFds = map[string]int{}
		}
		cfg.MountFds[src] = addFd(f)
	}
	cfg.PreserveFds = p.preserveFds

	var flags uintptr
	var childNs []int
	var parentNs []*os.File
	defer func() {
		for _, f := range parentNs {
			f.Close()
		}
	}()
	joins := map[rspec.LinuxNamespaceType]string{}
	for k, v := range p.joinPaths {
		joins[k] = v
	}
	for _, ns := range p.namespaces {
		if ns.Path != "" {
			joins[ns.Type] = ns.Path
		} else {
			flags |= cloneFlags[ns.Type] // cgroup and time are unshared by the init itself
		}
	}
	if flags&unix.CLONE_NEWUSER != 0 && len(joins) > 0 && p.mode == initproto.ModeCreate {
		for t := range joins {
			if t != rspec.UserNamespace {
				return nil, nil, fmt.Errorf("joining the %s namespace by path together with a new user namespace is not supported yet", t)
			}
		}
	}
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	// Pid and time namespaces apply to children. Without a user or time namespace to join, this
	// process joins them on a throw-away thread and the child is born inside; with one, only a
	// single-threaded process may join it, so nsenter joins everything and forks.
	_, joinUser := joins[rspec.UserNamespace]
	// A time namespace is joined only by a single-threaded process (setns: EUSERS otherwise):
	// nsenter joins it, with the pid namespace, and forks.
	_, joinTime := joins[rspec.TimeNamespace]
	// Joining a user namespace (a pod's), the new namespaces must be made inside it, after the
	// join: nsenter unshares them (made at clone, they would belong to husk's user namespace).
	var unshareLater uintptr
	if joinUser && flags != 0 {
		unshareLater, flags = flags, 0
	}
	var forkNs []int
	for _, t := range append(append([]rspec.LinuxNamespaceType(nil), nsOrder...), rspec.PIDNamespace, rspec.TimeNamespace) {
		path, ok := joins[t]
		if !ok {
			continue
		}
		f, err := openNamespace(t, path)
		if err != nil {
			return nil, nil, err
		}
		childrenOnly := t == rspec.PIDNamespace || t == rspec.TimeNamespace
		switch {
		case childrenOnly && !joinUser && !joinTime:
			parentNs = append(parentNs, f)
		case childrenOnly:
			opened = append(opened, f)
			forkNs = append(forkNs, int(addFd(f)))
		default:
			opened = append(opened, f)
			childNs = append(childNs, int(addFd(f)))
		}
	}

	boot := initproto.Boot{SyncFd: syncFd, NsFds: childNs, NsFdsFork: forkNs, Unshare: unshareLater}
	switch {
	case p.fastExec != nil:
		boot.Path = initproto.PathExecFast
	case p.fastCreate != nil:
		boot.Path = initproto.PathCreateFast
	}
	env := boot.Encode()
	forks := len(forkNs) > 0 || unshareLater&unix.CLONE_NEWPID != 0
	if forks {
		// The process nsenter forks is our grandchild; as a subreaper we can still wait for it.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, nil, fmt.Errorf("set child subreaper: %w", err)
		}
	}
	sys := &syscall.SysProcAttr{Cloneflags: flags}
	if flags&unix.CLONE_NEWUSER != 0 {
		sys.UidMappings = idMaps(p.uidMaps)
		sys.GidMappings = idMaps(p.gidMaps)
		// An unprivileged parent may only write gid_map after denying setgroups.
		sys.GidMappingsEnableSetgroups = os.Geteuid() == 0
		// Become the namespace's root before exec, or exec drops every capability: our host
		// uid is not mapped inside.
		sys.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	exe, err := execFdAbove(bin, files)
	if err != nil {
		parent.Close()
		return nil, nil, fmt.Errorf("start init: %w", err)
	}
	defer exe.Close()
	proc := &Process{mon: p.monitor}
	fork := func() error {
		pid, err := children.Or(p.monitor).ForkExec("/proc/self/fd/"+strconv.Itoa(int(exe.Fd())), []string{"husk", "init"},
			&syscall.ProcAttr{Env: env, Files: files, Sys: sys})
		proc.Pid = pid
		return err
	}
	if a := p.affinity; a != nil && a.Initial != "" {
		// "initial": the CPUs the process starts on, before it joins the cgroup. The forking
		// thread takes them (the child inherits them) and is thrown away afterwards.
		set, err := specs.CPUList("process.execCPUAffinity.initial", a.Initial)
		if err != nil {
			parent.Close()
			return nil, nil, err
		}
		forkOnCPUs := fork
		fork = func() error {
			if err := unix.SchedSetaffinity(0, set); err != nil {
				return fmt.Errorf("process.execCPUAffinity.initial: %w", err)
			}
			return forkOnCPUs()
		}
		if len(parentNs) == 0 {
			forkOnThread := fork
			fork = func() error { return onThrowawayThread(forkOnThread) }
		}
	}
	err = startLocked(parentNs, fork)
	if err != nil {
		if proc.Pid > 0 {
			proc.kill()
		}
		parent.Close()
		return nil, nil, fmt.Errorf("start init: %w", err)
	}
	debugf(p.debug, "nsexec container setup: husk-init started as pid %d (%s), joining %d namespaces", proc.Pid, p.mode, len(childNs)+len(forkNs)+len(parentNs))
	pipe := initproto.NewConn(parent)
	fail := func(err error) (*Process, *initproto.Conn, error) {
		proc.kill()
		parent.Close()
		return nil, nil, err
	}
	if forks {
		child.Close()
		pid, err := pipe.WaitPid()
		intermediate := &Process{Pid: proc.Pid, mon: p.monitor}
		intermediate.Wait()
		if err != nil {
			parent.Close()
			return nil, nil, err
		}
		proc.Pid = pid
	}
	if p.debug != nil {
		logAffinity(p.debug, proc.Pid)
	}
	if cg != nil {
		if err := cg.Apply(proc.Pid); err != nil {
			return fail(err)
		}
	}
	if a := p.affinity; a == nil || a.Final == "" {
		resetCPUAffinity(proc.Pid)
	}
	if a := p.affinity; a != nil && a.Final != "" {
		// "final": the CPUs once in the cgroup, set before the process runs anything of its own.
		set, err := specs.CPUList("process.execCPUAffinity.final", a.Final)
		if err != nil {
			return fail(err)
		}
		if err := unix.SchedSetaffinity(proc.Pid, set); err != nil {
			return fail(fmt.Errorf("process.execCPUAffinity.final: %w", err))
		}
	}
	if p.oomScoreAdj != nil {
		// By the parent, as runc's nsexec writes it before joining any user namespace: in a
		// user namespace (a pod's, joined by path) the init may not write its own
		// (/proc/self/oom_score_adj is root's there), and the host's /proc is the one to trust.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", proc.Pid), []byte(strconv.Itoa(*p.oomScoreAdj)), 0); err != nil {
			return fail(fmt.Errorf("process.oomScoreAdj %d: %w", *p.oomScoreAdj, err))
		}
	}
	child.Close()
	// The config, or for the fast paths the constructor's request, once the process is in its
	// cgroup.
	if p.beforeRun != nil {
		p.beforeRun()
	}
	if p.fastExec != nil || p.fastCreate != nil {
		debugf(p.debug, "child process in init(): pid %d is in its cgroup; husk-init's constructor sets it up", proc.Pid)
	} else {
		debugf(p.debug, "child process in init(): pid %d is in its cgroup; husk-init's Go init sets it up", proc.Pid)
	}
	switch {
	case p.fastExec != nil:
		err = pipe.SendRequest(p.fastExec)
	case p.fastCreate != nil:
		err = pipe.SendRequest(p.fastCreate)
	default:
		err = pipe.SendConfig(cfg)
	}
	if err != nil {
		// The constructor may have failed to join a namespace and said why.
		if _, rerr := pipe.Recv(); rerr != nil && !errors.Is(rerr, os.ErrClosed) {
			return fail(rerr)
		}
		return fail(fmt.Errorf("send config to init: %w", err))
	}
	return proc, pipe, nil
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
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", t, err)
	}
	got, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
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
	Debug         func(msg string) // --debug: the steps of the exec, as runc logs them
	Cgroups       []string         // --cgroup: sub-cgroups of the container's to run in
	IgnorePaused  bool             // --ignore-paused: exec into a paused container
}

// Exec starts a new process inside the running container and returns it once it has exec'd.
func (c *Container) Exec(o ExecOpts) (*Process, error) {
	if st := c.status(); st != Running && st != Created && !(st == Paused && o.IgnorePaused) {
		return nil, fmt.Errorf("container %s: cannot exec in a %s container", c.state.ID, st)
	}
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
	joins := map[rspec.LinuxNamespaceType]string{}
	v, err := c.execView()
	if err != nil {
		return nil, err
	}
	for _, ns := range v.Linux.Namespaces {
		name := nsProcName[ns.Type]
		path := fmt.Sprintf("/proc/%d/ns/%s", c.state.InitPid, name)
		if ns.Type == rspec.TimeNamespace {
			// The init unshares its time namespace and enters it only at its execve, which
			// may still be under way when start has returned: time_for_children is the
			// container's from the unshare on (and equals time once the init has exec'd).
			path += "_for_children"
		}
		if sameNamespace(path, "/proc/self/ns/"+name) {
			continue
		}
		joins[ns.Type] = path
	}
	p := &initProcess{mode: initproto.ModeExec, stdio: o.Stdio, preserveFds: o.PreserveFds, console: console, joinPaths: joins, beforeRun: o.BeforeRun, affinity: o.Process.ExecCPUAffinity, debug: o.Debug, oomScoreAdj: o.Process.OOMScoreAdj, monitor: c.Monitor}
	// An exec'd process gets the container's personality and memory policy too: the Go init
	// applies them.
	attrs := len(v.Linux.Personality) > 0 || len(v.Linux.MemoryPolicy) > 0 || rawHasNotify(v.Linux.Seccomp)
	if console == nil && !o.SlowPath && !attrs {
		var bpf []byte
		hasSeccomp := len(v.Linux.Seccomp) > 0 && string(v.Linux.Seccomp) != "null"
		if hasSeccomp {
			bpf, _ = os.ReadFile(filepath.Join(c.dir, seccompFile))
		}
		if !hasSeccomp || len(bpf) > 0 {
			home := ""
			if !hasHome(o.Process.Env) {
				home = containerHome(c.state.InitPid, o.Process.User.UID)
			}
			flags := rawSeccompFlags(v.Linux.Seccomp)
			if hasSeccomp {
				debugf(o.Debug, "seccomp filter flags: %d", flags)
			}
			if r := fastExecRequest(o.Process, bpf, flags, o.PreserveFds, home); r != nil {
				p.fastExec = r.Encode()
			}
		}
	}
	// The exec'd process needs only these parts of the spec: the init gets just them.
	linux := map[string]json.RawMessage{}
	for key, val := range map[string]json.RawMessage{"seccomp": v.Linux.Seccomp, "personality": v.Linux.Personality, "memoryPolicy": v.Linux.MemoryPolicy} {
		if len(val) > 0 && string(val) != "null" {
			linux[key] = val
		}
	}
	spec, err := json.Marshal(map[string]any{"linux": linux})
	if err != nil {
		return nil, fmt.Errorf("container %s: exec: %w", c.state.ID, err)
	}
	cfg := &initConfig{InitConfig: initproto.InitConfig{Mode: initproto.ModeExec, ID: c.state.ID, RawSpec: spec, Process: o.Process, NoNewKeyring: true}}
	cg := c.Cgroup()
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

func sameNamespace(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
