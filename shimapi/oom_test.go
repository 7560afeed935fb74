package shimapi

import (
	"sync"
	"testing"
)

// scriptedCounters plays memory.events as the kernel shows it around an OOM kill on cgroup
// v2: reads return the steps in order; past the last, the cgroup is gone.
type scriptedCounters struct {
	mu    sync.Mutex
	steps [][2]uint64 // invoked, kills
	reads int
}

func (s *scriptedCounters) read() (uint64, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reads >= len(s.steps) {
		return 0, 0, false
	}
	st := s.steps[s.reads]
	s.reads++
	return st[0], st[1], true
}

// The wake that shows an OOM invocation comes before the kill is counted; the kill's own
// notice may come too late (the cgroup is gone). The watch must still see the kill.
func TestOOMWatchFollowsAnInvocationToItsKill(t *testing.T) {
	s := &scriptedCounters{steps: [][2]uint64{
		{0, 0},         // the watch's first read, at create
		{1, 0},         // the wake: the OOM killer was invoked, nothing killed yet
		{1, 0}, {1, 0}, // a few ms later: still counting
		{1, 1}, // the kill
	}}
	w := &oomWatch{read: s.read, efd: -1}
	w.seen = w.count()
	w.onWake()
	if got := w.count(); got != 1 {
		t.Fatalf("OOM kills seen after the cgroup went: %d, want 1", got)
	}
}

// Without an invocation (a container at its memory.max or memory.high), a wake reads once.
func TestOOMWatchDoesNotPollWithoutAnInvocation(t *testing.T) {
	s := &scriptedCounters{steps: [][2]uint64{{0, 0}, {0, 0}, {0, 0}, {0, 0}}}
	w := &oomWatch{read: s.read, efd: -1}
	w.seen = w.count()
	w.onWake()
	if s.reads != 2 {
		t.Fatalf("%d reads for one wake without an OOM, want 1 (after the first at create)", s.reads-1)
	}
}

// cgroup v1 has no invocation count: its eventfd fires as the cgroup enters OOM, before the
// kill is counted, and that wake alone must be followed to the kill.
func TestOOMWatchFollowsACgroupV1WakeToItsKill(t *testing.T) {
	s := &scriptedCounters{steps: [][2]uint64{
		{0, 0},         // at create
		{0, 0},         // the wake: under OOM, nothing killed yet
		{0, 0}, {0, 1}, // the kill, a moment later
		{0, 1},
	}}
	w := &oomWatch{read: s.read, efd: -1, v1: true}
	w.seen = w.count()
	w.onWake()
	if got := w.count(); got != 1 {
		t.Fatalf("OOM kills seen after a v1 wake: %d, want 1", got)
	}
}
