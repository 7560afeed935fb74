// Command demo is the container `make demo` runs: a static binary that is its own rootfs.
// With -bundle DIR it writes an OCI bundle holding a copy of itself; run as the container's
// process it prints what the container looks like from inside.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/husk-runtime/husk/specs"
)

func main() {
	bundle := flag.String("bundle", "", "write a bundle to this directory and exit")
	flag.Parse()
	if *bundle != "" {
		if err := writeBundle(*bundle); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			os.Exit(1)
		}
		return
	}
	host, _ := os.Hostname()
	fmt.Printf("hello from a husk container\n  hostname: %s\n  pid:      %d\n  uid:      %d\n", host, os.Getpid(), os.Getuid())
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		fmt.Println("  mounts:   unavailable:", err)
		return
	}
	defer f.Close()
	fmt.Println("  mounts:")
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 9 {
			// mountinfo: ... mountpoint options ... - fstype source superoptions
			sep := 6
			for fields[sep] != "-" {
				sep++
			}
			fmt.Printf("    %-20s %-8s %s\n", fields[4], fields[sep+1], fields[5])
		}
	}
}

func writeBundle(dir string) error {
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer self.Close()
	dst, err := os.OpenFile(filepath.Join(rootfs, "demo"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, self); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	spec := specs.Default()
	spec.Process.Terminal = false
	spec.Process.Args = []string{"/demo"}
	spec.Hostname = "husk-demo"
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}
