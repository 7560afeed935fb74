package shimapi

import (
	"context"
	"os"
	"path/filepath"
	"strconv"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Stats returns containerd's cgroups v1 or v2 Metrics of the container. The cgroup is read by
// `husk cgroup-metrics` (installed beside the shim), whatever runtime runs the container: the
// cgroup libraries and their protobuf types would otherwise double the resident shim's memory,
// and Stats is an occasional poll.
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
	helper := &runtimeClient{binary: huskHelper(), root: "/run/husk", logPath: filepath.Join(c.bundle, "log.json"), reaper: s.reaper}
	out, err := helper.run([3]*os.File{}, true, nil, "cgroup-metrics", strconv.Itoa(pid))
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "stats of container %s: %v", r.ID, err)
	}
	var a anypb.Any
	if err := proto.Unmarshal(out, &a); err != nil {
		return nil, toStatus(err)
	}
	return &taskapi.StatsResponse{Stats: &a}, nil
}

// huskHelper finds husk next to the shim binary, else on PATH.
func huskHelper() string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "husk")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "husk"
}
