package specs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// namespaceTypes lists every namespace type husk can create or join.
var namespaceTypes = map[rspec.LinuxNamespaceType]bool{
	rspec.PIDNamespace: true, rspec.NetworkNamespace: true, rspec.MountNamespace: true,
	rspec.IPCNamespace: true, rspec.UTSNamespace: true, rspec.UserNamespace: true,
	rspec.CgroupNamespace: true, rspec.TimeNamespace: true,
}

// Validate checks what husk needs before it touches the system, so a bad config fails early
// with an error naming the field instead of half-way through create.
func Validate(s *rspec.Spec, bundle string) error {
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("root.path is required")
	}
	rootfs := RootfsPath(s, bundle)
	st, err := os.Stat(rootfs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("root.path: rootfs %s does not exist", rootfs)
		}
		return fmt.Errorf("root.path: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("root.path: rootfs %s is not a directory", rootfs)
	}
	if s.Process == nil {
		return errors.New("process is required")
	}
	if err := ValidateProcess(s.Process); err != nil {
		return err
	}
	if s.Linux == nil {
		return errors.New("linux section is required on Linux")
	}
	seen := map[rspec.LinuxNamespaceType]bool{}
	for i, ns := range s.Linux.Namespaces {
		if !namespaceTypes[ns.Type] {
			return fmt.Errorf("linux.namespaces[%d].type: unknown namespace type %q", i, ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("linux.namespaces[%d].type: duplicate namespace %q", i, ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return fmt.Errorf("linux.namespaces[%d].path %q must be absolute", i, ns.Path)
		}
	}
	hasUserNS := seen[rspec.UserNamespace]
	if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !hasUserNS {
		return errors.New("linux.uidMappings: mappings need a user namespace in linux.namespaces")
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == rspec.UserNamespace && ns.Path == "" && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
			return errors.New("linux.uidMappings and linux.gidMappings are required for a new user namespace")
		}
	}
	if s.Hostname != "" && !seen[rspec.UTSNamespace] {
		return errors.New("hostname: setting a hostname needs a new uts namespace")
	}
	if s.Domainname != "" && !seen[rspec.UTSNamespace] {
		return errors.New("domainname: setting a domainname needs a new uts namespace")
	}
	for i, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mounts[%d].destination %q must be an absolute path", i, m.Destination)
		}
		if _, err := ParseMountOptions(m.Options); err != nil {
			return fmt.Errorf("mounts[%d] (%s): %w", i, m.Destination, err)
		}
	}
	for i, d := range s.Linux.Devices {
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return fmt.Errorf("linux.devices[%d] (%s): unknown device type %q", i, d.Path, d.Type)
		}
		if !filepath.IsAbs(d.Path) {
			return fmt.Errorf("linux.devices[%d].path %q must be absolute", i, d.Path)
		}
	}
	if s.Linux.RootfsPropagation != "" {
		if _, ok := PropagationFlags[s.Linux.RootfsPropagation]; !ok {
			return fmt.Errorf("linux.rootfsPropagation: unknown propagation %q", s.Linux.RootfsPropagation)
		}
	}
	for k := range s.Linux.Sysctl {
		if strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
			return fmt.Errorf("linux.sysctl: invalid key %q", k)
		}
	}
	return nil
}

// ValidateProcess checks a process section, for create and for exec.
func ValidateProcess(p *rspec.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return errors.New("process.args must not be empty")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q must be an absolute path", p.Cwd)
	}
	for i, r := range p.Rlimits {
		if _, ok := Rlimits[r.Type]; !ok {
			return fmt.Errorf("process.rlimits[%d]: unknown rlimit %q", i, r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits[%d] (%s): soft limit %d exceeds hard limit %d", i, r.Type, r.Soft, r.Hard)
		}
	}
	if p.Capabilities != nil {
		for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted, p.Capabilities.Inheritable, p.Capabilities.Ambient} {
			for _, c := range set {
				if _, ok := Capability(c); !ok {
					return fmt.Errorf("process.capabilities: unknown capability %q", c)
				}
			}
		}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fmt.Errorf("process.oomScoreAdj %d is outside -1000..1000", *p.OOMScoreAdj)
	}
	return nil
}
