package goinit

import (
	"encoding/json"
	"reflect"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/specs"
)

// The init decodes only part of the spec: everything it reads must survive, and what it drops
// is exactly the parent's business (cgroups, other operating systems).
func TestInitDecodesWhatTheInitReads(t *testing.T) {
	s := specs.Default()
	s.Hostname, s.Domainname = "h", "d"
	s.Annotations = map[string]string{"a": "b"}
	s.Hooks = &rspec.Hooks{
		CreateContainer: []rspec.Hook{{Path: "/bin/true", Args: []string{"true"}, Env: []string{"A=1"}}},
		StartContainer:  []rspec.Hook{{Path: "/bin/false"}},
		Poststop:        []rspec.Hook{{Path: "/bin/echo"}},
	}
	s.Linux.UIDMappings = []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 10}}
	s.Linux.GIDMappings = []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 2000, Size: 10}}
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	s.Linux.Devices = []rspec.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	s.Linux.Seccomp = &rspec.LinuxSeccomp{DefaultAction: rspec.ActAllow, Syscalls: []rspec.LinuxSyscall{{Names: []string{"mkdir"}, Action: rspec.ActErrno}}}
	s.Linux.RootfsPropagation = "rslave"
	s.Linux.TimeOffsets = map[string]rspec.LinuxTimeOffset{"monotonic": {Secs: 5}}
	// Dropped by the init: the parent applies them.
	limit := int64(10)
	s.Linux.Resources = &rspec.LinuxResources{Pids: &rspec.LinuxPids{Limit: &limit}}
	s.Linux.CgroupsPath = "/x"
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &initConfig{InitConfig: initproto.InitConfig{RawSpec: raw}}
	if err := decodeSpec(cfg); err != nil {
		t.Fatal(err)
	}
	var want rspec.Spec
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	want.Version = ""
	want.Linux.Resources, want.Linux.CgroupsPath = nil, ""
	if !reflect.DeepEqual(cfg.Spec, &want) {
		got, _ := json.Marshal(cfg.Spec)
		exp, _ := json.Marshal(&want)
		t.Fatalf("init's spec differs from the full decode:\n got %s\nwant %s", got, exp)
	}
}
