package cgroups

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

func TestFoldDeviceRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []rspec.LinuxDeviceCgroup
		allow bool
		ex    []devException
	}{
		{"none", nil, true, nil},
		{"deny all, allow null", []rspec.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"},
		}, false, []devException{{'c', 1, 3, devAccessRead | devAccessWrite}}},
		{"a later reset drops earlier exceptions", []rspec.LinuxDeviceCgroup{
			{Allow: false},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3)},
			{Allow: true, Type: "a"},
		}, true, nil},
		{"a deny agreeing with the default takes access away", []rspec.LinuxDeviceCgroup{
			{Allow: false},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "m"},
		}, false, []devException{{'c', 1, 3, devAccessRead | devAccessWrite}}},
		{"wildcard minor", []rspec.LinuxDeviceCgroup{
			{Allow: false},
			{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},
		}, false, []devException{{'c', 136, -1, devAccessAll}}},
	} {
		allow, ex := foldDeviceRules(tc.rules)
		if allow != tc.allow || fmt.Sprint(ex) != fmt.Sprint(tc.ex) {
			t.Errorf("%s: got default allow %v, %v; want %v, %v", tc.name, allow, ex, tc.allow, tc.ex)
		}
	}
}

// TestDeviceFilterDecidesAccess attaches the filter to a real cgroup2 directory (the unified
// hierarchy of a hybrid host works as well as a v2 host) and checks what a process in it can
// open.
func TestDeviceFilterDecidesAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a cgroup and loads an eBPF program")
	}
	root := unifiedRoot
	if HostMode() == Unified {
		root = mountRoot
	} else if HostMode() == Legacy {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	dir := filepath.Join(root, fmt.Sprintf("husk-devtest-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer removeTree(dir)
	rules := []rspec.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}, // /dev/null
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},  // /dev/zero, read only
	}
	// Twice: an update replaces the filter, it does not stack a second one.
	for i := 0; i < 2; i++ {
		if err := setDeviceFilter(dir, rules); err != nil {
			t.Fatal(err)
		}
	}
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(attachedPrograms(int(cg.Fd()))); n != 1 {
		t.Errorf("%d filters attached after an update, want 1", n)
	}
	cg.Close()

	script := `read x
echo > /dev/null && echo null-write-ok
head -c1 /dev/zero > /dev/null && echo zero-read-ok
echo > /dev/zero || echo zero-write-denied
head -c1 /dev/urandom > /dev/null || echo urandom-denied`
	cmd := exec.Command("/bin/sh", "-c", script)
	stdin, _ := cmd.StdinPipe()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := writeExisting(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid))); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	stdin.Write([]byte("go\n"))
	stdin.Close()
	cmd.Wait()
	for _, want := range []string{"null-write-ok", "zero-read-ok", "zero-write-denied", "urandom-denied"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
}

// TestDeviceProgramLoadsUnderSignals: the verifier fails a load with EAGAIN when a signal is
// pending, and Go delivers signals to its threads all along (preemption); under a storm of
// them a load still succeeds. (A slow machine, a qemu guest, failed `husk run` this way.)
func TestDeviceProgramLoadsUnderSignals(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads an eBPF program")
	}
	prog := deviceProgram(false, nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				syscall.Kill(os.Getpid(), syscall.SIGURG) // the runtime's own preemption signal: harmless
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := 0; i < 300; i++ {
		fd, err := loadDeviceProgram(prog)
		if err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
		syscall.Close(fd)
	}
}
