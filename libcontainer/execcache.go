package libcontainer

import (
	"path/filepath"
	"sync"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
	"github.com/husk-runtime/husk/libcontainer/cgroups"
)

// ExecCache keeps what an exec needs of a container's state between execs, for a caller that
// execs into the same containers again and again: the shim, where every exec probe of a pod
// would otherwise read and decode state.json, compare the init's namespaces with its own and
// look up the cgroup mounts anew. An entry serves while state.json is the file it was read
// from (husk replaces the file on every change, so its inode, size and times say when it has
// changed, whoever changed it); the container's status is still read live at each exec, and an
// exec the entry would refuse goes the uncached way, so a recreated container is never judged
// by its predecessor's state. Safe for concurrent use.
type ExecCache struct {
	mu      sync.Mutex
	targets map[string]*execTarget // by container directory
}

// execTarget is one container's entry: read-only once made, shared by concurrent execs.
type execTarget struct {
	key   stateKey
	c     Container // state and exec view decoded, no lock held
	joins map[rspec.LinuxNamespaceType]string
	cg    *cgroups.Manager // mounts resolved: read-only from here on
}

// stateKey tells one state.json file from another.
type stateKey struct {
	dev, ino, size uint64
	mtime, ctime   unix.Timespec
}

// lockedStateKey returns the key of dir's state.json, read under the container's lock as Load
// reads the state: an exec waits for a husk command under way (a pause) as an uncached one does.
func lockedStateKey(dir string) (stateKey, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return stateKey{}, err
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return stateKey{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, stateFile, &st, 0); err != nil {
		return stateKey{}, err
	}
	return stateKey{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim, ctime: st.Ctim}, nil
}

// Exec is Load(root, id) and Exec(o) with monitor as the container's Monitor, through the cache.
func (x *ExecCache) Exec(root, id string, monitor children.Monitor, o ExecOpts) (*Process, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	key, keyErr := lockedStateKey(dir)
	if keyErr == nil {
		x.mu.Lock()
		t := x.targets[dir]
		x.mu.Unlock()
		if t != nil && t.key == key {
			c := t.c
			c.Monitor = monitor
			if c.execable(c.statusWith(t.cg), o) == nil {
				return c.execChecked(o, c.exec, t.joins, t.cg)
			}
		}
	}
	x.Forget(root, id)
	ct, err := Load(root, id)
	if err != nil {
		return nil, err
	}
	// As husk exec: the lock guards the state, read by now; it is not held while the process
	// starts (in a paused container that waits for a resume, which needs the lock).
	ct.Close()
	ct.Monitor = monitor
	if keyErr == nil {
		if t := x.keep(dir, key, ct, o); t != nil {
			return ct.execChecked(o, ct.exec, t.joins, t.cg)
		}
	}
	return ct.Exec(o)
}

// keep makes and returns ct's entry, when it takes this exec: one it refuses goes the
// uncached way, which says why.
func (x *ExecCache) keep(dir string, key stateKey, ct *Container, o ExecOpts) *execTarget {
	v, err := ct.execView()
	if err != nil {
		return nil
	}
	cg := ct.Cgroup().Resolved()
	if ct.execable(ct.statusWith(cg), o) != nil {
		return nil
	}
	t := &execTarget{key: key, c: *ct, joins: ct.execJoins(v), cg: cg}
	t.c.Monitor = nil
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.targets == nil {
		x.targets = map[string]*execTarget{}
	}
	x.targets[dir] = t
	return t
}

// Forget drops container id's entry (its delete).
func (x *ExecCache) Forget(root, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.targets, filepath.Join(root, id))
}
