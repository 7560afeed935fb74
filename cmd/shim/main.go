// Command containerd-shim-husk-v2 will be husk's containerd shim; see the shim issue.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "containerd-shim-husk-v2: not implemented yet")
	os.Exit(1)
}
