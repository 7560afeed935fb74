package integration

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/husk-runtime/husk/integration/suites/critestimages"
)

// critestSkips are the critest specs this machine cannot run, for any runtime, with the reason.
var critestSkips = map[string]string{
	"image with digest": "pulls gcr.io/k8s-staging-cri-tools/test-image-digest by its upstream digest, which a locally built image cannot have",
	"AppArmor":          "AppArmor is not enabled on this kernel",
	"NRI":               "containerd runs without an NRI socket here",
}

// TestCritest runs the Kubernetes CRI validation suite (critest, HUSK_CRITEST names its
// binary; make test-critest builds it) against containerd 2.4 and 1.6 with the husk shim as
// the pods' handler. A spec husk fails is run again with runc's handler on the same containerd
// and once more with husk's: the test fails only for a spec runc passes and husk fails twice.
// Images come from a registry served here (ociimage), built from the static busybox.
// HUSK_CRITEST_FULL=1 also runs runc's handler over every spec, for its totals;
// HUSK_CRITEST_ARGS adds critest arguments.
func TestCritest(t *testing.T) {
	critest := os.Getenv("HUSK_CRITEST")
	if critest == "" {
		t.Skip("HUSK_CRITEST is not set (make test-critest builds critest v1.37.0 and sets it)")
	}
	// containerd 2.4 puts the pods of a cgroupfs node without a parent under /k8s.io, and
	// the runtimes leave that parent when the pods go.
	t.Cleanup(func() { removeCgroupEverywhere("k8s.io") })
	registry := startCritestRegistry(t)
	out := os.Getenv("HUSK_CRITEST_OUT")
	if out == "" {
		out = t.TempDir()
	}
	// containerd 2.x: the husk shim as the runtime_path of a runc-typed handler, so that the
	// handler's options are runc's type, which containerd's client needs for user-namespaced
	// pods (it refuses a husk-typed handler's generic options there).
	for _, ctd := range []struct{ name, bin, handler string }{{"containerd-2.4", containerd2Bin(t), "husk-runc-options"}, {"containerd-1.6", "", "husk"}} {
		t.Run(ctd.name, func(t *testing.T) {
			c := startCRIWith(t, criOpts{bin: ctd.bin, registry: registry})
			dir := filepath.Join(out, ctd.name)
			os.MkdirAll(dir, 0o755)
			run := func(handler, report string, focus []string) map[string]critestResult {
				return runCritest(t, critest, c, handler, filepath.Join(dir, report), focus)
			}
			husk := run(ctd.handler, "husk.json", nil)
			var failed []string
			for name, r := range husk {
				if r.State == "failed" {
					failed = append(failed, name)
				}
			}
			sort.Strings(failed)
			counts := critestCounts(husk)
			t.Logf("%s, husk: %d passed, %d failed, %d skipped", ctd.name, counts["passed"], counts["failed"], counts["skipped"])
			if os.Getenv("HUSK_CRITEST_FULL") != "" {
				// For the totals: runc's handler over every spec.
				n := critestCounts(run("runc", "runc-full.json", nil))
				t.Logf("%s, runc: %d passed, %d failed, %d skipped", ctd.name, n["passed"], n["failed"], n["skipped"])
			}
			if len(failed) == 0 {
				return
			}
			runc := run("runc", "runc.json", failed)
			again := run(ctd.handler, "husk-again.json", failed)
			for _, name := range failed {
				switch {
				case runc[name].State != "passed":
					t.Logf("fails for runc too (%s): %s", runc[name].State, name)
				case again[name].State == "passed":
					t.Logf("FLAKY for husk (passed on the second run): %s\n  first failure: %s", name, husk[name].Failure)
				default:
					t.Errorf("husk fails what runc passes: %s\n  %s", name, husk[name].Failure)
				}
			}
		})
	}
}

type critestResult struct {
	State   string
	Failure string
}

func critestCounts(results map[string]critestResult) map[string]int {
	n := map[string]int{}
	for _, r := range results {
		n[r.State]++
	}
	return n
}

// startCritestRegistry serves the images critest pulls on 127.0.0.1 and returns its address.
func startCritestRegistry(t *testing.T) string {
	t.Helper()
	needBusybox(t)
	tool := filepath.Join(t.TempDir(), "imagetool")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", tool, "./suites/imagetool")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building imagetool: %v\n%s", err, out)
	}
	reg, err := critestimages.Registry(busyboxBin, tool)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: reg}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// runCritest runs critest against c with the pods' handler, only the specs in focus when
// given, and returns each spec's result by its full name.
func runCritest(t *testing.T, critest string, c *criContainerd, handler, report string, focus []string) map[string]critestResult {
	t.Helper()
	args := []string{
		"-runtime-endpoint", "unix://" + c.sock, "-image-endpoint", "unix://" + c.sock,
		"-runtime-handler", handler, "-ginkgo.no-color", "-ginkgo.json-report", report,
	}
	var skips []string
	for s := range critestSkips {
		skips = append(skips, regexp.QuoteMeta(s))
	}
	sort.Strings(skips)
	args = append(args, "-ginkgo.skip", strings.Join(skips, "|"))
	// For one's own investigations, e.g. -ginkgo.focus=X (the binary has no -ginkgo.repeat:
	// loop over runs for that).
	args = append(args, strings.Fields(os.Getenv("HUSK_CRITEST_ARGS"))...)
	if len(focus) > 0 {
		quoted := make([]string, len(focus))
		for i, f := range focus {
			quoted[i] = regexp.QuoteMeta(f) + "$" // (the text ginkgo matches has a prefix)
		}
		args = append(args, "-ginkgo.focus", strings.Join(quoted, "|"))
	}
	log, err := os.Create(strings.TrimSuffix(report, ".json") + ".log")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(critest, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = filepath.Dir(report)
	runErr := cmd.Run() // non-zero when a spec fails: the report says which
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("critest (%s) wrote no report: %v (log: %s)", handler, runErr, log.Name())
	}
	var suites []struct {
		SpecReports []struct {
			ContainerHierarchyTexts []string
			LeafNodeText            string
			LeafNodeType            string
			State                   string
			Failure                 struct{ Message string }
		}
	}
	if err := json.Unmarshal(data, &suites); err != nil {
		t.Fatalf("critest report %s: %v", report, err)
	}
	results := map[string]critestResult{}
	for _, s := range suites {
		for _, r := range s.SpecReports {
			if r.LeafNodeType != "It" {
				if r.State == "failed" {
					t.Errorf("critest (%s): %s failed: %s", handler, r.LeafNodeType, r.Failure.Message)
				}
				continue
			}
			name := strings.Join(append(append([]string{}, r.ContainerHierarchyTexts...), r.LeafNodeText), " ")
			if r.State == "skipped" && len(focus) > 0 {
				continue // not focused
			}
			results[name] = critestResult{State: r.State, Failure: firstLine(r.Failure.Message)}
		}
	}
	if len(results) == 0 {
		t.Fatalf("critest (%s) ran no spec: %v (log: %s)", handler, runErr, log.Name())
	}
	return results
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
