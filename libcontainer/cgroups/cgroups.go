// Package cgroups is husk's own cgroupfs driver for v1, hybrid and unified hosts: it creates a
// container's cgroup, writes its resources, moves processes in, freezes, signals, reads stats
// and removes it, by plain file writes. It links nothing beyond x/sys and the runtime spec on
// purpose: every husk command runs it, and containerd/cgroups (protobuf, eBPF and D-Bus
// libraries) costs ~3.7 ms of start-up on each of the four processes of a container's life.
// A container's cgroup is resolved once at create and recorded as per-hierarchy paths, so any
// later process (start, delete, the shim) acts on the same cgroup.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	mountRoot   = "/sys/fs/cgroup"
	unifiedRoot = "/sys/fs/cgroup/unified" // the cgroup2 mount on hybrid hosts
)

// Mode is the host's cgroup layout.
type Mode int

const (
	Legacy  Mode = iota + 1 // cgroup v1 only
	Hybrid                  // v1 controllers, plus cgroup2 at /sys/fs/cgroup/unified
	Unified                 // cgroup v2 only
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "cgroup v1"
	case Hybrid:
		return "hybrid: v1 controllers"
	}
	return "cgroup v2"
}

// HostMode reports the host's cgroup layout from the filesystem types of the mounts.
func HostMode() Mode {
	var st unix.Statfs_t
	if unix.Statfs(mountRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Unified
	}
	if unix.Statfs(unifiedRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Hybrid
	}
	return Legacy
}

// Paths records where a container's cgroup lives: per v1 hierarchy, keyed by its controllers as
// /proc/self/cgroup lists them ("memory", "cpu,cpuacct"), and the cgroup2 path under the ""
// key, each relative to its hierarchy's mount.
type Paths map[string]string

// Manager acts on one container's cgroup.
type Manager struct {
	paths  Paths
	mode   Mode
	mounts map[string]string // v1 hierarchy key -> its mount directory, looked up once
	strict bool              // Apply fails on a missing cgroup (exec --cgroup's sub-cgroups)
	unit   Unit              // the systemd unit owning the cgroup; nil under cgroupfs
	// pending are the resources of a unit not started yet: the first Apply starts it with
	// the init in it, then makes the cgroup directories and writes them.
	pending *rspec.LinuxResources
}

// Unit is a systemd unit that owns a container's cgroup (the systemd driver, package
// cgroups/systemd): it is created with the container's init in it, takes what resources it
// has properties for, and is stopped at delete. The cgroup files are still written here.
type Unit interface {
	Start(pid int, res *rspec.LinuxResources) error
	Set(res *rspec.LinuxResources) error
	Stop() error
}

// WithUnit returns m acting through the systemd unit u too (nil: cgroupfs alone).
func (m *Manager) WithUnit(u Unit) *Manager {
	m.unit = u
	return m
}

// Load returns the manager of an existing container's recorded paths.
func Load(paths Paths) *Manager { return &Manager{paths: paths, mode: HostMode()} }

// Paths returns the recorded paths.
func (m *Manager) Paths() Paths { return m.paths }

// Mode returns the host layout the manager works with.
func (m *Manager) Mode() Mode { return m.mode }

func (p Paths) String() string {
	if v, ok := p[""]; ok {
		return v
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if k := p.key(c); k != "" {
			return p[k]
		}
	}
	for _, v := range p {
		return v
	}
	return ""
}

// Check refuses paths no create would have recorded: a key that is not a hierarchy's name, a
// path that is not absolute and clean, the root cgroup, or one with "..". Paths read back from
// disk go through it before anything is killed or removed.
func (p Paths) Check() error {
	for k, v := range p {
		for _, r := range k {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == ',' || r == '=') {
				return fmt.Errorf("cgroup paths: invalid hierarchy %q", k)
			}
		}
		if !filepath.IsAbs(v) || filepath.Clean(v) != v || v == "/" {
			return fmt.Errorf("cgroup paths: %q is not a container's cgroup", v)
		}
		for _, part := range strings.Split(v, "/") {
			if part == ".." {
				return fmt.Errorf("cgroup paths: %q leaves the cgroup root", v)
			}
		}
	}
	return nil
}

// key returns the key of the v1 hierarchy that holds controller, "" if none does.
func (p Paths) key(controller string) string {
	if _, ok := p[controller]; ok {
		return controller
	}
	for k := range p {
		for _, c := range strings.Split(k, ",") {
			if c == controller && k != "" {
				return k
			}
		}
	}
	return ""
}

// Resolve turns linux.cgroupsPath into per-hierarchy paths. An absolute path is taken from each
// hierarchy's root; a relative one (or the default, the container id) nests under the caller's
// own cgroup (on cgroup v2 beside it, under its parent), as runc does, so a runtime inside a
// container cannot escape its subtree.
//
// A "slice:prefix:name" path (systemd's form) is a literal, relative path here, as runc's
// cgroupfs driver takes it: containerd 1.6 sends that form to a cgroupfs runtime when no
// RuntimeConfig call told it the driver, and every pod of a Kubernetes node failed.
func Resolve(cgroupsPath, id string) (Paths, error) {
	p := cgroupsPath
	if p == "" {
		p = id
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return nil, fmt.Errorf("linux.cgroupsPath %q: \"..\" would leave the cgroup root", cgroupsPath)
		}
	}
	clean := filepath.Clean("/" + p)
	if clean == "/" {
		return nil, fmt.Errorf("linux.cgroupsPath %q: refusing to use the root cgroup", cgroupsPath)
	}
	mode := HostMode()
	own, err := ownCgroups(mode)
	if err != nil {
		return nil, err
	}
	paths := Paths{}
	for key, base := range own {
		switch {
		case filepath.IsAbs(p):
			paths[key] = clean
		case key == "" && mode == Unified:
			// As runc's fs2: beside our own cgroup, not in it. Ours holds processes (husk's
			// own, a service's), and cgroup v2 gives a cgroup with processes no child with
			// controllers: the container's pid could not be written there (EOPNOTSUPP).
			paths[key] = filepath.Join(filepath.Dir(base), clean)
		default:
			paths[key] = filepath.Join(base, clean)
		}
	}
	return paths, nil
}

// ownCgroups parses /proc/self/cgroup into hierarchy -> path ("" for cgroup2), keeping only
// hierarchies mounted where husk looks for them. Of the named hierarchies only name=systemd is
// kept: runc's v1 manager joins it too (its processes then show the container's path in every
// line of /proc/PID/cgroup, which systemd and tools that find a container by pid read); the
// others belong to whoever named them.
func ownCgroups(mode Mode) (Paths, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	defer f.Close()
	paths := Paths{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			if mode != Legacy {
				paths[""] = parts[2]
			}
			continue
		}
		if mode == Unified || strings.HasPrefix(parts[1], "name=") && parts[1] != "name=systemd" {
			continue
		}
		if v1Mount(parts[1]) != "" {
			paths[parts[1]] = parts[2]
		}
	}
	return paths, s.Err()
}

// v1Mount returns the mount directory of the v1 hierarchy with the given controllers: its own
// name ("cpu,cpuacct" on systemd hosts) or that of one of its controllers (a symlink or a
// separate mount), "" when it is not mounted under /sys/fs/cgroup.
func v1Mount(key string) string {
	if name, ok := strings.CutPrefix(key, "name="); ok {
		// A named hierarchy is mounted under its name (/sys/fs/cgroup/systemd).
		key = name
	}
	cands := append([]string{key}, strings.Split(key, ",")...)
	for _, c := range cands {
		d := filepath.Join(mountRoot, c)
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			return d
		}
	}
	return ""
}

// mount is v1Mount(key), remembered: one create or stats read asks for each hierarchy often.
func (m *Manager) mount(key string) string {
	d, ok := m.mounts[key]
	if !ok {
		d = v1Mount(key)
		if m.mounts == nil {
			m.mounts = map[string]string{}
		}
		m.mounts[key] = d
	}
	return d
}

// Resolved looks up every hierarchy's mount now and returns m, which from then on only reads
// its fields in Apply, Frozen and the other per-process calls: one manager can then serve
// concurrent execs (an ExecCache's).
func (m *Manager) Resolved() *Manager {
	if m.mode != Unified {
		for k := range m.paths {
			if k != "" {
				m.mount(k)
			}
		}
	}
	return m
}

// v1Dir is the container's directory in the v1 hierarchy holding controller, "" if none.
func (m *Manager) v1Dir(controller string) string {
	if m.mode == Unified {
		return ""
	}
	k := m.paths.key(controller)
	if k == "" {
		return ""
	}
	mnt := m.mount(k)
	if mnt == "" {
		return ""
	}
	return filepath.Join(mnt, m.paths[k])
}

// v2Dir is the container's cgroup2 directory, "" on a v1-only host.
func (m *Manager) v2Dir() string {
	p, ok := m.paths[""]
	switch {
	case !ok || m.mode == Legacy:
		return ""
	case m.mode == Unified:
		return filepath.Join(mountRoot, p)
	}
	return filepath.Join(unifiedRoot, p)
}

// dirs lists every directory of the cgroup, one per hierarchy, the cgroup2 one first.
func (m *Manager) dirs() []string {
	var out []string
	if d := m.v2Dir(); d != "" {
		out = append(out, d)
	}
	if m.mode == Unified {
		return out
	}
	for k, p := range m.paths {
		if k == "" {
			continue
		}
		if mnt := m.mount(k); mnt != "" {
			out = append(out, filepath.Join(mnt, p))
		}
	}
	return out
}

// Create makes the cgroup and applies resources. On failure nothing is left behind.
func Create(paths Paths, res *rspec.LinuxResources) (*Manager, error) {
	m := &Manager{paths: paths, mode: HostMode()}
	if err := checkExpressible(res, m.mode); err != nil {
		return nil, err
	}
	if err := m.create(res); err != nil {
		_ = m.Destroy()
		return nil, err
	}
	return m, nil
}

// CreateUnit returns the manager of a cgroup the systemd unit u will own: nothing is made
// until Apply gives it the init's pid.
func CreateUnit(paths Paths, res *rspec.LinuxResources, u Unit) (*Manager, error) {
	m := &Manager{paths: paths, mode: HostMode(), unit: u, pending: res}
	if err := checkExpressible(res, m.mode); err != nil {
		return nil, err
	}
	if m.pending == nil {
		m.pending = &rspec.LinuxResources{}
	}
	return m, nil
}

func (m *Manager) create(res *rspec.LinuxResources) error {
	if m.mode == Unified {
		if err := m.mkdirV2(); err != nil {
			return err
		}
		return m.setV2(res)
	}
	for k, p := range m.paths {
		if k == "" {
			continue
		}
		mnt := m.mount(k)
		if mnt == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Join(mnt, p), 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", filepath.Join(mnt, p), err)
		}
		if m.paths.key("cpuset") == k {
			if err := initCpuset(mnt, p); err != nil {
				return err
			}
		}
	}
	if d := m.v2Dir(); d != "" {
		// Controller-free v2 features (freeze, kill, events) come from the unified hierarchy,
		// and so does hugetlb where the host moved it there.
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create cgroup2 %s: %w", d, err)
		}
	}
	return m.setV1(res)
}

// Update applies new resource limits to the running container's cgroup.
func (m *Manager) Update(res *rspec.LinuxResources) error {
	if err := checkExpressible(res, m.mode); err != nil {
		return err
	}
	if err := m.checkMemoryUsage(res); err != nil {
		return err
	}
	if m.unit != nil {
		// The unit's properties first: systemd rewrites the files it owns from them (at a
		// daemon-reload too), so they must not disagree with what is written next.
		if err := m.unit.Set(res); err != nil {
			return err
		}
	}
	if m.mode == Unified {
		return m.setV2(res)
	}
	return m.setV1(res)
}

// checkMemoryUsage refuses, when memory.checkBeforeUpdate asks for it, a memory (or
// memory+swap) limit at or below what the container uses now: lowered below its usage, the
// limit would have the kernel reclaim or OOM-kill (an in-place pod resize must fail instead).
// runc does this on cgroup v2 only; husk on v1 as well, with the words of runc's. As runc's,
// the check is best-effort: a usage that cannot be read lets the update through.
func (m *Manager) checkMemoryUsage(res *rspec.LinuxResources) error {
	if res == nil || res.Memory == nil || res.Memory.CheckBeforeUpdate == nil || !*res.Memory.CheckBeforeUpdate {
		return nil
	}
	dir, file := m.v1Dir("memory"), "memory.usage_in_bytes"
	if m.mode == Unified {
		dir, file = m.v2Dir(), "memory.current"
	}
	v, err := readFile(dir, file)
	if dir == "" || err != nil {
		return nil
	}
	usage, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil
	}
	if sw := res.Memory.Swap; sw != nil && *sw > 0 && uint64(*sw) <= usage {
		return fmt.Errorf("rejecting memory+swap limit %d <= usage %d", *sw, usage)
	}
	if l := res.Memory.Limit; l != nil && *l > 0 && uint64(*l) <= usage {
		return fmt.Errorf("rejecting memory limit %d <= usage %d", *l, usage)
	}
	return nil
}

// checkExpressible rejects resources this host's cgroup version cannot apply, naming the field,
// instead of silently dropping them.
func checkExpressible(res *rspec.LinuxResources, mode Mode) error {
	if res == nil {
		return nil
	}
	if mode != Unified && len(res.Unified) > 0 {
		return fmt.Errorf("invalid configuration: linux.resources.unified: cgroup v2 keys need a cgroup v2 host (this one is %s)", mode)
	}
	if mode == Unified && res.Network != nil && (res.Network.ClassID != nil || len(res.Network.Priorities) > 0) {
		return errors.New("linux.resources.network: classID and priorities exist only in cgroup v1")
	}
	if mode == Unified && res.CPU != nil && (res.CPU.RealtimeRuntime != nil || res.CPU.RealtimePeriod != nil) {
		return errors.New("linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime bandwidth controls")
	}
	if mode != Unified {
		if n := res.Network; n != nil && n.ClassID != nil && v1Mount("net_cls") == "" {
			return errors.New("linux.resources.network.classID: the net_cls controller is not mounted on this host")
		}
		if n := res.Network; n != nil && len(n.Priorities) > 0 && v1Mount("net_prio") == "" {
			return errors.New("linux.resources.network.priorities: the net_prio controller is not mounted on this host")
		}
		if len(res.Rdma) > 0 && v1Mount("rdma") == "" {
			return errors.New("linux.resources.rdma: the rdma controller is not mounted on this host")
		}
		if len(res.HugepageLimits) > 0 && v1Mount("hugetlb") == "" && mode != Hybrid {
			return errors.New("linux.resources.hugepageLimits: the hugetlb controller is not mounted on this host")
		}
	}
	if m := res.Memory; m != nil {
		for _, f := range []struct {
			name string
			v    *int64
		}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}} {
			if f.v != nil && *f.v < -1 {
				return fmt.Errorf("linux.resources.memory.%s: %d is not a valid limit", f.name, *f.v)
			}
		}
		if m.Swappiness != nil && *m.Swappiness > 100 {
			return fmt.Errorf("linux.resources.memory.swappiness: %d is above 100", *m.Swappiness)
		}
	}
	if p := res.Pids; p != nil && p.Limit != nil && *p.Limit < -1 {
		return fmt.Errorf("linux.resources.pids.limit: %d is not a valid limit", *p.Limit)
	}
	for i, d := range res.Devices {
		switch d.Type {
		case "", "a", "c", "b":
		default:
			return fmt.Errorf("linux.resources.devices[%d].type: unknown device type %q", i, d.Type)
		}
	}
	if b := res.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 && (*b.Weight < 10 || *b.Weight > 1000) {
		return fmt.Errorf("linux.resources.blockIO.weight: %d is outside 10..1000", *b.Weight)
	}
	return nil
}

// IsPermission reports whether err means the cgroup hierarchy is not ours to write.
func IsPermission(err error) bool {
	return errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

// Apply moves pid into every hierarchy of the cgroup.
func (m *Manager) Apply(pid int) error {
	if m.pending != nil {
		res := m.pending
		if err := m.unit.Start(pid, res); err != nil {
			return err
		}
		m.pending = nil
		// The directories systemd made exist already; the v1 hierarchies it does not manage
		// (freezer, cpuset, ...) are made here, and every resource is written to the files.
		if err := m.create(res); err != nil {
			return err
		}
	}
	b := []byte(strconv.Itoa(pid))
	for _, d := range m.dirs() {
		// No O_CREAT: a missing cgroup.procs means "not a cgroup", never a file to make.
		if err := writeExisting(filepath.Join(d, "cgroup.procs"), b); err != nil {
			if errors.Is(err, os.ErrNotExist) && !m.strict {
				continue
			}
			return fmt.Errorf("adding pid %d to cgroup: %w", pid, err)
		}
	}
	return nil
}

// Sub returns the manager of sub-cgroups of m's, for `exec --cgroup`: each spec is "path" (every
// hierarchy) or "controller[,controller]:path" (those v1 hierarchies), relative to the
// container's cgroup and never above it. The sub-cgroups must exist: Apply fails otherwise.
func (m *Manager) Sub(specs []string) (*Manager, error) {
	paths := Paths{}
	for k, v := range m.paths {
		paths[k] = v
	}
	for _, s := range specs {
		ctrls, sub, ok := strings.Cut(s, ":")
		if !ok {
			ctrls, sub = "", s
		}
		rel := filepath.Clean("/" + sub)
		if c := filepath.Clean(sub); c == ".." || strings.HasPrefix(c, "../") {
			return nil, fmt.Errorf("bad sub cgroup path: %s is not a sub cgroup path: it leaves the container's cgroup", sub)
		}
		if ctrls == "" {
			for k := range paths {
				paths[k] = filepath.Join(m.paths[k], rel)
			}
			continue
		}
		if m.mode == Unified {
			return nil, fmt.Errorf("--cgroup %q: controllers can only be named on cgroup v1", s)
		}
		for _, c := range strings.Split(ctrls, ",") {
			k := m.paths.key(c)
			if k == "" {
				return nil, fmt.Errorf("--cgroup %q: unknown controller %q", s, c)
			}
			paths[k] = filepath.Join(m.paths[k], rel)
		}
	}
	return &Manager{paths: paths, mode: m.mode, strict: true}, nil
}

// writeExisting writes data to an existing cgroup file in one write, as the kernel wants.
func writeExisting(path string, data []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, data)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// write sets one resource file of dir, naming the spec field on failure.
// writeCpuset writes linux.resources.cpu.cpus and .mems: the same files on v1 (in the cpuset
// hierarchy) and v2.
func writeCpuset(dir string, c *rspec.LinuxCPU) error {
	if c.Cpus != "" {
		if err := write(dir, "cpuset.cpus", c.Cpus, "cpu.cpus"); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		return write(dir, "cpuset.mems", c.Mems, "cpu.mems")
	}
	return nil
}

func write(dir, file, value, field string) error {
	if err := writeExisting(filepath.Join(dir, file), []byte(value)); err != nil {
		return fmt.Errorf("linux.resources.%s: %w", field, err)
	}
	return nil
}

func readFile(dir, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(b)), err
}

// Pids lists the processes in the cgroup (and its children).
func (m *Manager) Pids() ([]int, error) {
	dirs := m.dirs()
	if len(dirs) == 0 {
		return nil, nil
	}
	best := dirs[0]
	// Prefer a v1 hierarchy where the container cannot create sub-cgroups unseen.
	for _, c := range []string{"freezer", "pids"} {
		if d := m.v1Dir(c); d != "" {
			best = d
		}
	}
	var pids []int
	err := filepath.WalkDir(best, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, l := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(l); err == nil {
				pids = append(pids, n)
			}
		}
		return nil
	})
	return pids, err
}

// Signal sends sig to every process in the cgroup, through cgroup.kill for SIGKILL where the
// kernel offers it (atomic, no fork race), else pid by pid.
func (m *Manager) Signal(sig unix.Signal) error {
	if sig == unix.SIGKILL {
		if d := m.v2Dir(); d != "" {
			if err := writeExisting(filepath.Join(d, "cgroup.kill"), []byte("1")); err == nil {
				return nil
			}
		}
	}
	pids, err := m.Pids()
	if err != nil {
		return err
	}
	for _, p := range pids {
		if err := unix.Kill(p, sig); err != nil && err != unix.ESRCH {
			return fmt.Errorf("signal pid %d: %w", p, err)
		}
	}
	return nil
}

// Destroy removes the container's leaf cgroup in every hierarchy; parents it created stay, as
// they may be shared (/kubepods/...).
func (m *Manager) Destroy() error {
	var firstErr error
	if m.unit != nil {
		firstErr = m.unit.Stop()
	}
	for _, d := range m.dirs() {
		if err := removeTree(d); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// removeTree removes a cgroup directory and any sub-cgroups the container made, deepest first.
func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	var rmErr error
	// A process that was just killed may still be leaving the cgroup: retry EBUSY for up to
	// ~2.5 s, as runc does, with a delay growing from 1 ms to 100 ms.
	for i, delay := 0, time.Millisecond; i < 30; i, delay = i+1, min(2*delay, 100*time.Millisecond) {
		rmErr = unix.Rmdir(dir)
		if rmErr == nil || rmErr == unix.ENOENT {
			return nil
		}
		if rmErr != unix.EBUSY {
			break
		}
		time.Sleep(delay)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, rmErr)
}
