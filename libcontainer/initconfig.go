package libcontainer

import (
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/libcontainer/initproto"
)

// initConfig is the Go init's request (initproto.InitConfig, what travels) with its spec
// decoded.
type initConfig struct {
	initproto.InitConfig
	Spec *rspec.Spec `json:"-"` // RawSpec decoded, by the init
}

// rootfsBuild is one build of a container's rootfs (buildContainer): what it builds from, where
// it runs, and what it keeps between its steps.
type rootfsBuild struct {
	cfg  *initConfig
	site buildSite
	// readonlyTmpfs are the read-only tmpfs mounts, mounted writable and made read-only once
	// the rootfs is built.
	readonlyTmpfs []readonlyMount
	pipe          *initproto.Conn // to the parent, for LateMountSources (the Go init's only)
}

// buildSite says where a build runs: the zero value is in the Go init, inside the container;
// husk create's fast path builds from a thread joined to the init's namespaces, which is not
// in the init's pid namespace.
type buildSite struct {
	initPid int      // the init, seen from husk
	procCtx *os.File // a procfs context in the init's pid namespace, for /proc
}

// fromParent reports whether the build runs in husk, not in the init.
func (s buildSite) fromParent() bool { return s.initPid > 0 }

// readonlyMount is a mount made writable and made read-only at the end, with its other flags.
type readonlyMount struct {
	dest  string
	flags uintptr
}
