package libcontainer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/libcontainer/hooks"
)

// Delete removes a stopped or created container and everything husk made for it.
func (c *Container) Delete() error {
	switch st := c.status(); st {
	case Stopped:
	case Created, Creating:
		c.killAndWait()
	default:
		return fmt.Errorf("container %s: cannot delete a %s container without --force", c.state.ID, st)
	}
	return c.destroy()
}

// ForceDelete is Delete of a container in any state: one that runs is killed first.
func (c *Container) ForceDelete() error {
	if c.status() != Stopped {
		c.killAndWait()
	}
	return c.destroy()
}

// ForceDeleteID is `delete --force` of container id, for both frontends: what runs is killed,
// what is already gone is no error (cleanups are idempotent, as runc's; what a killed create
// left before its first state write goes too), and a corrupt state is deleted from what can
// be salvaged. mon starts and waits for the children it forks (nil: directly).
func ForceDeleteID(root, id string, warn func(string), mon children.Monitor) error {
	ct, err := Load(root, id)
	if err == nil {
		ct.Warn, ct.Monitor = warn, mon
		err = ct.ForceDelete()
		ct.Close()
	}
	switch {
	case errors.Is(err, ErrNotExist):
		return RemoveStale(root, id)
	case errors.Is(err, ErrCorruptState):
		return salvageDelete(root, id, warn, mon)
	}
	return err
}

// killAndWait kills the init and waits for it to die; devices moved into its network namespace
// go back to the host first, while the namespace still exists.
func (c *Container) killAndWait() {
	c.returnLentDevices()
	cg := c.Cgroup()
	_ = c.signalInit(unix.SIGKILL)
	cg.ThawTree()
	// A loaded machine can take seconds to tear down a pid namespace with many processes; the
	// init becomes a zombie only after the kernel has killed and reaped all of them.
	waitUntil(killTimeout, func() bool { return !c.state.initAlive() })
}

// waitUntil polls done, from 1 ms apart growing to 50 ms, until it holds or timeout passes,
// and reports whether it held.
func waitUntil(timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay)
	}
}

// returnLentDevices moves the lent network devices back to the host, once. A joined namespace
// (a pod's) outlives the init: its devices go back even after the init died, from the
// namespace the state names.
func (c *Container) returnLentDevices() {
	devs := c.state.NetDevices
	if len(devs) == 0 || (!c.state.initAlive() && devs[0].NetNS == "") {
		return
	}
	if err := returnNetDevices(c.state.InitPid, devs); err != nil {
		c.warn(fmt.Sprintf("linux.netDevices: %v", err))
	}
	c.state.NetDevices = nil
}

// killTimeout bounds how long a delete waits for the container's processes to die.
const killTimeout = 10 * time.Second

// privatePidNamespace reports whether the container has a pid namespace of its own (new, not
// joined by path): then the init's death takes every process of the container with it, and
// nothing else in its cgroup is the container's. Unknown (a salvaged state) counts as private,
// so that a corrupt state never leads to killing a whole cgroup.
func (c *Container) privatePidNamespace() bool {
	v, err := c.execView()
	if err != nil {
		return true
	}
	for _, ns := range v.Linux.Namespaces {
		if ns.Type == rspec.PIDNamespace {
			return ns.Path == ""
		}
	}
	return false
}

func (c *Container) destroy() error {
	c.returnLentDevices() // a stopped container's, from a joined namespace
	if c.state.initAlive() {
		return fmt.Errorf("container %s: delete: the init (pid %d) is still alive %v after SIGKILL", c.state.ID, c.state.InitPid, killTimeout)
	}
	cg := c.Cgroup()
	if !c.privatePidNamespace() {
		// Without a private pid namespace the init's death leaves its children running: kill
		// the cgroup until it is empty (pid by pid on v1 a forking process can slip through
		// one round).
		if err := killCgroup(cg); err != nil {
			return fmt.Errorf("container %s: delete: %w", c.state.ID, err)
		}
	}
	// With a private pid namespace everything of the container died with its init; what the
	// cgroup may still hold is some other process that was put there, left alone (runc 1.1.5
	// and 1.5 alike), or an init whose create was killed before it recorded it.
	killNamespaceInits(cg)
	var errs []string
	if pids := livePids(cg); len(pids) > 0 {
		c.warn(fmt.Sprintf("cgroup %s is left in place: %d process(es) that are not the container's are in it (pids %s)", cg.Paths(), len(pids), pidList(pids)))
	} else if err := cg.Destroy(); err != nil {
		return fmt.Errorf("container %s: delete: %w", c.state.ID, err)
	}
	if h := c.state.Hooks; h != nil && len(h.Poststop) > 0 {
		hooks.RunWarn(c.Monitor, h.Poststop, "poststop", c.hookState(Stopped), c.warn)
	}
	if err := unbindSharedRootfs(c.state.Rootfs, c.state.SharedRootfsMount); err != nil {
		errs = append(errs, err.Error())
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("container %s: delete: %s", c.state.ID, strings.Join(errs, "; "))
	}
	return nil
}

// killCgroup kills every process of cg until none is left, or fails naming what is left.
func killCgroup(cg *cgroups.Manager) error {
	var pids []int
	var err error
	if waitUntil(killTimeout, func() bool {
		_ = cg.Signal(unix.SIGKILL)
		cg.ThawTree()
		pids, err = cg.Pids()
		return err == nil && len(pids) == 0
	}) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list the processes of cgroup %s: %w", cg.Paths(), err)
	}
	return fmt.Errorf("cgroup %s still holds %d process(es) after SIGKILL for %v (pids %s)", cg.Paths(), len(pids), killTimeout, pidList(pids))
}

// livePids lists the processes of cg that are neither gone nor zombies: a killed init waiting
// for its reaper is still listed on cgroup v1, and leaves with the rmdir's retries.
func livePids(cg *cgroups.Manager) []int {
	pids, _ := cg.Pids()
	var live []int
	for _, pid := range pids {
		if _, zombie, err := procStartTime(pid); err == nil && !zombie {
			live = append(live, pid)
		}
	}
	return live
}

// pidList names up to ten pids.
func pidList(pids []int) string {
	var b strings.Builder
	for i, p := range pids {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(pids)-10)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

// lockByID locks the directory of container id; a nil lock and no error when it is gone.
func lockByID(root, id string) (string, *os.File, error) {
	if err := ValidateID(id); err != nil {
		return "", nil, err
	}
	dir := filepath.Join(root, id)
	lock, err := lockDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return dir, nil, nil
	}
	return dir, lock, err
}

// salvageDelete is `delete --force` of a container whose state is corrupt: it kills what the
// salvaged state and the container's cgroup still name, removes the cgroup and the state
// directory. runc leaves all of it behind; the cgroup knows the container's processes.
// mon starts and waits for the children it forks (nil: directly).
func salvageDelete(root, id string, warn func(string), mon children.Monitor) error {
	dir, lock, err := lockByID(root, id)
	if err != nil || lock == nil {
		return err
	}
	c := &Container{root: root, dir: dir, lock: lock, state: salvageState(dir, id), Warn: warn, Monitor: mon}
	defer c.Close()
	c.warn("state is corrupt; deleting what the salvaged state and the cgroup name")
	c.killAndWait()
	// Without the config the namespaces are unknown: destroy treats the pid namespace as
	// private and kills the inits of pid namespaces in the container's cgroup (a process put
	// there later is not the init of a namespace of its own).
	return c.destroy()
}

// killNamespaceInits kills the processes of cg that are pid 1 of a pid namespace nested in
// husk's, and waits for them to go: the init of a create that was killed before it recorded
// it, or of a container whose state was lost. Other processes of the cgroup are left alone.
func killNamespaceInits(cg *cgroups.Manager) {
	pids, _ := cg.Pids()
	var inits []int
	for _, pid := range pids {
		if isNamespaceInit(pid) {
			inits = append(inits, pid)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	cg.ThawTree()
	waitUntil(killTimeout, func() bool {
		for _, pid := range inits {
			if _, zombie, err := procStartTime(pid); err == nil && !zombie {
				return false
			}
		}
		return true
	})
}

// isNamespaceInit reports whether pid is pid 1 of a pid namespace nested in ours.
func isNamespaceInit(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			f := strings.Fields(v)
			return len(f) > 1 && f[len(f)-1] == "1"
		}
	}
	return false
}

// RemoveStale removes the directory of a create that died before writing any state (it holds
// at most the exec fifo). The lock guarantees no create is still working on it.
func RemoveStale(root, id string) error {
	dir, lock, err := lockByID(root, id)
	if err != nil || lock == nil {
		return err
	}
	defer lock.Close()
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return fmt.Errorf("container %s: has state; use delete", id)
	}
	return os.RemoveAll(dir)
}
