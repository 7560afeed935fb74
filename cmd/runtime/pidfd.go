package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// sendPidfd implements --pidfd-socket as runc 1.2+ does: a pidfd of the container's process
// goes over the unix socket at path with SCM_RIGHTS, the message naming the process kind
// ("standard" for a container's init, "setns" for an exec'd process), so a supervisor can
// wait on the process and signal it without pid reuse races.
func sendPidfd(path string, pid int, kind string) error {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("--pidfd-socket: pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("--pidfd-socket: %w", err)
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: path}); err != nil {
		return fmt.Errorf("--pidfd-socket %q: %w", path, err)
	}
	if err := unix.Sendmsg(sock, []byte(kind), unix.UnixRights(pidfd), nil, 0); err != nil {
		return fmt.Errorf("--pidfd-socket %q: send the pidfd: %w", path, err)
	}
	return nil
}
