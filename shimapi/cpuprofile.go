//go:build shimprofile

package shimapi

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"

	"golang.org/x/sys/unix"
)

// profileCPUUntilSIGUSR2 profiles the shim's CPU into dir/shim-<pid>.pprof from its start
// until it gets SIGUSR2, when HUSK_SHIM_CPUPROFILE names dir, and then writes its heap profile
// (in-use memory) to dir/shim-<pid>.heap: how make bench-node's figures are explained (go tool
// pprof). Only in a shim built with -tags shimprofile: runtime/pprof
// adds 140 KB to the shim, which stays resident for a container's life.
func profileCPUUntilSIGUSR2() {
	dir := os.Getenv("HUSK_SHIM_CPUPROFILE")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("shim-%d.pprof", os.Getpid())))
	if err != nil {
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGUSR2)
	go func() {
		<-sigc
		pprof.StopCPUProfile()
		f.Close()
		if h, err := os.Create(filepath.Join(dir, fmt.Sprintf("shim-%d.heap", os.Getpid()))); err == nil {
			pprof.Lookup("heap").WriteTo(h, 0)
			h.Close()
		}
	}()
}
