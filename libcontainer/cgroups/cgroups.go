// Package cgroups is husk's one small interface over containerd/cgroups for v1, hybrid and
// unified hosts. A container's cgroup is resolved once at create and recorded as per-controller
// paths, so any later process (start, delete, the shim) acts on the same cgroup.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	mountRoot   = "/sys/fs/cgroup"
	unifiedRoot = "/sys/fs/cgroup/unified" // the cgroup2 mount on hybrid hosts
)

// Paths records where a container's cgroup lives: per v1 controller ("memory" -> "/a/b") and the
// cgroup2 path ("" key), relative to each hierarchy's mount.
type Paths map[string]string

// Manager acts on one container's cgroup.
type Manager struct {
	paths Paths
	mode  cgroups.CGMode
}

// Mode reports the host's cgroup layout.
func Mode() cgroups.CGMode { return cgroups.Mode() }

// Resolve turns linux.cgroupsPath into per-hierarchy paths. An absolute path is taken from each
// hierarchy's root; a relative one (or the default, the container id) nests under the caller's
// own cgroup, as runc does, so a runtime inside a container cannot escape its subtree.
func Resolve(cgroupsPath, id string) (Paths, error) {
	if strings.Contains(cgroupsPath, ":") {
		return nil, fmt.Errorf("linux.cgroupsPath %q: the systemd form slice:prefix:name needs a systemd cgroup manager, which husk does not support yet", cgroupsPath)
	}
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
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	paths := Paths{}
	for ctrl, base := range own {
		if filepath.IsAbs(p) {
			paths[ctrl] = clean
		} else {
			paths[ctrl] = filepath.Join(base, clean)
		}
	}
	return paths, nil
}

// ownCgroups parses /proc/self/cgroup into controller -> path ("" for cgroup2). Named
// hierarchies (name=systemd) are skipped: husk does not manage them.
func ownCgroups() (Paths, error) {
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
			paths[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if strings.HasPrefix(c, "name=") {
				continue
			}
			paths[c] = parts[2]
		}
	}
	return paths, s.Err()
}

// Create makes the cgroup and applies resources. On failure nothing is left behind.
func Create(paths Paths, res *rspec.LinuxResources) (*Manager, error) {
	m := &Manager{paths: paths, mode: cgroups.Mode()}
	if err := checkExpressible(res, m.mode); err != nil {
		return nil, err
	}
	if m.mode == cgroups.Unified {
		r := v2Resources(withPeriod(res, ""))
		if _, err := cgroup2.NewManager(mountRoot, paths[""], r); err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", paths[""], err)
		}
		if err := m.applyUnified(res); err != nil {
			_ = m.Destroy()
			return nil, err
		}
		if err := m.applyCPUExtras(res); err != nil {
			_ = m.Destroy()
			return nil, err
		}
		return m, nil
	}
	if _, err := cgroup1.New(m.v1Path, res, cgroup1.WithHierarchy(v1Hierarchy)); err != nil {
		_ = m.Destroy()
		return nil, fmt.Errorf("create cgroup %s: %w", paths.String(), err)
	}
	if err := m.applyCPUExtras(res); err != nil {
		_ = m.Destroy()
		return nil, err
	}
	if m.mode == cgroups.Hybrid && paths[""] != "" {
		// Controller-free v2 features (freeze, kill, events) come from the unified hierarchy,
		// and so does hugetlb where the host moved it there.
		if err := os.MkdirAll(filepath.Join(unifiedRoot, paths[""]), 0o755); err != nil {
			_ = m.Destroy()
			return nil, fmt.Errorf("create cgroup2 %s: %w", paths[""], err)
		}
		if res != nil && len(res.HugepageLimits) > 0 && !v1Mounted("hugetlb") {
			if err := m.unifiedHugetlb(res.HugepageLimits); err != nil {
				_ = m.Destroy()
				return nil, err
			}
		}
	}
	return m, nil
}

// checkExpressible rejects resources this host's cgroup version cannot apply, naming the field,
// instead of silently dropping them.
func checkExpressible(res *rspec.LinuxResources, mode cgroups.CGMode) error {
	if res == nil {
		return nil
	}
	if mode != cgroups.Unified && len(res.Unified) > 0 {
		return fmt.Errorf("linux.resources.unified: cgroup v2 keys need a cgroup v2 host (this one is %s)", modeName(mode))
	}
	if mode == cgroups.Unified && res.Network != nil && (res.Network.ClassID != nil || len(res.Network.Priorities) > 0) {
		return errors.New("linux.resources.network: classID and priorities exist only in cgroup v1")
	}
	if mode == cgroups.Unified && res.CPU != nil && (res.CPU.RealtimeRuntime != nil || res.CPU.RealtimePeriod != nil) {
		return errors.New("linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime bandwidth controls")
	}
	if mode != cgroups.Unified {
		if n := res.Network; n != nil && n.ClassID != nil && !v1Mounted("net_cls") {
			return errors.New("linux.resources.network.classID: the net_cls controller is not mounted on this host")
		}
		if n := res.Network; n != nil && len(n.Priorities) > 0 && !v1Mounted("net_prio") {
			return errors.New("linux.resources.network.priorities: the net_prio controller is not mounted on this host")
		}
		if len(res.Rdma) > 0 && !v1Mounted("rdma") {
			return errors.New("linux.resources.rdma: the rdma controller is not mounted on this host")
		}
		if len(res.HugepageLimits) > 0 && !v1Mounted("hugetlb") && mode != cgroups.Hybrid {
			return errors.New("linux.resources.hugepageLimits: the hugetlb controller is not mounted on this host")
		}
	}
	if m := res.Memory; m != nil {
		for name, v := range map[string]*int64{"limit": m.Limit, "reservation": m.Reservation, "swap": m.Swap} {
			if v != nil && *v < -1 {
				return fmt.Errorf("linux.resources.memory.%s: %d is not a valid limit", name, *v)
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
	return nil
}

// applyUnified writes linux.resources.unified, which containerd/cgroups does not apply: each
// key is a file of the container's cgroup2 directory.
func (m *Manager) applyUnified(res *rspec.LinuxResources) error {
	if res == nil {
		return nil
	}
	for k, v := range res.Unified {
		if k == "" || strings.ContainsAny(k, "/\x00") || strings.HasPrefix(k, ".") {
			return fmt.Errorf("linux.resources.unified: invalid key %q", k)
		}
		if err := writeExisting(filepath.Join(mountRoot, m.paths[""], k), []byte(v)); err != nil {
			return fmt.Errorf("linux.resources.unified[%q]: %w", k, err)
		}
	}
	return nil
}

// applyCPUExtras writes cpu idle and burst, which containerd/cgroups does not apply.
func (m *Manager) applyCPUExtras(res *rspec.LinuxResources) error {
	if res == nil || res.CPU == nil || (res.CPU.Idle == nil && res.CPU.Burst == nil) {
		return nil
	}
	dir, burstFile := filepath.Join(mountRoot, m.paths[""]), "cpu.max.burst"
	if m.mode != cgroups.Unified {
		p, err := m.v1Path("cpu")
		if err != nil {
			return errors.New("linux.resources.cpu: the cpu controller is not mounted on this host")
		}
		dir, burstFile = filepath.Join(mountRoot, "cpu", p), "cpu.cfs_burst_us"
	}
	if b := res.CPU.Burst; b != nil {
		if err := writeExisting(filepath.Join(dir, burstFile), []byte(strconv.FormatUint(*b, 10))); err != nil {
			return fmt.Errorf("linux.resources.cpu.burst: %w", err)
		}
	}
	if i := res.CPU.Idle; i != nil {
		if err := writeExisting(filepath.Join(dir, "cpu.idle"), []byte(strconv.FormatInt(*i, 10))); err != nil {
			return fmt.Errorf("linux.resources.cpu.idle: %w", err)
		}
	}
	return nil
}

func v1Mounted(controller string) bool {
	_, err := os.Stat(filepath.Join(mountRoot, controller, "cgroup.procs"))
	return err == nil
}

// unifiedHugetlb applies hugepage limits through cgroup2 on a hybrid host whose hugetlb
// controller lives there: enable it down the path, then write hugetlb.<size>.max.
func (m *Manager) unifiedHugetlb(limits []rspec.LinuxHugepageLimit) error {
	dir := unifiedRoot
	for _, part := range strings.Split(strings.Trim(m.paths[""], "/"), "/") {
		if err := writeExisting(filepath.Join(dir, "cgroup.subtree_control"), []byte("+hugetlb")); err != nil {
			return fmt.Errorf("linux.resources.hugepageLimits: enable hugetlb in %s: %w", dir, err)
		}
		dir = filepath.Join(dir, part)
	}
	for i, l := range limits {
		file := filepath.Join(dir, "hugetlb."+l.Pagesize+".max")
		if err := writeExisting(file, []byte(strconv.FormatUint(l.Limit, 10))); err != nil {
			return fmt.Errorf("linux.resources.hugepageLimits[%d] (%s): %w", i, l.Pagesize, err)
		}
	}
	return nil
}

func modeName(m cgroups.CGMode) string {
	switch m {
	case cgroups.Legacy:
		return "cgroup v1"
	case cgroups.Hybrid:
		return "hybrid: v1 controllers"
	}
	return "cgroup v2"
}

// IsPermission reports whether err means the cgroup hierarchy is not ours to write.
func IsPermission(err error) bool {
	return errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

// Load returns the manager of an existing container's recorded paths.
func Load(paths Paths) *Manager { return &Manager{paths: paths, mode: cgroups.Mode()} }

func (p Paths) String() string {
	for _, k := range []string{"", "memory", "pids", "cpu"} {
		if v, ok := p[k]; ok {
			return v
		}
	}
	for _, v := range p {
		return v
	}
	return ""
}

func v1Hierarchy() ([]cgroup1.Subsystem, error) {
	all, err := cgroup1.Default()
	if err != nil {
		return nil, err
	}
	var out []cgroup1.Subsystem
	for _, s := range all {
		if s.Name() == "systemd" {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

func (m *Manager) v1Path(n cgroup1.Name) (string, error) {
	p, ok := m.paths[string(n)]
	if !ok {
		// cpu and cpuacct share a hierarchy on many hosts and are listed as "cpu,cpuacct".
		for k, v := range m.paths {
			for _, c := range strings.Split(k, ",") {
				if c == string(n) {
					return v, nil
				}
			}
		}
		return "", cgroup1.ErrControllerNotActive
	}
	return p, nil
}

// dirs lists every directory of the cgroup, one per hierarchy, the cgroup2 one first.
func (m *Manager) dirs() []string {
	var out []string
	seen := map[string]bool{}
	if p, ok := m.paths[""]; ok && m.mode != cgroups.Legacy {
		root := unifiedRoot
		if m.mode == cgroups.Unified {
			root = mountRoot
		}
		d := filepath.Join(root, p)
		out = append(out, d)
		seen[d] = true
	}
	if m.mode == cgroups.Unified {
		return out
	}
	for ctrl, p := range m.paths {
		if ctrl == "" {
			continue
		}
		d := filepath.Join(mountRoot, ctrl, p)
		if !seen[d] {
			if _, err := os.Stat(filepath.Join(mountRoot, ctrl)); err == nil {
				out = append(out, d)
				seen[d] = true
			}
		}
	}
	return out
}

// Apply moves pid into every hierarchy of the cgroup.
func (m *Manager) Apply(pid int) error {
	b := []byte(strconv.Itoa(pid))
	for _, d := range m.dirs() {
		// No O_CREAT: a missing cgroup.procs means "not a cgroup", never a file to make.
		if err := writeExisting(filepath.Join(d, "cgroup.procs"), b); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, d, err)
		}
	}
	return nil
}

func writeExisting(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Pids lists the processes in the cgroup (and its children).
func (m *Manager) Pids() ([]int, error) {
	dirs := m.dirs()
	if len(dirs) == 0 {
		return nil, nil
	}
	var best string
	for _, d := range dirs {
		// Prefer a v1 hierarchy where the container cannot create sub-cgroups unseen.
		if strings.Contains(d, "/pids/") || strings.Contains(d, "/freezer/") || best == "" {
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
		for _, d := range m.dirs() {
			if strings.HasPrefix(d, unifiedRoot) || m.mode == cgroups.Unified {
				if err := writeExisting(filepath.Join(d, "cgroup.kill"), []byte("1")); err == nil {
					return nil
				}
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
	for i := 0; i < 50; i++ {
		rmErr = unix.Rmdir(dir)
		if rmErr == nil || rmErr == unix.ENOENT {
			return nil
		}
		if rmErr != unix.EBUSY {
			break
		}
		// A process that was just killed may still be leaving the cgroup.
		unix.Nanosleep(&unix.Timespec{Nsec: 2_000_000}, nil)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, rmErr)
}

// Paths returns the recorded paths.
func (m *Manager) Paths() Paths { return m.paths }

// Unified is the cgroup v2-only mode, for callers comparing Mode().
func Unified() cgroups.CGMode { return cgroups.Unified }
