package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// OpenInRoot is pathrs.OpenatInRoot less its cosmetic last step. With openat2 the kernel's
// RESOLVE_IN_ROOT keeps the lookup inside root, and pathrs then only reads the result's path
// back through procfs to name the *os.File: ~0.1 ms a call, tens of calls a create. Kernels
// without openat2 go to pathrs, which resolves in userspace.
func OpenInRoot(root *os.File, p string) (*os.File, error) {
	fd, err := openat2InRoot(root, p, 0)
	switch err {
	case nil:
		return os.NewFile(uintptr(fd), p), nil
	case unix.ENOSYS:
		return pathrs.OpenatInRoot(root, p)
	}
	return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
}

// openat2InRoot opens p below root as an O_PATH fd (flags added), resolved inside root and
// through no magic link, retried when a rename raced the lookup; unix.ENOSYS without openat2.
func openat2InRoot(root *os.File, p string, flags uint64) (int, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | flags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(int(root.Fd()), p, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && tries < 32 {
			continue // the kernel asks for a retry
		}
		return fd, err
	}
}

// mkdirAllInRoot opens directory p inside root, creating what is missing (pathrs, the slower
// path, only then).
func mkdirAllInRoot(root *os.File, p string) (*os.File, error) {
	if f, err := OpenInRoot(root, p); err == nil {
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
func procFd(f *os.File) string { return procFdNum(int(f.Fd())) }

func procFdNum(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

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
	if f, err := OpenInRoot(root, dest); err == nil {
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
	return OpenInRoot(root, dest)
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

// OpenSource opens a bind source as O_PATH. A source inside the rootfs (the host path
// of a directory of the image, or of a mount made there before) resolves inside it, as the
// container would see it: an image's symlink cannot turn it into a host path. Any other source
// is the host path the config names.
func OpenSource(rootfs, src string) (*os.File, error) {
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
	return OpenInRoot(root, "/"+rel)
}

// openNoFollow opens p inside root as O_PATH without following a final symlink: the parent
// directories resolve inside root, the last component is taken as it is.
func openNoFollow(root *os.File, p string) (*os.File, error) {
	p = path.Clean("/" + p)
	dir, err := OpenInRoot(root, path.Dir(p))
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

// openNoFollowFd is openNoFollow in one openat2 (the parent resolved inside root, the last
// component not followed) and as a bare fd, the caller's to close: masking opens a path per
// masked directory, hundreds on a node that masks a directory per CPU, and an *os.File costs
// an fcntl and the runtime's close bookkeeping each.
func openNoFollowFd(root *os.File, p string) (int, error) {
	p = path.Clean("/" + p)
	fd, err := openat2InRoot(root, p, unix.O_NOFOLLOW)
	switch err {
	case nil:
		return fd, nil
	case unix.ENOSYS:
		f, err := openNoFollow(root, p)
		if err != nil {
			return -1, err
		}
		defer f.Close()
		return unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	}
	return -1, &os.PathError{Op: "openat2", Path: p, Err: err}
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
