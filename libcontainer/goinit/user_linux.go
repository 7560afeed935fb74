package goinit

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/procfs"
	"github.com/husk-runtime/husk/specs"
)

// setupUser switches to the process's user and capability sets. All calls are raw, per-thread
// syscalls: this thread is the one that execs, and the rest of the Go runtime dies with exec.
func setupUser(p *rspec.Process) error {
	caps := p.Capabilities
	if caps == nil {
		caps = &rspec.LinuxCapabilities{}
	}
	last := specs.LastCap()
	bounding := specs.CapMask(caps.Bounding, last)
	for c := 0; c <= last; c++ {
		if bounding&(1<<uint(c)) == 0 {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
				return fmt.Errorf("drop bounding capability %d: %w", c, err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	groups := make([]uint32, 0, len(p.User.AdditionalGids))
	groups = append(groups, p.User.AdditionalGids...)
	if err := setgroups(groups); err != nil {
		// In a user namespace with setgroups denied, only an empty list is allowed anyway.
		if !(errors.Is(err, unix.EPERM) && len(groups) == 0) {
			return fmt.Errorf("setgroups %v: %w", groups, err)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(p.User.GID), uintptr(p.User.GID), uintptr(p.User.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", p.User.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(p.User.UID), uintptr(p.User.UID), uintptr(p.User.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", p.User.UID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	eff := specs.CapMask(caps.Effective, last)
	perm := specs.CapMask(caps.Permitted, last)
	inh := specs.CapMask(caps.Inheritable, last)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	// As runc and crun: an ambient capability that cannot be raised (not both permitted and
	// inheritable) is skipped; husk warned about it before the create (specs.UnraisableAmbient).
	for _, name := range caps.Ambient {
		if c, ok := specs.Capability(name); ok {
			_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0)
		}
	}
	return nil
}

func setgroups(gids []uint32) error {
	var e unix.Errno
	if len(gids) == 0 {
		_, _, e = unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0)
	} else {
		_, _, e = unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(unsafe.Pointer(&gids[0])), 0)
	}
	if e != 0 {
		return e
	}
	return nil
}

// applyLabels sets the AppArmor profile or SELinux label for the exec, or says why it cannot.
func applyLabels(p *rspec.Process) error {
	if p.ApparmorProfile != "" {
		b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled")
		if strings.TrimSpace(string(b)) != "Y" {
			return fmt.Errorf("process.apparmorProfile %q: AppArmor is not enabled on this host", p.ApparmorProfile)
		}
		if err := procfs.WriteFile("thread-self/attr/apparmor/exec", "exec "+p.ApparmorProfile); err != nil {
			if err2 := procfs.WriteFile("thread-self/attr/exec", "exec "+p.ApparmorProfile); err2 != nil {
				return fmt.Errorf("apply AppArmor profile %q: %w", p.ApparmorProfile, err)
			}
		}
	}
	if p.SelinuxLabel != "" {
		if !specs.SELinuxEnabled() {
			return fmt.Errorf("process.selinuxLabel %q: SELinux is not enabled on this host", p.SelinuxLabel)
		}
		if err := procfs.WriteFile("thread-self/attr/exec", p.SelinuxLabel); err != nil {
			return fmt.Errorf("apply SELinux label %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}
