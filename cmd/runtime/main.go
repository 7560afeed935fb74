// Command husk is a runc-compatible OCI runtime.
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
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	_ "github.com/husk-runtime/husk/internal/prefault/early"
)

// Set by the Makefile.
var (
	version = "0.1.0-dev"
	commit  = "unknown"
)

func main() {
	app := cli.NewApp()
	app.Name = "husk"
	app.Usage = "a fast, runc-compatible OCI container runtime"
	app.Version = version
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Printf("husk version %s\ncommit: %s\nspec: %s\ngo: %s\n", version, commit, rspec.Version, runtime.Version())
	}
	root := "/run/husk"
	if os.Geteuid() != 0 {
		if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" {
			root = xdg + "/husk"
		}
	}
	app.Flags = []cli.Flag{
		cli.StringFlag{Name: "root", Value: root, Usage: "directory for container state"},
		cli.StringFlag{Name: "log", Usage: "log file (default stderr)"},
		cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
		cli.BoolFlag{Name: "debug", Usage: "log debug messages"},
		cli.BoolFlag{Name: "systemd-cgroup", Usage: "use systemd to manage cgroups (not supported yet)"},
		cli.StringFlag{Name: "rootless", Value: "auto", Usage: "ignore cgroup permission errors (true, false or auto)"},
		cli.StringFlag{Name: "criu", Hidden: true},
	}
	app.Before = func(c *cli.Context) error {
		if err := setupLog(c.GlobalString("log"), c.GlobalString("log-format"), c.GlobalBool("debug")); err != nil {
			return err
		}
		if c.GlobalBool("systemd-cgroup") {
			return fmt.Errorf("--systemd-cgroup: the systemd cgroup driver is not supported yet; use cgroupfs paths")
		}
		return nil
	}
	app.Commands = []cli.Command{
		createCommand, startCommand, runCommand, stateCommand, killCommand, deleteCommand,
		listCommand, execCommand, pauseCommand, resumeCommand, psCommand, specCommand,
		featuresCommand, eventsCommand, updateCommand,
	}
	app.CommandNotFound = func(c *cli.Context, cmd string) {
		fatal(fmt.Errorf("unknown command %q", cmd))
	}
	if err := app.Run(os.Args); err != nil {
		fatal(err)
	}
}

// fatal reports err on one line (to stderr and, when set, the json log that containerd's shim
// reads the last error from) and exits 1.
func fatal(err error) {
	msg := strings.TrimSpace(err.Error())
	logError(msg)
	fmt.Fprintln(os.Stderr, "husk: "+msg)
	os.Exit(1)
}
