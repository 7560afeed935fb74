package libcontainer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/specs"
)

// openInRoot is pathrs.OpenatInRoot less its cosmetic last step. With openat2 the kernel's
// RESOLVE_IN_ROOT keeps the lookup inside root, and pathrs then only reads the result's path
// back through procfs to name the *os.File: ~0.1 ms a call, tens of calls a create. Kernels
// without openat2 go to pathrs, which resolves in userspace.
func openInRoot(root *os.File, p string) (*os.File, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(int(root.Fd()), p, how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), p), nil
		case err == unix.ENOSYS:
			return pathrs.OpenatInRoot(root, p)
		case (err == unix.EAGAIN || err == unix.EINTR) && tries < 32:
			continue // a rename raced the lookup: the kernel asks for a retry
		}
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
}

// mkdirAllInRoot opens directory p inside root, creating what is missing (pathrs, the slower
// path, only then).
func mkdirAllInRoot(root *os.File, p string) (*os.File, error) {
	if f, err := openInRoot(root, p); err == nil {
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return f, nil
		}
		f.Close()
	}
	return pathrs.MkdirAllHandle(root, p, 0o755)
}

// procFd names an open fd so that mount(2) acts on exactly the inode we resolved and checked,
// not on whatever a path names by the time the kernel walks it (CVE-2021-30465).
func procFd(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// prepareRootfs does everything that must happen before pivot_root: root propagation, the
// rootfs bind, the spec's mounts and /dev.
func prepareRootfs(b *rootfsBuild) error {
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
		mnt, err := openInRoot(root, ro.dest)
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

// checkNoEscape walks dest the way a naive host-side resolution would and refuses a relative
// symlink that climbs out of the rootfs: such a destination is an attack on the host, and
// saying so beats silently mounting somewhere the user did not mean.
func checkNoEscape(rootfs, dest string) error {
	parts := strings.Split(strings.Trim(path.Clean(dest), "/"), "/")
	var stack []string
	for hops := 0; len(parts) > 0; {
		p := parts[0]
		parts = parts[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return fmt.Errorf("destination %q escapes the rootfs", dest)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		cur := filepath.Join(append([]string{rootfs}, append(stack, p)...)...)
		target, err := os.Readlink(cur)
		if err != nil {
			stack = append(stack, p)
			continue
		}
		if hops++; hops > 40 {
			return fmt.Errorf("destination %q: too many levels of symbolic links", dest)
		}
		if strings.HasPrefix(target, "/") {
			stack = nil // absolute links are relative to the container root
		} else {
			// A relative link that climbs above the root escapes it.
			depth := len(stack)
			for _, t := range strings.Split(target, "/") {
				switch t {
				case "..":
					depth--
					if depth < 0 {
						return fmt.Errorf("destination %q escapes the rootfs through symlink %q -> %q", dest, "/"+strings.Join(append(stack, p), "/"), target)
					}
				case "", ".":
				default:
					depth++
				}
			}
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return nil
}

// openDest resolves (creating if needed) a mount destination inside root, as a directory or,
// for a file source, as a file. Symlinks are followed but never out of root.
func openDest(root *os.File, rootfs, dest string, file bool) (*os.File, error) {
	if err := checkNoEscape(rootfs, dest); err != nil {
		return nil, err
	}
	if f, err := openInRoot(root, dest); err == nil {
		return f, nil
	}
	// A destination through a dangling symlink (an image's /etc/hosts -> /tmp/hosts): its
	// target is made, inside the rootfs, as runc 1.5 does. SecureJoin resolves the symlinks
	// scoped to the rootfs, keeping the missing components; the creation below is scoped too.
	if resolved, err := securejoin.SecureJoin(rootfs, dest); err == nil {
		if rel, err := filepath.Rel(rootfs, resolved); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			dest = "/" + rel
		}
	}
	if !file {
		return pathrs.MkdirAllHandle(root, dest, 0o755)
	}
	dir, err := pathrs.MkdirAllHandle(root, path.Dir(path.Clean(dest)), 0o755)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), path.Base(dest), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err != nil && err != unix.EEXIST {
		return nil, err
	}
	if err == nil {
		unix.Close(fd)
	}
	return openInRoot(root, dest)
}

// isProcOrSys is for CVE-2023-27561/CVE-2019-19921: procfs and sysfs must land on a real
// directory, not on a symlink the image planted.
func checkRealDir(rootfs, dest string, f *os.File) error {
	got, err := os.Readlink(procFd(f))
	if err != nil {
		return err
	}
	if got != filepath.Join(rootfs, path.Clean(dest)) {
		return fmt.Errorf("destination %q is a symlink (to %q); refusing to mount there", dest, strings.TrimPrefix(got, rootfs))
	}
	return nil
}

func mountInRoot(root *os.File, b *rootfsBuild, index int, m rspec.Mount) error {
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
	if m.Type == "proc" && b.site.procCtx != nil {
		// husk create's joined thread: procfs from the init's own pid namespace.
		if err := mountFromContext(b.site.procCtx, m.Source, dst, opts); err != nil {
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
func prepareTmpfs(root *os.File, b *rootfsBuild, m rspec.Mount, opts *specs.MountOptions) {
	if opts.Flags&unix.MS_RDONLY != 0 {
		opts.Flags &^= unix.MS_RDONLY
		b.readonlyTmpfs = append(b.readonlyTmpfs, readonlyMount{m.Destination, opts.Flags})
	}
	if f, err := openInRoot(root, m.Destination); err == nil {
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			opts.Data = strings.TrimSuffix(fmt.Sprintf("mode=%04o,%s", st.Mode&0o7777, opts.Data), ",")
		}
		f.Close()
	}
}

// copyUpInto copies what the tmpfs at dest covers (below) into it (tmpcopyup).
func copyUpInto(root *os.File, dest string, below *os.File) error {
	path, err := openInRoot(root, dest)
	if err != nil {
		return err
	}
	defer path.Close()
	// openInRoot gives an O_PATH fd, on which fchmod and the copy's *at calls fail with
	// EBADF: reopen the new tmpfs's root as a directory.
	mnt, err := os.OpenFile(procFd(path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tmpcopyup: %w", err)
	}
	defer mnt.Close()
	if err := copyUp(below, mnt); err != nil {
		return fmt.Errorf("tmpcopyup: %w", err)
	}
	return nil
}

// finishMount applies what acts on a mount once it exists, the propagation and the recursive
// attributes, to the new mount at dest: the fd opened before mounting names the directory
// below it, where a propagation change fails (EINVAL) or lands on the wrong mount. Nothing runs
// in the container yet, so dest cannot have been swapped since the mount.
func finishMount(root *os.File, dest string, opts specs.MountOptions) error {
	if len(opts.Propagation) == 0 && opts.RecAttrSet == 0 && opts.RecAttrClr == 0 {
		return nil
	}
	mnt, err := openInRoot(root, dest)
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

func bindMount(root *os.File, b *rootfsBuild, index int, m rspec.Mount, opts specs.MountOptions) error {
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
		tree, err := lateMountSource(b.pipe, index)
		if err != nil {
			return err
		}
		defer tree.Close()
		srcFd, detached = int(tree.Fd()), true
	}
	if !detached {
		srcf, err := openSourceInRootfs(cfg.Rootfs, src)
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
		if hasNamespace(cfg.Spec.Linux.Namespaces, rspec.UserNamespace) {
			locked, err := lockedFlags(srcFd, remountFlags, opts.ClearFlags)
			if err != nil {
				return fmt.Errorf("bind %q on %q: %w", m.Source, m.Destination, err)
			}
			remountFlags |= locked
		}
		// The mount now covers dst's path; reopen to act on the new mount, not the one below.
		mnt, err := openInRoot(root, m.Destination)
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

// openSourceInRootfs opens a bind source as O_PATH. A source inside the rootfs (the host path
// of a directory of the image, or of a mount made there before) resolves inside it, as the
// container would see it: an image's symlink cannot turn it into a host path. Any other source
// is the host path the config names.
func openSourceInRootfs(rootfs, src string) (*os.File, error) {
	rootfs = filepath.Clean(rootfs)
	rel, ok := strings.CutPrefix(src, rootfs+"/")
	if rootfs == "" || rootfs == "/" || (!ok && src != rootfs) {
		return os.OpenFile(src, unix.O_PATH|unix.O_CLOEXEC, 0)
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return openInRoot(root, "/"+rel)
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
func mountCgroup(root *os.File, b *rootfsBuild, m rspec.Mount, opts specs.MountOptions) error {
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
	tmpfs, err := openInRoot(root, m.Destination)
	if err != nil {
		return err
	}
	defer tmpfs.Close()
	self := "/proc/self/cgroup"
	if b.site.fromParent() {
		self = "/proc/" + strconv.Itoa(b.site.initPid) + "/cgroup" // husk create's joined thread
	}
	own, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	newNs := hasNewNamespace(cfg.Spec, rspec.CgroupNamespace)
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

type devSpec struct {
	path         string
	kind         uint32
	major, minor uint32
	mode         uint32
	uid, gid     uint32
}

var defaultDevices = []devSpec{
	{"/dev/null", unix.S_IFCHR, 1, 3, 0o666, 0, 0},
	{"/dev/zero", unix.S_IFCHR, 1, 5, 0o666, 0, 0},
	{"/dev/full", unix.S_IFCHR, 1, 7, 0o666, 0, 0},
	{"/dev/random", unix.S_IFCHR, 1, 8, 0o666, 0, 0},
	{"/dev/urandom", unix.S_IFCHR, 1, 9, 0o666, 0, 0},
	{"/dev/tty", unix.S_IFCHR, 5, 0, 0o666, 0, 0},
}

// createDevices makes the default and the spec's device nodes, and the /dev symlinks. In a user
// namespace mknod is not allowed, so the host's nodes are bind-mounted instead, as runc does.
func createDevices(root *os.File, spec *rspec.Spec) error {
	devs := append([]devSpec(nil), defaultDevices...)
	for _, d := range spec.Linux.Devices {
		kind := uint32(unix.S_IFCHR)
		switch d.Type {
		case "b":
			kind = unix.S_IFBLK
		case "p":
			kind = unix.S_IFIFO
		}
		mode := uint32(0o666)
		if d.FileMode != nil {
			mode = uint32(*d.FileMode) & 0o7777
		}
		var uid, gid uint32
		if d.UID != nil {
			uid = *d.UID
		}
		if d.GID != nil {
			gid = *d.GID
		}
		devs = append(devs, devSpec{d.Path, kind, uint32(d.Major), uint32(d.Minor), mode, uid, gid})
	}
	inUserNS := hasNamespace(spec.Linux.Namespaces, rspec.UserNamespace) // new, or joined (a pod's)
	old := unix.Umask(0)
	defer unix.Umask(old)
	// Devices mostly share one directory (/dev): resolve each directory once.
	dirs := map[string]*os.File{}
	defer func() {
		for _, d := range dirs {
			d.Close()
		}
	}()
	for _, d := range devs {
		parent := path.Dir(path.Clean(d.path))
		dir, ok := dirs[parent]
		if !ok {
			h, err := mkdirAllInRoot(root, parent)
			if err != nil {
				return fmt.Errorf("device %q: %w", d.path, err)
			}
			dirs[parent], dir = h, h
		}
		if err := makeDevice(dir, d, inUserNS); err != nil {
			return fmt.Errorf("device %q: %w", d.path, err)
		}
	}
	links := [][2]string{{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"}, {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	devDir, ok := dirs["/dev"]
	if !ok {
		h, err := mkdirAllInRoot(root, "/dev")
		if err != nil {
			return fmt.Errorf("/dev: %w", err)
		}
		dirs["/dev"], devDir = h, h
	}
	// /dev/ptmx points at the devpts instance mounted at /dev/pts, so ptys made in the
	// container belong to it.
	if fd, err := unix.Openat(int(devDir.Fd()), "pts/ptmx", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		_ = unix.Unlinkat(int(devDir.Fd()), "ptmx", 0)
		links = append(links, [2]string{"pts/ptmx", "/dev/ptmx"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], int(devDir.Fd()), path.Base(l[1])); err != nil && err != unix.EEXIST {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

// makeDevice creates one node in dir, the already resolved parent of d.path.
func makeDevice(dir *os.File, d devSpec, bind bool) error {
	base := path.Base(d.path)
	if bind {
		fd, err := unix.Openat(int(dir.Fd()), base, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		dstf := os.NewFile(uintptr(fd), base)
		defer dstf.Close()
		return unix.Mount(d.path, procFd(dstf), "", unix.MS_BIND, "")
	}
	_ = unix.Unlinkat(int(dir.Fd()), base, 0)
	if err := unix.Mknodat(int(dir.Fd()), base, d.kind|d.mode, int(unix.Mkdev(d.major, d.minor))); err != nil {
		return err
	}
	return unix.Fchownat(int(dir.Fd()), base, int(d.uid), int(d.gid), unix.AT_SYMLINK_NOFOLLOW)
}

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
func finishRootfs(b *rootfsBuild) error {
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
	return verifyProcfs()
}

// protectRootfs applies the read-only and masked paths and a read-only root, after the sysctls
// are written and before the switch of root. Paths resolve inside the rootfs (symlinks never
// leave it) so that the same code serves the init and husk create's joined thread, whose /proc
// is not the container's.
func protectRootfs(b *rootfsBuild) error {
	cfg := b.cfg
	spec := cfg.Spec
	root, err := os.OpenFile(cfg.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := readonlyPath(root, p); err != nil {
			return fmt.Errorf("readonly path %q: %w", p, err)
		}
	}
	if len(spec.Linux.MaskedPaths) > 0 {
		null, err := openDevNull(root)
		if err != nil {
			return err
		}
		defer null.Close()
		m := &masker{root: root, null: null}
		defer m.close()
		masked := map[string]bool{}
		for _, p := range spec.Linux.MaskedPaths {
			// Once per path, as runc: a duplicate would stack a second mount on the first.
			if masked[path.Clean(p)] {
				continue
			}
			masked[path.Clean(p)] = true
			if err := m.mask(p); err != nil {
				return fmt.Errorf("masked path %q: %w", p, err)
			}
		}
	}
	if spec.Root.Readonly {
		// Read-only on top of what the rootfs mount is (a rootfs bound nosuid,nodev stays so),
		// as runc 1.5: a remount with MS_RDONLY alone would clear the rest.
		keep, err := mountFlags(int(root.Fd()))
		if err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
		if err := remount(root, unix.MS_RDONLY|keep&^(unix.MS_NOATIME|unix.MS_NODIRATIME)); err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
	}
	return nil
}

// openNoFollow opens p inside root as O_PATH without following a final symlink: the parent
// directories resolve inside root, the last component is taken as it is.
func openNoFollow(root *os.File, p string) (*os.File, error) {
	p = path.Clean("/" + p)
	dir, err := openInRoot(root, path.Dir(p))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	base := path.Base(p)
	if p == "/" {
		base = "."
	}
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
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

func hideHostProcSys(rootfs string) error {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("no-pivot: %w", err)
	}
	var targets []string
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+1 >= len(f) {
			continue
		}
		fstype, mnt := f[sep+1], unescapeMountinfo(f[4])
		if f[3] != "/" || (fstype != "proc" && fstype != "sysfs") {
			continue
		}
		if mnt == rootfs || strings.HasPrefix(mnt, rootfs+"/") {
			continue
		}
		targets = append(targets, mnt)
	}
	for _, p := range targets {
		if err := unix.Mount("", p, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // under a mount already detached
			}
			return fmt.Errorf("no-pivot: hide %q: %w", p, err)
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("no-pivot: hide %q: %w", p, err)
			}
			if err := unix.Mount("tmpfs", p, "tmpfs", 0, ""); err != nil {
				return fmt.Errorf("no-pivot: hide %q: %w", p, err)
			}
		}
	}
	return nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// openDevNull opens the container's /dev/null and checks it really is the null device, so a
// planted symlink or file cannot turn masking into a bind of something else (CVE-2025-31133).
func openDevNull(root *os.File) (*os.File, error) {
	f, err := openNoFollow(root, "/dev/null")
	if err != nil {
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		f.Close()
		return nil, errors.New("/dev/null is not the null device; refusing to use it for masking")
	}
	return f, nil
}

// missing reports a path that masking or read-only protection can skip: absent, or a symlink.
func missing(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)
}

// masker hides masked paths: a file under a bind of /dev/null, a directory under an empty
// read-only tmpfs. Every directory shares one tmpfs, as runc 1.5: the first gets a new one and
// the rest a bind of it (a bind keeps its source's read-only flag), so a node that masks a
// directory per CPU pays one filesystem per container instead of hundreds.
type masker struct {
	root, null *os.File
	sharedDir  *os.File // the first masked directory, once its tmpfs is mounted
}

func (m *masker) close() {
	if m.sharedDir != nil {
		m.sharedDir.Close()
	}
}

func (m *masker) mask(p string) error {
	f, err := openNoFollow(m.root, p)
	if err != nil {
		if missing(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return nil
	case unix.S_IFDIR:
		if m.sharedDir != nil {
			if err := unix.Mount(procFd(m.sharedDir), procFd(f), "", unix.MS_BIND, ""); err == nil {
				return nil
			}
			// A bind can fail where a new tmpfs does not (an LSM rule): mount one of its own.
		}
		if err := unix.Mount("tmpfs", procFd(f), "tmpfs", unix.MS_RDONLY, "size=0k"); err != nil {
			return err
		}
		if m.sharedDir == nil {
			// Reopened through the root, so the handle is the new tmpfs, not the directory under it.
			g, err := openNoFollow(m.root, p)
			if err != nil {
				return err
			}
			var fs unix.Statfs_t
			if unix.Fstatfs(int(g.Fd()), &fs) != nil || fs.Type != unix.TMPFS_MAGIC {
				g.Close()
				return nil // not what was just mounted: the next directory gets a tmpfs of its own
			}
			m.sharedDir = g
		}
		return nil
	}
	return unix.Mount(procFd(m.null), procFd(f), "", unix.MS_BIND, "")
}

func readonlyPath(root *os.File, p string) error {
	f, err := openNoFollow(root, p)
	if err != nil {
		if missing(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	if err := unix.Mount(procFd(f), procFd(f), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	g, err := openNoFollow(root, p)
	if err != nil {
		return err
	}
	defer g.Close()
	return remount(g, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
}

// mountAttrs maps the mount flags a new-API mount takes as attributes.
var mountAttrs = map[uintptr]uint64{
	unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
	unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
	unix.MS_NOATIME: unix.MOUNT_ATTR_NOATIME, unix.MS_NODIRATIME: unix.MOUNT_ATTR_NODIRATIME,
	unix.MS_RELATIME: unix.MOUNT_ATTR_RELATIME, unix.MS_STRICTATIME: unix.MOUNT_ATTR_STRICTATIME,
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

// copyUp copies the tree of directory src into directory dst (a new tmpfs): the "tmpcopyup"
// option, so a tmpfs mounted over an image directory starts with the image's files. Entries
// are opened relative to their parent and never followed, so a symlink in the image is copied
// as a symlink and cannot point the copy elsewhere.
func copyUp(src, dst *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	if err := unix.Fchmod(int(dst.Fd()), st.Mode&0o7777); err != nil {
		return err
	}
	if err := unix.Fchownat(int(dst.Fd()), "", int(st.Uid), int(st.Gid), unix.AT_EMPTY_PATH); err != nil {
		return err
	}
	names, err := src.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := copyEntry(src, dst, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func copyEntry(srcDir, dstDir *os.File, name string) error {
	sfd, dfd := int(srcDir.Fd()), int(dstDir.Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return err
		}
		s, err := openAt(sfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer s.Close()
		d, err := openAt(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer d.Close()
		return copyUp(s, d)
	case unix.S_IFLNK:
		target, err := readlinkAt(sfd, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return err
		}
	case unix.S_IFREG:
		s, err := openAt(sfd, name, unix.O_RDONLY)
		if err != nil {
			return err
		}
		defer s.Close()
		fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, st.Mode&0o7777)
		if err != nil {
			return err
		}
		d := os.NewFile(uintptr(fd), name)
		defer d.Close()
		if _, err := io.Copy(d, s); err != nil {
			return err
		}
	default: // fifos, sockets and device nodes: the node, not its contents
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return unix.Fchmodat(dfd, name, st.Mode&0o7777, 0)
	}
	return nil
}

func openAt(dir int, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(dir, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

func readlinkAt(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// containerHome is passwdHome for the container pid runs in, read from its root with in-root
// resolution (the image's symlinks never leave it) and bounded: husk reads it from the host.
func containerHome(pid int, uid uint32) string {
	root, err := os.OpenFile("/proc/"+strconv.Itoa(pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "/"
	}
	defer root.Close()
	return homeInRoot(root, uid)
}

// homeInRoot reads /etc/passwd below root; "/" when it is missing or not a regular file.
func homeInRoot(root *os.File, uid uint32) string {
	p, err := openInRoot(root, "/etc/passwd")
	if err != nil {
		return "/"
	}
	defer p.Close()
	f, err := os.OpenFile(procFd(p), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return "/"
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "/"
	}
	return passwdHome(f, uid)
}
