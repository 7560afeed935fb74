package rootfs

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyUpInto copies what the tmpfs at dest covers (below) into it (tmpcopyup).
func copyUpInto(root *os.File, dest string, below *os.File) error {
	path, err := OpenInRoot(root, dest)
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
