package initproto

import (
	"strconv"
	"strings"
)

// The boot environment: what husk-init finds in its environment at start, before any message.
// The constructor reads and unsets the namespace variables; the Go init the rest.
const (
	EnvInit       = "_HUSK_INIT"       // set: the process is a container's init or exec, not a husk command
	EnvSyncFd     = "_HUSK_SYNCFD"     // the sync socket's fd number
	EnvExecFast   = "_HUSK_EXECFAST"   // set: the constructor sets up and execs the process (ExecRequest)
	EnvCreateFast = "_HUSK_CREATEFAST" // set: the constructor is the create's whole init (CreateRequest, then ExecRequest)
	// comma-separated fds of namespaces to join, ordered by the parent (a user namespace first,
	// so the others are joined with the capabilities it grants)
	EnvNsFds = "_HUSK_NSFDS"
	// pid and time namespace fds, which apply to children only: the constructor joins them,
	// forks, and the intermediate reports the child's pid (Pid) and exits
	EnvNsFdsFork = "_HUSK_NSFDS_FORK"
	// CLONE_NEW* flags (hex) of the namespaces to make after joining a user namespace by path,
	// so that they belong to it; a new pid namespace forks as a joined one does
	EnvUnshare = "_HUSK_UNSHARE"
)

// Path is who sets the child up.
type Path int

const (
	PathGoInit     Path = iota // the Go init, from a Config
	PathExecFast               // the constructor, from an ExecRequest
	PathCreateFast             // the constructor, from a CreateRequest and then an ExecRequest
)

// Boot is the child's boot environment.
type Boot struct {
	SyncFd    int
	Path      Path
	NsFds     []int   // joined by the constructor, in this order
	NsFdsFork []int   // joined, then forked into
	Unshare   uintptr // made after joining NsFds
}

// Encode returns the environment entries, Go runtime settings for the init included: it
// lives for milliseconds, so one P and no GC are all it needs.
func (b Boot) Encode() []string {
	env := []string{EnvInit + "=1", EnvSyncFd + "=" + strconv.Itoa(b.SyncFd), "GOMAXPROCS=1", "GOGC=off"}
	switch b.Path {
	case PathExecFast:
		env = append(env, EnvExecFast+"=1")
	case PathCreateFast:
		env = append(env, EnvCreateFast+"=1")
	}
	if len(b.NsFds) > 0 {
		env = append(env, EnvNsFds+"="+joinInts(b.NsFds))
	}
	if b.Unshare != 0 {
		env = append(env, EnvUnshare+"="+strconv.FormatUint(uint64(b.Unshare), 16))
	}
	if len(b.NsFdsFork) > 0 {
		env = append(env, EnvNsFdsFork+"="+joinInts(b.NsFdsFork))
	}
	return env
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
