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

// TestUnifiedProperties: unified keys with a unit property become it (runc's
// unifiedResToSystemdProps), so a daemon-reload does not reset them; bad values fail.
func TestUnifiedProperties(t *testing.T) {
	v252 := func() int { return 252 }
	props, err := unifiedProperties(map[string]string{
		"memory.high": "104857600", "memory.min": "1048576", "memory.low": "max", "memory.max": " 209715200 ",
		"memory.swap.max": "0", "cpu.weight": "50", "cpu.max": "25000 50000", "pids.max": "0",
		"cpuset.cpus": "0-1", "io.weight": "default 80",
	}, v252)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range props {
		got[p.Name] = p.Value.String()
	}
	want := map[string]string{
		"MemoryHigh": "@t 104857600", "MemoryMin": "@t 1048576", "MemoryLow": "@t 18446744073709551615",
		"MemoryMax": "@t 209715200", "MemorySwapMax": "@t 0", "CPUWeight": "@t 50",
		"CPUQuotaPeriodUSec": "@t 50000", "CPUQuotaPerSecUSec": "@t 500000", "TasksMax": "@t 1",
		"AllowedCPUs": "@ay [0x3]",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("properties %v, want only %v (io.weight has none)", got, want)
	}
	// cpu.idle=1 is CPUWeight=0 on systemd 252+, and a cpu.weight beside it gives way.
	props, _ = unifiedProperties(map[string]string{"cpu.idle": "1", "cpu.weight": "50"}, v252)
	if len(props) != 1 || props[0].Name != "CPUWeight" || props[0].Value.String() != "@t 0" {
		t.Errorf("cpu.idle=1: %v", props)
	}
	for _, bad := range []map[string]string{{"memory.max": "lots"}, {"cpu.max": "1 2 3"}, {"cpu.max": "max 0"}, {"pids.max": "-1"}, {"cpuset.cpus": "2-1"}} {
		if _, err := unifiedProperties(bad, v252); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
