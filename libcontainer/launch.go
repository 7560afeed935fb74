package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/specs"
)

// setup is the plan for a child, decided once per create or exec: who sets it up (the Go init
// from its Config, or husk-init's constructor from a request) and what it is sent.
type setup interface {
	path() initproto.Path
	send(pipe *initproto.Conn, cfg *initproto.InitConfig) error
}

// goInitSetup: the Go init, from the InitConfig.
type goInitSetup struct{}

func (goInitSetup) path() initproto.Path { return initproto.PathGoInit }
func (goInitSetup) send(pipe *initproto.Conn, cfg *initproto.InitConfig) error {
	return pipe.SendConfig(cfg)
}

// fastExecSetup: the constructor sets up and execs an exec (execfast.go).
type fastExecSetup struct{ req []byte }

func (fastExecSetup) path() initproto.Path { return initproto.PathExecFast }
func (s fastExecSetup) send(pipe *initproto.Conn, _ *initproto.InitConfig) error {
	return pipe.SendRequest(s.req)
}

// fastCreateSetup: the constructor is the create's whole init and husk builds the rootfs
// (createfast.go). proc is sent once the rootfs is built (buildFromParent).
type fastCreateSetup struct {
	nsReq []byte
	proc  *initproto.ExecRequest
}

func (fastCreateSetup) path() initproto.Path { return initproto.PathCreateFast }
func (s fastCreateSetup) send(pipe *initproto.Conn, _ *initproto.InitConfig) error {
	return pipe.SendRequest(s.nsReq)
}

// launch is one start of husk-init, in stages: the files it gets (files), the namespaces it
// enters (namespaces), the fork (fork), its placement once forked (place), and what it is
// sent (initProcess.start).
type launch struct {
	p        *initProcess
	cfg      *initproto.InitConfig
	files    []uintptr  // the child's fds, by number
	parent   *os.File   // our end of the sync socket
	child    *os.File   // its end, closed once it has its own
	held     []*os.File // closed when the launch is over
	parentNs []*os.File // joined by the forking thread (the child is born in them)
	boot     initproto.Boot
	flags    uintptr // CLONE_NEW* of the fork
	proc     *Process
}

func (l *launch) add(f *os.File) int {
	l.files = append(l.files, f.Fd())
	return len(l.files) - 1
}

func (l *launch) close() {
	for _, f := range append(l.held, l.parentNs...) {
		f.Close()
	}
}

// start launches `husk init` from the sealed binary, places it in cg before it does anything,
// and sends it what its setup needs. The returned pipe carries the rest of the conversation.
func (p *initProcess) start(cfg *initproto.InitConfig, cg *cgroups.Manager) (*Process, *initproto.Conn, error) {
	// What husk inherited without close-on-exec (its caller's fds) must not reach the init,
	// even for the moment before the init's own exec (CVE-2024-21626; runc does the same): the
	// fds handed over on purpose are dup'd into place by the child, which clears the flag.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("mark inherited fds close-on-exec: %w", err)
	}
	bin, done, err := openInit(p.initBinary)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	p.logSeal(bin)
	l := &launch{p: p, cfg: cfg}
	defer l.close()
	if err := l.openFiles(); err != nil {
		return nil, nil, err
	}
	err = l.namespaces()
	if err == nil {
		err = l.fork(bin)
	}
	if err != nil {
		l.parent.Close()
		return nil, nil, err
	}
	pipe := initproto.NewConn(l.parent)
	fail := func(err error) (*Process, *initproto.Conn, error) {
		l.proc.kill()
		l.parent.Close()
		return nil, nil, err
	}
	if err := l.place(pipe, cg); err != nil {
		if l.proc.Pid == 0 {
			l.parent.Close()
			return nil, nil, err
		}
		return fail(err)
	}
	// The config, or for the fast paths the constructor's request, once the process is in its
	// cgroup.
	if p.beforeRun != nil {
		p.beforeRun()
	}
	who := "husk-init's Go init"
	if p.setup.path() != initproto.PathGoInit {
		who = "husk-init's constructor"
	}
	debugf(p.debug, "child process in init(): pid %d is in its cgroup; %s sets it up", l.proc.Pid, who)
	if err := p.setup.send(pipe, cfg); err != nil {
		// The constructor may have failed to join a namespace and said why.
		if _, rerr := pipe.Recv(); rerr != nil && !errors.Is(rerr, os.ErrClosed) {
			return fail(rerr)
		}
		return fail(fmt.Errorf("send config to init: %w", err))
	}
	return l.proc, pipe, nil
}

// logSeal logs which sealed copy of husk-init runs, as runc logs the same step ("runc
// exeseal: ..."); its tests read these lines.
func (p *initProcess) logSeal(bin *os.File) {
	if p.debug == nil {
		return
	}
	var fs unix.Statfs_t
	if unix.Fstatfs(int(bin.Fd()), &fs) == nil && fs.Type == unix.OVERLAYFS_SUPER_MAGIC {
		debugf(p.debug, "husk exeseal: using husk-init clone")
		debugf(p.debug, "husk exeseal: using overlayfs for sealed husk-init")
	} else {
		debugf(p.debug, "husk exeseal: using husk-init clone (sealed memfd copy)")
	}
}

// openFiles makes the sync socket and numbers the child's fds: stdio, preserved fds, its end
// of the socket, the exec fifo, the console socket and detached mount sources.
func (l *launch) openFiles() error {
	p, cfg := l.p, l.cfg
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	l.parent = os.NewFile(uintptr(fds[0]), "sync-parent")
	l.child = os.NewFile(uintptr(fds[1]), "sync-child")
	l.held = append(l.held, l.child)
	var null *os.File
	if p.stdio.Stdin == nil || p.stdio.Stdout == nil || p.stdio.Stderr == nil {
		if null, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
			l.parent.Close()
			return err
		}
		l.held = append(l.held, null)
	}
	l.files = []uintptr{fdOr(p.stdio.Stdin, null), fdOr(p.stdio.Stdout, null), fdOr(p.stdio.Stderr, null)}
	for i := 0; i < p.preserveFds; i++ {
		l.files = append(l.files, uintptr(3+i))
	}
	l.boot.SyncFd = l.add(l.child)
	if p.fifo != nil {
		cfg.FifoFd = l.add(p.fifo)
	}
	if p.console != nil {
		cfg.ConsoleFd = l.add(p.console)
	}
	for src, f := range p.mountSources {
		if cfg.MountFds == nil {
			cfg.MountFds = map[string]int{}
		}
		cfg.MountFds[src] = l.add(f)
	}
	cfg.PreserveFds = p.preserveFds
	return nil
}

// namespaces decides how the child enters each namespace: made at clone (flags), joined by
// this thread before the fork (parentNs), by the constructor (boot.NsFds), by the constructor
// before it forks (boot.NsFdsFork), or made by the constructor after joining a user namespace
// (boot.Unshare).
func (l *launch) namespaces() error {
	p := l.p
	joins := map[rspec.LinuxNamespaceType]string{}
	for k, v := range p.joinPaths {
		joins[k] = v
	}
	for _, ns := range p.namespaces {
		if ns.Path != "" {
			joins[ns.Type] = ns.Path
		} else {
			l.flags |= cloneFlags[ns.Type] // cgroup and time are unshared by the init itself
		}
	}
	if l.flags&unix.CLONE_NEWUSER != 0 && len(joins) > 0 && l.cfg.Mode == initproto.ModeCreate {
		for t := range joins {
			if t != rspec.UserNamespace {
				return fmt.Errorf("joining the %s namespace by path together with a new user namespace is not supported yet", t)
			}
		}
	}
	// Pid and time namespaces apply to children. Without a user or time namespace to join, this
	// process joins them on a throw-away thread and the child is born inside; with one, only a
	// single-threaded process may join it, so nsenter joins everything and forks.
	_, joinUser := joins[rspec.UserNamespace]
	// A time namespace is joined only by a single-threaded process (setns: EUSERS otherwise):
	// nsenter joins it, with the pid namespace, and forks.
	_, joinTime := joins[rspec.TimeNamespace]
	// Joining a user namespace (a pod's), the new namespaces must be made inside it, after the
	// join: nsenter unshares them (made at clone, they would belong to husk's user namespace).
	if joinUser && l.flags != 0 {
		l.boot.Unshare, l.flags = l.flags, 0
	}
	for _, t := range append(append([]rspec.LinuxNamespaceType(nil), nsOrder...), rspec.PIDNamespace, rspec.TimeNamespace) {
		path, ok := joins[t]
		if !ok {
			continue
		}
		f, err := openNamespace(t, path)
		if err != nil {
			return err
		}
		childrenOnly := t == rspec.PIDNamespace || t == rspec.TimeNamespace
		switch {
		case childrenOnly && !joinUser && !joinTime:
			l.parentNs = append(l.parentNs, f)
		case childrenOnly:
			l.held = append(l.held, f)
			l.boot.NsFdsFork = append(l.boot.NsFdsFork, l.add(f))
		default:
			l.held = append(l.held, f)
			l.boot.NsFds = append(l.boot.NsFds, l.add(f))
		}
	}
	return nil
}

// forks reports whether the constructor forks into a pid namespace: the child is then its
// grandchild, whose pid it reports.
func (l *launch) forks() bool {
	return len(l.boot.NsFdsFork) > 0 || l.boot.Unshare&unix.CLONE_NEWPID != 0
}

// fork starts husk-init from bin, in the namespaces made at clone and those this thread joins,
// on the initial CPUs of process.execCPUAffinity.
func (l *launch) fork(bin *os.File) error {
	p := l.p
	l.boot.Path = p.setup.path()
	env := l.boot.Encode()
	if l.forks() {
		// The process nsenter forks is our grandchild; as a subreaper we can still wait for it.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set child subreaper: %w", err)
		}
	}
	sys := &syscall.SysProcAttr{Cloneflags: l.flags}
	if l.flags&unix.CLONE_NEWUSER != 0 {
		sys.UidMappings = idMaps(p.uidMaps)
		sys.GidMappings = idMaps(p.gidMaps)
		// An unprivileged parent may only write gid_map after denying setgroups.
		sys.GidMappingsEnableSetgroups = os.Geteuid() == 0
		// Become the namespace's root before exec, or exec drops every capability: our host
		// uid is not mapped inside.
		sys.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	exe, err := execFdAbove(bin, l.files)
	if err != nil {
		return fmt.Errorf("start init: %w", err)
	}
	defer exe.Close()
	l.proc = &Process{mon: p.monitor}
	fork := func() error {
		pid, err := children.Or(p.monitor).ForkExec("/proc/self/fd/"+strconv.Itoa(int(exe.Fd())), []string{"husk", "init"},
			&syscall.ProcAttr{Env: env, Files: l.files, Sys: sys})
		l.proc.Pid = pid
		return err
	}
	if a := p.affinity; a != nil && a.Initial != "" {
		// "initial": the CPUs the process starts on, before it joins the cgroup. The forking
		// thread takes them (the child inherits them) and is thrown away afterwards.
		set, err := specs.CPUList("process.execCPUAffinity.initial", a.Initial)
		if err != nil {
			return err
		}
		forkOnCPUs := fork
		fork = func() error {
			if err := unix.SchedSetaffinity(0, set); err != nil {
				return fmt.Errorf("process.execCPUAffinity.initial: %w", err)
			}
			return forkOnCPUs()
		}
		if len(l.parentNs) == 0 {
			forkOnThread := fork
			fork = func() error { return onThrowawayThread(forkOnThread) }
		}
	}
	if err := startLocked(l.parentNs, fork); err != nil {
		if l.proc.Pid > 0 {
			l.proc.kill()
		}
		return fmt.Errorf("start init: %w", err)
	}
	debugf(p.debug, "nsexec container setup: husk-init started as pid %d (%s), joining %d namespaces",
		l.proc.Pid, l.cfg.Mode, len(l.boot.NsFds)+len(l.boot.NsFdsFork)+len(l.parentNs))
	return nil
}

// place learns the child's pid if the constructor forked, and places it before it runs
// anything of its own: its cgroup, its final CPUs, its OOM score. A failure to learn the pid
// leaves l.proc.Pid 0: nothing is left to kill.
func (l *launch) place(pipe *initproto.Conn, cg *cgroups.Manager) error {
	p, proc := l.p, l.proc
	if l.forks() {
		l.child.Close()
		pid, err := pipe.WaitPid()
		intermediate := &Process{Pid: proc.Pid, mon: p.monitor}
		intermediate.Wait()
		if err != nil {
			proc.Pid = 0
			return err
		}
		proc.Pid = pid
	}
	if p.debug != nil {
		logAffinity(p.debug, proc.Pid)
	}
	if cg != nil {
		if err := cg.Apply(proc.Pid); err != nil {
			return err
		}
	}
	if a := p.affinity; a == nil || a.Final == "" {
		resetCPUAffinity(proc.Pid)
	} else {
		// "final": the CPUs once in the cgroup, set before the process runs anything of its own.
		set, err := specs.CPUList("process.execCPUAffinity.final", a.Final)
		if err != nil {
			return err
		}
		if err := unix.SchedSetaffinity(proc.Pid, set); err != nil {
			return fmt.Errorf("process.execCPUAffinity.final: %w", err)
		}
	}
	if p.oomScoreAdj != nil {
		// By the parent, as runc's nsexec writes it before joining any user namespace: in a
		// user namespace (a pod's, joined by path) the init may not write its own
		// (/proc/self/oom_score_adj is root's there), and the host's /proc is the one to trust.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", proc.Pid), []byte(strconv.Itoa(*p.oomScoreAdj)), 0); err != nil {
			return fmt.Errorf("process.oomScoreAdj %d: %w", *p.oomScoreAdj, err)
		}
	}
	l.child.Close()
	return nil
}
