// Command husk-init is the process husk starts inside a new container: the init side of
// libcontainer alone, built with the huskinit tag so none of the runtime's command line or cgroup
// libraries are linked. Every create and exec starts one, so it must start fast. husk uses it
// when it is installed beside husk, and runs `husk init` itself otherwise.
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

	"github.com/husk-runtime/husk/libcontainer"
	_ "github.com/husk-runtime/husk/libcontainer/nsenter"
)

func init() {
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
}

func main() {
	if !libcontainer.IsInit() {
		fmt.Fprintln(os.Stderr, "husk-init: started by husk only")
		os.Exit(2)
	}
	libcontainer.Init()
}
