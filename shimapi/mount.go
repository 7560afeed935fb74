package shimapi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/specs"
)

// mountAll mounts the rootfs mounts containerd's snapshotter hands over (overlay, bind, ...)
// onto target, undoing what it did if one fails.
func mountAll(mounts rootfsMounts, target string) error {
	if len(mounts) == 0 {
		return nil
	}
	if err := os.MkdirAll(target, 0o711); err != nil {
		return fmt.Errorf("rootfs %s: %w", target, err)
	}
	for i, m := range mounts {
		opts, err := specs.ParseMountOptions(m.Options)
		if err != nil {
			return fmt.Errorf("rootfs mount %d: %w", i, err)
		}
		flags := opts.Flags
		typ := m.Type
		if opts.Bind || typ == "bind" {
			flags |= unix.MS_BIND
			if opts.Recursive {
				flags |= unix.MS_REC
			}
			typ = ""
		}
		if err := unix.Mount(m.Source, target, typ, flags, opts.Data); err != nil {
			unmountAll(target)
			return fmt.Errorf("mount rootfs %s (%s) on %s: %w", m.Source, m.Type, target, err)
		}
		if opts.Bind && flags&unix.MS_RDONLY != 0 {
			unix.Mount("", target, "", flags|unix.MS_REMOUNT, "")
		}
	}
	return nil
}

// unmountAll removes every mount stacked on target.
func unmountAll(target string) {
	for i := 0; i < 32; i++ {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			return
		}
	}
}

// joinCgroup moves the shim into the cgroup containerd asked for (ShimCgroup).
func joinCgroup(path string) error {
	pid := []byte(fmt.Sprint(os.Getpid()))
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return os.WriteFile(filepath.Join("/sys/fs/cgroup", path, "cgroup.procs"), pid, 0)
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join("/sys/fs/cgroup", e.Name(), path)
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err == nil {
			os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0)
		}
	}
	return nil
}
