//go:build cgo

package goinit

import (
	"fmt"
	"io"
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// compileSeccomp compiles the spec's filter with libseccomp into the BPF program the kernel
// loads. libseccomp's own load (with husk's attributes: no no_new_privs, no flags) loads this
// same program; having the bytes lets the exec fast path load it without libseccomp.
func compileSeccomp(cfg *rspec.LinuxSeccomp) ([]byte, error) {
	filter, err := buildSeccomp(cfg)
	if err != nil {
		return nil, err
	}
	defer filter.Release()
	fd, err := unix.MemfdCreate("husk-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	f := os.NewFile(uintptr(fd), "husk-seccomp")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("seccomp: export the filter: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	bpf, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return withEnosysStub(cfg, bpf), nil
}

// buildSeccomp turns the spec's filter into a libseccomp filter.
func buildSeccomp(cfg *rspec.LinuxSeccomp) (*seccomp.ScmpFilter, error) {
	def, err := seccompAction(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	filter, err := seccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			filter.Release()
		}
	}()
	// no_new_privs is husk's decision (process.noNewPrivileges), not libseccomp's.
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	for _, a := range cfg.Architectures {
		arch, err := seccomp.GetArchFromString(archName(a))
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp.architectures: %q: %w", a, err)
		}
		if err := filter.AddArch(arch); err != nil {
			return nil, fmt.Errorf("seccomp: add arch %s: %w", a, err)
		}
	}
	for i, sc := range cfg.Syscalls {
		act, err := seccompAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("linux.seccomp.syscalls[%d]: %w", i, err)
		}
		if act == def {
			continue // libseccomp refuses rules equal to the default; they change nothing
		}
		conds := make([]seccomp.ScmpCondition, 0, len(sc.Args))
		for _, a := range sc.Args {
			op, err := seccompOp(a.Op)
			if err != nil {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d].args: %w", i, err)
			}
			c, err := seccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
			if err != nil {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d].args: %w", i, err)
			}
			conds = append(conds, c)
		}
		for _, name := range sc.Names {
			// The listener goes to the agent over the sync pipe with write(2): a notified
			// write would wait for an agent that has not got it yet (runc's words).
			if act == seccomp.ActNotify && name == "write" {
				return nil, fmt.Errorf("linux.seccomp.syscalls[%d]: SCMP_ACT_NOTIFY cannot be used for the write syscall", i)
			}
			call, err := seccomp.GetSyscallFromName(name)
			if err != nil {
				continue // unknown on this architecture or libseccomp version: runc skips too
			}
			if len(conds) == 0 {
				err = filter.AddRule(call, act)
			} else if sameArg(conds) {
				// Conditions on one argument are alternatives (OR): one rule each.
				for _, c := range conds {
					if err = filter.AddRuleConditional(call, act, []seccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			} else {
				err = filter.AddRuleConditional(call, act, conds)
			}
			if err != nil {
				return nil, fmt.Errorf("seccomp rule for %s: %w", name, err)
			}
		}
	}
	ok = true
	return filter, nil
}

func sameArg(conds []seccomp.ScmpCondition) bool {
	if len(conds) < 2 {
		return false
	}
	for _, c := range conds[1:] {
		if c.Argument != conds[0].Argument {
			return false
		}
	}
	return true
}

func seccompAction(a rspec.LinuxSeccompAction, errnoRet *uint) (seccomp.ScmpAction, error) {
	switch a {
	case rspec.ActKill, rspec.ActKillThread:
		return seccomp.ActKillThread, nil
	case rspec.ActKillProcess:
		return seccomp.ActKillProcess, nil
	case rspec.ActTrap:
		return seccomp.ActTrap, nil
	case rspec.ActErrno:
		e := int16(1) // EPERM, as runc defaults
		if errnoRet != nil {
			e = int16(*errnoRet)
		}
		return seccomp.ActErrno.SetReturnCode(e), nil
	case rspec.ActTrace:
		e := int16(1)
		if errnoRet != nil {
			e = int16(*errnoRet)
		}
		return seccomp.ActTrace.SetReturnCode(e), nil
	case rspec.ActAllow:
		return seccomp.ActAllow, nil
	case rspec.ActLog:
		return seccomp.ActLog, nil
	case rspec.ActNotify:
		return seccomp.ActNotify, nil
	}
	return seccomp.ActInvalid, fmt.Errorf("unknown action %q", a)
}

func seccompOp(op rspec.LinuxSeccompOperator) (seccomp.ScmpCompareOp, error) {
	switch op {
	case rspec.OpNotEqual:
		return seccomp.CompareNotEqual, nil
	case rspec.OpLessThan:
		return seccomp.CompareLess, nil
	case rspec.OpLessEqual:
		return seccomp.CompareLessOrEqual, nil
	case rspec.OpEqualTo:
		return seccomp.CompareEqual, nil
	case rspec.OpGreaterEqual:
		return seccomp.CompareGreaterEqual, nil
	case rspec.OpGreaterThan:
		return seccomp.CompareGreater, nil
	case rspec.OpMaskedEqual:
		return seccomp.CompareMaskedEqual, nil
	}
	return seccomp.CompareInvalid, fmt.Errorf("unknown operator %q", op)
}

// archName turns SCMP_ARCH_X86_64 into libseccomp's "x86_64".
func archName(a rspec.Arch) string {
	s := string(a)
	if len(s) > 10 && s[:10] == "SCMP_ARCH_" {
		s = s[10:]
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
