package sdbus

import (
	"bytes"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

func TestAnnotationProperties(t *testing.T) {
	props, err := annotationProperties(map[string]string{
		"TimeoutStopSec": "uint64 123",
		"CollectMode":    "'inactive-or-failed'",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, p := range props {
		got[p.Name] = p.Value.Value()
	}
	if got["TimeoutStopUSec"] != uint64(123000000) || got["CollectMode"] != "inactive-or-failed" || len(got) != 2 {
		t.Errorf("properties: %v", got)
	}
	for _, bad := range []map[string]string{
		{"CPUWeight": "uint64"},
		{"TimeoutStopSec": "'x'"},
	} {
		if _, err := annotationProperties(bad); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

func TestRangeToBits(t *testing.T) {
	b, err := rangeToBits("0-2,9")
	if err != nil || !bytes.Equal(b, []byte{0x07, 0x02}) {
		t.Errorf("0-2,9: %x %v", b, err)
	}
	if _, err := rangeToBits("3-1"); err == nil {
		t.Error("3-1 accepted")
	}
}

func TestDeviceProperties(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	policy := func(rules []rspec.LinuxDeviceCgroup) (string, []deviceAllow) {
		props := deviceProperties(rules)
		return props[0].Value.Value().(string), props[1].Value.Value().([]deviceAllow)
	}
	// runc's shape: deny all, then allow some.
	p, list := policy([]rspec.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(3), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(136), Access: "rwm"},
		{Allow: true, Type: "c", Access: "m"},
	})
	if p != "strict" || len(list) != 3 || list[0] != (deviceAllow{"/dev/char/1:3", "rwm"}) || list[1].Path != "char-pts" || list[2] != (deviceAllow{"char-*", "m"}) {
		t.Errorf("deny-all list: %s %v", p, list)
	}
	// Allow all: no restriction from systemd.
	if p, list := policy([]rspec.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}); p != "auto" || len(list) != 0 {
		t.Errorf("allow-all: %s %v", p, list)
	}
	// A deny after allow-all cannot be said to systemd: none, husk's own rules apply.
	if p, list := policy([]rspec.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, {Allow: false, Type: "c", Major: i(1), Minor: i(11), Access: "rwm"}}); p != "auto" || len(list) != 0 {
		t.Errorf("deny after allow-all: %s %v", p, list)
	}
}
