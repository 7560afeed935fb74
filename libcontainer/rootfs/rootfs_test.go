package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckNoEscape(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	os.Symlink("../../../../etc", filepath.Join(root, "a/up"))      // climbs out
	os.Symlink("/run", filepath.Join(root, "var-run"))              // absolute: inside the container
	os.Symlink("b", filepath.Join(root, "a/rel"))                   // stays inside
	os.Symlink("../a/rel/../../..", filepath.Join(root, "a/sneak")) // climbs out in steps
	os.Symlink("loop2", filepath.Join(root, "loop1"))
	os.Symlink("loop1", filepath.Join(root, "loop2"))
	for dest, bad := range map[string]string{
		"/a/up/passwd":   "escapes",
		"/a/sneak/x":     "escapes",
		"/../../etc":     "", // ".." at the root stays at the root, as in the container
		"/loop1/x":       "too many levels",
		"/var-run/x":     "",
		"/a/rel/c":       "",
		"/new/dir/inner": "",
	} {
		err := checkNoEscape(root, dest)
		if bad == "" && err != nil {
			t.Errorf("%s: unexpected error %v", dest, err)
		}
		if bad != "" && (err == nil || !strings.Contains(err.Error(), bad)) {
			t.Errorf("%s: err = %v, want %q", dest, err, bad)
		}
	}
}

// BenchmarkCheckNoEscape runs once per mount destination on every create.
func BenchmarkCheckNoEscape(b *testing.B) {
	root := b.TempDir()
	os.MkdirAll(root+"/dev/pts", 0o755)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := checkNoEscape(root, "/dev/pts"); err != nil {
			b.Fatal(err)
		}
	}
}
