// Command mkimage writes the busybox OCI image archives the CRI tests import, for a guest
// that runs them (make test-systemd): mkimage -o DIR name=entry ... (entry sh or sleep).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/husk-runtime/husk/integration/ociimage"
)

func main() {
	out := flag.String("o", ".", "directory to write the archives to")
	busybox := flag.String("busybox", "/bin/busybox", "a static busybox")
	flag.Parse()
	for _, a := range flag.Args() {
		name, entry, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "mkimage: %q: want name=entry\n", a)
			os.Exit(2)
		}
		p, err := ociimage.Write(*out, name, entry, *busybox)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(1)
		}
		fmt.Println(p)
	}
}
