package shimapi

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/children"
	"github.com/husk-runtime/husk/internal/idmap"
	"github.com/husk-runtime/husk/specs"
)

// mountAll mounts the rootfs mounts containerd's snapshotter hands over (overlay, bind, ...)
// onto target, undoing what it did if one fails.
func mountAll(mounts rootfsMounts, target string, mon children.Monitor) error {
	if len(mounts) == 0 {
		return nil
	}
	if err := os.MkdirAll(target, 0o711); err != nil {
		return fmt.Errorf("rootfs %s: %w", target, err)
	}
	for i, m := range mounts {
		options, cleanup, err := idmappedLowerdirs(m.Type, m.Options, target, mon)
		if err != nil {
			unmountAll(target)
			return fmt.Errorf("rootfs mount %d: %w", i, err)
		}
		defer cleanup()
		opts, err := specs.ParseMountOptions(options)
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

// idmappedLowerdirs handles containerd's uidmap=/gidmap= options (a user-namespaced pod's
// rootfs, containerd 2.x): overlay wants its lowerdirs idmapped, so each is cloned, idmapped and
// attached under a directory beside target, and the options name those instead. cleanup
// detaches them once the overlay is mounted (it holds the layers itself), as containerd does.
func idmappedLowerdirs(typ string, options []string, target string, mon children.Monitor) ([]string, func(), error) {
	var uidmap, gidmap string
	var rest []string
	for _, o := range options {
		switch {
		case strings.HasPrefix(o, "uidmap="):
			uidmap = strings.TrimPrefix(o, "uidmap=")
		case strings.HasPrefix(o, "gidmap="):
			gidmap = strings.TrimPrefix(o, "gidmap=")
		default:
			rest = append(rest, o)
		}
	}
	nothing := func() {}
	if uidmap == "" && gidmap == "" {
		return options, nothing, nil
	}
	if typ != "overlay" || uidmap == "" || gidmap == "" {
		return nil, nothing, fmt.Errorf("uidmap/gidmap options are supported on overlay mounts with both maps (type %q)", typ)
	}
	uids, err := idmap.ParseList(uidmap)
	if err != nil {
		return nil, nothing, err
	}
	gids, err := idmap.ParseList(gidmap)
	if err != nil {
		return nil, nothing, err
	}
	ns, err := idmap.UserNamespace(uids, gids, mon)
	if err != nil {
		return nil, nothing, err
	}
	defer ns.Close()
	base, err := os.MkdirTemp(filepath.Dir(target), ".idmapped-")
	if err != nil {
		return nil, nothing, err
	}
	var attached []string
	cleanup := func() {
		for _, d := range attached {
			unix.Unmount(d, unix.MNT_DETACH)
		}
		os.RemoveAll(base)
	}
	for i, o := range rest {
		lowers, ok := strings.CutPrefix(o, "lowerdir=")
		if !ok {
			continue
		}
		var mapped []string
		for j, l := range strings.Split(lowers, ":") {
			d := filepath.Join(base, strconv.Itoa(j))
			if err := os.Mkdir(d, 0o700); err != nil {
				cleanup()
				return nil, nothing, err
			}
			if err := idmap.MountAt(l, d, ns); err != nil {
				cleanup()
				return nil, nothing, err
			}
			attached = append(attached, d)
			mapped = append(mapped, d)
		}
		rest[i] = "lowerdir=" + strings.Join(mapped, ":")
	}
	return rest, cleanup, nil
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
