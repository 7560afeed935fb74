package rootfs

import (
	"fmt"
	"os"
	"path"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/specs"
)

type devSpec struct {
	path         string
	kind         uint32
	major, minor uint32
	mode         uint32
	uid, gid     uint32
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
	inUserNS := specs.HasNamespace(spec.Linux.Namespaces, rspec.UserNamespace) // new, or joined (a pod's)
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
