package libcontainer

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// startLocked runs f on a goroutine locked to a fresh OS thread that first unshares its fs
// attributes and joins the namespaces given; the thread is thrown away afterwards. For exec:
// the pid and time namespaces apply to children of the calling thread only, so the child
// started by f is born inside them. For the create fast path: f builds the rootfs inside the
// init's namespaces.
func startLocked(nsfds []*os.File, f func() error) error {
	if len(nsfds) == 0 {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		for _, ns := range nsfds {
			if err := unix.Setns(int(ns.Fd()), 0); err != nil {
				errc <- fmt.Errorf("join %s: %w", ns.Name(), err)
				return
			}
		}
		errc <- f()
	}()
	return <-errc
}

// debugf sends a debug line to a Debug option, if set.
func debugf(debug func(string), format string, args ...any) {
	if debug != nil {
		debug(fmt.Sprintf(format, args...))
	}
}

// onThrowawayThread runs f on a goroutine locked to an OS thread that dies with it, for
// changes to the calling thread (CPU affinity) that must not outlive f.
func onThrowawayThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		errc <- f()
	}()
	return <-errc
}
