package goinit

import (
	"encoding/json"
	"errors"
	"fmt"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/specs"
)

// initConfig is the Go init's request (initproto.InitConfig, what travels) with its spec
// decoded.
type initConfig struct {
	initproto.InitConfig
	Spec *rspec.Spec `json:"-"` // RawSpec decoded, by the init
}

// initSpec is the part of the spec the init reads; husk validated the whole of it already.
// encoding/json builds a codec for every type reachable from the one it decodes into,
// present in the document or not: rspec.Spec reaches linux.resources, Windows, VM and z/OS,
// and decoding it cost the init twice as long (~1 ms more per create).
type initSpec struct {
	Process     *rspec.Process    `json:"process,omitempty"`
	Root        *rspec.Root       `json:"root,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	Domainname  string            `json:"domainname,omitempty"`
	Mounts      []rspec.Mount     `json:"mounts,omitempty"`
	Hooks       *rspec.Hooks      `json:"hooks,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       *struct {
		UIDMappings       []rspec.LinuxIDMapping           `json:"uidMappings,omitempty"`
		GIDMappings       []rspec.LinuxIDMapping           `json:"gidMappings,omitempty"`
		Sysctl            map[string]string                `json:"sysctl,omitempty"`
		Namespaces        []rspec.LinuxNamespace           `json:"namespaces,omitempty"`
		Devices           []rspec.LinuxDevice              `json:"devices,omitempty"`
		Seccomp           *rspec.LinuxSeccomp              `json:"seccomp,omitempty"`
		RootfsPropagation string                           `json:"rootfsPropagation,omitempty"`
		MaskedPaths       []string                         `json:"maskedPaths,omitempty"`
		ReadonlyPaths     []string                         `json:"readonlyPaths,omitempty"`
		TimeOffsets       map[string]rspec.LinuxTimeOffset `json:"timeOffsets,omitempty"`
		Personality       *rspec.LinuxPersonality          `json:"personality,omitempty"`
		MemoryPolicy      *rspec.LinuxMemoryPolicy         `json:"memoryPolicy,omitempty"`
		// Only the cpuset's CPUs: the init names them when the kernel refuses a scheduler.
		Resources *struct {
			CPU *struct {
				Cpus string `json:"cpus,omitempty"`
			} `json:"cpu,omitempty"`
		} `json:"resources,omitempty"`
	} `json:"linux,omitempty"`
}

// decodeSpec decodes the spec the parent passed on as JSON and picks the process to run.
func decodeSpec(cfg *initConfig) error {
	if cfg == nil {
		return errors.New("init: no config")
	}
	var is initSpec
	if err := json.Unmarshal(cfg.RawSpec, &is); err != nil {
		return fmt.Errorf("init: decode spec: %w", err)
	}
	if is.Linux == nil || (is.Process == nil && cfg.Process == nil) {
		return errors.New("init: the spec has no process or linux section")
	}
	l := is.Linux
	s := rspec.Spec{
		Process: is.Process, Root: is.Root, Hostname: is.Hostname, Domainname: is.Domainname,
		Mounts: is.Mounts, Hooks: is.Hooks, Annotations: is.Annotations,
		Linux: &rspec.Linux{
			UIDMappings: l.UIDMappings, GIDMappings: l.GIDMappings, Sysctl: l.Sysctl,
			Namespaces: l.Namespaces, Devices: l.Devices, Seccomp: l.Seccomp,
			RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths,
			ReadonlyPaths: l.ReadonlyPaths, TimeOffsets: l.TimeOffsets,
			Personality: l.Personality, MemoryPolicy: l.MemoryPolicy,
		},
	}
	if r := l.Resources; r != nil && r.CPU != nil && r.CPU.Cpus != "" {
		s.Linux.Resources = &rspec.LinuxResources{CPU: &rspec.LinuxCPU{Cpus: r.CPU.Cpus}}
	}
	specs.AbsMountDestinations(&s) // the parent warned
	cfg.Spec = &s
	if cfg.Process == nil {
		cfg.Process = s.Process
	}
	cfg.Process.Env = append(cfg.Process.Env, cfg.ExtraEnv...)
	return nil
}
