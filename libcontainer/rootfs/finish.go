package rootfs

import (
	"fmt"
	"path/filepath"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/procfs"
	"github.com/husk-runtime/husk/specs"
)

// rootPropagation is the propagation to give the mount namespace's root before the rootfs is
// built, and one to apply to the container's root once it is in place (0: none). A shared root
// is shared from the start, as runc makes it: the namespace's copies of the host's shared
// mounts stay peers of the host's, so a volume bound "rshared" from one propagates both ways
// (CSI node plugins, Kubernetes' Bidirectional propagation; made rslave first, a volume was a
// slave of the host's and a mount in the container never reached the host). An unbindable root
// breaks the build (nothing can be bound from below it): it starts as rslave and is applied to
// the new root at the end, as crun does; a shared one is applied there too.
func rootPropagation(spec *rspec.Spec) (early, late uintptr) {
	if spec.Linux.RootfsPropagation == "" {
		return unix.MS_SLAVE | unix.MS_REC, 0
	}
	p := specs.PropagationFlags[spec.Linux.RootfsPropagation]
	switch {
	case p&unix.MS_UNBINDABLE != 0:
		return unix.MS_SLAVE | unix.MS_REC, p
	case p&unix.MS_SHARED != 0:
		// The container's root itself is built from a private bind (see prepareRootfs) and
		// made shared at the end too, as crun does.
		return p, p
	}
	return p, 0
}

// makeMountPrivate makes the mount that holds path private (not its submounts). The mount is
// found by walking up while the mount id stays the same.
func makeMountPrivate(path string) error {
	mntID := func(p string) (uint64, error) {
		var stx unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
			return 0, err
		}
		return stx.Mnt_id, nil
	}
	dir := filepath.Clean(path)
	id, err := mntID(dir)
	if err != nil {
		return err
	}
	for dir != "/" {
		up := filepath.Dir(dir)
		upID, err := mntID(up)
		if err != nil {
			return err
		}
		if upID != id {
			break
		}
		dir = up
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the mount at %s private: %w", dir, err)
	}
	return nil
}

// finishRootfs switches root to the container's rootfs.
func finishRootfs(b *build) error {
	cfg := b.cfg
	if cfg.SharedMounts {
		// No mount namespace of the container's own: pivot_root or a move would change the
		// caller's root; a chroot changes only the container's.
		if err := unix.Chdir(cfg.Rootfs); err != nil {
			return err
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	} else if cfg.NoPivot {
		if err := moveRoot(cfg.Rootfs); err != nil {
			return err
		}
	} else if err := pivotRoot(cfg.Rootfs); err != nil {
		return err
	}
	if _, late := rootPropagation(cfg.Spec); late != 0 {
		if err := unix.Mount("", "/", "", late, ""); err != nil {
			return fmt.Errorf("make / %q: %w", cfg.Spec.Linux.RootfsPropagation, err)
		}
	}
	return procfs.Verify()
}

func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then
	// removes it without needing a directory for it inside the rootfs.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

// moveRoot is --no-pivot: the rootfs is moved over / and chrooted into. The old root stays in
// the mount namespace below it, and with it the host's full procfs and sysfs mounts; the kernel
// lets a new user namespace mount procfs or sysfs only if every such mount it can see is
// unmasked, so a container that keeps them reachable could mount a fresh, unmasked /proc. As
// runc does, they are detached first (or covered by an empty tmpfs where that is refused).
func moveRoot(rootfs string) error {
	if err := hideHostProcSys(rootfs); err != nil {
		return err
	}
	if err := unix.Chdir(rootfs); err != nil {
		return err
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}
