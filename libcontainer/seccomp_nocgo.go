//go:build !cgo

package libcontainer

import (
	"errors"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// loadSeccomp needs libseccomp, which only a cgo build links: husk-init is built with it, and
// the pure-Go husk command line never runs a container init itself.
func loadSeccomp(*rspec.LinuxSeccomp) error {
	return errors.New("seccomp: this binary was built without cgo (libseccomp); use husk-init")
}
