package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// initCpuset gives every level of a new cpuset path the cpus and mems of its parent: an empty
// cpuset refuses tasks.
func initCpuset(mnt, path string) error {
	parent := mnt
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		dir := filepath.Join(parent, part)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := readFile(dir, f)
			if err != nil {
				return fmt.Errorf("cpuset %s: %w", dir, err)
			}
			if cur != "" {
				continue
			}
			from, err := readFile(parent, f)
			if err != nil {
				return fmt.Errorf("cpuset %s: %w", parent, err)
			}
			if err := writeExisting(filepath.Join(dir, f), []byte(from)); err != nil {
				return fmt.Errorf("cpuset %s: %w", dir, err)
			}
		}
		parent = dir
	}
	return nil
}

// setV1 writes resources into the v1 hierarchies, the way runc's cgroupfs driver does.
func (m *Manager) setV1(res *rspec.LinuxResources) error {
	if res == nil {
		return nil
	}
	if c := res.CPU; c != nil {
		if err := m.setV1CPU(c); err != nil {
			return err
		}
	}
	if mem := res.Memory; mem != nil {
		if err := m.setV1Memory(mem); err != nil {
			return err
		}
	}
	if p := res.Pids; p != nil && p.Limit != nil {
		d := m.v1Dir("pids")
		if d == "" {
			return errors.New("linux.resources.pids: the pids controller is not mounted on this host")
		}
		if err := write(d, "pids.max", pidsMax(*p.Limit), "pids.limit"); err != nil {
			return err
		}
	}
	if b := res.BlockIO; b != nil {
		if err := m.setV1Blkio(b); err != nil {
			return err
		}
	}
	if len(res.HugepageLimits) > 0 {
		if err := m.setV1Hugetlb(res.HugepageLimits); err != nil {
			return err
		}
	}
	if n := res.Network; n != nil {
		if n.ClassID != nil {
			if err := write(m.v1Dir("net_cls"), "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10), "network.classID"); err != nil {
				return err
			}
		}
		for _, p := range n.Priorities {
			if err := write(m.v1Dir("net_prio"), "net_prio.ifpriomap", p.Name+" "+strconv.FormatUint(uint64(p.Priority), 10), "network.priorities"); err != nil {
				return err
			}
		}
	}
	if len(res.Rdma) > 0 {
		for dev, l := range res.Rdma {
			if err := write(m.v1Dir("rdma"), "rdma.max", rdmaLine(dev, l), "rdma"); err != nil {
				return err
			}
		}
	}
	if len(res.Devices) > 0 {
		d := m.v1Dir("devices")
		if d == "" {
			return errors.New("linux.resources.devices: the devices controller is not mounted on this host")
		}
		// The kernel keeps the rules in order, as the spec means them: each rule to
		// devices.allow or devices.deny.
		for i, r := range res.Devices {
			file := "devices.deny"
			if r.Allow {
				file = "devices.allow"
			}
			if err := write(d, file, deviceRule(r), fmt.Sprintf("devices[%d]", i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *Manager) setV1CPU(c *rspec.LinuxCPU) error {
	if c.Cpus != "" || c.Mems != "" {
		d := m.v1Dir("cpuset")
		if d == "" {
			return errors.New("linux.resources.cpu.cpus/mems: the cpuset controller is not mounted on this host")
		}
		if err := writeCpuset(d, c); err != nil {
			return err
		}
	}
	if c.Shares == nil && c.Quota == nil && c.Period == nil && c.RealtimePeriod == nil && c.RealtimeRuntime == nil && c.Burst == nil && c.Idle == nil {
		return nil
	}
	d := m.v1Dir("cpu")
	if d == "" {
		return errors.New("linux.resources.cpu: the cpu controller is not mounted on this host")
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := write(d, "cpu.shares", strconv.FormatUint(*c.Shares, 10), "cpu.shares"); err != nil {
			return err
		}
	}
	// Under a parent with a CFS limit the kernel checks quota/period against it at every write:
	// a shorter period with the old quota can exceed it (EINVAL) where the new pair does not.
	// As runc: on EINVAL, write the quota first and the period after it.
	periodLater := false
	if c.Period != nil && *c.Period != 0 {
		err := write(d, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10), "cpu.period")
		if err != nil && (!errors.Is(err, unix.EINVAL) || c.Quota == nil || *c.Quota == 0) {
			return err
		}
		periodLater = err != nil
	}
	if c.Quota != nil && *c.Quota != 0 {
		q := *c.Quota
		if q < 0 {
			q = -1
		}
		if err := write(d, "cpu.cfs_quota_us", strconv.FormatInt(q, 10), "cpu.quota"); err != nil {
			return err
		}
		if periodLater {
			if err := write(d, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10), "cpu.period"); err != nil {
				return err
			}
		}
	}
	if c.Burst != nil {
		if err := write(d, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10), "cpu.burst"); err != nil {
			return err
		}
	}
	if err := setRealtime(d, c); err != nil {
		return err
	}
	if c.Idle != nil {
		if err := write(d, "cpu.idle", strconv.FormatInt(*c.Idle, 10), "cpu.idle"); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) setV1Memory(mem *rspec.LinuxMemory) error {
	d := m.v1Dir("memory")
	if d == "" {
		return errors.New("linux.resources.memory: the memory controller is not mounted on this host")
	}
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	if limit == -1 && swap == 0 {
		swap = -1 // lifting the limit lifts memory+swap too, or the kernel refuses
	}
	setLimit := func() error {
		if limit == 0 {
			return nil
		}
		return write(d, "memory.limit_in_bytes", strconv.FormatInt(limit, 10), "memory.limit")
	}
	setSwap := func() error {
		if swap == 0 {
			return nil
		}
		if _, err := os.Stat(filepath.Join(d, "memory.memsw.limit_in_bytes")); err != nil {
			if swap == -1 {
				return nil
			}
			return errors.New("linux.resources.memory.swap: this kernel does not account swap (memory.memsw.limit_in_bytes is missing)")
		}
		return write(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10), "memory.swap")
	}
	// The kernel keeps memory <= memory+swap at every step: raise memory+swap first when it
	// grows, lower memory first when it shrinks.
	first, second := setLimit, setSwap
	if limit != 0 && swap != 0 {
		cur, _ := readFile(d, "memory.memsw.limit_in_bytes")
		if n, err := strconv.ParseUint(cur, 10, 64); swap == -1 || (err == nil && n < uint64(swap)) {
			first, second = setSwap, setLimit
		}
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := write(d, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10), "memory.reservation"); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil {
		if err := write(d, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10), "memory.swappiness"); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		if err := write(d, "memory.oom_control", "1", "memory.disableOOMKiller"); err != nil {
			return err
		}
	}
	if mem.KernelTCP != nil && *mem.KernelTCP != 0 {
		if err := write(d, "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*mem.KernelTCP, 10), "memory.kernelTCP"); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil && *mem.UseHierarchy {
		if err := write(d, "memory.use_hierarchy", "1", "memory.useHierarchy"); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) setV1Blkio(b *rspec.LinuxBlockIO) error {
	d := m.v1Dir("blkio")
	if d == "" {
		return errors.New("linux.resources.blockIO: the blkio controller is not mounted on this host")
	}
	if b.Weight != nil && *b.Weight != 0 {
		file := "blkio.weight"
		if _, err := os.Stat(filepath.Join(d, file)); err != nil {
			file = "blkio.bfq.weight" // kernels without CFQ
		}
		if err := write(d, file, strconv.Itoa(int(*b.Weight)), "blockIO.weight"); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := write(d, "blkio.leaf_weight", strconv.Itoa(int(*b.LeafWeight)), "blockIO.leafWeight"); err != nil {
			return err
		}
	}
	weightDevice := "blkio.weight_device"
	if _, err := os.Stat(filepath.Join(d, weightDevice)); err != nil {
		weightDevice = "blkio.bfq.weight_device" // kernels without CFQ, as runc
	}
	for i, w := range b.WeightDevice {
		dev := strconv.FormatInt(w.Major, 10) + ":" + strconv.FormatInt(w.Minor, 10)
		if w.Weight != nil {
			if err := write(d, weightDevice, dev+" "+strconv.Itoa(int(*w.Weight)), fmt.Sprintf("blockIO.weightDevice[%d]", i)); err != nil {
				return err
			}
		}
		if w.LeafWeight != nil {
			if err := write(d, "blkio.leaf_weight_device", dev+" "+strconv.Itoa(int(*w.LeafWeight)), fmt.Sprintf("blockIO.weightDevice[%d]", i)); err != nil {
				return err
			}
		}
	}
	for _, t := range throttleLists(b) {
		for i, td := range t.devs {
			line := fmt.Sprintf("%d:%d %d", td.Major, td.Minor, td.Rate)
			if err := write(d, t.v1File, line, fmt.Sprintf("blockIO.%s[%d]", t.field, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// throttleList is one of the spec's IO throttle lists with its v1 file and its cgroup2 io.max key.
type throttleList struct {
	v1File, v2Key, field string
	devs                 []rspec.LinuxThrottleDevice
}

func throttleLists(b *rspec.LinuxBlockIO) []throttleList {
	return []throttleList{
		{"blkio.throttle.read_bps_device", "rbps", "throttleReadBpsDevice", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", "wbps", "throttleWriteBpsDevice", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", "riops", "throttleReadIOPSDevice", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", "wiops", "throttleWriteIOPSDevice", b.ThrottleWriteIOPSDevice},
	}
}

// setV1Hugetlb writes hugepage limits to the v1 hugetlb controller or, on a hybrid host that
// moved hugetlb to cgroup2, to the unified hierarchy.
func (m *Manager) setV1Hugetlb(limits []rspec.LinuxHugepageLimit) error {
	d := m.v1Dir("hugetlb")
	if d == "" {
		if m.mode == Hybrid && m.v2Dir() != "" {
			return m.unifiedHugetlb(limits)
		}
		return errors.New("linux.resources.hugepageLimits: the hugetlb controller is not mounted on this host")
	}
	for i, l := range limits {
		v := strconv.FormatUint(l.Limit, 10)
		if err := write(d, "hugetlb."+l.Pagesize+".limit_in_bytes", v, fmt.Sprintf("hugepageLimits[%d] (%s)", i, l.Pagesize)); err != nil {
			return err
		}
		// Reservations count too where the kernel has them (5.7+), as runc sets both.
		rsvd := filepath.Join(d, "hugetlb."+l.Pagesize+".rsvd.limit_in_bytes")
		if _, err := os.Stat(rsvd); err == nil {
			if err := writeExisting(rsvd, []byte(v)); err != nil {
				return fmt.Errorf("linux.resources.hugepageLimits[%d] (%s): %w", i, l.Pagesize, err)
			}
		}
	}
	return nil
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
		if err := write(dir, "hugetlb."+l.Pagesize+".max", strconv.FormatUint(l.Limit, 10), fmt.Sprintf("hugepageLimits[%d] (%s)", i, l.Pagesize)); err != nil {
			return err
		}
	}
	return nil
}

// setRealtime writes the rt period and runtime in the order the kernel accepts, as runc: the
// runtime may never exceed the period, so a new period below the current runtime fails until
// the runtime is lowered first. Period first, and on failure runtime first.
func setRealtime(d string, c *rspec.LinuxCPU) error {
	period := c.RealtimePeriod != nil && *c.RealtimePeriod != 0
	runtime := c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0
	writePeriod := func() error {
		return write(d, "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10), "cpu.realtimePeriod")
	}
	writeRuntime := func() error {
		return write(d, "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10), "cpu.realtimeRuntime")
	}
	switch {
	case period && runtime:
		if err := writePeriod(); err != nil {
			if rerr := writeRuntime(); rerr != nil {
				return err
			}
			return writePeriod()
		}
		return writeRuntime()
	case period:
		return writePeriod()
	case runtime:
		return writeRuntime()
	}
	return nil
}

// pidsMax is pids.max for the spec's limit, the same file on v1 and v2: -1 lifts it, and 0 is
// a limit, of 1 (runc 1.4+: systemd takes no TasksMax=0, and both drivers agree; husk lifted it).
func pidsMax(limit int64) string {
	switch {
	case limit > 0:
		return strconv.FormatInt(limit, 10)
	case limit == 0:
		return "1"
	}
	return "max"
}

// deviceRule formats a spec device rule as the v1 devices files take it: "c 1:3 rwm".
func deviceRule(r rspec.LinuxDeviceCgroup) string {
	typ, major, minor, access := r.Type, "*", "*", r.Access
	if typ == "" {
		typ = "a"
	}
	if r.Major != nil && *r.Major >= 0 {
		major = strconv.FormatInt(*r.Major, 10)
	}
	if r.Minor != nil && *r.Minor >= 0 {
		minor = strconv.FormatInt(*r.Minor, 10)
	}
	if access == "" {
		access = "rwm"
	}
	return typ + " " + major + ":" + minor + " " + deviceAccess(access)
}

// deviceAccess keeps the r, w and m of an access string, in that order. runc ignores any other
// letter ("rwa" is "rw"), and so does the v2 program (accessBits); the v1 files would refuse it.
func deviceAccess(access string) string {
	out := ""
	for _, c := range "rwm" {
		if strings.ContainsRune(access, c) {
			out += string(c)
		}
	}
	return out
}

func rdmaLine(dev string, l rspec.LinuxRdma) string {
	line := dev
	if l.HcaHandles != nil {
		line += " hca_handle=" + strconv.FormatUint(uint64(*l.HcaHandles), 10)
	}
	if l.HcaObjects != nil {
		line += " hca_object=" + strconv.FormatUint(uint64(*l.HcaObjects), 10)
	}
	return line
}
