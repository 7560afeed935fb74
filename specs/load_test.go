package specs

import (
	"encoding/json"
	"reflect"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// Parse keeps every section husk reads and drops only the other operating systems'.
func TestParseKeepsTheLinuxSpec(t *testing.T) {
	s := Default()
	s.Hostname, s.Domainname = "h", "d"
	s.Annotations = map[string]string{"a": "b"}
	s.Hooks = &rspec.Hooks{CreateRuntime: []rspec.Hook{{Path: "/bin/true"}}}
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	s.Windows = &rspec.Windows{LayerFolders: []string{`C:\x`}}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var want rspec.Spec
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	want.Windows = nil
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("Parse lost part of the spec:\n got %+v\nwant %+v", got, &want)
	}
}
