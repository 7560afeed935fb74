package shimapi

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// idleTrimmer trims the shim's memory once requests have stopped for a few seconds, and every
// couple of minutes regardless: the Go runtime forces a GC every two minutes, and its walk over
// the heap and the function tables faults pages back in. Timers, not a ticker: an idle shim
// wakes up once per period, not every second.
type idleTrimmer struct {
	quiet *time.Timer
}

const (
	trimQuiet = 3 * time.Second
	trimEvery = 125 * time.Second // just after each forced GC
)

func newIdleTrimmer() *idleTrimmer {
	t := &idleTrimmer{quiet: time.AfterFunc(trimQuiet, trimMemory)}
	var periodic func()
	periodic = func() {
		trimMemory()
		time.AfterFunc(trimEvery, periodic)
	}
	time.AfterFunc(trimEvery, periodic)
	return t
}

// touch notes a request: the quiet period starts again.
func (t *idleTrimmer) touch() {
	if t != nil {
		t.quiet.Reset(trimQuiet)
	}
}

// trimMemory gives back what an idle shim holds but does not use: free heap pages, and the
// pages of its own binary that start-up touched (protobuf descriptors, function tables). They
// stay in the page cache, shared by every shim, so the next request faults them back cheaply.
func trimMemory() {
	debug.FreeOSMemory()
	// The binary is matched by inode, not path: after an upgrade replaced the file, the path in
	// /proc/self/maps gains " (deleted)" and the shim still runs the old inode.
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return
	}
	ino := strconv.FormatUint(st.Ino, 10)
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	var ranges [][2]uintptr
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || fields[4] != ino || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && end > start {
			ranges = append(ranges, [2]uintptr{uintptr(start), uintptr(end - start)})
		}
	}
	f.Close()
	// Last, with nothing but raw syscalls after it, so the trim does not fault back in the
	// code it just dropped. Read-only private file mappings (text, rodata) were never written:
	// MADV_DONTNEED only unmaps their pages, which stay in the page cache.
	for _, r := range ranges {
		unix.Syscall(unix.SYS_MADVISE, r[0], r[1], unix.MADV_DONTNEED)
	}
}
