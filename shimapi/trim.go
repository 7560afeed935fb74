package shimapi

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// trimWhenIdle trims once start-up is over, whenever requests have stopped for a while, and
// every couple of minutes regardless: the Go runtime forces a GC every two minutes, and its walk
// over the heap and the function tables faults pages back in. The shim then rests small for the
// container's whole life.
func trimWhenIdle(activity *atomic.Uint64) {
	const quiet = 3 * time.Second
	const every = 125 * time.Second // just after each forced GC
	time.Sleep(quiet)
	trimMemory()
	trimmedAt, trimmedWhen := activity.Load(), time.Now()
	last, lastChange := trimmedAt, time.Now()
	for range time.Tick(time.Second) {
		n := activity.Load()
		if n != last {
			last, lastChange = n, time.Now()
			continue
		}
		if time.Since(lastChange) >= quiet && (n != trimmedAt || time.Since(trimmedWhen) >= every) {
			trimMemory()
			trimmedAt, trimmedWhen = n, time.Now()
		}
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
