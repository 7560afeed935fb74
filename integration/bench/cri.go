package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/husk-runtime/husk/integration/ociimage"
)

// criEnv is a private containerd with its CRI plugin, a `husk` handler (io.containerd.husk.v2)
// and a `runc` handler (io.containerd.runc.v2), and crictl pointed at it.
type criEnv struct {
	dir, sock, config string
	ctd               *exec.Cmd
}

// benchCRI compares the husk and runc handlers through containerd's CRI, driven by crictl as
// the kubelet drives it: pod start (RunPodSandbox + CreateContainer + StartContainer, one
// `crictl run`) on the host network and on a CNI bridge, and ExecSync of `true`. It runs under
// Debian's containerd 1.6 and, when built, containerd 2.4. The crictl row is the client's own
// cost, the same for both columns, to read the others against.
func benchCRI(dir string) []result {
	crictl, _ := filepath.Abs(*crictlPath)
	if _, err := os.Stat(crictl); err != nil {
		fmt.Fprintln(os.Stderr, "bench: crictl not built (make test-deps); skipping the CRI part")
		return nil
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: containernetworking-plugins not installed; skipping the CRI part")
		return nil
	}
	versions := []struct{ label, bin string }{{"1.6", ""}}
	if c2, _ := filepath.Abs(*containerd2); fileExists(filepath.Join(c2, "containerd")) {
		versions = append(versions, struct{ label, bin string }{"2.4", c2})
	}
	var samples []sample
	for _, v := range versions {
		samples = append(samples, benchCRIOn(dir, crictl, v.label, v.bin)...)
	}
	return summarize(samples, []string{"husk", "runc"})
}

func benchCRIOn(dir, crictl, label, bin string) []sample {
	e := startCRIContainerd(dir, label, bin)
	defer e.stop()
	cri := func(args ...string) (string, error) {
		out, err := exec.Command(crictl, append([]string{"--config", e.config}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("crictl %v: %w: %s", args, err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	writeJSON := func(name string, v any) string {
		b, _ := json.Marshal(v)
		p := filepath.Join(e.dir, name)
		check(os.WriteFile(p, b, 0o644))
		return p
	}
	pod := func(name string, hostNet bool) string {
		ns := map[string]any{}
		if hostNet {
			ns["network"] = 2 // NODE
		}
		return writeJSON(name+"-pod.json", map[string]any{
			"metadata":      map[string]any{"name": name, "namespace": "bench", "uid": name},
			"log_directory": filepath.Join(e.dir, "logs", name),
			"linux":         map[string]any{"cgroup_parent": "/husk-bench-cri", "security_context": map[string]any{"namespace_options": ns}},
		})
	}
	ctrCfg := writeJSON("ctr.json", map[string]any{
		"metadata": map[string]any{"name": "c"}, "image": map[string]any{"image": "husk.test/busybox:1"},
		"command": []string{"sleep", "100000"}, "log_path": "c.log", "linux": map[string]any{},
	})
	removePod := func(name string) {
		id, _ := cri("pods", "-q", "--name", "^"+name+"$")
		for _, p := range strings.Fields(id) {
			cri("stopp", p)
			cri("rmp", "-f", p)
		}
	}
	var samples []sample
	add := func(op, who string, d time.Duration) {
		samples = append(samples, sample{op + " [containerd " + label + "]", who, ms(d)})
	}
	order := []string{"husk", "runc"}
	for r := 0; r < *rounds; r++ {
		for _, k := range rotate(order, r) {
			for _, hostNet := range []bool{true, false} {
				name, op := fmt.Sprintf("%s-%d-host", k, r), "CRI pod start, host network"
				if !hostNet {
					name, op = fmt.Sprintf("%s-%d-bridge", k, r), "CRI pod start, bridge"
				}
				p := pod(name, hostNet)
				t0 := time.Now()
				_, err := cri("run", "--no-pull", "--runtime", k, ctrCfg, p)
				check(err)
				add(op, k, time.Since(t0))
				removePod(name)
			}
			t0 := time.Now()
			_, err := cri("version")
			check(err)
			add("crictl version (client cost)", k, time.Since(t0))
		}
	}
	// ExecSync into one long-running container per handler.
	ids := map[string]string{}
	for _, k := range order {
		id, err := cri("run", "--no-pull", "--runtime", k, ctrCfg, pod(k+"-exec", true))
		check(err)
		ids[k] = id
	}
	for r := 0; r < *rounds; r++ {
		for _, k := range rotate(order, r) {
			t0 := time.Now()
			_, err := cri("exec", "-s", ids[k], "true")
			check(err)
			add("CRI ExecSync true", k, time.Since(t0))
		}
	}
	for _, k := range order {
		removePod(k + "-exec")
	}
	return samples
}

func startCRIContainerd(dir, label, bin string) *criEnv {
	d, err := os.MkdirTemp("/tmp", "bcri")
	check(err)
	e := &criEnv{dir: d, sock: filepath.Join(d, "c.sock"), config: filepath.Join(d, "crictl.yaml")}
	netd := filepath.Join(d, "net.d")
	check(os.MkdirAll(netd, 0o755))
	bridge := fmt.Sprintf("hkb%d", os.Getpid()%10000)
	check(os.WriteFile(filepath.Join(netd, "10-bench.conflist"), []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"husk-bench","plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"10.253.%d.0/24"}]]}}]}`,
		bridge, filepath.Join(d, "ipam"), os.Getpid()%200)), 0o644))
	var cfg string
	daemon, ctr := "containerd", "ctr"
	if bin == "" {
		cri := `plugins."io.containerd.grpc.v1.cri"`
		cfg = fmt.Sprintf(`version = 2
root = %[2]q
state = %[3]q
[grpc]
  address = %[4]q
[ttrpc]
  address = "%[4]s.ttrpc"
[%[1]s]
  sandbox_image = "husk.test/pause:1"
  disable_apparmor = true
  restrict_oom_score_adj = true
  [%[1]s.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[5]q
  [%[1]s.containerd]
    snapshotter = "overlayfs"
    [%[1]s.containerd.runtimes.husk]
      runtime_type = "io.containerd.husk.v2"
    [%[1]s.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`, cri, filepath.Join(d, "root"), filepath.Join(d, "state"), e.sock, netd)
	} else {
		daemon, ctr = filepath.Join(bin, "containerd"), filepath.Join(bin, "ctr")
		rt, img := `plugins."io.containerd.cri.v1.runtime"`, `plugins."io.containerd.cri.v1.images"`
		cfg = fmt.Sprintf(`version = 3
root = %[3]q
state = %[4]q
[grpc]
  address = %[5]q
[ttrpc]
  address = "%[5]s.ttrpc"
[%[2]s]
  snapshotter = "overlayfs"
  [%[2]s.pinned_images]
    sandbox = "husk.test/pause:1"
[%[1]s]
  disable_apparmor = true
  restrict_oom_score_adj = true
  [%[1]s.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = %[6]q
  [%[1]s.containerd.runtimes.husk]
    runtime_type = "io.containerd.husk.v2"
  [%[1]s.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
`, rt, img, filepath.Join(d, "root"), filepath.Join(d, "state"), e.sock, netd)
	}
	check(os.WriteFile(filepath.Join(d, "config.toml"), []byte(cfg), 0o600))
	check(os.WriteFile(e.config, []byte(fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", e.sock, e.sock)), 0o644))
	shimDir, _ := filepath.Abs(filepath.Dir(*shim))
	path := shimDir + ":" + os.Getenv("PATH")
	if bin != "" {
		// containerd 2.x with its own runc shim.
		path = shimDir + ":" + bin + ":" + os.Getenv("PATH")
	}
	log, err := os.Create(filepath.Join(d, "containerd.log"))
	check(err)
	e.ctd = exec.Command(daemon, "--config", filepath.Join(d, "config.toml"))
	e.ctd.Env = append(os.Environ(), "PATH="+path)
	e.ctd.Stdout, e.ctd.Stderr = log, log
	check(e.ctd.Start())
	ready := false
	for i := 0; i < 200 && !ready; i++ {
		ready = exec.Command(ctr, "--address", e.sock, "version").Run() == nil
		if !ready {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !ready {
		e.stop()
		check(fmt.Errorf("containerd %s did not start (log in %s)", label, log.Name()))
	}
	for _, img := range []struct{ name, entry string }{{"husk.test/busybox:1", "sh"}, {"husk.test/pause:1", "sleep"}} {
		archive, err := ociimage.Write(d, img.name, img.entry, *busybox)
		check(err)
		if out, err := exec.Command(ctr, "--address", e.sock, "-n", "k8s.io", "images", "import", archive).CombinedOutput(); err != nil {
			check(fmt.Errorf("importing %s: %w: %s", img.name, err, out))
		}
	}
	return e
}

// stop ends containerd and removes its state (the pods are gone by then: no shim is left).
func (e *criEnv) stop() {
	e.ctd.Process.Kill()
	e.ctd.Wait()
	exec.Command("umount", "-R", filepath.Join(e.dir, "state")).Run()
	exec.Command("sh", "-c", "grep -o ' "+e.dir+"/[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l").Run()
	exec.Command("ip", "link", "del", fmt.Sprintf("hkb%d", os.Getpid()%10000)).Run()
	os.RemoveAll(e.dir)
	// The pods' cgroup parent, empty once the pods are gone, in every hierarchy.
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range append(hierarchies, "/sys/fs/cgroup") {
		os.Remove(filepath.Join(h, "husk-bench-cri"))
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
