// Command nodebench measures what a busy node pays its container runtime, through a running
// containerd's CRI: pod start throughput and latency at a fixed concurrency, the CPU cost and
// latency of exec probes, the shims' memory, and a container's start with many masked
// directories; for each handler given, in rotation, and at each pod count. It is a module of
// its own (the CRI API's dependencies stay out of husk's); make bench-node builds it and
// integration/node_bench_test.go runs it against a containerd it sets up.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// config is what the harness tells the bench about the node it set up.
type config struct {
	socket       string
	handlers     []string
	scales       []int
	concurrency  int
	probeFor     time.Duration
	masked       []int
	maskedRounds int
	image, pause string
	cgroupParent string // the pods' cgroup_parent
	cpuacct      string // the cpuacct hierarchy's mount
	daemonCgroup string // containerd's and its shims' cgroup (relative to cpuacct)
	daemonPid    int
	maskDir      string // a host directory with subdirectories 0, 1, ... to mask
	out          string
}

func main() {
	var c config
	var handlers, scales, masked string
	flag.StringVar(&c.socket, "socket", "", "containerd's socket")
	flag.StringVar(&handlers, "handlers", "husk,runc", "runtime handlers, comma-separated")
	flag.StringVar(&scales, "pods", "10,50,100", "pod counts, comma-separated")
	flag.IntVar(&c.concurrency, "concurrency", 10, "pods started at once")
	flag.DurationVar(&c.probeFor, "probe-for", 60*time.Second, "how long every pod is probed (one exec of true per second)")
	flag.StringVar(&masked, "masked", "1,64,256", "masked directory counts")
	flag.IntVar(&c.maskedRounds, "masked-rounds", 5, "container starts per masked count and handler")
	flag.StringVar(&c.image, "image", "husk.test/busybox:1", "the containers' image")
	flag.StringVar(&c.pause, "pause", "husk.test/pause:1", "unused: the sandbox image is containerd's")
	flag.StringVar(&c.cgroupParent, "cgroup-parent", "", "the pods' cgroup_parent (cgroupfs path)")
	flag.StringVar(&c.cpuacct, "cpuacct", "/sys/fs/cgroup/cpu,cpuacct", "the cpuacct hierarchy")
	flag.StringVar(&c.daemonCgroup, "daemon-cgroup", "", "containerd's cgroup in the cpuacct hierarchy")
	flag.IntVar(&c.daemonPid, "daemon-pid", 0, "containerd's pid")
	flag.StringVar(&c.maskDir, "mask-dir", "", "host directory holding the directories to mask")
	flag.StringVar(&c.out, "json", "", "write the figures here")
	flag.Parse()
	c.handlers = strings.Split(handlers, ",")
	c.scales = ints(scales)
	c.masked = ints(masked)
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "nodebench:", err)
		os.Exit(1)
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// result is one handler's figures at one pod count.
type result struct {
	Handler string `json:"handler"`
	Pods    int    `json:"pods"`
	// Start: RunPodSandbox + CreateContainer + StartContainer of each pod, `concurrency` at once.
	PodsPerSec  float64 `json:"pods_per_sec"`
	StartP50ms  float64 `json:"start_p50_ms"`
	StartP99ms  float64 `json:"start_p99_ms"`
	CreateP50ms float64 `json:"create_container_p50_ms"` // CRI CreateContainer alone
	// CPU per pod started, as for the probes: what bounds pods/s on a node that is short of CPU.
	StartStackCPUms      float64 `json:"start_stack_cpu_ms_per_pod"`      // containerd + shims + runtime + the pods
	StartContainerdCPUms float64 `json:"start_containerd_cpu_ms_per_pod"` // containerd's own
	StartRuntimeCPUms    float64 `json:"start_runtime_cpu_ms_per_pod"`    // the rest: shims, runtimes, pods
	// Probes: one ExecSync of true per pod per second.
	Probes          int     `json:"probes"`
	ProbeP50ms      float64 `json:"probe_p50_ms"`
	ProbeP99ms      float64 `json:"probe_p99_ms"`
	StackCPUms      float64 `json:"stack_cpu_ms_per_probe"`      // containerd + shims + runtime + the container side
	ContainerdCPUms float64 `json:"containerd_cpu_ms_per_probe"` // containerd's own
	RuntimeCPUms    float64 `json:"runtime_cpu_ms_per_probe"`    // the rest: shim, its forks, the container side
	ShimCPUms       float64 `json:"shim_cpu_ms_per_probe"`       // the shims' own threads
	ContainerCPUms  float64 `json:"container_cpu_ms_per_probe"`  // in the pods' cgroups: the exec'd process and its setup there
	// Memory of the shims serving the pods.
	Shims        int     `json:"shims"`
	IdlePSSMB    float64 `json:"shim_pss_mb_per_pod_idle"`
	LoadPSSMB    float64 `json:"shim_pss_mb_per_pod_probed"`
	MaxRSSExecMB float64 `json:"shim_max_rss_mb_after_exec"`
}

// maskedResult is a container's StartContainer (the runtime's create and start) with n masked
// directories.
type maskedResult struct {
	Handler string  `json:"handler"`
	Masked  int     `json:"masked"`
	P50ms   float64 `json:"start_p50_ms"`
}

func run(c config) error {
	conn, err := grpc.NewClient("unix://"+c.socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	var results []result
	for round, n := range c.scales {
		for i := range c.handlers {
			h := c.handlers[(round+i)%len(c.handlers)]
			fmt.Fprintf(os.Stderr, "nodebench: %s, %d pods\n", h, n)
			r, err := scale(rt, c, h, n)
			if err != nil {
				return fmt.Errorf("%s, %d pods: %w", h, n, err)
			}
			results = append(results, r)
		}
	}
	var masks []maskedResult
	if c.maskDir != "" {
		for round := 0; round < c.maskedRounds; round++ {
			for i := range c.handlers {
				h := c.handlers[(round+i)%len(c.handlers)]
				m, err := maskedStarts(rt, c, h, round)
				if err != nil {
					return fmt.Errorf("%s, masked directories: %w", h, err)
				}
				masks = append(masks, m...)
			}
		}
		masks = medianMasked(masks)
	}
	report(c, results, masks)
	if c.out != "" {
		b, _ := json.MarshalIndent(map[string]any{"scales": results, "masked": masks}, "", "  ")
		return os.WriteFile(c.out, b, 0o644)
	}
	return nil
}

type pod struct {
	id, container string
	cfg           *runtimeapi.PodSandboxConfig
}

func podConfig(c config, h string, i int) *runtimeapi.PodSandboxConfig {
	name := fmt.Sprintf("nb-%s-%d-%d", h, time.Now().UnixNano()%1e6, i)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Uid: name, Namespace: "nodebench"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: c.cgroupParent,
			// Host network: the CNI plugins' cost is the same for every handler.
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}},
		},
	}
}

func containerConfig(c config, name string, masked []string, mounts []*runtimeapi.Mount) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: c.image},
		Command:  []string{"sleep", "2147483647"},
		Mounts:   mounts,
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{MaskedPaths: masked}},
	}
}

// startPod runs a pod with one sleeping container; it returns the whole start's duration and
// CreateContainer's.
func startPod(ctx context.Context, rt runtimeapi.RuntimeServiceClient, c config, h string, i int) (pod, time.Duration, time.Duration, error) {
	p := pod{cfg: podConfig(c, h, i)}
	t0 := time.Now()
	rp, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: p.cfg, RuntimeHandler: h})
	if err != nil {
		return p, 0, 0, fmt.Errorf("RunPodSandbox: %w", err)
	}
	p.id = rp.PodSandboxId
	t1 := time.Now()
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: containerConfig(c, "c", nil, nil), SandboxConfig: p.cfg})
	if err != nil {
		return p, 0, 0, fmt.Errorf("CreateContainer: %w", err)
	}
	create := time.Since(t1)
	p.container = cc.ContainerId
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.container}); err != nil {
		return p, 0, 0, fmt.Errorf("StartContainer: %w", err)
	}
	return p, time.Since(t0), create, nil
}

func scale(rt runtimeapi.RuntimeServiceClient, c config, h string, n int) (result, error) {
	ctx := context.Background()
	r := result{Handler: h, Pods: n}
	pods := make([]pod, n)
	starts, creates := make([]time.Duration, n), make([]time.Duration, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0, own0 := cgroupCPU(c.cpuacct, c.daemonCgroup)+cgroupCPU(c.cpuacct, c.cgroupParent), procCPU(c.daemonPid)
	t0 := time.Now()
	for w := 0; w < c.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				pods[i], starts[i], creates[i], errs[i] = startPod(ctx, rt, c, h, i)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	cpu1, own1 := cgroupCPU(c.cpuacct, c.daemonCgroup)+cgroupCPU(c.cpuacct, c.cgroupParent), procCPU(c.daemonPid)
	perPod := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	r.StartStackCPUms, r.StartContainerdCPUms = perPod(cpu1-cpu0), perPod(own1-own0)
	r.StartRuntimeCPUms = r.StartStackCPUms - r.StartContainerdCPUms
	defer removePods(rt, pods)
	for _, err := range errs {
		if err != nil {
			return r, err
		}
	}
	r.PodsPerSec = float64(n) / elapsed.Seconds()
	r.StartP50ms, r.StartP99ms = quantile(starts, 0.5), quantile(starts, 0.99)
	r.CreateP50ms = quantile(creates, 0.5)
	time.Sleep(2 * time.Second) // settle: the shims trim after their first calls
	shims := shimPids(c.socket)
	r.Shims = len(shims)
	r.IdlePSSMB = sumPSS(shims) / float64(n)
	if err := probe(rt, c, pods, &r); err != nil {
		return r, err
	}
	return r, nil
}

// probe execs true in every pod's container once a second for c.probeFor, and measures the
// CPU the stack spends on it.
func probe(rt runtimeapi.RuntimeServiceClient, c config, pods []pod, r *result) error {
	ctx := context.Background()
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	var firstErr atomic.Value
	shims := shimPids(c.socket)
	cpu0, own0 := cgroupCPU(c.cpuacct, c.daemonCgroup)+cgroupCPU(c.cpuacct, c.cgroupParent), procCPU(c.daemonPid)
	pods0, shim0 := cgroupCPU(c.cpuacct, c.cgroupParent), procsCPU(shims)
	deadline := time.Now().Add(c.probeFor)
	var wg sync.WaitGroup
	var pssMid float64
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread over the second, as a kubelet's probe workers are.
			time.Sleep(time.Duration(i) * time.Second / time.Duration(len(pods)))
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for time.Now().Before(deadline) {
				t := time.Now()
				resp, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: p.container, Cmd: []string{"true"}, Timeout: 10})
				d := time.Since(t)
				if err != nil || resp.ExitCode != 0 {
					failed.Add(1)
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
					}
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				<-tick.C
			}
		}()
	}
	time.AfterFunc(c.probeFor/2, func() {
		pss := sumPSS(shimPids(c.socket))
		mu.Lock()
		pssMid = pss
		mu.Unlock()
	})
	wg.Wait()
	cpu1, own1 := cgroupCPU(c.cpuacct, c.daemonCgroup)+cgroupCPU(c.cpuacct, c.cgroupParent), procCPU(c.daemonPid)
	pods1, shim1 := cgroupCPU(c.cpuacct, c.cgroupParent), procsCPU(shims)
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d of %d probes failed (first: %v)", f, len(lat), firstErr.Load())
	}
	r.Probes = len(lat)
	r.ProbeP50ms, r.ProbeP99ms = quantile(lat, 0.5), quantile(lat, 0.99)
	perProbe := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(len(lat)) }
	r.StackCPUms = perProbe(cpu1 - cpu0)
	r.ContainerdCPUms = perProbe(own1 - own0)
	r.RuntimeCPUms = r.StackCPUms - r.ContainerdCPUms
	r.ShimCPUms = perProbe(shim1 - shim0)
	r.ContainerCPUms = perProbe(pods1 - pods0)
	mu.Lock()
	r.LoadPSSMB = pssMid / float64(len(pods))
	mu.Unlock()
	for _, pid := range shimPids(c.socket) {
		r.MaxRSSExecMB = max(r.MaxRSSExecMB, rssMB(pid))
	}
	return nil
}

func removePods(rt runtimeapi.RuntimeServiceClient, pods []pod) {
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	for _, p := range pods {
		if p.id == "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id})
			rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id})
		}()
	}
	wg.Wait()
}

// maskedStarts starts, in one pod, a container for each masked count: the count's directories
// of c.maskDir, mounted at /m, are masked. It checks that the container sees each as an empty
// directory it cannot write to.
func maskedStarts(rt runtimeapi.RuntimeServiceClient, c config, h string, round int) ([]maskedResult, error) {
	ctx := context.Background()
	p := pod{cfg: podConfig(c, h, 1000+round)}
	rp, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: p.cfg, RuntimeHandler: h})
	if err != nil {
		return nil, fmt.Errorf("RunPodSandbox: %w", err)
	}
	p.id = rp.PodSandboxId
	defer removePods(rt, []pod{p})
	var out []maskedResult
	for k := range c.masked {
		// Rotated each round: no count is always the pod's first container.
		n := c.masked[(k+round)%len(c.masked)]
		var paths []string
		for i := 0; i < n; i++ {
			paths = append(paths, fmt.Sprintf("/m/%d", i))
		}
		mounts := []*runtimeapi.Mount{{ContainerPath: "/m", HostPath: c.maskDir}}
		cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: containerConfig(c, fmt.Sprintf("m%d", n), paths, mounts), SandboxConfig: p.cfg})
		if err != nil {
			return nil, fmt.Errorf("CreateContainer with %d masked: %w", n, err)
		}
		// StartContainer is where the runtime creates and starts the container (containerd's
		// CreateContainer only records it).
		t := time.Now()
		if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
			return nil, fmt.Errorf("StartContainer with %d masked: %w", n, err)
		}
		out = append(out, maskedResult{Handler: h, Masked: n, P50ms: float64(time.Since(t)) / float64(time.Millisecond)})
		last := paths[n-1]
		resp, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cc.ContainerId, Timeout: 10,
			Cmd: []string{"sh", "-c", "ls -A " + last + "; touch " + last + "/x 2>/dev/null && echo writable; echo done"}})
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", last, err)
		}
		if got := strings.TrimSpace(string(resp.Stdout)); got != "done" {
			return nil, fmt.Errorf("%s with %d masked: want an empty read-only directory, got %q", last, n, got)
		}
		rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cc.ContainerId})
		rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cc.ContainerId})
	}
	return out, nil
}

func medianMasked(all []maskedResult) []maskedResult {
	type key struct {
		h string
		n int
	}
	by := map[key][]time.Duration{}
	var keys []key
	for _, m := range all {
		k := key{m.Handler, m.Masked}
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], time.Duration(m.P50ms*float64(time.Millisecond)))
	}
	var out []maskedResult
	for _, k := range keys {
		out = append(out, maskedResult{Handler: k.h, Masked: k.n, P50ms: quantile(by[k], 0.5)})
	}
	return out
}

func quantile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// cgroupCPU is a cgroup's CPU time so far (cpuacct.usage), 0 if it has none.
func cgroupCPU(hierarchy, cg string) time.Duration {
	if cg == "" {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(hierarchy, cg, "cpuacct.usage"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(n)
}

// procCPU is a process's own CPU time so far, its threads' included (utime + stime).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * time.Second / 100 // USER_HZ
}

// procsCPU is procCPU summed over pids.
func procsCPU(pids []int) time.Duration {
	var d time.Duration
	for _, pid := range pids {
		d += procCPU(pid)
	}
	return d
}

// shimPids lists the shims (any kind) serving the containerd at socket.
func shimPids(socket string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if strings.Contains(filepath.Base(args[0]), "containerd-shim") && strings.Contains(string(b), socket) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// sumPSS is the proportional set size of the processes, in MB.
func sumPSS(pids []int) float64 {
	var kb int64
	for _, pid := range pids {
		kb += statusField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
	}
	return float64(kb) / 1024
}

func rssMB(pid int) float64 {
	return float64(statusField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")) / 1024
}

func statusField(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}
