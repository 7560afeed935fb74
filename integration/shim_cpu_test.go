package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/typeurl/v2"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestShimExecCPU compares the CPU husk shims spend per exec probe (Exec, Start, Wait and
// Delete of `true` with stdout and stderr fifos, as containerd's ExecSync asks), for the shim
// binaries in HUSK_SHIM_EXEC_CPU (comma-separated; each with its husk and husk-init beside
// it), rounds interleaved: the shim's own CPU, and its children's (the exec's fork, husk-init
// and `true`). It measures, it does not judge; without the variable it is skipped.
func TestShimExecCPU(t *testing.T) {
	bins := strings.Split(os.Getenv("HUSK_SHIM_EXEC_CPU"), ",")
	if bins[0] == "" {
		t.Skip("HUSK_SHIM_EXEC_CPU is not set (shim binaries to compare, comma-separated)")
	}
	probes, rounds := 200, 5
	if v, err := strconv.Atoi(os.Getenv("HUSK_SHIM_EXEC_CPU_PROBES")); err == nil {
		probes = v
	}
	if v, err := strconv.Atoi(os.Getenv("HUSK_SHIM_EXEC_CPU_ROUNDS")); err == nil {
		rounds = v
	}
	// A pace (a duration) spaces the probes as a kubelet's do (one a second): what the shim
	// spends between them (its runtime's timers and background work) counts too.
	pace, _ := time.ParseDuration(os.Getenv("HUSK_SHIM_EXEC_CPU_PACE"))
	type shim struct {
		h              *shimHarness
		self, children []float64 // ms per probe, one per round
	}
	ctx := context.Background()
	shims := make([]*shim, len(bins))
	for i, bin := range bins {
		h := startShimBinary(t, bin)
		h.sleeper(t, fmt.Sprintf("cpu%d", i), runcOptions(t, filepath.Join(filepath.Dir(bin), "husk")))
		shims[i] = &shim{h: h}
	}
	proc, _ := json.Marshal(rspec.Process{Args: []string{"true"}, Env: []string{"PATH=/bin"}, Cwd: "/"})
	probe := func(h *shimHarness, id string, n int) {
		execID := fmt.Sprintf("p%d", n)
		stdout, _ := fifoReader(t, h.dir, execID+"-out")
		stderr, _ := fifoReader(t, h.dir, execID+"-err")
		defer os.Remove(stdout)
		defer os.Remove(stderr)
		if _, err := h.client.Exec(ctx, &taskapi.ExecProcessRequest{ID: id, ExecID: execID, Stdout: stdout, Stderr: stderr, Spec: &anypb.Any{Value: proc}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: id, ExecID: execID}); err != nil {
			t.Fatal(err)
		}
		if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: id, ExecID: execID}); err != nil || wr.ExitStatus != 0 {
			t.Fatalf("exec: %v %v", wr, err)
		}
		if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: id, ExecID: execID}); err != nil {
			t.Fatal(err)
		}
	}
	for r := 0; r < rounds; r++ {
		for i := range shims {
			s := shims[(i+r)%len(shims)]
			idx := (i + r) % len(shims)
			self0, child0 := procCPU(t, s.h.cmd.Process.Pid)
			for n := 0; n < probes; n++ {
				probe(s.h, fmt.Sprintf("cpu%d", idx), r*probes+n)
				time.Sleep(pace)
			}
			self1, child1 := procCPU(t, s.h.cmd.Process.Pid)
			s.self = append(s.self, (self1-self0)/float64(probes))
			s.children = append(s.children, (child1-child0)/float64(probes))
		}
	}
	for i, s := range shims {
		t.Logf("%s: shim %.2f ms/probe (rounds %v), children %.2f ms/probe", bins[i], medianMs(s.self), s.self, medianMs(s.children))
		if i > 0 {
			t.Logf("  ratio to %s: shim %.2f, children %.2f", bins[0], medianMs(s.self)/medianMs(shims[0].self), medianMs(s.children)/medianMs(shims[0].children))
		}
	}
}

// procCPU returns a process's own CPU time and its reaped children's, in ms.
func procCPU(t *testing.T, pid int) (self, children float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	tick := func(i int) float64 { v, _ := strconv.Atoi(f[i]); return float64(v) * 10 }
	// Fields after the command: state is 0, utime 11, stime 12, cutime 13, cstime 14 (ticks of 10 ms).
	return tick(11) + tick(12), tick(13) + tick(14)
}

func medianMs(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// TestShimExecFollowsTheContainer: the shim keeps what its execs need of a container's state
// between execs (probes); an exec must still see the container as it is now: paused by the shim
// or by a husk command (no exec), resumed, stopped, and deleted and made again under the same
// id with another spec (the exec joins the new container's namespaces, not the old one's).
func TestShimExecFollowsTheContainer(t *testing.T) { bothHusks(t, testShimExecFollowsTheContainer) }

func testShimExecFollowsTheContainer(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	root := t.TempDir()
	opts, err := typeurl.MarshalAnyToProto(&options.Options{BinaryName: husk, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	huskRoot := filepath.Join(root, "husktest") // the shim's namespace
	var n atomic.Int32
	execOut := func(args ...string) (string, error) {
		execID := fmt.Sprintf("e%d", n.Add(1))
		stdout, outText := fifoReader(t, h.dir, execID+"-out")
		proc, _ := json.Marshal(rspec.Process{Args: args, Env: []string{"PATH=/bin"}, Cwd: "/"})
		if _, err := h.client.Exec(ctx, &taskapi.ExecProcessRequest{ID: "c", ExecID: execID, Stdout: stdout, Spec: &anypb.Any{Value: proc}}); err != nil {
			return "", err
		}
		defer h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "c", ExecID: execID})
		if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "c", ExecID: execID}); err != nil {
			// Release the fifo's reader: the exec never opened it.
			if w, err := os.OpenFile(stdout, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			outText()
			return "", err
		}
		h.client.Wait(ctx, &taskapi.WaitRequest{ID: "c", ExecID: execID})
		return strings.TrimSpace(outText()), nil
	}
	create := func(hostname string) {
		b := newBundle(t, "sleep", "1000")
		b.spec.Hostname = hostname
		b.write(t)
		if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "c", Bundle: b.dir, Options: opts}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	stop := func() {
		h.client.Kill(ctx, &taskapi.KillRequest{ID: "c", Signal: 9})
		h.client.Wait(ctx, &taskapi.WaitRequest{ID: "c"})
	}
	create("first")
	for i := 0; i < 2; i++ {
		if out, err := execOut("hostname"); err != nil || out != "first" {
			t.Fatalf("exec %d: %q %v, want the container's hostname", i, out, err)
		}
	}
	// Execs side by side share the container's entry.
	var wg sync.WaitGroup
	outs := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := execOut("hostname")
			if err != nil {
				out = err.Error()
			}
			outs <- out
		}()
	}
	wg.Wait()
	close(outs)
	for out := range outs {
		if out != "first" {
			t.Errorf("an exec among 20 side by side: %q, want the container's hostname", out)
		}
	}
	h.client.Pause(ctx, &taskapi.PauseRequest{ID: "c"})
	if _, err := execOut("true"); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("exec into a container the shim paused: %v, want a refusal naming the pause", err)
	}
	h.client.Resume(ctx, &taskapi.ResumeRequest{ID: "c"})
	if out, err := execOut("hostname"); err != nil || out != "first" {
		t.Errorf("exec after a resume: %q %v", out, err)
	}
	if r := runHusk(t, root, huskRoot, nil, "pause", "c"); r.code != 0 {
		t.Fatalf("husk pause: %v", r)
	}
	if _, err := execOut("true"); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("exec into a container husk paused: %v, want a refusal naming the pause", err)
	}
	if r := runHusk(t, root, huskRoot, nil, "resume", "c"); r.code != 0 {
		t.Fatalf("husk resume: %v", r)
	}
	if out, err := execOut("hostname"); err != nil || out != "first" {
		t.Errorf("exec after husk resume: %q %v", out, err)
	}
	stop()
	if _, err := execOut("true"); err == nil {
		t.Errorf("exec into a stopped container went through")
	}
	if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	create("second")
	defer func() {
		stop()
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "c"})
	}()
	if out, err := execOut("hostname"); err != nil || out != "second" {
		t.Errorf("exec into the container made again under the same id: %q %v, want its own hostname", out, err)
	}
}
