package initproto

import (
	"encoding/json"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// Mode says what the Go init sets up: a container's init, or a process joining one.
type Mode string

const (
	ModeCreate Mode = "create"
	ModeExec   Mode = "exec"
)

// InitConfig is the Go init's request (Config), sent once the child sits in its cgroup.
type InitConfig struct {
	Mode            Mode            `json:"mode"`
	ID              string          `json:"id"`
	RawSpec         json.RawMessage `json:"spec"`              // the spec, passed on as JSON: never re-encoded
	Process         *rspec.Process  `json:"process,omitempty"` // exec's process; the spec's when nil
	ExtraEnv        []string        `json:"extra_env,omitempty"`
	Rootfs          string          `json:"rootfs,omitempty"`
	Bundle          string          `json:"bundle,omitempty"`
	NoPivot         bool            `json:"no_pivot,omitempty"`
	SharedMounts    bool            `json:"shared_mounts,omitempty"` // no mount namespace of its own
	NoNewKeyring    bool            `json:"no_new_keyring,omitempty"`
	HasRuntimeHooks bool            `json:"has_runtime_hooks,omitempty"`
	FifoFd          int             `json:"fifo_fd,omitempty"`
	ConsoleFd       int             `json:"console_fd,omitempty"`
	PreserveFds     int             `json:"preserve_fds,omitempty"`
	MountFds        map[string]int  `json:"mount_fds,omitempty"` // mount index -> a detached clone of its source (open_tree)
	// Bind mounts (by index) whose clone the init asks for when it gets to them (MountSource).
	LateMountSources []int `json:"late_mount_sources,omitempty"`
}
