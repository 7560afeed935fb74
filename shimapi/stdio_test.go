package shimapi

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openFds(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// An output fifo opens at once when its reader is there, later when the reader comes late, and
// the container's end blocks as a pipe does either way.
func TestOpenWhenReadWaitsForTheReader(t *testing.T) {
	for _, late := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "out")
		if err := unix.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			if late {
				time.Sleep(100 * time.Millisecond)
			}
			r, err := os.OpenFile(path, os.O_RDONLY, 0)
			if err != nil {
				got <- err.Error()
				return
			}
			defer r.Close()
			b := make([]byte, 16)
			n, _ := r.Read(b)
			got <- string(b[:n])
		}()
		if !late {
			time.Sleep(50 * time.Millisecond) // the reader waits in open(2)
		}
		w, err := openWhenRead(path, time.Minute)
		if err != nil {
			t.Fatalf("late %v: %v", late, err)
		}
		if fl, err := unix.FcntlInt(w.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
			t.Errorf("late %v: the container's end is non-blocking (flags %#x, %v)", late, fl, err)
		}
		w.WriteString("hello")
		w.Close()
		if s := <-got; s != "hello" {
			t.Errorf("late %v: the reader got %q", late, s)
		}
	}
}

// A reader that never comes: a clear error naming the fifo, and the open blocked in the
// meantime is released (no fd and no goroutine left in open(2)).
func TestOpenWhenReadGivesUpOnAnAbsentReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	before := openFds(t)
	_, err := openWhenRead(path, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no reader opened it within 100ms") {
		t.Fatalf("got %v, want an error naming the fifo and the wait", err)
	}
	if after := openFds(t); after != before {
		t.Errorf("%d fds open after the failed open, %d before", after, before)
	}
	// The fifo has neither reader nor writer left: a non-blocking writer finds no reader.
	if fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK, 0); err != unix.ENXIO {
		unix.Close(fd)
		t.Errorf("a writer's open after the failed open: %v, want ENXIO (no reader left)", err)
	}
}

// A client that removes its fifo while the shim waits for its reader: the wait still ends
// with an error naming the fifo, and its blocked open is released (through the shim's handle
// on the fifo, not its path), leaving no goroutine or thread behind.
func TestOpenWhenReadSurvivesItsFifoBeingRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	before, fds := runtime.NumGoroutine(), openFds(t)
	go func() {
		time.Sleep(50 * time.Millisecond)
		os.Remove(path)
	}()
	if _, err := openWhenRead(path, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want an error naming the fifo", err)
	}
	time.Sleep(50 * time.Millisecond) // the remover's goroutine ends
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the failed open, %d before: the blocked open was not released", n, before)
	}
	if n := openFds(t); n != fds {
		t.Errorf("%d fds open after the failed open, %d before", n, fds)
	}
}

// A process that exits before its client's stdin writer opens: the open and the writes that
// follow still go through (drained, more than a pipe holds), and closing stdin (CloseIO) ends
// the drain, leaving no goroutine or fd behind.
func TestExitedStdinTakesALateWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	before, fds := runtime.NumGoroutine(), openFds(t)
	keep, end, err := openStdin(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &procIO{stdinKeep: keep}
	end.Close() // the process has exited: its read end is gone
	p.exited()
	wrote := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0) // blocking, as containerd's fifo writer
		if err != nil {
			wrote <- err
			return
		}
		defer w.Close()
		_, err = w.Write(make([]byte, 1<<20))
		wrote <- err
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("the late writer: %v", err)
		}
	case <-time.After(10 * time.Second):
		// Release the writer: a reader of our own lets its open through, and its write then
		// fails on the reader's close.
		if r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
			time.Sleep(100 * time.Millisecond)
			r.Close()
			<-wrote
		}
		t.Fatal("a stdin writer that opened after the exit never got through")
	}
	p.closeStdin()
	time.Sleep(50 * time.Millisecond) // the drain ends
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after stdin was closed, %d before: the drain goes on\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	if n := openFds(t); n != fds {
		t.Errorf("%d fds open after stdin was closed, %d before", n, fds)
	}
}
