package goinit

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/initproto"
)

func initExec(pipe *initproto.Conn, cfg *initConfig) error {
	if cfg.Process.Terminal {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	sc := &initSeccomp{}
	name, err := prepareProcess(cfg, pipe, sc)
	if err != nil {
		return err
	}
	err = execProcess(name, cfg, pipe, sc)
	// Reached only if execve failed; the pipe is still open because exec did not happen.
	return err
}

// execProcess loads a no_new_privs seccomp filter as late as possible (so the filter need not
// allow husk's own syscalls), then replaces this process with the user's.
func execProcess(name string, cfg *initConfig, pipe *initproto.Conn, sc *initSeccomp) error {
	p := cfg.Process
	if cfg.Spec.Linux.Seccomp != nil && p.NoNewPrivileges && !sc.loaded {
		if err := loadSeccomp(cfg, pipe, sc); err != nil {
			return err
		}
	}
	if err := unix.Exec(name, p.Args, os.Environ()); err != nil {
		// runc's words, which its suite reads: "exec /run.sh: no such file or directory".
		return &os.PathError{Op: "exec", Path: p.Args[0], Err: err}
	}
	return nil
}
