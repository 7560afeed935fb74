package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchShims compares containerd-shim-husk-v2 (driving husk) with containerd-shim-runc-v2
// (driving runc) under one private containerd 1.6: `ctr run --rm`, `ctr task exec`, and the
// idle memory of the shims. In the table, the "runc" column is the runc shim with runc.
func benchShims(dir, bundle string) []result {
	if _, err := exec.LookPath("containerd"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: containerd not installed; skipping the shim part")
		return nil
	}
	shimDir, _ := filepath.Abs(filepath.Dir(*shim))
	cdir, err := os.MkdirTemp("/tmp", "bctd")
	check(err)
	defer os.RemoveAll(cdir)
	sock := filepath.Join(cdir, "c.sock")
	cfg := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n[ttrpc]\n  address = %q\n",
		filepath.Join(cdir, "root"), filepath.Join(cdir, "state"), sock, sock+".ttrpc")
	check(os.WriteFile(filepath.Join(cdir, "config.toml"), []byte(cfg), 0o600))
	ctd := exec.Command("containerd", "--config", filepath.Join(cdir, "config.toml"))
	ctd.Env = append(os.Environ(), "PATH="+shimDir+":"+os.Getenv("PATH"))
	check(ctd.Start())
	defer func() {
		ctd.Process.Kill()
		ctd.Wait()
		exec.Command("umount", "-R", filepath.Join(cdir, "state")).Run()
	}()
	ctr := func(args ...string) error {
		return exec.Command("ctr", append([]string{"--address", sock}, args...)...).Run()
	}
	for i := 0; i < 100 && ctr("version") != nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	kinds := map[string][]string{
		"husk": {"--runtime", "io.containerd.husk.v2"},
		"runc": {"--runtime", "io.containerd.runc.v2"},
	}
	var samples []sample
	order := []string{"husk", "runc"}
	for r := 0; r < *rounds; r++ {
		for _, k := range rotate(order, r) {
			args := append(append([]string{"run", "--rm"}, kinds[k]...), "--env", "PATH=/bin", "--rootfs", rootfs, fmt.Sprintf("%s-%d", k, r), "true")
			t0 := time.Now()
			check(ctr(args...))
			samples = append(samples, sample{"ctr run --rm (end to end)", k, ms(time.Since(t0))})
		}
	}
	// Shim start latency: the `start` action until it prints the address (it forks the daemon).
	for r := 0; r < *rounds; r++ {
		for _, k := range rotate(order, r) {
			bin := "containerd-shim-" + k + "-v2"
			if k == "husk" {
				bin = filepath.Join(shimDir, bin)
			}
			id := fmt.Sprintf("start-%s-%d", k, r)
			cmd := exec.Command(bin, "-namespace", "bench", "-address", sock, "-publish-binary", "/bin/true", "-id", id, "start")
			cmd.Dir = bundle
			cmd.Env = append(os.Environ(), "TTRPC_ADDRESS="+sock+".ttrpc")
			t0 := time.Now()
			out, err := cmd.Output()
			check(err)
			samples = append(samples, sample{"shim start action", k, ms(time.Since(t0))})
			killShim(id, strings.TrimPrefix(strings.TrimSpace(string(out)), "unix://"))
		}
	}
	for _, k := range order {
		check(ctr(append(append([]string{"run", "-d"}, kinds[k]...), "--env", "PATH=/bin", "--rootfs", rootfs, k+"-long", "sleep", "100000")...))
	}
	for r := 0; r < *rounds; r++ {
		for _, k := range rotate(order, r) {
			t0 := time.Now()
			check(ctr("task", "exec", "--exec-id", fmt.Sprintf("e%d", r), k+"-long", "true"))
			samples = append(samples, sample{"ctr task exec", k, ms(time.Since(t0))})
		}
	}
	// Idle means no request for a while: the husk shim trims itself after 3 s of quiet.
	time.Sleep(6 * time.Second)
	for _, k := range order {
		rss, pss := shimMemory(k, sock)
		samples = append(samples, sample{"idle shim VmRSS, 1 container (MB)", k, rss}, sample{"idle shim PSS, 1 container (MB)", k, pss})
	}
	// The kubelet's exec probes, one after another, then idle again: what a shim keeps of them
	// shows as growth over the row above.
	for _, k := range order {
		for i := 0; i < *probes; i++ {
			check(ctr("task", "exec", "--exec-id", fmt.Sprintf("probe%d", i), k+"-long", "true"))
		}
	}
	time.Sleep(6 * time.Second)
	for _, k := range order {
		rss, _ := shimMemory(k, sock)
		samples = append(samples, sample{fmt.Sprintf("idle shim VmRSS after %d exec probes (MB)", *probes), k, rss})
	}
	// 20 containers, one shim each.
	for _, k := range order {
		for i := 0; i < 19; i++ {
			check(ctr(append(append([]string{"run", "-d"}, kinds[k]...), "--env", "PATH=/bin", "--rootfs", rootfs, fmt.Sprintf("%s-many-%d", k, i), "sleep", "100000")...))
		}
	}
	time.Sleep(6 * time.Second)
	for _, k := range order {
		_, pss := shimMemory(k, sock)
		samples = append(samples, sample{"shim PSS each, 20 containers (MB)", k, pss})
	}
	// 20 containers in one pod group: one shim serves them all (both shims group by the
	// io.containerd.runc.v2.group annotation).
	for _, k := range order {
		for i := 0; i < 20; i++ {
			check(ctr(append(append([]string{"run", "-d", "--annotation", "io.containerd.runc.v2.group=pod-" + k}, kinds[k]...), "--env", "PATH=/bin", "--rootfs", rootfs, fmt.Sprintf("%s-pod-%d", k, i), "sleep", "100000")...))
		}
	}
	time.Sleep(6 * time.Second)
	for _, k := range order {
		pss := groupPSS(k, sock, "pod-"+k)
		samples = append(samples, sample{"shim PSS per container, 20 in one pod (MB)", k, pss / 20})
	}
	out, _ := exec.Command("ctr", "--address", sock, "task", "ls", "-q").Output()
	for _, id := range strings.Fields(string(out)) {
		ctr("task", "kill", "-s", "KILL", id)
	}
	time.Sleep(500 * time.Millisecond)
	for _, id := range strings.Fields(string(out)) {
		ctr("task", "delete", id)
		ctr("container", "delete", id)
	}
	res := summarize(samples, []string{"husk", "runc"})
	for i := range res {
		if strings.Contains(res[i].Op, "MB") {
			res[i].Unit = "MB"
		}
	}
	return res
}

// shimMemory averages VmRSS and PSS over the shims of a kind serving this containerd.
func shimMemory(kind, sock string) (rss, pss float64) {
	name := "containerd-shim-" + kind + "-v2"
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), name) || !strings.Contains(string(cmd), sock) {
			continue
		}
		rss += kb(filepath.Join("/proc", e.Name(), "status"), "VmRSS:")
		pss += kb(filepath.Join("/proc", e.Name(), "smaps_rollup"), "Pss:")
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return rss / float64(n) / 1024, pss / float64(n) / 1024
}

// killShim stops a shim daemon started by the bench's start action and removes its socket.
func killShim(id, socket string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmd), "\x00-id\x00"+id+"\x00") {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if socket != "" {
		os.Remove(socket)
	}
}

// groupPSS is the PSS of the shim serving a pod group: the shim whose bundle of the group's
// first container names it.
func groupPSS(kind, sock, group string) float64 {
	name := "containerd-shim-" + kind + "-v2"
	entries, _ := os.ReadDir("/proc")
	best := 0.0
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), name) || !strings.Contains(string(cmd), sock) || !strings.Contains(string(cmd), kind+"-pod-") {
			continue
		}
		if v := kb(filepath.Join("/proc", e.Name(), "smaps_rollup"), "Pss:") / 1024; v > best {
			best = v
		}
	}
	return best
}

func kb(file, key string) float64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), key) {
			v, _ := strconv.ParseFloat(strings.Fields(s.Text())[1], 64)
			return v
		}
	}
	return 0
}
