package specs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The process attributes runc 1.2+ applies: the scheduler, the I/O priority, the CPU affinity
// of exec'd processes, the personality and the NUMA memory policy. They are parsed here, so a
// bad value fails before anything is made, and applied by the init.

var schedPolicies = map[rspec.LinuxSchedulerPolicy]uint32{
	rspec.SchedOther: 0, rspec.SchedFIFO: 1, rspec.SchedRR: 2, rspec.SchedBatch: 3,
	rspec.SchedISO: 4, rspec.SchedIdle: 5, rspec.SchedDeadline: 6,
}

var schedFlags = map[rspec.LinuxSchedulerFlag]uint64{
	rspec.SchedFlagResetOnFork: unix.SCHED_FLAG_RESET_ON_FORK, rspec.SchedFlagReclaim: unix.SCHED_FLAG_RECLAIM,
	rspec.SchedFlagDLOverrun: unix.SCHED_FLAG_DL_OVERRUN, rspec.SchedFlagKeepPolicy: unix.SCHED_FLAG_KEEP_POLICY,
	rspec.SchedFlagKeepParams: unix.SCHED_FLAG_KEEP_PARAMS, rspec.SchedFlagUtilClampMin: unix.SCHED_FLAG_UTIL_CLAMP_MIN,
	rspec.SchedFlagUtilClampMax: unix.SCHED_FLAG_UTIL_CLAMP_MAX,
}

// SchedAttr converts process.scheduler into sched_setattr(2)'s argument.
func SchedAttr(s *rspec.Scheduler) (*unix.SchedAttr, error) {
	policy, ok := schedPolicies[s.Policy]
	if !ok {
		return nil, fmt.Errorf("process.scheduler.policy: unknown policy %q", s.Policy)
	}
	attr := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: policy, Nice: s.Nice, Priority: uint32(s.Priority),
		Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period}
	for _, f := range s.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return nil, fmt.Errorf("process.scheduler.flags: unknown flag %q", f)
		}
		attr.Flags |= v
	}
	if s.Nice < -20 || s.Nice > 19 {
		return nil, fmt.Errorf("process.scheduler.nice %d is outside -20..19", s.Nice)
	}
	if s.Priority < 0 {
		return nil, fmt.Errorf("process.scheduler.priority %d is negative", s.Priority)
	}
	return attr, nil
}

var ioprioClasses = map[rspec.IOPriorityClass]int{
	rspec.IOPRIO_CLASS_RT: 1, rspec.IOPRIO_CLASS_BE: 2, rspec.IOPRIO_CLASS_IDLE: 3,
}

// IOPrio converts process.ioPriority into ioprio_set(2)'s value.
func IOPrio(p *rspec.LinuxIOPriority) (int, error) {
	class, ok := ioprioClasses[p.Class]
	if !ok {
		return 0, fmt.Errorf("process.ioPriority.class: unknown class %q", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return 0, fmt.Errorf("process.ioPriority.priority %d is outside 0..7", p.Priority)
	}
	return class<<13 | p.Priority, nil
}

// CPUList parses a list like "0-3,7" (for process.execCPUAffinity) into a CPU set.
func CPUList(field, s string) (*unix.CPUSet, error) {
	var set unix.CPUSet
	set.Zero()
	bits, err := parseList(s, 1024)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", field, s, err)
	}
	for _, b := range bits {
		set.Set(b)
	}
	return &set, nil
}

// parseList parses "0-3,7" into its members, each below max.
func parseList(s string, max int) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("bad list member %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("bad list member %q", part)
			}
		}
		if a < 0 || b < a || b >= max {
			return nil, fmt.Errorf("bad list member %q (members are 0-%d)", part, max-1)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

var personalityDomains = map[rspec.LinuxPersonalityDomain]uintptr{
	rspec.PerLinux: 0x0000, rspec.PerLinux32: 0x0008,
}

// Personality converts linux.personality into personality(2)'s argument.
func Personality(p *rspec.LinuxPersonality) (uintptr, error) {
	v, ok := personalityDomains[p.Domain]
	if !ok {
		return 0, fmt.Errorf("linux.personality.domain: unknown domain %q", p.Domain)
	}
	if len(p.Flags) > 0 {
		return 0, fmt.Errorf("linux.personality.flags: unknown flag %q (none are defined)", p.Flags[0])
	}
	return v, nil
}

var mempolModes = map[rspec.MemoryPolicyModeType]int{
	rspec.MpolDefault: unix.MPOL_DEFAULT, rspec.MpolBind: unix.MPOL_BIND, rspec.MpolInterleave: unix.MPOL_INTERLEAVE,
	rspec.MpolWeightedInterleave: unix.MPOL_WEIGHTED_INTERLEAVE, rspec.MpolPreferred: unix.MPOL_PREFERRED,
	rspec.MpolPreferredMany: unix.MPOL_PREFERRED_MANY, rspec.MpolLocal: unix.MPOL_LOCAL,
}

var mempolFlags = map[rspec.MemoryPolicyFlagType]int{
	rspec.MpolFNumaBalancing: unix.MPOL_F_NUMA_BALANCING, rspec.MpolFRelativeNodes: unix.MPOL_F_RELATIVE_NODES,
	rspec.MpolFStaticNodes: unix.MPOL_F_STATIC_NODES,
}

// maxNumaNodes bounds the node mask husk builds (the kernel's MAX_NUMNODES is at most 1024).
const maxNumaNodes = 1024

// MemPolicy converts linux.memoryPolicy into set_mempolicy(2)'s mode and node mask.
func MemPolicy(p *rspec.LinuxMemoryPolicy) (mode int, mask []uint64, err error) {
	m, ok := mempolModes[p.Mode]
	if !ok {
		return 0, nil, fmt.Errorf("linux.memoryPolicy.mode: unknown mode %q", p.Mode)
	}
	for _, f := range p.Flags {
		v, ok := mempolFlags[f]
		if !ok {
			return 0, nil, fmt.Errorf("linux.memoryPolicy.flags: unknown flag %q", f)
		}
		m |= v
	}
	if p.Nodes == "" {
		if p.Mode != rspec.MpolDefault && p.Mode != rspec.MpolLocal {
			return 0, nil, fmt.Errorf("linux.memoryPolicy.nodes: mode %q needs nodes", p.Mode)
		}
		return m, nil, nil
	}
	nodes, err := parseList(p.Nodes, maxNumaNodes)
	if err != nil {
		return 0, nil, fmt.Errorf("linux.memoryPolicy.nodes %q: %w", p.Nodes, err)
	}
	mask = make([]uint64, maxNumaNodes/64)
	for _, n := range nodes {
		mask[n/64] |= 1 << (uint(n) % 64)
	}
	return m, mask, nil
}

// MemoryPolicyModes and MemoryPolicyFlags list what `husk features` reports.
func MemoryPolicyModes() []string { return sortedKeys(mempolModes) }

// MemoryPolicyFlags lists the memory policy flags husk knows.
func MemoryPolicyFlags() []string { return sortedKeys(mempolFlags) }

func sortedKeys[K ~string, V any](m map[K]V) []string {
	var out []string
	for k := range m {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}

// validateProcessAttrs checks the process attributes above.
func validateProcessAttrs(p *rspec.Process) error {
	if p.Scheduler != nil {
		if _, err := SchedAttr(p.Scheduler); err != nil {
			return err
		}
	}
	if p.IOPriority != nil {
		if _, err := IOPrio(p.IOPriority); err != nil {
			return err
		}
	}
	if a := p.ExecCPUAffinity; a != nil {
		if a.Initial != "" {
			if _, err := CPUList("process.execCPUAffinity.initial", a.Initial); err != nil {
				return err
			}
		}
		if a.Final != "" {
			if _, err := CPUList("process.execCPUAffinity.final", a.Final); err != nil {
				return err
			}
		}
	}
	return nil
}
