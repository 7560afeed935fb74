package integration

// husk under a real kubelet: a standalone kubelet (static pods, no API server) on containerd
// 2.4 whose default runtime is the husk shim, as a node operator runs one. The scenarios are
// what a node relies on: init containers, limits landing in the cgroup, exec probes, restarts
// with back-off, OOMKilled, logs and exec through the kubelet, and pod removal leaving nothing
// behind. make test-kubelet runs it (in a mount namespace of its own: integration/kubelet).

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kubeletNode is the node's name (kubelet's hostname override): static pods are named
// <manifest's name>-<node>.
const kubeletNode = "husk-node"

// kubeletCgroupRoot is the kubelet's cgroupRoot: kubepods and every pod's cgroup go below it.
const kubeletCgroupRoot = "husk-kubelet-test"

type kubelet struct {
	cri       *criContainerd
	dir       string // root-dir, manifests, logs
	manifests string
	port      int // the kubelet server (HTTPS, anonymous and allow-all on 127.0.0.1)
	log       string
	client    *http.Client
}

func TestKubelet(t *testing.T) {
	bin := os.Getenv("HUSK_KUBELET")
	if bin == "" {
		t.Skip("HUSK_KUBELET is not set (make test-kubelet builds kubelet v1.37.2 and runs it in a node's mount namespace)")
	}
	k := startKubelet(t, bin)

	// web: an init container fills a volume, the app reads it; limits; exec probes.
	k.apply(t, "web", map[string]any{
		"initContainers": []any{map[string]any{
			"name": "init", "image": "husk.test/busybox:1", "imagePullPolicy": "Never",
			"command":      []string{"sh", "-c", "echo written-by-init > /work/index"},
			"volumeMounts": []any{map[string]any{"name": "work", "mountPath": "/work"}},
		}},
		"containers": []any{map[string]any{
			"name": "app", "image": "husk.test/busybox:1", "imagePullPolicy": "Never",
			"command":      []string{"sh", "-c", "cat /work/index; touch /tmp/ready; exec sleep 100000"},
			"volumeMounts": []any{map[string]any{"name": "work", "mountPath": "/work"}},
			"resources": map[string]any{
				"limits":   map[string]any{"memory": "64Mi", "cpu": "250m"},
				"requests": map[string]any{"memory": "32Mi", "cpu": "100m"},
			},
			"readinessProbe": map[string]any{"exec": map[string]any{"command": []string{"cat", "/tmp/ready"}}, "periodSeconds": 1},
			"livenessProbe":  map[string]any{"exec": map[string]any{"command": []string{"true"}}, "periodSeconds": 1},
		}},
		"volumes": []any{map[string]any{"name": "work", "emptyDir": map[string]any{}}},
	})
	// probes: liveness fails once /tmp/alive is gone: the kubelet kills and restarts it.
	k.apply(t, "probes", map[string]any{
		"containers": []any{map[string]any{
			"name": "app", "image": "husk.test/busybox:1", "imagePullPolicy": "Never",
			"command": []string{"sh", "-c", "touch /tmp/alive; sleep 2; rm /tmp/alive; exec sleep 100000"},
			"livenessProbe": map[string]any{"exec": map[string]any{"command": []string{"cat", "/tmp/alive"}},
				"periodSeconds": 1, "failureThreshold": 2},
		}},
	})
	// crash: exits 3 at once; restartPolicy Always restarts it, with back-off.
	k.apply(t, "crash", map[string]any{
		"containers": []any{map[string]any{
			"name": "app", "image": "husk.test/busybox:1", "imagePullPolicy": "Never",
			"command": []string{"sh", "-c", "echo crashing; exit 3"},
		}},
	})
	// oom: outgrows its 32Mi limit.
	k.apply(t, "oom", map[string]any{
		"restartPolicy": "Never",
		"containers": []any{map[string]any{
			"name": "app", "image": "husk.test/busybox:1", "imagePullPolicy": "Never",
			"command":   []string{"sh", "-c", "x=a; while true; do x=$x$x$x$x; done"},
			"resources": map[string]any{"limits": map[string]any{"memory": "32Mi"}},
		}},
	})

	t.Run("init container and volume", func(t *testing.T) {
		app := k.waitContainer(t, "web", "app", 0, "CONTAINER_RUNNING")
		init := k.waitContainer(t, "web", "init", 0, "CONTAINER_EXITED")
		if init.exitCode != 0 {
			t.Errorf("init container: exit %d", init.exitCode)
		}
		if init.finishedAt > app.startedAt {
			t.Errorf("the app started (%d) before its init container finished (%d)", app.startedAt, init.finishedAt)
		}
		if logs := k.get(t, "/containerLogs/default/web-"+kubeletNode+"/app"); !strings.Contains(logs, "written-by-init") {
			t.Errorf("kubelet's containerLogs of the app: %q", logs)
		}
	})

	t.Run("limits in the cgroup", func(t *testing.T) {
		app := k.waitContainer(t, "web", "app", 0, "CONTAINER_RUNNING")
		for _, c := range []struct{ controller, file, want string }{
			{"memory", "memory.limit_in_bytes", "67108864"},
			{"cpu", "cpu.cfs_quota_us", "25000"},
			{"cpu", "cpu.shares", "102"},
		} {
			if got := cgroupFile(t, app.pid, c.controller, c.file); got != c.want {
				t.Errorf("%s: %s, want %s", c.file, got, c.want)
			}
		}
		// Below the kubelet's cgroup root, in the burstable QoS class's pod cgroup.
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", app.pid))
		if !regexp.MustCompile(`(?m):memory:/` + kubeletCgroupRoot + `/kubepods/burstable/pod[0-9a-f-]+/[0-9a-f]{64}$`).Match(cg) {
			t.Errorf("the app's cgroups:\n%s", cg)
		}
	})

	t.Run("exec through the kubelet", func(t *testing.T) {
		k.waitContainer(t, "web", "app", 0, "CONTAINER_RUNNING")
		out := k.post(t, "/run/default/web-"+kubeletNode+"/app", "cat /work/index /proc/self/cgroup")
		if !strings.Contains(out, "written-by-init") {
			t.Errorf("kubelet /run: %q", out)
		}
		// The named systemd hierarchy places it where every controller does, as runc does (not
		// at the hierarchy's root, where it would see every pod's cgroup).
		systemd := regexp.MustCompile(`(?m)^\d+:name=systemd:(.*)$`).FindStringSubmatch(out)
		memory := regexp.MustCompile(`(?m)^\d+:memory:(.*)$`).FindStringSubmatch(out)
		if systemd == nil || memory == nil || systemd[1] != memory[1] {
			t.Errorf("the container's name=systemd cgroup is not its memory cgroup:\n%s", out)
		}
	})

	t.Run("readiness and liveness probes", func(t *testing.T) {
		k.waitProbe(t, "web", "Readiness", "successful")
		k.waitProbe(t, "web", "Liveness", "successful")
		// The failing liveness probe restarts the container.
		k.waitContainer(t, "probes", "app", 1, "CONTAINER_RUNNING")
		k.waitProbe(t, "probes", "Liveness", "failed")
	})

	t.Run("restarts with back-off", func(t *testing.T) {
		// Restarted twice, each time exiting with its own code.
		if c := k.waitContainer(t, "crash", "app", 2, "CONTAINER_EXITED"); c.exitCode != 3 {
			t.Errorf("attempt %d: exit %d, want 3", c.attempt, c.exitCode)
		}
		if logs := k.get(t, "/containerLogs/default/crash-"+kubeletNode+"/app"); !strings.Contains(logs, "crashing") {
			t.Errorf("kubelet's containerLogs of the crashing app: %q", logs)
		}
	})

	t.Run("OOMKilled", func(t *testing.T) {
		c := k.waitContainer(t, "oom", "app", 0, "CONTAINER_EXITED")
		if c.reason != "OOMKilled" || c.exitCode != 137 {
			t.Errorf("the container that outgrew its limit: exit %d, reason %q; want 137, OOMKilled", c.exitCode, c.reason)
		}
		// containerd 2.4 asks the shim for a stopped container's stats as a second OOM check.
		if log, _ := os.ReadFile(filepath.Join(k.cri.dir, "containerd.log")); strings.Contains(string(log), "no metrics received") {
			t.Errorf("containerd could not read a stopped container's metrics:\n%s", grepLines(string(log), "no metrics received"))
		}
	})

	t.Run("pod removal leaves nothing behind", func(t *testing.T) {
		uids := map[string]string{}
		for _, pod := range []string{"web", "probes", "crash", "oom"} {
			uids[pod] = k.podUID(t, pod)
			os.Remove(filepath.Join(k.manifests, pod+".json"))
		}
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			if out, _ := k.cri.run("pods", "-q"); strings.TrimSpace(out) == "" && k.cri.shimsOf(t) == 0 {
				break
			}
			time.Sleep(time.Second)
		}
		if out, _ := k.cri.run("pods"); strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("pods left 3 minutes after their manifests went:\n%s", out)
		}
		if n := k.cri.shimsOf(t); n != 0 {
			t.Errorf("%d husk shims left", n)
		}
		if entries, _ := os.ReadDir(filepath.Join(k.cri.huskRoot, "k8s.io")); len(entries) > 0 {
			for _, e := range entries {
				if e.Name() != "@seccomp" {
					t.Errorf("husk state left: %s", e.Name())
				}
			}
		}
		for pod, uid := range uids {
			for _, h := range cgroupHierarchies() {
				matches, _ := filepath.Glob(filepath.Join(h, kubeletCgroupRoot, "kubepods", "*", "pod"+uid))
				matches2, _ := filepath.Glob(filepath.Join(h, kubeletCgroupRoot, "kubepods", "pod"+uid))
				for _, m := range append(matches, matches2...) {
					t.Errorf("pod %s: cgroup left: %s", pod, m)
				}
			}
		}
	})
}

// startKubelet starts containerd 2.4 (husk the default runtime) and a standalone kubelet on it.
func startKubelet(t *testing.T, bin string) *kubelet {
	t.Helper()
	cbin := containerd2Bin(t)
	// The cgroup root must exist in every hierarchy (kubelet checks); cpuset needs its cpus and
	// mems for anything below it to run. Removed last, once containerd and the pods are gone.
	t.Cleanup(func() { removeCgroupEverywhere(kubeletCgroupRoot) })
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, kubeletCgroupRoot)
		os.Mkdir(d, 0o755)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				os.WriteFile(filepath.Join(d, f), v, 0o644)
			}
		}
	}
	// HUSK_KUBELET_RUNTIME=runc runs the same scenarios on containerd's runc shim, for comparison.
	runtime := "husk"
	if r := os.Getenv("HUSK_KUBELET_RUNTIME"); r != "" {
		runtime = r
	}
	cri := startCRIWith(t, criOpts{bin: cbin, defaultRuntime: runtime})
	dir, err := os.MkdirTemp("/tmp", "kubelet")
	if err != nil {
		t.Fatal(err)
	}
	k := &kubelet{cri: cri, dir: dir, manifests: filepath.Join(dir, "manifests"), port: freePort(t), log: filepath.Join(dir, "kubelet.log"),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	os.MkdirAll(k.manifests, 0o755)
	cfg := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
		"staticPodPath": k.manifests, "fileCheckFrequency": "1s", "syncFrequency": "5s",
		"containerRuntimeEndpoint": "unix://" + cri.sock, "imageServiceEndpoint": "unix://" + cri.sock,
		"cgroupDriver": "cgroupfs", "cgroupRoot": "/" + kubeletCgroupRoot, "cgroupsPerQOS": true,
		"failCgroupV1": false, "failSwapOn": false,
		// The node's kernel settings are checked, never changed (node.sh shows the wanted values).
		"protectKernelDefaults": true,
		"podLogsDir":            filepath.Join(dir, "pod-logs"),
		"address":               "127.0.0.1", "port": k.port, "readOnlyPort": 0, "healthzPort": 0,
		"authentication": map[string]any{"anonymous": map[string]any{"enabled": true}, "webhook": map[string]any{"enabled": false}},
		"authorization":  map[string]any{"mode": "AlwaysAllow"},
		// A test machine's disk and memory are not the node's to defend: no evictions, no image GC.
		"evictionHard":                map[string]any{"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
		"imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
		"registerNode": false,
	}
	cfgPath := writeJSON(t, dir, "kubelet.json", cfg)
	logf, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath, "--root-dir", filepath.Join(dir, "root"), "--hostname-override", kubeletNode, "--v", "2")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// What a drained node does: pods go first (their manifests), then the kubelet.
		entries, _ := os.ReadDir(k.manifests)
		for _, e := range entries {
			os.Remove(filepath.Join(k.manifests, e.Name()))
		}
		for i := 0; i < 60 && len(entries) > 0; i++ {
			if out, _ := cri.run("ps", "-q"); strings.TrimSpace(out) == "" {
				break
			}
			time.Sleep(time.Second)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(k.log)
			t.Logf("kubelet log (errors, last 60):\n%s", tail(grepLines(string(data), "E1", "E0", "rror"), 60))
			keepFailureLog(t, "kubelet.log", data)
		}
		unmountUnder(dir)
		os.RemoveAll(dir)
	})
	// Up when its server answers.
	for i := 0; i < 300; i++ {
		select {
		case <-exited:
			data, _ := os.ReadFile(k.log)
			t.Fatalf("kubelet exited:\n%s", tail(string(data), 40))
		default:
		}
		if resp, err := k.client.Get(k.url("/healthz")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	data, _ := os.ReadFile(k.log)
	t.Fatalf("kubelet's server did not come up:\n%s", tail(string(data), 40))
	return nil
}

func (k *kubelet) url(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", k.port, path)
}

// apply writes a static pod's manifest: the kubelet runs it within a second.
func (k *kubelet) apply(t *testing.T, name string, spec map[string]any) {
	t.Helper()
	if _, ok := spec["restartPolicy"]; !ok {
		spec["restartPolicy"] = "Always"
	}
	spec["terminationGracePeriodSeconds"] = 2
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "default"}, "spec": spec}
	// Written beside and renamed in: the kubelet never reads half a manifest.
	tmp := writeJSON(t, k.dir, "."+name+".json", pod)
	if err := os.Rename(tmp, filepath.Join(k.manifests, name+".json")); err != nil {
		t.Fatal(err)
	}
}

func (k *kubelet) get(t *testing.T, path string) string {
	t.Helper()
	return k.request(t, http.MethodGet, k.url(path))
}

// post runs cmd (split at spaces, as the kubelet does) in a container through /run.
func (k *kubelet) post(t *testing.T, path, cmd string) string {
	t.Helper()
	return k.request(t, http.MethodPost, k.url(path)+"?cmd="+url.QueryEscape(cmd))
}

// request sends one request to the kubelet's server and returns the body of its 200 answer.
func (k *kubelet) request(t *testing.T, method, u string) string {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		t.Fatalf("kubelet %s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("kubelet %s %s: %s: %s", method, u, resp.Status, b)
	}
	return string(b)
}

// kubeletContainer is one attempt of a pod's container, as the runtime reports it.
type kubeletContainer struct {
	id                    string
	attempt               int
	state, reason         string
	exitCode, pid         int
	startedAt, finishedAt int64
}

// waitContainer waits (up to 2 minutes) for an attempt (the given one or a later one) of a
// static pod's container to be in state, and returns it. (The kubelet keeps one dead attempt
// of a container: the earlier ones are gone by the time a later one has exited.)
func (k *kubelet) waitContainer(t *testing.T, pod, name string, attempt int, state string) kubeletContainer {
	t.Helper()
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		out, err := k.cri.run("ps", "-a", "-q", "--label", "io.kubernetes.pod.name="+pod+"-"+kubeletNode, "--name", "^"+name+"$")
		if err != nil {
			last = out
			continue
		}
		for _, id := range strings.Fields(out) {
			c, err := k.inspect(id)
			if err != nil {
				last = err.Error()
				continue
			}
			last = fmt.Sprintf("attempt %d %s", c.attempt, c.state)
			if c.attempt >= attempt && c.state == state {
				return c
			}
		}
	}
	t.Fatalf("pod %s: no attempt >= %d of container %s reached %s (last seen: %s)", pod, attempt, name, state, last)
	return kubeletContainer{}
}

func (k *kubelet) inspect(id string) (kubeletContainer, error) {
	out, err := k.cri.run("inspect", "-o", "json", id)
	if err != nil {
		return kubeletContainer{}, fmt.Errorf("crictl inspect %s: %v: %s", id, err, out)
	}
	var v struct {
		Status struct {
			Metadata struct {
				Attempt int `json:"attempt"`
			} `json:"metadata"`
			State      string `json:"state"`
			ExitCode   int    `json:"exitCode"`
			Reason     string `json:"reason"`
			StartedAt  string `json:"startedAt"`
			FinishedAt string `json:"finishedAt"`
		} `json:"status"`
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return kubeletContainer{}, fmt.Errorf("crictl inspect %s: %v", id, err)
	}
	return kubeletContainer{id: id, attempt: v.Status.Metadata.Attempt, state: v.Status.State, reason: v.Status.Reason,
		exitCode: v.Status.ExitCode, pid: v.Info.Pid, startedAt: crictlTime(v.Status.StartedAt), finishedAt: crictlTime(v.Status.FinishedAt)}, nil
}

// crictlTime reads crictl's time (RFC 3339, or nanoseconds in older versions); 0 when unset.
func crictlTime(s string) int64 {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if tm, err := time.Parse(time.RFC3339Nano, s); err == nil && tm.Year() > 1970 {
		return tm.UnixNano()
	}
	return 0
}

// podUID is the static pod's uid, from its sandbox's labels.
func (k *kubelet) podUID(t *testing.T, pod string) string {
	t.Helper()
	out := k.cri.must(t, "pods", "-o", "json", "--label", "io.kubernetes.pod.name="+pod+"-"+kubeletNode)
	var v struct {
		Items []struct {
			Metadata struct {
				UID string `json:"uid"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Items) == 0 {
		t.Fatalf("pod %s: no sandbox (%v): %s", pod, err, out)
	}
	return v.Items[0].Metadata.UID
}

// waitProbe waits (up to a minute) for the kubelet's prober metrics to count a probe result
// of a static pod.
func (k *kubelet) waitProbe(t *testing.T, pod, probeType, result string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^prober_probe_total\{[^}]*pod="` + regexp.QuoteMeta(pod+"-"+kubeletNode) + `"[^}]*probe_type="` +
		probeType + `"[^}]*result="` + result + `"[^}]*\} ([1-9][0-9]*)`)
	var metrics string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if metrics = k.get(t, "/metrics/probes"); re.MatchString(metrics) {
			return
		}
	}
	t.Errorf("pod %s: no %s probe %s in the kubelet's prober metrics:\n%s", pod, probeType, result, grepLines(metrics, "prober_probe_total{"))
}

// freePort is a TCP port of 127.0.0.1 nobody listens on now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// grepLines returns the lines of s containing any of the words.
func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var points []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}
