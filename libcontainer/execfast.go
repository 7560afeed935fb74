//go:build !huskinit

package libcontainer

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/specs"
)

// fastExecRequest encodes an exec for the constructor of husk-init to set up and exec by
// itself (nsenter/execfast.c), before a Go runtime starts in the container: most of an exec's
// time. It returns nil for what only the Go init handles: a terminal, an LSM label, a seccomp
// filter (libseccomp compiles it in the init), or anything the init would refuse (it then says
// why). seccomp is the container's compiled filter, if it has one; home is HOME for a process
// whose environment has none ("": the caller adds it later). The record order mirrors
// prepareProcess and setupUser.
func fastExecRequest(p *rspec.Process, seccomp []byte, seccompFlags uintptr, preserveFds int, home string) []byte {
	if p.Terminal || p.ApparmorProfile != "" || p.SelinuxLabel != "" || len(p.Args) == 0 || needsGoInit(p) {
		return nil
	}
	// The constructor's fixed tables (execfast.c); beyond them the Go init takes over.
	if len(p.Args) > 4096 || len(p.Env) > 4094 || len(p.Rlimits) > 32 || (p.Capabilities != nil && len(p.Capabilities.Ambient) > 64) {
		return nil
	}
	caps := p.Capabilities
	if caps == nil {
		caps = &rspec.LinuxCapabilities{}
	}
	last := lastCap()
	var masks [4]uint64
	for i, names := range [][]string{caps.Bounding, caps.Effective, caps.Permitted, caps.Inheritable} {
		m, err := capMask(names, last)
		if err != nil {
			return nil
		}
		masks[i] = m
	}
	b := make([]byte, 4, 512)
	rec := func(k, v string) { b = append(append(append(append(b, k...), '='), v...), 0) }
	hex64 := func(v uint64) string { return strconv.FormatUint(v, 16) }
	rec("uid", strconv.FormatUint(uint64(p.User.UID), 10))
	rec("gid", strconv.FormatUint(uint64(p.User.GID), 10))
	for _, g := range p.User.AdditionalGids {
		rec("group", strconv.FormatUint(uint64(g), 10))
	}
	if p.User.Umask != nil {
		rec("umask", strconv.FormatUint(uint64(*p.User.Umask), 10))
	}
	rec("bounding", hex64(masks[0]))
	rec("effective", hex64(masks[1]))
	rec("permitted", hex64(masks[2]))
	rec("inheritable", hex64(masks[3]))
	for _, name := range caps.Ambient {
		c, ok := specs.Capability(name)
		if !ok {
			continue // unknown: warned about, granted nothing, as in the Go init
		}
		rec("ambient", strconv.Itoa(c))
	}
	rec("lastcap", strconv.Itoa(last))
	if p.NoNewPrivileges {
		rec("nnp", "1")
	}
	if len(seccomp) > 0 {
		rec("seccomp", hex.EncodeToString(seccomp))
		if seccompFlags != 0 {
			rec("seccompflags", strconv.FormatUint(uint64(seccompFlags), 16))
		}
	}
	rec("cwd", p.Cwd)
	rec("preserve", strconv.Itoa(preserveFds))
	for _, r := range p.Rlimits {
		res, ok := specs.Rlimits[r.Type]
		if !ok {
			return nil
		}
		rec("rlimit", strconv.Itoa(res)+","+strconv.FormatUint(r.Soft, 10)+","+strconv.FormatUint(r.Hard, 10))
	}
	for _, a := range p.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil
		}
		rec("arg", a)
	}
	for _, e := range processEnv(p.Env, preserveFds, home) {
		if strings.IndexByte(e, 0) >= 0 {
			return nil
		}
		rec("env", e)
	}
	if strings.IndexByte(p.Cwd, 0) >= 0 {
		return nil
	}
	return appendRecords(b)
}

// appendRecords adds "key=value" records to a request as the constructor reads them (a 4-byte
// little-endian length, then NUL-terminated records) and sets its length; a nil req starts one.
func appendRecords(req []byte, records ...string) []byte {
	if len(req) < 4 {
		req = make([]byte, 4)
	}
	for _, r := range records {
		req = append(append(req, r...), 0)
	}
	binary.LittleEndian.PutUint32(req, uint32(len(req)-4))
	return req
}
