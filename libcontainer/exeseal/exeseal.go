// Package exeseal gives the runtime a copy of its own binary that a container cannot write
// through /proc/<pid>/exe (CVE-2019-5736). The cheap way is a private, detached, read-only
// overlayfs whose lower layer is the binary's directory: no copy, a few syscalls. Where that is
// not allowed, a sealed memfd copy is the fallback.
package exeseal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// minFd keeps the sealed binary's fd clear of the low fds most processes use; the launcher
// still moves it above every fd it hands the child before the exec (execFdAbove).
const minFd = 64

// OpenPath returns a file whose /proc/self/fd path executes a write-protected view of the
// binary exe (husk-init). The caller closes it once the child has exec'd.
func OpenPath(exe string) (*os.File, error) {
	if f, err := overlayView(exe); err == nil {
		return f, nil
	}
	return memfdCopy(exe)
}

func overlayView(exe string) (*os.File, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fsfd)
	// A read-only overlay needs two lower layers, and the same directory twice counts as
	// overlapping; an empty private tmpfs is the second.
	empty, err := emptyTmpfs()
	if err != nil {
		return nil, err
	}
	defer unix.Close(empty)
	lower := filepath.Dir(exe) + ":/proc/self/fd/" + strconv.Itoa(empty)
	if err := unix.FsconfigSetString(fsfd, "lowerdir", lower); err != nil {
		return nil, err
	}
	for _, o := range []string{"xino", "redirect_dir", "metacopy"} {
		val := "off"
		if o == "redirect_dir" {
			val = "nofollow"
		}
		_ = unix.FsconfigSetString(fsfd, o, val)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, err
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(mfd)
	fd, err := unix.Openat(mfd, filepath.Base(exe), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return highFile(fd, "husk-sealed")
}

func emptyTmpfs() (int, error) {
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, err
	}
	return unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC|unix.MOUNT_ATTR_NOSUID)
}

func memfdCopy(exe string) (*os.File, error) {
	src, err := os.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("seal binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("husk-sealed", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("seal binary: memfd: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "husk-memfd")
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return nil, fmt.Errorf("seal binary: copy: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(dst.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return nil, fmt.Errorf("seal binary: seals: %w", err)
	}
	nfd, err := unix.FcntlInt(dst.Fd(), unix.F_DUPFD_CLOEXEC, minFd)
	dst.Close()
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), "husk-memfd"), nil
}

func highFile(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, minFd)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// Path is the path to execve for a sealed binary file.
func Path(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }
