package specs

import (
	"errors"
	"fmt"
	"math/bits"
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
	words, err := parseList(s, 1024)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", field, s, err)
	}
	for i, w := range words {
		for b := 0; b < 64; b++ {
			if w&(1<<b) != 0 {
				set.Set(i*64 + b)
			}
		}
	}
	return &set, nil
}

// parseList parses "0-3,7" into a bitmap of max bits (a multiple of 64), refusing members at
// or above max. The bitmap is the only allocation: a config repeating "0-1023" a hundred
// thousand times costs time proportional to its size, never memory (husk once expanded every
// range member by member into a list: 2 GB for a 563 KB config).
func parseList(s string, max int) ([]uint64, error) {
	words := make([]uint64, (max+63)/64)
	any := false
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad list member %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
				return nil, fmt.Errorf("bad list member %q", part)
			}
		}
		if b < a || b >= uint64(max) {
			return nil, fmt.Errorf("bad list member %q (members are 0-%d)", part, max-1)
		}
		for i := a; i <= b; {
			if i%64 == 0 && b-i >= 63 {
				words[i/64] = ^uint64(0) // a whole word at once
				i += 64
				continue
			}
			words[i/64] |= 1 << (i % 64)
			i++
		}
		any = true
	}
	if !any {
		return nil, fmt.Errorf("empty list")
	}
	return words, nil
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
		return 0, nil, fmt.Errorf("linux.memoryPolicy: invalid memory policy mode %q", p.Mode)
	}
	for _, f := range p.Flags {
		v, ok := mempolFlags[f]
		if !ok {
			return 0, nil, fmt.Errorf("linux.memoryPolicy: invalid memory policy flag %q", f)
		}
		m |= v
	}
	count := 0
	if p.Nodes != "" {
		if mask, err = parseList(p.Nodes, maxNumaNodes); err != nil {
			return 0, nil, fmt.Errorf("linux.memoryPolicy: invalid memory policy nodes %q: %w", p.Nodes, err)
		}
		for _, w := range mask {
			count += bits.OnesCount64(w)
		}
	}
	// runc 1.5's rules: default and local take no node, preferred zero or more (none means
	// local allocation), the others at least one.
	switch p.Mode {
	case rspec.MpolDefault, rspec.MpolLocal:
		if count != 0 {
			return 0, nil, fmt.Errorf("linux.memoryPolicy: memory policy mode requires 0 nodes but got %d", count)
		}
	case rspec.MpolPreferred:
	default:
		if count == 0 {
			return 0, nil, errors.New("linux.memoryPolicy: memory policy mode requires at least one node but got 0")
		}
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
