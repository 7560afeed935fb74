package shimapi

import (
	"context"
	"math"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
)

// Stats returns containerd's cgroups v1 or v2 Metrics of the container, read from the cgroup
// of its init by husk's own cgroupfs reader, whatever runtime runs the container. Only the
// generated metrics types are linked, not containerd/cgroups' managers: the shim stays small.
func (s *Service) Stats(ctx context.Context, r *taskapi.StatsRequest) (*taskapi.StatsResponse, error) {
	s.mu.Lock()
	c, err := s.get(r.ID)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	pid, cg := c.init.pid, c.cg
	s.mu.Unlock()
	// As the runc shim: stats until the task is deleted, from the cgroup found at create, so
	// the ones containerd asks for on an exit still come (the init is gone by then).
	if cg == nil {
		var err error
		if cg, err = cgroups.Of(pid); err != nil {
			return nil, status.Errorf(codes.Unavailable, "stats of container %s: %v", r.ID, err)
		}
	}
	st, err := cg.Stats()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "stats of container %s: %v", r.ID, err)
	}
	oomKills, _ := cg.OOMKills()
	var m proto.Message
	if cg.Mode() == cgroups.Unified {
		m = metricsV2(st, oomKills)
	} else {
		m = metricsV1(st, oomKills)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, toStatus(err)
	}
	// containerd's typeurl names these types by their full protobuf name.
	url := string(proto.MessageName(m))
	return &taskapi.StatsResponse{Stats: &anypb.Any{TypeUrl: url, Value: b}}, nil
}

func metricsV1(st *cgroups.Stats, oomKills uint64) *v1.Metrics {
	raw := st.Memory.Raw
	entry := func(e cgroups.MemoryEntry) *v1.MemoryEntry {
		return &v1.MemoryEntry{Limit: e.Limit, Usage: e.Usage, Max: e.Max, Failcnt: e.Failcnt}
	}
	m := &v1.Metrics{
		Pids: &v1.PidsStat{Current: st.Pids.Current, Limit: st.Pids.Limit},
		CPU: &v1.CPUStat{
			Usage:      &v1.CPUUsage{Total: st.CPU.Usage.Total, Kernel: st.CPU.Usage.Kernel, User: st.CPU.Usage.User, PerCPU: st.CPU.Usage.Percpu},
			Throttling: &v1.Throttle{Periods: st.CPU.Throttling.Periods, ThrottledPeriods: st.CPU.Throttling.ThrottledPeriods, ThrottledTime: st.CPU.Throttling.ThrottledTime},
		},
		Memory: &v1.MemoryStat{
			Cache: raw["cache"], RSS: raw["rss"], RSSHuge: raw["rss_huge"], MappedFile: raw["mapped_file"],
			Dirty: raw["dirty"], Writeback: raw["writeback"], PgPgIn: raw["pgpgin"], PgPgOut: raw["pgpgout"],
			PgFault: raw["pgfault"], PgMajFault: raw["pgmajfault"], InactiveAnon: raw["inactive_anon"],
			ActiveAnon: raw["active_anon"], InactiveFile: raw["inactive_file"], ActiveFile: raw["active_file"],
			Unevictable: raw["unevictable"], HierarchicalMemoryLimit: raw["hierarchical_memory_limit"],
			HierarchicalSwapLimit: raw["hierarchical_memsw_limit"], TotalCache: raw["total_cache"],
			TotalRSS: raw["total_rss"], TotalRSSHuge: raw["total_rss_huge"], TotalMappedFile: raw["total_mapped_file"],
			TotalDirty: raw["total_dirty"], TotalWriteback: raw["total_writeback"], TotalPgPgIn: raw["total_pgpgin"],
			TotalPgPgOut: raw["total_pgpgout"], TotalPgFault: raw["total_pgfault"], TotalPgMajFault: raw["total_pgmajfault"],
			TotalInactiveAnon: raw["total_inactive_anon"], TotalActiveAnon: raw["total_active_anon"],
			TotalInactiveFile: raw["total_inactive_file"], TotalActiveFile: raw["total_active_file"],
			TotalUnevictable: raw["total_unevictable"],
			Usage:            entry(st.Memory.Usage), Swap: entry(st.Memory.Swap), Kernel: entry(st.Memory.Kernel), KernelTCP: entry(st.Memory.KernelTCP),
		},
		Blkio: &v1.BlkIOStat{
			IoServiceBytesRecursive: blkio(st.Blkio.IoServiceBytesRecursive), IoServicedRecursive: blkio(st.Blkio.IoServicedRecursive),
			IoQueuedRecursive: blkio(st.Blkio.IoQueuedRecursive), IoServiceTimeRecursive: blkio(st.Blkio.IoServiceTimeRecursive),
			IoWaitTimeRecursive: blkio(st.Blkio.IoWaitTimeRecursive), IoMergedRecursive: blkio(st.Blkio.IoMergedRecursive),
			IoTimeRecursive: blkio(st.Blkio.IoTimeRecursive), SectorsRecursive: blkio(st.Blkio.SectorsRecursive),
		},
		MemoryOomControl: &v1.MemoryOomControl{OomKill: oomKills},
	}
	for size, h := range st.Hugetlb {
		m.Hugetlb = append(m.Hugetlb, &v1.HugetlbStat{Usage: h.Usage, Max: h.Max, Failcnt: h.Failcnt, Pagesize: size})
	}
	return m
}

func blkio(in []cgroups.BlkioEntry) []*v1.BlkIOEntry {
	out := make([]*v1.BlkIOEntry, 0, len(in))
	for _, e := range in {
		out = append(out, &v1.BlkIOEntry{Op: e.Op, Major: e.Major, Minor: e.Minor, Value: e.Value})
	}
	return out
}

func metricsV2(st *cgroups.Stats, oomKills uint64) *v2.Metrics {
	raw := st.Memory.Raw
	mem := st.Memory
	// cgroups.Stats counts swap as memory plus swap (runc's convention); cgroup2 metrics want
	// swap alone.
	swapUsage, swapLimit := mem.Swap.Usage-min(mem.Swap.Usage, mem.Usage.Usage), mem.Swap.Limit
	if swapLimit != math.MaxUint64 {
		swapLimit -= min(swapLimit, mem.Usage.Limit)
	}
	m := &v2.Metrics{
		Pids: &v2.PidsStat{Current: st.Pids.Current, Limit: st.Pids.Limit},
		CPU: &v2.CPUStat{
			UsageUsec: st.CPU.Usage.Total / 1000, UserUsec: st.CPU.Usage.User / 1000, SystemUsec: st.CPU.Usage.Kernel / 1000,
			NrPeriods: st.CPU.Throttling.Periods, NrThrottled: st.CPU.Throttling.ThrottledPeriods, ThrottledUsec: st.CPU.Throttling.ThrottledTime / 1000,
		},
		Memory: &v2.MemoryStat{
			Anon: raw["anon"], File: raw["file"], KernelStack: raw["kernel_stack"], Slab: raw["slab"], Sock: raw["sock"],
			Shmem: raw["shmem"], FileMapped: raw["file_mapped"], FileDirty: raw["file_dirty"], FileWriteback: raw["file_writeback"],
			AnonThp: raw["anon_thp"], InactiveAnon: raw["inactive_anon"], ActiveAnon: raw["active_anon"],
			InactiveFile: raw["inactive_file"], ActiveFile: raw["active_file"], Unevictable: raw["unevictable"],
			SlabReclaimable: raw["slab_reclaimable"], SlabUnreclaimable: raw["slab_unreclaimable"],
			Pgfault: raw["pgfault"], Pgmajfault: raw["pgmajfault"], WorkingsetRefault: raw["workingset_refault"],
			WorkingsetActivate: raw["workingset_activate"], WorkingsetNodereclaim: raw["workingset_nodereclaim"],
			Pgrefill: raw["pgrefill"], Pgscan: raw["pgscan"], Pgsteal: raw["pgsteal"], Pgactivate: raw["pgactivate"],
			Pgdeactivate: raw["pgdeactivate"], Pglazyfree: raw["pglazyfree"], Pglazyfreed: raw["pglazyfreed"],
			ThpFaultAlloc: raw["thp_fault_alloc"], ThpCollapseAlloc: raw["thp_collapse_alloc"],
			Usage: mem.Usage.Usage, UsageLimit: mem.Usage.Limit, MaxUsage: mem.Usage.Max,
			SwapUsage: swapUsage, SwapLimit: swapLimit,
		},
		MemoryEvents: &v2.MemoryEvents{
			Low: mem.Events["low"], High: mem.Events["high"], Max: mem.Usage.Failcnt, Oom: mem.Events["oom"],
			OomKill: oomKills, OomGroupKill: mem.Events["oom_group_kill"],
		},
	}
	m.CPU.PSI, m.Memory.PSI = psiMetrics(st.CPU.PSI), psiMetrics(mem.PSI)
	io := &v2.IOStat{}
	byDev := map[[2]uint64]*v2.IOEntry{}
	add := func(entries []cgroups.BlkioEntry, bytes bool) {
		for _, e := range entries {
			k := [2]uint64{e.Major, e.Minor}
			d := byDev[k]
			if d == nil {
				d = &v2.IOEntry{Major: e.Major, Minor: e.Minor}
				byDev[k] = d
				io.Usage = append(io.Usage, d)
			}
			switch {
			case bytes && e.Op == "Read":
				d.Rbytes = e.Value
			case bytes && e.Op == "Write":
				d.Wbytes = e.Value
			case e.Op == "Read":
				d.Rios = e.Value
			case e.Op == "Write":
				d.Wios = e.Value
			}
		}
	}
	add(st.Blkio.IoServiceBytesRecursive, true)
	add(st.Blkio.IoServicedRecursive, false)
	io.PSI = psiMetrics(st.Blkio.PSI)
	m.Io = io
	for size, h := range st.Hugetlb {
		m.Hugetlb = append(m.Hugetlb, &v2.HugeTlbStat{Current: h.Usage, Max: h.Max, Failcnt: h.Failcnt, Pagesize: size})
	}
	return m
}

func psiMetrics(p *cgroups.PSIStats) *v2.PSIStats {
	if p == nil {
		return nil
	}
	data := func(d cgroups.PSIData) *v2.PSIData {
		return &v2.PSIData{Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300, Total: d.Total}
	}
	return &v2.PSIStats{Some: data(p.Some), Full: data(p.Full)}
}
