package cgroups

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stats is the data of a `runc events` stats record, in the JSON that go-runc and everything
// reading runc's events decode. Memory.Raw holds the whole memory.stat, so a consumer can
// rebuild the richer per-version metrics (the shim's cgroups v1/v2 Metrics) from it.
type Stats struct {
	CPU     CPU                `json:"cpu"`
	Memory  Memory             `json:"memory"`
	Pids    PidsStats          `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb"`
}

type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

// PSIStats is a cgroup v2 pressure file (cpu.pressure, memory.pressure, io.pressure), as
// runc 1.2+ reports it.
type PSIStats struct {
	Some PSIData `json:"some,omitempty"`
	Full PSIData `json:"full,omitempty"`
}

type PSIData struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total"` // microseconds
}

// CPUUsage is in nanoseconds.
type CPUUsage struct {
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"` // nanoseconds
}

type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"` // memory plus swap, as v1 counts it
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
	PSI       *PSIStats         `json:"psi,omitempty"`
	// Events is cgroup v2's memory.events (low, high, max, oom, oom_kill, oom_group_kill),
	// for the shim's metrics; not in runc's events JSON.
	Events map[string]uint64 `json:"-"`
}

type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// userHZ is the unit of cpuacct.stat; Linux fixes it at 100 on every architecture husk runs.
const userHZ = 100

// Of returns the manager of the cgroup process pid is in.
func Of(pid int) (*Manager, error) {
	mode := HostMode()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	defer f.Close()
	paths := Paths{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		switch {
		case len(parts) != 3, strings.HasPrefix(parts[1], "name="):
		case parts[1] == "":
			if mode != Legacy {
				paths[""] = parts[2]
			}
		case mode != Unified:
			paths[parts[1]] = parts[2]
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	return &Manager{paths: paths, mode: mode}, nil
}

// Stats reads the cgroup's statistics. Controllers the host lacks are left empty.
func (m *Manager) Stats() (*Stats, error) {
	st := &Stats{Hugetlb: map[string]Hugetlb{}}
	if m.mode == Unified {
		m.statsV2(st)
		return st, nil
	}
	if d := m.v1Dir("cpuacct"); d != "" {
		st.CPU.Usage.Total = readUint(d, "cpuacct.usage")
		if v, err := readFile(d, "cpuacct.usage_percpu"); err == nil {
			for _, f := range strings.Fields(v) {
				n, _ := strconv.ParseUint(f, 10, 64)
				st.CPU.Usage.Percpu = append(st.CPU.Usage.Percpu, n)
			}
		}
		kv := readKV(d, "cpuacct.stat")
		st.CPU.Usage.User = kv["user"] * (1e9 / userHZ)
		st.CPU.Usage.Kernel = kv["system"] * (1e9 / userHZ)
	}
	if d := m.v1Dir("cpu"); d != "" {
		kv := readKV(d, "cpu.stat")
		st.CPU.Throttling = Throttling{kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]}
	}
	if d := m.v1Dir("memory"); d != "" {
		entry := func(prefix string) MemoryEntry {
			return MemoryEntry{
				Usage: readUint(d, prefix+"usage_in_bytes"), Max: readUint(d, prefix+"max_usage_in_bytes"),
				Limit: readUint(d, prefix+"limit_in_bytes"), Failcnt: readUint(d, prefix+"failcnt"),
			}
		}
		st.Memory.Usage = entry("memory.")
		st.Memory.Swap = entry("memory.memsw.")
		st.Memory.Kernel = entry("memory.kmem.")
		st.Memory.KernelTCP = entry("memory.kmem.tcp.")
		st.Memory.Raw = readKV(d, "memory.stat")
		st.Memory.Cache = st.Memory.Raw["cache"]
	}
	if d := m.v1Dir("pids"); d != "" {
		st.Pids = PidsStats{readUint(d, "pids.current"), readUint(d, "pids.max")}
	}
	if d := m.v1Dir("blkio"); d != "" {
		b := &st.Blkio
		b.IoServiceBytesRecursive = readBlkio(d, "blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive")
		b.IoServicedRecursive = readBlkio(d, "blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive", "blkio.throttle.io_serviced_recursive")
		b.IoQueuedRecursive = readBlkio(d, "blkio.io_queued_recursive")
		b.IoServiceTimeRecursive = readBlkio(d, "blkio.io_service_time_recursive")
		b.IoWaitTimeRecursive = readBlkio(d, "blkio.io_wait_time_recursive")
		b.IoMergedRecursive = readBlkio(d, "blkio.io_merged_recursive")
		b.IoTimeRecursive = readBlkio(d, "blkio.time_recursive")
		b.SectorsRecursive = readBlkio(d, "blkio.sectors_recursive")
	}
	if d := m.v1Dir("hugetlb"); d != "" {
		for _, size := range hugePageSizes() {
			p := "hugetlb." + size + "."
			st.Hugetlb[size] = Hugetlb{readUint(d, p+"usage_in_bytes"), readUint(d, p+"max_usage_in_bytes"), readUint(d, p+"failcnt")}
		}
	} else if d := m.v2Dir(); d != "" {
		hugetlbV2(d, st)
	}
	return st, nil
}

func (m *Manager) statsV2(st *Stats) {
	d := m.v2Dir()
	kv := readKV(d, "cpu.stat")
	st.CPU.Usage = CPUUsage{Total: kv["usage_usec"] * 1000, User: kv["user_usec"] * 1000, Kernel: kv["system_usec"] * 1000}
	st.CPU.Throttling = Throttling{kv["nr_periods"], kv["nr_throttled"], kv["throttled_usec"] * 1000}

	st.CPU.PSI = readPSI(d, "cpu.pressure")
	st.Memory.PSI = readPSI(d, "memory.pressure")
	st.Blkio.PSI = readPSI(d, "io.pressure")
	events := readKV(d, "memory.events")
	st.Memory.Events = events
	st.Memory.Usage = MemoryEntry{Usage: readUint(d, "memory.current"), Max: readUint(d, "memory.peak"), Limit: readUint(d, "memory.max"), Failcnt: events["max"]}
	// runc reports v2 swap as memory plus swap, the way v1 counts it.
	swap, swapMax := readUint(d, "memory.swap.current"), readUint(d, "memory.swap.max")
	st.Memory.Swap = MemoryEntry{Usage: swap + st.Memory.Usage.Usage, Limit: addCapped(swapMax, st.Memory.Usage.Limit)}
	st.Memory.Raw = readKV(d, "memory.stat")
	st.Memory.Cache = st.Memory.Raw["file"]
	st.Pids = PidsStats{readUint(d, "pids.current"), readUint(d, "pids.max")}
	if data, err := os.ReadFile(filepath.Join(d, "io.stat")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			var major, minor uint64
			if _, err := fmt.Sscanf(f[0], "%d:%d", &major, &minor); err != nil {
				continue
			}
			vals := map[string]uint64{}
			for _, kvs := range f[1:] {
				if k, v, ok := strings.Cut(kvs, "="); ok {
					vals[k], _ = strconv.ParseUint(v, 10, 64)
				}
			}
			b := &st.Blkio
			b.IoServiceBytesRecursive = append(b.IoServiceBytesRecursive, BlkioEntry{major, minor, "Read", vals["rbytes"]}, BlkioEntry{major, minor, "Write", vals["wbytes"]})
			b.IoServicedRecursive = append(b.IoServicedRecursive, BlkioEntry{major, minor, "Read", vals["rios"]}, BlkioEntry{major, minor, "Write", vals["wios"]})
		}
	}
	hugetlbV2(d, st)
}

func hugetlbV2(d string, st *Stats) {
	for _, size := range hugePageSizes() {
		p := "hugetlb." + size + "."
		if _, err := os.Stat(filepath.Join(d, p+"current")); err != nil {
			continue
		}
		st.Hugetlb[size] = Hugetlb{Usage: readUint(d, p+"current"), Max: readUint(d, p+"max"), Failcnt: readKV(d, p+"events")["max"]}
	}
}

func addCapped(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// hugePageSizes lists the host's huge page sizes as cgroup files name them ("2MB", "1GB").
func hugePageSizes() []string {
	entries, _ := os.ReadDir("/sys/kernel/mm/hugepages")
	var out []string
	for _, e := range entries {
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(e.Name(), "hugepages-"), "kB"), 10, 64)
		if err != nil {
			continue
		}
		switch {
		case kb >= 1<<20:
			out = append(out, strconv.FormatUint(kb>>20, 10)+"GB")
		case kb >= 1<<10:
			out = append(out, strconv.FormatUint(kb>>10, 10)+"MB")
		default:
			out = append(out, strconv.FormatUint(kb, 10)+"KB")
		}
	}
	return out
}

// readUint reads a one-number cgroup file; "max" is the largest value, a missing file 0.
func readUint(dir, file string) uint64 {
	v, err := readFile(dir, file)
	if err != nil {
		return 0
	}
	if v == "max" {
		return math.MaxUint64
	}
	n, _ := strconv.ParseUint(v, 10, 64)
	return n
}

// readPSI reads a pressure file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0", and a
// "full" line); nil where the kernel keeps none (no CONFIG_PSI, psi=0, cgroup.pressure 0).
func readPSI(dir, file string) *PSIStats {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	var st PSIStats
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var d *PSIData
		switch f[0] {
		case "some":
			d = &st.Some
		case "full":
			d = &st.Full
		default:
			continue
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "avg10":
				d.Avg10, _ = strconv.ParseFloat(v, 64)
			case "avg60":
				d.Avg60, _ = strconv.ParseFloat(v, 64)
			case "avg300":
				d.Avg300, _ = strconv.ParseFloat(v, 64)
			case "total":
				d.Total, _ = strconv.ParseUint(v, 10, 64)
			}
		}
	}
	return &st
}

// readKV reads a flat keyed file ("key value" lines) such as memory.stat or cpu.stat.
func readKV(dir, file string) map[string]uint64 {
	out := map[string]uint64{}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
				out[k] = n
			}
		}
	}
	return out
}

// readBlkio reads the first present of the given blkio files ("8:0 Read 4096" lines).
func readBlkio(dir string, files ...string) []BlkioEntry {
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		var out []BlkioEntry
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			var e BlkioEntry
			if len(f) < 2 {
				continue
			}
			if _, err := fmt.Sscanf(f[0], "%d:%d", &e.Major, &e.Minor); err != nil {
				continue
			}
			if len(f) == 3 {
				e.Op = f[1]
			}
			e.Value, _ = strconv.ParseUint(f[len(f)-1], 10, 64)
			out = append(out, e)
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// OOMCounter names the file that holds the cgroup's oom_kill counter: memory.oom_control on
// cgroup v1 (v1 true), memory.events on v2; "" where the host has neither.
func (m *Manager) OOMCounter() (file string, v1 bool) {
	if d := m.v1Dir("memory"); d != "" {
		return filepath.Join(d, "memory.oom_control"), true
	}
	if d := m.v2Dir(); d != "" && m.mode == Unified {
		return filepath.Join(d, "memory.events"), false
	}
	return "", false
}

// ParentOOMKills reads the oom_kill count of the cgroup's parent on cgroup v2, where it
// includes the kills of every cgroup below (unless the host mounted cgroup2 with
// memory_localevents): what is left of a container's count once its own cgroup is gone. ok
// is false on cgroup v1 and hybrid hosts, and where the parent has no count (the root).
func (m *Manager) ParentOOMKills() (kills uint64, ok bool) {
	d := m.v2Dir()
	if d == "" || m.mode != Unified {
		return 0, false
	}
	parent := filepath.Dir(d)
	if parent == mountRoot {
		return 0, false
	}
	kv := readKV(parent, "memory.events")
	kills, ok = kv["oom_kill"]
	return kills, ok
}

// OOMKills reads the container's OOM kill counter; ok is false where there is none.
func (m *Manager) OOMKills() (n uint64, ok bool) {
	_, n, ok = m.OOMEvents()
	return n, ok
}

// OOMEvents reads, in one read, how often the container's memory cgroup invoked the OOM killer
// (cgroup v2's "oom"; v1 has no such count and gives 0) and how many processes it killed; ok
// is false where there is no counter (or the cgroup is gone).
func (m *Manager) OOMEvents() (invoked, kills uint64, ok bool) {
	file, _ := m.OOMCounter()
	if file == "" {
		return 0, 0, false
	}
	if _, err := os.Stat(file); err != nil {
		return 0, 0, false
	}
	kv := readKV(filepath.Dir(file), filepath.Base(file))
	return kv["oom"], kv["oom_kill"], true
}
