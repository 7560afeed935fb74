package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// freezerFile returns the file that freezes the cgroup and the values for frozen and thawed:
// the v1 freezer where mounted, else cgroup.freeze of cgroup2.
func (m *Manager) freezerFile() (file, frozen, thawed string, err error) {
	if m.mode != cgroups.Unified {
		if p, ok := m.paths["freezer"]; ok {
			return filepath.Join(mountRoot, "freezer", p, "freezer.state"), "FROZEN", "THAWED", nil
		}
	}
	if p, ok := m.paths[""]; ok && m.mode != cgroups.Legacy {
		root := unifiedRoot
		if m.mode == cgroups.Unified {
			root = mountRoot
		}
		f := filepath.Join(root, p, "cgroup.freeze")
		if _, err := os.Stat(f); err == nil {
			return f, "1", "0", nil
		}
	}
	return "", "", "", errors.New("no freezer: neither the v1 freezer controller nor cgroup.freeze is available")
}

// Freeze stops every process of the cgroup and waits until the kernel reports it frozen.
func (m *Manager) Freeze() error { return m.setFrozen(true) }

// Thaw resumes the cgroup.
func (m *Manager) Thaw() error { return m.setFrozen(false) }

func (m *Manager) setFrozen(freeze bool) error {
	file, frozen, thawed, err := m.freezerFile()
	if err != nil {
		return err
	}
	want := thawed
	if freeze {
		want = frozen
	}
	if err := writeExisting(file, []byte(want)); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if strings.HasSuffix(file, "cgroup.freeze") {
		return nil // the write to cgroup.freeze is synchronous enough; events report completion
	}
	for i := 0; i < 1000; i++ {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) == want {
			return nil
		}
		if freeze && strings.TrimSpace(string(b)) == "FREEZING" && i%50 == 49 {
			// Retry: a freeze can stall on a process in uninterruptible sleep (runc #2753).
			_ = writeExisting(file, []byte(frozen))
		}
		time.Sleep(time.Millisecond)
	}
	if freeze {
		_ = writeExisting(file, []byte(thawed))
	}
	return fmt.Errorf("cgroup %s did not reach %s", file, want)
}

// Frozen reports whether the cgroup is frozen (false when there is no freezer).
func (m *Manager) Frozen() bool {
	file, frozen, _, err := m.freezerFile()
	if err != nil {
		return false
	}
	b, err := os.ReadFile(file)
	return err == nil && strings.TrimSpace(string(b)) == frozen
}

func v2Resources(res *rspec.LinuxResources) *cgroup2.Resources {
	if res == nil {
		return &cgroup2.Resources{}
	}
	return cgroup2.ToResources(res)
}

// withPeriod fills in the CPU period when only a quota is given: containerd/cgroups writes
// cpu.max only with both, and runc keeps the current period (default 100ms).
func withPeriod(res *rspec.LinuxResources, dir string) *rspec.LinuxResources {
	if res == nil || res.CPU == nil || res.CPU.Quota == nil || res.CPU.Period != nil {
		return res
	}
	period := uint64(100000)
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if p, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				period = p
			}
		}
	}
	r := *res
	cpu := *res.CPU
	cpu.Period = &period
	r.CPU = &cpu
	return &r
}

// Update applies new resource limits.
func (m *Manager) Update(res *rspec.LinuxResources) error {
	if m.mode == cgroups.Unified {
		mgr, err := cgroup2.Load(m.paths[""])
		if err != nil {
			return fmt.Errorf("update cgroup: %w", err)
		}
		if err := mgr.Update(v2Resources(withPeriod(res, filepath.Join(mountRoot, m.paths[""])))); err != nil {
			return fmt.Errorf("update cgroup: %w", err)
		}
		if err := m.applyUnified(res); err != nil {
			return err
		}
		return m.applyCPUExtras(res)
	}
	cg, err := cgroup1.Load(m.v1Path, cgroup1.WithHierarchy(v1Hierarchy))
	if err != nil {
		return fmt.Errorf("update cgroup: %w", err)
	}
	if err := cg.Update(res); err != nil {
		return fmt.Errorf("update cgroup: %w", err)
	}
	return m.applyCPUExtras(res)
}
