// Package sdbus carries out the systemd driver's unit operations over D-Bus (go-systemd and
// godbus): start a transient unit with the container's init and its resources as properties,
// set properties, stop it and the slices its start brought up. It runs in husk-systemd, never
// in husk itself (see package systemd).
package sdbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/libcontainer/cgroups/systemd"
)

// jobTimeout is how long husk waits for systemd to start or stop a unit (runc waits 30 s).
const jobTimeout = 30 * time.Second

func connect(ctx context.Context) (*sd.Conn, error) {
	// systemd's private socket first (root, no dbus-daemon needed), then the system bus.
	c, err := sd.NewSystemdConnectionContext(ctx)
	if err == nil {
		return c, nil
	}
	c, err2 := sd.NewSystemConnectionContext(ctx)
	if err2 != nil {
		return nil, fmt.Errorf("connecting to systemd over D-Bus: %w", err)
	}
	return c, nil
}

// withConn runs f with a connection to systemd, within the job timeout.
func withConn(f func(context.Context, *sd.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	c, err := connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c)
}

// Start creates the unit with pid in it (a scope) and res as its properties, and waits for
// systemd to finish the job.
func Start(u *systemd.Unit, pid int, res *rspec.LinuxResources) error {
	return withConn(func(ctx context.Context, c *sd.Conn) error { return start(ctx, c, u, pid, res) })
}

func start(ctx context.Context, c *sd.Conn, u *systemd.Unit, pid int, res *rspec.LinuxResources) error {
	extra, err := annotationProperties(u.Properties)
	if err != nil {
		return err
	}
	for _, s := range u.ParentSlices() {
		if p, err := c.GetUnitPropertyContext(ctx, s, "ActiveState"); err == nil && p.Value.Value() != "active" {
			u.CreatedSlices = append(u.CreatedSlices, s)
		}
	}
	props := []sd.Property{
		sd.PropDescription(u.Description),
		newProp("DefaultDependencies", false),
		newProp("Delegate", true),
		newProp("MemoryAccounting", true),
		newProp("CPUAccounting", true),
		newProp("TasksAccounting", true),
	}
	if u.V1 {
		props = append(props, newProp("BlockIOAccounting", true))
	} else {
		props = append(props, newProp("IOAccounting", true))
	}
	if strings.HasSuffix(u.Name, ".slice") {
		props = append(props, sd.PropWants(u.Slice))
	} else {
		props = append(props, sd.PropSlice(u.Slice), newProp("PIDs", []uint32{uint32(pid)}))
	}
	rp, err := resourceProperties(c, u, res)
	if err != nil {
		return err
	}
	props = append(append(props, rp...), extra...)
	for attempt := 0; ; attempt++ {
		err = runJob(ctx, u.Name, func(ch chan<- string) (int, error) {
			return c.StartTransientUnitContext(ctx, u.Name, "replace", props, ch)
		})
		if err == nil || attempt > 0 || !isDBusError(err, "org.freedesktop.systemd1.UnitExists") {
			break
		}
		// A failed unit of the same name (an earlier container's) stays loaded until reset.
		_ = c.ResetFailedUnitContext(ctx, u.Name)
	}
	if err != nil {
		return fmt.Errorf("systemd unit %s: %w", u.Name, err)
	}
	return nil
}

// Set applies res to the running unit as properties (runtime only, as runc).
func Set(u *systemd.Unit, res *rspec.LinuxResources) error {
	return withConn(func(ctx context.Context, c *sd.Conn) error { return set(ctx, c, u, res) })
}

func set(ctx context.Context, c *sd.Conn, u *systemd.Unit, res *rspec.LinuxResources) error {
	props, err := resourceProperties(c, u, res)
	if err != nil || len(props) == 0 {
		return err
	}
	if err := c.SetUnitPropertiesContext(ctx, u.Name, true, props...); err != nil {
		return fmt.Errorf("systemd unit %s: setting properties: %w", u.Name, err)
	}
	return nil
}

// Stop stops the unit (systemd kills what is left in it and removes its cgroup), clears a
// failed state, and stops the parent slices its start created once they hold nothing else.
func Stop(u *systemd.Unit) error {
	return withConn(func(ctx context.Context, c *sd.Conn) error { return stop(ctx, c, u) })
}

func stop(ctx context.Context, c *sd.Conn, u *systemd.Unit) error {
	err := runJob(ctx, u.Name, func(ch chan<- string) (int, error) {
		return c.StopUnitContext(ctx, u.Name, "replace", ch)
	})
	if isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") {
		err = nil
	}
	_ = c.ResetFailedUnitContext(ctx, u.Name)
	if err != nil {
		return fmt.Errorf("systemd unit %s: stop: %w", u.Name, err)
	}
	for _, s := range u.CreatedSlices {
		path, err := systemd.ExpandSlice(s)
		if err != nil || hasChildCgroups(cgroupDir(u, path)) {
			break // another container's unit, or a slice of its own, lives there still
		}
		if err := runJob(ctx, s, func(ch chan<- string) (int, error) {
			return c.StopUnitContext(ctx, s, "replace", ch)
		}); err != nil && !isDBusError(err, "org.freedesktop.systemd1.NoSuchUnit") {
			return fmt.Errorf("systemd slice %s: stop: %w", s, err)
		}
	}
	return nil
}

// cgroupDir is the directory of a cgroup path in the hierarchy systemd keeps its tree in.
func cgroupDir(u *systemd.Unit, path string) string {
	if u.V1 {
		return filepath.Join("/sys/fs/cgroup/systemd", path)
	}
	return filepath.Join("/sys/fs/cgroup", path)
}

func hasChildCgroups(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() {
			return true
		}
	}
	return false
}

// runJob starts a systemd job and waits for its result.
func runJob(ctx context.Context, unit string, start func(chan<- string) (int, error)) error {
	ch := make(chan string, 1)
	if _, err := start(ch); err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r != "done" {
			return fmt.Errorf("systemd job for %s ended %q", unit, r)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("timed out waiting for systemd's job for %s", unit)
	}
}

func isDBusError(err error, name string) bool {
	var e godbus.Error
	if errors.As(err, &e) {
		return e.Name == name
	}
	var pe *godbus.Error
	return errors.As(err, &pe) && pe.Name == name
}

func newProp(name string, v any) sd.Property {
	return sd.Property{Name: name, Value: godbus.MakeVariant(v)}
}

// annotationProperties parses the org.systemd.property.NAME annotations (NAME -> value in
// GVariant text form, "uint64 123"); a NAME ending in lowercase+"Sec" is converted to
// NAME...USec in microseconds, as runc does.
func annotationProperties(props map[string]string) ([]sd.Property, error) {
	var out []sd.Property
	for name, v := range props {
		k := systemd.PropertyPrefix + name
		value, err := godbus.ParseVariant(v, godbus.Signature{})
		if err != nil {
			return nil, fmt.Errorf("annotation %q: value %q: %w", k, v, err)
		}
		if base, ok := strings.CutSuffix(name, "Sec"); ok && base != "" && base[len(base)-1] >= 'a' && base[len(base)-1] <= 'z' {
			if value, err = secToUSec(value); err != nil {
				return nil, fmt.Errorf("annotation %q: %w", k, err)
			}
			name = base + "USec"
		}
		out = append(out, sd.Property{Name: name, Value: value})
	}
	return out, nil
}

func secToUSec(v godbus.Variant) (godbus.Variant, error) {
	const m = 1_000_000
	switch x := v.Value().(type) {
	case uint8:
		return godbus.MakeVariant(uint64(x) * m), nil
	case uint16:
		return godbus.MakeVariant(uint64(x) * m), nil
	case uint32:
		return godbus.MakeVariant(uint64(x) * m), nil
	case uint64:
		return godbus.MakeVariant(x * m), nil
	case int16:
		return godbus.MakeVariant(uint64(x) * m), nil
	case int32:
		if x < 0 {
			break
		}
		return godbus.MakeVariant(uint64(x) * m), nil
	case int64:
		if x < 0 {
			break
		}
		return godbus.MakeVariant(uint64(x) * m), nil
	case float64:
		if x < 0 {
			break
		}
		return godbus.MakeVariant(uint64(x * m)), nil
	}
	return v, fmt.Errorf("%s is not a number of seconds", v.String())
}
