package specs

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Size limits for the files husk reads from its callers. Without them `exec --process
// /dev/zero` reads until memory runs out. runc's own config.json files are a few KB; a
// Kubernetes pod's with a large seccomp profile stays well under 1 MB.
const (
	MaxConfigSize  = 32 << 20 // config.json, and the state that keeps a copy of it
	MaxProcessSize = 8 << 20  // exec --process, update --resources
)

// ErrTooLarge is wrapped by ReadLimited when the input is over its limit.
var ErrTooLarge = errors.New("file too large")

// ReadLimited reads all of path, refusing more than limit bytes (what, e.g. "process.json",
// names the input in the error).
func ReadLimited(path string, limit int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAllLimited(f, limit, what)
}

// ReadAllLimited reads r to its end, refusing more than limit bytes.
func ReadAllLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", what, limit, ErrTooLarge)
	}
	return data, nil
}
