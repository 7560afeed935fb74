package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/libcontainer/hooks"
	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/specs"
)

// creation is one Create on its way: what each stage leaves for the next.
type creation struct {
	root        string
	o           CreateOpts
	undo        *undoStack
	c           *Container
	closers     []*os.File            // closed when Create returns, whatever happened
	fifo        *os.File              // the exec fifo (O_PATH), for the init
	cg          *cgroups.Manager      // the container's cgroup, without its device rules yet
	deviceRules *rspec.LinuxResources // applied once the rootfs is built
	p           *initProcess          // the child to start, with its plan (setup)
	cfg         *initproto.InitConfig // what the Go init gets (and the fast path builds from)
	bpf         []byte                // the profile's compiled seccomp program, if cached
	seccompKey  []byte                // its cache key
	cmd         *Process              // the init, once spawned
	sync        *initproto.Conn       // the conversation with it
}

// Create sets up a container whose init waits, inside its namespaces, for Start. Its stages:
// reserve the id and state (newContainer), make the exec fifo and the cgroup, plan the init
// (fast or Go, decided once), spawn it, lend it its network devices, build the rootfs (from
// husk, on the fast path), await the init's ready, and finish. A failed stage undoes the
// stages before it.
func Create(root string, o CreateOpts) (c *Container, err error) {
	if err := checkCreate(o); err != nil {
		return nil, err
	}
	var undo undoStack
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	if c, err = newContainer(root, o, &undo); err != nil {
		return nil, err
	}
	cr := &creation{root: root, o: o, undo: &undo, c: c}
	defer cr.close()
	for _, stage := range []func() error{cr.makeFifo, cr.makeCgroup, cr.plan, cr.spawn, cr.lendNetDevices, cr.build, cr.awaitReady, cr.finish} {
		if err := stage(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkCreate refuses what no stage could do.
func checkCreate(o CreateOpts) error {
	if err := ValidateID(o.ID); err != nil {
		return err
	}
	if o.Spec.Process.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return errors.New("process.terminal is true: --console-socket is required")
	}
	if !o.Spec.Process.Terminal && (o.ConsoleSocket != "" || o.ConsoleConn != nil) {
		return errors.New("--console-socket given but process.terminal is false")
	}
	return nil
}

func (cr *creation) close() {
	for _, f := range cr.closers {
		f.Close()
	}
	if cr.sync != nil {
		cr.sync.Close()
	}
}

// wrap gives an error the container's id, once.
func (cr *creation) wrap(err error) error {
	return fmt.Errorf("container %s: %w", cr.o.ID, err)
}

// makeFifo makes the exec fifo the init blocks on until Start opens it.
func (cr *creation) makeFifo() error {
	fifo := filepath.Join(cr.c.dir, fifoName)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return fmt.Errorf("create exec fifo: %w", err)
	}
	// The init opens the fifo after switching to the container's user; the 0700 state dir
	// keeps everyone else away from it.
	if err := os.Chmod(fifo, 0o622); err != nil {
		return fmt.Errorf("create exec fifo: %w", err)
	}
	f, err := os.OpenFile(fifo, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	cr.fifo = f
	cr.closers = append(cr.closers, f)
	return nil
}

// makeCgroup makes the container's cgroup with its resources but the device rules, which are
// applied once the rootfs is built, as runc does: the spec may deny a node it lists in
// linux.devices (mknod included), and the Go init makes the nodes from inside the cgroup.
// Nothing of the user's runs before they apply.
func (cr *creation) makeCgroup() error {
	res := cgroupResources(cr.o.Spec)
	cr.deviceRules = &rspec.LinuxResources{Devices: res.Devices}
	res.Devices = nil
	cg, err := cr.c.newCgroup(cr.o, res, cr.undo)
	cr.cg = cg
	return err
}

// plan decides, once, who sets the init up (the constructor from requests, or the Go init
// from its config), and prepares what the init gets beside its fds.
func (cr *creation) plan() error {
	o, c := cr.o, cr.c
	console, err := consoleConn(o.ConsoleSocket, o.ConsoleConn)
	if err != nil {
		return err
	}
	if console != nil {
		cr.closers = append(cr.closers, console)
	}
	cr.p = &initProcess{
		setup: goInitSetup{}, stdio: o.Stdio, preserveFds: o.PreserveFds, console: console,
		fifo: cr.fifo, namespaces: o.Spec.Linux.Namespaces,
		uidMaps: o.Spec.Linux.UIDMappings, gidMaps: o.Spec.Linux.GIDMappings, debug: o.Debug,
		oomScoreAdj: o.Spec.Process.OOMScoreAdj, monitor: o.Monitor, initBinary: o.InitBinary,
	}
	if sc := o.Spec.Linux.Seccomp; sc != nil {
		flags, _ := specs.SeccompFlags(sc.Flags, specs.HasNotify(sc)) // validated at load
		debugf(o.Debug, "seccomp filter flags: %d", flags)
		// The Go init's program is cached even with --no-fast-path, for the next create.
		cr.seccompKey = seccompCacheKey(sc)
		if !o.SlowPath {
			cr.bpf = cachedSeccomp(cr.root, cr.seccompKey)
		}
	}
	if nsReq, procReq := fastCreate(o, cr.bpf); nsReq != nil {
		cr.p.setup = fastCreateSetup{nsReq: nsReq, proc: procReq}
	}
	cr.cfg = &initproto.InitConfig{
		Mode: initproto.ModeCreate, ID: o.ID, RawSpec: c.state.Config, ExtraEnv: o.ExtraEnv, Rootfs: c.state.Rootfs,
		Bundle: o.Bundle, NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring,
		HasRuntimeHooks: o.Spec.Hooks != nil && (len(o.Spec.Hooks.Prestart) > 0 || len(o.Spec.Hooks.CreateRuntime) > 0), //nolint:staticcheck // prestart is deprecated but still honoured
	}
	cr.p.mountSources, cr.cfg.LateMountSources, err = detachedMounts(o.Monitor, o.Spec, o.Bundle, c.state.Rootfs)
	for _, f := range cr.p.mountSources {
		cr.closers = append(cr.closers, f)
	}
	if err != nil {
		return cr.wrap(err)
	}
	shared, err := sharesMountNamespace(o.Spec)
	if err != nil || !shared {
		return err
	}
	id, err := bindSharedRootfs(c.state.Rootfs)
	if err != nil {
		return cr.wrap(err)
	}
	cr.undo.push(func() { _ = unbindSharedRootfs(c.state.Rootfs, id) })
	c.state.SharedRootfsMount, cr.cfg.SharedMounts = id, true
	return writeState(c.dir, c.state)
}

// spawn starts the init, in its cgroup, and records it in the state.
func (cr *creation) spawn() error {
	cmd, sync, err := cr.p.start(cr.cfg, cr.cg)
	if err != nil {
		return err
	}
	cr.cmd, cr.sync = cmd, sync
	cr.undo.push(cmd.kill)
	cr.c.state.InitPid = cmd.Pid
	startTime, _, err := procStartTime(cmd.Pid)
	if err != nil {
		return cr.wrap(errors.New("init exited during create"))
	}
	cr.c.state.InitStartTime = startTime
	return writeState(cr.c.dir, cr.c.state)
}

// lendNetDevices moves linux.netDevices into the container's network namespace before
// anything runs there; they go back to the host if the create fails. The state names them
// (with their indexes there) before the init can be killed, in a file of their own too, for a
// forced delete of a state that was lost.
func (cr *creation) lendNetDevices() error {
	o, c := cr.o, cr.c
	devs := plannedNetDevices(o.Spec.Linux.NetDevices)
	if len(devs) == 0 {
		return nil
	}
	joined := ""
	for _, ns := range o.Spec.Linux.Namespaces {
		if ns.Type == rspec.NetworkNamespace {
			joined = ns.Path
		}
	}
	if err := moveNetDevices(cr.cmd.Pid, joined, devs); err != nil {
		return cr.wrap(err)
	}
	pid := cr.cmd.Pid
	cr.undo.push(func() { _ = returnNetDevices(pid, devs) })
	c.state.NetDevices = devs
	if b, err := json.Marshal(devs); err == nil {
		if err := os.WriteFile(filepath.Join(c.dir, netDevicesFile), b, 0o600); err != nil {
			return cr.wrap(err)
		}
	}
	return writeState(c.dir, c.state)
}

// build builds the rootfs from husk, on the fast path (createfast.go); the Go init builds its
// own.
func (cr *creation) build() error {
	fast, ok := cr.p.setup.(fastCreateSetup)
	if !ok {
		return nil
	}
	if cr.bpf != nil {
		// Kept for the exec fast path, as the Go init's program is (awaitReady).
		if err := os.WriteFile(filepath.Join(cr.c.dir, seccompFile), cr.bpf, 0o600); err != nil {
			return cr.wrap(fmt.Errorf("save seccomp filter: %w", err))
		}
	}
	if err := buildFromParent(cr.cmd.Pid, cr.sync, cr.cfg, cr.o.Spec, fast.proc); err != nil {
		return initError(cr.o.ID, err)
	}
	return nil
}

// awaitReady serves the init's requests (hooks, its seccomp program and listener, mount
// sources) until it is ready. What the parent does for the init fails as the parent's own
// error, not the init's.
func (cr *creation) awaitReady() error {
	o, c := cr.o, cr.c
	err := cr.sync.WaitReady(initproto.Handlers{
		Hooks: func() error {
			hs := c.hookState(Creating)
			if err := hooks.Run(o.Monitor, o.Spec.Hooks.Prestart, "prestart", hs); err != nil { //nolint:staticcheck
				return err
			}
			return hooks.Run(o.Monitor, o.Spec.Hooks.CreateRuntime, "createRuntime", hs)
		},
		Seccomp: func(bpf []byte) error {
			// Kept for the exec fast path, which has no libseccomp to compile it again.
			if err := os.WriteFile(filepath.Join(c.dir, seccompFile), bpf, 0o600); err != nil {
				return fmt.Errorf("save seccomp filter: %w", err)
			}
			cacheSeccomp(cr.root, cr.seccompKey, bpf)
			return nil
		},
		SeccompFd: func(fd int) error {
			return sendSeccompListener(cr.cmd.Pid, fd, o.Spec.Linux.Seccomp, *c.hookState(Creating))
		},
		MountSource: func(index int) error {
			return sendLateMountSource(o.Monitor, cr.sync, cr.cmd.Pid, o.Spec, o.Bundle, c.state.Rootfs, cr.cfg.LateMountSources, index)
		},
	})
	var own *initproto.HandlerError
	if errors.As(err, &own) {
		return cr.wrap(own.Err)
	}
	if err != nil {
		return initError(o.ID, err)
	}
	return nil
}

// finish applies the device rules, checks the init is still there, and hands it over.
func (cr *creation) finish() error {
	o, c := cr.o, cr.c
	if c.state.Cgroup != nil {
		if err := cr.cg.Update(cr.deviceRules); err != nil {
			return cr.wrap(err)
		}
	}
	if !c.state.initAlive() {
		return cr.wrap(errors.New("init exited during create"))
	}
	debugf(o.Debug, "init: closing the pipe to signal completion (container %s created, init pid %d)", o.ID, cr.cmd.Pid)
	if err := writePidFile(o.PidFile, cr.cmd.Pid); err != nil {
		return err
	}
	cr.cmd.handOver()
	c.init = cr.cmd
	return nil
}
