package initproto

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// The constructor's requests: a 4-byte little-endian length, then NUL-terminated "key=value"
// records, computed and checked here; the C side (nsenter/execfast.c) applies them.

// The records of an ExecRequest.
const (
	KeyUID          = "uid"
	KeyGID          = "gid"
	KeyGroup        = "group" // one per additional gid
	KeyUmask        = "umask"
	KeyBounding     = "bounding" // capability masks, hex
	KeyEffective    = "effective"
	KeyPermitted    = "permitted"
	KeyInheritable  = "inheritable"
	KeyAmbient      = "ambient" // one per capability number
	KeyLastCap      = "lastcap"
	KeyNoNewPrivs   = "nnp"
	KeySeccomp      = "seccomp"      // the compiled filter, hex
	KeySeccompFlags = "seccompflags" // seccomp(2) flags, hex
	KeyCwd          = "cwd"
	KeyPreserve     = "preserve" // LISTEN_FDS-style extra fds kept open
	KeySetsid       = "setsid"   // create: a session of its own
	KeyFifo         = "fifo"     // create: the exec fifo's fd
	KeyRlimit       = "rlimit"   // "resource,soft,hard"
	KeyArg          = "arg"
	KeyEnv          = "env"
)

// The records of a CreateRequest.
const (
	KeyCgroupNS = "cgroupns" // make a cgroup namespace
	KeyKeyring  = "keyring"  // join a new session keyring of this name
	KeyProc     = "proc"     // open a procfs context in the new pid namespace (NsReady carries it)
)

// The constructor's fixed tables; a process beyond them goes to the Go init.
const (
	MaxItems   = 4096 // arguments, and environment entries
	MaxRlimits = 32
	MaxAmbient = 64
	MaxRequest = 8 << 20 // bytes
)

// Rlimit is one resource limit; Resource is RLIMIT_*'s number.
type Rlimit struct {
	Resource   int
	Soft, Hard uint64
}

// ExecRequest is a process for the constructor to set up and exec, in the order of the Go
// init's prepareProcess and setupUser.
type ExecRequest struct {
	UID, GID                                    uint32
	Groups                                      []uint32
	Umask                                       *uint32
	Bounding, Effective, Permitted, Inheritable uint64
	Ambient                                     []int
	LastCap                                     int
	NoNewPrivs                                  bool
	Seccomp                                     []byte // a compiled filter (8-byte instructions), or none
	SeccompFlags                                uint64
	Cwd                                         string
	Preserve                                    int
	Rlimits                                     []Rlimit
	Args, Env                                   []string
	Setsid                                      bool // create
	Fifo                                        int  // create: the exec fifo's fd; 0 for none
}

// Check reports what the constructor would refuse, with room for moreEnv entries added later.
func (r *ExecRequest) Check(moreEnv int) error {
	switch {
	case len(r.Args) == 0:
		return fmt.Errorf("no arguments")
	case len(r.Args) > MaxItems:
		return fmt.Errorf("%d arguments, more than %d", len(r.Args), MaxItems)
	case len(r.Env)+moreEnv > MaxItems:
		return fmt.Errorf("%d environment entries, more than %d", len(r.Env)+moreEnv, MaxItems)
	case len(r.Rlimits) > MaxRlimits:
		return fmt.Errorf("%d rlimits, more than %d", len(r.Rlimits), MaxRlimits)
	case len(r.Ambient) > MaxAmbient:
		return fmt.Errorf("%d ambient capabilities, more than %d", len(r.Ambient), MaxAmbient)
	case len(r.Seccomp)%8 != 0 || len(r.Seccomp)/8 > 0xffff:
		return fmt.Errorf("a seccomp filter of %d bytes", len(r.Seccomp))
	case strings.IndexByte(r.Cwd, 0) >= 0:
		return fmt.Errorf("a NUL byte in cwd")
	}
	for _, list := range [][]string{r.Args, r.Env} {
		for _, s := range list {
			if strings.IndexByte(s, 0) >= 0 {
				return fmt.Errorf("a NUL byte in %q", s)
			}
		}
	}
	return nil
}

// Encode returns the request; r must pass Check.
func (r *ExecRequest) Encode() []byte {
	var w records
	w.start(512)
	hex64 := func(v uint64) string { return strconv.FormatUint(v, 16) }
	w.add(KeyUID, strconv.FormatUint(uint64(r.UID), 10))
	w.add(KeyGID, strconv.FormatUint(uint64(r.GID), 10))
	for _, g := range r.Groups {
		w.add(KeyGroup, strconv.FormatUint(uint64(g), 10))
	}
	if r.Umask != nil {
		w.add(KeyUmask, strconv.FormatUint(uint64(*r.Umask), 10))
	}
	w.add(KeyBounding, hex64(r.Bounding))
	w.add(KeyEffective, hex64(r.Effective))
	w.add(KeyPermitted, hex64(r.Permitted))
	w.add(KeyInheritable, hex64(r.Inheritable))
	for _, c := range r.Ambient {
		w.add(KeyAmbient, strconv.Itoa(c))
	}
	w.add(KeyLastCap, strconv.Itoa(r.LastCap))
	if r.NoNewPrivs {
		w.add(KeyNoNewPrivs, "1")
	}
	if len(r.Seccomp) > 0 {
		w.add(KeySeccomp, hex.EncodeToString(r.Seccomp))
		if r.SeccompFlags != 0 {
			w.add(KeySeccompFlags, hex64(r.SeccompFlags))
		}
	}
	w.add(KeyCwd, r.Cwd)
	w.add(KeyPreserve, strconv.Itoa(r.Preserve))
	for _, l := range r.Rlimits {
		w.add(KeyRlimit, strconv.Itoa(l.Resource)+","+strconv.FormatUint(l.Soft, 10)+","+strconv.FormatUint(l.Hard, 10))
	}
	for _, a := range r.Args {
		w.add(KeyArg, a)
	}
	for _, e := range r.Env {
		w.add(KeyEnv, e)
	}
	if r.Setsid {
		w.add(KeySetsid, "1")
	}
	if r.Fifo > 0 {
		w.add(KeyFifo, strconv.Itoa(r.Fifo))
	}
	return w.done()
}

// CreateRequest is what the create fast path's constructor does first, in its cgroup already.
type CreateRequest struct {
	CgroupNS bool
	Keyring  string // "": keep the inherited session keyring
	Proc     bool
}

// Encode returns the request.
func (r *CreateRequest) Encode() []byte {
	var w records
	w.start(64)
	if r.CgroupNS {
		w.add(KeyCgroupNS, "1")
	}
	if r.Keyring != "" {
		w.add(KeyKeyring, r.Keyring)
	}
	if r.Proc {
		w.add(KeyProc, "1")
	}
	return w.done()
}

type records struct{ b []byte }

func (w *records) start(size int) { w.b = make([]byte, 4, size) }

func (w *records) add(k, v string) {
	w.b = append(append(append(append(w.b, k...), '='), v...), 0)
}

func (w *records) done() []byte {
	binary.LittleEndian.PutUint32(w.b, uint32(len(w.b)-4))
	return w.b
}
