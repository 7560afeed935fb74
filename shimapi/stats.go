package shimapi

import (
	"context"
	"fmt"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/typeurl/v2"
)

// Stats reads the container's cgroup directly (as the runc shim does) and returns containerd's
// cgroups v1 or v2 Metrics, as `ctr task metrics` and crictl expect.
func (s *Service) Stats(ctx context.Context, r *taskapi.StatsRequest) (*taskapi.StatsResponse, error) {
	s.mu.Lock()
	c, err := s.get(r.ID)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	pid, exited := c.init.pid, c.init.exited()
	s.mu.Unlock()
	if exited {
		return nil, errState("container %s has stopped", r.ID)
	}
	var metrics any
	if cgroups.Mode() == cgroups.Unified {
		path, err := cgroup2.PidGroupPath(pid)
		if err != nil {
			return nil, toStatus(fmt.Errorf("cgroup of %d: %w", pid, err))
		}
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil, toStatus(err)
		}
		if metrics, err = m.Stat(); err != nil {
			return nil, toStatus(err)
		}
	} else {
		cg, err := cgroup1.Load(cgroup1.PidPath(pid))
		if err != nil {
			return nil, toStatus(fmt.Errorf("cgroup of %d: %w", pid, err))
		}
		if metrics, err = cg.Stat(cgroup1.IgnoreNotExist); err != nil {
			return nil, toStatus(err)
		}
	}
	a, err := typeurl.MarshalAnyToProto(metrics)
	if err != nil {
		return nil, toStatus(err)
	}
	return &taskapi.StatsResponse{Stats: a}, nil
}
