package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer"
	"github.com/husk-runtime/husk/specs"
)

var createFlags = []cli.Flag{
	cli.StringFlag{Name: "bundle, b", Value: "", Usage: "path to the bundle (default: current directory)"},
	cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
	cli.StringFlag{Name: "pidfd-socket", Usage: "path to an AF_UNIX socket which will receive the pidfd of the init"},
	cli.StringFlag{Name: "pid-file", Usage: "file to write the init pid to"},
	cli.BoolFlag{Name: "no-pivot", Usage: "use MS_MOVE and chroot instead of pivot_root"},
	cli.BoolFlag{Name: "no-fast-path", Hidden: true, Usage: "set the container up in husk-init's Go code"},
	cli.BoolFlag{Name: "no-new-keyring", Usage: "do not create a new session keyring"},
	cli.IntFlag{Name: "preserve-fds", Usage: "pass N extra fds (from 3) to the container"},
}

func idArg(c *cli.Context) (string, error) {
	if c.NArg() < 1 {
		return "", fmt.Errorf("%s: a container id is required", c.Command.Name)
	}
	id := c.Args().First()
	if err := libcontainer.ValidateID(id); err != nil {
		return "", err
	}
	return id, nil
}

func exactArgs(c *cli.Context, n int) error {
	if c.NArg() != n {
		return fmt.Errorf("%s: expected %d argument(s), got %d; usage: husk %s %s", c.Command.Name, n, c.NArg(), c.Command.Name, c.Command.ArgsUsage)
	}
	return nil
}

func createOpts(c *cli.Context) (libcontainer.CreateOpts, error) {
	id, err := idArg(c)
	if err != nil {
		return libcontainer.CreateOpts{}, err
	}
	bundle := c.String("bundle")
	if bundle == "" {
		bundle = "."
	}
	spec, raw, abs, err := specs.Load(bundle, warnLine)
	if err != nil {
		return libcontainer.CreateOpts{}, err
	}
	warnUnraisableAmbient(spec.Process)
	o := libcontainer.CreateOpts{
		ID: id, Bundle: abs, Spec: spec, RawSpec: raw, ConsoleSocket: c.String("console-socket"),
		PidFile: c.String("pid-file"), NoPivot: c.Bool("no-pivot"), NoNewKeyring: c.Bool("no-new-keyring"), SlowPath: c.Bool("no-fast-path"),
		SystemdCgroup: c.GlobalBool("systemd-cgroup"),
		PreserveFds:   c.Int("preserve-fds"), Debug: debugHook(), Warn: warnLine,
		Stdio: libcontainer.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
	}
	// systemd socket activation: pass the listening fds on and tell the process about them.
	if n, err := strconv.Atoi(os.Getenv("LISTEN_FDS")); err == nil && n > 0 {
		if n > o.PreserveFds {
			o.PreserveFds = n
		}
		o.ExtraEnv = []string{"LISTEN_FDS=" + strconv.Itoa(n), "LISTEN_PID=1"}
	}
	return o, nil
}

var createCommand = cli.Command{
	Name:      "create",
	Usage:     "create a container whose process waits for start",
	ArgsUsage: "<container-id>",
	Flags:     createFlags,
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		o, err := createOpts(c)
		if err != nil {
			return err
		}
		ct, err := libcontainer.Create(c.GlobalString("root"), o)
		if err != nil {
			return &commandFailed{"create", err}
		}
		defer ct.Close()
		if sock := c.String("pidfd-socket"); sock != "" {
			if err := sendPidfd(sock, ct.Pid(), "standard"); err != nil {
				ct.ForceDelete()
				return err
			}
		}
		return nil
	},
}

var startCommand = cli.Command{
	Name:      "start",
	Usage:     "start the user process of a created container",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		return withContainer(c, func(ct *libcontainer.Container) error { return ct.Start() })
	},
}

func withContainer(c *cli.Context, f func(*libcontainer.Container) error) error {
	id, err := idArg(c)
	if err != nil {
		return err
	}
	ct, err := libcontainer.Load(c.GlobalString("root"), id)
	if err != nil {
		return err
	}
	defer ct.Close()
	ct.Warn = warnLine
	return f(ct)
}

var runCommand = cli.Command{
	Name:      "run",
	Usage:     "create and start a container; wait for it unless --detach",
	ArgsUsage: "<container-id>",
	Flags: append(append([]cli.Flag{}, createFlags...),
		cli.BoolFlag{Name: "detach, d", Usage: "return once the container has started"},
		cli.BoolFlag{Name: "keep", Usage: "do not delete the container after it exits"},
	),
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		o, err := createOpts(c)
		if err != nil {
			return err
		}
		detach := c.Bool("detach")
		var term *terminal
		if o.Spec.Process.Terminal && o.ConsoleSocket == "" {
			if detach {
				return errors.New("process.terminal with --detach needs --console-socket")
			}
			if term, err = newTerminal(); err != nil {
				return err
			}
			defer term.Close()
			o.ConsoleConn = term.remote
		}
		// Catch signals before the container exists so none is lost between create and wait.
		sigc := make(chan os.Signal, 128)
		var caught <-chan struct{}
		if !detach {
			caught = catchSignals(sigc)
		}
		root := c.GlobalString("root")
		ct, err := libcontainer.Create(root, o)
		if err != nil {
			return &commandFailed{"run", err}
		}
		ct.Warn = warnLine
		if term != nil {
			if err := term.receive(); err != nil {
				ct.ForceDelete()
				ct.Close()
				return err
			}
		}
		if sock := c.String("pidfd-socket"); sock != "" {
			if err := sendPidfd(sock, ct.Pid(), "standard"); err != nil {
				ct.ForceDelete()
				ct.Close()
				return err
			}
		}
		if !detach {
			<-caught // every signal is forwarded before the process runs
		}
		if err := ct.Start(); err != nil {
			ct.ForceDelete()
			ct.Close()
			return err
		}
		if detach {
			ct.Close()
			return nil
		}
		// Let other husk commands (kill, state) act on the container while it runs.
		ct.Close()
		status := forwardAndWait(sigc, ct.InitProcess(), term, ct.Wait)
		if !c.Bool("keep") {
			if ct2, err := libcontainer.Load(root, o.ID); err == nil {
				ct2.Warn = warnLine
				if err := ct2.ForceDelete(); err != nil {
					logWarn("%v", err)
				}
				ct2.Close()
			}
		}
		if term != nil {
			term.Close()
		}
		os.Exit(status)
		return nil
	},
}

// forwardAndWait relays signals to p until wait returns, and turns its status into an exit code
// the way a shell does (128+signal for a signalled process).
func forwardAndWait(sigc chan os.Signal, p *libcontainer.Process, term *terminal, wait func() (syscall.WaitStatus, error)) int {
	done := make(chan syscall.WaitStatus, 1)
	go func() {
		ws, err := wait()
		if err != nil {
			logWarn("wait: %v", err)
		}
		done <- ws
	}()
	for {
		select {
		case ws := <-done:
			// No signal.Stop: the caller exits right after, and Stop waits for the runtime's
			// signal goroutine to go idle, which cost 3 ms of futex ping-pong here. A signal that
			// arrives meanwhile lands in sigc's buffer, unread.
			if term != nil {
				term.drain()
			}
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		case s := <-sigc:
			sig := s.(syscall.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				// SIGURG is the Go runtime's own preemption signal.
			case unix.SIGWINCH:
				if term != nil {
					term.resize()
				}
			default:
				_ = p.Signal(sig)
			}
		}
	}
}

var stateCommand = cli.Command{
	Name:      "state",
	Usage:     "print the state of a container as JSON",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		return withContainer(c, func(ct *libcontainer.Container) error {
			return printJSON(ct.OCIState())
		})
	},
}

// printJSONLine prints v as one line, as runc's list and ps do (json.Encoder).
func printJSONLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

func printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

// parseSignal accepts KILL, SIGKILL, kill and 9; 0 checks that the process exists, as kill(2).
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

var killCommand = cli.Command{
	Name:      "kill",
	Usage:     "send a signal (default TERM) to a container's init",
	ArgsUsage: "<container-id> [signal]",
	Flags:     []cli.Flag{cli.BoolFlag{Name: "all, a", Usage: "signal every process of the container"}},
	Action: func(c *cli.Context) error {
		if c.NArg() < 1 || c.NArg() > 2 {
			return fmt.Errorf("kill: expected <container-id> [signal]")
		}
		sig := unix.SIGTERM
		if c.NArg() == 2 {
			var err error
			if sig, err = parseSignal(c.Args().Get(1)); err != nil {
				return err
			}
		}
		return withContainer(c, func(ct *libcontainer.Container) error {
			if c.Bool("all") {
				return ct.SignalAll(sig)
			}
			return ct.Signal(sig)
		})
	},
}

var deleteCommand = cli.Command{
	Name:      "delete",
	Usage:     "delete a container and everything made for it",
	ArgsUsage: "<container-id>",
	Flags:     []cli.Flag{cli.BoolFlag{Name: "force, f", Usage: "kill the container first if it runs"}},
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		if c.Bool("force") {
			id, err := idArg(c)
			if err != nil {
				return err
			}
			return libcontainer.ForceDeleteID(c.GlobalString("root"), id, warnLine, nil)
		}
		return withContainer(c, func(ct *libcontainer.Container) error { return ct.Delete() })
	},
}

var listCommand = cli.Command{
	Name:  "list",
	Usage: "list containers",
	Flags: []cli.Flag{
		cli.StringFlag{Name: "format, f", Value: "table", Usage: "table or json"},
		cli.BoolFlag{Name: "quiet, q", Usage: "print ids only"},
	},
	Action: func(c *cli.Context) error {
		root := c.GlobalString("root")
		if c.GlobalIsSet("root") {
			// As runc: a --root the user names must exist; the default may not yet.
			if _, err := os.Stat(root); err != nil {
				return fmt.Errorf("list: --root: %w", err)
			}
		}
		ids, err := libcontainer.List(root)
		if err != nil {
			return err
		}
		states := []libcontainer.OCIState{}
		for _, id := range ids {
			ct, err := libcontainer.Load(root, id)
			if err != nil {
				continue // deleted meanwhile
			}
			states = append(states, ct.OCIState())
			ct.Close()
		}
		if c.Bool("quiet") {
			for _, s := range states {
				fmt.Println(s.ID)
			}
			return nil
		}
		switch c.String("format") {
		case "json":
			return printJSONLine(states)
		case "table":
			w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
			for _, s := range states {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
			}
			return w.Flush()
		}
		return fmt.Errorf("list: unknown format %q (table or json)", c.String("format"))
	},
}

var pauseCommand = cli.Command{
	Name:      "pause",
	Usage:     "freeze every process of a container",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		return withContainer(c, func(ct *libcontainer.Container) error { return ct.Pause() })
	},
}

var resumeCommand = cli.Command{
	Name:      "resume",
	Usage:     "thaw a paused container",
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := exactArgs(c, 1); err != nil {
			return err
		}
		return withContainer(c, func(ct *libcontainer.Container) error { return ct.Resume() })
	},
}
