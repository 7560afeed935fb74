package cgroups

import (
	"fmt"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// Metrics reads the cgroup metrics of the process pid in containerd's types (cgroups v1 or v2
// Metrics), as `ctr task metrics` and the CRI expect them.
func Metrics(pid int) (any, error) {
	if cgroups.Mode() == cgroups.Unified {
		path, err := cgroup2.PidGroupPath(pid)
		if err != nil {
			return nil, fmt.Errorf("cgroup of pid %d: %w", pid, err)
		}
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", path, err)
		}
		return m.Stat()
	}
	cg, err := cgroup1.Load(cgroup1.PidPath(pid), cgroup1.WithHierarchy(v1Hierarchy))
	if err != nil {
		return nil, fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	return cg.Stat(cgroup1.IgnoreNotExist)
}
