package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupFile reads a file of the container's v1 controller directory, found through the init's
// /proc/<pid>/cgroup as an admin would.
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && hasCtrl(parts[1], controller) {
			b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[1], parts[2], file))
			if err != nil {
				t.Fatalf("%s/%s: %v", controller, file, err)
			}
			return strings.TrimSpace(string(b))
		}
	}
	t.Skipf("no %s controller on this host", controller)
	return ""
}

func hasCtrl(list, c string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == c {
			return true
		}
	}
	return false
}

func TestResourcesAppliedAndUpdated(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	limit, pids, shares := int64(64<<20), int64(50), uint64(512)
	b.spec.Linux.Resources = &rspec.LinuxResources{
		Memory: &rspec.LinuxMemory{Limit: &limit},
		Pids:   &rspec.LinuxPids{Limit: &pids},
		CPU:    &rspec.LinuxCPU{Shares: &shares},
	}
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("memory.limit_in_bytes = %s", got)
	}
	if got := cgroupFile(t, pid, "pids", "pids.max"); got != "50" {
		t.Errorf("pids.max = %s", got)
	}
	if got := cgroupFile(t, pid, "cpu", "cpu.shares"); got != "512" {
		t.Errorf("cpu.shares = %s", got)
	}
	b.must(t, "update", "--memory", "33554432", "--pids-limit", "20", "--cpu-shares", "256", "--memory-reservation", "8388608", "--cpu-quota", "20000", "--cpu-period", "100000", id)
	if got := cgroupFile(t, pid, "memory", "memory.soft_limit_in_bytes"); got != "8388608" {
		t.Errorf("after update memory.soft_limit_in_bytes = %s", got)
	}
	if got := cgroupFile(t, pid, "cpu", "cpu.cfs_quota_us"); got != "20000" {
		t.Errorf("after update cpu.cfs_quota_us = %s", got)
	}
	assertOneLineError(t, b.husk(t, "update", "--blkio-weight", "5", id), "--blkio-weight")
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != "33554432" {
		t.Errorf("after update memory.limit_in_bytes = %s", got)
	}
	if got := cgroupFile(t, pid, "pids", "pids.max"); got != "20" {
		t.Errorf("after update pids.max = %s", got)
	}
	res := `{"memory": {"limit": 41943040}}`
	if r := runHusk(t, b.dir, b.root, []byte(res), "update", "--resources", "-", id); r.code != 0 {
		t.Errorf("update --resources -: %s", r)
	}
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != "41943040" {
		t.Errorf("after update --resources memory.limit_in_bytes = %s", got)
	}
	assertOneLineError(t, b.husk(t, "update", "--memory", "-5", id), "--memory")
	assertOneLineError(t, b.husk(t, "update", "--memory", "lots", id), "--memory")
	assertOneLineError(t, b.husk(t, "update", "--pids-limit", "-7", id), "--pids-limit")
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != "41943040" {
		t.Errorf("a rejected update changed memory.limit_in_bytes to %s", got)
	}
}

func TestPidsLimitStopsForkBomb(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	pids := int64(10)
	b.spec.Linux.Resources = &rspec.LinuxResources{Pids: &rspec.LinuxPids{Limit: &pids}}
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	// The bomb's shell dies when a fork is refused; what matters is what the cgroup allowed.
	b.husk(t, "exec", id, "sh", "-c", "for i in $(seq 1 100); do sleep 30 & done")
	var cur int
	fmt.Sscan(cgroupFile(t, pid, "pids", "pids.current"), &cur)
	if cur == 0 || cur > 10 {
		t.Errorf("pids.current = %d under pids.max = 10", cur)
	}
	if ev := cgroupFile(t, pid, "pids", "pids.events"); ev == "max 0" {
		t.Errorf("pids.events = %q: no fork was refused", ev)
	}
}

func TestEventsStatsAndOOM(t *testing.T) {
	b := newBundle(t, "sh", "-c", "sleep 1; x=a; while true; do x=$x$x; done")
	limit := int64(16 << 20)
	b.spec.Linux.Resources = &rspec.LinuxResources{Memory: &rspec.LinuxMemory{Limit: &limit}}
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Memory struct {
				Usage struct{ Limit uint64 } `json:"usage"`
			} `json:"memory"`
			Pids struct{ Current uint64 } `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(b.must(t, "events", "--stats", id)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "stats" || ev.ID != id || ev.Data.Memory.Usage.Limit != uint64(limit) || ev.Data.Pids.Current == 0 {
		t.Fatalf("events --stats: %+v", ev)
	}
	cmd := exec.Command(huskBin, "--root", b.root, "events", "--interval", "1s", id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Start()
	defer cmd.Process.Kill()
	sawOOM := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if strings.Contains(s.Text(), `"type":"oom"`) {
				sawOOM <- true
				return
			}
		}
		sawOOM <- false
	}()
	select {
	case ok := <-sawOOM:
		if !ok {
			t.Fatal("events ended without an oom event")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no oom event within 30s")
	}
}

func TestPausedContainerIsFrozenAndKillable(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	b.must(t, "pause", id)
	if got := cgroupFile(t, pid, "freezer", "freezer.state"); got != "FROZEN" {
		t.Errorf("freezer.state = %s", got)
	}
	if list := b.must(t, "list"); !strings.Contains(list, "paused") {
		t.Errorf("list does not show paused:\n%s", list)
	}
	assertOneLineError(t, b.husk(t, "pause", id), "cannot pause a paused container")
	b.must(t, "kill", id, "KILL")
	b.waitStatus(t, id, "stopped")
	b.must(t, "delete", id)
	assertClean(t, b, id)
}

func TestCgroupBadInput(t *testing.T) {
	neg := int64(-5)
	cases := map[string]func(s *rspec.Spec){
		`".." would leave the cgroup root`: func(s *rspec.Spec) { s.Linux.CgroupsPath = "../../escape" },
		"linux.resources.memory.limit":     func(s *rspec.Spec) { s.Linux.Resources.Memory = &rspec.LinuxMemory{Limit: &neg} },
		"linux.resources.pids.limit":       func(s *rspec.Spec) { s.Linux.Resources.Pids = &rspec.LinuxPids{Limit: &neg} },
		"linux.resources.devices[1].type": func(s *rspec.Spec) {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rspec.LinuxDeviceCgroup{Type: "z", Allow: true})
		},
		"linux.resources.unified: cgroup v2": func(s *rspec.Spec) { s.Linux.Resources.Unified = map[string]string{"memory.high": "1000000"} },
	}
	for want, mutate := range cases {
		if want == "linux.resources.unified: cgroup v2" {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				continue // a v2 host accepts unified keys
			}
		}
		b := newBundle(t, "true")
		mutate(b.spec)
		b.write(t)
		id := uniqueID(t)
		assertOneLineError(t, b.husk(t, "create", id), want)
		assertClean(t, b, id)
	}
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	b.must(t, "kill", id, "KILL")
	b.waitStatus(t, id, "stopped")
	assertOneLineError(t, b.husk(t, "update", "--pids-limit", "5", id), "cannot update a stopped container")
}

// TestDeviceCgroupDeniesDevices: the device allow-list is a security boundary: a node the
// container makes for a device it was not granted cannot be opened.
func TestDeviceCgroupDeniesDevices(t *testing.T) {
	b := newBundle(t, "sh", "-c", "mknod /tmp/mem c 1 1 && cat /tmp/mem > /dev/null 2>/tmp/err; cat /tmp/err; echo x > /dev/null && echo NULL-OK")
	b.spec.Root.Readonly = false
	b.spec.Process.Capabilities.Bounding = append(b.spec.Process.Capabilities.Bounding, "CAP_MKNOD")
	b.spec.Process.Capabilities.Effective = append(b.spec.Process.Capabilities.Effective, "CAP_MKNOD")
	b.spec.Process.Capabilities.Permitted = append(b.spec.Process.Capabilities.Permitted, "CAP_MKNOD")
	out := b.mustRun(t, uniqueID(t))
	if !strings.Contains(out, "Operation not permitted") || !strings.Contains(out, "NULL-OK") {
		t.Fatalf("/dev/mem (1:1) was not denied, or /dev/null was: %q", out)
	}
}

func TestMoreResourceFields(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	quota, period := int64(50000), uint64(100000)
	reservation, swap := int64(16<<20), int64(96<<20)
	limit, swappiness := int64(64<<20), uint64(10)
	burst, idle, rtPeriod, rtRuntime, noOOM := uint64(10000), int64(1), uint64(1000000), int64(1000), true
	b.spec.Linux.Resources = &rspec.LinuxResources{
		CPU: &rspec.LinuxCPU{Quota: &quota, Period: &period, Cpus: "0", Mems: "0", Burst: &burst, Idle: &idle,
			RealtimePeriod: &rtPeriod, RealtimeRuntime: &rtRuntime},
		Memory: &rspec.LinuxMemory{Limit: &limit, Reservation: &reservation, Swap: &swap, Swappiness: &swappiness, DisableOOMKiller: &noOOM},
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/dev/vda", &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
		major, minor := int64(st.Rdev>>8&0xfff), int64(st.Rdev&0xff|(st.Rdev>>12)&0xfff00)
		b.spec.Linux.Resources.BlockIO = &rspec.LinuxBlockIO{ThrottleReadBpsDevice: []rspec.LinuxThrottleDevice{{LinuxBlockIODevice: rspec.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1048576}}}
	}
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); err == nil {
		b.spec.Linux.Resources.HugepageLimits = []rspec.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	}
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	for file, want := range map[[2]string]string{
		{"cpu", "cpu.cfs_quota_us"}:               "50000",
		{"cpu", "cpu.cfs_period_us"}:              "100000",
		{"cpuset", "cpuset.cpus"}:                 "0",
		{"cpuset", "cpuset.mems"}:                 "0",
		{"memory", "memory.soft_limit_in_bytes"}:  "16777216",
		{"memory", "memory.swappiness"}:           "10",
		{"memory", "memory.memsw.limit_in_bytes"}: "100663296",
		{"memory", "memory.limit_in_bytes"}:       "67108864",
	} {
		if got := cgroupFile(t, pid, file[0], file[1]); got != want {
			t.Errorf("%s = %q, want %q", file[1], got, want)
		}
	}
	if oc := cgroupFile(t, pid, "memory", "memory.oom_control"); !strings.Contains(oc, "oom_kill_disable 1") {
		t.Errorf("memory.oom_control: %q", oc)
	}
	if bio := b.spec.Linux.Resources.BlockIO; bio != nil {
		d := bio.ThrottleReadBpsDevice[0]
		if got := cgroupFile(t, pid, "blkio", "blkio.throttle.read_bps_device"); got != fmt.Sprintf("%d:%d 1048576", d.Major, d.Minor) {
			t.Errorf("blkio.throttle.read_bps_device = %q", got)
		}
	}
	if len(b.spec.Linux.Resources.HugepageLimits) > 0 {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		var v2path string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "0::") {
				v2path = strings.TrimPrefix(l, "0::")
			}
		}
		found := false
		for _, f := range []string{"/sys/fs/cgroup/hugetlb" + v2path + "/hugetlb.2MB.limit_in_bytes", "/sys/fs/cgroup/unified" + v2path + "/hugetlb.2MB.max"} {
			if got, err := os.ReadFile(f); err == nil {
				found = true
				if strings.TrimSpace(string(got)) != "4194304" {
					t.Errorf("%s = %q, want 4194304", f, got)
				}
			}
		}
		if !found {
			t.Errorf("no hugetlb limit file for the container (v1 hugetlb or cgroup2)")
		}
	}
}

func TestUnavailableControllersAreErrors(t *testing.T) {
	class := uint32(0x100001)
	for want, res := range map[string]*rspec.LinuxResources{
		"linux.resources.network.classID": {Network: &rspec.LinuxNetwork{ClassID: &class}},
		"linux.resources.rdma":            {Rdma: map[string]rspec.LinuxRdma{"mlx5_0": {}}},
	} {
		ctrl := map[string]string{"linux.resources.network.classID": "net_cls", "linux.resources.rdma": "rdma"}[want]
		if _, err := os.Stat("/sys/fs/cgroup/" + ctrl); err == nil {
			continue // this host has it
		}
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			continue
		}
		b := newBundle(t, "true")
		b.spec.Linux.Resources = res
		b.write(t)
		id := uniqueID(t)
		assertOneLineError(t, b.husk(t, "create", id), want)
		assertClean(t, b, id)
	}
}

// TestPidsLimitZeroIsALimit: linux.resources.pids.limit 0 is a limit of 1 (runc 1.4+, both
// cgroup drivers; systemd takes no TasksMax=0), -1 lifts it; husk lifted it for 0.
func TestPidsLimitZeroIsALimit(t *testing.T) {
	for _, c := range []struct {
		limit int64
		want  string
	}{{0, "1"}, {-1, "max"}} {
		b := newBundle(t)
		limit := c.limit
		b.spec.Linux.Resources = &rspec.LinuxResources{Pids: &rspec.LinuxPids{Limit: &limit}}
		id := runSleeping(t, b, nil)
		pid := int(b.state(t, id)["pid"].(float64))
		if got := cgroupFile(t, pid, "pids", "pids.max"); got != c.want {
			t.Errorf("pids.limit %d: pids.max = %s, want %s", c.limit, got, c.want)
		}
		b.must(t, "update", "--pids-limit", "0", id)
		if got := cgroupFile(t, pid, "pids", "pids.max"); got != "1" {
			t.Errorf("update --pids-limit 0: pids.max = %s, want 1", got)
		}
		b.must(t, "delete", "-f", id)
	}
}

// TestUpdateCPUBurstAndIdle: update --cpu-burst and --cpu-idle, as runc 1.5 (the flags were
// missing; the config's fields were applied already).
func TestUpdateCPUBurstAndIdle(t *testing.T) {
	b := newBundle(t)
	id := runSleeping(t, b, nil)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	b.must(t, "update", "--cpu-period", "100000", "--cpu-quota", "50000", "--cpu-burst", "20000", "--cpu-idle", "1", id)
	if got := cgroupFile(t, pid, "cpu", "cpu.cfs_burst_us"); got != "20000" {
		t.Errorf("cpu.cfs_burst_us = %s, want 20000", got)
	}
	if got := cgroupFile(t, pid, "cpu", "cpu.idle"); got != "1" {
		t.Errorf("cpu.idle = %s, want 1", got)
	}
	assertOneLineError(t, b.husk(t, "update", "--cpu-idle", "3", id), "--cpu-idle")
}

// TestUpdateRealtimeInEitherOrder: lowering the rt period below the current runtime works
// when the runtime is lowered with it: husk writes them in the order the kernel accepts, as
// runc (period first failed with "invalid argument").
func TestUpdateRealtimeInEitherOrder(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"); err != nil {
		t.Skip("no v1 cpu controller with rt bandwidth")
	}
	b := newBundle(t)
	period, runtime := uint64(1000000), int64(500000)
	b.spec.Linux.Resources = &rspec.LinuxResources{CPU: &rspec.LinuxCPU{RealtimePeriod: &period, RealtimeRuntime: &runtime}}
	id := runSleeping(t, b, nil)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	b.must(t, "update", "--cpu-rt-period", "400000", "--cpu-rt-runtime", "300000", id)
	if p, r := cgroupFile(t, pid, "cpu", "cpu.rt_period_us"), cgroupFile(t, pid, "cpu", "cpu.rt_runtime_us"); p != "400000" || r != "300000" {
		t.Fatalf("rt period/runtime = %s/%s, want 400000/300000", p, r)
	}
	b.must(t, "update", "--cpu-rt-period", "900000", "--cpu-rt-runtime", "600000", id)
	if p, r := cgroupFile(t, pid, "cpu", "cpu.rt_period_us"), cgroupFile(t, pid, "cpu", "cpu.rt_runtime_us"); p != "900000" || r != "600000" {
		t.Fatalf("rt period/runtime = %s/%s, want 900000/600000", p, r)
	}
}

// TestV1ContainerJoinsNameSystemd: on cgroup v1 the container's processes join the name=systemd
// hierarchy at the container's path too, as runc's v1 manager does (husk left them in the
// caller's, "/"), so every line of /proc/PID/cgroup names the container, also for exec; delete
// removes that directory with the others.
func TestV1ContainerJoinsNameSystemd(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/systemd/cgroup.procs"); err != nil {
		t.Skip("no name=systemd v1 hierarchy on this host")
	}
	b := newBundle(t)
	id := uniqueID(t)
	cg := "/husk-test-" + id
	b.spec.Linux.CgroupsPath = cg
	b.spec.Process.Args = []string{"sleep", "1000"}
	// No cgroup namespace: the container's lines show the host's paths.
	b.spec.Linux.Namespaces = withoutNamespace(b.spec.Linux.Namespaces, rspec.CgroupNamespace)
	b.write(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	for _, args := range [][]string{{"cat", "/proc/1/cgroup"}, {"cat", "/proc/self/cgroup"}} {
		out := b.must(t, append([]string{"exec", id}, args...)...)
		if !strings.Contains(out, ":name=systemd:") {
			t.Fatalf("%s: no name=systemd line:\n%s", args[1], out)
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			// This host's cgroup2 holds no controllers that husk manages.
			if strings.HasPrefix(l, "0::") {
				continue
			}
			if !strings.HasSuffix(l, ":"+cg) {
				t.Errorf("%s: %q is not in the container's cgroup %s", args[1], l, cg)
			}
		}
	}
	// Its /sys/fs/cgroup/systemd is its own directory, not the host's whole tree (the names of
	// every other pod's cgroups): release_agent exists at the hierarchy's root only.
	if out := b.must(t, "exec", id, "ls", "/sys/fs/cgroup/systemd"); strings.Contains(out, "release_agent") || !strings.Contains(out, "cgroup.procs") {
		t.Errorf("the container's /sys/fs/cgroup/systemd is not its own cgroup:\n%s", out)
	}
	b.must(t, "delete", "-f", id)
	if _, err := os.Stat("/sys/fs/cgroup/systemd" + cg); !os.IsNotExist(err) {
		t.Errorf("delete left /sys/fs/cgroup/systemd%s (%v)", cg, err)
	}
}

// TestSystemdFormCgroupsPathUnderCgroupfs: containerd 1.6 sends "slice:prefix:name" to a
// cgroupfs-driver runtime when no RuntimeConfig call told it the driver; runc's cgroupfs driver
// takes it as a literal relative path, and so does husk now (it refused it: every pod of a
// Kubernetes node on containerd 1.6 failed, critest 17 of 105).
func TestSystemdFormCgroupsPathUnderCgroupfs(t *testing.T) {
	b := newBundle(t)
	id := uniqueID(t)
	cg := "husk-test-" + id + ".slice:cri-containerd:" + id
	b.spec.Linux.CgroupsPath = cg
	runSleepingID := func() {
		b.spec.Process.Args = []string{"sleep", "1000"}
		b.write(t)
		b.must(t, "run", "-d", id)
	}
	runSleepingID()
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "/"+cg+"\n") {
		t.Fatalf("the init is not in a cgroup named %q:\n%s", cg, data)
	}
	b.must(t, "delete", "-f", id)
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 || !strings.HasSuffix(parts[2], cg) {
			continue
		}
		dir := filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(parts[1], "name="), parts[2])
		if parts[1] == "" {
			dir = filepath.Join("/sys/fs/cgroup/unified", parts[2])
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("delete left %s", dir)
		}
	}
}

// TestUpdateMemoryCheckBeforeUpdate: with linux.resources.memory.checkBeforeUpdate (what an
// in-place pod resize that lowers memory sends), a memory limit at or below the container's
// usage is refused with runc's words and the limit stays; above the usage it applies. husk
// dropped the field: the limit was written and the kernel reclaimed or refused (runc checks on
// cgroup v2 only; husk on v1 too).
func TestUpdateMemoryCheckBeforeUpdate(t *testing.T) {
	// 24 MiB of tmpfs pages, charged to the container's memory cgroup and not reclaimable
	// without swap.
	b := newBundle(t, "sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; echo filled; sleep 1000")
	limit := int64(256 << 20)
	b.spec.Linux.Resources = &rspec.LinuxResources{Memory: &rspec.LinuxMemory{Limit: &limit}}
	b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "nodev", "size=64m"}})
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	for i := 0; ; i++ {
		usage, _ := strconv.ParseInt(cgroupFile(t, pid, "memory", "memory.usage_in_bytes"), 10, 64)
		if usage >= 24<<20 {
			break
		}
		if i == 600 {
			t.Fatalf("the container's memory usage never reached 24 MiB: %d", usage)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := runHusk(t, b.dir, b.root, []byte(`{"memory": {"limit": 8388608, "checkBeforeUpdate": true}}`), "update", "--resources", "-", id)
	assertOneLineError(t, r, "rejecting memory limit 8388608 <= usage")
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != "268435456" {
		t.Errorf("a refused update changed memory.limit_in_bytes to %s", got)
	}
	if r := runHusk(t, b.dir, b.root, []byte(`{"memory": {"limit": 134217728, "checkBeforeUpdate": true}}`), "update", "--resources", "-", id); r.code != 0 {
		t.Fatalf("a limit above the usage: %s", r)
	}
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != "134217728" {
		t.Errorf("after the update memory.limit_in_bytes = %s", got)
	}
}
