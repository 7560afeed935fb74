package libcontainer

import (
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRule is a device cgroup rule husk appends after the spec's own, with the path
// of the node it is for ("" for rules that cover no single node).
type defaultDeviceRule struct {
	path string
	rule rspec.LinuxDeviceCgroup
}

// defaultDeviceRules are runc's AllowedDevices: appended after linux.resources.devices so the
// standard nodes husk creates (and ptys) work even under a deny-all rule. A default whose path
// linux.devices redefines is left out, as runc does: the spec's node takes priority.
var defaultDeviceRules = []defaultDeviceRule{
	{"", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Access: "m"}},
	{"", rspec.LinuxDeviceCgroup{Allow: true, Type: "b", Access: "m"}},
	{"/dev/null", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}},
	{"/dev/random", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"}},
	{"/dev/full", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"}},
	{"/dev/tty", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"}},
	{"/dev/zero", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"}},
	{"/dev/urandom", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"}},
	{"", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(136), Access: "rwm"}},                 // /dev/pts/*
	{"", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"}},    // ptmx
	{"", rspec.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"}}, // net/tun
}

// cgroupResources is the spec's resources with the default device rules appended. Nodes in
// linux.devices get no rule of their own: creating a node is not permission to use it, and an
// allow rule appended after the spec's would override the spec's own deny (the container could
// write to a device the user denied, e.g. the host's /dev/kmsg).
func cgroupResources(s *rspec.Spec) *rspec.LinuxResources {
	var res rspec.LinuxResources
	if s.Linux.Resources != nil {
		res = *s.Linux.Resources
	}
	res.Devices = append([]rspec.LinuxDeviceCgroup(nil), res.Devices...)
next:
	for _, d := range defaultDeviceRules {
		if d.path != "" {
			for _, sd := range s.Linux.Devices {
				if sd.Path == d.path {
					continue next
				}
			}
		}
		res.Devices = append(res.Devices, d.rule)
	}
	return &res
}
