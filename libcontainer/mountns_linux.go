package libcontainer

import (
	"errors"
	"fmt"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The spec: a namespace that is not listed is inherited. Without a mount namespace of its own
// the container shares its caller's, and so does one whose "mount" path names the caller's own.
// husk then builds the rootfs under a private recursive bind of the rootfs onto itself, made
// here in the caller's namespace and detached at delete, and chroots into it: everything the
// spec mounts lies below that bind, so nothing of it reaches the rest of the caller's mounts
// or outlives the container. (runc mounts straight into the caller's namespace and leaves the
// mounts behind.)

// sharesMountNamespace reports whether the container would live in this process's mount
// namespace, and refuses a path that names the mount namespace of pid 1: building a rootfs
// there would pivot the root of every process on the host.
func sharesMountNamespace(s *rspec.Spec) (bool, error) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != rspec.MountNamespace {
			continue
		}
		if ns.Path == "" {
			return false, nil
		}
		if sameNamespace(ns.Path, "/proc/self/ns/mnt") {
			return true, nil
		}
		if sameNamespace(ns.Path, "/proc/1/ns/mnt") {
			return false, fmt.Errorf("linux.namespaces: mount namespace %q is the one of pid 1; a container built there would replace its root", ns.Path)
		}
		return false, nil
	}
	return true, nil
}

// bindSharedRootfs makes the private recursive bind of rootfs onto itself and returns its
// mount id, which delete checks before detaching it.
func bindSharedRootfs(rootfs string) (uint64, error) {
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return 0, fmt.Errorf("bind rootfs %q: %w", rootfs, err)
	}
	if err := unix.Mount("", rootfs, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		_ = unix.Unmount(rootfs, unix.MNT_DETACH)
		return 0, fmt.Errorf("make rootfs %q private: %w", rootfs, err)
	}
	id, err := mountID(rootfs)
	if err != nil {
		_ = unix.Unmount(rootfs, unix.MNT_DETACH)
		return 0, err
	}
	return id, nil
}

// unbindSharedRootfs detaches the bind made by bindSharedRootfs, and the container's mounts
// below it, if the top mount at rootfs is still that bind.
func unbindSharedRootfs(rootfs string, id uint64) error {
	if id == 0 {
		return nil
	}
	got, err := mountID(rootfs)
	if err != nil || got != id {
		return nil // already gone: never detach what is not ours (an image's overlay)
	}
	if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount rootfs %q: %w", rootfs, err)
	}
	return nil
}

func mountID(path string) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, fmt.Errorf("statx %q: %w", path, err)
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0, errors.New("this kernel reports no mount ids")
	}
	return stx.Mnt_id, nil
}
