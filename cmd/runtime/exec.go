package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli"

	"github.com/husk-runtime/husk/libcontainer"
	"github.com/husk-runtime/husk/specs"
)

var execCommand = cli.Command{
	Name:      "exec",
	Usage:     "run a new process inside a running container",
	ArgsUsage: "<container-id> <command> [args...]",
	Flags: []cli.Flag{
		cli.StringFlag{Name: "process, p", Usage: "path to a process.json"},
		cli.BoolFlag{Name: "tty, t", Usage: "allocate a pseudo-TTY"},
		cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
		cli.StringFlag{Name: "pidfd-socket", Usage: "path to an AF_UNIX socket which will receive the pidfd of the process"},
		cli.BoolFlag{Name: "detach, d", Usage: "return once the process has started"},
		cli.StringFlag{Name: "pid-file", Usage: "file to write the process pid to"},
		cli.StringSliceFlag{Name: "env, e", Usage: "add an environment variable"},
		cli.StringFlag{Name: "cwd", Usage: "working directory"},
		cli.StringFlag{Name: "user, u", Usage: "uid[:gid]"},
		cli.Int64SliceFlag{Name: "additional-gids, g", Usage: "additional gids"},
		cli.StringSliceFlag{Name: "cap, c", Usage: "add a capability"},
		cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs"},
		cli.StringFlag{Name: "apparmor", Usage: "AppArmor profile"},
		cli.StringFlag{Name: "process-label", Usage: "SELinux label"},
		cli.IntFlag{Name: "preserve-fds", Usage: "pass N extra fds (from 3) to the process"},
		cli.BoolFlag{Name: "ignore-paused", Usage: "allow exec in a paused container"},
		cli.StringSliceFlag{Name: "cgroup", Usage: "run the process in a sub-cgroup: path, or controller[,controller]:path (v1)"},
		// Tests compare the two ways an exec is set up; nobody else needs this.
		cli.BoolFlag{Name: "no-fast-path", Hidden: true, Usage: "set the process up in husk-init's Go code"},
	},
	SkipArgReorder: true,
	Action: func(c *cli.Context) error {
		if c.NArg() < 1 {
			return errors.New("exec: a container id is required")
		}
		// As runc: a failed exec exits 255, so callers tell it from the process's own status.
		if err := execAction(c); err != nil {
			return &exitError{fmt.Errorf("exec failed: %w", err), 255}
		}
		return nil
	},
}

func execAction(c *cli.Context) error {
	id := c.Args().First()
	ct, err := libcontainer.Load(c.GlobalString("root"), id)
	if err != nil {
		return err
	}
	defaults, err := ct.Process()
	// The lock guards the state, which is read now; an exec must not hold it while its process
	// starts: in a paused container (--ignore-paused) the process waits for a resume, and the
	// resume for the lock.
	ct.Close()
	if err != nil {
		return err
	}
	p, err := execProcess(c, defaults)
	if err != nil {
		return err
	}
	warnUnraisableAmbient(p)
	detach := c.Bool("detach")
	o := libcontainer.ExecOpts{
		Process: p, ConsoleSocket: c.String("console-socket"), PidFile: c.String("pid-file"),
		PreserveFds: c.Int("preserve-fds"), SlowPath: c.Bool("no-fast-path"), Debug: debugHook(),
		Cgroups: c.StringSlice("cgroup"), IgnorePaused: c.Bool("ignore-paused"),
		Stdio: libcontainer.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
	}
	var term *terminal
	if p.Terminal && o.ConsoleSocket == "" {
		if detach {
			return errors.New("exec: --tty with --detach needs --console-socket")
		}
		if term, err = newTerminal(); err != nil {
			return err
		}
		defer term.Close()
		o.ConsoleConn = term.remote
	}
	sigc := make(chan os.Signal, 128)
	if !detach {
		caught := catchSignals(sigc)
		o.BeforeRun = func() { <-caught }
	}
	cmd, err := ct.Exec(o)
	if err != nil {
		return err
	}
	if term != nil {
		if err := term.receive(); err != nil {
			cmd.Signal(syscall.SIGKILL)
			return err
		}
	}
	if sock := c.String("pidfd-socket"); sock != "" {
		if err := sendPidfd(sock, cmd.Pid, "setns"); err != nil {
			cmd.Signal(syscall.SIGKILL)
			return err
		}
	}
	if detach {
		return nil
	}
	status := forwardAndWait(sigc, cmd, term, cmd.Wait)
	if term != nil {
		term.Close()
	}
	os.Exit(status)
	return nil
}

// parseExecUser sets u from `exec --user uid[:gid]`.
func parseExecUser(s string, u *rspec.User) error {
	uidStr, gidStr, hasGid := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidStr, 10, 32)
	if err != nil || uid > specs.MaxID {
		return fmt.Errorf("exec --user %q: want uid[:gid], each 0-%d", s, specs.MaxID)
	}
	u.UID = uint32(uid)
	if hasGid {
		gid, err := strconv.ParseUint(gidStr, 10, 32)
		if err != nil || gid > specs.MaxID {
			return fmt.Errorf("exec --user %q: want uid[:gid], each 0-%d", s, specs.MaxID)
		}
		u.GID = uint32(gid)
	}
	return nil
}

// withCaps is the process's capabilities with `exec --cap` added: bounding, effective and
// permitted, never inheritable (CVE-2022-29162); as runc 1.5, ambient too when the config has
// an inheritable set (an ambient capability needs to be inheritable).
func withCaps(old *rspec.LinuxCapabilities, caps []string) *rspec.LinuxCapabilities {
	if old == nil {
		old = &rspec.LinuxCapabilities{}
	}
	nc := &rspec.LinuxCapabilities{
		Bounding:    append(append([]string(nil), old.Bounding...), caps...),
		Effective:   append(append([]string(nil), old.Effective...), caps...),
		Permitted:   append(append([]string(nil), old.Permitted...), caps...),
		Inheritable: old.Inheritable,
		Ambient:     old.Ambient,
	}
	if old.Inheritable != nil {
		nc.Ambient = append(append([]string(nil), old.Ambient...), caps...)
	}
	return nc
}

// execProcess builds the process to exec: a process.json as given, or the container's own
// process with the command line's changes, as runc does.
func execProcess(c *cli.Context, defaults *rspec.Process) (*rspec.Process, error) {
	if path := c.String("process"); path != "" {
		data, err := specs.ReadLimited(path, specs.MaxProcessSize, "process.json")
		if err != nil {
			return nil, fmt.Errorf("exec --process: %w", err)
		}
		p, err := specs.ParseProcess(data)
		if err != nil {
			return nil, fmt.Errorf("exec --process %s: %w", path, err)
		}
		return p, libcontainer.PrepareExecProcess(p)
	}
	if c.NArg() < 2 {
		return nil, errors.New("exec: a command is required (or --process)")
	}
	p := *defaults
	p.Args = c.Args()[1:]
	p.Terminal = c.Bool("tty")
	p.ConsoleSize = nil
	p.Env = append(append([]string(nil), p.Env...), c.StringSlice("env")...)
	if cwd := c.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	if u := c.String("user"); u != "" {
		if err := parseExecUser(u, &p.User); err != nil {
			return nil, err
		}
	}
	for _, g := range c.Int64Slice("additional-gids") {
		if g < 0 || g > specs.MaxID {
			return nil, fmt.Errorf("exec --additional-gids %d: not a gid", g)
		}
		// urfave/cli v1 reports the values of an Int64SliceFlag with an alias (-g) twice.
		if !slices.Contains(p.User.AdditionalGids, uint32(g)) {
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
		}
	}
	if caps := c.StringSlice("cap"); len(caps) > 0 {
		p.Capabilities = withCaps(p.Capabilities, caps)
	}
	if c.Bool("no-new-privs") {
		p.NoNewPrivileges = true
	}
	if a := c.String("apparmor"); a != "" {
		p.ApparmorProfile = a
	}
	if l := c.String("process-label"); l != "" {
		p.SelinuxLabel = l
	}
	return &p, specs.ValidateProcess(&p)
}
