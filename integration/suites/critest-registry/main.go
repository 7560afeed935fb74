// Command critest-registry serves the images critest pulls (critestimages) over plain HTTP,
// for a containerd that uses it as the mirror of registry.k8s.io, k8s.gcr.io and gcr.io: the
// systemd guest of make test-systemd, which has no Go toolchain, runs critest with it.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/husk-runtime/husk/integration/suites/critestimages"
)

func main() {
	busybox := flag.String("busybox", "/bin/busybox", "a static busybox: the images' userland")
	tool := flag.String("imagetool", "", "the imagetool binary (integration/suites/imagetool): the images' stand-in programs")
	listen := flag.String("listen", "127.0.0.1:5000", "address to serve on")
	flag.Parse()
	reg, err := critestimages.Registry(*busybox, *tool)
	if err != nil {
		fmt.Fprintln(os.Stderr, "critest-registry:", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "critest-registry:", err)
		os.Exit(1)
	}
	fmt.Println("critest-registry: serving on", l.Addr())
	if err := http.Serve(l, reg); err != nil {
		fmt.Fprintln(os.Stderr, "critest-registry:", err)
		os.Exit(1)
	}
}
