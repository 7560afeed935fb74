package goinit

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/specs"
)

// loadSeccompBPF loads a compiled filter on this thread, as libseccomp would with husk's
// attributes: no_new_privs left to the caller; the spec's flags, with SECCOMP_FILTER_FLAG_NEW_LISTENER
// for a filter with SCMP_ACT_NOTIFY, which then returns the listener's fd (else -1).
func loadSeccompBPF(bpf []byte, flags uintptr) (int, error) {
	if len(bpf) == 0 || len(bpf)%8 != 0 || len(bpf)/8 > 0xffff {
		return -1, fmt.Errorf("seccomp: malformed filter (%d bytes)", len(bpf))
	}
	prog := unix.SockFprog{Len: uint16(len(bpf) / 8), Filter: (*unix.SockFilter)(unsafe.Pointer(&bpf[0]))}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(bpf)
	if errno != 0 {
		return -1, fmt.Errorf("load seccomp filter: %w", errno)
	}
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		return -1, nil
	}
	return int(r), nil
}

// initSeccomp is the Go init's filter: compiled once (and handed to husk), loaded once.
type initSeccomp struct {
	bpf    []byte
	loaded bool
}

// loadSeccomp loads the process's filter: the one compiled earlier in this init, else the
// spec's, compiled now. A filter with SCMP_ACT_NOTIFY gets a listener, which goes to the
// parent and from it to the seccomp agent before this returns (pipe: the sync pipe).
func loadSeccomp(cfg *initConfig, pipe *initproto.Conn, sc *initSeccomp) error {
	bpf := sc.bpf
	if bpf == nil {
		var err error
		if bpf, err = compileSeccomp(cfg.Spec.Linux.Seccomp); err != nil {
			return err
		}
	}
	notify := specs.HasNotify(cfg.Spec.Linux.Seccomp)
	flags, err := specs.SeccompFlags(cfg.Spec.Linux.Seccomp.Flags, notify)
	if err != nil {
		return err
	}
	if notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	fd, err := loadSeccompBPF(bpf, flags)
	if err != nil {
		return err
	}
	sc.loaded = true
	if !notify {
		return nil
	}
	defer unix.Close(fd)
	if pipe == nil {
		return errors.New("seccomp: SCMP_ACT_NOTIFY: no parent to pass the listener to")
	}
	return pipe.HandOverSeccompFd(fd)
}
