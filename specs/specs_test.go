package specs

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	mo, err := ParseMountOptions([]string{"rbind", "ro", "nosuid", "rw", "noexec", "rslave", "size=64k", "mode=755"})
	if err != nil {
		t.Fatal(err)
	}
	if !mo.Bind || !mo.Recursive {
		t.Errorf("rbind not parsed: %+v", mo)
	}
	if mo.Flags != unix.MS_NOSUID|unix.MS_NOEXEC {
		t.Errorf("flags = %#x: a later rw must clear an earlier ro", mo.Flags)
	}
	if len(mo.Propagation) != 1 || mo.Propagation[0] != unix.MS_SLAVE|unix.MS_REC {
		t.Errorf("propagation = %v", mo.Propagation)
	}
	if mo.Data != "size=64k,mode=755" {
		t.Errorf("data = %q", mo.Data)
	}
	if _, err := ParseMountOptions([]string{""}); err == nil {
		t.Error("empty option accepted")
	}
}

func TestParseReportsLine(t *testing.T) {
	_, err := Parse([]byte("{\n\"ociVersion\": \"1.0.0\",\n\"process\": {,}\n}"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want a line number", err)
	}
	_, err = Parse([]byte(`{"process": {"args": "sh"}}`))
	if err == nil || !strings.Contains(err.Error(), `"process.args"`) {
		t.Fatalf("err = %v, want the field name", err)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	bundle := t.TempDir()
	os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755)
	cases := map[string]func(s *rspec.Spec){
		"root.path":                func(s *rspec.Spec) { s.Root.Path = "missing" },
		"process.cwd":              func(s *rspec.Spec) { s.Process.Cwd = "rel" },
		"linux.namespaces[6].type": func(s *rspec.Spec) { s.Linux.Namespaces = append(s.Linux.Namespaces, rspec.LinuxNamespace{Type: "x"}) },
		"duplicate namespace": func(s *rspec.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, rspec.LinuxNamespace{Type: "pid"})
		},
		"mounts[0].destination": func(s *rspec.Spec) { s.Mounts[0].Destination = "proc" },
		"process.rlimits[0]": func(s *rspec.Spec) {
			s.Process.Rlimits = []rspec.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2, Hard: 1}}
		},
		"linux.uidMappings":       func(s *rspec.Spec) { s.Linux.UIDMappings = []rspec.LinuxIDMapping{{Size: 1}} },
		"hostname":                func(s *rspec.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] },
		"linux.rootfsPropagation": func(s *rspec.Spec) { s.Linux.RootfsPropagation = "sideways" },
		"linux.devices[0]":        func(s *rspec.Spec) { s.Linux.Devices = []rspec.LinuxDevice{{Path: "/dev/x", Type: "z"}} },
		"process.oomScoreAdj":     func(s *rspec.Spec) { v := 5000; s.Process.OOMScoreAdj = &v },
		"linux.gidMappings are requ": func(s *rspec.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, rspec.LinuxNamespace{Type: "user"})
		},
	}
	for want, mutate := range cases {
		s := Default()
		mutate(s)
		err := Validate(s, bundle)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
	if err := Validate(Default(), bundle); err != nil {
		t.Fatalf("default spec invalid: %v", err)
	}
}

func TestCapability(t *testing.T) {
	for name, want := range map[string]int{"CAP_KILL": 5, "kill": 5, "CAP_SYS_ADMIN": 21, "CAP_CHECKPOINT_RESTORE": 40} {
		if got, ok := Capability(name); !ok || got != want {
			t.Errorf("Capability(%q) = %d, %v", name, got, ok)
		}
	}
	if _, ok := Capability("CAP_NOPE"); ok {
		t.Error("unknown capability accepted")
	}
	caps := &rspec.LinuxCapabilities{Bounding: []string{"CAP_UNKNOWN", "CAP_KILL", "UNKNOWN_CAP"}, Ambient: []string{"CAP_UNKNOWN"}}
	if got := UnknownCapabilities(caps); strings.Join(got, " ") != "CAP_UNKNOWN UNKNOWN_CAP" {
		t.Errorf("UnknownCapabilities = %v", got)
	}
}

func TestRootlessSpec(t *testing.T) {
	s := Default()
	ToRootless(s, 1000, 1000)
	for _, n := range s.Linux.Namespaces {
		if n.Type == rspec.NetworkNamespace {
			t.Error("rootless spec keeps a network namespace")
		}
	}
	if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID != 1000 || s.Linux.Resources != nil {
		t.Errorf("rootless spec: %+v", s.Linux)
	}
}

// A small config must not cost a large heap: execCPUAffinity and memoryPolicy.nodes lists were
// expanded member by member into a slice (2.2 and 3.6 GB for a 563 KB config). Parsing now
// fills a fixed bitmap.
func TestCPUAndNodeListsAreBoundedInMemory(t *testing.T) {
	huge := strings.Repeat("0-1023,", 80000) // 560 KB
	measure := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	cpu := measure(func() {
		set, err := CPUList("process.execCPUAffinity.initial", huge)
		if err != nil || set.Count() != 1024 {
			t.Fatalf("CPUList: %v (%d CPUs)", err, set.Count())
		}
	})
	node := measure(func() {
		if _, _, err := MemPolicy(&rspec.LinuxMemoryPolicy{Mode: rspec.MpolBind, Nodes: huge}); err != nil {
			t.Fatal(err)
		}
	})
	// strings.SplitSeq allocates nothing per part; what is left is the bitmap and the errors.
	if cpu > 1<<20 || node > 1<<20 {
		t.Fatalf("a %d-byte list cost %d bytes (CPUs) and %d bytes (nodes) of heap", len(huge), cpu, node)
	}
	if _, err := CPUList("x", "0-9876543210"); err == nil {
		t.Fatal("a range past the largest CPU was accepted")
	}
}

// Memory policy nodes as runc 1.5 checks them, in its words (its memorypolicy.bats reads them).
func TestMemPolicyNodesLikeRunc15(t *testing.T) {
	for _, c := range []struct {
		p    rspec.LinuxMemoryPolicy
		want string // "" accepted
	}{
		{rspec.LinuxMemoryPolicy{Mode: rspec.MpolPreferred}, ""},
		{rspec.LinuxMemoryPolicy{Mode: rspec.MpolDefault}, ""},
		{rspec.LinuxMemoryPolicy{Mode: rspec.MpolDefault, Nodes: "0-7"}, "mode requires 0 nodes but got 8"},
		{rspec.LinuxMemoryPolicy{Mode: rspec.MpolBind}, "requires at least one node but got 0"},
		{rspec.LinuxMemoryPolicy{Mode: "INTERLEAVE", Nodes: "0"}, "invalid memory policy mode"},
		{rspec.LinuxMemoryPolicy{Nodes: "0-7"}, "invalid memory policy mode"},
		{rspec.LinuxMemoryPolicy{Mode: rspec.MpolPreferred, Nodes: "0", Flags: []rspec.MemoryPolicyFlagType{"badflag"}}, "invalid memory policy flag"},
		{rspec.LinuxMemoryPolicy{Mode: rspec.MpolBind, Nodes: "0-9876543210"}, "invalid memory policy node"},
	} {
		_, _, err := MemPolicy(&c.p)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.p, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: got %v, want %q", c.p, err, c.want)
		}
	}
}

func TestMountDataGetsTheMountLabel(t *testing.T) {
	for _, c := range []struct{ data, fstype, label, want string }{
		{"size=1m", "tmpfs", "l:s0", `size=1m,context="l:s0"`},
		{"", "devpts", "l:s0", `context="l:s0"`},
		{"size=1m", "tmpfs", "", "size=1m"},
		{"", "proc", "l:s0", ""},
		{"", "bind", "l:s0", ""},
	} {
		if got := MountData(c.data, c.fstype, c.label); got != c.want {
			t.Errorf("MountData(%q, %q, %q) = %q, want %q", c.data, c.fstype, c.label, got, c.want)
		}
	}
}
