package sdbus

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	sd "github.com/coreos/go-systemd/v22/dbus"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/libcontainer/cgroups/systemd"
)

// infinity is systemd's "no limit" for byte, task and time properties.
const infinity = uint64(math.MaxUint64)

// resourceProperties maps the container's resources to unit properties the way runc's
// driver does (v2 names on a unified host, v1 names on a v1 or hybrid one). What has no
// property is left to the cgroup files, which the cgroupfs driver writes after.
func resourceProperties(c *sd.Conn, u *systemd.Unit, res *rspec.LinuxResources) ([]sd.Property, error) {
	if res == nil {
		return nil, nil
	}
	var props []sd.Property
	add := func(name string, v any) { props = append(props, newProp(name, v)) }
	version := -1
	systemdVersion := func() int {
		if version < 0 {
			version = 0
			if s, err := c.GetManagerProperty("Version"); err == nil {
				s = strings.Trim(s, "\"")
				end := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
				if end < 0 {
					end = len(s)
				}
				version, _ = strconv.Atoi(s[:end])
			}
		}
		return version
	}
	limit := func(v int64) uint64 {
		if v < 0 {
			return infinity
		}
		return uint64(v)
	}
	if m := res.Memory; m != nil {
		if m.Limit != nil && *m.Limit != 0 {
			if u.V1 {
				add("MemoryLimit", limit(*m.Limit))
			} else {
				add("MemoryMax", limit(*m.Limit))
			}
		}
		if m.Reservation != nil && *m.Reservation != 0 && !u.V1 {
			add("MemoryLow", limit(*m.Reservation))
		}
		unlimited := m.Limit != nil && *m.Limit == -1
		if !u.V1 && unlimited && (m.Swap == nil || *m.Swap == 0) {
			add("MemorySwapMax", infinity) // as the cgroupfs driver: both unlimited (runc 1.2.1)
		}
		if m.Swap != nil && *m.Swap != 0 && !u.V1 {
			// The spec's swap is memory+swap; cgroup v2's is swap alone.
			switch {
			case *m.Swap < 0:
				add("MemorySwapMax", infinity)
			case unlimited:
				add("MemorySwapMax", uint64(*m.Swap))
			case m.Limit != nil && *m.Limit > 0:
				if *m.Swap < *m.Limit {
					return nil, fmt.Errorf("linux.resources.memory.swap %d is below the memory limit %d", *m.Swap, *m.Limit)
				}
				add("MemorySwapMax", uint64(*m.Swap-*m.Limit))
			}
		}
	}
	if p := res.Pids; p != nil && p.Limit != nil {
		// 0 means 1, as pids.max (cgroups.pidsMax): systemd takes no TasksMax=0.
		v := *p.Limit
		if v == 0 {
			v = 1
		}
		add("TasksMax", limit(v))
	}
	if cpu := res.CPU; cpu != nil {
		if cpu.Shares != nil && *cpu.Shares != 0 {
			if u.V1 {
				add("CPUShares", *cpu.Shares)
			} else {
				add("CPUWeight", 1+((*cpu.Shares-2)*9999)/262142)
			}
		}
		var quota int64
		var period uint64
		if cpu.Quota != nil {
			quota = *cpu.Quota
		}
		if cpu.Period != nil {
			period = *cpu.Period
		}
		if period != 0 && systemdVersion() >= 242 {
			add("CPUQuotaPeriodUSec", period)
		}
		if quota != 0 || period != 0 {
			perSec := infinity
			if quota > 0 {
				if period == 0 {
					period = 100000
				}
				perSec = quotaPerSec(uint64(quota), period)
			}
			add("CPUQuotaPerSecUSec", perSec)
		}
		if (cpu.Cpus != "" || cpu.Mems != "") && systemdVersion() >= 244 {
			if cpu.Cpus != "" {
				b, err := rangeToBits(cpu.Cpus)
				if err != nil {
					return nil, fmt.Errorf("linux.resources.cpu.cpus %q: %w", cpu.Cpus, err)
				}
				add("AllowedCPUs", b)
			}
			if cpu.Mems != "" {
				b, err := rangeToBits(cpu.Mems)
				if err != nil {
					return nil, fmt.Errorf("linux.resources.cpu.mems %q: %w", cpu.Mems, err)
				}
				add("AllowedMemoryNodes", b)
			}
		}
	}
	if b := res.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 {
		if u.V1 {
			add("BlockIOWeight", uint64(*b.Weight))
		} else {
			add("IOWeight", 1+(uint64(*b.Weight)-10)*9999/990)
		}
	}
	if res.Devices != nil {
		props = append(props, deviceProperties(res.Devices)...)
	}
	if len(res.Unified) > 0 && !u.V1 {
		unified, err := unifiedProperties(res.Unified, systemdVersion)
		if err != nil {
			return nil, err
		}
		props = append(props, unified...) // last: as runc's, they win over the fields above
	}
	return props, nil
}

// unifiedProperties maps the linux.resources.unified keys that have a unit property to it, as
// runc's unifiedResToSystemdProps does: set only in the cgroup files, they would be reset to
// the unit's values at the next daemon-reload. The other keys stay with the files.
func unifiedProperties(unified map[string]string, systemdVersion func() int) ([]sd.Property, error) {
	var props []sd.Property
	add := func(name string, v any) { props = append(props, newProp(name, v)) }
	number := func(k, v string) (uint64, error) {
		if v == "max" {
			return infinity, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("linux.resources.unified[%q]: %q is not a number or max", k, v)
		}
		return n, nil
	}
	idle := strings.TrimSpace(unified["cpu.idle"]) == "1" && systemdVersion() >= 252
	for k, v := range unified {
		v = strings.TrimSpace(v)
		switch k {
		case "cpu.idle":
			if idle {
				add("CPUWeight", uint64(0)) // systemd's way to set cpu.idle
			}
		case "cpu.weight":
			if idle {
				continue // CPUWeight=0 stands for cpu.idle=1 (runc ignores the weight too)
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("linux.resources.unified[%q]: %q is not a number", k, v)
			}
			add("CPUWeight", n)
		case "cpu.max":
			f := strings.Fields(v)
			if len(f) < 1 || len(f) > 2 {
				return nil, fmt.Errorf("linux.resources.unified[%q]: %q is not \"quota [period]\"", k, v)
			}
			period := uint64(100000)
			if len(f) == 2 {
				p, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil || p == 0 {
					return nil, fmt.Errorf("linux.resources.unified[%q]: period %q is not a positive number", k, f[1])
				}
				period = p
			}
			perSec := infinity
			if f[0] != "max" {
				q, err := strconv.ParseUint(f[0], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("linux.resources.unified[%q]: quota %q is not a number or max", k, f[0])
				}
				perSec = quotaPerSec(q, period)
			}
			if systemdVersion() >= 242 {
				add("CPUQuotaPeriodUSec", period)
			}
			add("CPUQuotaPerSecUSec", perSec)
		case "cpuset.cpus", "cpuset.mems":
			b, err := rangeToBits(v)
			if err != nil {
				return nil, fmt.Errorf("linux.resources.unified[%q] %q: %w", k, v, err)
			}
			if systemdVersion() >= 244 {
				add(map[string]string{"cpuset.cpus": "AllowedCPUs", "cpuset.mems": "AllowedMemoryNodes"}[k], b)
			}
		case "memory.high", "memory.low", "memory.min", "memory.max", "memory.swap.max":
			n, err := number(k, v)
			if err != nil {
				return nil, err
			}
			add(map[string]string{"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
				"memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax"}[k], n)
		case "pids.max":
			n, err := number(k, v)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				n = 1 // systemd takes no TasksMax=0
			}
			add("TasksMax", n)
		}
	}
	return props, nil
}

// quotaPerSec is CPUQuotaPerSecUSec for a quota per period (µs): systemd keeps the quota in
// whole percent of a CPU, so round up to 10 ms a second, so that the file the cgroupfs driver
// writes after is not above it.
func quotaPerSec(quota, period uint64) uint64 {
	perSec := quota * 1000000 / period
	if perSec%10000 != 0 {
		perSec = (perSec/10000 + 1) * 10000
	}
	return perSec
}

// rangeToBits turns a cpuset list ("0-2,7") into systemd's byte mask, lowest CPUs first.
func rangeToBits(list string) ([]byte, error) {
	var bits []byte
	for _, part := range strings.Split(strings.TrimSpace(list), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bad item %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("bad range %q", part)
			}
		}
		for n := a; n <= b; n++ {
			for uint64(len(bits)) <= n/8 {
				bits = append(bits, 0)
			}
			bits[n/8] |= 1 << (n % 8)
		}
	}
	return bits, nil
}

// deviceProperties expresses the container's device rules as DevicePolicy and DeviceAllow.
// systemd keeps only an allow list: when the rules end in a deny list, or name a device group
// it has no name for, the unit gets no device restriction (DevicePolicy=auto, an empty
// DeviceAllow) and the rules husk writes itself (the cgroup's eBPF program or devices.deny)
// are what applies, rather than systemd narrowing them wrongly.
func deviceProperties(rules []rspec.LinuxDeviceCgroup) []sd.Property {
	open := []sd.Property{newProp("DevicePolicy", "auto"), newProp("DeviceAllow", []deviceAllow{})}
	defaultAllow := true
	var allowed []rspec.LinuxDeviceCgroup
	for _, r := range rules {
		all := (r.Type == "" || r.Type == "a") && r.Major == nil && r.Minor == nil
		if all && strings.Trim(r.Access, "rwm") == "" && (r.Access == "" || len(r.Access) == 3) {
			defaultAllow, allowed = r.Allow, nil
			continue
		}
		switch {
		case defaultAllow && r.Allow:
			// allowed already
		case defaultAllow:
			return open // a deny after allow-all: systemd cannot say it
		case r.Allow:
			allowed = append(allowed, r)
		}
		// A deny in an allow list may leave systemd's list wider than the rules, never
		// narrower: husk's own rules still deny it.
	}
	if defaultAllow {
		return open
	}
	var list []deviceAllow
	for _, r := range allowed {
		node, ok := deviceNode(r)
		if !ok {
			return open
		}
		perms := strings.Map(func(c rune) rune {
			if strings.ContainsRune("rwm", c) {
				return c
			}
			return -1
		}, r.Access)
		if perms == "" {
			perms = "rwm"
		}
		list = append(list, deviceAllow{node, perms})
	}
	return []sd.Property{newProp("DevicePolicy", "strict"), newProp("DeviceAllow", list)}
}

// deviceAllow is one DeviceAllow entry, D-Bus type (ss).
type deviceAllow struct {
	Path  string
	Perms string
}

// deviceNode names a rule's devices the way systemd's DeviceAllow takes them.
func deviceNode(r rspec.LinuxDeviceCgroup) (string, bool) {
	kind := map[string]string{"c": "char", "b": "block"}[r.Type]
	if kind == "" {
		return "", false
	}
	switch {
	case r.Major == nil:
		return kind + "-*", r.Minor == nil
	case r.Minor == nil:
		name := deviceGroup(r.Type, *r.Major)
		return kind + "-" + name, name != ""
	}
	return fmt.Sprintf("/dev/%s/%d:%d", kind, *r.Major, *r.Minor), true
}

// deviceGroup is the name /proc/devices gives a major number ("pts" for 136).
func deviceGroup(typ string, major int64) string {
	f, err := os.Open("/proc/devices")
	if err != nil {
		return ""
	}
	defer f.Close()
	section := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch line {
		case "Character devices:":
			section = "c"
			continue
		case "Block devices:":
			section = "b"
			continue
		}
		if section != typ {
			continue
		}
		if num, name, ok := strings.Cut(line, " "); ok && num == strconv.FormatInt(major, 10) {
			return strings.TrimSpace(name)
		}
	}
	return ""
}
