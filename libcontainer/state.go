package libcontainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/internal/rawfile"
	"github.com/husk-runtime/husk/specs"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/libcontainer/cgroups/systemd"
)

// Status is a container's lifecycle state, as `state` reports it.
type Status string

const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Paused   Status = "paused"
	Stopped  Status = "stopped"
)

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
	// seccompFile holds the container's compiled seccomp filter, for execs.
	seccompFile = "seccomp.bpf"
	// cgroupFile keeps the container's cgroup paths apart from the state, for a forced delete
	// of a container whose state.json was lost.
	cgroupFile = "cgroup.json"
	// netDevicesFile keeps the lent network devices apart from the state, for the same reason.
	netDevicesFile = "netdevices.json"
)

// State is what husk persists per container. Status is not stored: it is derived from the init
// process (alive and the same process, by start time), the exec fifo and the freezer.
type State struct {
	ID            string        `json:"id"`
	InitPid       int           `json:"init_pid"`
	InitStartTime uint64        `json:"init_start_time"`
	Bundle        string        `json:"bundle"`
	Rootfs        string        `json:"rootfs"`
	Created       time.Time     `json:"created"`
	Owner         string        `json:"owner"`
	Cgroup        cgroups.Paths `json:"cgroup_paths"`
	// Systemd is the unit owning the cgroup under the systemd driver (--systemd-cgroup).
	Systemd    *systemd.Unit `json:"systemd,omitempty"`
	NetDevices []netDevice   `json:"net_devices,omitempty"`
	// SharedRootfsMount is the mount id of the rootfs bind of a container without a mount
	// namespace of its own, detached at delete (mountns_linux.go).
	SharedRootfsMount uint64 `json:"shared_rootfs_mount,omitempty"`
	// The spec as JSON, decoded only by exec; the parts other commands use are kept decoded.
	Config      json.RawMessage   `json:"config"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Hooks       *rspec.Hooks      `json:"hooks,omitempty"`
}

// OCIState is the runtime-spec state plus runc's extra fields, as `husk state` prints it.
type OCIState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      Status            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

func writeState(dir string, st *State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

func readState(dir string) (*State, error) {
	b, err := specs.ReadLimited(filepath.Join(dir, stateFile), 2*specs.MaxConfigSize, stateFile)
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrCorruptState, filepath.Join(dir, stateFile), err)
	}
	// What delete kills and removes comes from here: a path create would have refused ("/",
	// "..") is never acted on.
	if err := st.Cgroup.Check(); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrCorruptState, filepath.Join(dir, stateFile), err)
	}
	return &st, nil
}

// salvageState recovers what it can of a corrupt or truncated state.json, for a forced delete:
// the fields are written in order and the spec comes last, so a truncated file usually still
// names the init and the cgroup. The cgroup is also kept in its own small file, written once
// before the cgroup exists, for a state that is lost entirely.
func salvageState(dir, id string) *State {
	st := &State{ID: id}
	if b, err := specs.ReadLimited(filepath.Join(dir, stateFile), 2*specs.MaxConfigSize, stateFile); err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		if t, err := dec.Token(); err == nil && t == json.Delim('{') {
			for dec.More() {
				t, err := dec.Token()
				key, ok := t.(string)
				if err != nil || !ok {
					break
				}
				var v json.RawMessage
				if err := dec.Decode(&v); err != nil {
					break
				}
				switch key {
				case "init_pid":
					_ = json.Unmarshal(v, &st.InitPid)
				case "init_start_time":
					_ = json.Unmarshal(v, &st.InitStartTime)
				case "cgroup_paths":
					_ = json.Unmarshal(v, &st.Cgroup)
				case "systemd":
					_ = json.Unmarshal(v, &st.Systemd)
				case "rootfs":
					_ = json.Unmarshal(v, &st.Rootfs)
				case "shared_rootfs_mount":
					_ = json.Unmarshal(v, &st.SharedRootfsMount)
				case "net_devices":
					_ = json.Unmarshal(v, &st.NetDevices)
				}
			}
		}
	}
	if st.NetDevices == nil {
		if b, err := specs.ReadLimited(filepath.Join(dir, netDevicesFile), 1<<20, netDevicesFile); err == nil {
			_ = json.Unmarshal(b, &st.NetDevices)
		}
	}
	// Never kill or remove what a corrupt file names: a path create would have refused falls
	// back to the cgroup file, then to nothing.
	if st.Cgroup.Check() != nil {
		st.Cgroup = nil
	}
	if st.Cgroup == nil {
		if b, err := specs.ReadLimited(filepath.Join(dir, cgroupFile), 1<<20, cgroupFile); err == nil {
			_ = json.Unmarshal(b, &st.Cgroup)
		}
		if st.Cgroup.Check() != nil {
			st.Cgroup = nil
		}
	}
	return st
}

// procStartTime returns field 22 of /proc/pid/stat (start time in clock ticks) and whether the
// process is a zombie, which counts as stopped.
func procStartTime(pid int) (uint64, bool, error) {
	b, err := rawfile.Read("/proc/"+strconv.Itoa(pid)+"/stat", 4096)
	if err != nil {
		return 0, false, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, errors.New("malformed stat")
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, false, errors.New("malformed stat")
	}
	st, err := strconv.ParseUint(fields[19], 10, 64)
	return st, fields[0] == "Z" || fields[0] == "X", err
}

// initAlive reports whether the recorded init process still runs (not reused, not a zombie).
func (s *State) initAlive() bool {
	if s.InitPid <= 0 {
		return false
	}
	st, zombie, err := procStartTime(s.InitPid)
	return err == nil && !zombie && st == s.InitStartTime
}

func (c *Container) status() Status { return c.statusWith(nil) }

// statusWith is status reading the freezer through cg (nil: a manager of its own).
func (c *Container) statusWith(cg *cgroups.Manager) Status {
	if c.state.InitPid == 0 {
		return Creating
	}
	if !c.state.initAlive() {
		return Stopped
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoName)); err == nil {
		return Created
	}
	if cg == nil {
		cg = cgroups.Load(c.state.Cgroup)
	}
	if cg.Frozen() {
		return Paused
	}
	return Running
}

// signalInit sends sig to the init process, checking first that the pid was not reused.
func (c *Container) signalInit(sig unix.Signal) error {
	if !c.state.initAlive() {
		return ErrNotRunning
	}
	if err := unix.Kill(c.state.InitPid, sig); err != nil && err != unix.ESRCH {
		return err
	}
	return nil
}
