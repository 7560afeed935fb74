package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/libcontainer/hooks"
)

// RestoreFunc brings a checkpointed container's processes back (CRIU, package criu): it gets
// the new container, its state directory and cgroup made, and returns the restored init's pid.
// The cgroup's first Apply (of the restorer's own pid, so that what it restores lands there)
// starts a systemd unit under the systemd driver.
type RestoreFunc func(c *Container, cg *cgroups.Manager) (pid int, err error)

// Restore makes container o.ID as Create does (state, cgroup with every resource) but lets
// restore bring its processes back from a checkpoint instead of starting an init: the
// container is running when Restore returns. Nothing is left behind on failure.
func Restore(root string, o CreateOpts, restore RestoreFunc) (c *Container, err error) {
	if err := ValidateID(o.ID); err != nil {
		return nil, err
	}
	if o.Spec.Process != nil && o.Spec.Process.Terminal && o.ConsoleSocket == "" {
		return nil, errors.New("process.terminal is true: --console-socket is required")
	}
	var undo undoStack
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	if c, err = newContainer(root, o, &undo); err != nil {
		return nil, err
	}
	cg, err := c.newCgroup(o, cgroupResources(o.Spec), &undo)
	if err != nil {
		return nil, err
	}
	pid, err := restore(c, cg)
	if err != nil {
		return nil, fmt.Errorf("container %s: restore: %w", o.ID, err)
	}
	undo.push(func() { (&Process{Pid: pid}).kill() })
	c.state.InitPid = pid
	if c.state.InitStartTime, _, err = procStartTime(pid); err != nil {
		return nil, fmt.Errorf("container %s: the restored init exited", o.ID)
	}
	if err := writeState(c.dir, c.state); err != nil {
		return nil, err
	}
	if err := writePidFile(o.PidFile, pid); err != nil {
		return nil, err
	}
	c.init = &Process{Pid: pid}
	return c, nil
}

// Dir is the container's state directory.
func (c *Container) Dir() string { return c.dir }

// Rootfs is the container's root filesystem on the host.
func (c *Container) Rootfs() string { return c.state.Rootfs }

// Spec decodes the container's config.
func (c *Container) Spec() (*rspec.Spec, error) {
	var s rspec.Spec
	if err := json.Unmarshal(c.state.Config, &s); err != nil {
		return nil, fmt.Errorf("container %s: decode config: %w", c.state.ID, err)
	}
	if s.Linux == nil {
		s.Linux = &rspec.Linux{}
	}
	return &s, nil
}

// RunRestoreHooks runs the prestart and createRuntime hooks for a container being restored,
// with pid its init's (CRIU's setup-namespaces point, where runc runs them).
func (c *Container) RunRestoreHooks(pid int) error {
	h := c.state.Hooks
	if h == nil {
		return nil
	}
	st := c.hookState(Creating)
	st.Pid = pid
	if err := hooks.Run(c.Monitor, h.Prestart, "prestart", st); err != nil { //nolint:staticcheck // prestart is deprecated but still honoured
		return err
	}
	return hooks.Run(c.Monitor, h.CreateRuntime, "createRuntime", st)
}
