package cgroups

import "testing"

func TestCPUWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 512: 59, 1024: 100, 262144: 10000, 1: 1, 1 << 20: 10000} {
		if got := CPUWeight(shares); got != want {
			t.Errorf("CPUWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestSwapV2(t *testing.T) {
	for _, tc := range []struct {
		limit, swap int64
		want        string
		bad         bool
	}{
		{0, 0, "", false},
		{100, -1, "max", false},
		{100, 100, "0", false},
		{100, 300, "200", false},
		{100, 50, "", true},
		{0, 300, "", true},
		{-1, 0, "max", false},   // runc 1.2.1: unlimited memory, swap unset
		{-1, 300, "300", false}, // unlimited memory: the swap value as it is
	} {
		got, err := swapV2(tc.limit, tc.swap)
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("swapV2(%d, %d) = %q, %v", tc.limit, tc.swap, got, err)
		}
	}
}

// Paths read back from a state file are checked as create checks a cgroupsPath: a tampered or
// corrupt file naming the root cgroup, or a path out of cgroupfs, is never acted on.
func TestPathsCheck(t *testing.T) {
	good := []Paths{nil, {"": "/husk/c1"}, {"cpu,cpuacct": "/kubepods/pod1/c1", "name=systemd": "/x", "": "/x"}}
	for _, p := range good {
		if err := p.Check(); err != nil {
			t.Errorf("%v: %v", p, err)
		}
	}
	bad := []Paths{{"": "/"}, {"pids": "/../../../tmp/victim"}, {"": "relative"}, {"": "/a/../b"}, {"": "/a/"}, {"../x": "/a"}, {"": ""}}
	for _, p := range bad {
		if err := p.Check(); err == nil {
			t.Errorf("%v: accepted", p)
		}
	}
}

func TestPidsMax(t *testing.T) {
	for limit, want := range map[int64]string{0: "1", -1: "max", 5: "5"} {
		if got := pidsMax(limit); got != want {
			t.Errorf("pidsMax(%d) = %q, want %q", limit, got, want)
		}
	}
}
