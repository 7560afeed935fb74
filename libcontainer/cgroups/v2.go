package cgroups

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// mkdirV2 creates the container's cgroup2 directory, enabling every available controller in
// each ancestor's subtree_control on the way, as runc does, so the leaf has them all.
func (m *Manager) mkdirV2() error {
	dir := mountRoot
	parts := strings.Split(strings.Trim(m.paths[""], "/"), "/")
	for _, part := range parts {
		if err := enableControllers(dir); err != nil {
			return err
		}
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
	}
	return nil
}

func enableControllers(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	have, _ := readFile(dir, "cgroup.subtree_control")
	var want []string
	for _, c := range strings.Fields(avail) {
		if !hasField(have, c) {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	file := filepath.Join(dir, "cgroup.subtree_control")
	if writeExisting(file, []byte(strings.Join(want, " "))) == nil {
		return nil
	}
	// One controller the kernel refuses here (cpu with realtime tasks about) must not cost the
	// others.
	for _, c := range want {
		_ = writeExisting(file, []byte(c))
	}
	return nil
}

func hasField(list, f string) bool {
	for _, x := range strings.Fields(list) {
		if x == f {
			return true
		}
	}
	return false
}

// setV2 writes resources into the container's cgroup2 directory, mapping the v1-shaped spec
// fields the way runc, crun and containerd do.
func (m *Manager) setV2(res *rspec.LinuxResources) error {
	if res == nil {
		return nil
	}
	d := m.v2Dir()
	if c := res.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			if err := write(d, "cpu.weight", strconv.FormatUint(CPUWeight(*c.Shares), 10), "cpu.shares"); err != nil {
				return err
			}
		}
		if (c.Quota != nil && *c.Quota != 0) || (c.Period != nil && *c.Period != 0) {
			// "quota" alone keeps the current period; "max" lifts the quota.
			v := "max"
			if c.Quota != nil && *c.Quota > 0 {
				v = strconv.FormatInt(*c.Quota, 10)
			} else if c.Quota == nil || *c.Quota == 0 {
				cur, _ := readFile(d, "cpu.max")
				if f := strings.Fields(cur); len(f) == 2 {
					v = f[0]
				}
			}
			if c.Period != nil && *c.Period != 0 {
				v += " " + strconv.FormatUint(*c.Period, 10)
			}
			if err := write(d, "cpu.max", v, "cpu.quota/period"); err != nil {
				return err
			}
		}
		if c.Burst != nil {
			if err := write(d, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10), "cpu.burst"); err != nil {
				return err
			}
		}
		if c.Idle != nil {
			if err := write(d, "cpu.idle", strconv.FormatInt(*c.Idle, 10), "cpu.idle"); err != nil {
				return err
			}
		}
		if err := writeCpuset(d, c); err != nil {
			return err
		}
	}
	if mem := res.Memory; mem != nil {
		var limit, swap int64
		if mem.Limit != nil {
			limit = *mem.Limit
		}
		if mem.Swap != nil {
			swap = *mem.Swap
		}
		swapMax, err := swapV2(limit, swap)
		if err != nil {
			return err
		}
		if swapMax != "" {
			if err := write(d, "memory.swap.max", swapMax, "memory.swap"); err != nil {
				return err
			}
		}
		if limit != 0 {
			if err := write(d, "memory.max", maxOr(limit), "memory.limit"); err != nil {
				return err
			}
		}
		if mem.Reservation != nil && *mem.Reservation != 0 {
			if err := write(d, "memory.low", maxOr(*mem.Reservation), "memory.reservation"); err != nil {
				return err
			}
		}
	}
	if p := res.Pids; p != nil && p.Limit != nil {
		if err := write(d, "pids.max", pidsMax(*p.Limit), "pids.limit"); err != nil {
			return err
		}
	}
	if b := res.BlockIO; b != nil {
		if err := setV2IO(d, b); err != nil {
			return err
		}
	}
	for i, l := range res.HugepageLimits {
		if err := write(d, "hugetlb."+l.Pagesize+".max", strconv.FormatUint(l.Limit, 10), fmt.Sprintf("hugepageLimits[%d] (%s)", i, l.Pagesize)); err != nil {
			return err
		}
	}
	for dev, l := range res.Rdma {
		if err := write(d, "rdma.max", rdmaLine(dev, l), "rdma"); err != nil {
			return err
		}
	}
	if len(res.Devices) > 0 {
		if err := setDeviceFilter(d, res.Devices); err != nil {
			return fmt.Errorf("linux.resources.devices: %w", err)
		}
	}
	for k, v := range res.Unified {
		if k == "" || strings.ContainsAny(k, "/\x00") || strings.HasPrefix(k, ".") {
			return fmt.Errorf("linux.resources.unified: invalid key %q", k)
		}
		if err := writeExisting(filepath.Join(d, k), []byte(v)); err != nil {
			return fmt.Errorf("linux.resources.unified[%q]: %w", k, err)
		}
	}
	return nil
}

func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// swapV2 turns the spec's memory+swap limit into cgroup2's swap-only memory.swap.max ("" to
// leave it alone).
func swapV2(limit, swap int64) (string, error) {
	switch {
	case limit == -1 && swap == 0:
		// As runc 1.2.1+: unlimited memory with swap unset means both unlimited, as on v1.
		return "max", nil
	case swap == 0:
		return "", nil
	case swap == -1:
		return "max", nil
	case limit == -1:
		// Unlimited memory: memory plus swap is swap alone (runc 1.2.1+).
		return strconv.FormatInt(swap, 10), nil
	case limit <= 0:
		return "", errors.New("linux.resources.memory.swap: a swap limit needs a memory limit on cgroup v2")
	case swap < limit:
		return "", fmt.Errorf("linux.resources.memory.swap: %d is below the memory limit %d (it counts memory plus swap)", swap, limit)
	}
	return strconv.FormatInt(swap-limit, 10), nil
}

// CPUWeight maps v1 cpu.shares to cgroup2 cpu.weight with the curve current runc, crun and
// containerd share: 2 -> 1, 1024 -> 100, 262144 -> 10000.
func CPUWeight(shares uint64) uint64 {
	switch {
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	return uint64(math.Ceil(math.Pow(10, (l*l+125*l)/612.0-7.0/34.0)))
}

func setV2IO(d string, b *rspec.LinuxBlockIO) error {
	_, err := os.Stat(filepath.Join(d, "io.bfq.weight"))
	bfq := err == nil
	if b.Weight != nil && *b.Weight != 0 {
		file, v := "io.weight", "default "+strconv.FormatUint(1+(uint64(*b.Weight)-10)*9999/990, 10)
		if bfq {
			file, v = "io.bfq.weight", "default "+strconv.Itoa(int(*b.Weight))
		}
		if err := write(d, file, v, "blockIO.weight"); err != nil {
			return err
		}
	}
	for i, w := range b.WeightDevice {
		if w.Weight == nil {
			continue
		}
		file, v := "io.weight", uint64(*w.Weight)
		if bfq {
			file = "io.bfq.weight"
		} else {
			v = 1 + (v-10)*9999/990
		}
		line := fmt.Sprintf("%d:%d %d", w.Major, w.Minor, v)
		if err := write(d, file, line, fmt.Sprintf("blockIO.weightDevice[%d]", i)); err != nil {
			return err
		}
	}
	for _, t := range throttleLists(b) {
		for i, td := range t.devs {
			rate := strconv.FormatUint(td.Rate, 10)
			if td.Rate == 0 {
				rate = "max"
			}
			line := fmt.Sprintf("%d:%d %s=%s", td.Major, td.Minor, t.v2Key, rate)
			if err := write(d, "io.max", line, fmt.Sprintf("blockIO.%s[%d]", t.field, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
