package shimapi

import (
	"path/filepath"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// remove deletes a stopped (or never started) container c, whose init is p: its runtime state,
// its rootfs mounts and its stdio; then it is gone for the other calls. The caller holds c's
// operation lock, not s.mu.
func (s *Service) remove(c *container, p *process) (*taskapi.DeleteResponse, error) {
	if err := c.rt.forceDelete(c.id); err != nil {
		return nil, err
	}
	// A created container was killed by the delete: wait for its exit to come through.
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		s.mu.Lock()
		p.setExited(128+int(unix.SIGKILL), time.Now())
		s.mu.Unlock()
	}
	if c.mounted {
		unmountAll(filepath.Join(c.bundle, "rootfs"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.io != nil {
		p.io.Close()
	}
	c.gone = true
	c.oom.close()
	delete(s.containers, c.id)
	if s.byPid[p.pid] == p {
		// Only when its exit never came: the pid may be another container's by now.
		delete(s.byPid, p.pid)
	}
	s.events.publish(topicDelete, &eventstypes.TaskDelete{
		ContainerID: c.id, ID: c.id, Pid: uint32(p.pid), ExitStatus: uint32(p.exitCode), ExitedAt: timestamppb.New(p.exitedAt),
	})
	return &taskapi.DeleteResponse{Pid: uint32(p.pid), ExitStatus: uint32(p.exitCode), ExitedAt: timestamppb.New(p.exitedAt)}, nil
}
