package rootfs

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheckNoEscape: whenever checkNoEscape accepts a destination, resolving it naively on the
// host (following the image's symlinks) stays inside the rootfs.
func FuzzCheckNoEscape(f *testing.F) {
	root := f.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	os.Symlink("../../../../etc", filepath.Join(root, "a/up"))
	os.Symlink("/run", filepath.Join(root, "abs"))
	os.Symlink("b/../..", filepath.Join(root, "a/loopish"))
	os.Symlink("../a/b", filepath.Join(root, "a/rel"))
	for _, s := range []string{"/a/up/x", "/abs/x", "/a/loopish/../x", "/a/rel/c", "/../../x", "/a/b/../../..", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dest string) {
		if strings.ContainsRune(dest, 0) || len(dest) > 512 {
			return
		}
		if err := checkNoEscape(root, dest); err != nil {
			return
		}
		resolved, ok := naiveResolve(root, dest)
		if ok && resolved != root && !strings.HasPrefix(resolved, root+"/") {
			t.Fatalf("accepted %q, which resolves to %s outside %s", dest, resolved, root)
		}
	})
}

// naiveResolve follows symlinks the way a host-side string join would, treating absolute
// links as relative to root, and reports where the path lands.
func naiveResolve(root, dest string) (string, bool) {
	cur := root
	parts := strings.Split(path.Clean("/"+dest), "/")
	for hops := 0; len(parts) > 0; {
		p := parts[0]
		parts = parts[1:]
		if p == "" || p == "." {
			continue
		}
		if p == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, p)
		target, err := os.Readlink(next)
		if err != nil {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", false
		}
		if strings.HasPrefix(target, "/") {
			cur = root
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return cur, true
}
