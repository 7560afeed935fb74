package shimapi

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	eventstypes "github.com/containerd/containerd/api/events"
	"golang.org/x/sys/unix"
)

// oomWatch follows a container's OOM kills through its memory cgroup's oom_kill counter. On
// cgroup v1 an eventfd on memory.oom_control wakes a goroutine when the kernel reports an OOM;
// the counter is also read before an init's exit is published, so TaskOOM always comes first.
type oomWatch struct {
	counterFile string // memory.oom_control (v1) or memory.events (v2)
	seen        uint64
	efd         int
}

func newOOMWatch(pid int) *oomWatch {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var w *oomWatch
		switch {
		case parts[1] == "" && fileExists("/sys/fs/cgroup/cgroup.controllers"):
			w = &oomWatch{counterFile: filepath.Join("/sys/fs/cgroup", parts[2], "memory.events"), efd: -1}
		case hasController(parts[1], "memory"):
			dir := filepath.Join("/sys/fs/cgroup/memory", parts[2])
			w = &oomWatch{counterFile: filepath.Join(dir, "memory.oom_control"), efd: -1}
			w.efd = registerOOMEventfd(dir)
		}
		if w != nil && fileExists(w.counterFile) {
			w.seen = w.count()
			return w
		}
	}
	return nil
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func registerOOMEventfd(dir string) int {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return -1
	}
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		unix.Close(efd)
		return -1
	}
	defer ctl.Close()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(fmt.Sprintf("%d %d", efd, ctl.Fd())), 0); err != nil {
		unix.Close(efd)
		return -1
	}
	return efd
}

func (w *oomWatch) count() uint64 {
	f, err := os.Open(w.counterFile)
	if err != nil {
		return w.seen
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), " "); ok && k == "oom_kill" {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return w.seen
}

// checkOOM publishes TaskOOM if the container had OOM kills since the last check; the caller
// holds s.mu.
func (s *Service) checkOOM(c *container) {
	if c.oom == nil {
		return
	}
	if n := c.oom.count(); n > c.oom.seen {
		c.oom.seen = n
		s.events.publish(topicOOM, &eventstypes.TaskOOM{ContainerID: c.id})
	}
}

// watchOOM waits on the v1 eventfd; it ends when the cgroup goes away (the kernel signals the
// eventfd then too) or the container is deleted.
func (s *Service) watchOOM(c *container) {
	if c.oom == nil || c.oom.efd < 0 {
		return
	}
	efd := c.oom.efd
	go func() {
		defer unix.Close(efd)
		buf := make([]byte, 8)
		for {
			if _, err := unix.Read(efd, buf); err != nil && err != unix.EINTR {
				return
			}
			_ = binary.LittleEndian.Uint64(buf)
			s.mu.Lock()
			cur, ok := s.containers[c.id]
			if ok && cur == c {
				s.checkOOM(c)
			}
			s.mu.Unlock()
			if !ok || cur != c || !fileExists(c.oom.counterFile) {
				return
			}
		}
	}()
}
