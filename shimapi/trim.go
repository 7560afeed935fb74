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
// clean pages of its own binary that start-up touched (protobuf descriptors, function tables).
// MADV_PAGEOUT leaves alone pages that other shims map too, so on a node with many shims the
// shared text stays resident once for all of them; the next request faults in what it needs.
func trimMemory() {
	debug.FreeOSMemory()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT)
	}
}
