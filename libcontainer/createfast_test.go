package libcontainer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// A kept program comes back only for its own key, byte for byte: an entry under the same name
// for another key (a hash collision, a torn write) is a miss, never the wrong program.
func TestSeccompCacheChecksItsKey(t *testing.T) {
	root := t.TempDir()
	key, bpf := []byte("init-id\n{\"defaultAction\":\"SCMP_ACT_ALLOW\"}"), bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 3)
	if got := cachedSeccomp(root, key); got != nil {
		t.Fatalf("empty cache returned %v", got)
	}
	cacheSeccomp(root, key, bpf)
	if got := cachedSeccomp(root, key); !bytes.Equal(got, bpf) {
		t.Fatalf("cached program = %v, want %v", got, bpf)
	}
	other := append([]byte(nil), key...)
	other[0] = 'X'
	data, err := os.ReadFile(seccompCacheFile(root, key))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seccompCacheFile(root, other), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := cachedSeccomp(root, other); got != nil {
		t.Fatalf("an entry for another key was used: %v", got)
	}
	if err := os.WriteFile(seccompCacheFile(root, key), data[:len(data)-3], 0o600); err != nil {
		t.Fatal(err)
	}
	if got := cachedSeccomp(root, key); got != nil {
		t.Fatalf("a torn entry was used: %v", got)
	}
	if st, err := os.Stat(root + "/" + seccompCacheDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v", st.Mode(), err)
	}
}

// The seccomp program cache keeps at most maxSeccompCache entries, the newest.
func TestSeccompCacheIsBounded(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < maxSeccompCache+20; i++ {
		cacheSeccomp(root, []byte(fmt.Sprintf("key-%d", i)), make([]byte, 8))
	}
	entries, err := os.ReadDir(filepath.Join(root, seccompCacheDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != maxSeccompCache {
		t.Fatalf("%d cached programs, want %d", len(entries), maxSeccompCache)
	}
	if cachedSeccomp(root, []byte(fmt.Sprintf("key-%d", maxSeccompCache+19))) == nil {
		t.Fatal("the newest program was dropped")
	}
}
