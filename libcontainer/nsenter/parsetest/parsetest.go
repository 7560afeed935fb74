// Package parsetest runs the constructor's request parsers (nsenter/execfast.c) on requests
// from Go, without root and without starting a container: its test checks that every request
// initproto encodes reads back field by field, and that what the parsers do not know is
// refused. It exists for that test; nothing else imports it.
package parsetest

/*
#cgo CFLAGS: -Wall -O2 -DHUSK_PARSE_TEST
#include "../execfast.c"
*/
import "C"

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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
