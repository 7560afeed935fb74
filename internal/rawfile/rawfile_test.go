package rawfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789"), 1000)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(p, 1<<20); err != nil || !bytes.Equal(b, big) {
		t.Errorf("whole file: %d bytes, %v", len(b), err)
	}
	if b, err := Read(p, 700); err != nil || !bytes.Equal(b, big[:700]) {
		t.Errorf("limited: %d bytes, %v", len(b), err)
	}
	if b, err := Read("/proc/self/stat", 4096); err != nil || !bytes.Contains(b, []byte(")")) {
		t.Errorf("procfs: %q, %v", b, err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}
