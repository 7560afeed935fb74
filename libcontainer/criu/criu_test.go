package criu

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The init's stdio is recorded the way restore can hand it over: pipes by inode, fifos (the
// husk shim writes into containerd's fifos) as external files, /dev/null as itself.
func TestExternalDescriptors(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fifo := filepath.Join(t.TempDir(), "out")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sleep", "5")
	cmd.Stdin, cmd.Stdout = r, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	names, external, err := externalDescriptors(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(names[0], "pipe:[") || !strings.HasPrefix(names[1], "file[") || names[2] != "/dev/null" {
		t.Errorf("descriptors %q", names)
	}
	if len(external) != 1 || external[0] != names[1] {
		t.Errorf("external %q", external)
	}
}

func TestOptionValues(t *testing.T) {
	for _, m := range []string{"", "soft", "full", "strict", "ignore"} {
		if _, err := cgroupMode(m); err != nil {
			t.Errorf("%q: %v", m, err)
		}
	}
	if _, err := cgroupMode("hard"); err == nil {
		t.Error("hard accepted")
	}
	if f, err := emptyNsFlags([]string{"network"}); err != nil || f != unix.CLONE_NEWNET {
		t.Errorf("network: %x %v", f, err)
	}
	if _, err := emptyNsFlags([]string{"pid"}); err == nil {
		t.Error("pid accepted")
	}
	if versionString(31701) != "3.17.1" {
		t.Error(versionString(31701))
	}
}
