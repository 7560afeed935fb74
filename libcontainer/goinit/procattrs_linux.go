package goinit

import (
	"fmt"
	"unsafe"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/specs"
)

// applyProcessAttrs applies, in the init and for the thread that execs, what runc 1.2+
// applies: process.scheduler, process.ioPriority, linux.personality and linux.memoryPolicy.
// All of them survive execve. (process.execCPUAffinity is set by the parent: see initProcess.)
func applyProcessAttrs(p *rspec.Process, l *rspec.Linux) error {
	if p.Scheduler != nil {
		attr, err := specs.SchedAttr(p.Scheduler)
		if err != nil {
			return err
		}
		if err := unix.SchedSetAttr(0, attr, 0); err != nil {
			if err == unix.EPERM && l != nil && l.Resources != nil && l.Resources.CPU != nil && l.Resources.CPU.Cpus != "" {
				// The kernel refuses SCHED_DEADLINE to a task whose affinity is not the whole
				// root domain; say so in runc's words rather than a bare EPERM.
				return fmt.Errorf("process.scheduler %s: process scheduler can't be used together with AllowedCPUs (linux.resources.cpu.cpus %q): %w", p.Scheduler.Policy, l.Resources.CPU.Cpus, err)
			}
			return fmt.Errorf("process.scheduler: sched_setattr %s: %w", p.Scheduler.Policy, err)
		}
	}
	if p.IOPriority != nil {
		prio, err := specs.IOPrio(p.IOPriority)
		if err != nil {
			return err
		}
		const ioprioWhoProcess = 1
		if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(prio)); e != 0 {
			return fmt.Errorf("process.ioPriority: ioprio_set %s: %w", p.IOPriority.Class, e)
		}
	}
	if l == nil {
		return nil
	}
	if l.Personality != nil {
		v, err := specs.Personality(l.Personality)
		if err != nil {
			return err
		}
		if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, v, 0, 0); e != 0 {
			return fmt.Errorf("linux.personality %s: %w", l.Personality.Domain, e)
		}
	}
	if l.MemoryPolicy != nil {
		mode, mask, err := specs.MemPolicy(l.MemoryPolicy)
		if err != nil {
			return err
		}
		var ptr unsafe.Pointer
		maxNode := uintptr(0)
		if len(mask) > 0 {
			ptr, maxNode = unsafe.Pointer(&mask[0]), uintptr(len(mask)*64)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SET_MEMPOLICY, uintptr(mode), uintptr(ptr), maxNode); e != 0 {
			return fmt.Errorf("linux.memoryPolicy: set_mempolicy %s: %w", l.MemoryPolicy.Mode, e)
		}
	}
	return nil
}
