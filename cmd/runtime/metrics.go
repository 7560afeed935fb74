package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/containerd/typeurl/v2"
	"github.com/urfave/cli"
	"google.golang.org/protobuf/proto"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
)

// cgroupMetricsCommand is the shim's helper for Stats: it prints the cgroup metrics of a pid as
// a marshalled protobuf Any, so the resident shim need not link the cgroups libraries.
var cgroupMetricsCommand = cli.Command{
	Name:      "cgroup-metrics",
	Usage:     "print the cgroup metrics of a process as a protobuf Any (for containerd-shim-husk-v2)",
	ArgsUsage: "<pid>",
	Hidden:    true,
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		pid, err := strconv.Atoi(c.Args().First())
		if err != nil || pid <= 0 {
			return fmt.Errorf("cgroup-metrics: invalid pid %q", c.Args().First())
		}
		m, err := cgroups.Metrics(pid)
		if err != nil {
			return err
		}
		a, err := typeurl.MarshalAnyToProto(m)
		if err != nil {
			return err
		}
		b, err := proto.Marshal(a)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	},
}
