// Package early populates the heap as a husk command or init starts: importing it is the whole
// API. Its init runs right after the runtime's own packages (it depends on nothing else), so
// the pages come in before any package initialises and before main decodes a spec.
//
// Only short-lived processes may import it: the populated pages stay resident.
package early

import "github.com/husk-runtime/husk/internal/prefault"

// ahead is what `husk create` and the init touch of heap, counted with perf (page-faults):
// 512 KB leaves faults behind; 1 MB and more only add resident pages.
const ahead = 768 << 10

func init() {
	prefault.Heap(ahead)
}
