// Package idmap makes user namespaces for idmapped mounts (MOUNT_ATTR_IDMAP): the runtime's
// idmapped bind mounts, and the shim's idmapped overlay lowerdirs of user-namespaced pods.
package idmap

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
)

// holdArg is argv[0] of the helper process UserNamespace starts; Hold makes it wait.
const holdArg = "husk-idmap-userns"

// Hold is called first thing in main by every binary that uses UserNamespace: in the helper
// it waits for its stdin to close and exits, running nothing else.
func Hold() {
	if len(os.Args) > 0 && os.Args[0] == holdArg {
		var b [1]byte
		_, _ = os.Stdin.Read(b[:])
		os.Exit(0)
	}
}

// UserNamespace returns a user namespace with these mappings. A process is needed to make one:
// a copy of this binary is started in a new user namespace (the mappings are written before it
// execs) and holds (Hold) until its namespace is open. mon starts it and waits for its exit
// (nil: directly): a process with a reaper of its own (the shim, a subreaper) passes the
// reaper's, as a second waiter would race it (a ptrace-stopped helper, runc's way, hung the
// shim this way).
func UserNamespace(uids, gids []syscall.SysProcIDMap, mon children.Monitor) (*os.File, error) {
	if len(uids) == 0 || len(gids) == 0 {
		return nil, errors.New("an idmapped mount needs both uid and gid mappings")
	}
	mon = children.Or(mon)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	defer w.Close()
	pid, err := mon.ForkExec("/proc/self/exe", []string{holdArg}, &syscall.ProcAttr{
		Files: []uintptr{r.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER, UidMappings: uids, GidMappings: gids, Pdeathsig: unix.SIGKILL,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("user namespace for the mapping: %w", err)
	}
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
	w.Close() // the helper exits
	_, _ = mon.Wait(pid)
	if err != nil {
		return nil, fmt.Errorf("user namespace for the mapping: %w", err)
	}
	return ns, nil
}

// ParseList parses containerd's mapping lists, "container:host:size[,container:host:size...]".
func ParseList(s string) ([]syscall.SysProcIDMap, error) {
	var out []syscall.SysProcIDMap
	for _, m := range strings.Split(s, ",") {
		f := strings.Split(m, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("id mapping %q: want container:host:size", m)
		}
		var v [3]int
		for i := range f {
			n, err := strconv.Atoi(f[i])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("id mapping %q: want container:host:size", m)
			}
			v[i] = n
		}
		out = append(out, syscall.SysProcIDMap{ContainerID: v[0], HostID: v[1], Size: v[2]})
	}
	return out, nil
}

// MountAt clones the tree at source (recursively), idmaps it with userns and attaches it at
// target (an existing directory).
func MountAt(source, target string, userns *os.File) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree %q: %w", source, err)
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Propagation: unix.MS_PRIVATE, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("idmap %q: %w", source, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach %q: %w", target, err)
	}
	return nil
}
