package shimapi

import (
	"sync"
	"testing"
	"time"
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
	w.onWake(1)
	if got := w.count(); got != 1 {
		t.Fatalf("OOM kills seen after the cgroup went: %d, want 1", got)
	}
}

// Without an invocation (a container at its memory.max or memory.high), a wake reads once.
func TestOOMWatchDoesNotPollWithoutAnInvocation(t *testing.T) {
	s := &scriptedCounters{steps: [][2]uint64{{0, 0}, {0, 0}, {0, 0}, {0, 0}}}
	w := &oomWatch{read: s.read, efd: -1}
	w.seen = w.count()
	w.onWake(1)
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
	w.onWake(1)
	if got := w.count(); got != 1 {
		t.Fatalf("OOM kills seen after a v1 wake: %d, want 1", got)
	}
}

// scriptedParent plays the parent's oom_kill count: reads return the steps in order, the last
// one from then on.
type scriptedParent struct {
	mu    sync.Mutex
	steps []uint64
	reads int
}

func (s *scriptedParent) read() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(s.reads, len(s.steps)-1)
	s.reads++
	return s.steps[i], true
}

// A systemd scope's cgroup goes with its last process, often before the kill that emptied it
// is read (seen in the systemd guest: a wake that found the memcg at its limit, then nothing
// left to read). On cgroup v2 the parent's count includes the container's: a rise since the
// container's own count was last read, shortly before its init died of SIGKILL, is its kill.
func TestOOMWatchInfersAKillItsGoneCgroupTookAlong(t *testing.T) {
	exit := time.Now().Add(time.Second)
	for _, c := range []struct {
		name   string
		parent []uint64
		exitAt time.Time
		want   uint64
	}{
		{"the parent's count rose", []uint64{3, 3, 4}, exit, 1},
		{"the parent's count did not rise (killed, but not by the OOM killer)", []uint64{3, 3, 3}, exit, 0},
		{"the container's own count was last read long before the exit", []uint64{3, 3, 4}, exit.Add(inferWindow), 0},
	} {
		own := &scriptedCounters{steps: [][2]uint64{{0, 0}, {0, 0}}} // at create; at a wake (memory.max reached); then gone
		parent := &scriptedParent{steps: c.parent}
		w := &oomWatch{read: own.read, readParent: parent.read, efd: -1}
		w.seen = w.count()
		w.onWake(1)
		if got := w.count(); got != 0 {
			t.Fatalf("%s: own count %d before the cgroup went, want 0", c.name, got)
		}
		if got := w.killsAfterGone(c.exitAt); got != c.want {
			t.Errorf("%s: inferred %d kills, want %d", c.name, got, c.want)
		}
	}
	// While the container's cgroup is there, its own count is the answer.
	own := &scriptedCounters{steps: [][2]uint64{{0, 0}, {0, 0}, {0, 0}}}
	w := &oomWatch{read: own.read, readParent: (&scriptedParent{steps: []uint64{3, 4}}).read, efd: -1}
	w.seen = w.count()
	if got := w.killsAfterGone(time.Now()); got != 0 {
		t.Errorf("inferred %d kills of a container whose cgroup is still there, want 0", got)
	}
}

// cgroup v1 counts kills per cgroup only: a scope gone before its kill was counted leaves no
// parent's count to read. Its eventfd fired as the cgroup entered OOM (the wake found it
// there): with no kill counted after that, the init's SIGKILL shortly after was the OOM kill.
func TestOOMWatchInfersACgroupV1KillFromItsInvocation(t *testing.T) {
	for _, c := range []struct {
		name   string
		steps  [][2]uint64
		exitAt time.Time
		want   uint64
	}{
		{"gone before the kill was counted", [][2]uint64{{0, 0}, {0, 0}}, time.Now().Add(time.Second), 1},
		{"the kill was counted (and reported)", [][2]uint64{{0, 0}, {0, 0}, {0, 1}}, time.Now().Add(time.Second), 0},
		{"the invocation was long before the exit", [][2]uint64{{0, 0}, {0, 0}}, time.Now().Add(inferWindow + time.Second), 0},
		{"no invocation: the wake found the cgroup gone (its removal signals the eventfd too)", [][2]uint64{{0, 0}}, time.Now().Add(time.Second), 0},
	} {
		own := &scriptedCounters{steps: c.steps}
		w := &oomWatch{read: own.read, efd: -1, v1: true}
		w.seen = w.count()
		w.onWake(1)
		if got := w.killsAfterGone(c.exitAt); got != c.want {
			t.Errorf("%s: inferred %d kills, want %d", c.name, got, c.want)
		}
	}
}

// On cgroup v2 the parent's count decides: an invocation the kill of which never raised it
// was no kill (the OOM killer found nothing, or the memory was freed meanwhile).
func TestOOMWatchTrustsTheParentOverAnInvocation(t *testing.T) {
	own := &scriptedCounters{steps: [][2]uint64{{0, 0}, {1, 0}}} // at create; a wake: invoked; then gone
	w := &oomWatch{read: own.read, readParent: (&scriptedParent{steps: []uint64{3}}).read, efd: -1}
	w.seen = w.count()
	w.onWake(1)
	if got := w.killsAfterGone(time.Now()); got != 0 {
		t.Errorf("inferred %d kills with no rise of the parent's count, want 0", got)
	}
}
