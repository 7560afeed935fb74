// Package parsetest runs the constructor's request parsers (nsenter/execfast.c) on requests
// from Go, without root and without starting a container: its test checks that every request
// initproto encodes reads back field by field, and that what the parsers do not know is
// refused. It exists for that test; nothing else imports it.
package parsetest

/*
#cgo CFLAGS: -Wall -O2 -DHUSK_PARSE_TEST
#include "../execfast.c"

// hx_check compares hx.h's helpers, which run before the C library starts, with the C
// library's own on a set of cases: it returns 0, or the first case that differs (its two
// results in got and want).
#define HX_CASE(...)                                           \
	do {                                                   \
		n++;                                           \
		hx_fmt(got, size, __VA_ARGS__);                \
		snprintf(want, size, __VA_ARGS__);             \
		if (strcmp(got, want))                         \
			return n;                              \
	} while (0)
static int hx_check(char *got, char *want, size_t size, size_t small)
{
	int n = 0;
	HX_CASE("plain");
	HX_CASE("%s|%d|%u|%x|%c|%%", "str", -42, 4000000000u, 0xbeefu, 'q');
	HX_CASE("%ld %lu %lx %lld %llu %llx", -9000000000L, 18000000000UL, 0xfeedfacecafeUL, (long long)-1 << 63,
		~0ULL, 0x1234567890abcdefULL);
	HX_CASE("%d %d %d", 0, 2147483647, -2147483647 - 1);
	HX_CASE("%.*s/%s", 3, "abcdef", "name");
	HX_CASE("%.*s|", 0, "abc");
	HX_CASE("\\u%04x \\u%04x %02x %02x", 0x1f, 0x7, 0xab, 0x5);
	HX_CASE("%s", "");
	n++;
	hx_fmt(got, small, "%s-%d", "truncated at the buffer's end", 12345);
	snprintf(want, small, "%s-%d", "truncated at the buffer's end", 12345);
	if (strcmp(got, want))
		return n;
	for (int e = 0; e <= 133; e++) {
		n++;
		snprintf(got, size, "%s", hx_strerror(e));
		snprintf(want, size, "%s", strerror(e));
		if (strcmp(got, want))
			return n;
		snprintf(got, size, "%s", hx_strerror(-e));
		if (strcmp(got, want))
			return n;
	}
	const char *nums[] = {"0", "42", "18446744073709551615", "12abc", "", "7,9"};
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		const char *end1;
		char *end2;
		n++;
		snprintf(got, size, "%llu", hx_strtoull(nums[i], &end1, 10));
		snprintf(want, size, "%llu", strtoull(nums[i], &end2, 10));
		if (strcmp(got, want) || end1 != end2)
			return n;
		n++;
		snprintf(got, size, "%llx", hx_strtoull(nums[i], &end1, 16));
		snprintf(want, size, "%llx", strtoull(nums[i], &end2, 16));
		if (strcmp(got, want) || end1 != end2)
			return n;
	}
	const char *ints[] = {"0", "-1", "+7", "2147483647", "-2147483648", "12x"};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		n++;
		snprintf(got, size, "%d", hx_atoi(ints[i]));
		snprintf(want, size, "%d", atoi(ints[i]));
		if (strcmp(got, want))
			return n;
	}
	return 0;
}
*/
import "C"

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unsafe"
)

// Parse has the C side read req (a CreateRequest if create, else an ExecRequest) and returns
// what it read, as a request in the same form; a refusal is the error it reports.
func Parse(req []byte, create bool) ([]byte, error) {
	if len(req) < 4 || int(binary.LittleEndian.Uint32(req)) != len(req)-4 {
		return nil, errors.New("bad request length")
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		out <- b
	}()
	body := req[4:]
	var p *C.char
	if len(body) > 0 {
		p = (*C.char)(unsafe.Pointer(&body[0]))
	}
	cCreate := C.int(0)
	if create {
		cCreate = 1
	}
	status := C.husk_parse_check(p, C.size_t(len(body)), cCreate, C.int(w.Fd()))
	w.Close()
	got := <-out
	if status != 0 {
		var m struct {
			Type, Message string
		}
		if json.Unmarshal(got, &m) == nil && m.Message != "" {
			return nil, errors.New(m.Message)
		}
		return nil, fmt.Errorf("parser exited with status %d: %q", int(status), got)
	}
	res := make([]byte, 4, 4+len(got))
	binary.LittleEndian.PutUint32(res, uint32(len(got)))
	return append(res, got...), nil
}

// CheckHelpers runs hx_check: "" when hx.h's helpers agree with the C library's, else the case
// that differs.
func CheckHelpers() string {
	got, want := make([]byte, 512), make([]byte, 512)
	n := C.hx_check((*C.char)(unsafe.Pointer(&got[0])), (*C.char)(unsafe.Pointer(&want[0])), 512, 16)
	if n == 0 {
		return ""
	}
	cstr := func(b []byte) string {
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			return string(b[:i])
		}
		return string(b)
	}
	return fmt.Sprintf("case %d: hx.h gives %q, the C library %q", int(n), cstr(got), cstr(want))
}
