// Package systemd is husk's systemd cgroup driver: a container's cgroup is a transient unit
// (a scope, or a slice when its name says so) that systemd creates over D-Bus with the
// container's init in it, Delegate=yes, and the container's resources as unit properties, as
// runc's driver does. The cgroup files are still written by the cgroupfs driver (package
// cgroups) afterwards, for what systemd has no property for.
//
// This package names the unit and its cgroup; the D-Bus calls (package sdbus) run in
// husk-systemd, a helper beside husk that husk starts only under --systemd-cgroup: the D-Bus
// libraries (and the crypto and net packages they pull in) would cost every husk process
// ~1 ms of start-up, and husk runs several times per container.
package systemd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/internal/children"
)

// PropertyPrefix is the annotation prefix runc passes through as unit properties.
const PropertyPrefix = "org.systemd.property."

// Unit is a container's systemd unit, as recorded in its state.
type Unit struct {
	Name  string `json:"name"`  // runc-test1.scope, or a .slice
	Slice string `json:"slice"` // the parent slice: system.slice, kubepods-burstable-pod1.slice
	// CreatedSlices are the parent slices that were not active before this unit started
	// (systemd starts them with it), innermost first: delete stops those left empty.
	CreatedSlices []string `json:"createdSlices,omitempty"`
	// V1 is set on a v1 or hybrid systemd host: the v1 property names apply there.
	V1 bool `json:"v1,omitempty"`

	Description string `json:"description,omitempty"`
	// Properties are the org.systemd.property.* annotations, by property name, as written
	// (GVariant text); husk-systemd parses them.
	Properties map[string]string `json:"properties,omitempty"`
	// Monitor starts husk-systemd and waits for it (nil: directly): the shim passes its
	// reaper's.
	Monitor children.Monitor `json:"-"`
}

// Booted reports whether systemd runs this host, as sd_booted(3) tells.
func Booted() error {
	if fi, err := os.Lstat("/run/systemd/system"); err != nil || !fi.IsDir() {
		return errors.New("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use cgroupfs paths without --systemd-cgroup")
	}
	return nil
}

// Resolve turns linux.cgroupsPath ("slice:prefix:name", or "" for system.slice:husk:<id>)
// into the unit and the cgroup path systemd gives it, relative to each hierarchy's root.
// Annotations named org.systemd.property.* become extra unit properties, as in runc.
func Resolve(cgroupsPath, id string, annotations map[string]string) (*Unit, string, error) {
	slice, prefix, name := "", "husk", id
	if cgroupsPath != "" {
		parts := strings.Split(cgroupsPath, ":")
		if len(parts) != 3 {
			return nil, "", fmt.Errorf("linux.cgroupsPath %q: the systemd cgroup driver expects the form \"slice:prefix:name\"", cgroupsPath)
		}
		slice, prefix, name = parts[0], parts[1], parts[2]
	}
	if slice == "" {
		slice = "system.slice"
	}
	if name == "" {
		return nil, "", fmt.Errorf("linux.cgroupsPath %q: the unit name is empty", cgroupsPath)
	}
	if strings.ContainsAny(name, "/\x00") || strings.ContainsAny(prefix, "/\x00") {
		return nil, "", fmt.Errorf("linux.cgroupsPath %q: a unit name cannot hold \"/\"", cgroupsPath)
	}
	u := &Unit{Slice: slice, Description: "husk container " + id}
	switch {
	case strings.HasSuffix(name, ".slice"):
		u.Name = name
	case prefix == "":
		u.Name = name + ".scope"
	default:
		u.Name = prefix + "-" + name + ".scope"
	}
	parent, err := ExpandSlice(slice)
	if err != nil {
		return nil, "", fmt.Errorf("linux.cgroupsPath %q: %w", cgroupsPath, err)
	}
	path := filepath.Join(parent, u.Name)
	if strings.HasSuffix(u.Name, ".slice") {
		// A slice's cgroup is where its name puts it, whatever the parent field says.
		if path, err = ExpandSlice(u.Name); err != nil {
			return nil, "", fmt.Errorf("linux.cgroupsPath %q: %w", cgroupsPath, err)
		}
		if filepath.Dir(path) != parent {
			return nil, "", fmt.Errorf("linux.cgroupsPath %q: slice %q is not a child of %q", cgroupsPath, u.Name, slice)
		}
	}
	for k, v := range annotations {
		name, ok := strings.CutPrefix(k, PropertyPrefix)
		if !ok {
			continue
		}
		if name == "" || strings.IndexFunc(name, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) >= 0 {
			return nil, "", fmt.Errorf("annotation %q: a systemd property name is ASCII letters only", k)
		}
		if u.Properties == nil {
			u.Properties = map[string]string{}
		}
		u.Properties[name] = v
	}
	return u, path, nil
}

// ExpandSlice returns the cgroup path of a slice: systemd nests a-b-c.slice in a-b.slice in
// a.slice, so kubepods-burstable-pod1.slice is
// /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice.
func ExpandSlice(slice string) (string, error) {
	const suffix = ".slice"
	if !strings.HasSuffix(slice, suffix) || len(slice) == len(suffix) || strings.Contains(slice, "/") {
		return "", fmt.Errorf("invalid slice name %q", slice)
	}
	name := strings.TrimSuffix(slice, suffix)
	if name == "-" {
		return "/", nil
	}
	var path, prefix string
	for _, part := range strings.Split(name, "-") {
		if part == "" {
			return "", fmt.Errorf("invalid slice name %q", slice)
		}
		path += "/" + prefix + part + suffix
		prefix += part + "-"
	}
	return path, nil
}

// ParentSlices lists the slices above the unit, innermost first, without the root slice.
func (u *Unit) ParentSlices() []string {
	p, err := ExpandSlice(u.Slice)
	if err != nil || p == "/" {
		return nil
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	out := make([]string, 0, len(parts))
	for i := len(parts) - 1; i >= 0; i-- {
		out = append(out, parts[i])
	}
	return out
}

// Request is what husk asks husk-systemd to do, as JSON on its standard input; the unit as it
// is afterwards comes back on its standard output, an error as one line on its standard error.
type Request struct {
	Op        string                `json:"op"` // start, set or stop
	Unit      *Unit                 `json:"unit"`
	Pid       int                   `json:"pid,omitempty"`
	Resources *rspec.LinuxResources `json:"resources,omitempty"`
}

// Start creates the unit with pid in it and res as its properties, and waits for systemd.
func (u *Unit) Start(pid int, res *rspec.LinuxResources) error {
	return u.call(Request{Op: "start", Unit: u, Pid: pid, Resources: res})
}

// Set applies res to the running unit as properties.
func (u *Unit) Set(res *rspec.LinuxResources) error {
	return u.call(Request{Op: "set", Unit: u, Resources: res})
}

// Stop stops the unit, clears a failed state, and stops the parent slices its start created
// once they hold nothing else.
func (u *Unit) Stop() error {
	return u.call(Request{Op: "stop", Unit: u})
}

// HelperName is the helper's file name; it is looked for beside husk's own binary.
const HelperName = "husk-systemd"

func (u *Unit) call(req Request) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find %s: %w", HelperName, err)
	}
	helper := filepath.Join(filepath.Dir(self), HelperName)
	if _, err := os.Stat(helper); err != nil {
		return fmt.Errorf("--systemd-cgroup: %s is not installed in %s, beside husk (make install)", HelperName, filepath.Dir(helper))
	}
	in, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(helper)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &out, &errb
	if err := children.Or(u.Monitor).Run(cmd); err != nil {
		if msg := strings.TrimSpace(errb.String()); msg != "" {
			return errors.New(lastLine(msg))
		}
		return fmt.Errorf("%s %s: %w", HelperName, req.Op, err)
	}
	if out.Len() > 0 {
		var after Unit
		if err := json.Unmarshal(out.Bytes(), &after); err != nil {
			return fmt.Errorf("%s %s: %w", HelperName, req.Op, err)
		}
		after.Monitor = u.Monitor // not in the helper's reply: the caller's, for the next call
		*u = after
	}
	return nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
