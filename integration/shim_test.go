package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cgv1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

var shimBin string

func shimBinary(t *testing.T) string {
	t.Helper()
	if shimBin != "" {
		return shimBin
	}
	if p := os.Getenv("HUSK_SHIM_BINARY"); p != "" {
		shimBin = p
		return p
	}
	p := filepath.Join(filepath.Dir(huskBin), "containerd-shim-husk-v2")
	if _, err := os.Stat(p); err != nil {
		build := exec.Command("go", "build", "-o", p, "../cmd/shim")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		if err != nil {
			t.Fatalf("build shim: %v\n%s", err, out)
		}
	}
	shimBin = p
	return p
}

// eventsServer collects the events a shim forwards, as containerd would receive them.
type eventsServer struct {
	mu     sync.Mutex
	topics []string
}

func (e *eventsServer) Forward(ctx context.Context, r *eventsapi.ForwardRequest) (*emptypb.Empty, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.topics = append(e.topics, r.Envelope.Topic)
	return &emptypb.Empty{}, nil
}

func (e *eventsServer) seen() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.topics...)
}

type shimHarness struct {
	t      *testing.T
	dir    string
	client taskapi.TTRPCTaskService
	events *eventsServer
	cmd    *exec.Cmd
	log    lockedBuffer // the shim's stderr (containerd's shim log), also copied to the test's
}

// lockedBuffer is a bytes.Buffer written by one goroutine while another reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startShim runs the shim daemon on a socket of the test, with a test events server, and
// connects a Task API client to it: the shim exactly as containerd talks to it.
func startShim(t *testing.T) *shimHarness {
	t.Helper()
	return startShimBinary(t, shimBinary(t))
}

// startShimBinary is startShim with the shim binary at bin (its engine finds husk and
// husk-init beside it).
func startShimBinary(t *testing.T, bin string) *shimHarness {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "shim")
	if err != nil {
		t.Fatal(err)
	}
	h := &shimHarness{t: t, dir: dir, events: &eventsServer{}}
	evSock := filepath.Join(dir, "events.sock")
	l, err := net.Listen("unix", evSock)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := ttrpc.NewServer()
	eventsapi.RegisterTTRPCEventsService(srv, h.events)
	go srv.Serve(context.Background(), l)
	sock := filepath.Join(dir, "shim.sock")
	h.cmd = exec.Command(bin, "-namespace", "husktest", "-id", "shimtest", "-address", "/dev/null", "-socket", sock)
	h.cmd.Env = append(os.Environ(), "TTRPC_ADDRESS="+evSock)
	h.cmd.Dir = dir
	h.cmd.Stderr = io.MultiWriter(os.Stderr, &h.log)
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	for i := 0; i < 200; i++ {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("shim socket: %v", err)
	}
	st, _ := os.Stat(sock)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("shim socket mode %v, want 0600", st.Mode().Perm())
	}
	client := ttrpc.NewClient(conn)
	h.client = taskapi.NewTTRPCTaskClient(client)
	t.Cleanup(func() {
		client.Close()
		h.cmd.Process.Kill()
		h.cmd.Wait()
		srv.Close()
		os.RemoveAll(dir)
	})
	return h
}

func runcOptions(t *testing.T, binary string) *anypb.Any {
	a, err := typeurl.MarshalAnyToProto(&options.Options{BinaryName: binary, Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fifoReader makes a fifo and collects what is written to it.
func fifoReader(t *testing.T, dir, name string) (string, func() string) {
	now := make(chan struct{})
	close(now)
	return fifoReaderAfter(t, dir, name, now)
}

// fifoReaderAfter is fifoReader whose reader opens the fifo only once gate is closed.
func fifoReaderAfter(t *testing.T, dir, name string, gate <-chan struct{}) (string, func() string) {
	path := filepath.Join(dir, name)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	var out []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-gate
		// A blocking open waits for the writer, as containerd's fifo reader does.
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		out, _ = io.ReadAll(f)
	}()
	return path, func() string {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("fifo %s never reached EOF", name)
			// A writer of our own releases a reader still waiting in open(2).
			if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			<-done
		}
		return string(out)
	}
}

// huskCommand is husk as a binary somewhere else than beside the shim (a symlink to it): the
// shim runs it as a command instead of running husk's engine in-process.
func huskCommand(t *testing.T) string {
	dir := t.TempDir()
	link := filepath.Join(dir, "husk")
	if err := os.Symlink(huskBin, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// bothHusks runs a shim test with husk's engine in the shim and with husk run as a command.
func bothHusks(t *testing.T, test func(t *testing.T, husk string)) {
	t.Run("in-process", func(t *testing.T) { test(t, huskBin) })
	t.Run("command", func(t *testing.T) { test(t, huskCommand(t)) })
}

// testShimLifecycle runs a container's whole life through the shim with runtime as its
// BinaryName. inProcess: the shim must run husk's engine itself, no runtime command.
func testShimLifecycle(t *testing.T, runtime string, inProcess bool) {
	h := startShim(t)
	ctx := context.Background()
	b := newBundle(t, "sh", "-c", "echo out-$0; echo err-$0 >&2; read line; echo got-$line; exit 7", "init")
	b.spec.Linux.CgroupsPath = "/husk-shim-test-" + filepath.Base(runtime)
	b.write(t)
	os.Chmod(b.dir, 0o755)
	stdout, outText := fifoReader(t, h.dir, "init-out")
	stderr, errText := fifoReader(t, h.dir, "init-err")
	stdinPath := filepath.Join(h.dir, "init-in")
	syscall.Mkfifo(stdinPath, 0o600)
	stdinW, _ := os.OpenFile(stdinPath, os.O_RDWR, 0)

	root := t.TempDir()
	opts, err := typeurl.MarshalAnyToProto(&options.Options{BinaryName: runtime, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "c1", Bundle: b.dir, Stdin: stdinPath, Stdout: stdout, Stderr: stderr, Options: opts})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	// A runtime command logs to the bundle's log.json (--log); the engine in the shim runs none.
	if _, err := os.Stat(filepath.Join(b.dir, "log.json")); (err == nil) == inProcess {
		t.Errorf("in-process engine %v, but log.json of a runtime command: %v", inProcess, err)
	}
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "c1", Bundle: b.dir}); err == nil {
		t.Error("second Create with the same id succeeded")
	}
	st, _ := h.client.State(ctx, &taskapi.StateRequest{ID: "c1"})
	if st.Pid != cr.Pid || st.Status.String() != "CREATED" {
		t.Errorf("State after create: %v", st)
	}
	if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "c1"}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if filepath.Base(runtime) == "husk" {
		// What the shim made, husk itself sees and operates on under the shim's root.
		hroot := filepath.Join(root, "husktest") // the shim keeps a namespace's containers under Root/<namespace>
		if out, err := exec.Command(huskBin, "--root", hroot, "state", "c1").Output(); err != nil || !strings.Contains(string(out), `"running"`) {
			t.Errorf("husk --root %s state c1: %s %v", hroot, out, err)
		}
		if out, err := exec.Command(huskBin, "--root", hroot, "exec", "c1", "echo", "husk-exec").CombinedOutput(); err != nil || string(out) != "husk-exec\n" {
			t.Errorf("husk exec into the shim's container: %q %v", out, err)
		}
		if out, err := exec.Command(huskBin, "--root", hroot, "ps", "--format", "json", "c1").Output(); err != nil || !strings.Contains(string(out), strconv.Itoa(int(cr.Pid))) {
			t.Errorf("husk ps of the shim's container: %s %v", out, err)
		}
	}
	// An exec while the init waits on stdin.
	proc, _ := json.Marshal(rspec.Process{Args: []string{"sh", "-c", "echo exec-out; exit 3"}, Env: []string{"PATH=/bin"}, Cwd: "/"})
	execOut, execText := fifoReader(t, h.dir, "exec-out")
	if _, err := h.client.Exec(ctx, &taskapi.ExecProcessRequest{ID: "c1", ExecID: "e1", Stdout: execOut, Spec: &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", Value: proc}}); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "c1", ExecID: "e1"}); err != nil {
		t.Fatalf("Start exec: %v", err)
	}
	wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "c1", ExecID: "e1"})
	if err != nil || wr.ExitStatus != 3 {
		t.Fatalf("Wait exec: %v %v", wr, err)
	}
	if got := execText(); got != "exec-out\n" {
		t.Errorf("exec output %q", got)
	}
	if _, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "c1", ExecID: "e1"}); err != nil {
		t.Errorf("Delete exec: %v", err)
	}
	pids, err := h.client.Pids(ctx, &taskapi.PidsRequest{ID: "c1"})
	if err != nil || len(pids.Processes) == 0 || pids.Processes[0].Pid != cr.Pid {
		t.Errorf("Pids: %v %v", pids, err)
	}
	if st, err := h.client.Stats(ctx, &taskapi.StatsRequest{ID: "c1"}); err != nil {
		t.Errorf("Stats: %v", err)
	} else {
		// What `ctr task metrics` and the CRI decode: cgroups v1 Metrics on this host.
		var m cgv1stats.Metrics
		if st.Stats.TypeUrl != "io.containerd.cgroups.v1.Metrics" || st.Stats.UnmarshalTo(&m) != nil {
			t.Errorf("Stats: type %q", st.Stats.TypeUrl)
		} else if m.Memory.GetUsage().GetUsage() == 0 || m.Pids.GetCurrent() == 0 || m.CPU.GetUsage().GetTotal() == 0 {
			t.Errorf("Stats: empty metrics: memory %v pids %v cpu %v", m.Memory.GetUsage(), m.Pids, m.CPU.GetUsage())
		}
	}
	if _, err := h.client.Pause(ctx, &taskapi.PauseRequest{ID: "c1"}); err != nil {
		t.Errorf("Pause: %v", err)
	}
	if st, _ := h.client.State(ctx, &taskapi.StateRequest{ID: "c1"}); st.Status.String() != "PAUSED" {
		t.Errorf("State after pause: %v", st.Status)
	}
	if _, err := h.client.Resume(ctx, &taskapi.ResumeRequest{ID: "c1"}); err != nil {
		t.Errorf("Resume: %v", err)
	}
	stdinW.Write([]byte("hello\n"))
	stdinW.Close()
	h.client.CloseIO(ctx, &taskapi.CloseIORequest{ID: "c1", Stdin: true})
	wr, err = h.client.Wait(ctx, &taskapi.WaitRequest{ID: "c1"})
	if err != nil || wr.ExitStatus != 7 {
		t.Fatalf("Wait init: %v %v", wr, err)
	}
	if got := outText(); got != "out-init\ngot-hello\n" {
		t.Errorf("stdout %q", got)
	}
	if got := errText(); got != "err-init\n" {
		t.Errorf("stderr %q", got)
	}
	// Until Delete the exited task still answers Stats, as the runc shim does: containerd
	// 2.4 asks on an exit with 137 whether the cgroup saw an OOM kill (husk refused: "no
	// metrics received", and an OOMKilled pod could be reported as Error).
	var exitedMetrics cgv1stats.Metrics
	if st, err := h.client.Stats(ctx, &taskapi.StatsRequest{ID: "c1"}); err != nil {
		t.Errorf("Stats of the exited task: %v", err)
	} else if st.Stats.UnmarshalTo(&exitedMetrics) != nil || exitedMetrics.CPU.GetUsage().GetTotal() == 0 {
		t.Errorf("Stats of the exited task: empty or not v1 metrics (%q)", st.Stats.TypeUrl)
	}
	dr, err := h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "c1"})
	if err != nil || dr.ExitStatus != 7 || dr.Pid != cr.Pid {
		t.Fatalf("Delete: %v %v", dr, err)
	}
	if _, err := h.client.State(ctx, &taskapi.StateRequest{ID: "c1"}); err == nil {
		t.Error("State after Delete succeeded")
	}
	time.Sleep(300 * time.Millisecond)
	want := []string{"/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit", "/tasks/paused", "/tasks/resumed", "/tasks/exit", "/tasks/delete"}
	if got := h.events.seen(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
	if _, err := h.client.Shutdown(ctx, &taskapi.ShutdownRequest{ID: "c1"}); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	// containerd returns from a task's delete right after Shutdown, without waiting for the
	// shim to exit: the socket must be gone by the reply (containerd's TestShimDoesNotLeakSockets).
	if _, err := os.Stat(filepath.Join(h.dir, "shim.sock")); err == nil {
		t.Error("the shim's socket is still there when Shutdown returns")
	}
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("shim did not exit after Shutdown")
	}
}

// TestShimLifecycleWithHusk: husk beside the shim; the shim runs husk's engine in-process.
func TestShimLifecycleWithHusk(t *testing.T) { testShimLifecycle(t, huskBin, true) }

// TestShimLifecycleWithHuskCommand: the same life with husk run as a command.
func TestShimLifecycleWithHuskCommand(t *testing.T) { testShimLifecycle(t, huskCommand(t), false) }

func TestShimLifecycleWithRunc(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed")
	}
	testShimLifecycle(t, "runc", false)
}

func TestShimErrors(t *testing.T) { bothHusks(t, testShimErrors) }

func testShimErrors(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	b := newBundle(t, "/no/such/binary")
	b.write(t)
	_, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "bad", Bundle: b.dir, Options: runcOptions(t, husk)})
	if err == nil || !strings.Contains(err.Error(), "OCI runtime create failed") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Create of a missing binary: %v", err)
	}
	_, err = h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "bad2", Bundle: b.dir, Options: runcOptions(t, "/no/such/runtime")})
	if err == nil || !strings.Contains(err.Error(), "OCI runtime create failed") {
		t.Fatalf("Create with a missing runtime: %v", err)
	}
	if _, err := h.client.State(ctx, &taskapi.StateRequest{ID: "nope"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("State of unknown: %v", err)
	}
	if _, err := h.client.Checkpoint(ctx, &taskapi.CheckpointTaskRequest{ID: "x"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Checkpoint: %v", err)
	}
	if tr := hostTraces(t, "", b.dir, "bad"); len(tr) > 0 {
		t.Errorf("failed create left %v", tr)
	}
}

// TestShimExitRacesStart: a process that exits at once must still report its real status.
func TestShimExitRacesStart(t *testing.T) { bothHusks(t, testShimExitRacesStart) }

func testShimExitRacesStart(t *testing.T, husk string) {
	h := startShim(t)
	ctx := context.Background()
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "r1", Bundle: b.dir, Options: runcOptions(t, husk)}); err != nil {
		t.Fatal(err)
	}
	h.client.Start(ctx, &taskapi.StartRequest{ID: "r1"})
	for i := 0; i < 20; i++ {
		proc, _ := json.Marshal(rspec.Process{Args: []string{"sh", "-c", "exit 9"}, Env: []string{"PATH=/bin"}, Cwd: "/"})
		id := "x" + string(rune('a'+i))
		h.client.Exec(ctx, &taskapi.ExecProcessRequest{ID: "r1", ExecID: id, Spec: &anypb.Any{Value: proc}})
		if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "r1", ExecID: id}); err != nil {
			t.Fatal(err)
		}
		wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "r1", ExecID: id})
		if err != nil || wr.ExitStatus != 9 {
			t.Fatalf("exec %s: %v %v", id, wr, err)
		}
	}
	h.client.Kill(ctx, &taskapi.KillRequest{ID: "r1", Signal: 9})
	if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "r1"}); err != nil || wr.ExitStatus != 137 {
		t.Fatalf("init: %v %v", wr, err)
	}
	h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "r1"})
}

// TestShimInitExitKillsTheRestWithoutPidNamespace: in a container without a pid namespace of
// its own the init's exit leaves its children running; the shim kills them before it reports
// the exit, as the runc shim does (containerd's TestContainerKillInitPidHost), for husk's
// engine, husk as a command and runc.
func TestShimInitExitKillsTheRestWithoutPidNamespace(t *testing.T) {
	runtimes := map[string]string{"in-process": huskBin, "command": huskCommand(t)}
	if _, err := exec.LookPath("runc"); err == nil {
		runtimes["runc"] = "runc"
	}
	for name, rt := range runtimes {
		t.Run(name, func(t *testing.T) {
			h := startShim(t)
			ctx := context.Background()
			b := newBundle(t, "sh", "-c", "sleep 1000 & echo $! > /tmp/child; exit 3")
			b.spec.Root.Readonly = false
			os.MkdirAll(filepath.Join(b.rootfs(), "tmp"), 0o777)
			b.spec.Linux.Namespaces = withoutNamespace(b.spec.Linux.Namespaces, rspec.PIDNamespace)
			b.write(t)
			if _, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: "k1", Bundle: b.dir, Options: runcOptions(t, rt)}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.client.Start(ctx, &taskapi.StartRequest{ID: "k1"}); err != nil {
				t.Fatal(err)
			}
			if wr, err := h.client.Wait(ctx, &taskapi.WaitRequest{ID: "k1"}); err != nil || wr.ExitStatus != 3 {
				t.Fatalf("init: %v %v", wr, err)
			}
			data, _ := os.ReadFile(filepath.Join(b.rootfs(), "tmp", "child"))
			child := atoi(strings.TrimSpace(string(data)))
			if child <= 0 {
				t.Fatalf("no child pid written (%q)", data)
			}
			gone := false
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !gone; time.Sleep(20 * time.Millisecond) {
				st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
				gone = err != nil || strings.Contains(string(st), ") Z ")
			}
			if !gone {
				syscall.Kill(child, syscall.SIGKILL)
				t.Errorf("the init's child %d outlived the init's exit", child)
			}
			h.client.Delete(ctx, &taskapi.DeleteRequest{ID: "k1"})
		})
	}
}

// TestShimDumpsStacksOnSIGUSR1: a hung shim is diagnosed the way containerd's runc shim is,
// by SIGUSR1, which writes every goroutine's stack to the shim log and leaves the shim serving.
func TestShimDumpsStacksOnSIGUSR1(t *testing.T) {
	h := startShim(t)
	if err := h.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var log string
	for i := 0; i < 100; i++ {
		if log = h.log.String(); strings.Contains(log, "=== END goroutine stack dump ===") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log, "=== BEGIN goroutine stack dump") || !strings.Contains(log, "goroutine ") || !strings.Contains(log, "=== END goroutine stack dump ===") {
		t.Fatalf("no stack dump in the shim log after SIGUSR1: %q", log)
	}
	// Still serving.
	if _, err := h.client.Connect(context.Background(), &taskapi.ConnectRequest{ID: "shimtest"}); err != nil {
		t.Errorf("the shim after SIGUSR1: %v", err)
	}
}
