// Command bench measures husk against runc and crun, husk's shim against
// containerd-shim-runc-v2, and the husk handler against the runc handler through containerd's
// CRI, interleaved in one run so the ratios mean something on a shared
// machine. `make bench` runs it as root inside a private mount namespace in which cgroup2's
// cgroup.controllers is masked, because crun 1.8 refuses this host's hybrid layout otherwise.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/specs"
)

type sample struct {
	name, who string
	v         float64
}

type result struct {
	Op     string             `json:"op"`
	Unit   string             `json:"unit"`
	Median map[string]float64 `json:"median"`
	Min    map[string]float64 `json:"min"`
	Max    map[string]float64 `json:"max"`
}

var (
	rounds  = flag.Int("rounds", 15, "rounds per operation")
	out     = flag.String("json", "integration/bench-results.json", "where to write the results")
	husk    = flag.String("husk", "bin/husk", "husk binary")
	shim    = flag.String("shim", "bin/containerd-shim-husk-v2", "husk shim binary")
	busybox = flag.String("busybox", "/bin/busybox", "static busybox for the rootfs")
	seccomp = flag.String("seccomp", "integration/testdata/seccomp-runtimedefault.json", "the RuntimeDefault seccomp profile (containerd 2.4's) of the seccomp rows")
	noShim  = flag.Bool("no-shim", false, "skip the containerd part")
	probes  = flag.Int("probes", 200, "exec probes before the second idle shim measurement")
	noCRI   = flag.Bool("no-cri", false, "skip the CRI part")

	crictlPath  = flag.String("crictl", "build/bin/crictl", "crictl binary (1.37)")
	containerd2 = flag.String("containerd2", "build/containerd2/bin", "directory holding containerd 2.4, ctr and its runc shim")
)

func main() {
	flag.Parse()
	h, _ := filepath.Abs(*husk)
	runtimes := []string{h, "runc", "crun"}
	names := map[string]string{h: "husk", "runc": "runc", "crun": "crun"}
	dir, err := os.MkdirTemp("", "husk-bench")
	check(err)
	defer os.RemoveAll(dir)
	bundle := makeBundle(dir)
	// What every Kubernetes container with seccomp RuntimeDefault has: containerd's profile.
	profile, err := os.ReadFile(*seccomp)
	check(err)
	var sc rspec.LinuxSeccomp
	check(json.Unmarshal(profile, &sc))
	scBundle := makeBundleWith(filepath.Join(dir, "seccomp"), &sc)
	var samples []sample
	add := func(op, rt string, d float64) { samples = append(samples, sample{op, names[rt], d}) }
	for r := 0; r < *rounds; r++ {
		for _, rt := range rotate(runtimes, r) {
			root := filepath.Join(dir, "root-"+names[rt])
			id := fmt.Sprintf("b%d", r)
			t0 := time.Now()
			cmd := runtime(rt, root, bundle, "create", id)
			check(cmd.Run())
			t1 := time.Now()
			check(runtime(rt, root, bundle, "start", id).Run())
			t2 := time.Now()
			waitStopped(rt, root, id)
			t3 := time.Now()
			check(runtime(rt, root, bundle, "delete", id).Run())
			t4 := time.Now()
			add("create", rt, ms(t1.Sub(t0)))
			add("start", rt, ms(t2.Sub(t1)))
			add("delete", rt, ms(t4.Sub(t3)))
			add("lifecycle (create+start+wait+delete)", rt, ms(t4.Sub(t0)))

			t0 = time.Now()
			check(runtime(rt, root, bundle, "run", "r"+id).Run())
			add("run (foreground)", rt, ms(time.Since(t0)))

			t0 = time.Now()
			check(runtime(rt, root, scBundle, "run", "s"+id).Run())
			add("run, RuntimeDefault seccomp", rt, ms(time.Since(t0)))
		}
	}
	// Max RSS, in rounds of its own: GNU time forks (not vforks) the runtime from its own small
	// process, so the peak it reports is the runtime's. The rusage Go's exec.Cmd returns is
	// not: the vforked child shares this process's memory until execve, and the kernel keeps
	// that high-water mark as the child's (it read the same ~6.8 MB for every runtime).
	for r := 0; r < *rounds; r++ {
		for _, rt := range rotate(runtimes, r) {
			root := filepath.Join(dir, "root-"+names[rt])
			id := fmt.Sprintf("m%d", r)
			kb, err := maxRSS(runtime(rt, root, bundle, "create", id))
			check(err)
			check(runtime(rt, root, bundle, "delete", "-f", id).Run())
			add("max RSS of create (MB)", rt, kb/1024)
		}
	}
	// exec and state into one long-running container per runtime.
	long := makeBundle(filepath.Join(dir, "long"), "sleep", "100000")
	longSc := makeBundleWith(filepath.Join(dir, "long-seccomp"), &sc, "sleep", "100000")
	for _, rt := range runtimes {
		check(runtime(rt, filepath.Join(dir, "root-"+names[rt]), long, "run", "-d", "long").Run())
		check(runtime(rt, filepath.Join(dir, "root-"+names[rt]), longSc, "run", "-d", "long-seccomp").Run())
	}
	for r := 0; r < *rounds; r++ {
		for _, rt := range rotate(runtimes, r) {
			root := filepath.Join(dir, "root-"+names[rt])
			t0 := time.Now()
			check(runtime(rt, root, long, "exec", "long", "true").Run())
			add("exec", rt, ms(time.Since(t0)))
			t0 = time.Now()
			check(runtime(rt, root, longSc, "exec", "long-seccomp", "true").Run())
			add("exec, RuntimeDefault seccomp", rt, ms(time.Since(t0)))
			t0 = time.Now()
			check(runtime(rt, root, long, "state", "long").Run())
			add("state", rt, ms(time.Since(t0)))
		}
	}
	for _, rt := range runtimes {
		runtime(rt, filepath.Join(dir, "root-"+names[rt]), long, "delete", "-f", "long").Run()
		runtime(rt, filepath.Join(dir, "root-"+names[rt]), longSc, "delete", "-f", "long-seccomp").Run()
	}
	results := summarize(samples, []string{"husk", "runc", "crun"})
	if !*noShim {
		results = append(results, benchShims(dir, bundle)...)
	}
	if !*noCRI {
		results = append(results, benchCRI(dir)...)
	}
	printTable(results)
	b, _ := json.MarshalIndent(map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "rounds": *rounds, "results": results}, "", "  ")
	check(os.WriteFile(*out, b, 0o644))
	fmt.Printf("\nwritten to %s\n", *out)
}

func rotate(s []string, r int) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[(i+r)%len(s)]
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runtime(rt, root, bundle string, args ...string) *exec.Cmd {
	a := append([]string{"--root", root}, args...)
	if args[0] == "create" || args[0] == "run" {
		a = append(append([]string{"--root", root}, args[0], "--bundle", bundle), args[1:]...)
	}
	cmd := exec.Command(rt, a...)
	cmd.Stderr = os.Stderr
	return cmd
}

// maxRSS runs cmd under GNU time and returns the command's peak RSS in KB.
func maxRSS(cmd *exec.Cmd) (float64, error) {
	f, err := os.CreateTemp("", "maxrss")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	f.Close()
	cmd.Args = append([]string{"/usr/bin/time", "-f", "%M", "-o", f.Name()}, cmd.Args...)
	cmd.Path = "/usr/bin/time"
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
}

// waitStopped polls the container's init until it is gone, without spawning processes.
func waitStopped(rt, root, id string) {
	out, err := exec.Command(rt, "--root", root, "state", id).Output()
	check(err)
	var st struct{ Pid int }
	json.Unmarshal(out, &st)
	for st.Pid > 0 {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/stat")
		if err != nil || strings.Contains(string(data), ") Z ") {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func makeBundle(dir string, args ...string) string { return makeBundleWith(dir, nil, args...) }

// makeBundleWith makes a busybox bundle whose process runs args (default: true) under the
// seccomp profile sc (nil: none).
func makeBundleWith(dir string, sc *rspec.LinuxSeccomp, args ...string) string {
	rootfs := filepath.Join(dir, "rootfs")
	check(os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755))
	data, err := os.ReadFile(*busybox)
	check(err)
	check(os.WriteFile(filepath.Join(rootfs, "bin/busybox"), data, 0o755))
	for _, a := range []string{"sh", "true", "sleep"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	s := specs.Default()
	s.Version = "1.0.2" // crun 1.8 knows no later version
	s.Process.Terminal = false
	s.Process.Args = []string{"true"}
	if len(args) > 0 {
		s.Process.Args = args
	}
	s.Process.Env = []string{"PATH=/bin"}
	s.Process.Rlimits = nil
	s.Linux.Seccomp = sc
	b, _ := json.Marshal(s)
	check(os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	return dir
}

func summarize(samples []sample, who []string) []result {
	var order []string
	by := map[string]map[string][]float64{}
	for _, s := range samples {
		if by[s.name] == nil {
			by[s.name] = map[string][]float64{}
			order = append(order, s.name)
		}
		by[s.name][s.who] = append(by[s.name][s.who], s.v)
	}
	var out []result
	for _, op := range order {
		r := result{Op: op, Unit: "ms", Median: map[string]float64{}, Min: map[string]float64{}, Max: map[string]float64{}}
		if strings.Contains(op, "MB") {
			r.Unit = "MB"
		}
		for _, w := range who {
			v := by[op][w]
			if len(v) == 0 {
				continue
			}
			sort.Float64s(v)
			r.Median[w], r.Min[w], r.Max[w] = v[len(v)/2], v[0], v[len(v)-1]
		}
		out = append(out, r)
	}
	return out
}

func printTable(results []result) {
	fmt.Printf("%-56s %-22s %-22s %-22s %10s %10s\n", "operation (median, min..max)", "husk", "runc", "crun", "husk/runc", "husk/crun")
	for _, r := range results {
		cell := func(w string) string {
			if _, ok := r.Median[w]; !ok {
				return "-"
			}
			return fmt.Sprintf("%.1f (%.1f..%.1f)", r.Median[w], r.Min[w], r.Max[w])
		}
		ratio := func(w string) string {
			if r.Median[w] == 0 || r.Median["husk"] == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", r.Median["husk"]/r.Median[w])
		}
		fmt.Printf("%-56s %-22s %-22s %-22s %10s %10s\n", r.Op+" ["+r.Unit+"]", cell("husk"), cell("runc"), cell("crun"), ratio("runc"), ratio("crun"))
	}
}
