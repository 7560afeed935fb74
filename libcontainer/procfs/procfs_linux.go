// Package procfs writes to /proc safely from a container's side: through a private procfs
// instance where the kernel allows one, and never onto another filesystem.
package procfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/specs"
)

// Verify checks that the container's /proc is a real procfs, not a directory or a FUSE
// mount an image put there to catch husk's writes (CVE-2019-16884, CVE-2023-27561).
func Verify() error {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/proc", &sfs); err != nil {
		return fmt.Errorf("/proc: %w", err)
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC {
		return errors.New("/proc in the container is not a procfs; a proc mount at /proc is required")
	}
	return nil
}

// WriteFile writes value to /proc/<rel> through a private procfs instance that nothing in
// the container can mount over or redirect (CVE-2025-52881); where the kernel refuses one, through
// the container's /proc. Either way the opened file must live on procfs, so an overmount or a
// symlink cannot turn the write onto another filesystem (CVE-2019-16884).
func WriteFile(rel, value string) error {
	fd, err := openPrivateProc(rel)
	if err != nil {
		fd, err = unix.Open("/proc/"+rel, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return fmt.Errorf("open /proc/%s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("/proc/%s is not on procfs; refusing to write", rel)
	}
	if _, err := f.WriteString(value); err != nil {
		return fmt.Errorf("write /proc/%s: %w", rel, err)
	}
	return nil
}

// openPrivateProc opens rel for writing in a new, detached procfs instance of this process's
// pid namespace.
func openPrivateProc(rel string) (int, error) {
	fsfd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, err
	}
	root, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return -1, err
	}
	defer unix.Close(root)
	return unix.Openat(root, rel, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
}

// WriteSysctl sets a sysctl ("net.ipv4.ip_forward") through /proc/sys.
func WriteSysctl(key, value string) error {
	if err := WriteFile("sys/"+specs.SysctlPath(key), value); err != nil {
		return fmt.Errorf("sysctl %s: %w", key, err)
	}
	return nil
}
