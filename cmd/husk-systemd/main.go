// Command husk-systemd carries out husk's systemd cgroup driver over D-Bus: husk starts it,
// beside its own binary, only under --systemd-cgroup, with a systemd.Request as JSON on its
// standard input. It writes the unit as it is afterwards to its standard output, or one error
// line to its standard error and exits 1. Kept out of husk so that the D-Bus libraries cost
// nothing to the husk processes a container's life runs without systemd.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/husk-runtime/husk/libcontainer/cgroups/systemd"
	"github.com/husk-runtime/husk/libcontainer/cgroups/systemd/sdbus"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	var req systemd.Request
	if err := json.NewDecoder(io.LimitReader(in, 1<<20)).Decode(&req); err != nil {
		return fmt.Errorf("%s: reading the request: %w", systemd.HelperName, err)
	}
	if req.Unit == nil || req.Unit.Name == "" {
		return fmt.Errorf("%s: the request names no unit", systemd.HelperName)
	}
	var err error
	switch req.Op {
	case "start":
		err = sdbus.Start(req.Unit, req.Pid, req.Resources)
	case "set":
		err = sdbus.Set(req.Unit, req.Resources)
	case "stop":
		err = sdbus.Stop(req.Unit)
	default:
		err = fmt.Errorf("%s: unknown operation %q", systemd.HelperName, req.Op)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(req.Unit)
}
