package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/husk-runtime/husk/internal/children"
)

// countingMonitor runs commands directly and counts them.
type countingMonitor struct{ runs int }

func (m *countingMonitor) Run(cmd *exec.Cmd) error { m.runs++; return cmd.Run() }
func (m *countingMonitor) ForkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
	return children.Direct.ForkExec(argv0, argv, attr)
}
func (m *countingMonitor) Wait(pid int) (syscall.WaitStatus, error) { return children.Direct.Wait(pid) }
func (m *countingMonitor) Release(int)                              {}

// TestUnitKeepsItsMonitor: every call of a unit goes through its Monitor, also after a call
// whose reply (the unit as the helper leaves it) replaced the unit's fields. The shim's reaper
// is that monitor; a call that forked husk-systemd directly raced the reaper for its exit and
// failed now and then with "waitid: no child processes" (critest in the systemd guest).
func TestUnitKeepsItsMonitor(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(filepath.Dir(self), HelperName)
	if _, err := os.Stat(helper); err == nil {
		t.Skipf("%s exists beside the test binary", helper)
	}
	// A stand-in helper: it answers every request with the unit.
	reply := `{"name":"husk-t.scope","slice":"system.slice"}`
	if err := os.WriteFile(helper, []byte("#!/bin/sh\ncat >/dev/null\necho '"+reply+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(helper)
	m := &countingMonitor{}
	u := &Unit{Name: "husk-t.scope", Slice: "system.slice", Monitor: m}
	if err := u.Start(os.Getpid(), nil); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := u.Set(nil); err != nil {
		t.Fatalf("set: %v", err)
	}
	if err := u.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if m.runs != 3 {
		t.Errorf("%d of the unit's 3 helper calls went through its monitor", m.runs)
	}
}
