// Command containerd-shim-husk-v2 is husk's containerd shim v2: containerd starts it per
// container (or per pod) to run tasks through husk, or through runc or crun when asked.
//
// The runtime's cgroup-aware GOMAXPROCS reads cgroup files at every start and rechecks them
// in the background: husk's processes are short-lived or idle, so neither is worth it.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/husk-runtime/husk/internal/idmap"
	"github.com/husk-runtime/husk/internal/prefault"
	"github.com/husk-runtime/husk/shimapi"
)

var version = "0.1.0-dev"

func main() {
	idmap.Hold() // a helper for an idmapped overlay's user namespace: holds, runs nothing
	var f shimapi.Flags
	fs := flag.NewFlagSet("containerd-shim-husk-v2", flag.ContinueOnError)
	fs.StringVar(&f.Namespace, "namespace", "", "containerd namespace")
	fs.StringVar(&f.Address, "address", "", "containerd grpc address")
	fs.StringVar(&f.ID, "id", "", "container id")
	fs.StringVar(&f.Bundle, "bundle", "", "bundle path (delete)")
	fs.BoolVar(&f.Debug, "debug", false, "debug logging")
	fs.StringVar(&f.Socket, "socket", "", "serve on this socket instead of fd 3")
	fs.String("publish-binary", "", "ignored: events go to TTRPC_ADDRESS")
	showVersion := fs.Bool("v", false, "print the version")
	info := fs.Bool("info", false, "print RuntimeInfo (protobuf) for the options on stdin")
	fs.Bool("version", false, "print the version")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *showVersion || fs.Lookup("version").Value.String() == "true" {
		fmt.Printf("containerd-shim-husk-v2:\n  Version: %s\n", version)
		return
	}
	if *info {
		if err := shimapi.Info(version, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "containerd-shim-husk-v2:", err)
			os.Exit(1)
		}
		return
	}
	var err error
	switch action := fs.Arg(0); action {
	case "start":
		// start and delete are short-lived (containerd waits for them); the daemon is not:
		// populated pages would stay resident for the container's life.
		prefault.Heap(512 << 10)
		err = shimapi.Start(f, os.Stdout)
	case "delete":
		prefault.Heap(512 << 10)
		err = shimapi.Delete(f, os.Stdout)
	case "":
		err = shimapi.Serve(f)
	default:
		err = fmt.Errorf("unknown action %q", action)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "containerd-shim-husk-v2:", err)
		os.Exit(1)
	}
}
