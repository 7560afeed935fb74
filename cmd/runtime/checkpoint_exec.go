//go:build !criu

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli"
	"golang.org/x/sys/unix"
)

// husk hands checkpoint and restore to husk-criu, beside it, with its own arguments, fds and
// environment: exec keeps the pid (--pid-file, the shim's wait), stdio and --status-fd.
func checkpointAction(c *cli.Context) error { return execCRIUBuild() }
func restoreAction(c *cli.Context) error    { return execCRIUBuild() }

func execCRIUBuild() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	helper := filepath.Join(filepath.Dir(self), "husk-criu")
	if _, err := os.Stat(helper); err != nil {
		return fmt.Errorf("checkpoint/restore: husk-criu is not installed in %s, beside husk (make install)", filepath.Dir(self))
	}
	args := append([]string{helper}, os.Args[1:]...)
	return fmt.Errorf("checkpoint/restore: exec %s: %w", helper, unix.Exec(helper, args, os.Environ()))
}
