package shimapi

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// v1MemoryCgroup makes a cgroup v1 memory cgroup for one test, or skips.
func v1MemoryCgroup(t *testing.T, limit string) string {
	t.Helper()
	dir := fmt.Sprintf("/sys/fs/cgroup/memory/husk-oomtest-%d-%d", os.Getpid(), time.Now().UnixNano())
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("no cgroup v1 memory hierarchy to test in: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(limit), 0); err != nil {
		t.Fatal(err)
	}
	return dir
}

// v1Watch is what newOOMWatch makes for a cgroup v1 container, its eventfd not yet read by
// any goroutine: a watch whose goroutine has not run by the container's exit.
func v1Watch(t *testing.T, dir string) *oomWatch {
	efd := registerOOMEventfd(dir)
	if efd < 0 {
		t.Skip("cannot register a memory.oom_control eventfd here")
	}
	read := func() (uint64, uint64, bool) {
		b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
		if err != nil {
			return 0, 0, false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				return 0, n, true
			}
		}
		return 0, 0, true
	}
	w := &oomWatch{read: read, efd: efd, v1: true, file: os.NewFile(uintptr(efd), "oom-eventfd")}
	t.Cleanup(w.close)
	w.seen = w.count()
	return w
}

// runIn runs a shell command as the only process of cgroup dir and waits for it.
func runIn(t *testing.T, dir, script string) *os.ProcessState {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "echo $$ > "+filepath.Join(dir, "cgroup.procs")+" && exec "+script)
	cmd.Run()
	return cmd.ProcessState
}

// On a busy node the OOM watch's goroutine may first run after the OOM kill emptied a
// systemd scope and systemd removed its cgroup v1 (the guest's test saw "4 of 5 OOM-killed
// containers reported OOMKilled"): its counters are gone, and the notice it had not read is
// still in the eventfd, with the removal's signal after it. The exit must still be taken for
// the OOM kill it was; a plain SIGKILL of a container whose cgroup went the same way must not.
func TestOOMWatchV1NoticeReadAfterTheCgroupWent(t *testing.T) {
	if _, err := os.Stat("/bin/dd"); err != nil {
		t.Skip("no /bin/dd")
	}
	dir := v1MemoryCgroup(t, "16777216")
	w := v1Watch(t, dir)
	st := runIn(t, dir, "dd if=/dev/zero of=/dev/null bs=64M count=1")
	if ws, ok := st.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Skipf("dd was not killed at the limit here (%v): no OOM to test", st)
	}
	if err := os.Remove(dir); err != nil { // as systemd removes an empty scope
		t.Fatal(err)
	}
	if got := w.killsAfterGone(time.Now()); got != 1 {
		t.Errorf("OOM kill of a cgroup gone before the watch read its notice: inferred %d kills, want 1", got)
	}

	plain := v1MemoryCgroup(t, "67108864")
	pw := v1Watch(t, plain)
	if st := runIn(t, plain, "sh -c 'kill -9 $$'"); st.ExitCode() != -1 {
		t.Fatalf("the plain kill: %v", st)
	}
	if err := os.Remove(plain); err != nil {
		t.Fatal(err)
	}
	if got := pw.killsAfterGone(time.Now()); got != 0 {
		t.Errorf("a plain SIGKILL, its cgroup gone: inferred %d OOM kills, want 0", got)
	}
}
