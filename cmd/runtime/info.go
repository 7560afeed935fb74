package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli"

	"github.com/husk-runtime/husk/libcontainer"
	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/specs"
)

var specCommand = cli.Command{
	Name:  "spec",
	Usage: "write a default config.json",
	Flags: []cli.Flag{
		cli.StringFlag{Name: "bundle, b", Usage: "directory to write config.json to"},
		cli.BoolFlag{Name: "rootless", Usage: "a config for an unprivileged user"},
	},
	Action: func(c *cli.Context) error {
		s := specs.Default()
		if cgroups.HostMode() != cgroups.Unified {
			// As runc 1.1's spec: a cgroup namespace only on a pure cgroup v2 host.
			var nss []rspec.LinuxNamespace
			for _, ns := range s.Linux.Namespaces {
				if ns.Type != rspec.CgroupNamespace {
					nss = append(nss, ns)
				}
			}
			s.Linux.Namespaces = nss
		}
		if c.Bool("rootless") {
			specs.ToRootless(s, uint32(os.Geteuid()), uint32(os.Getegid()))
		}
		path := filepath.Join(c.String("bundle"), "config.json")
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("spec: %s already exists; remove it first", path)
		}
		b, err := json.MarshalIndent(s, "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(b, '\n'), 0o644)
	},
}

var featuresCommand = cli.Command{
	Name:  "features",
	Usage: "print the runtime-spec features husk supports, as JSON",
	Action: func(c *cli.Context) error {
		t := true
		f := false
		feat := features.Features{
			OCIVersionMin: "1.0.0",
			OCIVersionMax: rspec.Version,
			Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
			MountOptions:  specs.KnownMountOptions(),
			Linux: &features.Linux{
				Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
				Capabilities: specs.AllCapabilities(),
				Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &t, SystemdUser: &f, Rdma: &f},
				Seccomp: &features.Seccomp{
					Enabled:   &t,
					Actions:   []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"},
					Operators: []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
					Archs:     []string{"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"},
					// Every known flag is applied (TSYNC is a no-op, as in runc).
					KnownFlags:     specs.SeccompFlagNames(),
					SupportedFlags: specs.SeccompFlagNames(),
				},
				Apparmor:        &features.Apparmor{Enabled: &t},
				Selinux:         &features.Selinux{Enabled: &t},
				IntelRdt:        &features.IntelRdt{Enabled: &f},
				MemoryPolicy:    &features.MemoryPolicy{Modes: specs.MemoryPolicyModes(), Flags: specs.MemoryPolicyFlags()},
				MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &t}},
				NetDevices:      &features.NetDevices{Enabled: &t},
			},
			Annotations: map[string]string{
				"io.github.husk-runtime.husk.version": version,
				// runc's key: checkpoint/restore works here (husk-criu and CRIU 3.11+).
				"org.opencontainers.runc.checkpoint.enabled": strconv.FormatBool(checkpointUsable(c.GlobalString("criu"))),
			},
		}
		return printJSON(feat)
	},
}

var psCommand = cli.Command{
	Name:            "ps",
	Usage:           "list the processes of a container",
	ArgsUsage:       "<container-id> [ps options]",
	SkipArgReorder:  true,
	SkipFlagParsing: false,
	Flags:           []cli.Flag{cli.StringFlag{Name: "format, f", Value: "table", Usage: "table or json"}},
	Action: func(c *cli.Context) error {
		return withContainer(c, func(ct *libcontainer.Container) error {
			pids, err := ct.Cgroup().Pids()
			if err != nil {
				return fmt.Errorf("ps: %w", err)
			}
			if pids == nil {
				pids = []int{}
			}
			switch c.String("format") {
			case "json":
				return printJSONLine(pids)
			case "table":
			default:
				return fmt.Errorf("ps: unknown format %q (table or json)", c.String("format"))
			}
			args := c.Args().Tail()
			if len(args) == 0 {
				args = []string{"-ef"}
			}
			out, err := exec.Command("ps", args...).Output()
			if err != nil {
				return fmt.Errorf("ps %s: %w", strings.Join(args, " "), err)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			col := -1
			for i, h := range strings.Fields(lines[0]) {
				if h == "PID" {
					col = i
				}
			}
			if col < 0 {
				return errors.New("ps: the ps output has no PID column")
			}
			in := map[int]bool{}
			for _, p := range pids {
				in[p] = true
			}
			fmt.Println(lines[0])
			for _, l := range lines[1:] {
				fs := strings.Fields(l)
				if len(fs) > col {
					if p, err := strconv.Atoi(fs[col]); err == nil && in[p] {
						fmt.Println(l)
					}
				}
			}
			return nil
		})
	},
}

// checkpointUsable reports whether husk-criu is installed beside husk and CRIU is 3.11 or later
// (`criu --version`; whether the kernel lets it dump is for `criu check` to say).
func checkpointUsable(criuPath string) bool {
	self, err := os.Executable()
	if err != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(self), "husk-criu")); err != nil {
		return false
	}
	if criuPath == "" {
		criuPath = "criu"
	}
	out, err := exec.Command(criuPath, "--version").Output()
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Version:"); ok {
			var major, minor int
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d.%d", &major, &minor); err == nil {
				return major > 3 || major == 3 && minor >= 11
			}
		}
	}
	return false
}
