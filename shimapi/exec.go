package shimapi

import (
	"encoding/json"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/types/task"
)

// withTerminal returns the process spec with its terminal field set to the request's, which
// decides (as in the runc shim): containerd's client asks for a terminal through the IO it
// sets up and may send a spec that says terminal false (the container's own process).
func withTerminal(spec []byte, terminal bool) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(spec, &fields); err != nil {
		return nil, err
	}
	fields["terminal"], _ = json.Marshal(terminal)
	return json.Marshal(fields)
}

// startExec opens an exec's stdio, runs it in c and tracks it; it returns its pid. The caller
// holds c's operation lock shared (exec starts of one container run side by side).
func (s *Service) startExec(c *container, p *process) (int, error) {
	pio, err := newProcIO(s.reaper, p.stdin, p.stdout, p.stderr, p.terminal, s.ns, c.id)
	if err != nil {
		return 0, err
	}
	if err := pio.chown(c.ioUID, c.ioGID); err != nil {
		pio.Close()
		return 0, err
	}
	started := time.Now()
	pid, err := c.rt.exec(c.id, p.spec, pio.consoleSocket(), pio.runtimeStdio())
	if err == nil {
		err = pio.started(s.consoleEpoller)
	}
	if err != nil {
		pio.Close()
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.io = pio
	p.pid = pid
	p.status = task.Status_RUNNING
	s.events.publish(topicExecStarted, &eventstypes.TaskExecStarted{ContainerID: c.id, ExecID: p.execID, Pid: uint32(pid)})
	s.track(p, started)
	return pid, nil
}
