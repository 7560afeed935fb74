// Package libcontainer is husk's container engine: the create/start/exec/kill/delete state
// machine on the parent side, and the init process that prepares the container from inside.
package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/libcontainer/cgroups/systemd"
	"github.com/husk-runtime/husk/libcontainer/exeseal"
	"github.com/husk-runtime/husk/libcontainer/hooks"
	"github.com/husk-runtime/husk/specs"
)

var (
	ErrCorruptState = errors.New("corrupt state")
	ErrExists       = errors.New("container already exists")
	ErrNotExist     = errors.New("container does not exist")
	ErrNotRunning   = errors.New("container not running") // runc's words: containerd's runc shim matches them on kill
)

// Container is one container under a state root. Methods that change it hold its lock.
type Container struct {
	root  string
	dir   string
	state *State
	lock  *os.File
	init  *Process  // set in the process that created the container (for `run`)
	exec  *execView // the exec part of state.Config, once needed

	// Warn receives what goes wrong without failing the operation (a failing poststart or
	// poststop hook, as the spec asks); nil drops it.
	Warn func(msg string)
	// Monitor starts the children an operation forks and waits for them (nil: directly):
	// the shim passes its reaper's.
	Monitor children.Monitor
}

// Stdio is the standard streams given to the container's process.
type Stdio struct {
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
}

// CreateOpts carries what `husk create` and `husk run` are given.
type CreateOpts struct {
	ID            string
	Bundle        string // absolute
	Spec          *rspec.Spec
	RawSpec       []byte   // Spec as JSON (config.json's bytes); encoded from Spec when nil
	ExtraEnv      []string // added to the process environment (LISTEN_FDS)
	ConsoleSocket string   // path of a unix socket that receives the pty master
	ConsoleConn   *os.File // or an already connected socket (foreground run)
	PidFile       string
	NoPivot       bool
	SlowPath      bool // create with the Go init even when the fast path could
	SystemdCgroup bool // the cgroup is a systemd unit (--systemd-cgroup)
	NoNewKeyring  bool
	PreserveFds   int
	Stdio         Stdio
	Debug         func(msg string) // --debug: the steps of the create, as runc logs them
	Warn          func(msg string) // what is wrong but does not stop the create
	Monitor       children.Monitor // starts and waits for the create's children (nil: directly)
	InitBinary    *InitBinary      // a sealed husk-init the caller keeps for many creates (nil: one per create)
}

// resolveCgroup finds where the container's cgroup goes: a cgroupfs path, or under
// --systemd-cgroup the systemd unit that will own it and the cgroup systemd gives that unit.
func resolveCgroup(o CreateOpts) (cgroups.Paths, *systemd.Unit, error) {
	if !o.SystemdCgroup {
		paths, err := cgroups.Resolve(o.Spec.Linux.CgroupsPath, o.ID)
		return paths, nil, err
	}
	if err := systemd.Booted(); err != nil {
		return nil, nil, err
	}
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("--systemd-cgroup: a non-root user's systemd instance is not supported; run as root or without --systemd-cgroup")
	}
	unit, path, err := systemd.Resolve(o.Spec.Linux.CgroupsPath, o.ID, o.Spec.Annotations)
	if err != nil {
		return nil, nil, err
	}
	unit.V1 = cgroups.HostMode() != cgroups.Unified
	// systemd's path is absolute: every hierarchy gets it as it is.
	paths, err := cgroups.Resolve(path, o.ID)
	return paths, unit, err
}

// newContainer makes the state directory of a new container and locks it; undo removes it.
func newContainer(root string, o CreateOpts, undo *undoStack) (*Container, error) {
	if err := ensureRoot(root); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, o.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %s: %w", o.ID, ErrExists)
		}
		return nil, fmt.Errorf("container %s: state dir: %w", o.ID, err)
	}
	undo.push(func() { os.RemoveAll(dir) })
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	undo.push(func() { lock.Close() })

	c := &Container{root: root, dir: dir, lock: lock, state: &State{
		ID: o.ID, Bundle: o.Bundle, Rootfs: rootfsOf(o.Spec, o.Bundle), Created: time.Now().UTC(),
		Owner: "", Config: o.RawSpec, Annotations: o.Spec.Annotations, Hooks: o.Spec.Hooks,
	}, Monitor: o.Monitor}
	if c.state.Config == nil {
		var err error
		if c.state.Config, err = json.Marshal(o.Spec); err != nil {
			return nil, fmt.Errorf("container %s: encode spec: %w", o.ID, err)
		}
	}
	return c, nil
}

// newCgroup resolves, records and makes the container's cgroup with res (for the systemd
// driver: a manager whose first Apply starts the unit); undo destroys it.
func (c *Container) newCgroup(o CreateOpts, res *rspec.LinuxResources, undo *undoStack) (*cgroups.Manager, error) {
	paths, unit, err := resolveCgroup(o)
	if err != nil {
		return nil, err
	}
	// A cgroup that exists already: runc warns when it holds processes and refuses a frozen one
	// (the init would block in it, and `run -d` with it, until someone thaws it).
	if existing := cgroups.Load(paths); existing.Frozen() {
		return nil, fmt.Errorf("container %s: container's cgroup unexpectedly frozen", o.ID)
	} else if pids, _ := existing.Pids(); len(pids) > 0 {
		// runc 1.5 refuses it too (1.1.5 only warned): a shared cgroup mixes limits, freezes
		// and kills of unrelated processes.
		return nil, fmt.Errorf("container %s: container's cgroup is not empty: %d process(es) found", o.ID, len(pids))
	}
	// From here on a killed create must stay cleanable by `delete --force`: the state names
	// the cgroup before it exists, and the init's pid as soon as it exists.
	c.state.Cgroup, c.state.Systemd = paths, unit
	if unit != nil {
		unit.Monitor = o.Monitor
	}
	if b, err := json.Marshal(paths); err == nil {
		if err := os.WriteFile(filepath.Join(c.dir, cgroupFile), b, 0o600); err != nil {
			return nil, fmt.Errorf("container %s: %w", o.ID, err)
		}
	}
	if err := writeState(c.dir, c.state); err != nil {
		return nil, err
	}
	var cg *cgroups.Manager
	if unit != nil {
		// systemd makes the cgroup when the init exists: Apply starts the unit with it.
		cg, err = cgroups.CreateUnit(paths, res, unit)
	} else {
		cg, err = cgroups.Create(paths, res)
	}
	if err != nil && unit == nil && os.Geteuid() != 0 && cgroups.IsPermission(err) {
		// Rootless without a delegated cgroup: run without one, as runc does.
		c.state.Cgroup = nil
		if err := writeState(c.dir, c.state); err != nil {
			return nil, err
		}
		cg, err = cgroups.Load(nil), nil
	}
	if err != nil {
		return nil, err
	}
	undo.push(func() { cg.Destroy() })
	return cg, nil
}

// ValidateID rejects ids that would be unsafe as a directory name.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("container id must not be empty")
	}
	if id == "." || id == ".." || len(id) > 1024 {
		return fmt.Errorf("invalid container id %q", id)
	}
	// The characters runc allows ([\w+-.]): safe as a directory name, no regexp at init.
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '+' || r == '-' || r == '.'
		if !ok {
			return fmt.Errorf("invalid container id %q", id)
		}
	}
	return nil
}

// ensureRoot makes the state root, private to root.
func ensureRoot(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("state root %s: %w", root, err)
	}
	return nil
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// Load opens an existing container and takes its lock; call Close when done.
func Load(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	lock, err := lockDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	st, err := readState(dir)
	if err != nil {
		lock.Close()
		if errors.Is(err, os.ErrNotExist) {
			// A create still in progress (or killed half-way) has a directory but no state yet.
			return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	return &Container{root: root, dir: dir, state: st, lock: lock}, nil
}

// List returns the ids of all containers under root.
func List(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && ValidateID(e.Name()) == nil {
			if _, err := os.Stat(filepath.Join(root, e.Name(), stateFile)); err == nil {
				ids = append(ids, e.Name())
			}
		}
	}
	return ids, nil
}

// Close releases the container's lock.
func (c *Container) Close() {
	if c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
}

func (c *Container) warn(msg string) {
	if c.Warn != nil {
		c.Warn(fmt.Sprintf("container %s: %s", c.state.ID, msg))
	}
}

// ID returns the container id.
func (c *Container) ID() string { return c.state.ID }

// execView is the part of the spec exec needs. Decoding only it skips the reflection over
// every other spec type (mounts, resources, devices...): about a millisecond per process here.
type execView struct {
	Process *rspec.Process `json:"process"`
	Linux   *struct {
		Namespaces   []rspec.LinuxNamespace `json:"namespaces"`
		Seccomp      json.RawMessage        `json:"seccomp,omitempty"`
		Personality  json.RawMessage        `json:"personality,omitempty"`
		MemoryPolicy json.RawMessage        `json:"memoryPolicy,omitempty"`
	} `json:"linux"`
}

func (c *Container) execView() (*execView, error) {
	if c.exec == nil {
		var v execView
		if err := json.Unmarshal(c.state.Config, &v); err != nil {
			return nil, fmt.Errorf("container %s: corrupt state: %w", c.state.ID, err)
		}
		if v.Process == nil || v.Linux == nil {
			return nil, fmt.Errorf("container %s: corrupt state: the spec has no process or linux section", c.state.ID)
		}
		c.exec = &v
	}
	return c.exec, nil
}

// Process returns a copy of the container's configured process: exec's defaults.
func (c *Container) Process() (*rspec.Process, error) {
	v, err := c.execView()
	if err != nil {
		return nil, err
	}
	p := *v.Process
	return &p, nil
}

// Status derives the container's current status.
func (c *Container) Status() Status { return c.status() }

// Pid returns the init pid, or 0 once it has stopped.
func (c *Container) Pid() int {
	if c.state.initAlive() {
		return c.state.InitPid
	}
	return 0
}

// Cgroup returns the container's cgroup manager.
func (c *Container) Cgroup() *cgroups.Manager {
	m := cgroups.Load(c.state.Cgroup)
	if c.state.Systemd != nil {
		c.state.Systemd.Monitor = c.Monitor
		m.WithUnit(c.state.Systemd)
	}
	return m
}

// OCIState returns the state as `husk state` prints it.
func (c *Container) OCIState() OCIState {
	st := c.status()
	pid := c.state.InitPid
	if st == Stopped {
		pid = 0
	}
	return OCIState{
		OCIVersion: rspec.Version, ID: c.state.ID, Pid: pid, Status: st,
		Bundle: c.state.Bundle, Rootfs: c.state.Rootfs, Created: c.state.Created,
		Annotations: c.state.Annotations, Owner: c.state.Owner,
	}
}

func (c *Container) hookState(status Status) *rspec.State {
	return &rspec.State{
		Version: rspec.Version, ID: c.state.ID, Status: rspec.ContainerState(status),
		Pid: c.state.InitPid, Bundle: c.state.Bundle, Annotations: c.state.Annotations,
	}
}

// undoStack runs registered cleanups in reverse when a multi-step operation fails.
type undoStack []func()

func (u *undoStack) push(f func()) { *u = append(*u, f) }
func (u *undoStack) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
	*u = nil
}

func rootfsOf(s *rspec.Spec, bundle string) string {
	p := s.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(bundle, p)
	}
	return filepath.Clean(p)
}

// initError turns what the init reported (or its silent death) into a user-facing error.
func initError(id string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("container %s: init process exited before it was ready", id)
	}
	// runc's chain for what its init reports; containerd shows it after "OCI runtime create
	// failed:", and runc 1.5's suite reads it.
	return fmt.Errorf("unable to start container process: error during container init: %w", err)
}

func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// Start releases a created container's init, which then execs the user process.
func (c *Container) Start() error {
	switch st := c.status(); st {
	case Created:
	case Stopped:
		return fmt.Errorf("container %s: cannot start a container that has stopped", c.state.ID)
	default:
		return fmt.Errorf("container %s: cannot start an already %s container", c.state.ID, st)
	}
	fifo := filepath.Join(c.dir, fifoName)
	f, err := os.OpenFile(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: open exec fifo: %w", c.state.ID, err)
	}
	defer f.Close()
	// Opening the read end released the init's blocking open; wait for its byte, watching
	// that it has not died meanwhile.
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 100)
		if err != nil && err != unix.EINTR {
			return fmt.Errorf("container %s: wait for init: %w", c.state.ID, err)
		}
		if n > 0 {
			break
		}
		if !c.state.initAlive() {
			return fmt.Errorf("container %s: init process died before start", c.state.ID)
		}
	}
	buf := make([]byte, 1)
	if n, _ := unix.Read(int(f.Fd()), buf); n != 1 {
		return fmt.Errorf("container %s: init process died before start", c.state.ID)
	}
	if err := os.Remove(fifo); err != nil {
		return fmt.Errorf("container %s: %w", c.state.ID, err)
	}
	if h := c.state.Hooks; h != nil && len(h.Poststart) > 0 {
		// As runc (1.0 to 1.5), not as the spec's "log a warning and go on" (crun's way): the
		// first failing poststart hook fails start and the container is killed, so a caller
		// never gets a running container whose start-up step failed; the later hooks do not run.
		if err := hooks.Run(c.Monitor, h.Poststart, "poststart", c.hookState(Running)); err != nil {
			if kerr := c.Signal(unix.SIGKILL); kerr != nil && !errors.Is(kerr, ErrNotRunning) {
				c.warn(fmt.Sprintf("poststart hook failed and the container could not be killed: %v", kerr))
			}
			return fmt.Errorf("container %s: %w", c.state.ID, err)
		}
	}
	return nil
}

// Wait waits for the init process of a container this process created (run) and returns its
// wait status.
func (c *Container) Wait() (syscall.WaitStatus, error) {
	if c.init == nil {
		return 0, errors.New("not the parent of this container's init")
	}
	return c.init.Wait()
}

// InitProcess returns the init when this process created it.
func (c *Container) InitProcess() *Process { return c.init }

// Signal sends sig to the init (a SIGKILL to every process, when the container has no pid
// namespace of its own).
func (c *Container) Signal(sig unix.Signal) error { return c.signal(sig, false) }

// SignalAll sends sig to every process of the container.
func (c *Container) SignalAll(sig unix.Signal) error { return c.signal(sig, true) }

func (c *Container) signal(sig unix.Signal, all bool) error {
	st := c.status()
	// Without a pid namespace of its own the init's death leaves the rest running: SIGKILL
	// goes to the whole cgroup, as runc 1.2+ does, also once the init is gone.
	killAll := sig == unix.SIGKILL && !all && !c.privatePidNamespace()
	if st == Stopped && !all && !killAll {
		return fmt.Errorf("container %s: %w", c.state.ID, ErrNotRunning)
	}
	var err error
	switch {
	case all:
		err = c.Cgroup().Signal(sig)
	case killAll:
		if pids, _ := c.Cgroup().Pids(); st == Stopped && len(pids) == 0 {
			return fmt.Errorf("container %s: %w", c.state.ID, ErrNotRunning)
		}
		// The init first: it may exit on its own meanwhile, which is no error here.
		_ = c.signalInit(sig)
		err = c.Cgroup().Signal(sig)
	default:
		err = c.signalInit(sig)
	}
	if err != nil {
		return fmt.Errorf("container %s: kill: %w", c.state.ID, err)
	}
	if sig == unix.SIGKILL {
		// A frozen process cannot die (the container paused, or a sub-cgroup it froze
		// itself): thaw them so the kill takes effect.
		c.Cgroup().ThawTree()
	}
	return nil
}

// Update applies new resources to the container's cgroup, as `update` does: not to a
// stopped container.
func (c *Container) Update(res *rspec.LinuxResources) error {
	if c.status() == Stopped {
		return fmt.Errorf("container %s: cannot update a stopped container", c.state.ID)
	}
	return c.Cgroup().Update(res)
}

// DecodeResources reads `update --resources` JSON (LinuxResources), for both frontends.
func DecodeResources(data []byte) (*rspec.LinuxResources, error) {
	if len(data) > specs.MaxProcessSize {
		return nil, fmt.Errorf("update --resources: larger than %d bytes", specs.MaxProcessSize)
	}
	var res rspec.LinuxResources
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("update --resources: invalid JSON: %w", err)
	}
	return &res, nil
}

// Pause freezes the container.
func (c *Container) Pause() error {
	switch st := c.status(); st {
	case Running, Created:
	default:
		return fmt.Errorf("container %s: cannot pause a %s container", c.state.ID, st)
	}
	if err := c.Cgroup().Freeze(); err != nil {
		return fmt.Errorf("container %s: pause: %w", c.state.ID, err)
	}
	return nil
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.status(); st != Paused {
		return fmt.Errorf("container %s: cannot resume a %s container", c.state.ID, st)
	}
	if err := c.Cgroup().Thaw(); err != nil {
		return fmt.Errorf("container %s: resume: %w", c.state.ID, err)
	}
	return nil
}

// Delete removes a stopped or created container and everything husk made for it.
func (c *Container) Delete() error {
	switch st := c.status(); st {
	case Stopped:
	case Created, Creating:
		c.killAndWait()
	default:
		return fmt.Errorf("container %s: cannot delete a %s container without --force", c.state.ID, st)
	}
	return c.destroy()
}

// ForceDelete is Delete of a container in any state: one that runs is killed first.
func (c *Container) ForceDelete() error {
	if c.status() != Stopped {
		c.killAndWait()
	}
	return c.destroy()
}

// ForceDeleteID is `delete --force` of container id, for both frontends: what runs is killed,
// what is already gone is no error (cleanups are idempotent, as runc's; what a killed create
// left before its first state write goes too), and a corrupt state is deleted from what can
// be salvaged. mon starts and waits for the children it forks (nil: directly).
func ForceDeleteID(root, id string, warn func(string), mon children.Monitor) error {
	ct, err := Load(root, id)
	if err == nil {
		ct.Warn, ct.Monitor = warn, mon
		err = ct.ForceDelete()
		ct.Close()
	}
	switch {
	case errors.Is(err, ErrNotExist):
		return RemoveStale(root, id)
	case errors.Is(err, ErrCorruptState):
		return salvageDelete(root, id, warn, mon)
	}
	return err
}

// killAndWait kills the init and waits for it to die; devices moved into its network namespace
// go back to the host first, while the namespace still exists.
func (c *Container) killAndWait() {
	c.returnLentDevices()
	cg := c.Cgroup()
	_ = c.signalInit(unix.SIGKILL)
	cg.ThawTree()
	// A loaded machine can take seconds to tear down a pid namespace with many processes; the
	// init becomes a zombie only after the kernel has killed and reaped all of them.
	waitUntil(killTimeout, func() bool { return !c.state.initAlive() })
}

// waitUntil polls done, from 1 ms apart growing to 50 ms, until it holds or timeout passes,
// and reports whether it held.
func waitUntil(timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay)
	}
}

// returnLentDevices moves the lent network devices back to the host, once. A joined namespace
// (a pod's) outlives the init: its devices go back even after the init died, from the
// namespace the state names.
func (c *Container) returnLentDevices() {
	devs := c.state.NetDevices
	if len(devs) == 0 || (!c.state.initAlive() && devs[0].NetNS == "") {
		return
	}
	if err := returnNetDevices(c.state.InitPid, devs); err != nil {
		c.warn(fmt.Sprintf("linux.netDevices: %v", err))
	}
	c.state.NetDevices = nil
}

// killTimeout bounds how long a delete waits for the container's processes to die.
const killTimeout = 10 * time.Second

// privatePidNamespace reports whether the container has a pid namespace of its own (new, not
// joined by path): then the init's death takes every process of the container with it, and
// nothing else in its cgroup is the container's. Unknown (a salvaged state) counts as private,
// so that a corrupt state never leads to killing a whole cgroup.
func (c *Container) privatePidNamespace() bool {
	v, err := c.execView()
	if err != nil {
		return true
	}
	for _, ns := range v.Linux.Namespaces {
		if ns.Type == rspec.PIDNamespace {
			return ns.Path == ""
		}
	}
	return false
}

func (c *Container) destroy() error {
	c.returnLentDevices() // a stopped container's, from a joined namespace
	if c.state.initAlive() {
		return fmt.Errorf("container %s: delete: the init (pid %d) is still alive %v after SIGKILL", c.state.ID, c.state.InitPid, killTimeout)
	}
	cg := c.Cgroup()
	if !c.privatePidNamespace() {
		// Without a private pid namespace the init's death leaves its children running: kill
		// the cgroup until it is empty (pid by pid on v1 a forking process can slip through
		// one round).
		if err := killCgroup(cg); err != nil {
			return fmt.Errorf("container %s: delete: %w", c.state.ID, err)
		}
	}
	// With a private pid namespace everything of the container died with its init; what the
	// cgroup may still hold is some other process that was put there, left alone (runc 1.1.5
	// and 1.5 alike), or an init whose create was killed before it recorded it.
	killNamespaceInits(cg)
	var errs []string
	if pids := livePids(cg); len(pids) > 0 {
		c.warn(fmt.Sprintf("cgroup %s is left in place: %d process(es) that are not the container's are in it (pids %s)", cg.Paths(), len(pids), pidList(pids)))
	} else if err := cg.Destroy(); err != nil {
		return fmt.Errorf("container %s: delete: %w", c.state.ID, err)
	}
	if h := c.state.Hooks; h != nil && len(h.Poststop) > 0 {
		hooks.RunWarn(c.Monitor, h.Poststop, "poststop", c.hookState(Stopped), c.warn)
	}
	if err := unbindSharedRootfs(c.state.Rootfs, c.state.SharedRootfsMount); err != nil {
		errs = append(errs, err.Error())
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("container %s: delete: %s", c.state.ID, strings.Join(errs, "; "))
	}
	return nil
}

// killCgroup kills every process of cg until none is left, or fails naming what is left.
func killCgroup(cg *cgroups.Manager) error {
	var pids []int
	var err error
	if waitUntil(killTimeout, func() bool {
		_ = cg.Signal(unix.SIGKILL)
		cg.ThawTree()
		pids, err = cg.Pids()
		return err == nil && len(pids) == 0
	}) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list the processes of cgroup %s: %w", cg.Paths(), err)
	}
	return fmt.Errorf("cgroup %s still holds %d process(es) after SIGKILL for %v (pids %s)", cg.Paths(), len(pids), killTimeout, pidList(pids))
}

// livePids lists the processes of cg that are neither gone nor zombies: a killed init waiting
// for its reaper is still listed on cgroup v1, and leaves with the rmdir's retries.
func livePids(cg *cgroups.Manager) []int {
	pids, _ := cg.Pids()
	var live []int
	for _, pid := range pids {
		if _, zombie, err := procStartTime(pid); err == nil && !zombie {
			live = append(live, pid)
		}
	}
	return live
}

// pidList names up to ten pids.
func pidList(pids []int) string {
	var b strings.Builder
	for i, p := range pids {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(pids)-10)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

// startLocked runs f on a goroutine locked to a fresh OS thread that first unshares its fs
// attributes and joins the namespaces given; the thread is thrown away afterwards. For exec:
// the pid and time namespaces apply to children of the calling thread only, so the child
// started by f is born inside them. For the create fast path: f builds the rootfs inside the
// init's namespaces.
func startLocked(nsfds []*os.File, f func() error) error {
	if len(nsfds) == 0 {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		for _, ns := range nsfds {
			if err := unix.Setns(int(ns.Fd()), 0); err != nil {
				errc <- fmt.Errorf("join %s: %w", ns.Name(), err)
				return
			}
		}
		errc <- f()
	}()
	return <-errc
}

// debugf sends a debug line to a Debug option, if set.
func debugf(debug func(string), format string, args ...any) {
	if debug != nil {
		debug(fmt.Sprintf(format, args...))
	}
}

// onThrowawayThread runs f on a goroutine locked to an OS thread that dies with it, for
// changes to the calling thread (CPU affinity) that must not outlive f.
func onThrowawayThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		errc <- f()
	}()
	return <-errc
}

// sealedBinary is the container init binary, husk-init from beside husk, sealed per process
// start (see exeseal). husk itself is pure Go and never runs an init: the init needs cgo (setns
// before the Go runtime starts, libseccomp), and the command line, run four times per container,
// starts faster without it.
func sealedBinary() (*os.File, error) {
	initBin, err := huskInitPath()
	if err != nil {
		return nil, err
	}
	return sealedBinaryAt(initBin)
}

// sealedBinaryAt is sealedBinary of the husk-init at initBin.
func sealedBinaryAt(initBin string) (*os.File, error) {
	st, err := os.Stat(initBin)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("husk-init is not installed in %s, beside husk (install both binaries: make install)", filepath.Dir(initBin))
	}
	return exeseal.OpenPath(initBin)
}

// huskInitPath is where the container init binary must be: beside husk's own.
func huskInitPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find husk-init: %w", err)
	}
	return filepath.Join(filepath.Dir(self), "husk-init"), nil
}

// lockByID locks the directory of container id; a nil lock and no error when it is gone.
func lockByID(root, id string) (string, *os.File, error) {
	if err := ValidateID(id); err != nil {
		return "", nil, err
	}
	dir := filepath.Join(root, id)
	lock, err := lockDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return dir, nil, nil
	}
	return dir, lock, err
}

// salvageDelete is `delete --force` of a container whose state is corrupt: it kills what the
// salvaged state and the container's cgroup still name, removes the cgroup and the state
// directory. runc leaves all of it behind; the cgroup knows the container's processes.
// mon starts and waits for the children it forks (nil: directly).
func salvageDelete(root, id string, warn func(string), mon children.Monitor) error {
	dir, lock, err := lockByID(root, id)
	if err != nil || lock == nil {
		return err
	}
	c := &Container{root: root, dir: dir, lock: lock, state: salvageState(dir, id), Warn: warn, Monitor: mon}
	defer c.Close()
	c.warn("state is corrupt; deleting what the salvaged state and the cgroup name")
	c.killAndWait()
	// Without the config the namespaces are unknown: destroy treats the pid namespace as
	// private and kills the inits of pid namespaces in the container's cgroup (a process put
	// there later is not the init of a namespace of its own).
	return c.destroy()
}

// killNamespaceInits kills the processes of cg that are pid 1 of a pid namespace nested in
// husk's, and waits for them to go: the init of a create that was killed before it recorded
// it, or of a container whose state was lost. Other processes of the cgroup are left alone.
func killNamespaceInits(cg *cgroups.Manager) {
	pids, _ := cg.Pids()
	var inits []int
	for _, pid := range pids {
		if isNamespaceInit(pid) {
			inits = append(inits, pid)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	cg.ThawTree()
	waitUntil(killTimeout, func() bool {
		for _, pid := range inits {
			if _, zombie, err := procStartTime(pid); err == nil && !zombie {
				return false
			}
		}
		return true
	})
}

// isNamespaceInit reports whether pid is pid 1 of a pid namespace nested in ours.
func isNamespaceInit(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			f := strings.Fields(v)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}

// RemoveStale removes the directory of a create that died before writing any state (it holds
// at most the exec fifo). The lock guarantees no create is still working on it.
func RemoveStale(root, id string) error {
	dir, lock, err := lockByID(root, id)
	if err != nil || lock == nil {
		return err
	}
	defer lock.Close()
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return fmt.Errorf("container %s: has state; use delete", id)
	}
	return os.RemoveAll(dir)
}
