package libcontainer

import (
	"os"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The child's fd placement moves files that sit below their slot to just above the largest fd
// handed over: the sealed binary's number must be above that too. Here a directory sits low
// and is handed over several times (each copy past its own number moves), next to a high fd,
// as the shim's stdio fifos are: with the binary placed just above the high fd, the child
// exec'd the moved directory (EACCES); with ~60 mount fds, the old fixed 64 ran a bind source.
func TestExecFdAboveSurvivesFdShuffle(t *testing.T) {
	truePath := "/bin/true"
	if _, err := os.Stat(truePath); err != nil {
		t.Skip("no /bin/true")
	}
	bin, err := os.OpenFile(truePath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	high, err := unix.FcntlInt(dir.Fd(), unix.F_DUPFD_CLOEXEC, 200)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(high)
	for _, n := range []int{4, 70, 1000} {
		files := []uintptr{0, 1, 2}
		for i := 0; i < n; i++ {
			files = append(files, dir.Fd())
		}
		files = append(files, uintptr(high))
		exe, err := execFdAbove(bin, files)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := syscall.ForkExec("/proc/self/fd/"+strconv.Itoa(int(exe.Fd())), []string{"true"}, &syscall.ProcAttr{Files: files})
		exe.Close()
		if err != nil {
			t.Fatalf("%d files: exec of the sealed binary: %v", len(files), err)
		}
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		if !ws.Exited() || ws.ExitStatus() != 0 {
			t.Fatalf("%d files: the child did not run /bin/true: %v", len(files), ws)
		}
	}
}
