package integration

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKilledCreateIsCleanable kills `husk create` with SIGKILL at many points of its work;
// `husk delete --force` must then leave nothing behind.
func TestKilledCreateIsCleanable(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	before := huskInits(t)
	prefix := uniqueID(t)
	for i := 0; i < 30; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		cmd := exec.Command(huskBin, "--root", b.root, "create", id)
		cmd.Dir = b.dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.Intn(40000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if r := b.husk(t, "delete", "--force", id); r.code != 0 {
			t.Fatalf("delete --force after a killed create (%d): %s", i, r)
		}
		assertClean(t, b, id)
	}
	time.Sleep(100 * time.Millisecond)
	if left := newInits(t, before, prefix); len(left) > 0 {
		t.Fatalf("init processes left after killed creates: %v", left)
	}
}

// TestConcurrentContainers creates, runs and deletes 50 containers at once.
func TestConcurrentContainers(t *testing.T) {
	b := newBundle(t, "sh", "-c", "exit 7")
	b.write(t)
	var wg sync.WaitGroup
	errs := make(chan string, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := b.husk(t, "run", fmt.Sprintf("conc-%d", i))
			if r.code != 7 {
				errs <- fmt.Sprintf("conc-%d: %s", i, r)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for i := 0; i < 50; i++ {
		assertClean(t, b, fmt.Sprintf("conc-%d", i))
	}
}

// TestManyProcessesKilled: a container with 2,000 processes is killed and deleted without a
// trace.
func TestManyProcessesKilled(t *testing.T) {
	b := newBundle(t, "sh", "-c", "for i in $(seq 1 2000); do sleep 1000 & done; wait")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	pid := int(b.state(t, id)["pid"].(float64))
	for i := 0; i < 1200; i++ { // up to a minute: a loaded machine forks slowly
		if n := len(strings.Fields(cgroupFile(t, pid, "pids", "cgroup.procs"))); n >= 2001 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(strings.Fields(cgroupFile(t, pid, "pids", "cgroup.procs"))); n < 2001 {
		t.Fatalf("only %d processes started", n)
	}
	b.must(t, "delete", "--force", id)
	assertClean(t, b, id)
}

// TestFullStateRoot: with no space left under --root, create fails with a clear error and
// leaves nothing behind.
func TestFullStateRoot(t *testing.T) {
	b := newBundle(t, "true")
	b.write(t)
	root := filepath.Join(t.TempDir(), "full")
	os.MkdirAll(root, 0o700)
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	defer syscall.Unmount(root, syscall.MNT_DETACH)
	filler, _ := os.Create(filepath.Join(root, "filler"))
	filler.Write(make([]byte, 64<<10))
	filler.Close()
	b.root = root
	id := uniqueID(t)
	r := b.husk(t, "create", id)
	if r.code == 0 {
		t.Fatalf("create on a full state root succeeded: %s", r)
	}
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("error: %q", r.stderr)
	}
	assertClean(t, b, id)
}
