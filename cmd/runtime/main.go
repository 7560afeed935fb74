// Command husk is a runc-compatible OCI runtime.
//
// The runtime's cgroup-aware GOMAXPROCS reads cgroup files at every start and rechecks them
// in the background: husk's processes are short-lived or idle, so neither is worth it.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/husk-runtime/husk/internal/idmap"
	_ "github.com/husk-runtime/husk/internal/prefault/early"
)

// Set by the Makefile.
var (
	version = "0.1.0-dev"
	commit  = "unknown"
)

func main() {
	idmap.Hold() // a helper for an idmapped mount's user namespace: holds, runs nothing
	app := cli.NewApp()
	app.Name = "husk"
	app.Usage = "Open Container Initiative runtime" // runc's words: tools match them
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
		cli.BoolFlag{Name: "systemd-cgroup", Usage: "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\""},
		cli.StringFlag{Name: "rootless", Value: "auto", Usage: "ignore cgroup permission errors (true, false or auto)"},
		cli.StringFlag{Name: "criu", Hidden: true},
	}
	app.Before = func(c *cli.Context) error {
		if err := setupLog(c.GlobalString("log"), c.GlobalString("log-format"), c.GlobalBool("debug")); err != nil {
			return err
		}
		return nil
	}
	app.Commands = []cli.Command{
		createCommand, startCommand, runCommand, stateCommand, killCommand, deleteCommand,
		listCommand, execCommand, pauseCommand, resumeCommand, psCommand, specCommand,
		featuresCommand, eventsCommand, updateCommand, checkpointCommand, restoreCommand,
	}
	app.CommandNotFound = func(c *cli.Context, cmd string) {
		// runc's words (urfave/cli's), and its status.
		fatal(&exitError{fmt.Errorf("No help topic for '%s'", cmd), 3})
	}
	if err := app.Run(os.Args); err != nil {
		fatal(err)
	}
}

// exitError is an error with the exit status runc gives it (255 for a failed exec).
type exitError struct {
	err  error
	code int
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// commandFailed is how runc words a failed create or run: "runc run failed: <why>"; husk's
// line is "husk run failed: <why>".
type commandFailed struct {
	command string
	err     error
}

func (e *commandFailed) Error() string { return e.command + " failed: " + e.err.Error() }
func (e *commandFailed) Unwrap() error { return e.err }

// fatal reports err on one line (to stderr and, when set, the json log that containerd's shim
// reads the last error from) and exits 1, or the status an exitError carries.
func fatal(err error) {
	msg := strings.TrimSpace(err.Error())
	if cf := (*commandFailed)(nil); errors.As(err, &cf) {
		// "husk run failed: ...", in the log too: containerd's runc shim shows the log's last
		// error after "OCI runtime create failed:", as runc's "runc create failed: ...".
		msg = "husk " + msg
		logError(msg)
		fmt.Fprintln(os.Stderr, msg)
	} else {
		logError(msg)
		fmt.Fprintln(os.Stderr, "husk: "+msg)
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	os.Exit(code)
}
