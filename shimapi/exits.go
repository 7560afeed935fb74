package shimapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// heldTTL is how long an exit of a pid nobody tracks is kept for a runtime command still
// running (one that started the process but has not returned its pid yet). Runtime commands
// take milliseconds; a pod's shim lives for weeks and reaps loggers and probes all along.
const heldTTL = time.Minute

// track registers a process's pid; since is when the runtime command that started it began.
// An exit held for that pid applies only if it came after since, within that command's window:
// an older one is of an earlier process that had the same pid (as containerd's runc shim
// subscribes to exits for the window of a start, not for all time).
func (s *Service) track(p *process, since time.Time) {
	if e, ok := s.held[p.pid]; ok {
		delete(s.held, p.pid)
		if !e.at.Before(since) {
			s.handleExit(p, e)
			return
		}
	}
	s.byPid[p.pid] = p
}

// exitLoop is the one place where exits meet processes.
func (s *Service) exitLoop() {
	for {
		exits := s.reaper.others()
		s.mu.Lock()
		s.handleExits(exits, time.Now())
		s.mu.Unlock()
	}
}

// handleExits applies reaped exits to the processes they belong to and holds the others for
// the runtime command that may still report their pid; the caller holds s.mu.
func (s *Service) handleExits(exits []exit, now time.Time) {
	for _, e := range exits {
		if p, ok := s.byPid[e.pid]; ok {
			delete(s.byPid, e.pid)
			s.handleExit(p, e)
			continue
		}
		// Not (yet) known: an exec whose pid file is not read yet, or a logger.
		s.held[e.pid] = e
	}
	for pid, h := range s.held {
		if now.Sub(h.at) > heldTTL {
			delete(s.held, pid)
		}
	}
}

// handleExit applies one exit; the caller holds s.mu. An init's exit is made final (and
// published) only after every exec of its container has exited, as containerd requires.
func (s *Service) handleExit(p *process, e exit) {
	c, ok := s.containers[p.id]
	if !ok {
		p.setExited(e.status, e.at)
		return
	}
	if p.execID != "" {
		p.setExited(e.status, e.at)
		s.publishExit(p)
		if c.initExit != nil && !c.execsRunning() {
			s.finishInit(c, *c.initExit)
		}
		return
	}
	if c.killAllOnExit && c.cg != nil {
		// Before the exit is published: containerd takes the task for gone once it is.
		_ = c.cg.Signal(unix.SIGKILL)
	}
	if c.execsRunning() {
		c.initExit = &e
		// Without a pid namespace execs outlive the init; containerd expects them gone.
		for _, x := range c.execs {
			if x.pid > 0 && !x.exited() {
				unix.Kill(x.pid, unix.SIGKILL)
			}
		}
		return
	}
	s.finishInit(c, e)
}

// sharesPidNamespace reports whether the bundle's container has no pid namespace of its own
// (it names none, or joins one by path), as containerd's runc.ShouldKillAllOnExit reads it.
func sharesPidNamespace(bundle string) bool {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false
	}
	var cfg struct {
		Linux *struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	}
	if json.Unmarshal(data, &cfg) != nil || cfg.Linux == nil {
		return false
	}
	for _, ns := range cfg.Linux.Namespaces {
		if ns.Type == "pid" && ns.Path == "" {
			return false
		}
	}
	return true
}

// execsRunning reports whether an exec of the container runs or is being started: the init's
// exit waits for both, as the runc shim's does (containerd issue 10589).
func (c *container) execsRunning() bool {
	for _, x := range c.execs {
		if x.starting || (x.pid > 0 && !x.exited()) {
			return true
		}
	}
	return false
}

func (s *Service) finishInit(c *container, e exit) {
	c.initExit = nil
	s.checkOOM(c, e.status == 128+int(unix.SIGKILL), e.at) // an OOM kill is reported before the exit it caused
	c.init.setExited(e.status, e.at)
	s.publishExit(c.init)
}

func (s *Service) publishExit(p *process) {
	id := p.execID
	if id == "" {
		id = p.id
	}
	s.events.publish(topicExit, &eventstypes.TaskExit{
		ContainerID: p.id, ID: id, Pid: uint32(p.pid), ExitStatus: uint32(p.exitCode),
		ExitedAt: timestamppb.New(p.exitedAt),
	})
}
