package libcontainer

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loadSeccompBPF loads a compiled filter on this thread, as libseccomp would with husk's
// attributes: no flags, no_new_privs left to the caller.
func loadSeccompBPF(bpf []byte) error {
	if len(bpf) == 0 || len(bpf)%8 != 0 || len(bpf)/8 > 0xffff {
		return fmt.Errorf("seccomp: malformed filter (%d bytes)", len(bpf))
	}
	prog := unix.SockFprog{Len: uint16(len(bpf) / 8), Filter: (*unix.SockFilter)(unsafe.Pointer(&bpf[0]))}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(bpf)
	if errno != 0 {
		return fmt.Errorf("load seccomp filter: %w", errno)
	}
	return nil
}

// loadSeccomp loads the process's filter: the one compiled earlier in this init, else the
// spec's, compiled now.
func loadSeccomp(cfg *initConfig) error {
	bpf := cfg.seccompBPF
	if bpf == nil {
		var err error
		if bpf, err = compileSeccomp(cfg.Spec.Linux.Seccomp); err != nil {
			return err
		}
	}
	return loadSeccompBPF(bpf)
}
