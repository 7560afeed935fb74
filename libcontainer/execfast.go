package libcontainer

import (
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/libcontainer/procenv"
	"github.com/husk-runtime/husk/specs"
)

// fastExecRequest is an exec for the constructor of husk-init to set up and exec by itself
// (nsenter/execfast.c), before a Go runtime starts in the container: most of an exec's time.
// It returns nil for what only the Go init handles: a terminal, an LSM label, a seccomp filter
// (libseccomp compiles it in the init), or anything the init would refuse (it then says why).
// seccomp is the container's compiled filter, if it has one; home is HOME for a process whose
// environment has none ("": the caller adds it later, and the request leaves room for it).
func fastExecRequest(p *rspec.Process, seccomp []byte, seccompFlags uintptr, preserveFds int, home string) *initproto.ExecRequest {
	if p.Terminal || p.ApparmorProfile != "" || p.SelinuxLabel != "" || len(p.Args) == 0 || needsGoInit(p) {
		return nil
	}
	caps := p.Capabilities
	if caps == nil {
		caps = &rspec.LinuxCapabilities{}
	}
	last := specs.LastCap()
	var masks [4]uint64
	for i, names := range [][]string{caps.Bounding, caps.Effective, caps.Permitted, caps.Inheritable} {
		masks[i] = specs.CapMask(names, last)
	}
	r := &initproto.ExecRequest{
		UID: p.User.UID, GID: p.User.GID, Groups: p.User.AdditionalGids, Umask: p.User.Umask,
		Bounding: masks[0], Effective: masks[1], Permitted: masks[2], Inheritable: masks[3],
		LastCap: last, NoNewPrivs: p.NoNewPrivileges, Cwd: p.Cwd, Preserve: preserveFds,
		Args: p.Args, Env: procenv.ProcessEnv(p.Env, preserveFds, home),
	}
	for _, name := range caps.Ambient {
		if c, ok := specs.Capability(name); ok { // unknown: warned about, granted nothing, as in the Go init
			r.Ambient = append(r.Ambient, c)
		}
	}
	if len(seccomp) > 0 {
		r.Seccomp, r.SeccompFlags = seccomp, uint64(seccompFlags)
	}
	for _, l := range p.Rlimits {
		res, ok := specs.Rlimits[l.Type]
		if !ok {
			return nil
		}
		r.Rlimits = append(r.Rlimits, initproto.Rlimit{Resource: res, Soft: l.Soft, Hard: l.Hard})
	}
	room := 0
	if home == "" {
		room = 1
	}
	if r.Check(room) != nil {
		return nil // beyond the constructor's tables, or a NUL byte: the Go init says why
	}
	return r
}

// needsGoInit reports process attributes only the Go init applies: the fast paths hand such a
// process over to it.
func needsGoInit(p *rspec.Process) bool {
	return p.Scheduler != nil || p.IOPriority != nil
}
