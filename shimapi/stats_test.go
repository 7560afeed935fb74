package shimapi

import (
	"testing"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
)

// TestMetricsV2CarriesPSIAndMemoryEvents: containerd 2.3+ passes the shim's cgroup v2 PSI and
// memory events on to the CRI (PSI is GA in Kubernetes 1.36); husk's metrics had neither PSI
// nor the low, high and oom events.
func TestMetricsV2CarriesPSIAndMemoryEvents(t *testing.T) {
	psi := func(total uint64) *cgroups.PSIStats {
		return &cgroups.PSIStats{Some: cgroups.PSIData{Avg10: 1.5, Total: total}, Full: cgroups.PSIData{Avg300: 0.25, Total: total / 2}}
	}
	st := &cgroups.Stats{}
	st.CPU.PSI, st.Memory.PSI, st.Blkio.PSI = psi(100), psi(200), psi(300)
	st.Memory.Events = map[string]uint64{"low": 1, "high": 2, "max": 3, "oom": 4, "oom_kill": 5, "oom_group_kill": 6}
	st.Memory.Usage.Failcnt = 3
	m := metricsV2(st, 5)
	for name, got := range map[string]uint64{"cpu": m.CPU.GetPSI().GetSome().GetTotal(), "memory": m.Memory.GetPSI().GetSome().GetTotal(), "io": m.Io.GetPSI().GetSome().GetTotal()} {
		want := map[string]uint64{"cpu": 100, "memory": 200, "io": 300}[name]
		if got != want {
			t.Errorf("%s PSI some total = %d, want %d", name, got, want)
		}
	}
	if m.CPU.GetPSI().GetSome().GetAvg10() != 1.5 || m.CPU.GetPSI().GetFull().GetAvg300() != 0.25 || m.CPU.GetPSI().GetFull().GetTotal() != 50 {
		t.Errorf("cpu PSI = %v", m.CPU.GetPSI())
	}
	e := m.MemoryEvents
	if e.Low != 1 || e.High != 2 || e.Max != 3 || e.Oom != 4 || e.OomKill != 5 || e.OomGroupKill != 6 {
		t.Errorf("memory events = %v", e)
	}
	// A kernel without PSI: no PSI, not zeros.
	if m := metricsV2(&cgroups.Stats{}, 0); m.CPU.PSI != nil || m.Memory.PSI != nil || m.Io.PSI != nil {
		t.Errorf("PSI without pressure files: %v %v %v", m.CPU.PSI, m.Memory.PSI, m.Io.PSI)
	}
}
