package libcontainer

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/exeseal"
)

// InitBinary is a sealed view of husk-init (CVE-2019-5736: see exeseal) kept open by a caller
// that creates and execs many times, as the shim's in-process engine does: each start then
// skips making a view of its own (two superblocks and a detached mount, ~0.3 ms of an exec's
// time). The view is made again when the binary on disk changes (an upgrade), and a view in
// use by a start is closed only after it. The zero value is ready; one-shot callers (husk's
// command line) pass none and get a view per start.
type InitBinary struct {
	mu   sync.Mutex
	cur  *sealedView
	path string // husk-init's, found at the first start (husk's own path does not move)
}

type sealedView struct {
	f       *os.File
	id      fileID
	users   int
	retired bool
}

// fileID tells a file's contents apart across replacement and in-place writes.
type fileID struct {
	dev, ino, size uint64
	mtime          unix.Timespec
}

func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim}, nil
}

// acquire returns the current view, made or remade as needed; release it after the start.
func (b *InitBinary) acquire() (*sealedView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path == "" {
		path, err := huskInitPath()
		if err != nil {
			return nil, err
		}
		b.path = path
	}
	path := b.path
	id, err := statID(path)
	if err == nil && b.cur != nil && b.cur.id == id {
		b.cur.users++
		return b.cur, nil
	}
	f, err := sealedBinaryAt(path)
	if err != nil {
		return nil, err
	}
	if b.cur != nil {
		b.retire(b.cur)
	}
	b.cur = &sealedView{f: f, id: id, users: 1}
	return b.cur, nil
}

func (b *InitBinary) release(v *sealedView) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v.users--
	if v.retired && v.users == 0 {
		v.f.Close()
	}
}

func (b *InitBinary) retire(v *sealedView) {
	v.retired = true
	if v.users == 0 {
		v.f.Close()
	}
}

// Close closes the view once no start uses it.
func (b *InitBinary) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.retire(b.cur)
		b.cur = nil
	}
}

// openInit returns the sealed husk-init for one start, from ib if given, and what to call
// once the child has exec'd.
func openInit(ib *InitBinary) (*os.File, func(), error) {
	if ib == nil {
		f, err := sealedBinary()
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}
	v, err := ib.acquire()
	if err != nil {
		return nil, nil, err
	}
	return v.f, func() { ib.release(v) }, nil
}

// sealedBinary is the container init binary, husk-init from beside husk, sealed per process
// start (see exeseal). husk itself is pure Go and never runs an init: the init needs cgo (setns
// before the Go runtime starts, libseccomp), and the command line, run four times per container,
// starts faster without it.
func sealedBinary() (*os.File, error) {
	initBin, err := huskInitPath()
	if err != nil {
		return nil, err
	}
	return sealedBinaryAt(initBin)
}

// sealedBinaryAt is sealedBinary of the husk-init at initBin.
func sealedBinaryAt(initBin string) (*os.File, error) {
	st, err := os.Stat(initBin)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("husk-init is not installed in %s, beside husk (install both binaries: make install)", filepath.Dir(initBin))
	}
	return exeseal.OpenPath(initBin)
}

// huskInitPath is where the container init binary must be: beside husk's own.
func huskInitPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find husk-init: %w", err)
	}
	return filepath.Join(filepath.Dir(self), "husk-init"), nil
}
