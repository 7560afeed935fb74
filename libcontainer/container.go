package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/libcontainer/cgroups/systemd"
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
