package prefault

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func resident(t *testing.T, start, n uintptr) int {
	t.Helper()
	vec := make([]byte, n/pageSize)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, start, n, uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	count := 0
	for _, v := range vec {
		count += int(v & 1)
	}
	return count
}

// Fresh anonymous memory is not resident; populated, all of it is, before anything touches it.
func TestPopulate(t *testing.T) {
	const n = 256 << 10
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	start := uintptr(unsafe.Pointer(&mem[0]))
	if got := resident(t, start, n); got != 0 {
		t.Fatalf("%d pages resident before populate", got)
	}
	if err := populate(start, n); err != nil {
		t.Fatalf("populate: %v", err)
	}
	if got := resident(t, start, n); got != n/pageSize {
		t.Fatalf("%d of %d pages resident after populate", got, n/pageSize)
	}
}

// Heap populates from the page of a fresh heap allocation.
func TestHeap(t *testing.T) {
	const n = 64 << 10 // small enough to stay inside the heap's current mapping
	start, err := Heap(n)
	if err != nil {
		t.Fatalf("Heap: %v", err)
	}
	if got := resident(t, start, n); got != n/pageSize {
		t.Fatalf("%d of %d pages resident after Heap", got, n/pageSize)
	}
}
