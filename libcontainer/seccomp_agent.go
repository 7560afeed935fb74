package libcontainer

import (
	"bytes"
	"encoding/json"
	"fmt"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/specs"
)

// sendSeccompListener takes the listener fd a process's init reported (its number in that
// process, msgSeccompFd) with pidfd_getfd and sends it to the seccomp agent at
// linux.seccomp.listenerPath with the container's state, as runc does: one message whose data
// is the ContainerProcessState JSON and whose SCM_RIGHTS carry the fd.
func sendSeccompListener(pid, fdInChild int, seccomp *rspec.LinuxSeccomp, state rspec.State) error {
	if seccomp == nil || seccomp.ListenerPath == "" {
		return fmt.Errorf("seccomp: a listener without linux.seccomp.listenerPath")
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("seccomp listener: pidfd of %d: %w", pid, err)
	}
	fd, err := unix.PidfdGetfd(pidfd, fdInChild, 0)
	unix.Close(pidfd)
	if err != nil {
		return fmt.Errorf("seccomp listener: take fd %d of %d: %w", fdInChild, pid, err)
	}
	defer unix.Close(fd)
	msg, err := json.Marshal(rspec.ContainerProcessState{
		Version: rspec.Version, Fds: []string{rspec.SeccompFdName}, Pid: pid,
		Metadata: seccomp.ListenerMetadata, State: state,
	})
	if err != nil {
		return err
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: seccomp.ListenerPath}); err != nil {
		return fmt.Errorf("failed to connect with seccomp agent specified in the seccomp profile (%q): %w", seccomp.ListenerPath, err)
	}
	if err := unix.Sendmsg(sock, msg, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("cannot send seccomp fd to %q: %w", seccomp.ListenerPath, err)
	}
	return nil
}

// rawHasNotify is specs.HasNotify for the seccomp JSON kept in the state. Every exec asks, and a
// node's RuntimeDefault profile is hundreds of names: decode it only if the action is named.
func rawHasNotify(raw json.RawMessage) bool {
	return bytes.Contains(raw, []byte(rspec.ActNotify)) && specs.HasNotify(seccompOfSpec(raw))
}

// rawSeccompFlags is the seccomp(2) flags of the seccomp JSON kept in the state: only the flags
// are decoded (validated at create).
func rawSeccompFlags(raw json.RawMessage) uintptr {
	var v struct {
		Flags []rspec.LinuxSeccompFlag `json:"flags"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return 0
	}
	flags, _ := specs.SeccompFlags(v.Flags, true)
	return flags
}

// seccompOfSpec decodes the seccomp section kept in a container's state, for exec.
func seccompOfSpec(raw json.RawMessage) *rspec.LinuxSeccomp {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s rspec.LinuxSeccomp
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return &s
}
