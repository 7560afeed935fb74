package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// countMounts counts the host's mounts at or below dirs, or whose mount point names one of
// marks: what the test's own containers could leave (other tests' containers and daemons mount
// and unmount on the same machine meanwhile).
func countMounts(t testing.TB, dirs []string, marks ...string) int {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mine := false
		for _, d := range dirs {
			mine = mine || f[4] == d || strings.HasPrefix(f[4], d+"/")
		}
		for _, m := range marks {
			mine = mine || strings.Contains(f[4], m)
		}
		if mine {
			n++
		}
	}
	return n
}

// zombies counts zombie children of this process: what a runtime could leave for its caller.
func zombies(t testing.TB) int {
	n := 0
	me := fmt.Sprintf(" %d ", os.Getpid())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i > 0 && strings.HasPrefix(s[i+1:], " Z") && strings.HasPrefix(s[i+3:], me) {
			n++
		}
	}
	return n
}

// TestNoLeaksOverManyCycles runs 200 create/start/wait/delete cycles and checks that nothing
// accumulates on the host: mounts, cgroups, state, zombies, fds of the caller.
func TestNoLeaksOverManyCycles(t *testing.T) {
	cycles := 200
	if testing.Short() {
		cycles = 20
	}
	b := newBundle(t, "true")
	b.write(t)
	prefix := uniqueID(t)
	mine := func() int { return countMounts(t, []string{b.dir, b.root}, prefix) }
	mounts, zomb, inits := mine(), zombies(t), huskInits(t)
	fds, _ := os.ReadDir("/proc/self/fd")
	for i := 0; i < cycles; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		b.must(t, "create", id)
		b.must(t, "start", id)
		b.waitStatus(t, id, "stopped")
		b.must(t, "delete", id)
		assertClean(t, b, id)
	}
	if got := mine(); got != mounts {
		t.Errorf("mounts: %d before, %d after", mounts, got)
	}
	if left := newInits(t, inits, prefix); len(left) > 0 {
		t.Errorf("husk init processes left: %v", left)
	}
	if got := zombies(t); got > zomb {
		t.Errorf("zombies: %d before, %d after", zomb, got)
	}
	if after, _ := os.ReadDir("/proc/self/fd"); len(after) != len(fds) {
		t.Errorf("fds: %d before, %d after", len(fds), len(after))
	}
	if entries, _ := os.ReadDir(b.root); len(entries) != 0 {
		t.Errorf("state root not empty: %v", entries)
	}
}
