package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCritestBenchmark runs critest's own benchmarks (pod lifecycle; container create, start,
// status, stop, remove) against containerd 2.4 with husk's handler and runc's, interleaved
// round by round on one machine, and reports each operation's median and husk/runc ratio. It
// measures, it does not judge: make bench-critest runs it (HUSK_CRITEST_BENCH is the number of
// rounds) and writes the figures to HUSK_CRITEST_BENCH_OUT.
func TestCritestBenchmark(t *testing.T) {
	critest, rounds := os.Getenv("HUSK_CRITEST"), os.Getenv("HUSK_CRITEST_BENCH")
	if critest == "" || rounds == "" {
		t.Skip("HUSK_CRITEST and HUSK_CRITEST_BENCH are not set (make bench-critest sets them)")
	}
	n, err := strconv.Atoi(rounds)
	if err != nil || n < 1 {
		t.Fatalf("HUSK_CRITEST_BENCH=%q: want a number of rounds", rounds)
	}
	t.Cleanup(func() { removeCgroupEverywhere("k8s.io") })
	registry := startCritestRegistry(t)
	c := startCRIWith(t, criOpts{bin: containerd2Bin(t), registry: registry})
	dir := t.TempDir()
	params := filepath.Join(dir, "params.yaml")
	// 30 pods and 30 containers a round, one at a time: a node's steady churn, not a burst.
	os.WriteFile(params, []byte("containersNumber: 30\ncontainersNumberParallel: 1\npodsNumber: 30\npodsNumberParallel: 1\n"), 0o644)
	// husk's handler in both forms containerd 2.x takes (its own runtime type; the husk shim
	// as a runc-typed handler's runtime_path), and runc's: rotated each round.
	handlers := []string{"husk", "husk-runc-options", "runc"}
	samples := map[string]map[string][]int64{} // handler -> operation -> durations (ns)
	for round := 0; round < n; round++ {
		for i := range handlers {
			h := handlers[(round+i)%len(handlers)]
			out := filepath.Join(dir, fmt.Sprintf("%s-%d", h, round))
			os.MkdirAll(out, 0o755)
			cmd := exec.Command(critest, "-benchmark", "-runtime-endpoint", "unix://"+c.sock, "-image-endpoint", "unix://"+c.sock,
				"-runtime-handler", h, "-benchmarking-params-file", params, "-benchmarking-output-dir", out, "-ginkgo.no-color",
				"-ginkgo.focus", "benchmark about (lifecycle of PodSandbox|basic operations on Container)")
			cmd.Dir = out
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("critest -benchmark (%s, round %d): %v\n%s", h, round, err, tail(string(b), 30))
			}
			for _, f := range []string{"pod_benchmark_data.json", "container_benchmark_data.json"} {
				readCritestBenchmark(t, filepath.Join(out, f), h, samples)
			}
		}
	}
	var ops []string
	for op := range samples["runc"] {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	type row struct {
		Operation                 string
		HuskMs, HuskRuncOptionsMs float64
		RuncMs                    float64
		Ratio, RatioRuncOptions   float64 // husk/runc, husk-runc-options/runc
		Samples                   int     // per handler
	}
	var rows []row
	var report strings.Builder
	fmt.Fprintf(&report, "critest benchmark, containerd 2.4, %d rounds of 30 pods and 30 containers (median ms; ratio to runc):\n", n)
	fmt.Fprintf(&report, "  %-16s %8s %8s %8s %6s %6s\n", "operation", "husk", "husk-ro", "runc", "husk", "husk-ro")
	for _, op := range ops {
		h, ho, r := median(samples["husk"][op]), median(samples["husk-runc-options"][op]), median(samples["runc"][op])
		rows = append(rows, row{op, h / 1e6, ho / 1e6, r / 1e6, h / r, ho / r, len(samples["runc"][op])})
		fmt.Fprintf(&report, "  %-16s %8.2f %8.2f %8.2f %6.2f %6.2f\n", op, h/1e6, ho/1e6, r/1e6, h/r, ho/r)
	}
	t.Log(report.String())
	if out := os.Getenv("HUSK_CRITEST_BENCH_OUT"); out != "" {
		data, _ := json.MarshalIndent(map[string]any{"date": time.Now().UTC().Format(time.RFC3339), "rounds": n, "operations": rows}, "", "  ")
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// readCritestBenchmark adds one critest benchmark file's datapoints to samples[handler].
func readCritestBenchmark(t *testing.T, path, handler string, samples map[string]map[string][]int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("critest wrote no %s: %v", filepath.Base(path), err)
	}
	var set struct {
		OperationsNames []string `json:"operationsNames"`
		Datapoints      []struct {
			OperationsDurationsNs []int64 `json:"operationsDurationsNs"`
		} `json:"datapoints"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if samples[handler] == nil {
		samples[handler] = map[string][]int64{}
	}
	for _, d := range set.Datapoints {
		for i, ns := range d.OperationsDurationsNs {
			if i < len(set.OperationsNames) {
				samples[handler][set.OperationsNames[i]] = append(samples[handler][set.OperationsNames[i]], ns)
			}
		}
	}
}

func median(v []int64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return float64(s[len(s)/2])
	}
	return float64(s[len(s)/2-1]+s[len(s)/2]) / 2
}
