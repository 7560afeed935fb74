package shimapi

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
)

// oomWatch follows a container's OOM kills through its memory cgroup's oom_kill counter. An
// eventfd on memory.oom_control (cgroup v1) or inotify on memory.events (v2) wakes a goroutine
// when the kernel reports an OOM; the counter is also read before an init's exit is published,
// so TaskOOM always comes first.
type oomWatch struct {
	read        func() (invoked, kills uint64, ok bool) // the counters (cgroups.Manager.OOMEvents)
	readParent  func() (kills uint64, ok bool)          // cgroup v2: the parent's count, ours included
	parentBase  atomic.Uint64                           // the parent's count read just before ours, last time ours was there
	baseAt      atomic.Int64                            // when parentBase was read (unix ns), 0 for never
	invokedAt   atomic.Int64                            // when an OOM killer invocation was last seen (unix ns)
	killsAtInv  atomic.Uint64                           // the kill count read then
	counterFile string
	seen        uint64        // the count last reported; guarded by the service lock
	latest      atomic.Uint64 // the highest count read, by any goroutine
	invoked     atomic.Uint64 // cgroup v2: the highest "oom" (OOM killer invocations) read
	efd         int           // eventfd (v1) or inotify fd (v2) that wakes watchOOM, -1 for none
	file        *os.File      // efd once watchOOM has it: read there, drained by the exit (v1)
	v1          bool          // efd fires as the OOM starts, before the kill is counted
	// cgroup v1: the eventfd's signals read once the cgroup was gone. Each is an OOM notice,
	// or the one its removal sends: two or more mean an OOM the watch could not read in time.
	goneSignals atomic.Uint64
}

func newOOMWatch(cg *cgroups.Manager) *oomWatch {
	if cg == nil {
		return nil
	}
	file, v1 := cg.OOMCounter()
	if file == "" || !fileExists(file) {
		return nil
	}
	w := &oomWatch{read: cg.OOMEvents, counterFile: file, v1: v1}
	if _, ok := cg.ParentOOMKills(); ok {
		w.readParent = cg.ParentOOMKills
	}
	if v1 {
		w.efd = registerOOMEventfd(filepath.Dir(file))
	} else {
		w.efd = inotifyModify(file)
	}
	w.seen = w.count()
	return w
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func registerOOMEventfd(dir string) int {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
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

// inotifyModify returns a non-blocking inotify fd that wakes when file is modified: how
// cgroup v2 announces a change of memory.events.
func inotifyModify(file string) int {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return -1
	}
	if _, err := unix.InotifyAddWatch(fd, file, unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return -1
	}
	return fd
}

// count is the container's OOM kill count: read now, or the highest read before when the
// cgroup is gone (systemd removes an empty scope's cgroup as soon as its last process exits,
// which may be before the exit reaches the shim).
func (w *oomWatch) count() uint64 {
	w.sample()
	return max(w.latest.Load(), w.seen)
}

// sample reads the counters and keeps the highest values read; it needs no lock. It reports
// whether the OOM killer was invoked since the last sample, and whether the counters are
// still there.
func (w *oomWatch) sample() (invoked, present bool) {
	var parent uint64
	parentOK := false
	if w.readParent != nil {
		parent, parentOK = w.readParent() // first: a kill after it shows in our own count too
	}
	inv, n, ok := w.read()
	if !ok {
		return false, false
	}
	if parentOK {
		raise(&w.parentBase, parent)
		w.baseAt.Store(time.Now().UnixNano())
	}
	raise(&w.latest, n)
	return raise(&w.invoked, inv), true
}

// raise stores n in v if it is higher, and reports whether it was.
func raise(v *atomic.Uint64, n uint64) bool {
	for {
		old := v.Load()
		if n <= old {
			return false
		}
		if v.CompareAndSwap(old, n) {
			return true
		}
	}
}

// onWake reads the counters when the kernel has signalled and follows an OOM killer
// invocation to its kill (awaitKill). cgroup v1's eventfd fires only as the cgroup enters OOM,
// so each of its wakes is an invocation; cgroup v2 wakes on every memory.events change (a
// container at its memory.high too), and its "oom" count says which are.
func (w *oomWatch) onWake(signals uint64) {
	invoked, present := w.sample()
	if w.v1 {
		invoked = present // its eventfd also fires as the cgroup is removed: then nothing is left
		if !present {
			w.goneSignals.Add(signals)
		}
	}
	if invoked {
		w.killsAtInv.Store(w.latest.Load())
		w.invokedAt.Store(time.Now().UnixNano())
		w.awaitKill()
	}
}

// awaitKill follows an OOM killer invocation to its kill, which the kernel counts a moment
// later: cgroup v1 signals before the victim is chosen, and cgroup v2 tells of the kill no
// sooner than 10 ms after its last notice of memory.events (cgroup_file_notify's rate limit,
// which the "max" events before an OOM keep busy), by when the victim may be dead and a
// systemd scope's cgroup removed with its counters. So the counter is read every millisecond
// (every 10 on v1, whose kill takes longer) until it moves, for up to 50 reads.
func (w *oomWatch) awaitKill() {
	every := time.Millisecond
	if w.v1 {
		every = 10 * time.Millisecond
	}
	before := w.latest.Load()
	for i := 0; i < 50 && w.latest.Load() == before; i++ {
		time.Sleep(every)
		if _, present := w.sample(); !present {
			return // gone: what was read is all there is
		}
	}
}

// inferWindow bounds how long before an init's SIGKILL the shim must have read the
// container's own OOM counters (for a rise of its parent's count to be taken as the
// container's kill) or seen an OOM killer invocation in it (cgroup v1): the cgroup signals
// before an OOM kill there (memory.max reached; v1's OOM notice) and each signal is read at
// once, so a real OOM leaves a fresh reading; an older one would let a sibling's kill in the
// same pod, or an unrelated SIGKILL, pass for an OOM kill of this container.
const inferWindow = 5 * time.Second

// killsAfterGone infers the OOM kills of a container whose cgroup went before they were read.
// A systemd scope's cgroup is removed as soon as its last process exits, which an OOM kill
// makes happen within milliseconds, often before the kernel's (rate-limited) notice of the
// kill reaches the shim; containerd's CRI then cannot tell the OOM either (its own reading of
// the counters on an exit with 137 comes later still). It is called for an init that died of
// SIGKILL, as an OOM kill's victim (or the shell whose child was) does. On cgroup v2 the
// parent's count includes the container's, so a rise since the container's own counters were
// last read is the container's, when that reading is recent. Otherwise (cgroup v1, whose
// counts are per cgroup) an OOM killer invocation the shim saw in the container shortly
// before, with no kill counted after it, was the kill that emptied the cgroup.
func (w *oomWatch) killsAfterGone(exitAt time.Time) uint64 {
	recent := func(at int64) bool { return at != 0 && exitAt.Sub(time.Unix(0, at)) <= inferWindow }
	if _, _, present := w.read(); present {
		return 0 // its own count is exact
	}
	if w.readParent != nil {
		if !recent(w.baseAt.Load()) {
			return 0
		}
		if p, ok := w.readParent(); ok {
			return p - min(p, w.parentBase.Load()) // no rise: not the OOM killer's
		}
	}
	if recent(w.invokedAt.Load()) && w.latest.Load() == w.killsAtInv.Load() {
		return 1
	}
	if w.v1 && w.noticedAfterGone(removalWait) {
		return 1
	}
	return 0
}

// removalWait bounds how long an exit waits for a gone cgroup v1's removal notice, when one
// signal of its eventfd is not yet known to be an OOM's or the removal's.
const removalWait = 100 * time.Millisecond

// noticedAfterGone reports whether the eventfd of a gone cgroup v1 carried an OOM notice that
// the watch read too late to find the cgroup (a busy node: the scope went before the watch's
// goroutine ran). The notice comes before the kill and so before the init's exit: by the exit
// it is in the eventfd, read or not. The removal sends one signal too, a moment after the
// cgroup goes (the kernel's workqueue): one signal waits that long for a second, which makes
// one of them an OOM's; without it, none is taken for one (a plain SIGKILL must not pass for
// an OOM kill).
func (w *oomWatch) noticedAfterGone(wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		w.drain()
		n := w.goneSignals.Load()
		if n >= 2 {
			return true
		}
		if n == 0 || !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// drain adds what the eventfd holds now to goneSignals, without waiting: through Control,
// which the watch's pending read does not hold up (Read would, until a signal came), and which
// a closed file refuses (its number may be another file's by then).
func (w *oomWatch) drain() {
	if w.file == nil {
		return
	}
	rc, err := w.file.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		var b [8]byte
		if n, err := unix.Read(int(fd), b[:]); err == nil && n == len(b) {
			w.goneSignals.Add(binary.NativeEndian.Uint64(b[:]))
		}
	})
}

// close ends the watch (the container's delete): a cgroup v1 watch outlives its cgroup, to
// read the removal notice that tells an OOM's notice from it.
func (w *oomWatch) close() {
	if w != nil && w.file != nil {
		w.file.Close()
	}
}

// checkOOM publishes TaskOOM if the container had OOM kills since the last check; the caller
// holds s.mu. sigkill is the init's exit by SIGKILL at exitAt, after which kills the
// container's cgroup took with it may be inferred.
func (s *Service) checkOOM(c *container, sigkill bool, exitAt time.Time) {
	if c.oom == nil {
		return
	}
	n := c.oom.count()
	if n <= c.oom.seen && sigkill {
		n = c.oom.seen + c.oom.killsAfterGone(exitAt)
	}
	if n > c.oom.seen {
		c.oom.seen = n
		s.events.publish(topicOOM, &eventstypes.TaskOOM{ContainerID: c.id})
	}
}

// watchOOM waits on the eventfd or inotify fd; it ends when the cgroup goes away (the kernel
// signals then too) or the container is deleted. The fd is non-blocking, so the wait sits in
// the runtime's poller: no OS thread is parked per container.
func (s *Service) watchOOM(c *container) {
	if c.oom == nil || c.oom.efd < 0 {
		return
	}
	efd := os.NewFile(uintptr(c.oom.efd), "oom-eventfd")
	c.oom.file = efd
	go func() {
		defer efd.Close()
		buf := make([]byte, 4096) // room for an inotify event and its name
		for {
			n, err := efd.Read(buf)
			if err != nil {
				return
			}
			var signals uint64
			if c.oom.v1 && n == 8 {
				signals = binary.NativeEndian.Uint64(buf[:8]) // the eventfd's count
			}
			// Read (and follow an OOM to its kill) before waiting for the service lock: the
			// cgroup may not outlive the wait (see count).
			c.oom.onWake(signals)
			s.mu.Lock()
			cur, ok := s.containers[c.id]
			if ok && cur == c {
				s.checkOOM(c, false, time.Time{})
			}
			s.mu.Unlock()
			if !ok || cur != c {
				return
			}
			// A gone cgroup v1's watch reads on, until the delete closes it: its removal
			// notice is still to come (see noticedAfterGone).
			if !c.oom.v1 && !fileExists(c.oom.counterFile) {
				return
			}
		}
	}()
}
