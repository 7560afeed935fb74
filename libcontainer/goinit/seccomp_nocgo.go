//go:build !cgo

package goinit

import (
	"errors"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// compileSeccomp needs libseccomp, which only a cgo build links: husk-init is built with it, and
// the pure-Go husk command line never runs a container init itself.
func compileSeccomp(*rspec.LinuxSeccomp) ([]byte, error) {
	return nil, errors.New("seccomp: this binary was built without cgo (libseccomp); use husk-init")
}
