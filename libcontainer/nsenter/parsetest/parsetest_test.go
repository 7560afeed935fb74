package parsetest

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/husk-runtime/husk/libcontainer/initproto"
)

func full() *initproto.ExecRequest {
	umask := uint32(0o27)
	return &initproto.ExecRequest{
		UID: 1000, GID: 4294967294, Groups: []uint32{1, 65534, 4000000000}, Umask: &umask,
		Bounding: 0x1ffffffffff, Effective: 0x20, Permitted: 0x3000000000, Inheritable: 1,
		Ambient: []int{0, 12, 40}, LastCap: 40, NoNewPrivs: true,
		Seccomp:      []byte{0x20, 0, 0, 0, 4, 0, 0, 0, 0x06, 0, 0, 0, 0, 0, 0xff, 0x7f},
		SeccompFlags: 0x2, Cwd: "/work dir/ünïcode", Preserve: 3,
		Rlimits: []initproto.Rlimit{{Resource: 7, Soft: 1024, Hard: 4096}, {Resource: 4, Soft: ^uint64(0), Hard: ^uint64(0)}},
		Args:    []string{"/bin/sh", "-c", "echo a=b; exit 0", ""},
		Env:     []string{"PATH=/bin", "EMPTY=", "EQ=a=b=c"},
		Setsid:  true, Fifo: 9,
	}
}

func minimal() *initproto.ExecRequest {
	return &initproto.ExecRequest{Cwd: "/", Args: []string{"true"}}
}

// Every field of an ExecRequest reads back as encoded.
func TestExecRequestReadsBack(t *testing.T) {
	for name, want := range map[string]*initproto.ExecRequest{"full": full(), "minimal": minimal()} {
		if err := want.Check(0); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		read, err := Parse(want.Encode(), false)
		if err != nil {
			t.Fatalf("%s: the C parser refused it: %v", name, err)
		}
		got, err := decodeExecRequest(read)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the C side read\n%+v\nGo encoded\n%+v", name, got, want)
		}
	}
}

func TestCreateRequestReadsBack(t *testing.T) {
	for _, want := range []initproto.CreateRequest{{}, {CgroupNS: true, Keyring: "_ses.abc", Proc: true}} {
		read, err := Parse(want.Encode(), true)
		if err != nil {
			t.Fatalf("%+v: %v", want, err)
		}
		if got, enc := read[4:], want.Encode()[4:]; string(got) != string(enc) {
			t.Errorf("the C side read %q, Go encoded %q", got, enc)
		}
	}
}

// The two requests together carry every record the protocol names (proto.h, generated from
// initproto), so the tests above cover them all.
func TestEveryKeyIsCovered(t *testing.T) {
	h, err := os.ReadFile("../proto.h")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, req := range [][]byte{full().Encode(), (&initproto.CreateRequest{CgroupNS: true, Keyring: "k", Proc: true}).Encode()} {
		for _, rec := range strings.Split(strings.TrimSuffix(string(req[4:]), "\x00"), "\x00") {
			k, _, _ := strings.Cut(rec, "=")
			used[k] = true
		}
	}
	for _, m := range regexp.MustCompile(`#define HUSK_KEY_\w+\s+"(\w+)"`).FindAllStringSubmatch(string(h), -1) {
		if !used[m[1]] {
			t.Errorf("record %q is in no request of this test", m[1])
		}
	}
}

// The C side spells the protocol's names through proto.h, never as literals of its own.
func TestCUsesTheNames(t *testing.T) {
	h, _ := os.ReadFile("../proto.h")
	var src strings.Builder
	for _, f := range []string{"../execfast.c", "../nsenter.c"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	for _, m := range regexp.MustCompile(`#define (HUSK_(?:ENV|MSG)_\w+)\s+"([^"]+)"`).FindAllStringSubmatch(string(h), -1) {
		literal := `"` + m[2] + `"` // an environment name
		if strings.HasPrefix(m[1], "HUSK_MSG_") {
			literal = `\"type\":\"` + m[2] // a message
		}
		if strings.Contains(src.String(), literal) {
			t.Errorf("the C side spells %q itself instead of %s", m[2], m[1])
		}
	}
	// What the constructor reads and says, by name.
	for _, name := range []string{"HUSK_ENV_SYNC_FD", "HUSK_ENV_NS_FDS", "HUSK_ENV_NS_FDS_FORK", "HUSK_ENV_UNSHARE", "HUSK_ENV_EXEC_FAST",
		"HUSK_ENV_CREATE_FAST", "HUSK_MSG_ERROR", "HUSK_MSG_PID", "HUSK_MSG_NS_READY", "HUSK_MSG_READY"} {
		if !strings.Contains(src.String(), name) {
			t.Errorf("the C side does not use %s", name)
		}
	}
}

func withRecords(req []byte, recs ...string) []byte {
	req = append(make([]byte, 4-min(len(req), 4)), req...)
	for _, r := range recs {
		req = append(append(req, r...), 0)
	}
	binary.LittleEndian.PutUint32(req, uint32(len(req)-4))
	return req
}

// What the parsers do not know, or cannot hold, is refused with the constructor's error.
func TestRefusals(t *testing.T) {
	many := minimal()
	for i := 0; i < initproto.MaxItems; i++ {
		many.Args = append(many.Args, "a"+strconv.Itoa(i))
	}
	for _, tc := range []struct {
		name   string
		req    []byte
		create bool
		want   string
	}{
		{"unknown exec record", withRecords(minimal().Encode(), "bogus=1"), false, "unknown request field bogus"},
		{"unknown create record", withRecords(nil, "bogus=1"), true, "unknown request field bogus"},
		{"record without =", withRecords(minimal().Encode(), "uid"), false, "malformed request"},
		{"no arguments", withRecords(nil, "cwd=/", "lastcap=40"), false, "incomplete request"},
		{"odd seccomp", withRecords(minimal().Encode(), "seccomp=abc"), false, "malformed seccomp filter"},
		{"short rlimit", withRecords(minimal().Encode(), "rlimit=7,1"), false, "malformed rlimit"},
		{"too many arguments", many.Encode(), false, "more than 4096 arguments"},
	} {
		_, err := Parse(tc.req, tc.create)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if err := many.Check(0); err == nil {
		t.Errorf("Check accepts %d arguments", len(many.Args))
	}
}

// decodeExecRequest reads an ExecRequest's records back, to compare what the C side read
// with what Go encoded.
func decodeExecRequest(req []byte) (*initproto.ExecRequest, error) {
	if len(req) < 4 || int(binary.LittleEndian.Uint32(req)) != len(req)-4 {
		return nil, fmt.Errorf("bad request length")
	}
	r := &initproto.ExecRequest{}
	for _, rec := range strings.Split(strings.TrimSuffix(string(req[4:]), "\x00"), "\x00") {
		k, v, ok := strings.Cut(rec, "=")
		if !ok {
			return nil, fmt.Errorf("malformed record %q", rec)
		}
		if err := setRecord(r, k, v); err != nil {
			return nil, fmt.Errorf("record %s: %w", k, err)
		}
	}
	return r, nil
}

func setRecord(r *initproto.ExecRequest, k, v string) error {
	n := number{s: v}
	switch k {
	case initproto.KeyUID:
		r.UID = uint32(n.uint(10, 32))
	case initproto.KeyGID:
		r.GID = uint32(n.uint(10, 32))
	case initproto.KeyGroup:
		r.Groups = append(r.Groups, uint32(n.uint(10, 32)))
	case initproto.KeyUmask:
		m := uint32(n.uint(10, 32))
		r.Umask = &m
	case initproto.KeyBounding:
		r.Bounding = n.uint(16, 64)
	case initproto.KeyEffective:
		r.Effective = n.uint(16, 64)
	case initproto.KeyPermitted:
		r.Permitted = n.uint(16, 64)
	case initproto.KeyInheritable:
		r.Inheritable = n.uint(16, 64)
	case initproto.KeyAmbient:
		r.Ambient = append(r.Ambient, n.int())
	case initproto.KeyLastCap:
		r.LastCap = n.int()
	case initproto.KeyNoNewPrivs:
		r.NoNewPrivs = n.int() == 1
	case initproto.KeySeccomp:
		r.Seccomp, n.err = hex.DecodeString(v)
	case initproto.KeySeccompFlags:
		r.SeccompFlags = n.uint(16, 64)
	case initproto.KeyCwd:
		r.Cwd = v
	case initproto.KeyPreserve:
		r.Preserve = n.int()
	case initproto.KeySetsid:
		r.Setsid = n.int() == 1
	case initproto.KeyFifo:
		r.Fifo = n.int()
	case initproto.KeyRlimit:
		parts := strings.Split(v, ",")
		if len(parts) != 3 {
			return fmt.Errorf("malformed %q", v)
		}
		res, soft, hard := number{s: parts[0]}, number{s: parts[1]}, number{s: parts[2]}
		l := initproto.Rlimit{Resource: res.int(), Soft: soft.uint(10, 64), Hard: hard.uint(10, 64)}
		if res.err != nil || soft.err != nil || hard.err != nil {
			return fmt.Errorf("malformed %q", v)
		}
		r.Rlimits = append(r.Rlimits, l)
	case initproto.KeyArg:
		r.Args = append(r.Args, v)
	case initproto.KeyEnv:
		r.Env = append(r.Env, v)
	default:
		return fmt.Errorf("unknown record")
	}
	return n.err
}

// number parses a record's value, keeping the first error.
type number struct {
	s   string
	err error
}

func (n *number) uint(base, bits int) uint64 {
	v, err := strconv.ParseUint(n.s, base, bits)
	if err != nil && n.err == nil {
		n.err = err
	}
	return v
}

func (n *number) int() int {
	v, err := strconv.Atoi(n.s)
	if err != nil && n.err == nil {
		n.err = err
	}
	return v
}

// The helpers husk-init's early entry uses instead of the C library's (nsenter/hx.h: its
// formatter, error texts and number parsing) give what the C library's would, truncation and
// all: the constructor's messages are the user's errors.
func TestHelpersMatchTheCLibrary(t *testing.T) {
	if diff := CheckHelpers(); diff != "" {
		t.Error(diff)
	}
}
