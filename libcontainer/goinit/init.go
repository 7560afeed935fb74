// Package goinit is the Go init: the side of husk-init that runs when the C constructor hands
// a create or exec over (a Go-only feature, a seccomp filter to compile, a terminal, hooks
// that run in the container). It gets its config over the init protocol (initproto), builds
// the container (create.go, with libcontainer/rootfs), or joins it (exec.go), sets up the
// process (process.go, user_linux.go, procattrs_linux.go, seccomp_*.go, console_linux.go)
// and execs it. Only husk-init imports it: husk and the shim stay free of cgo and libseccomp.
package goinit

import (
	"os"
	"runtime"
	"strconv"

	"github.com/husk-runtime/husk/libcontainer/initproto"
)

// IsInit reports whether this process was started as a husk init.
func IsInit() bool { return os.Getenv(initproto.EnvInit) != "" }

// Init is the entry point of `husk init`, the process that becomes the container. It never
// returns: it execs the user's process or reports an error to the parent and exits.
func Init() {
	// Capabilities, no_new_privs and the seccomp filter are per thread: everything happens on
	// this thread, which is the one that finally calls execve.
	runtime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(initproto.EnvSyncFd))
	if err != nil {
		os.Exit(1)
	}
	os.Unsetenv(initproto.EnvInit)
	os.Unsetenv(initproto.EnvSyncFd)
	os.Unsetenv("GOMAXPROCS")
	pipe := initproto.NewConn(os.NewFile(uintptr(fd), "sync"))
	cfg := &initConfig{}
	if err := pipe.WaitConfig(cfg); err != nil {
		os.Exit(1)
	}
	if err := decodeSpec(cfg); err != nil {
		pipe.Fail(err)
		os.Exit(1)
	}
	if cfg.Mode == initproto.ModeCreate {
		err = initContainer(pipe, cfg)
	} else {
		err = initExec(pipe, cfg)
	}
	// If the parent is gone it has already reported (or aborted) the create: stay silent.
	pipe.Fail(err)
	os.Exit(1)
}
