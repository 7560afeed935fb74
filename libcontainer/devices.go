//go:build !huskinit

package libcontainer

import (
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules are appended to the spec's device cgroup rules, as runc does, so the
// standard nodes husk creates (and ptys) work even under a deny-all rule.
var defaultDeviceRules = []rspec.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Access: "m"},
	{Allow: true, Type: "b", Access: "m"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},    // null
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},    // zero
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"},    // full
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"},    // random
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"},    // urandom
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"},    // tty
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(1), Access: "rwm"},    // console
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"},    // ptmx
	{Allow: true, Type: "c", Major: i64(136), Minor: nil, Access: "rwm"},     // pts/*
	{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"}, // net/tun
}

// cgroupResources is the spec's resources with the device rules the container needs appended.
func cgroupResources(s *rspec.Spec) *rspec.LinuxResources {
	var res rspec.LinuxResources
	if s.Linux.Resources != nil {
		res = *s.Linux.Resources
	}
	res.Devices = append(append([]rspec.LinuxDeviceCgroup(nil), res.Devices...), defaultDeviceRules...)
	for _, d := range s.Linux.Devices {
		major, minor := d.Major, d.Minor
		res.Devices = append(res.Devices, rspec.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: "rwm"})
	}
	return &res
}
