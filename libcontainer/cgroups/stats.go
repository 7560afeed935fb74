package cgroups

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
)

// RuncStats is `runc events` stats data: the JSON that tools reading runc's events expect.
type RuncStats struct {
	CPU     RuncCPU                `json:"cpu"`
	Memory  RuncMemory             `json:"memory"`
	Pids    RuncPids               `json:"pids"`
	Blkio   RuncBlkio              `json:"blkio"`
	Hugetlb map[string]RuncHugetlb `json:"hugetlb"`
}

type RuncCPU struct {
	Usage      RuncCPUUsage   `json:"usage,omitempty"`
	Throttling RuncThrottling `json:"throttling,omitempty"`
}

type RuncCPUUsage struct {
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

type RuncThrottling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttled_periods,omitempty"`
	ThrottledTime    uint64 `json:"throttled_time,omitempty"`
}

type RuncMemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type RuncMemory struct {
	Cache  uint64            `json:"cache,omitempty"`
	Usage  RuncMemoryEntry   `json:"usage,omitempty"`
	Swap   RuncMemoryEntry   `json:"swap,omitempty"`
	Kernel RuncMemoryEntry   `json:"kernel,omitempty"`
	Raw    map[string]uint64 `json:"raw,omitempty"`
}

type RuncPids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

type RuncBlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

type RuncBlkio struct {
	IoServiceBytesRecursive []RuncBlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []RuncBlkioEntry `json:"ioServicedRecursive,omitempty"`
}

type RuncHugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Stats reads the metrics of process pid's cgroup in runc's events format.
func Stats(pid int) (*RuncStats, error) {
	m, err := Metrics(pid)
	if err != nil {
		return nil, err
	}
	st := &RuncStats{Hugetlb: map[string]RuncHugetlb{}}
	switch m := m.(type) {
	case *v1.Metrics:
		if c := m.CPU; c != nil && c.Usage != nil {
			st.CPU.Usage = RuncCPUUsage{Total: c.Usage.Total, Percpu: c.Usage.PerCPU, Kernel: c.Usage.Kernel, User: c.Usage.User}
			if t := c.Throttling; t != nil {
				st.CPU.Throttling = RuncThrottling{t.Periods, t.ThrottledPeriods, t.ThrottledTime}
			}
		}
		if mem := m.Memory; mem != nil {
			st.Memory.Cache = mem.Cache
			st.Memory.Usage = v1Entry(mem.Usage)
			st.Memory.Swap = v1Entry(mem.Swap)
			st.Memory.Kernel = v1Entry(mem.Kernel)
			st.Memory.Raw = map[string]uint64{"rss": mem.RSS, "cache": mem.Cache, "mapped_file": mem.MappedFile, "pgfault": mem.PgFault, "pgmajfault": mem.PgMajFault, "total_rss": mem.TotalRSS}
		}
		if p := m.Pids; p != nil {
			st.Pids = RuncPids{p.Current, p.Limit}
		}
		if b := m.Blkio; b != nil {
			for _, e := range b.IoServiceBytesRecursive {
				st.Blkio.IoServiceBytesRecursive = append(st.Blkio.IoServiceBytesRecursive, RuncBlkioEntry{e.Major, e.Minor, e.Op, e.Value})
			}
			for _, e := range b.IoServicedRecursive {
				st.Blkio.IoServicedRecursive = append(st.Blkio.IoServicedRecursive, RuncBlkioEntry{e.Major, e.Minor, e.Op, e.Value})
			}
		}
		for _, h := range m.Hugetlb {
			st.Hugetlb[h.Pagesize] = RuncHugetlb{h.Usage, h.Max, h.Failcnt}
		}
	case *v2.Metrics:
		if c := m.CPU; c != nil {
			st.CPU.Usage = RuncCPUUsage{Total: c.UsageUsec * 1000, Kernel: c.SystemUsec * 1000, User: c.UserUsec * 1000}
			st.CPU.Throttling = RuncThrottling{c.NrPeriods, c.NrThrottled, c.ThrottledUsec * 1000}
		}
		if mem := m.Memory; mem != nil {
			st.Memory.Usage = RuncMemoryEntry{Limit: mem.UsageLimit, Usage: mem.Usage}
			st.Memory.Swap = RuncMemoryEntry{Limit: mem.SwapLimit, Usage: mem.SwapUsage}
			st.Memory.Cache = mem.File
			st.Memory.Raw = map[string]uint64{"anon": mem.Anon, "file": mem.File, "pgfault": mem.Pgfault, "pgmajfault": mem.Pgmajfault}
		}
		if p := m.Pids; p != nil {
			st.Pids = RuncPids{p.Current, p.Limit}
		}
		if io := m.Io; io != nil {
			for _, e := range io.Usage {
				st.Blkio.IoServiceBytesRecursive = append(st.Blkio.IoServiceBytesRecursive,
					RuncBlkioEntry{e.Major, e.Minor, "Read", e.Rbytes}, RuncBlkioEntry{e.Major, e.Minor, "Write", e.Wbytes})
			}
		}
		for _, h := range m.Hugetlb {
			st.Hugetlb[h.Pagesize] = RuncHugetlb{Usage: h.Current, Max: h.Max}
		}
	}
	return st, nil
}

func v1Entry(e *v1.MemoryEntry) RuncMemoryEntry {
	if e == nil {
		return RuncMemoryEntry{}
	}
	return RuncMemoryEntry{Limit: e.Limit, Usage: e.Usage, Max: e.Max, Failcnt: e.Failcnt}
}

// OOMKills reads the container's OOM kill counter (v1 memory.oom_control or v2
// memory.events); ok is false where neither exists.
func (m *Manager) OOMKills() (n uint64, ok bool) {
	var file string
	if p, has := m.paths["memory"]; has {
		file = filepath.Join(mountRoot, "memory", p, "memory.oom_control")
	} else if p, has := m.paths[""]; has && m.mode == Unified() {
		file = filepath.Join(mountRoot, p, "memory.events")
	} else {
		return 0, false
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, found := strings.Cut(l, " "); found && k == "oom_kill" {
			n, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, true
		}
	}
	return 0, true
}
