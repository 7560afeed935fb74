//go:build criu

package main

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer"
	"github.com/husk-runtime/husk/libcontainer/criu"
)

func criuOpts(c *cli.Context) criu.Opts {
	image := c.String("image-path")
	if image == "" {
		// runc's default: ./checkpoint.
		if cwd, err := os.Getwd(); err == nil {
			image = filepath.Join(cwd, "checkpoint")
		}
	}
	return criu.Opts{
		ImagePath: image, WorkPath: c.String("work-path"), ParentPath: c.String("parent-path"),
		LeaveRunning: c.Bool("leave-running"), PreDump: c.Bool("pre-dump"),
		TCPEstablished: c.Bool("tcp-established"), ExtUnixSk: c.Bool("ext-unix-sk"),
		TCPSkipInFlight: c.Bool("tcp-skip-in-flight"), LinkRemap: c.Bool("link-remap"),
		ShellJob: c.Bool("shell-job"), FileLocks: c.Bool("file-locks"), AutoDedup: c.Bool("auto-dedup"),
		LazyPages: c.Bool("lazy-pages"), StatusFd: statusFd(c), PageServer: c.String("page-server"),
		ManageCgroupsMode: c.String("manage-cgroups-mode"), EmptyNs: c.StringSlice("empty-ns"),
		LsmProfile: c.String("lsm-profile"), LsmMountContext: c.String("lsm-mount-context"),
		CriuPath: c.GlobalString("criu"),
	}
}

func statusFd(c *cli.Context) int {
	if c.IsSet("status-fd") {
		return c.Int("status-fd")
	}
	return -1
}

func checkpointAction(c *cli.Context) error {
	if err := exactArgs(c, 1); err != nil {
		return err
	}
	return withContainer(c, func(ct *libcontainer.Container) error { return criu.Checkpoint(ct, criuOpts(c)) })
}

// restoreAction is `run` with CRIU bringing the processes back instead of an init starting.
func restoreAction(c *cli.Context) error {
	if err := exactArgs(c, 1); err != nil {
		return err
	}
	o, err := createOpts(c)
	if err != nil {
		return err
	}
	detach := c.Bool("detach")
	sigc := make(chan os.Signal, 128)
	if !detach {
		<-catchSignals(sigc)
		if !c.Bool("no-subreaper") {
			// The restored init is our child (CRIU restores it as its sibling); what it
			// forks and leaves behind comes back to us too.
			_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
		}
	}
	root := c.GlobalString("root")
	ct, err := criu.Restore(root, o, criuOpts(c))
	if err != nil {
		return err
	}
	ct.Warn = warnLine
	ct.Close()
	if detach {
		return nil
	}
	status := forwardAndWait(sigc, ct.InitProcess(), nil, ct.Wait)
	if ct2, err := libcontainer.Load(root, o.ID); err == nil {
		ct2.Warn = warnLine
		if err := ct2.ForceDelete(); err != nil {
			logWarn("%v", err)
		}
		ct2.Close()
	}
	os.Exit(status)
	return nil
}
