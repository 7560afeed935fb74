// Package idmap makes user namespaces for idmapped mounts (MOUNT_ATTR_IDMAP): the runtime's
// idmapped bind mounts, and the shim's idmapped overlay lowerdirs of user-namespaced pods.
package idmap

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// UserNamespace returns a user namespace with these mappings. A process is needed to make one:
// like runc and containerd, a child is started in a new user namespace that stops at its
// execve under ptrace (it never runs a thing); its namespace is opened and it is killed.
func UserNamespace(uids, gids []syscall.SysProcIDMap) (*os.File, error) {
	if len(uids) == 0 || len(gids) == 0 {
		return nil, errors.New("an idmapped mount needs both uid and gid mappings")
	}
	var ns *os.File
	errc := make(chan error, 1)
	go func() {
		// The tracer is a thread: this one, thrown away with its goroutine.
		runtime.LockOSThread()
		pid, err := syscall.ForkExec("/proc/self/exe", []string{"idmap-userns"}, &syscall.ProcAttr{
			Sys: &syscall.SysProcAttr{
				Cloneflags: unix.CLONE_NEWUSER, UidMappings: uids, GidMappings: gids,
				Ptrace: true, Pdeathsig: unix.SIGKILL,
			},
		})
		if err != nil {
			errc <- fmt.Errorf("user namespace for the mapping: %w", err)
			return
		}
		defer func() {
			_ = unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, 0, nil)
		}()
		var ws unix.WaitStatus // the child stops with SIGTRAP at its execve: maps are in place
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
			errc <- err
			return
		}
		ns, err = os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
		errc <- err
	}()
	return ns, <-errc
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
