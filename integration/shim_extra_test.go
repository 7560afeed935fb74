package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	apitypes "github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/typeurl/v2"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestShimGroupsPodContainers: the start action hands out one shim per pod group, on a 0600
// file socket, and prints nothing but the address.
func TestShimGroupsPodContainers(t *testing.T) {
	start := func(id, group string) (string, string) {
		b := newBundle(t, "true")
		b.spec.Annotations = map[string]string{"io.kubernetes.cri.sandbox-id": group}
		b.write(t)
		cmd := exec.Command(shimBinary(t), "-namespace", "husktest", "-address", "/run/husk-test-"+group+".sock", "-publish-binary", "/bin/true", "-id", id, "start")
		cmd.Dir = b.dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("start: %v, stderr %q", err, stderr.String())
		}
		return string(out), b.dir
	}
	a1, d1 := start("pod-a-1", "pod-a")
	a2, _ := start("pod-a-2", "pod-a")
	b1, d3 := start("pod-b-1", "pod-b")
	defer func() {
		for _, d := range []string{d1, d3} {
			data, _ := os.ReadFile(filepath.Join(d, "shim.pid"))
			if pid := atoi(strings.TrimSpace(string(data))); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		for _, a := range []string{a1, b1} {
			os.Remove(strings.TrimPrefix(a, "unix://"))
		}
	}()
	if !strings.HasPrefix(a1, "unix:///run/containerd/s/") || strings.ContainsAny(a1, "\n ") {
		t.Fatalf("start printed %q, want only a unix:// address", a1)
	}
	if a1 != a2 {
		t.Errorf("containers of one pod got different shims: %s %s", a1, a2)
	}
	if a1 == b1 {
		t.Errorf("two pods share a shim: %s", a1)
	}
	st, err := os.Stat(strings.TrimPrefix(a1, "unix://"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("shim socket: %v %v, want a 0600 socket file", st.Mode(), err)
	}
}

// TestShimBootstrapProtocol: containerd 2.3+ sends BootstrapParams on the start action's stdin
// and reads a BootstrapResult back (containerd 1.6-2.2 a plain address, which 2.4 still
// accepts); the shim answers in the protocol it was spoken to, puts its socket in the directory
// the parameters name, and the delete action removes it there once the shim is dead. husk read
// and dropped the parameters and always answered the plain address in /run/containerd/s.
func TestShimBootstrapProtocol(t *testing.T) {
	b := newBundle(t, "true")
	b.write(t)
	group := "boot" + fmt.Sprint(time.Now().UnixNano())
	sockDir, err := os.MkdirTemp("/tmp", "sd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	shim := func(stdin []byte, action string) []byte {
		cmd := exec.Command(shimBinary(t), "-namespace", "husktest", "-address", "/run/husk-test-"+group+".sock", "-publish-binary", "/bin/true", "-id", group, action)
		cmd.Dir = b.dir
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("%s: %v, stderr %q", action, err, stderr.String())
		}
		return out
	}
	killDaemon := func() {
		data, _ := os.ReadFile(filepath.Join(b.dir, "shim.pid"))
		if pid := atoi(strings.TrimSpace(string(data))); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	params, _ := proto.Marshal(&bootapi.BootstrapParams{InstanceID: group, Namespace: "husktest", SocketDir: &sockDir})
	out := shim(params, "start")
	var res bootapi.BootstrapResult
	if err := proto.Unmarshal(out, &res); err != nil || res.Version != 3 || res.Protocol != "ttrpc" || !strings.HasPrefix(res.Address, "unix://"+sockDir+"/") {
		killDaemon()
		t.Fatalf("start with BootstrapParams answered %q (%v): want a BootstrapResult, version 3, ttrpc, a socket in %s", out, err, sockDir)
	}
	path := strings.TrimPrefix(res.Address, "unix://")
	if st, err := os.Stat(path); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("shim socket %s: %v", path, err)
	}
	killDaemon()
	shim(nil, "delete")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the dead shim's socket %s is still there after delete: %v", path, err)
	}
	// Parameters that are not this shim's (another id): what 1.x sends (options) is no
	// BootstrapParams either; the answer is the plain address.
	other, _ := proto.Marshal(&bootapi.BootstrapParams{InstanceID: "someone-else", Namespace: "husktest"})
	os.Remove(filepath.Join(b.dir, "socket-dir"))
	out = shim(other, "start")
	defer func() {
		killDaemon()
		os.Remove(strings.TrimPrefix(string(out), "unix://"))
	}()
	if !strings.HasPrefix(string(out), "unix:///run/containerd/s/") || strings.ContainsAny(string(out), "\n ") {
		t.Fatalf("start with foreign parameters printed %q, want only a unix:// address", out)
	}
}

// TestShimOOMScoreIsCallersPlusOne: the shim daemon's oom_score_adj is its caller's
// (containerd's) plus one, as the runc shim sets it (containerd's TestShimOOMScore; husk left
// it equal), so the kernel kills a shim before containerd under memory pressure.
func TestShimOOMScoreIsCallersPlusOne(t *testing.T) {
	b := newBundle(t, "true")
	b.write(t)
	group := "oom" + fmt.Sprint(time.Now().UnixNano())
	// sh is the caller: raised to 300 (raising needs no privilege), it runs the start action.
	cmd := exec.Command("sh", "-c", `echo 300 > /proc/self/oom_score_adj && "$0" -namespace husktest -address /run/husk-test-`+group+`.sock -publish-binary /bin/true -id `+group+` start`, shimBinary(t))
	cmd.Dir = b.dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer os.Remove(strings.TrimPrefix(string(out), "unix://"))
	data, _ := os.ReadFile(filepath.Join(b.dir, "shim.pid"))
	pid := atoi(strings.TrimSpace(string(data)))
	if pid <= 0 {
		t.Fatalf("no shim.pid after start (printed %q)", out)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	score, _ := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid))
	if strings.TrimSpace(string(score)) != "301" {
		t.Errorf("shim oom_score_adj %q, want its caller's 300 + 1", score)
	}
}

// TestShimFileAndBinaryStdio covers containerd's file:// and binary:// (logger) stdio.
func TestShimFileAndBinaryStdio(t *testing.T) { bothHusks(t, testShimFileAndBinaryStdio) }

func testShimFileAndBinaryStdio(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "out.log")
	logger := filepath.Join(dir, "logger.sh")
	os.WriteFile(logger, []byte("#!/bin/sh\nexec 5>&-\ncat <&3 > \"$1.out\" &\ncat <&4 > \"$1.err\"\nwait\n"), 0o755)
	for i, tc := range []struct{ stdout, stderr, check string }{
		{"file://" + logFile, "file://" + logFile, logFile},
		{"binary://" + logger + "?" + filepath.Join(dir, "logged"), "binary://" + logger + "?" + filepath.Join(dir, "logged"), filepath.Join(dir, "logged.out")},
	} {
		b := newBundle(t, "sh", "-c", "echo to-stdout; echo to-stderr >&2")
		b.write(t)
		id := "io" + string(rune('a'+i))
		if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: id, Bundle: b.dir, Stdout: tc.stdout, Stderr: tc.stderr, Options: runcOptions(t, husk)}); err != nil {
			t.Fatalf("Create with %s: %v", tc.stdout, err)
		}
		h.client.Start(ctx, &taskapi.StartRequest{ID: id})
		if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: id}); err != nil || wr.ExitStatus != 0 {
			t.Fatalf("Wait: %v %v", wr, err)
		}
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: id})
		var got string
		for i := 0; i < 100; i++ {
			data, _ := os.ReadFile(tc.check)
			if got = string(data); strings.Contains(got, "to-stdout") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(got, "to-stdout") {
			t.Errorf("%s: output %q", tc.stdout, got)
		}
		if i == 0 && !strings.Contains(got, "to-stderr") {
			t.Errorf("file:// stderr missing: %q", got)
		}
	}
}

// TestShimBinaryV2AndTerminalLoggers: containerd 2.3+'s binary-v2:// logger is ready only once
// it has written a byte to fd 5 (one that closes it silently fails the create and leaves no
// container), and a logger takes a terminal's output (what containerd's runc shim does; husk
// refused it before).
func TestShimBinaryV2AndTerminalLoggers(t *testing.T) {
	bothHusks(t, testShimBinaryV2AndTerminalLoggers)
}

func testShimBinaryV2AndTerminalLoggers(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready.sh")
	os.WriteFile(ready, []byte("#!/bin/sh\nprintf R >&5; exec 5>&-\ncat <&3 > \"$1.out\" &\ncat <&4 > \"$1.err\"\nwait\n"), 0o755)
	silent := filepath.Join(dir, "silent.sh")
	os.WriteFile(silent, []byte("#!/bin/sh\nexec 5>&-\ncat <&3 > \"$1.out\" &\ncat <&4 > \"$1.err\"\nwait\n"), 0o755)
	root := t.TempDir()
	opts, err := typeurl.MarshalAnyToProto(&options.Options{BinaryName: husk, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	run := func(id, uri string, terminal bool, script string) error {
		b := newBundle(t, "sh", "-c", script)
		b.spec.Process.Terminal = terminal
		b.write(t)
		if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: id, Bundle: b.dir, Stdout: uri, Stderr: uri, Terminal: terminal, Options: opts}); err != nil {
			return err
		}
		h.client.Start(ctx, &taskapi.StartRequest{ID: id})
		if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: id}); err != nil || wr.ExitStatus != 0 {
			t.Fatalf("%s: Wait: %v %v", id, wr, err)
		}
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: id})
		return nil
	}
	logged := func(base, want string) {
		t.Helper()
		var got string
		for i := 0; i < 100; i++ {
			data, _ := os.ReadFile(base + ".out")
			if got = string(data); strings.Contains(got, want) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("%s.out: %q, want %q", base, got, want)
	}
	if err := run("v2", "binary-v2://"+ready+"?"+filepath.Join(dir, "v2"), false, "echo v2-logged"); err != nil {
		t.Fatalf("binary-v2 logger that signals ready: %v", err)
	}
	logged(filepath.Join(dir, "v2"), "v2-logged")

	err = run("v2silent", "binary-v2://"+silent+"?"+filepath.Join(dir, "silent"), false, "echo never")
	if err == nil || !strings.Contains(err.Error(), "did not signal ready") {
		t.Errorf("binary-v2 logger that closes fd 5 without a byte: %v, want a refusal", err)
	}
	if _, err := h.client.State(ctx, &taskapi.StateRequest{ID: "v2silent"}); err == nil {
		t.Errorf("the refused create left a task")
	}
	if _, err := os.Stat(filepath.Join(root, "v2silent")); err == nil {
		t.Errorf("the refused create left runtime state in %s", root)
	}

	for _, scheme := range []string{"binary", "binary-v2"} {
		base := filepath.Join(dir, scheme+"-tty")
		if err := run(scheme+"tty", scheme+"://"+ready+"?"+base, true, "tty; echo on-a-terminal"); err != nil {
			t.Fatalf("%s logger with a terminal: %v", scheme, err)
		}
		logged(base, "on-a-terminal")
		logged(base, "/dev/pts/")
	}
}

// TestHuskShimReportsOOM: a container over its memory limit is OOM-killed; containerd hears
// /tasks/oom before /tasks/exit.
func TestHuskShimReportsOOM(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.oom_control"); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
			t.Skip("no memory controller on this host")
		}
	}
	b := newBundle(t)
	c := startContainerdWithShim(t)
	events := exec.Command(c.ctrBin, "--address", c.sock, "events")
	var evOut strings.Builder
	events.Stdout = &evOut
	events.Start()
	defer events.Process.Kill()
	time.Sleep(100 * time.Millisecond)
	out, code := c.ctr(t, "run", "--rm", "--runtime", "io.containerd.husk.v2", "--memory-limit", "16777216", "--env", "PATH=/bin", "--rootfs", b.rootfs(),
		"oom1", "sh", "-c", "x=a; while true; do x=$x$x; done")
	if code != 137 {
		t.Fatalf("memory hog: exit %d, %q", code, out)
	}
	time.Sleep(300 * time.Millisecond)
	ev := evOut.String()
	oom, exit := strings.Index(ev, "/tasks/oom"), strings.Index(ev, "/tasks/exit")
	if oom < 0 || exit < 0 || oom > exit {
		t.Fatalf("want /tasks/oom before /tasks/exit, got:\n%s", ev)
	}

	// An OOM kill of one process in a container that keeps running is reported as it happens
	// (the cgroup v1 eventfd, or cgroup v2 events), not only at exit.
	before := strings.Count(evOut.String(), "/tasks/oom")
	out, code = c.ctr(t, "run", "-d", "--runtime", "io.containerd.husk.v2", "--memory-limit", "16777216", "--env", "PATH=/bin", "--rootfs", b.rootfs(),
		"oom2", "sh", "-c", "sh -c 'x=a; while true; do x=$x$x; done'; sleep 1000")
	if code != 0 {
		t.Fatalf("run -d: %d %q", code, out)
	}
	defer func() {
		c.ctr(t, "task", "kill", "-s", "KILL", "oom2")
		time.Sleep(200 * time.Millisecond)
		c.ctr(t, "task", "rm", "-f", "oom2")
		c.ctr(t, "container", "rm", "oom2")
	}()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(evOut.String(), "/tasks/oom") == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Count(evOut.String(), "/tasks/oom") == before {
		tl, _ := c.ctr(t, "task", "ls")
		t.Fatalf("no /tasks/oom while the container runs on (%d bytes of events; tasks %q); events:\n%s", len(evOut.String()), tl, evOut.String())
	}
	if out, _ := c.ctr(t, "task", "ls"); !strings.Contains(out, "RUNNING") {
		t.Errorf("the container should still run after its child's OOM kill: %q", out)
	}
}

// TestShimConcurrentContainers: one shim runs 50 containers at once (a large pod); every exit
// status reaches its waiter and nothing is left behind.
func TestShimConcurrentContainers(t *testing.T) { bothHusks(t, testShimConcurrentContainers) }

func testShimConcurrentContainers(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	opts := runcOptions(t, husk)
	var wg sync.WaitGroup
	errs := make(chan string, 50)
	for i := 0; i < 50; i++ {
		// A bundle each, as containerd gives every task: the runtime's pid file and log are
		// the bundle's.
		b := newBundle(t, "sh", "-c", "exit 12")
		b.write(t)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("load-%d", i)
			if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: id, Bundle: b.dir, Options: opts}); err != nil {
				errs <- fmt.Sprintf("%s create: %v", id, err)
				return
			}
			if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: id}); err != nil {
				errs <- fmt.Sprintf("%s start: %v", id, err)
				return
			}
			wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: id})
			if err != nil || wr.ExitStatus != 12 {
				errs <- fmt.Sprintf("%s wait: %v %v", id, wr, err)
				return
			}
			if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: id}); err != nil {
				errs <- fmt.Sprintf("%s delete: %v", id, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for i := 0; i < 50; i++ {
		if tr := hostTraces(t, "", "", fmt.Sprintf("load-%d", i)); len(tr) > 0 {
			t.Errorf("left: %v", tr)
		}
	}
	if n, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", h.cmd.Process.Pid)); len(n) > 20 {
		t.Errorf("shim holds %d fds after all containers are gone", len(n))
	}
}

// TestShimExecWithTerminal: an exec with a terminal gets a pty whose output reaches the client's
// fifo, and ResizePty sizes it. The request's Terminal decides, as in the runc shim, also when
// the process spec says otherwise: containerd's client asks for a terminal through its IO
// (cio.WithTerminal) and sends the container's process spec, terminal false, with it
// (containerd's TestContainerExecLargeOutputWithTTY; husk failed it: "set controlling
// terminal: operation not permitted").
func TestShimExecWithTerminal(t *testing.T) { bothHusks(t, testShimExecWithTerminal) }

func testShimExecWithTerminal(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "tty", Bundle: b.dir, Options: runcOptions(t, husk)}); err != nil {
		t.Fatal(err)
	}
	h.client.Start(ctx, &taskapi.StartRequest{ID: "tty"})
	defer func() {
		h.client.Kill(ctx, &taskapi.KillRequest{ID: "tty", Signal: 9})
		h.client.Wait(ctx, &taskapi.WaitRequest{ID: "tty"})
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "tty"})
	}()
	for _, specTerminal := range []bool{true, false} {
		execID := fmt.Sprintf("spec-terminal-%v", specTerminal)
		stdout, text := fifoReader(t, h.dir, execID+"-out")
		stdinPath := filepath.Join(h.dir, execID+"-in")
		syscall.Mkfifo(stdinPath, 0o600)
		stdinW, _ := os.OpenFile(stdinPath, os.O_RDWR, 0)
		defer stdinW.Close()
		proc, _ := json.Marshal(rspec.Process{Terminal: specTerminal, Args: []string{"sh", "-c", "tty; read x; stty size; exit 3"}, Env: []string{"PATH=/bin"}, Cwd: "/"})
		if _, err := h.client.Exec(ctx, &taskapi.ExecProcessRequest{ID: "tty", ExecID: execID, Terminal: true, Stdin: stdinPath, Stdout: stdout, Spec: &anypb.Any{Value: proc}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "tty", ExecID: execID}); err != nil {
			t.Fatalf("Start tty exec (spec terminal %v): %v", specTerminal, err)
		}
		if _, err := h.client.ResizePty(ctx, &taskapi.ResizePtyRequest{ID: "tty", ExecID: execID, Width: 97, Height: 31}); err != nil {
			t.Errorf("ResizePty: %v", err)
		}
		stdinW.Write([]byte("go\n"))
		wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "tty", ExecID: execID})
		if err != nil || wr.ExitStatus != 3 {
			t.Fatalf("Wait (spec terminal %v): %v %v", specTerminal, wr, err)
		}
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "tty", ExecID: execID})
		out := strings.ReplaceAll(text(), "\r", "")
		if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "31 97") {
			t.Fatalf("tty exec output (spec terminal %v): %q", specTerminal, out)
		}
	}
}

// TestShimOutputWaitsForALateReader: a client that opens its output fifos' read ends late
// still gets the output and its end. containerd's fifo package opens them in goroutines of
// their own, which a busy node may run after a short exec has exited; the shim let go of the
// fifos at the exit, and such a late open waited in open(2) for good: a CRI exec that never
// returned (TestCRIContainerd16's `crictl exec -i` in CI). As the runc shim does, Start now waits
// for the readers.
func TestShimOutputWaitsForALateReader(t *testing.T) { bothHusks(t, testShimOutputWaitsForALateReader) }

func testShimOutputWaitsForALateReader(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "late", Bundle: b.dir, Options: runcOptions(t, husk)}); err != nil {
		t.Fatal(err)
	}
	h.client.Start(ctx, &taskapi.StartRequest{ID: "late"})
	defer func() {
		h.client.Kill(ctx, &taskapi.KillRequest{ID: "late", Signal: 9})
		h.client.Wait(ctx, &taskapi.WaitRequest{ID: "late"})
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "late"})
	}()
	gate := make(chan struct{})
	stdout, outText := fifoReaderAfter(t, h.dir, "late-out", gate)
	stderr, errText := fifoReaderAfter(t, h.dir, "late-err", gate)
	proc, _ := json.Marshal(rspec.Process{Args: []string{"sh", "-c", "echo late-out; echo late-err >&2"}, Env: []string{"PATH=/bin"}, Cwd: "/"})
	if _, err := h.client.Exec(ctx, &taskapi.ExecProcessRequest{ID: "late", ExecID: "x", Stdout: stdout, Stderr: stderr, Spec: &anypb.Any{Value: proc}}); err != nil {
		t.Fatal(err)
	}
	startErr := make(chan error, 1)
	go func() {
		_, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "late", ExecID: "x"})
		startErr <- err
	}()
	var err error
	select {
	case err = <-startErr:
		// Start did not wait for the readers: they come once the exec has exited and the shim
		// is done with it.
		if err == nil {
			h.client.Wait(ctx, &taskapi.WaitRequest{ID: "late", ExecID: "x"})
			time.Sleep(200 * time.Millisecond)
		}
		close(gate)
	case <-time.After(time.Second):
		close(gate)
		err = <-startErr
	}
	if err != nil {
		t.Fatalf("Start exec: %v", err)
	}
	if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "late", ExecID: "x"}); err != nil || wr.ExitStatus != 0 {
		t.Fatalf("Wait exec: %v %v", wr, err)
	}
	if out, errOut := outText(), errText(); out != "late-out\n" || errOut != "late-err\n" {
		t.Errorf("a late reader got stdout %q and stderr %q, want the exec's output and its end", out, errOut)
	}
	h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "late", ExecID: "x"})
}

// TestShimStdinTakesALateWriter: a client that opens its stdin fifo's write end only after the
// exec has exited (containerd opens it in the background, as `kubectl exec -i pod -- true <
// file` can race) gets through: the open and what it writes do not block for good, and CloseIO
// and Delete end it. Before, the shim dropped its stdin fifo at the exit and the writer's open
// waited forever, and with it containerd's attach and the exec.
func TestShimStdinTakesALateWriter(t *testing.T) { bothHusks(t, testShimStdinTakesALateWriter) }

func testShimStdinTakesALateWriter(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	h.sleeper(t, "latein", runcOptions(t, husk))
	readNow := make(chan struct{})
	close(readNow)
	for _, terminal := range []bool{false, true} {
		execID := fmt.Sprintf("x-terminal-%v", terminal)
		stdin := filepath.Join(h.dir, execID+"-in")
		if err := syscall.Mkfifo(stdin, 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, outText := fifoReaderAfter(t, h.dir, execID+"-out", readNow)
		proc, _ := json.Marshal(rspec.Process{Args: []string{"true"}, Env: []string{"PATH=/bin"}, Cwd: "/", Terminal: terminal})
		if _, err := h.client.Exec(ctx, &taskapi.ExecProcessRequest{ID: "latein", ExecID: execID, Stdin: stdin, Stdout: stdout, Terminal: terminal, Spec: &anypb.Any{Value: proc}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "latein", ExecID: execID}); err != nil {
			t.Fatalf("%s: Start: %v", execID, err)
		}
		if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "latein", ExecID: execID}); err != nil || wr.ExitStatus != 0 {
			t.Fatalf("%s: Wait: %v %v", execID, wr, err)
		}
		outText()
		time.Sleep(200 * time.Millisecond) // the shim is done with the exit
		wrote := make(chan error, 1)
		go func() {
			w, err := os.OpenFile(stdin, os.O_WRONLY, 0) // blocking, as containerd's writer
			if err != nil {
				wrote <- err
				return
			}
			defer w.Close()
			_, err = w.Write(make([]byte, 256<<10)) // more than a fifo holds
			wrote <- err
		}()
		select {
		case err := <-wrote:
			if err != nil {
				t.Errorf("%s: the late stdin writer: %v", execID, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: a stdin writer that opened after the exit never got through", execID)
			// Release it: a reader of our own lets the open through; its write fails on the close.
			if r, err := os.OpenFile(stdin, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				time.Sleep(100 * time.Millisecond)
				r.Close()
			}
			<-wrote
		}
		if _, err := h.client.CloseIO(ctx, &taskapi.CloseIORequest{ID: "latein", ExecID: execID, Stdin: true}); err != nil {
			t.Errorf("%s: CloseIO: %v", execID, err)
		}
		if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "latein", ExecID: execID}); err != nil {
			t.Errorf("%s: Delete: %v", execID, err)
		}
	}
}

// TestShimExecKilled: an exec killed with SIGKILL reports 137 to its waiter, and the container
// runs on.
func TestShimExecKilled(t *testing.T) { bothHusks(t, testShimExecKilled) }

func testShimExecKilled(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "k", Bundle: b.dir, Options: runcOptions(t, husk)}); err != nil {
		t.Fatal(err)
	}
	h.client.Start(ctx, &taskapi.StartRequest{ID: "k"})
	proc, _ := json.Marshal(rspec.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}, Cwd: "/"})
	h.client.Exec(ctx, &taskapi.ExecProcessRequest{ID: "k", ExecID: "victim", Spec: &anypb.Any{Value: proc}})
	sr, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "k", ExecID: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(int(sr.Pid), syscall.SIGKILL)
	if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "k", ExecID: "victim"}); err != nil || wr.ExitStatus != 137 {
		t.Fatalf("killed exec: %v %v", wr, err)
	}
	if st, _ := h.client.State(ctx, &taskapi.StateRequest{ID: "k"}); st.Status.String() != "RUNNING" {
		t.Errorf("container after its exec was killed: %v", st.Status)
	}
	h.client.Kill(ctx, &taskapi.KillRequest{ID: "k", Signal: 9})
	if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "k"}); err != nil || wr.ExitStatus != 137 {
		t.Fatalf("killed init: %v %v", wr, err)
	}
	h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "k"})
}

// TestShimMountsRootfs: the rootfs mounts of the Create request (what a snapshotter hands over)
// are mounted on bundle/rootfs and gone after Delete.
func TestShimMountsRootfs(t *testing.T) {
	h := startShim(t)
	ctx := context.Background()
	src := newBundle(t, "sh", "-c", "cat /marker")
	os.WriteFile(filepath.Join(src.rootfs(), "marker"), []byte("from-the-snapshot\n"), 0o644)
	bundle := t.TempDir()
	src.spec.Root.Readonly = false
	data, _ := json.Marshal(src.spec)
	os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644)
	os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755)
	out, text := fifoReader(t, h.dir, "mnt-out")
	req := &taskapi.CreateTaskRequest{ID: "m", Bundle: bundle, Stdout: out, Options: runcOptions(t, huskBin),
		Rootfs: []*apitypes.Mount{{Type: "bind", Source: src.rootfs(), Options: []string{"rbind", "rw"}}}}
	if _, err := h.client.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	h.client.Start(ctx, &taskapi.StartRequest{ID: "m"})
	h.client.Wait(ctx, &taskapi.WaitRequest{ID: "m"})
	if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "m"}); err != nil {
		t.Fatal(err)
	}
	if got := text(); got != "from-the-snapshot\n" {
		t.Errorf("container saw %q", got)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), filepath.Join(bundle, "rootfs")) {
		t.Error("bundle/rootfs still mounted after Delete")
	}
}

// TestShimCgroupOption: the ShimCgroup runtime option moves the shim into that cgroup.
func TestShimCgroupOption(t *testing.T) {
	h := startShim(t)
	ctx := context.Background()
	b := newBundle(t, "true")
	b.write(t)
	cg := "/husk-shim-cgroup-test"
	a, err := typeurl.MarshalAnyToProto(&options.Options{BinaryName: huskBin, Root: t.TempDir(), ShimCgroup: cg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "sc", Bundle: b.dir, Options: a}); err != nil {
		t.Fatal(err)
	}
	h.client.Start(ctx, &taskapi.StartRequest{ID: "sc"})
	h.client.Wait(ctx, &taskapi.WaitRequest{ID: "sc"})
	h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "sc"})
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", h.cmd.Process.Pid))
	if !strings.Contains(string(data), cg+"\n") {
		t.Fatalf("shim not in %s:\n%s", cg, data)
	}
	h.cmd.Process.Kill()
	h.cmd.Wait()
	hier, _ := os.ReadDir("/sys/fs/cgroup")
	for _, d := range hier {
		os.Remove(filepath.Join("/sys/fs/cgroup", d.Name(), cg))
	}
}

// TestShimOrphanExitStorm: without a pid namespace a container's orphans are reaped by the shim
// (a subreaper). Hundreds of them dying at once while other containers are created must neither
// stall nor mix up exits.
func TestShimOrphanExitStorm(t *testing.T) { bothHusks(t, testShimOrphanExitStorm) }

func testShimOrphanExitStorm(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	storm := newBundle(t, "sh", "-c", "for i in $(seq 1 600); do (sleep 1 &); done; sleep 1000")
	storm.spec.Linux.Namespaces = storm.spec.Linux.Namespaces[1:] // no pid namespace
	storm.write(t)
	opts := runcOptions(t, husk)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "storm", Bundle: storm.dir, Options: opts}); err != nil {
		t.Fatal(err)
	}
	h.client.Start(ctx, &taskapi.StartRequest{ID: "storm"})
	b := newBundle(t, "sh", "-c", "exit 21")
	b.write(t)
	deadline := time.Now().Add(4 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		id := fmt.Sprintf("calm-%d", i)
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if _, err := h.client.Create(cctx, &taskapi.CreateTaskRequest{ID: id, Bundle: b.dir, Options: opts}); err != nil {
			cancel()
			t.Fatalf("%s create during the storm: %v", id, err)
		}
		h.client.Start(cctx, &taskapi.StartRequest{ID: id})
		wr, err := h.client.Wait(cctx, &taskapi.WaitRequest{ID: id})
		if err != nil || wr.ExitStatus != 21 {
			cancel()
			t.Fatalf("%s during the storm: %v %v", id, wr, err)
		}
		h.client.Delete(cctx, &taskapi.DeleteRequest{ID: id})
		cancel()
	}
	h.client.Kill(ctx, &taskapi.KillRequest{ID: "storm", Signal: 9, All: true})
	if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "storm"}); err != nil || wr.ExitStatus != 137 {
		t.Fatalf("storm init: %v %v", wr, err)
	}
	h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "storm"})
}

// TestShimSlowContainerHoldsUpNoOther: a runtime operation on one container does not hold the
// shim's other containers (a pod's). The runtime here is husk behind a wrapper that stalls the
// start of container "slow" until a gate file exists; meanwhile another container of the same
// shim goes through its whole life with an exec, and "slow" itself can be killed.
func TestShimSlowContainerHoldsUpNoOther(t *testing.T) {
	h := startShim(t)
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	wrapper := filepath.Join(dir, "runtime")
	script := fmt.Sprintf("#!/bin/sh\nlast=; for a; do last=$a; done\n"+
		"case \" $* \" in *\" start \"*) [ \"$last\" = slow ] && while [ ! -e %s ]; do sleep 0.05; done;; esac\n"+
		"exec %s \"$@\"\n", gate, huskBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(gate, nil, 0o644) // never leave the slow start stuck
	opts := runcOptions(t, wrapper)
	ctx := context.Background()
	slow := newBundle(t, "sleep", "1000")
	slow.write(t)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "slow", Bundle: slow.dir, Options: opts}); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() {
		_, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "slow"})
		started <- err
	}()
	time.Sleep(200 * time.Millisecond) // the start is in the wrapper by now (not required for the test to be valid)

	// A deadlock shows as this context running out, not as a slow run.
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	fast := newBundle(t, "sleep", "1000")
	fast.write(t)
	if _, err := h.client.Create(tctx, &taskapi.CreateTaskRequest{ID: "fast", Bundle: fast.dir, Options: opts}); err != nil {
		t.Fatalf("create of another container while one starts: %v", err)
	}
	if _, err := h.client.Start(tctx, &taskapi.StartRequest{ID: "fast"}); err != nil {
		t.Fatalf("start of another container while one starts: %v", err)
	}
	proc, _ := json.Marshal(rspec.Process{Args: []string{"sh", "-c", "exit 7"}, Env: []string{"PATH=/bin"}, Cwd: "/"})
	if _, err := h.client.Exec(tctx, &taskapi.ExecProcessRequest{ID: "fast", ExecID: "probe", Spec: &anypb.Any{Value: proc}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Start(tctx, &taskapi.StartRequest{ID: "fast", ExecID: "probe"}); err != nil {
		t.Fatalf("exec start in another container while one starts: %v", err)
	}
	if wr, err := h.client.Wait(tctx, &taskapi.WaitRequest{ID: "fast", ExecID: "probe"}); err != nil || wr.ExitStatus != 7 {
		t.Fatalf("exec wait: %v %v", wr, err)
	}
	if _, err := h.client.Kill(tctx, &taskapi.KillRequest{ID: "fast", Signal: 9}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Wait(tctx, &taskapi.WaitRequest{ID: "fast"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Delete(tctx, &taskapi.DeleteRequest{ID: "fast"}); err != nil {
		t.Fatalf("delete of another container while one starts: %v", err)
	}
	select {
	case err := <-started:
		t.Fatalf("the slow start returned before its gate opened: %v", err)
	default:
	}
	// The stuck container itself can still be killed: a kill takes no operation lock.
	if _, err := h.client.Kill(tctx, &taskapi.KillRequest{ID: "slow", Signal: 9}); err != nil {
		t.Fatalf("kill of the container whose start is stuck: %v", err)
	}
	if wr, err := h.client.Wait(tctx, &taskapi.WaitRequest{ID: "slow"}); err != nil || wr.ExitStatus != 137 {
		t.Fatalf("wait for the killed slow container: %v %v", wr, err)
	}
	os.WriteFile(gate, nil, 0o644)
	<-started // fails or not: the container was killed first
	if _, err := h.client.Delete(tctx, &taskapi.DeleteRequest{ID: "slow"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"slow", "fast"} {
		if tr := hostTraces(t, "", "", id); len(tr) > 0 {
			t.Errorf("left: %v", tr)
		}
	}
}

// TestShimPodExecsAtOnce: the containers of one pod start together and each takes several
// execs at once (probes): every exec's own exit status reaches its waiter.
func TestShimPodExecsAtOnce(t *testing.T) { bothHusks(t, testShimPodExecsAtOnce) }

func testShimPodExecsAtOnce(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	opts := runcOptions(t, husk)
	const containers, execs = 8, 6
	var wg sync.WaitGroup
	errs := make(chan string, containers*(execs+1))
	for i := 0; i < containers; i++ {
		b := newBundle(t, "sleep", "1000")
		b.write(t)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("pod-%d", i)
			if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: id, Bundle: b.dir, Options: opts}); err != nil {
				errs <- fmt.Sprintf("%s create: %v", id, err)
				return
			}
			if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: id}); err != nil {
				errs <- fmt.Sprintf("%s start: %v", id, err)
				return
			}
			var ew sync.WaitGroup
			for j := 0; j < execs; j++ {
				ew.Add(1)
				go func(j int) {
					defer ew.Done()
					eid := fmt.Sprintf("probe-%d", j)
					proc, _ := json.Marshal(rspec.Process{Args: []string{"sh", "-c", fmt.Sprintf("exit %d", 10+j)}, Env: []string{"PATH=/bin"}, Cwd: "/"})
					if _, err := h.client.Exec(ctx, &taskapi.ExecProcessRequest{ID: id, ExecID: eid, Spec: &anypb.Any{Value: proc}}); err != nil {
						errs <- fmt.Sprintf("%s/%s exec: %v", id, eid, err)
						return
					}
					if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: id, ExecID: eid}); err != nil {
						errs <- fmt.Sprintf("%s/%s start: %v", id, eid, err)
						return
					}
					wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: id, ExecID: eid})
					if err != nil || wr.ExitStatus != uint32(10+j) {
						errs <- fmt.Sprintf("%s/%s wait: %v %v, want status %d", id, eid, wr, err, 10+j)
						return
					}
					if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: id, ExecID: eid}); err != nil {
						errs <- fmt.Sprintf("%s/%s delete: %v", id, eid, err)
					}
				}(j)
			}
			ew.Wait()
			h.client.Kill(ctx, &taskapi.KillRequest{ID: id, Signal: 9})
			if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: id}); err != nil || wr.ExitStatus != 137 {
				errs <- fmt.Sprintf("%s wait: %v %v", id, wr, err)
			}
			if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: id}); err != nil {
				errs <- fmt.Sprintf("%s delete: %v", id, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for i := 0; i < containers; i++ {
		if tr := hostTraces(t, "", "", fmt.Sprintf("pod-%d", i)); len(tr) > 0 {
			t.Errorf("left: %v", tr)
		}
	}
}

// TestShimHooks: the OCI hooks of a container run through the shim, in order and with the
// state on stdin; a failing createRuntime hook fails Create with the hook's error and leaves
// nothing. In-process, the hooks are the engine's own children, which the shim's reaper must
// not take from it.
func TestShimHooks(t *testing.T) { bothHusks(t, testShimHooks) }

func testShimHooks(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	log := filepath.Join(t.TempDir(), "hooks.log")
	hook := func(name string) rspec.Hook {
		return rspec.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `read s; echo "` + name + ` $s" >> ` + log}}
	}
	b := newBundle(t, "sh", "-c", "exit 4")
	b.spec.Hooks = &rspec.Hooks{
		CreateRuntime:   []rspec.Hook{hook("createRuntime")},
		CreateContainer: []rspec.Hook{hook("createContainer")},
		Poststart:       []rspec.Hook{hook("poststart")},
		Poststop:        []rspec.Hook{hook("poststop")},
	}
	b.write(t)
	opts := runcOptions(t, husk)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "hk", Bundle: b.dir, Options: opts}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "hk"}); err != nil {
		t.Fatal(err)
	}
	if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "hk"}); err != nil || wr.ExitStatus != 4 {
		t.Fatalf("wait: %v %v", wr, err)
	}
	if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "hk"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(log)
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
		if !strings.Contains(l, `"id":"hk"`) {
			t.Errorf("hook state lacks the id: %s", l)
		}
	}
	if strings.Join(names, ",") != "createRuntime,createContainer,poststart,poststop" {
		t.Errorf("hooks ran: %v", names)
	}

	bad := newBundle(t, "true")
	bad.spec.Hooks = &rspec.Hooks{CreateRuntime: []rspec.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo no-way >&2; exit 3"}}}}
	bad.write(t)
	_, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "hk-bad", Bundle: bad.dir, Options: opts})
	if err == nil || !strings.Contains(err.Error(), "error running createRuntime hook #0:") || !strings.Contains(err.Error(), "no-way") {
		t.Fatalf("create with a failing hook: %v", err)
	}
	for _, id := range []string{"hk", "hk-bad"} {
		if tr := hostTraces(t, "", "", id); len(tr) > 0 {
			t.Errorf("left: %v", tr)
		}
	}
}

// TestShimHooksDuringExitStorm: hooks run while the shim reaps a storm of orphans' exits. In
// the in-process engine a hook is the shim's own child, waited for by the engine: the shim's
// reaper (a wait4 of any child) must leave its exit to it, or the hook "fails" with ECHILD.
func TestShimHooksDuringExitStorm(t *testing.T) { bothHusks(t, testShimHooksDuringExitStorm) }

func testShimHooksDuringExitStorm(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	storm := newBundle(t, "sh", "-c", "while true; do (true &); done")
	storm.spec.Linux.Namespaces = storm.spec.Linux.Namespaces[1:] // no pid namespace: orphans come to the shim
	storm.write(t)
	opts := runcOptions(t, husk)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "storm", Bundle: storm.dir, Options: opts}); err != nil {
		t.Fatal(err)
	}
	h.client.Start(ctx, &taskapi.StartRequest{ID: "storm"})
	defer func() {
		h.client.Kill(ctx, &taskapi.KillRequest{ID: "storm", Signal: 9, All: true})
		h.client.Wait(ctx, &taskapi.WaitRequest{ID: "storm"})
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "storm"})
	}()
	b := newBundle(t, "true")
	hook := rspec.Hook{Path: "/bin/true"}
	b.spec.Hooks = &rspec.Hooks{CreateRuntime: []rspec.Hook{hook, hook, hook}, Poststart: []rspec.Hook{hook}, Poststop: []rspec.Hook{hook}}
	b.write(t)
	for i := 0; i < 15; i++ {
		id := fmt.Sprintf("hooked-%d", i)
		if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: id, Bundle: b.dir, Options: opts}); err != nil {
			t.Fatalf("%s create during the storm: %v", id, err)
		}
		h.client.Start(ctx, &taskapi.StartRequest{ID: id})
		if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: id}); err != nil || wr.ExitStatus != 0 {
			t.Fatalf("%s: %v %v", id, wr, err)
		}
		if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: id}); err != nil {
			t.Fatalf("%s delete: %v", id, err)
		}
	}
}

// TestShimSlowExecStartDoesNotHoldOthers: an exec whose start hangs in the runtime (here a
// wrapper that holds it on a fifo, as containerd's runc-fp failpoint does in its
// TestIssue10589) does not hold up the container's other exec starts: the shim serialised
// every exec start of a container behind one lock, and containerd's test waited forever.
func TestShimSlowExecStartDoesNotHoldOthers(t *testing.T) {
	h := startShim(t)
	ctx := context.Background()
	wrapper, gate := heldExecRuntime(t)
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "slow", Bundle: b.dir, Options: runcOptions(t, wrapper)}); err != nil {
		t.Fatal(err)
	}
	h.client.Start(ctx, &taskapi.StartRequest{ID: "slow"})
	defer func() {
		h.client.Kill(ctx, &taskapi.KillRequest{ID: "slow", Signal: 9, All: true})
		h.client.Wait(ctx, &taskapi.WaitRequest{ID: "slow"})
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "slow"})
	}()
	for _, e := range [][]string{{"held", "sh", "-c", "echo HOLD-ME >/dev/null"}, {"quick", "true"}} {
		if err := h.exec("slow", e[0], e[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	heldDone := startHeldExec(t, h, "slow", "held", gate)
	defer heldDone.release() // before the deferred Delete, which waits for the held start
	quickDone := make(chan error, 1)
	go func() {
		_, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "slow", ExecID: "quick"})
		quickDone <- err
	}()
	select {
	case err := <-quickDone:
		if err != nil {
			t.Errorf("the second exec's start: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("the second exec's start waited for the held one")
	}
	heldDone.release()
	if err := <-heldDone.err; err != nil {
		t.Errorf("the held exec's start, once released: %v", err)
	}
	for _, id := range []string{"held", "quick"} {
		if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "slow", ExecID: id}); err != nil || wr.ExitStatus != 0 {
			t.Errorf("exec %s: %v %v", id, wr, err)
		}
	}
}

// heldExecRuntime writes a runtime wrapper (husk underneath) that holds the start of an exec
// whose process spec says HOLD-ME until a line is written to gate: a runtime command that
// hangs, as containerd's runc-fp delayExec failpoint makes one.
func heldExecRuntime(t *testing.T) (wrapper, gate string) {
	dir := t.TempDir()
	gate = filepath.Join(dir, "gate")
	if err := syscall.Mkfifo(gate, 0o600); err != nil {
		t.Fatal(err)
	}
	wrapper = filepath.Join(dir, "slow-husk")
	script := "#!/bin/sh\n" +
		"for a; do case $a in *.json) grep -q HOLD-ME \"$a\" 2>/dev/null && read x < " + gate + ";; esac; done\n" +
		"exec " + huskBin + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, gate
}

// exec creates exec execID of container id running args (PATH=/bin, in /).
// sleeper creates and starts container id running `sleep 1000` through the shim with opts;
// it is killed, waited for and deleted when the test ends.
func (h *shimHarness) sleeper(t *testing.T, id string, opts *anypb.Any) {
	t.Helper()
	ctx := context.Background()
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: id, Bundle: b.dir, Options: opts}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.client.Kill(ctx, &taskapi.KillRequest{ID: id, Signal: 9})
		h.client.Wait(ctx, &taskapi.WaitRequest{ID: id})
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: id})
	})
	if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: id}); err != nil {
		t.Fatal(err)
	}
}

func (h *shimHarness) exec(id, execID string, args ...string) error {
	proc, _ := json.Marshal(rspec.Process{Args: args, Env: []string{"PATH=/bin"}, Cwd: "/"})
	_, err := h.client.Exec(context.Background(), &taskapi.ExecProcessRequest{ID: id, ExecID: execID, Spec: &anypb.Any{Value: proc}})
	return err
}

type heldStart struct {
	err     chan error
	release func()
}

// startHeldExec starts exec execID (held by heldExecRuntime's wrapper) and returns once its
// start waits in the runtime: a writer's open of the gate returns only when the wrapper has
// opened its end.
func startHeldExec(t *testing.T, h *shimHarness, id, execID, gate string) heldStart {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := h.client.Start(context.Background(), &taskapi.StartRequest{ID: id, ExecID: execID})
		done <- err
	}()
	opened := make(chan *os.File, 1)
	go func() {
		f, _ := os.OpenFile(gate, os.O_WRONLY, 0)
		opened <- f
	}()
	select {
	case w := <-opened:
		var once sync.Once
		release := func() { once.Do(func() { w.Write([]byte("go\n")); w.Close() }) }
		return heldStart{err: done, release: release}
	case err := <-done:
		t.Fatalf("the held exec's start returned before reaching the runtime: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the held exec's start never reached the runtime")
	}
	return heldStart{}
}

// TestShimInitExitWaitsForStartingExec: the init dies while an exec of its container is being
// started (containerd's TestIssue10589): the init's exit waits for that start, so another exec
// can still be created, its start fails (the container has stopped), and once the held start
// ends the init's exit is final. husk made the exit final at once, and refused the second
// exec's create.
func TestShimInitExitWaitsForStartingExec(t *testing.T) {
	h := startShim(t)
	ctx := context.Background()
	wrapper, gate := heldExecRuntime(t)
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "i", Bundle: b.dir, Options: runcOptions(t, wrapper)}); err != nil {
		t.Fatal(err)
	}
	sr, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "i"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "i"})
	if err := h.exec("i", "held", "sh", "-c", "echo HOLD-ME >/dev/null"); err != nil {
		t.Fatal(err)
	}
	held := startHeldExec(t, h, "i", "held", gate)
	defer held.release() // before the deferred Delete, which waits for the held start
	syscall.Kill(int(sr.Pid), syscall.SIGKILL)
	// The init's exit is reaped: wait until the shim has seen it (its process is gone).
	for i := 0; syscall.Kill(int(sr.Pid), 0) == nil; i++ {
		if i == 3000 {
			t.Fatal("the killed init never went")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the exit reaches the shim's exit loop
	if err := h.exec("i", "second", "true"); err != nil {
		t.Fatalf("an exec created while another is starting and the init is dead: %v", err)
	}
	if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "i", ExecID: "second"}); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("starting an exec of a container whose init died: %v, want it refused (stopped)", err)
	}
	waited := make(chan *taskapi.WaitResponse, 1)
	go func() {
		wr, _ := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "i"})
		waited <- wr
	}()
	held.release()
	<-held.err // it fails or runs and ends: the container is gone either way
	select {
	case wr := <-waited:
		if wr == nil || wr.ExitStatus != 137 {
			t.Errorf("the init's exit: %v, want 137", wr)
		}
	case <-time.After(time.Minute):
		t.Error("the init's exit was never made final after the held exec's start ended")
	}
}

// TestShimSlowHookStallsNoOtherContainer: a container's createRuntime hook may take as long as
// it likes (hooks have no default timeout) without holding back the other containers of the
// same shim (a pod's): while container A's hook is blocked, container B can be exec'd into,
// and B's exit, once it is killed, is delivered. The in-process engine used to hold the shim's
// reaper off for the whole of every operation, so B's exit waited for A's create.
func TestShimSlowHookStallsNoOtherContainer(t *testing.T) {
	bothHusks(t, testShimSlowHookStallsNoOtherContainer)
}

func testShimSlowHookStallsNoOtherContainer(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	opts, err := typeurl.MarshalAnyToProto(&options.Options{BinaryName: husk, Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	idA, idB := uniqueID(t)+"-a", uniqueID(t)+"-b"
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: idB, Bundle: b.dir, Options: opts}); err != nil {
		t.Fatalf("create b: %v", err)
	}
	if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: idB}); err != nil {
		t.Fatalf("start b: %v", err)
	}
	defer func() {
		h.client.Kill(ctx, &taskapi.KillRequest{ID: idB, Signal: 9})
		h.client.Wait(ctx, &taskapi.WaitRequest{ID: idB})
		h.client.Delete(ctx, &taskapi.DeleteRequest{ID: idB})
	}()

	// A's createRuntime hook says it runs, then waits for the test (a minute at most).
	gates := t.TempDir()
	started, release := filepath.Join(gates, "started"), filepath.Join(gates, "release")
	timeout := 60
	a := newBundle(t, "sleep", "1000")
	a.spec.Hooks = &rspec.Hooks{CreateRuntime: []rspec.Hook{{Path: "/bin/sh", Timeout: &timeout,
		Args: []string{"sh", "-c", "touch " + started + "; while [ ! -e " + release + " ]; do sleep 0.05; done"}}}}
	a.write(t)
	created := make(chan error, 1)
	go func() {
		_, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: idA, Bundle: a.dir, Options: opts})
		created <- err
	}()
	defer func() {
		os.WriteFile(release, nil, 0o644)
		if err := <-created; err == nil {
			h.client.Kill(ctx, &taskapi.KillRequest{ID: idA, Signal: 9})
			h.client.Delete(ctx, &taskapi.DeleteRequest{ID: idA})
		}
	}()
	for i := 0; ; i++ {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if i == 600 {
			t.Fatal("A's createRuntime hook never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// B works while A's hook runs: an exec, then B's own exit.
	bounded, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := h.exec(idB, "e1", "true"); err != nil {
		t.Fatalf("exec in b: %v", err)
	}
	if _, err := h.client.Start(bounded, &taskapi.StartRequest{ID: idB, ExecID: "e1"}); err != nil {
		t.Fatalf("start of an exec in b while a's hook runs: %v", err)
	}
	if wr, err := h.client.Wait(bounded, &taskapi.WaitRequest{ID: idB, ExecID: "e1"}); err != nil || wr.ExitStatus != 0 {
		t.Fatalf("the exec in b while a's hook runs: %v %v", wr, err)
	}
	h.client.Delete(ctx, &taskapi.DeleteRequest{ID: idB, ExecID: "e1"})
	if _, err := h.client.Kill(bounded, &taskapi.KillRequest{ID: idB, Signal: 9}); err != nil {
		t.Fatalf("kill b: %v", err)
	}
	if wr, err := h.client.Wait(bounded, &taskapi.WaitRequest{ID: idB}); err != nil || wr.ExitStatus != 137 {
		t.Fatalf("b's exit while a's hook runs: %v %v (it waited for a's create)", wr, err)
	}
	select {
	case err := <-created:
		t.Fatalf("a's create returned while its hook was held: %v", err)
	default:
	}
}
