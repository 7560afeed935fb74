package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/husk-runtime/husk/libcontainer"
)

var updateCommand = cli.Command{
	Name:      "update",
	Usage:     "change the resource limits of a running container",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		cli.StringFlag{Name: "resources, r", Usage: "LinuxResources JSON file, or - for stdin"},
		cli.StringFlag{Name: "memory", Usage: "memory limit in bytes"},
		cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of processes"},
		cli.Uint64Flag{Name: "cpu-shares", Usage: "CPU shares"},
		cli.Int64Flag{Name: "cpu-quota", Usage: "CPU CFS quota"},
		cli.Uint64Flag{Name: "cpu-period", Usage: "CPU CFS period"},
		cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to use"},
		cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use"},
	},
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		var res rspec.LinuxResources
		if path := c.String("resources"); path != "" {
			var r io.Reader = os.Stdin
			if path != "-" {
				f, err := os.Open(path)
				if err != nil {
					return fmt.Errorf("update --resources: %w", err)
				}
				defer f.Close()
				r = f
			}
			if err := json.NewDecoder(r).Decode(&res); err != nil {
				return fmt.Errorf("update --resources: invalid JSON: %w", err)
			}
		}
		if c.IsSet("memory") {
			var v int64
			if _, err := fmt.Sscan(c.String("memory"), &v); err != nil {
				return fmt.Errorf("update --memory %q: not a number of bytes", c.String("memory"))
			}
			res.Memory = &rspec.LinuxMemory{Limit: &v}
		}
		if c.IsSet("pids-limit") {
			v := c.Int64("pids-limit")
			res.Pids = &rspec.LinuxPids{Limit: &v}
		}
		if c.IsSet("cpu-shares") || c.IsSet("cpu-quota") || c.IsSet("cpu-period") || c.IsSet("cpuset-cpus") || c.IsSet("cpuset-mems") {
			if res.CPU == nil {
				res.CPU = &rspec.LinuxCPU{}
			}
			if c.IsSet("cpu-shares") {
				v := c.Uint64("cpu-shares")
				res.CPU.Shares = &v
			}
			if c.IsSet("cpu-quota") {
				v := c.Int64("cpu-quota")
				res.CPU.Quota = &v
			}
			if c.IsSet("cpu-period") {
				v := c.Uint64("cpu-period")
				res.CPU.Period = &v
			}
			res.CPU.Cpus = c.String("cpuset-cpus")
			res.CPU.Mems = c.String("cpuset-mems")
		}
		return withContainer(c, func(ct *libcontainer.Container) error {
			if st := ct.Status(); st == libcontainer.Stopped {
				return fmt.Errorf("container %s: cannot update a stopped container", ct.ID())
			}
			return ct.Cgroup().Update(&res)
		})
	},
}

var eventsCommand = cli.Command{
	Name:      "events",
	Usage:     "report container events and statistics (not implemented yet)",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		cli.BoolFlag{Name: "stats", Usage: "print one stats record and exit"},
		cli.DurationFlag{Name: "interval", Usage: "stats interval"},
	},
	Action: func(c *cli.Context) error {
		return errors.New("events: not implemented yet (tracked in the cgroups issue)")
	},
}
