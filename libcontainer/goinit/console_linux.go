package goinit

import (
	"fmt"
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupConsole makes a pty inside the container, sends its master to the console socket and
// makes the slave the process's stdio and controlling terminal.
func setupConsole(sockFd int, size *rspec.Box, uid uint32) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console: open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("console: unlockpt: %w", err)
	}
	// TIOCGPTPEER opens the slave from the master, not by a path the container could swap for a
	// symlink (CVE-2025-52565).
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return fmt.Errorf("console: open pty slave: %w", errno)
	}
	rw := int(r)
	defer unix.Close(rw)
	// The process's terminal is its own, as with runc (the group stays devpts' gid=, tty).
	if err := unix.Fchown(rw, int(uid), -1); err != nil {
		return fmt.Errorf("console: chown pty to uid %d: %w", uid, err)
	}
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("console: set size: %w", err)
		}
	}
	if err := mountConsole(rw); err != nil {
		return err
	}
	if err := unix.Sendmsg(sockFd, []byte("/dev/ptmx"), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("console: send pty master: %w", err)
	}
	unix.Close(sockFd)
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(rw, i, 0); err != nil {
			return fmt.Errorf("console: dup stdio: %w", err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("console: set controlling terminal: %w", err)
	}
	return nil
}

// mountConsole binds the pty slave onto /dev/console, as runc does, when /dev/console can be
// made (it cannot in exec, where the mounts are the container's own business).
func mountConsole(slave int) error {
	fd, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "console")
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil // already a device or mount (exec): leave it
	}
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", slave), fmt.Sprintf("/proc/self/fd/%d", f.Fd()), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("console: bind /dev/console: %w", err)
	}
	return nil
}
