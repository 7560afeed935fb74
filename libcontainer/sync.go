package libcontainer

import (
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/libcontainer/initproto"
)

// initConfig is the Go init's request (initproto.InitConfig, what travels) with what each side
// keeps beside it while the container is built.
type initConfig struct {
	initproto.InitConfig
	Spec *rspec.Spec `json:"-"` // RawSpec decoded, by the init

	seccompBPF []byte   // the init's compiled filter, once compiled
	initPid    int      // set when husk create builds the rootfs for the init (createfast.go)
	procCtx    *os.File // then: a procfs context in the init's pid namespace
	// readonlyTmpfs are the read-only tmpfs mounts, mounted writable and made read-only once
	// the rootfs is built.
	readonlyTmpfs []readonlyMount
	seccompLoaded bool            // the filter is on this thread already
	pipe          *initproto.Conn // to the parent, for LateMountSources
}

// readonlyMount is a mount made writable and made read-only at the end, with its other flags.
type readonlyMount struct {
	dest  string
	flags uintptr
}
