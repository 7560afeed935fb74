// Package rawfile reads small kernel files (procfs, cgroupfs) with bare open, read and close:
// os.ReadFile also makes each one non-blocking, tries to add it to Go's poller and undoes both,
// five more system calls per file on the paths a probe's exec takes.
package rawfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// Read returns path's contents, at most limit bytes.
func Read(path string, limit int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		end := min(cap(buf), limit)
		n, err := unix.Read(fd, buf[len(buf):end])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil
}
