package shimapi

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// fakeService is a Service without a reaper: the tests feed exits to handleExits as the exit
// loop would, and start processes by hand.
func fakeService() *Service {
	return &Service{
		containers: map[string]*container{}, byPid: map[int]*process{}, held: map[int]exit{},
		events: newPublisher("", "test"),
	}
}

func fakeContainer(s *Service, id string, pid int, since time.Time) *container {
	p := newProcess(id, "", "", "", "", false)
	p.pid = pid
	p.status = task.Status_RUNNING
	c := &container{id: id, init: p, execs: map[string]*process{}}
	s.containers[id] = c
	s.track(p, since)
	return c
}

func fakeExec(s *Service, c *container, execID string, pid int, since time.Time) *process {
	p := newProcess(c.id, execID, "", "", "", false)
	p.pid = pid
	p.status = task.Status_RUNNING
	c.execs[execID] = p
	s.track(p, since)
	return p
}

// An exit of a pid nobody tracked, reaped long before a later process got the same pid, must not
// end that process: it was an earlier process's (a probe's, a logger's).
func TestHeldExitOfAReusedPid(t *testing.T) {
	s := fakeService()
	t0 := time.Now()
	s.handleExits([]exit{{pid: 4242, status: 7, at: t0}}, t0)
	c := fakeContainer(s, "c", 1000, t0)
	x := fakeExec(s, c, "probe", 4242, t0.Add(time.Second))
	if x.exited() {
		t.Fatalf("the exec with a reused pid was marked exited with the old status %d", x.exitCode)
	}
	s.handleExits([]exit{{pid: 4242, status: 0, at: t0.Add(2 * time.Second)}}, t0.Add(2*time.Second))
	if !x.exited() || x.exitCode != 0 {
		t.Fatalf("the exec's own exit: exited %v code %d", x.exited(), x.exitCode)
	}
}

// An exit reaped while the runtime command that started the process had not yet reported its pid
// (the exec'd process ran and ended at once) applies when the pid is tracked.
func TestExitBeforePidKnown(t *testing.T) {
	s := fakeService()
	start := time.Now()
	c := fakeContainer(s, "c", 1000, start)
	s.handleExits([]exit{{pid: 5000, status: 3, at: start.Add(time.Millisecond)}}, start.Add(time.Millisecond))
	x := fakeExec(s, c, "e", 5000, start)
	if !x.exited() || x.exitCode != 3 {
		t.Fatalf("held exit not applied: exited %v code %d", x.exited(), x.exitCode)
	}
}

// Held exits expire by age, not only past a count.
func TestHeldExitsExpire(t *testing.T) {
	s := fakeService()
	t0 := time.Now()
	s.handleExits([]exit{{pid: 1, at: t0}, {pid: 2, at: t0}}, t0)
	s.handleExits(nil, t0.Add(heldTTL+time.Second))
	if len(s.held) != 0 {
		t.Fatalf("%d held exits outlived %v", len(s.held), heldTTL)
	}
}

// The init's exit is final only once its execs have exited (containerd requires the exec exits
// first); the execs still running are killed (here: their exits are fed).
func TestExecExitsBeforeInit(t *testing.T) {
	s := fakeService()
	t0 := time.Now()
	c := fakeContainer(s, "c", 1000, t0)
	x := fakeExec(s, c, "e", 1001, t0)
	s.handleExits([]exit{{pid: 1000, status: 137, at: t0.Add(time.Second)}}, t0.Add(time.Second))
	if c.init.exited() {
		t.Fatal("the init was marked exited while an exec still ran")
	}
	s.handleExits([]exit{{pid: 1001, status: 137, at: t0.Add(2 * time.Second)}}, t0.Add(2*time.Second))
	if !x.exited() || !c.init.exited() || c.init.exitCode != 137 {
		t.Fatalf("exec exited %v, init exited %v (code %d)", x.exited(), c.init.exited(), c.init.exitCode)
	}
}

func anyOf(t *testing.T, url string, m proto.Message) *anypb.Any {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &anypb.Any{TypeUrl: url, Value: b}
}

// The CRI plugin sends a non-runc runtime type its generic options: the handler's table as TOML.
func TestParseOptionsFromCRI(t *testing.T) {
	body := "BinaryName = \"/usr/bin/crun\"\nRoot = \"/run/x\"\nNoPivotRoot = true\nShimCgroup = \"/pods\"\n"
	o, err := parseOptions(anyOf(t, "runtimeoptions.v1.Options", &runtimeoptions.Options{ConfigBody: []byte(body)}))
	if err != nil || o == nil || o.BinaryName != "/usr/bin/crun" || o.Root != "/run/x" || !o.NoPivotRoot || o.ShimCgroup != "/pods" {
		t.Fatalf("ConfigBody: %+v, %v", o, err)
	}
	path := filepath.Join(t.TempDir(), "husk.toml")
	os.WriteFile(path, []byte("SystemdCgroup = true\nNoNewKeyring = true\n"), 0o644)
	o, err = parseOptions(anyOf(t, "runtimeoptions.v1.Options", &runtimeoptions.Options{ConfigPath: path}))
	if err != nil || o == nil || !o.SystemdCgroup || !o.NoNewKeyring {
		t.Fatalf("ConfigPath: %+v, %v", o, err)
	}
	o, err = parseOptions(anyOf(t, "containerd.runc.v1.Options", &options.Options{BinaryName: "runc", Root: "/r"}))
	if err != nil || o.BinaryName != "runc" || o.Root != "/r" {
		t.Fatalf("runc options: %+v, %v", o, err)
	}
	for body, want := range map[string]string{
		"BinaryNmae = \"x\"\n": "unknown option",
		"CriuPath = \"/x\"\n":  "it runs criu from PATH",
		"Root = [\n":           "runtime options",
	} {
		_, err := parseOptions(anyOf(t, "runtimeoptions.v1.Options", &runtimeoptions.Options{ConfigBody: []byte(body)}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}

// The shim's socket is gone by the time Serve returns (main exits right after): it was removed
// by a goroutine racing the exit, and once in ~500 shim lifetimes stayed in /run/containerd/s.
func TestServeRemovesSocketBeforeReturning(t *testing.T) {
	for i := 0; i < 50; i++ {
		path := filepath.Join(t.TempDir(), "s")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false) // as the listener the shim inherits on fd 3
		srv, err := ttrpc.NewServer()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		close(done)
		if err := serveUntil(srv, l, done); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err == nil {
			t.Fatalf("round %d: the socket is still there after Serve returned", i)
		}
	}
}
