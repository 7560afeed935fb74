// Command husk-init is the process husk starts inside a new container or exec: libcontainer's
// init side alone (libcontainer/goinit), built with cgo (its C constructor joins namespaces
// before the Go runtime starts, and sets up and execs a plain exec by itself). husk requires it
// beside its own binary; every create and exec starts one, so it must start fast.
//
// The runtime's cgroup-aware GOMAXPROCS reads cgroup files at every start and rechecks them
// in the background: husk's processes are short-lived or idle, so neither is worth it.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"fmt"
	"os"
	"runtime"

	_ "github.com/husk-runtime/husk/internal/prefault/early"
	"github.com/husk-runtime/husk/libcontainer/goinit"
	_ "github.com/husk-runtime/husk/libcontainer/nsenter"
)

func init() {
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
}

func main() {
	if !goinit.IsInit() {
		fmt.Fprintln(os.Stderr, "husk-init: started by husk only")
		os.Exit(2)
	}
	goinit.Init()
}
