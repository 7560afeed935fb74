//go:build cgo

package goinit

import (
	"encoding/binary"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// A syscall newer than every syscall a profile names is one the profile's author could not
// know about: runc (1.0.0+) answers it ENOSYS instead of the profile's default action, so that
// programs fall back to an older syscall (glibc's clone3 -> clone, faccessat2 -> faccessat)
// rather than fail with EPERM. husk does the same: a short stub in front of libseccomp's
// program, per architecture, returns ENOSYS for a syscall number above the highest the
// profile names. Profiles whose default is to allow need no stub.

// auditArches maps the architectures husk stubs to their AUDIT_ARCH values.
var auditArches = map[seccomp.ScmpArch]uint32{
	seccomp.ArchAMD64: 0xc000003e, seccomp.ArchX86: 0x40000003, seccomp.ArchARM64: 0xc00000b7,
}

const x32SyscallBit = 0x40000000

// withEnosysStub returns prog (libseccomp's exported program) with the ENOSYS stub in front.
func withEnosysStub(cfg *rspec.LinuxSeccomp, prog []byte) []byte {
	switch cfg.DefaultAction {
	case rspec.ActAllow, rspec.ActLog, rspec.ActTrace:
		return prog
	}
	native, err := seccomp.GetNativeArch()
	if err != nil {
		return prog
	}
	arches := []seccomp.ScmpArch{native}
	for _, a := range cfg.Architectures {
		if arch, err := seccomp.GetArchFromString(archName(a)); err == nil && arch != native {
			arches = append(arches, arch)
		}
	}
	type sockFilter struct {
		code   uint16
		jt, jf uint8
		k      uint32
	}
	var stub []sockFilter
	for _, arch := range arches {
		audit, ok := auditArches[arch]
		if !ok {
			continue
		}
		var last int32 = -1
		for _, sc := range cfg.Syscalls {
			for _, name := range sc.Names {
				if n, err := seccomp.GetSyscallFromNameByArch(name, arch); err == nil && int32(n) > last {
					last = int32(n)
				}
			}
		}
		if last < 0 {
			continue
		}
		// ld arch; jne audit -> next arch; ld nr; [x86_64: jset x32 -> next]; jgt last -> ENOSYS
		blk := []sockFilter{
			{unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, 0, 0, 4},
			{unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, 0, 0, audit}, // jf patched below
			{unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, 0, 0, 0},
		}
		if arch == seccomp.ArchAMD64 {
			blk = append(blk, sockFilter{unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, 0, 0, x32SyscallBit}) // jt patched
		}
		blk = append(blk,
			sockFilter{unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, 0, 1, uint32(last)},
			sockFilter{unix.BPF_RET | unix.BPF_K, 0, 0, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		)
		blk[1].jf = uint8(len(blk) - 2) // past this block
		if arch == seccomp.ArchAMD64 {
			blk[3].jt = 2 // an x32 call: past this block
		}
		stub = append(stub, blk...)
	}
	if len(stub) == 0 {
		return prog
	}
	out := make([]byte, 0, len(stub)*8+len(prog))
	for _, f := range stub {
		out = binary.NativeEndian.AppendUint16(out, f.code)
		out = append(out, f.jt, f.jf)
		out = binary.NativeEndian.AppendUint32(out, f.k)
	}
	return append(out, prog...)
}
