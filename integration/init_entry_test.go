package integration

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestInitEntryRunsTheFastPaths: husk-init as `make build` links it starts at husk_entry
// (libcontainer/nsenter/early.c), which runs the exec and create fast paths before static
// glibc's own start: on a VM that start costs a static binary ~0.25 ms of CPU (its CPUID
// instructions trap to the hypervisor), more than the rest of an exec's setup. Every exec and
// create test runs through that entry; this one checks the binary still has it.
func TestInitEntryRunsTheFastPaths(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the early entry point is x86_64's")
	}
	if os.Getenv("HUSK_BINARY") == "" {
		t.Skip("husk-init was built by the test, not by make build (which links its entry point)")
	}
	f, err := elf.Open(filepath.Join(filepath.Dir(huskBin), "husk-init"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text := f.Section(".text")
	if text == nil || f.Entry < text.Addr || f.Entry >= text.Addr+text.Size {
		t.Fatalf("husk-init's entry %#x is not in its text", f.Entry)
	}
	code := make([]byte, 6)
	if _, err := text.ReadAt(code, int64(f.Entry-text.Addr)); err != nil {
		t.Fatal(err)
	}
	// husk_entry begins by keeping the initial stack pointer and %rdx for glibc's _start:
	// mov %rsp,%r12; mov %rdx,%r13.
	if want := []byte{0x49, 0x89, 0xe4, 0x49, 0x89, 0xd5}; !bytes.Equal(code, want) {
		t.Errorf("husk-init starts with % x, not husk_entry's % x: its fast paths wait for glibc's start", code, want)
	}
}
