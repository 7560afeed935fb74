package integration

// husk as a Kubernetes RuntimeClass handler: containerd's CRI plugin (Debian's containerd 1.6
// and containerd 2.4) driven by crictl exactly as the kubelet drives it, with a `husk` handler
// (runtime type io.containerd.husk.v2) and containerd's `runc` handler beside it. Images are
// built here as OCI archives and imported with ctr: no registry.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/husk-runtime/husk/integration/ociimage"
	"github.com/husk-runtime/husk/integration/suites/critestimages"
)

// criContainerd is a private containerd with the CRI plugin on, and crictl pointed at it.
type criContainerd struct {
	*containerd
	crictl   string
	config   string // crictl's config file: the endpoints
	huskRoot string // the Root option given to the husk handler
	logs     string
}

func crictlBin(t *testing.T) string {
	if p := os.Getenv("HUSK_CRICTL"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("crictl"); err == nil {
		return p
	}
	t.Skip("crictl is not installed (make test-deps builds crictl 1.37 into build/bin)")
	return ""
}

// startCRI starts containerd (1.6 from Debian when bin is "", else containerd 2.x from bin) with
// the CRI plugin, a husk and a runc handler, the bridge CNI config, and imports the test images.
// criCgroupParent is the cgroup_parent of the CRI tests' pods: this test process's own, so the
// leak check of a suite run beside it never counts it.
var criCgroupParent = fmt.Sprintf("husk-cri-test-%d", os.Getpid())

func startCRI(t *testing.T, bin string) *criContainerd {
	t.Helper()
	return startCRIWith(t, criOpts{bin: bin})
}

// criOpts is what startCRIWith adds to startCRI.
type criOpts struct {
	bin string // containerd 2.x's bin directory; "" for Debian's containerd 1.6
	// registry (host:port): containerd pulls every image from it (as the mirror of
	// registry.k8s.io, k8s.gcr.io and gcr.io) and nothing is imported.
	registry string
	// defaultRuntime is the handler of pods that name none (containerd 2.x; runc when "").
	defaultRuntime string
	// crun adds a handler "crun" (containerd 2.x): the runc shim driving this crun binary.
	// crun 1.8 refuses hybrid cgroups: containerd then runs with cgroup2's controllers hidden.
	crun string
}

// startCRIWith is startCRI with more options.
func startCRIWith(t *testing.T, o criOpts) *criContainerd {
	t.Helper()
	bin, registry := o.bin, o.registry
	crictl := crictlBin(t)
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("containernetworking-plugins is not installed (make test-deps installs it)")
	}
	needBusybox(t)
	// The pods' cgroup_parent: removed in every hierarchy once containerd and its pods are gone
	// (registered first, so it runs last).
	t.Cleanup(func() { removeCgroupEverywhere(criCgroupParent) })
	dir, err := os.MkdirTemp("/tmp", "cri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	netd := filepath.Join(dir, "net.d")
	os.MkdirAll(netd, 0o755)
	bridge := fmt.Sprintf("hkbr%d", os.Getpid()%10000)
	os.WriteFile(filepath.Join(netd, "10-husk.conflist"), []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"husk-test","plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.254.%d.0/24"}]]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}`, bridge, filepath.Join(dir, "ipam"), os.Getpid()%200)), 0o644)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	huskRoot := filepath.Join(dir, "husk-root")
	sandboxImage, registryConfig := "husk.test/pause:1", ""
	if registry != "" {
		sandboxImage, registryConfig = critestimages.SandboxImage, mirrorConfig(t, dir, registry)
	}
	var extra string
	v3 := bin != ""
	if !v3 {
		// containerd 1.6 decodes a non-runc handler's options table into its generic options
		// type and keeps only ConfigPath (and TypeUrl) from it: the options go in that file.
		optsFile := filepath.Join(dir, "husk-options.toml")
		os.WriteFile(optsFile, []byte(fmt.Sprintf("Root = %q\n", huskRoot)), 0o644)
		cri := `plugins."io.containerd.grpc.v1.cri"`
		extra = fmt.Sprintf(`[%[1]s]
  sandbox_image = %[4]q
  restrict_oom_score_adj = true
  disable_apparmor = true
  [%[1]s.registry]
    config_path = %[5]q
  [%[1]s.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[2]q
  [%[1]s.containerd]
    snapshotter = "overlayfs"
    [%[1]s.containerd.runtimes.husk]
      runtime_type = "io.containerd.husk.v2"
      [%[1]s.containerd.runtimes.husk.options]
        ConfigPath = %[3]q
    [%[1]s.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`, cri, netd, optsFile, sandboxImage, registryConfig)
	} else {
		rt, img := `plugins."io.containerd.cri.v1.runtime"`, `plugins."io.containerd.cri.v1.images"`
		defaultRuntime := o.defaultRuntime
		if defaultRuntime == "" {
			defaultRuntime = "runc"
		}
		extra = fmt.Sprintf(`[plugins."io.containerd.snapshotter.v1.overlayfs"]
  slow_chown = true
[%[4]s]
  snapshotter = "overlayfs"
  [%[4]s.pinned_images]
    sandbox = %[5]q
  [%[4]s.registry]
    config_path = %[6]q
[%[1]s]
  restrict_oom_score_adj = true
  disable_apparmor = true
  [%[1]s.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = %[2]q
  [%[1]s.containerd]
    default_runtime_name = %[8]q
  [%[1]s.containerd.runtimes.husk]
    runtime_type = "io.containerd.husk.v2"
    [%[1]s.containerd.runtimes.husk.options]
      Root = %[3]q
  [%[1]s.containerd.runtimes.husk-plain]
    runtime_type = "io.containerd.husk.v2"
  [%[1]s.containerd.runtimes.husk-runc-options]
    runtime_type = "io.containerd.runc.v2"
    runtime_path = %[7]q
    [%[1]s.containerd.runtimes.husk-runc-options.options]
      Root = %[3]q
  [%[1]s.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
`, rt, netd, huskRoot, img, sandboxImage, registryConfig, shimBinary(t), defaultRuntime)
		if o.crun != "" {
			extra += fmt.Sprintf(`  [%[1]s.containerd.runtimes.crun]
    runtime_type = "io.containerd.runc.v2"
    [%[1]s.containerd.runtimes.crun.options]
      BinaryName = %[2]q
`, rt, o.crun)
		}
	}
	c := startContainerdWith(t, containerdOpts{bin: bin, path: shimDir(t), v3: v3, cri: true, extraConfig: extra, maskCgroup2: o.crun != ""})
	// As /run/containerd is: a user-namespaced pod's root must be able to pass through.
	os.Chmod(c.dir, 0o711)
	cc := &criContainerd{containerd: c, crictl: crictl, huskRoot: huskRoot, logs: filepath.Join(dir, "logs"), config: filepath.Join(dir, "crictl.yaml")}
	os.WriteFile(cc.config, []byte(fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", c.sock, c.sock)), 0o644)
	for _, img := range []struct{ name, entry string }{{"husk.test/busybox:1", "sh"}, {"husk.test/pause:1", "sleep"}} {
		if registry != "" {
			break
		}
		archive := buildImage(t, dir, img.name, img.entry)
		if out, code := c.ctr(t, "-n", "k8s.io", "images", "import", archive); code != 0 {
			t.Fatalf("import %s: %s", img.name, out)
		}
	}
	t.Cleanup(func() {
		// What the kubelet does when it goes: every pod stopped and removed.
		out, _ := cc.run("pods", "-q")
		for _, id := range strings.Fields(out) {
			cc.run("stopp", id)
			cc.run("rmp", "-f", id)
		}
	})
	return cc
}

// mirrorConfig writes containerd's registry hosts directory: registry.k8s.io, k8s.gcr.io and
// gcr.io are pulled from the registry at addr (plain HTTP on this host).
func mirrorConfig(t *testing.T, dir, addr string) string {
	certs := filepath.Join(dir, "certs.d")
	for _, host := range []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io"} {
		os.MkdirAll(filepath.Join(certs, host), 0o755)
		hosts := fmt.Sprintf("server = \"https://%s\"\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", host, addr)
		if err := os.WriteFile(filepath.Join(certs, host, "hosts.toml"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return certs
}

// restartCRI restarts containerd and waits for its CRI plugin, which answers "server is not
// initialized yet" for a while after containerd's own API is up (as the kubelet waits for it).
func (c *criContainerd) restartCRI(t *testing.T) {
	t.Helper()
	c.restart(t)
	var out string
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, err = c.run("version"); err == nil {
			return
		}
	}
	t.Fatalf("containerd's CRI plugin did not come up after a restart: %v\n%s", err, out)
}

// run runs crictl against this containerd and returns its combined output.
func (c *criContainerd) run(args ...string) (string, error) {
	out, err := c.output(exec.Command(c.crictl, append([]string{"--config", c.config}, args...)...))
	return string(out), err
}

// crictlDeadline bounds one crictl command, streams included: one that hangs fails its test
// with the husk shims' goroutine stacks instead of stalling the suite until go test's timeout.
// HUSK_CRICTL_DEADLINE (a Go duration) shortens it, to see what a hang reports.
var crictlDeadline = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("HUSK_CRICTL_DEADLINE")); err == nil && d > 0 {
		return d
	}
	return 3 * time.Minute
}()

// output runs cmd (crictl, or a script(1) running it) and returns its combined output. Past
// crictlDeadline it is killed and the output ends with the stacks of this containerd's husk
// shims.
func (c *criContainerd) output(cmd *exec.Cmd) ([]byte, error) {
	var buf lockedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.WaitDelay = 5 * time.Second // script(1)'s child may hold the output pipe
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return []byte(buf.String()), err
	case <-time.After(crictlDeadline):
	}
	summary, stacks := c.shimStacks()
	// Also printed as is: a test's message may quote the output on one line.
	fmt.Fprintf(os.Stderr, "    cri_test.go:0: HUNG %q for %v; the husk shims' goroutines:\n%s", strings.Join(cmd.Args, " "), crictlDeadline, summary)
	if ps, err := exec.Command("ps", "-eo", "pid,ppid,stat,wchan:24,args").Output(); err == nil {
		fmt.Fprintf(os.Stderr, "processes at the hang:\n%s", ps)
	}
	fmt.Fprintf(os.Stderr, "the hung command's and the shims' process trees (kernel stack, fds):\n%s",
		processTrees(append([]int{cmd.Process.Pid}, c.shimPids()...), 40))
	cmd.Process.Kill()
	<-done
	return []byte(buf.String() + stacks), fmt.Errorf("%q hung for %v and was killed", strings.Join(cmd.Args, " "), crictlDeadline)
}

// procPids lists the pids in /proc.
func procPids() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processTrees describes the processes under roots (themselves included, at most max): each
// one's command, kernel stack and open fds, which say what a hung stream waits for (a fifo
// writer left open, a pipe nobody reads).
func processTrees(roots []int, max int) string {
	children := map[int][]int{}
	for _, pid := range procPids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out strings.Builder
	seen := map[int]bool{}
	queue := append([]int(nil), roots...)
	for len(queue) > 0 && len(seen) < max {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		queue = append(queue, children[pid]...)
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		stack, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stack", pid))
		fmt.Fprintf(&out, "  pid %d: %s\n", pid, strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
		for _, l := range strings.Split(strings.TrimSpace(string(stack)), "\n") {
			if l != "" {
				fmt.Fprintf(&out, "    %s\n", l)
			}
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		var links []string
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil {
				links = append(links, fd.Name()+"->"+l)
			}
		}
		fmt.Fprintf(&out, "    fds: %s\n", strings.Join(links, " "))
	}
	return out.String()
}

// shimStacks has every husk shim of this containerd dump its goroutines (SIGUSR1) into the shim
// log, which containerd copies into its own, and returns a summary and those dumps.
func (c *criContainerd) shimStacks() (summary, dumps string) {
	logPath := filepath.Join(c.dir, "containerd.log")
	before := int64(0)
	if st, err := os.Stat(logPath); err == nil {
		before = st.Size()
	}
	pids := c.shimPids()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGUSR1)
	}
	// containerd dumps its own goroutines into its log on SIGUSR1 too: a hang may be its own
	// (or the runc shim's, whose requests it then waits on).
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGUSR1)
	}
	time.Sleep(time.Second)
	data, _ := os.ReadFile(logPath)
	if int64(len(data)) < before {
		before = 0
	}
	dump := string(data[before:])
	summary = fmt.Sprintf("%d husk shims; where their goroutines wait:\n%s", len(pids), stackSummary(dump))
	return summary, "\n" + summary + "their stacks from the containerd log:\n" + dump
}

// stackSummary is one line per goroutine of Go stack dumps: its header and its innermost husk
// frame, which is where a hang shows (CI shows only a few lines of a failure).
func stackSummary(dump string) string {
	var b strings.Builder
	for _, block := range strings.Split(dump, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		for len(lines) > 0 && !strings.HasPrefix(lines[0], "goroutine ") {
			lines = lines[1:]
		}
		if len(lines) == 0 {
			continue
		}
		frame := ""
		for _, l := range lines[1:] {
			if strings.Contains(l, "husk") && !strings.HasPrefix(l, "\t") && !strings.Contains(l, "allStacks") && !strings.Contains(l, "dumpStacks") {
				frame = l
				break
			}
		}
		if frame == "" && len(lines) > 1 {
			frame = lines[1]
		}
		fmt.Fprintf(&b, "  %s %s\n", lines[0], frame)
	}
	return b.String()
}

func (c *criContainerd) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(args...)
	if err != nil {
		t.Fatalf("crictl %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(out)
}

// writeJSON writes v to a file in dir and returns its path.
func writeJSON(t *testing.T, dir, name string, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type podOpts struct {
	name        string
	hostNetwork bool
	privileged  bool
}

// runPod runs a sandbox with the given handler and returns its id and config file.
func (c *criContainerd) runPod(t *testing.T, handler string, o podOpts) (string, string) {
	t.Helper()
	ns := map[string]any{}
	if o.hostNetwork {
		ns["network"] = 2 // NODE
	}
	pod := writeJSON(t, t.TempDir(), "pod.json", map[string]any{
		"metadata":      map[string]any{"name": o.name, "namespace": "default", "uid": o.name + "-uid", "attempt": 0},
		"log_directory": filepath.Join(c.logs, o.name),
		"linux":         map[string]any{"cgroup_parent": "/" + criCgroupParent, "security_context": map[string]any{"namespace_options": ns, "privileged": o.privileged}},
	})
	id := c.must(t, "runp", "--runtime", handler, pod)
	return id, pod
}

// startContainer creates and starts a container in a pod; extra is merged into its config.
func (c *criContainerd) startContainer(t *testing.T, pod, podCfg, name string, command []string, extra map[string]any) string {
	t.Helper()
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": "husk.test/busybox:1"},
		"command":  command,
		"log_path": name + ".log",
		"linux":    map[string]any{},
	}
	for k, v := range extra {
		cfg[k] = v
	}
	id := c.must(t, "create", pod, writeJSON(t, t.TempDir(), name+".json", cfg), podCfg)
	c.must(t, "start", id)
	return id
}

// containerState returns crictl inspect's status: state, exit code, reason.
func (c *criContainerd) containerState(t *testing.T, id string) (state string, exitCode int, reason string) {
	t.Helper()
	var v struct {
		Status struct {
			State    string `json:"state"`
			ExitCode int    `json:"exitCode"`
			Reason   string `json:"reason"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(c.must(t, "inspect", "-o", "json", id)), &v); err != nil {
		t.Fatal(err)
	}
	return v.Status.State, v.Status.ExitCode, v.Status.Reason
}

func (c *criContainerd) waitExited(t *testing.T, id string) (int, string) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if st, code, reason := c.containerState(t, id); st == "CONTAINER_EXITED" {
			return code, reason
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s did not exit", id)
	return 0, ""
}

// shimsOf counts the husk shims serving this containerd.
func (c *criContainerd) shimsOf(t *testing.T) int {
	return len(c.shimPids())
}

// shimPids lists the husk shims serving this containerd.
func (c *criContainerd) shimPids() []int {
	var pids []int
	for _, pid := range procPids() {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.HasSuffix(args[0], "containerd-shim-husk-v2") && strings.Contains(string(cmdline), c.sock) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestCRIContainerd16(t *testing.T) {
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd is not installed (make test-deps installs Debian's containerd)")
	}
	testCRI(t, "")
}

func TestCRIContainerd24(t *testing.T) {
	testCRI(t, containerd2Bin(t))
}

func testCRI(t *testing.T, bin string) {
	c := startCRI(t, bin)

	// A host-network pod with two containers, served by one husk shim.
	pod, podCfg := c.runPod(t, "husk", podOpts{name: "hostnet", hostNetwork: true})
	a := c.startContainer(t, pod, podCfg, "a", []string{"sh", "-c", "echo out-line; echo err-line >&2; trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done"}, nil)
	b := c.startContainer(t, pod, podCfg, "b", []string{"sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"}, nil)
	if n := c.shimsOf(t); n != 1 {
		t.Errorf("%d husk shims for one pod, want 1", n)
	}
	// The handler's options reached the shim: the husk handler's Root holds the containers
	// (per containerd namespace, as the runc shim does).
	if _, err := os.Stat(filepath.Join(c.huskRoot, "k8s.io", a)); err != nil {
		t.Errorf("the husk handler's Root option was not used: %v", err)
	}
	// ExecSync: exit codes, output, timeout (and nothing left running after it).
	if out := c.must(t, "exec", "-s", a, "sh", "-c", "echo exec-out"); out != "exec-out" {
		t.Errorf("exec -s: %q", out)
	}
	if out, err := c.run("exec", "-s", a, "sh", "-c", "exit 3"); err == nil || !strings.Contains(out, "exited with 3") {
		t.Errorf("exec -s exit 3: %v %q", err, out)
	}
	if out, err := c.run("exec", "-s", "--timeout", "1", a, "sh", "-c", "sleep 30; echo late-line"); err == nil || !strings.Contains(out, "timeout") || regexpMatch(`(?m)^late-line$`, out) {
		t.Errorf("exec -s --timeout 1: %v %q", err, out)
	}
	time.Sleep(200 * time.Millisecond)
	if out := c.must(t, "exec", "-s", a, "ps"); strings.Contains(out, "sleep 30") {
		t.Errorf("the timed-out exec still runs:\n%s", out)
	}
	// Logs in the CRI format, both streams.
	time.Sleep(200 * time.Millisecond)
	logs, _ := os.ReadFile(filepath.Join(c.logs, "hostnet", "a.log"))
	if !strings.Contains(string(logs), " stdout F out-line") || !strings.Contains(string(logs), " stderr F err-line") {
		t.Errorf("CRI log:\n%s", logs)
	}
	if out := c.must(t, "logs", a); !strings.Contains(out, "out-line") {
		t.Errorf("crictl logs: %q", out)
	}
	// Stats and resources.
	if out := c.must(t, "stats", "-o", "json", a); !strings.Contains(out, "workingSetBytes") {
		t.Errorf("stats: %s", out)
	}
	if out, err := c.run("update", "--memory", "67108864", a); err != nil {
		t.Errorf("update: %v %s", err, out)
	}
	t.Run("in-place resize", func(t *testing.T) { criResize(t, c, pod, podCfg) })
	// Stop with a grace period: TERM trapped exits 0; TERM ignored is killed, 137.
	c.must(t, "stop", "--timeout", "10", a)
	if code, _ := c.waitExited(t, a); code != 0 {
		t.Errorf("TERM trapped: exit %d", code)
	}
	c.must(t, "stop", "--timeout", "1", b)
	if code, _ := c.waitExited(t, b); code != 137 {
		t.Errorf("TERM ignored: exit %d, want 137", code)
	}

	// An OOM kill is reported as OOMKilled.
	oom := c.startContainer(t, pod, podCfg, "oom", []string{"sh", "-c", "x=a; while true; do x=$x$x$x$x; done"},
		map[string]any{"linux": map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 16 << 20}}})
	if code, reason := c.waitExited(t, oom); reason != "OOMKilled" {
		t.Errorf("OOM: exit %d reason %q", code, reason)
	}

	// A restricted container: non-root, read-only rootfs, no capabilities, RuntimeDefault
	// seccomp, no_new_privs.
	restricted := c.startContainer(t, pod, podCfg, "restricted", []string{"sh", "-c", "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; touch /x 2>&1; sleep 1000"},
		map[string]any{"linux": map[string]any{"security_context": map[string]any{
			"run_as_user": map[string]any{"value": 1000}, "readonly_rootfs": true, "no_new_privs": true,
			"capabilities": map[string]any{"drop_capabilities": []string{"ALL"}},
			"seccomp":      map[string]any{"profile_type": 0}, // RuntimeDefault
		}}})
	time.Sleep(500 * time.Millisecond)
	if out := c.must(t, "logs", restricted); !strings.Contains(out, "1000") || !strings.Contains(out, "CapEff:\t0000000000000000") ||
		!strings.Contains(out, "NoNewPrivs:\t1") || !strings.Contains(out, "Seccomp:\t2") || !strings.Contains(out, "Read-only file system") {
		t.Errorf("restricted container:\n%s", out)
	}
	// A privileged one (in a privileged pod): every capability, writable /sys.
	priv, privCfg := c.runPod(t, "husk", podOpts{name: "priv", hostNetwork: true, privileged: true})
	pc := c.startContainer(t, priv, privCfg, "p", []string{"sleep", "1000"},
		map[string]any{"linux": map[string]any{"security_context": map[string]any{"privileged": true}}})
	if out := c.must(t, "exec", "-s", pc, "grep", "CapEff", "/proc/self/status"); !strings.Contains(out, "000001ff") {
		t.Errorf("privileged container: %q", out)
	}

	if bin != "" {
		// containerd 2.x: a recursively read-only volume (CRI recursive_read_only; containerd
		// asks the runtime's features for "rro") and a user-namespaced pod.
		criRecursiveReadOnly(t, c, pod, podCfg)
		t.Run("user-namespaced pod", func(t *testing.T) { criUserNamespacedPod(t, c) })
	}

	// containerd restarted while the pod runs: the containers stay, and stay manageable.
	c.restartCRI(t)
	if out := c.must(t, "exec", "-s", restricted, "echo", "after-restart"); !strings.Contains(out, "after-restart") {
		t.Errorf("exec after a containerd restart: %q", out)
	}

	// A pod on the CNI bridge gets an address in its own network namespace.
	bpod, bpodCfg := c.runPod(t, "husk", podOpts{name: "bridged"})
	bc := c.startContainer(t, bpod, bpodCfg, "net", []string{"sleep", "1000"}, nil)
	if out := c.must(t, "exec", "-s", bc, "ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, "10.254.") {
		t.Errorf("bridge pod address: %q", out)
	}

	t.Run("streaming", func(t *testing.T) { criStreaming(t, c, bpod, bpodCfg) })

	// The runc handler beside it, for comparison: same image, same pod shape.
	rpod, rpodCfg := c.runPod(t, "runc", podOpts{name: "runcpod", hostNetwork: true})
	rc := c.startContainer(t, rpod, rpodCfg, "r", []string{"sleep", "1000"}, nil)
	if out := c.must(t, "exec", "-s", rc, "echo", "runc-ok"); !strings.Contains(out, "runc-ok") {
		t.Errorf("runc handler: %q", out)
	}

	// Teardown leaves no husk shim, no state, no cgroup of the pods.
	for _, p := range []string{pod, priv, bpod, rpod} {
		c.must(t, "stopp", p)
		c.must(t, "rmp", p)
	}
	for i := 0; i < 100 && c.shimsOf(t) > 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if n := c.shimsOf(t); n != 0 {
		t.Errorf("%d husk shims left after the pods were removed", n)
	}
	// (@seccomp is husk's cache of compiled profiles, kept by profile, not by container.)
	if entries, _ := os.ReadDir(filepath.Join(c.huskRoot, "k8s.io")); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			if e.Name() != "@seccomp" {
				names = append(names, e.Name())
			}
		}
		if len(names) > 0 {
			t.Errorf("husk state left: %v", names)
		}
	}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.Contains(p, pod) {
			t.Errorf("cgroup left: %s", p)
			return filepath.SkipDir
		}
		return nil
	})
}

func buildImage(t *testing.T, dir, name, entry string) string {
	t.Helper()
	path, err := ociimage.Write(dir, name, entry, busyboxBin)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// criResize: an in-place pod resize (GA in Kubernetes 1.35) is the kubelet's
// UpdateContainerResources on the running container: memory and cpu lowered, then raised,
// land in the container's cgroup.
func criResize(t *testing.T, c *criContainerd, pod, podCfg string) {
	id := c.startContainer(t, pod, podCfg, "resize", []string{"sleep", "1000"}, map[string]any{"linux": map[string]any{
		"resources": map[string]any{"memory_limit_in_bytes": 128 << 20, "cpu_quota": 50000, "cpu_period": 100000}}})
	defer func() { c.run("stop", "--timeout", "0", id); c.run("rm", id) }()
	var info struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(c.must(t, "inspect", "-o", "json", id)), &info); err != nil || info.Info.Pid == 0 {
		t.Fatalf("crictl inspect: no pid (%v)", err)
	}
	for _, step := range []struct {
		memory, quota int64
	}{{64 << 20, 25000}, {256 << 20, 150000}} {
		c.must(t, "update", "--memory", fmt.Sprint(step.memory), "--cpu-quota", fmt.Sprint(step.quota), "--cpu-period", "100000", id)
		if got := cgroupFile(t, info.Info.Pid, "memory", "memory.limit_in_bytes"); got != fmt.Sprint(step.memory) {
			t.Errorf("after resizing to %d bytes: memory.limit_in_bytes %s", step.memory, got)
		}
		if got := cgroupFile(t, info.Info.Pid, "cpu", "cpu.cfs_quota_us"); got != fmt.Sprint(step.quota) {
			t.Errorf("after resizing to a quota of %d: cpu.cfs_quota_us %s", step.quota, got)
		}
	}
}

// criRecursiveReadOnly mounts a host directory that has a mount below it as a recursively
// read-only volume: neither level is writable in the container.
func criRecursiveReadOnly(t *testing.T, c *criContainerd, pod, podCfg string) {
	t.Helper()
	vol := t.TempDir()
	sub := filepath.Join(vol, "sub")
	os.Mkdir(sub, 0o755)
	if err := syscall.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(sub, syscall.MNT_DETACH)
	id := c.startContainer(t, pod, podCfg, "rro", []string{"sh", "-c", "touch /vol/a 2>&1; touch /vol/sub/b 2>&1; sleep 1000"},
		map[string]any{"mounts": []any{map[string]any{"container_path": "/vol", "host_path": vol, "readonly": true, "recursive_read_only": true}}})
	time.Sleep(300 * time.Millisecond)
	if out := c.must(t, "logs", id); strings.Count(out, "Read-only file system") != 2 {
		t.Errorf("recursive_read_only volume:\n%s", out)
	}
	c.must(t, "stop", "--timeout", "0", id)
}

// criUserNamespacedPod runs a pod with hostUsers: false (a user namespace of its own, ids
// 0-65535 mapped to 200000-265535): the container sees the mapping, files it writes to its
// rootfs belong to the mapped owner on the host, and a volume keeps its host owner (containerd
// gives it as an idmapped mount).
func criUserNamespacedPod(t *testing.T, c *criContainerd) {
	t.Helper()
	// On the way: the shim mounts the idmapped overlay rootfs (uidmap=/gidmap= lowerdirs) and
	// applies IoUid/IoGid; the container joins the pod's user namespace (namespaces joined in
	// two passes, its new ones unshared inside it, root there, bind sources cloned by husk and
	// idmapped with the kubelet's mappings, device nodes bound).

	vol := t.TempDir()
	os.WriteFile(filepath.Join(vol, "hostfile"), []byte("x"), 0o644)
	os.Chmod(vol, 0o777)
	idmap := []any{map[string]any{"host_id": 200000, "container_id": 0, "length": 65536}}
	pod := writeJSON(t, t.TempDir(), "pod.json", map[string]any{
		"metadata":      map[string]any{"name": "userns", "namespace": "default", "uid": "userns-uid"},
		"log_directory": filepath.Join(c.logs, "userns"),
		"linux": map[string]any{"cgroup_parent": "/" + criCgroupParent, "security_context": map[string]any{"namespace_options": map[string]any{
			"network": 2, "userns_options": map[string]any{"mode": 0, "uids": idmap, "gids": idmap}}}},
	})
	// containerd 2.4 writes a user-namespaced pod's IoUid/IoGid into runc's options type, and
	// fails on a handler whose options table made them the generic type: a handler without one.
	id := c.must(t, "runp", "--runtime", "husk-plain", pod)
	defer func() { c.run("stopp", id); c.run("rmp", id) }()
	ctr := c.startContainer(t, id, pod, "u", []string{"sh", "-c", "cat /proc/self/uid_map; stat -c %u /vol/hostfile; touch /vol/from-pod /made-in-rootfs && echo WROTE; sleep 1000"},
		// The kubelet gives a user-namespaced pod's volumes the pod's mappings (an idmapped mount).
		map[string]any{"mounts": []any{map[string]any{"container_path": "/vol", "host_path": vol, "uidMappings": idmap, "gidMappings": idmap}},
			// The kubelet repeats the pod's user namespace in each container's config.
			"linux": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{
				"network": 2, "userns_options": map[string]any{"mode": 0, "uids": idmap, "gids": idmap}}}}})
	time.Sleep(500 * time.Millisecond)
	out := c.must(t, "logs", ctr)
	if f := strings.Fields(out); len(f) < 5 || f[0] != "0" || f[1] != "200000" || f[2] != "65536" || f[3] != "0" || !strings.Contains(out, "WROTE") {
		t.Errorf("user-namespaced pod:\n%s", out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(vol, "from-pod"), &st); err != nil || st.Uid != 0 {
		t.Errorf("a file the pod wrote to its volume: owner %d (%v), want the volume's host owner 0", st.Uid, err)
	}
	// A file its root wrote to the rootfs belongs to the mapped owner on the host.
	var info struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	json.Unmarshal([]byte(c.must(t, "inspect", "-o", "json", ctr)), &info)
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/root/made-in-rootfs", info.Info.Pid), &st); err != nil || st.Uid != 200000 || st.Gid != 200000 {
		t.Errorf("a file the pod's root wrote to its rootfs: owner %d:%d (%v), want 200000:200000 on the host", st.Uid, st.Gid, err)
	}
}

// criStreaming drives what goes through containerd's streaming server: exec (plain, with stdin,
// and with a terminal), attach, and port-forward into a pod on the bridge.
func criStreaming(t *testing.T, c *criContainerd, pod, podCfg string) {
	// Pod and container stats.
	if out := c.must(t, "statsp", "-o", "json", pod); !strings.Contains(out, "workingSetBytes") {
		t.Errorf("statsp: %s", out)
	}
	id := c.startContainer(t, pod, podCfg, "stream", []string{"sh", "-c", "mkdir /www && echo port-forwarded > /www/index.html && exec httpd -f -p 8080 -h /www"}, nil)

	// exec (streamed): output and the exit code.
	// (crictl itself exits 1 and names the code, as kubectl does.)
	out, err := c.run("exec", id, "sh", "-c", "echo streamed-out; echo streamed-err >&2; exit 4")
	if !strings.Contains(out, "streamed-out") || !strings.Contains(out, "streamed-err") || err == nil || !strings.Contains(out, "command terminated with exit code 4") {
		t.Errorf("exec: %v %q, want exit code 4 and both streams", err, out)
	}
	// exec -i: stdin reaches the process, and its end ends it.
	cmd := exec.Command(c.crictl, "--config", c.config, "exec", "-i", id, "sh", "-c", "tr a-z A-Z")
	cmd.Stdin = strings.NewReader("from stdin\n")
	if b, err := c.output(cmd); err != nil || !strings.Contains(string(b), "FROM STDIN") {
		t.Errorf("exec -i: %v %q", err, b)
	}
	// exec -it: a terminal, its size and the process's exit code, through script(1)'s terminal.
	// (CRI sends the size on its resize stream once the process has started, for runc too:
	// the process reads it a moment later.)
	cmd = exec.Command("script", "-qec", "stty cols 91 rows 27; "+c.crictl+" --config "+c.config+" exec -it "+id+" sh -c 'tty; sleep 1; stty size; exit 6'", "/dev/null")
	b, err := c.output(cmd)
	if !strings.Contains(string(b), "/dev/pts/") || !strings.Contains(string(b), "27 91") || !strings.Contains(string(b), "command terminated with exit code 6") {
		t.Errorf("exec -it: %v %q, want a /dev/pts terminal of 27x91 and exit code 6", err, b)
	}

	// attach: a container reading its stdin (stdin_once: its end when the attach goes).
	att := c.startContainer(t, pod, podCfg, "attached", []string{"sh", "-c", "while read l; do echo got:$l; done; echo stdin-closed"},
		map[string]any{"stdin": true, "stdin_once": true})
	cmd = exec.Command(c.crictl, "--config", c.config, "attach", "-i", att)
	cmd.Stdin = strings.NewReader("hello\n")
	b, err = c.output(cmd)
	if !strings.Contains(string(b), "got:hello") {
		t.Errorf("attach -i: %v %q", err, b)
	}
	if code, _ := c.waitExited(t, att); code != 0 {
		t.Errorf("the attached container: exit %d after its stdin closed", code)
	}

	// port-forward to the container's port 8080 inside the pod's network namespace.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pf := exec.Command(c.crictl, "--config", c.config, "port-forward", pod, fmt.Sprintf("%d:8080", port))
	var pfOut bytes.Buffer
	pf.Stdout, pf.Stderr = &pfOut, &pfOut
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { pf.Process.Kill(); pf.Wait() }()
	var body []byte
	client := &http.Client{Timeout: 10 * time.Second} // a forward that never answers fails, not hangs
	for i := 0; i < 100; i++ {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(body), "port-forwarded") {
		t.Errorf("port-forward: got %q; crictl said %q", body, pfOut.String())
	}
	c.must(t, "stop", "--timeout", "0", id)
}
