package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/specs"
)

// prepareRootfs does everything that must happen before pivot_root: root propagation, the
// rootfs bind, the spec's mounts and /dev.
func prepareRootfs(b *build) error {
	cfg := b.cfg
	spec := cfg.Spec
	// In the caller's mount namespace (SharedMounts) the parent made the rootfs a private bind
	// already, and / is not the container's to change.
	if !cfg.SharedMounts {
		prop, _ := rootPropagation(spec)
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return fmt.Errorf("make / %q: %w", spec.Linux.RootfsPropagation, err)
		}
		if prop&unix.MS_SHARED != 0 {
			// pivot_root refuses a shared parent, and mounts under a bind of a shared rootfs
			// would reach the host's view of it: the mount holding the rootfs is made private
			// (that one only, as runc does), so the rootfs bind is private too.
			if err := makeMountPrivate(cfg.Rootfs); err != nil {
				return fmt.Errorf("make / %q: %w", spec.Linux.RootfsPropagation, err)
			}
		}
		if err := unix.Mount(cfg.Rootfs, cfg.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind rootfs %q: %w", cfg.Rootfs, err)
		}
	}
	root, err := os.OpenFile(cfg.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()
	devBound := false
	for i, m := range spec.Mounts {
		// As runc (LexicallyStripRoot): a destination written with the rootfs's host path in
		// front names the same place inside.
		if rel, ok := strings.CutPrefix(path.Clean(m.Destination), path.Clean(cfg.Rootfs)+"/"); ok && filepath.IsAbs(cfg.Rootfs) {
			m.Destination = "/" + rel
		}
		if err := mountInRoot(root, b, i, m); err != nil {
			return fmt.Errorf("error mounting %q to rootfs at %q: %w", m.Source, m.Destination, err) // runc's words
		}
		if path.Clean(m.Destination) == "/dev" && specs.IsBind(m) {
			devBound = true
		}
	}
	if !devBound {
		if err := createDevices(root, spec); err != nil {
			return err
		}
	}
	for _, ro := range b.readonlyTmpfs {
		mnt, err := OpenInRoot(root, ro.dest)
		if err != nil {
			return fmt.Errorf("mount %q read-only: %w", ro.dest, err)
		}
		// A bind remount sets the mount's flags to exactly these: keep the others it had.
		keep := ro.flags & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME)
		err = remount(mnt, keep|unix.MS_RDONLY)
		mnt.Close()
		if err != nil {
			return fmt.Errorf("mount %q read-only: %w", ro.dest, err)
		}
	}
	return nil
}

func mountInRoot(root *os.File, b *build, index int, m rspec.Mount) error {
	cfg := b.cfg
	opts, err := specs.ParseMountOptions(m.Options)
	if err != nil {
		return err
	}
	if m.Type == "bind" {
		opts.Bind = true
	}
	switch {
	case opts.Bind:
		return bindMount(root, b, index, m, opts)
	case m.Type == "cgroup":
		return mountCgroup(root, b, m, opts)
	}
	if m.Type == "proc" || m.Type == "sysfs" {
		if err := checkPseudoFsDest(root, m); err != nil {
			return err
		}
	}
	if m.Type == "tmpfs" {
		prepareTmpfs(root, b, m, &opts)
	}
	dst, err := openDest(root, cfg.Rootfs, m.Destination, false)
	if err != nil {
		return err
	}
	defer dst.Close()
	if m.Type == "proc" || m.Type == "sysfs" {
		if err := checkRealDir(cfg.Rootfs, m.Destination, dst); err != nil {
			return err
		}
	}
	if m.Type == "proc" && b.site.ProcCtx != nil {
		// husk create's joined thread: procfs from the init's own pid namespace.
		if err := mountFromContext(b.site.ProcCtx, m.Source, dst, opts); err != nil {
			return fmt.Errorf("mount proc on %q: %w", m.Destination, err)
		}
		return finishMount(root, m.Destination, opts)
	}
	var below *os.File // tmpcopyup: the directory the tmpfs covers, to copy from
	if opts.TmpCopyUp {
		if below, err = os.OpenFile(procFd(dst), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
		defer below.Close()
	}
	if err := unix.Mount(m.Source, procFd(dst), m.Type, opts.Flags, specs.MountData(opts.Data, m.Type, cfg.Spec.Linux.MountLabel)); err != nil {
		if m.Type == "sysfs" && errors.Is(err, unix.EPERM) {
			// Without a network namespace of our own the kernel refuses a new sysfs; bind the
			// host's read-only instead, as runc does for rootless containers.
			return bindMount(root, b, -1, rspec.Mount{Destination: m.Destination, Source: "/sys", Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}}, specs.MountOptions{Bind: true, Recursive: true, Flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC})
		}
		return fmt.Errorf("mount %q on %q: %w", m.Type, m.Destination, err)
	}
	if below != nil {
		if err := copyUpInto(root, m.Destination, below); err != nil {
			return err
		}
	}
	return finishMount(root, m.Destination, opts)
}

// checkPseudoFsDest refuses to mount proc or sysfs on a symlink the image planted, or on
// anything but a directory (CVE-2019-16884/CVE-2023-27561; runc's words).
func checkPseudoFsDest(root *os.File, m rspec.Mount) error {
	f, err := openNoFollow(root, m.Destination)
	if err != nil {
		return nil // made as a directory when opened for the mount
	}
	var st unix.Stat_t
	err = unix.Fstat(int(f.Fd()), &st)
	f.Close()
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("%q is a symlink: %s must be mounted on ordinary directory", m.Destination, m.Type)
	}
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%q is not a directory: %s must be mounted on ordinary directory", m.Destination, m.Type)
	}
	return nil
}

// prepareTmpfs adjusts a tmpfs's options as runc does: a read-only one is filled first (a
// read-only /dev still gets its nodes and mounts) and made read-only once the rootfs is built
// (prepareRootfs); one over an existing directory takes its mode (a "mode=" of the config's,
// after it, still wins), a new mountpoint gets the kernel's 1777.
func prepareTmpfs(root *os.File, b *build, m rspec.Mount, opts *specs.MountOptions) {
	if opts.Flags&unix.MS_RDONLY != 0 {
		opts.Flags &^= unix.MS_RDONLY
		b.readonlyTmpfs = append(b.readonlyTmpfs, readonlyMount{m.Destination, opts.Flags})
	}
	if f, err := OpenInRoot(root, m.Destination); err == nil {
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			opts.Data = strings.TrimSuffix(fmt.Sprintf("mode=%04o,%s", st.Mode&0o7777, opts.Data), ",")
		}
		f.Close()
	}
}

// finishMount applies what acts on a mount once it exists, the propagation and the recursive
// attributes, to the new mount at dest: the fd opened before mounting names the directory
// below it, where a propagation change fails (EINVAL) or lands on the wrong mount. Nothing runs
// in the container yet, so dest cannot have been swapped since the mount.
func finishMount(root *os.File, dest string, opts specs.MountOptions) error {
	if len(opts.Propagation) == 0 && opts.RecAttrSet == 0 && opts.RecAttrClr == 0 {
		return nil
	}
	mnt, err := OpenInRoot(root, dest)
	if err != nil {
		return err
	}
	defer mnt.Close()
	for _, p := range opts.Propagation {
		if err := unix.Mount("", procFd(mnt), "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	if opts.RecAttrSet != 0 || opts.RecAttrClr != 0 {
		attr := &unix.MountAttr{Attr_set: opts.RecAttrSet, Attr_clr: opts.RecAttrClr}
		if err := unix.MountSetattr(int(mnt.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("set recursive mount attributes: %w", err)
		}
	}
	return nil
}

func bindMount(root *os.File, b *build, index int, m rspec.Mount, opts specs.MountOptions) error {
	cfg := b.cfg
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(cfg.Bundle, src)
	}
	// In a new user namespace the parent cloned the source already (MountFds: a detached
	// open_tree copy, attached here with move_mount): the namespace's root may not reach what
	// the host's root can, and a plain bind from the parent's namespace is refused.
	srcFd, detached := cfg.MountFds[strconv.Itoa(index)]
	if !detached && slices.Contains(cfg.LateMountSources, index) {
		tree, err := lateMountSource(b.cfg.Conn, index)
		if err != nil {
			return err
		}
		defer tree.Close()
		srcFd, detached = int(tree.Fd()), true
	}
	if !detached {
		srcf, err := OpenSource(cfg.Rootfs, src)
		if err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		defer srcf.Close()
		srcFd = int(srcf.Fd())
	}
	var st unix.Stat_t
	if err := unix.Fstat(srcFd, &st); err != nil {
		return fmt.Errorf("bind source %q: %w", m.Source, err)
	}
	dst, err := openDest(root, cfg.Rootfs, m.Destination, st.Mode&unix.S_IFMT != unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer dst.Close()
	flags := uintptr(unix.MS_BIND)
	if opts.Recursive {
		flags |= unix.MS_REC
	}
	if detached {
		if err := unix.MoveMount(srcFd, "", int(dst.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
			return fmt.Errorf("bind %q: move_mount: %w", m.Source, err)
		}
	} else if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(srcFd), procFd(dst), "", flags, ""); err != nil {
		return fmt.Errorf("bind %q: %w", m.Source, err)
	}
	// As runc 1.5: a bind with no flag option keeps the source's flags; with any (set or
	// cleared), the mount gets exactly the flags asked for (atime modes aside: the kernel keeps
	// them on a remount that names none). In a user namespace the source's lockable flags stay,
	// as the kernel keeps them on a mount it copies into a less privileged namespace: husk's
	// detached clones are made by the host's root and are not locked, and "bind,nosuid,nodev"
	// of a read-only host mount came out writable.
	if remountFlags := opts.Flags &^ (unix.MS_REMOUNT | unix.MS_BIND | unix.MS_REC); remountFlags != 0 || opts.ClearFlags != 0 {
		if specs.HasNamespace(cfg.Spec.Linux.Namespaces, rspec.UserNamespace) {
			locked, err := lockedFlags(srcFd, remountFlags, opts.ClearFlags)
			if err != nil {
				return fmt.Errorf("bind %q on %q: %w", m.Source, m.Destination, err)
			}
			remountFlags |= locked
		}
		// The mount now covers dst's path; reopen to act on the new mount, not the one below.
		mnt, err := OpenInRoot(root, m.Destination)
		if err != nil {
			return err
		}
		defer mnt.Close()
		if err := remount(mnt, remountFlags); err != nil {
			return err
		}
	}
	return finishMount(root, m.Destination, opts)
}

// lateMountSource asks the parent for the clone of a bind source inside the rootfs, made now
// that the mounts before it are in place (see detachedMounts).
func lateMountSource(pipe *initproto.Conn, index int) (*os.File, error) {
	if pipe == nil {
		return nil, fmt.Errorf("mounts[%d]: no parent to clone the source", index)
	}
	fd, err := pipe.AskMountSource(index)
	if err != nil {
		return nil, fmt.Errorf("bind source: %w", err)
	}
	return os.NewFile(uintptr(fd), "mount-source"), nil
}

// statfsMountFlags maps statfs(2)'s per-mount flags to the mount(2) flags that set them.
var statfsMountFlags = map[int64]uintptr{
	unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
	unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME,
}

var lockedFlagNames = map[uintptr]string{
	unix.MS_RDONLY: "ro", unix.MS_NOSUID: "nosuid", unix.MS_NODEV: "nodev", unix.MS_NOEXEC: "noexec",
	unix.MS_NOATIME: "noatime", unix.MS_NODIRATIME: "nodiratime",
}

// mountFlags returns the per-mount flags of the mount fd is on, as mount(2) flags.
func mountFlags(fd int) (uintptr, error) {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return 0, err
	}
	var flags uintptr
	for st, ms := range statfsMountFlags {
		if sfs.Flags&st != 0 {
			flags |= ms
		}
	}
	return flags, nil
}

// lockedFlags returns the flags of the bind source src that a user namespace may not drop, or
// an error (EPERM, as the kernel's) when the config clears one of them explicitly, or asks for
// an atime mode other than the source's: the kernel locks the atime mode as a whole
// (MNT_LOCK_ATIME), so a remount that names any atime flag must end where the source is.
func lockedFlags(src int, set, cleared uintptr) (uintptr, error) {
	locked, err := mountFlags(src)
	if err != nil {
		return 0, err
	}
	// Clearing an atime flag ("atime", "diratime") names no atime flag to the kernel, which
	// then keeps the source's mode: it passes and changes nothing, as in runc.
	if bad := locked & cleared &^ (unix.MS_NOATIME | unix.MS_NODIRATIME); bad != 0 {
		var names []string
		for f, n := range lockedFlagNames {
			if bad&f != 0 {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		return 0, fmt.Errorf("the source is %s, which a container with a user namespace cannot clear: %w", strings.Join(names, ","), unix.EPERM)
	}
	const atimeFlags = unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME
	if set&atimeFlags != 0 {
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(src, &sfs); err != nil {
			return 0, err
		}
		have := locked & (unix.MS_NOATIME | unix.MS_NODIRATIME)
		if sfs.Flags&unix.ST_RELATIME != 0 {
			have |= unix.MS_RELATIME
		}
		// What the kernel makes of the flags (path_mount): relatime unless noatime or
		// strictatime, nodiratime as asked.
		want := set & (unix.MS_NOATIME | unix.MS_NODIRATIME)
		if set&(unix.MS_NOATIME|unix.MS_STRICTATIME) == 0 {
			want |= unix.MS_RELATIME
		}
		if have != want {
			return 0, fmt.Errorf("the source's atime mode is %s, which a container with a user namespace cannot change to %s: %w", atimeName(have), atimeName(want), unix.EPERM)
		}
	}
	return locked &^ (unix.MS_NOATIME | unix.MS_NODIRATIME), nil // atime: the kernel keeps it
}

// atimeName names an atime mode as mount(8) options.
func atimeName(f uintptr) string {
	var names []string
	switch {
	case f&unix.MS_NOATIME != 0:
		names = append(names, "noatime")
	case f&unix.MS_RELATIME != 0:
		names = append(names, "relatime")
	default:
		names = append(names, "strictatime")
	}
	if f&unix.MS_NODIRATIME != 0 {
		names = append(names, "nodiratime")
	}
	return strings.Join(names, ",")
}

// remount applies per-mount flags to a bind mount, keeping the flags the kernel locked (a bind
// from a more privileged namespace cannot drop nosuid/nodev/noexec/ro).
func remount(f *os.File, flags uintptr) error {
	err := unix.Mount("", procFd(f), "", unix.MS_BIND|unix.MS_REMOUNT|flags, "")
	if err == nil {
		return nil
	}
	var sfs unix.Statfs_t
	if serr := unix.Fstatfs(int(f.Fd()), &sfs); serr != nil {
		return fmt.Errorf("remount: %w", err)
	}
	locked := uintptr(sfs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME)
	if err2 := unix.Mount("", procFd(f), "", unix.MS_BIND|unix.MS_REMOUNT|flags|locked, ""); err2 != nil {
		return fmt.Errorf("remount: %w", err)
	}
	return nil
}

// mountCgroup gives the container a view of its cgroup: cgroup2 directly on unified hosts; on
// v1 and hybrid hosts a tmpfs with one mount per hierarchy. Inside a cgroup namespace those are
// fresh cgroupfs mounts rooted at the container's cgroup; without one, binds of its directories.
func mountCgroup(root *os.File, b *build, m rspec.Mount, opts specs.MountOptions) error {
	cfg := b.cfg
	dst, err := openDest(root, cfg.Rootfs, m.Destination, false)
	if err != nil {
		return err
	}
	defer dst.Close()
	flags := opts.Flags &^ unix.MS_RDONLY
	ro := opts.Flags&unix.MS_RDONLY != 0
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		if err := unix.Mount("cgroup2", procFd(dst), "cgroup2", opts.Flags, ""); err != nil {
			return fmt.Errorf("mount cgroup2: %w", err)
		}
		return nil
	}
	if err := unix.Mount("tmpfs", procFd(dst), "tmpfs", flags, "mode=755"); err != nil {
		return fmt.Errorf("mount cgroup tmpfs: %w", err)
	}
	// The tmpfs is ours and new, and nothing runs in the container yet: its directories are
	// made and opened by name, no in-root resolution needed.
	tmpfs, err := OpenInRoot(root, m.Destination)
	if err != nil {
		return err
	}
	defer tmpfs.Close()
	self := "/proc/self/cgroup"
	if b.site.fromParent() {
		self = "/proc/" + strconv.Itoa(b.site.InitPid) + "/cgroup" // husk create's joined thread
	}
	own, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	newNs := specs.HasNewNamespace(cfg.Spec, rspec.CgroupNamespace)
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls, cgPath := parts[1], parts[2]
		name, fstype, data := ctrls, "cgroup", ctrls
		hostDir := filepath.Join("/sys/fs/cgroup", ctrls)
		if ctrls == "" {
			name, fstype, data, hostDir = "unified", "cgroup2", "", "/sys/fs/cgroup/unified"
		} else if strings.HasPrefix(ctrls, "name=") {
			name = strings.TrimPrefix(ctrls, "name=")
			hostDir = filepath.Join("/sys/fs/cgroup", name)
		}
		if strings.Contains(name, "/") || name == "." || name == ".." {
			continue
		}
		if _, err := os.Stat(hostDir); err != nil {
			continue
		}
		if err := unix.Mkdirat(int(tmpfs.Fd()), name, 0o755); err != nil && err != unix.EEXIST {
			return fmt.Errorf("mount cgroup %s: %w", name, err)
		}
		if err := mountCgroupDir(tmpfs, name, newNs, fstype, data, filepath.Join(hostDir, cgPath), flags, ro); err != nil {
			return fmt.Errorf("mount cgroup %s: %w", name, err)
		}
	}
	if ro {
		return unix.Mount("", procFd(tmpfs), "", unix.MS_REMOUNT|unix.MS_RDONLY|flags, "mode=755")
	}
	return nil
}

// mountCgroupDir mounts one hierarchy on dir/name: a cgroupfs rooted at the container's cgroup
// inside its cgroup namespace, else a bind of its directory on the host.
func mountCgroupDir(dir *os.File, name string, newNs bool, fstype, data, hostPath string, flags uintptr, ro bool) error {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	if newNs {
		err = unix.Mount("cgroup", procFd(d), fstype, flags, data)
	} else {
		err = unix.Mount(hostPath, procFd(d), "", unix.MS_BIND|unix.MS_REC, "")
	}
	if err != nil || !ro {
		return err
	}
	// The new mount covers the name: open it again to remount the mount, not the directory.
	fd, err = unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	mf := os.NewFile(uintptr(fd), name)
	defer mf.Close()
	return remount(mf, flags|unix.MS_RDONLY)
}

var defaultDevices = []devSpec{
	{"/dev/null", unix.S_IFCHR, 1, 3, 0o666, 0, 0},
	{"/dev/zero", unix.S_IFCHR, 1, 5, 0o666, 0, 0},
	{"/dev/full", unix.S_IFCHR, 1, 7, 0o666, 0, 0},
	{"/dev/random", unix.S_IFCHR, 1, 8, 0o666, 0, 0},
	{"/dev/urandom", unix.S_IFCHR, 1, 9, 0o666, 0, 0},
	{"/dev/tty", unix.S_IFCHR, 5, 0, 0o666, 0, 0},
}

// mountAttrs maps the mount flags a new-API mount takes as attributes.
var mountAttrs = map[uintptr]uint64{
	unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
	unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
	unix.MS_NOATIME: unix.MOUNT_ATTR_NOATIME, unix.MS_NODIRATIME: unix.MOUNT_ATTR_NODIRATIME,
	unix.MS_RELATIME: unix.MOUNT_ATTR_RELATIME, unix.MS_STRICTATIME: unix.MOUNT_ATTR_STRICTATIME,
}

// FlagsMountableFromContext reports whether a mount with these flags can be made from a procfs
// context (the new mount API takes each of them as an attribute).
func FlagsMountableFromContext(flags uintptr) bool {
	for f := flags; f != 0; f &= f - 1 {
		if _, ok := mountAttrs[f&-f]; !ok {
			return false
		}
	}
	return true
}

// mountFromContext makes the filesystem of a context the init opened and mounts it on dst.
func mountFromContext(ctx *os.File, source string, dst *os.File, opts specs.MountOptions) error {
	fd := int(ctx.Fd())
	if err := unix.FsconfigSetString(fd, "source", source); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	for _, kv := range strings.Split(opts.Data, ",") {
		if kv == "" {
			continue
		}
		var err error
		if k, v, ok := strings.Cut(kv, "="); ok {
			err = unix.FsconfigSetString(fd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fd, kv)
		}
		if err != nil {
			return fmt.Errorf("option %q: %w", kv, err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	var attrs uint64
	for flag, attr := range mountAttrs {
		if opts.Flags&flag != 0 {
			attrs |= attr
		}
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, int(attrs))
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", int(dst.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}
