package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroup2 has no devices files: access is decided by an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. husk assembles that program itself (a
// few dozen instructions) rather than link an eBPF library into every husk process.

const (
	bpfProgLoad      = 5
	bpfProgAttach    = 8
	bpfProgDetach    = 9
	bpfProgGetFdByID = 13
	bpfProgQuery     = 16

	bpfProgTypeCgroupDevice = 15
	bpfCgroupDevice         = 6 // attach type
	bpfFAllowMulti          = 2

	devAccessMknod = 1
	devAccessRead  = 2
	devAccessWrite = 4
	devAccessAll   = devAccessMknod | devAccessRead | devAccessWrite
	devTypeBlock   = 1
	devTypeChar    = 2
)

// devException is one device rule after the rules were folded the way the v1 kernel folds
// writes to devices.allow and devices.deny: a default verdict plus exceptions to it.
type devException struct {
	typ          byte // 'c' or 'b'; 'a' matches both
	major, minor int64
	access       uint32
}

func accessBits(s string) uint32 {
	if s == "" {
		return devAccessAll
	}
	var a uint32
	for _, c := range s {
		switch c {
		case 'r':
			a |= devAccessRead
		case 'w':
			a |= devAccessWrite
		case 'm':
			a |= devAccessMknod
		}
	}
	return a
}

// foldDeviceRules applies the rules in order to an allow-all start, as the v1 controller does:
// a rule of type "a" resets the default and drops the exceptions, a rule agreeing with the
// default removes the access it names from the matching exceptions, any other adds one.
func foldDeviceRules(rules []rspec.LinuxDeviceCgroup) (defaultAllow bool, ex []devException) {
	defaultAllow = true
	for _, r := range rules {
		typ := byte('a')
		if r.Type != "" {
			typ = r.Type[0]
		}
		if typ == 'a' && (r.Major == nil || *r.Major < 0) && (r.Minor == nil || *r.Minor < 0) {
			defaultAllow, ex = r.Allow, nil
			continue
		}
		e := devException{typ: typ, major: -1, minor: -1, access: accessBits(r.Access)}
		if r.Major != nil && *r.Major >= 0 {
			e.major = *r.Major
		}
		if r.Minor != nil && *r.Minor >= 0 {
			e.minor = *r.Minor
		}
		same := func(o devException) bool { return o.typ == e.typ && o.major == e.major && o.minor == e.minor }
		if r.Allow == defaultAllow {
			kept := ex[:0]
			for _, o := range ex {
				if same(o) {
					o.access &^= e.access
				}
				if o.access != 0 {
					kept = append(kept, o)
				}
			}
			ex = kept
			continue
		}
		merged := false
		for i := range ex {
			if same(ex[i]) {
				ex[i].access |= e.access
				merged = true
			}
		}
		if !merged {
			ex = append(ex, e)
		}
	}
	return defaultAllow, ex
}

type bpfInsn struct {
	code uint8
	regs uint8 // dst | src<<4
	off  int16
	imm  int32
}

func insn(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	return bpfInsn{code: code, regs: dst | src<<4, off: off, imm: imm}
}

const (
	opLdxW    = 0x61 // dst = *(u32 *)(src + off)
	opAnd32K  = 0x54
	opRsh32K  = 0x74
	opMov32X  = 0xbc
	opMov64K  = 0xb7
	opJneK    = 0x55
	opJneX    = 0x5d
	opJeqK    = 0x15
	opExit    = 0x95
	skipBlock = -1 // placeholder offset: jump to the next rule
)

// deviceProgram assembles the filter. The context is struct bpf_cgroup_dev_ctx {u32
// access_type (access<<16 | type); u32 major; u32 minor}; the program returns 1 to allow.
func deviceProgram(defaultAllow bool, ex []devException) []bpfInsn {
	prog := []bpfInsn{
		insn(opLdxW, 2, 1, 0, 0), insn(opAnd32K, 2, 0, 0, 0xffff), // r2 = type
		insn(opLdxW, 3, 1, 0, 0), insn(opRsh32K, 3, 0, 0, 16), // r3 = requested access
		insn(opLdxW, 4, 1, 4, 0), // r4 = major
		insn(opLdxW, 5, 1, 8, 0), // r5 = minor
	}
	verdict := func(allow bool) int32 {
		if allow {
			return 1
		}
		return 0
	}
	for _, e := range ex {
		var b []bpfInsn
		switch e.typ {
		case 'c':
			b = append(b, insn(opJneK, 2, 0, skipBlock, devTypeChar))
		case 'b':
			b = append(b, insn(opJneK, 2, 0, skipBlock, devTypeBlock))
		}
		if e.access != devAccessAll {
			b = append(b, insn(opMov32X, 1, 3, 0, 0), insn(opAnd32K, 1, 0, 0, int32(e.access)))
			if defaultAllow {
				// A deny exception denies any request touching the access it names.
				b = append(b, insn(opJeqK, 1, 0, skipBlock, 0))
			} else {
				// An allow exception allows only requests it covers entirely.
				b = append(b, insn(opJneX, 1, 3, skipBlock, 0))
			}
		}
		if e.major >= 0 {
			b = append(b, insn(opJneK, 4, 0, skipBlock, int32(e.major)))
		}
		if e.minor >= 0 {
			b = append(b, insn(opJneK, 5, 0, skipBlock, int32(e.minor)))
		}
		b = append(b, insn(opMov64K, 0, 0, 0, verdict(!defaultAllow)), insn(opExit, 0, 0, 0, 0))
		for i := range b {
			if b[i].off == skipBlock {
				b[i].off = int16(len(b) - i - 1)
			}
		}
		prog = append(prog, b...)
	}
	return append(prog, insn(opMov64K, 0, 0, 0, verdict(defaultAllow)), insn(opExit, 0, 0, 0, 0))
}

func encode(prog []bpfInsn) []byte {
	out := make([]byte, 8*len(prog))
	for i, p := range prog {
		o := out[8*i:]
		o[0], o[1] = p.code, p.regs
		binary.LittleEndian.PutUint16(o[2:], uint16(p.off))
		binary.LittleEndian.PutUint32(o[4:], uint32(p.imm))
	}
	return out
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
	progName    [16]byte
}

// loadAttempts bounds the loads again after EAGAIN.
const loadAttempts = 25

func loadDeviceProgram(prog []bpfInsn) (int, error) {
	code := encode(prog)
	license := []byte("Apache\x00")
	attr := progLoadAttr{
		progType: bpfProgTypeCgroupDevice,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "husk_devices")
	// The verifier gives up with EAGAIN when a signal is pending for the loading thread, and a
	// Go process gets signals all along (the scheduler's preemption, SIGCHLD in the shim). The
	// load runs on a thread that blocks them for the while (they wait, nothing is lost), and
	// is tried again on EAGAIN all the same, as libbpf and cilium/ebpf do.
	runtime.LockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	masked := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old) == nil
	fd, err := bpf(bpfProgLoad, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	for i := 0; i < loadAttempts && err == unix.EAGAIN; i++ {
		fd, err = bpf(bpfProgLoad, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	}
	if masked {
		_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	}
	runtime.UnlockOSThread()
	if err != nil && (err == unix.EINVAL || err == unix.EACCES) {
		// Load again with the verifier's log, which says what it disliked.
		log := make([]byte, 16<<10)
		attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
		if _, err2 := bpf(bpfProgLoad, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 != nil {
			n := 0
			for n < len(log) && log[n] != 0 {
				n++
			}
			err = fmt.Errorf("%w: %s", err, string(log[:n]))
		}
		runtime.KeepAlive(log)
	}
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if err != nil {
		return -1, fmt.Errorf("load the eBPF device filter: %w", err)
	}
	return fd, nil
}

type progAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

type progQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

// setDeviceFilter attaches the filter for rules to the cgroup2 directory dir, then detaches the
// filters attached before it (an update), so there is no moment without one.
func setDeviceFilter(dir string, rules []rspec.LinuxDeviceCgroup) error {
	prog, err := loadDeviceProgram(deviceProgram(foldDeviceRules(rules)))
	if err != nil {
		return err
	}
	defer unix.Close(prog)
	cg, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(cg)
	old := attachedPrograms(cg)
	attach := progAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(prog), attachType: bpfCgroupDevice, attachFlags: bpfFAllowMulti}
	if _, err := bpf(bpfProgAttach, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		if len(old) == 0 {
			return fmt.Errorf("attach the eBPF device filter to %s: %w", dir, err)
		}
		// A filter attached without BPF_F_ALLOW_MULTI (by another tool) is replaced in place.
		attach.attachFlags = 0
		if _, err := bpf(bpfProgAttach, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
			return fmt.Errorf("attach the eBPF device filter to %s: %w", dir, err)
		}
		return nil
	}
	for _, id := range old {
		get := struct{ id, next, flags uint32 }{id: id}
		fd, err := bpf(bpfProgGetFdByID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if err != nil {
			continue
		}
		detach := progAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(fd), attachType: bpfCgroupDevice}
		_, err = bpf(bpfProgDetach, unsafe.Pointer(&detach), unsafe.Sizeof(detach))
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("detach the previous device filter from %s: %w", dir, err)
		}
	}
	return nil
}

// attachedPrograms lists the ids of the device filters attached to the cgroup itself.
func attachedPrograms(cg int) []uint32 {
	ids := make([]uint32, 64)
	q := progQueryAttr{targetFd: uint32(cg), attachType: bpfCgroupDevice, progIDs: uint64(uintptr(unsafe.Pointer(&ids[0]))), progCnt: uint32(len(ids))}
	_, err := bpf(bpfProgQuery, unsafe.Pointer(&q), unsafe.Sizeof(q))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil
	}
	return ids[:q.progCnt]
}
