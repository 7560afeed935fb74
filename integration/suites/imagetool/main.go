// Command imagetool stands in for the programs of the upstream test images critest runs, chosen
// by the name it is started as: "nginx" and "httpd" (registry.k8s.io/e2e-test-images/nginx and
// httpd, cri-tools' hostnet-nginx: serve a page over HTTP, log a line naming themselves, write
// /var/run/<name>.pid, and are found by `pidof <name>`) and "nnp" (e2e-test-images/nonewprivs:
// installed setuid root, prints the effective uid it runs with), "pause" (the sandbox image's
// process: reaps children, exits on SIGINT or SIGTERM); and two tools the upstream
// busybox image has and Debian's static busybox lacks: "pgrep" (names matched against a
// pattern) and "ipcs" (-m: the System V shared memory segments).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "nnp":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
	case "nginx", "httpd":
		name := filepath.Base(os.Args[0])
		// -g is nginx's; the image passes "daemon off; master process" there so that the
		// command line reads as nginx's master process does (critest greps it).
		flag.String("g", "", "nginx directives (ignored)")
		listen := flag.String("listen", ":80", "address to serve on")
		flag.Parse()
		os.WriteFile("/var/run/"+name+".pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		fmt.Fprintf(os.Stderr, "%s: serving on %s\n", name, *listen)
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "<html><title>Welcome to %s!</title></html>\n", name)
		})
		if err := http.ListenAndServe(*listen, nil); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
	case "pause":
		pause()
	case "pgrep":
		os.Exit(pgrep(os.Args[1:]))
	case "ipcs":
		os.Exit(ipcs())
	default:
		fmt.Fprintf(os.Stderr, "imagetool: start me as nginx, httpd, nnp, pause, pgrep or ipcs, not %q\n", os.Args[0])
		os.Exit(2)
	}
}

// pgrep prints the pids of processes whose name matches the pattern; 1 when none does.
func pgrep(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: pgrep PATTERN")
		return 2
	}
	re, err := regexp.Compile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgrep:", err)
		return 2
	}
	found := 1
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && re.MatchString(strings.TrimSpace(string(comm))) {
			fmt.Println(pid)
			found = 0
		}
	}
	return found
}

// ipcs prints the shared memory segments of the IPC namespace, in util-linux's layout.
func ipcs() int {
	data, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcs:", err)
		return 1
	}
	fmt.Printf("\n------ Shared Memory Segments --------\nkey        shmid      owner      perms      bytes      nattch     status\n")
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 8 {
			continue // the header
		}
		key, _ := strconv.ParseInt(f[0], 10, 64)
		fmt.Printf("0x%08x %-10s %-10s %-10s %-10s %-10s\n", uint32(key), f[1], f[7], strings.TrimLeft(f[2], "0"), f[3], f[6])
	}
	fmt.Println()
	return 0
}

// pause waits for SIGINT or SIGTERM, reaping children meanwhile: pid 1 of a pod's shared pid
// namespace, as the pause image's.
func pause() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
