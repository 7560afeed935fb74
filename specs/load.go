package specs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// Load reads and validates bundle/config.json, returning the spec, the file's bytes (kept as
// they are: passing them on spares re-encoding the spec) and the bundle path made absolute,
// because the state and the init process outlive the caller's working directory. What runc
// runs with a warning goes to warn (may be nil).
func Load(bundle string, warn func(string)) (*rspec.Spec, []byte, string, error) {
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, nil, "", fmt.Errorf("bundle %q: %w", bundle, err)
	}
	data, err := ReadLimited(filepath.Join(abs, "config.json"), MaxConfigSize, "config.json")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, "", fmt.Errorf("bundle %q: config.json not found", abs)
		}
		return nil, nil, "", fmt.Errorf("bundle %q: %w", abs, err)
	}
	spec, err := Parse(data)
	if err != nil {
		return nil, nil, "", fmt.Errorf("bundle %q: config.json: %w", abs, err)
	}
	for _, d := range AbsMountDestinations(spec) {
		if warn != nil {
			warn(fmt.Sprintf("mount destination %s is not absolute. Support for non-absolute mount destinations will be removed in a future release.", d))
		}
	}
	if err := Validate(spec, abs); err != nil {
		return nil, nil, "", fmt.Errorf("bundle %q: config.json: %w", abs, err)
	}
	return spec, data, abs, nil
}

// AbsMountDestinations makes relative mount destinations absolute ("tmp/x" is "/tmp/x") and
// returns the ones it changed, as they were. runc 1.5 runs them so, with a warning (runc
// 1.1 took them relative to the rootfs, which names the same place); the init does the same
// with the config it reads.
func AbsMountDestinations(s *rspec.Spec) []string {
	var rel []string
	for i, m := range s.Mounts {
		if m.Destination != "" && !filepath.IsAbs(m.Destination) {
			rel = append(rel, m.Destination)
			s.Mounts[i].Destination = "/" + m.Destination
		}
	}
	return rel
}

// linuxSpec is rspec.Spec without the sections of other operating systems, which husk ignores
// as runc does. encoding/json builds a codec for every type it can reach from the one it
// decodes into, present in the document or not; those sections reach the most (~0.35 ms of a
// create's first decode).
type linuxSpec struct {
	Version     string            `json:"ociVersion"`
	Process     *rspec.Process    `json:"process,omitempty"`
	Root        *rspec.Root       `json:"root,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	Domainname  string            `json:"domainname,omitempty"`
	Mounts      []rspec.Mount     `json:"mounts,omitempty"`
	Hooks       *rspec.Hooks      `json:"hooks,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       *rspec.Linux      `json:"linux,omitempty"`
}

// Parse decodes a config.json, reporting syntax errors with their line so the user can find them.
func Parse(data []byte) (*rspec.Spec, error) {
	var spec linuxSpec
	dec := json.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&spec)
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); err == nil && len(rest) > 0 {
		line := bytes.Count(data[:dec.InputOffset()], []byte("\n")) + 1
		return nil, fmt.Errorf("invalid JSON at line %d: data after the top-level object", line)
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := bytes.Count(data[:se.Offset], []byte("\n")) + 1
			return nil, fmt.Errorf("invalid JSON at line %d: %v", line, se)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("field %q: cannot use JSON %s as %s", te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return &rspec.Spec{
		Version: spec.Version, Process: spec.Process, Root: spec.Root, Hostname: spec.Hostname,
		Domainname: spec.Domainname, Mounts: spec.Mounts, Hooks: spec.Hooks,
		Annotations: spec.Annotations, Linux: spec.Linux,
	}, nil
}

// RootfsPath returns the absolute rootfs path of a spec in bundle.
func RootfsPath(spec *rspec.Spec, bundle string) string {
	p := spec.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(bundle, p)
	}
	return filepath.Clean(p)
}

// ParseProcess decodes a process.json given to `exec --process`.
func ParseProcess(data []byte) (*rspec.Process, error) {
	var p rspec.Process
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("process JSON: %w", err)
	}
	if len(p.Args) == 0 {
		return nil, errors.New("process: args must not be empty")
	}
	if p.Cwd != "" && !strings.HasPrefix(p.Cwd, "/") {
		return nil, fmt.Errorf("process.cwd %q must be an absolute path", p.Cwd)
	}
	return &p, nil
}
