package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// protectRootfs applies the read-only and masked paths and a read-only root, after the sysctls
// are written and before the switch of root. Paths resolve inside the rootfs (symlinks never
// leave it) so that the same code serves the init and husk create's joined thread, whose /proc
// is not the container's.
func protectRootfs(b *build) error {
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

// openExisting opens p below root without following a last symlink, with its stat; no file
// and no error when p does not exist (a path to protect that the image lacks).
func openExisting(root *os.File, p string) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	f, err := openNoFollow(root, p)
	if err != nil {
		if missing(err) {
			return nil, st, nil
		}
		return nil, st, err
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, st, err
	}
	return f, st, nil
}

func (m *masker) mask(p string) error {
	fd, err := openNoFollowFd(m.root, p)
	if err != nil {
		if missing(err) {
			return nil // a path to protect that the image lacks
		}
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	target := procFdNum(fd)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return nil
	case unix.S_IFDIR:
		if m.sharedDir != nil {
			if err := unix.Mount(procFd(m.sharedDir), target, "", unix.MS_BIND, ""); err == nil {
				return nil
			}
			// A bind can fail where a new tmpfs does not (an LSM rule): mount one of its own.
		}
		if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY, "size=0k"); err != nil {
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
	return unix.Mount(procFd(m.null), target, "", unix.MS_BIND, "")
}

func readonlyPath(root *os.File, p string) error {
	f, st, err := openExisting(root, p)
	if f == nil || err != nil {
		return err
	}
	defer f.Close()
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
