package libcontainer

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/husk-runtime/husk/libcontainer/procenv"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

func TestProcessEnvMatchesGoInit(t *testing.T) {
	got := procenv.ProcessEnv([]string{"A=1", "B=2", "A=3", "NOEQ", "=x", "LISTEN_FDS=2"}, 2, "/")
	want := []string{"A=3", "B=2", "LISTEN_FDS=2", "HOME=/", "LISTEN_PID=1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ProcessEnv = %q, want %q", got, want)
	}
	if got := procenv.ProcessEnv([]string{"HOME=/root", "LISTEN_FDS=1"}, 0, "/"); !reflect.DeepEqual(got, []string{"HOME=/root", "LISTEN_FDS=1"}) {
		t.Fatalf("ProcessEnv without preserved fds = %q", got)
	}
}

func TestFastExecRequest(t *testing.T) {
	umask, oom := uint32(0o22), -500
	p := &rspec.Process{
		Args: []string{"sh", "-c", "echo hi"}, Env: []string{"PATH=/bin"}, Cwd: "/tmp",
		User:            rspec.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{7}, Umask: &umask},
		Capabilities:    &rspec.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}},
		NoNewPrivileges: true, OOMScoreAdj: &oom,
		Rlimits: []rspec.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20}},
	}
	r := fastExecRequest(p, []byte{1, 2, 3, 4, 5, 6, 7, 8}, 0, 1, "/")
	if r == nil {
		t.Fatal("a plain process was refused")
	}
	b := r.Encode()
	if n := binary.LittleEndian.Uint32(b); int(n) != len(b)-4 {
		t.Fatalf("length header %d for %d bytes", n, len(b)-4)
	}
	recs := strings.Split(strings.TrimSuffix(string(b[4:]), "\x00"), "\x00")
	for _, want := range []string{"uid=1000", "gid=1001", "group=7", "umask=18", "bounding=20", "effective=20",
		"nnp=1", "seccomp=0102030405060708", "cwd=/tmp", "preserve=1", "rlimit=7,10,20",
		"arg=sh", "arg=-c", "arg=echo hi", "env=PATH=/bin", "env=HOME=/"} {
		found := false
		for _, r := range recs {
			found = found || r == want
		}
		if !found {
			t.Errorf("request lacks %q: %q", want, recs)
		}
	}
	for _, r := range recs {
		if strings.HasPrefix(r, "oom=") {
			t.Errorf("request carries %q: the parent writes oom_score_adj", r)
		}
	}
	for name, mutate := range map[string]func(q *rspec.Process){
		"terminal":       func(q *rspec.Process) { q.Terminal = true },
		"apparmor":       func(q *rspec.Process) { q.ApparmorProfile = "x" },
		"selinux":        func(q *rspec.Process) { q.SelinuxLabel = "x" },
		"unknown rlimit": func(q *rspec.Process) { q.Rlimits = []rspec.POSIXRlimit{{Type: "RLIMIT_NOPE"}} },
		"NUL in an arg":  func(q *rspec.Process) { q.Args = []string{"a\x00b"} },
		"no args":        func(q *rspec.Process) { q.Args = nil },
	} {
		q := *p
		mutate(&q)
		if fastExecRequest(&q, nil, 0, 0, "/") != nil {
			t.Errorf("%s: took the fast path; the Go init must handle (or refuse) it", name)
		}
	}
	// An unknown capability is granted nothing on either path (husk warned about it, as runc).
	q := *p
	caps := *p.Capabilities
	caps.Bounding = append(append([]string(nil), caps.Bounding...), "CAP_NOPE")
	caps.Ambient = append(append([]string(nil), caps.Ambient...), "CAP_NOPE")
	q.Capabilities = &caps
	if got, want := fastExecRequest(&q, nil, 0, 0, "/").Encode(), fastExecRequest(p, nil, 0, 0, "/").Encode(); !bytes.Equal(got, want) {
		t.Errorf("an unknown capability changed the request:\n%q\n%q", got, want)
	}
}
