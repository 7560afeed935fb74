package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/husk-runtime/husk/libcontainer"
	"github.com/husk-runtime/husk/specs"
)

var updateCommand = cli.Command{
	Name:      "update",
	Usage:     "change the resource limits of a running container",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		cli.StringFlag{Name: "resources, r", Usage: "LinuxResources JSON file, or - for stdin"},
		cli.StringFlag{Name: "memory", Usage: "memory limit in bytes"},
		cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of processes"},
		cli.Uint64Flag{Name: "cpu-share, cpu-shares", Usage: "CPU shares (relative weight)"},
		cli.Int64Flag{Name: "cpu-quota", Usage: "CPU CFS quota"},
		cli.Uint64Flag{Name: "cpu-period", Usage: "CPU CFS period"},
		cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to use"},
		cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use"},
		cli.Int64Flag{Name: "cpu-rt-period", Usage: "realtime period (microseconds)"},
		cli.Int64Flag{Name: "cpu-rt-runtime", Usage: "realtime runtime (microseconds)"},
		cli.Uint64Flag{Name: "cpu-burst", Usage: "CPU CFS hardcap burst limit (in usecs): cpu time allowed to accumulate for bursts in a period"},
		cli.Int64Flag{Name: "cpu-idle", Usage: "SCHED_IDLE for the cgroup: 0 default behaviour, 1 SCHED_IDLE"},
		cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit in bytes"},
		cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap limit in bytes (-1: unlimited)"},
		cli.StringFlag{Name: "kernel-memory", Hidden: true, Usage: "obsolete, ignored with a warning (as in runc)"},
		cli.StringFlag{Name: "kernel-memory-tcp", Hidden: true, Usage: "obsolete, ignored with a warning (as in runc)"},
		cli.StringFlag{Name: "l3-cache-schema", Usage: "Intel RDT L3 cache schema (refused: no RDT support)"},
		cli.StringFlag{Name: "mem-bw-schema", Usage: "Intel RDT memory bandwidth schema (refused: no RDT support)"},
		cli.UintFlag{Name: "blkio-weight", Usage: "block IO weight (10-1000)"},
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
			data, err := specs.ReadAllLimited(r, specs.MaxProcessSize, "update --resources")
			if err != nil {
				return err
			}
			decoded, err := libcontainer.DecodeResources(data)
			if err != nil {
				return err
			}
			res = *decoded
		}
		for _, f := range []string{"l3-cache-schema", "mem-bw-schema"} {
			if c.IsSet(f) {
				return fmt.Errorf("update --%s: Intel RDT is not supported by husk", f)
			}
		}
		for _, f := range []string{"kernel-memory", "kernel-memory-tcp"} {
			if c.IsSet(f) {
				logWarn("update --%s: kernel memory settings are ignored and will be removed (as in runc)", f)
			}
		}
		for _, f := range []struct {
			name string
			set  func(v int64)
		}{
			{"memory", func(v int64) { memory(&res).Limit = &v }},
			{"memory-reservation", func(v int64) { memory(&res).Reservation = &v }},
			{"memory-swap", func(v int64) { memory(&res).Swap = &v }},
		} {
			if c.IsSet(f.name) {
				v, err := parseBytes(c.String(f.name))
				if err != nil {
					return fmt.Errorf("update --%s %q: %w", f.name, c.String(f.name), err)
				}
				f.set(v)
			}
		}
		if c.IsSet("blkio-weight") {
			w := c.Uint("blkio-weight")
			if w < 10 || w > 1000 {
				return fmt.Errorf("update --blkio-weight %d: want 10 to 1000", w)
			}
			w16 := uint16(w)
			res.BlockIO = &rspec.LinuxBlockIO{Weight: &w16}
		}
		if c.IsSet("pids-limit") {
			v := c.Int64("pids-limit")
			if v < -1 {
				return fmt.Errorf("update --pids-limit %d: want a limit (0 means 1, as runc), or -1 for none", v)
			}
			res.Pids = &rspec.LinuxPids{Limit: &v}
		}
		if c.IsSet("cpu-share") || c.IsSet("cpu-quota") || c.IsSet("cpu-period") || c.IsSet("cpuset-cpus") || c.IsSet("cpuset-mems") || c.IsSet("cpu-rt-period") || c.IsSet("cpu-rt-runtime") || c.IsSet("cpu-burst") || c.IsSet("cpu-idle") {
			if res.CPU == nil {
				res.CPU = &rspec.LinuxCPU{}
			}
			if c.IsSet("cpu-share") {
				v := c.Uint64("cpu-share")
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
			if c.IsSet("cpu-rt-period") {
				v := uint64(c.Int64("cpu-rt-period"))
				res.CPU.RealtimePeriod = &v
			}
			if c.IsSet("cpu-rt-runtime") {
				v := c.Int64("cpu-rt-runtime")
				res.CPU.RealtimeRuntime = &v
			}
			if c.IsSet("cpu-burst") {
				v := c.Uint64("cpu-burst")
				res.CPU.Burst = &v
			}
			if c.IsSet("cpu-idle") {
				v := c.Int64("cpu-idle")
				if v != 0 && v != 1 {
					return fmt.Errorf("update --cpu-idle %d: want 0 or 1", v)
				}
				res.CPU.Idle = &v
			}
		}
		return withContainer(c, func(ct *libcontainer.Container) error { return ct.Update(&res) })
	},
}

// parseBytes reads a size as runc's update does (docker's RAMInBytes): a number with an
// optional binary suffix, k, m, g, t or p, optionally followed by b or ib ("50M", "1.5g",
// "512kib"), or -1 for no limit.
func parseBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	mult := 1.0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("kmgtp", t[n-1]); i >= 0 {
			mult = float64(int64(1) << (10 * (i + 1)))
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*mult > float64(1<<62) {
		return 0, errors.New("want a size in bytes (with an optional k, m, g, t or p suffix), or -1 for no limit")
	}
	return int64(v * mult), nil
}

func memory(r *rspec.LinuxResources) *rspec.LinuxMemory {
	if r.Memory == nil {
		r.Memory = &rspec.LinuxMemory{}
	}
	return r.Memory
}

var eventsCommand = cli.Command{
	Name:      "events",
	Usage:     "print container statistics and OOM events as JSON lines, as runc does",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		cli.BoolFlag{Name: "stats", Usage: "print one stats record and exit"},
		cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "stats interval"},
	},
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		id := c.Args().First()
		root := c.GlobalString("root")
		interval := c.Duration("interval")
		if interval <= 0 {
			return fmt.Errorf("events: --interval must be positive")
		}
		enc := json.NewEncoder(os.Stdout)
		type event struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Data any    `json:"data,omitempty"`
		}
		var lastOOM uint64
		first := true
		nextStats := time.Now()
		for {
			ct, err := libcontainer.Load(root, id)
			if err != nil {
				return err
			}
			pid, cg := ct.Pid(), ct.Cgroup()
			ct.Close()
			// The counter outlives the processes (until delete): an OOM kill that ended the
			// container is still reported.
			if n, ok := cg.OOMKills(); ok {
				if !first && n > lastOOM {
					enc.Encode(event{Type: "oom", ID: id})
				}
				lastOOM = n
			}
			if pid == 0 {
				if first {
					return fmt.Errorf("container %s is not running", id)
				}
				return nil // the container is gone: so is its event stream
			}
			if time.Now().After(nextStats) {
				st, err := cg.Stats()
				if err != nil {
					enc.Encode(event{Type: "error", ID: id, Data: err.Error()})
				} else {
					enc.Encode(event{Type: "stats", ID: id, Data: st})
				}
				if c.Bool("stats") {
					return nil
				}
				nextStats = time.Now().Add(interval)
			}
			first = false
			time.Sleep(100 * time.Millisecond)
		}
	},
}
