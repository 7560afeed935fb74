package shimapi

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"

	"golang.org/x/sys/unix"
)

// dumpStacksOnSIGUSR1 writes every goroutine's stack to w (the shim log containerd copies)
// each time the shim gets SIGUSR1, as containerd's runc shim does: a hung shim is diagnosed
// without a debugger and without restarting it.
func dumpStacksOnSIGUSR1(w io.Writer) {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGUSR1)
	go func() {
		for range sigc {
			fmt.Fprintf(w, "=== BEGIN goroutine stack dump (pid %d) ===\n%s\n=== END goroutine stack dump ===\n", os.Getpid(), allStacks())
		}
	}()
}

func allStacks() []byte {
	buf := make([]byte, 16<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}
