package integration

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// seccompNotif and seccompNotifResp are the kernel's struct seccomp_notif and
// seccomp_notif_resp (x/sys has the ioctls, not the structs).
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// seccompAgent listens at path for runc's seccomp agent protocol: one message per container
// process, the state JSON with the listener fd in SCM_RIGHTS. It answers every notification
// with EACCES and reports each state it got.
func seccompAgent(t *testing.T, path string) <-chan rspec.ContainerProcessState {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	states := make(chan rspec.ContainerProcessState, 16)
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			c.Close()
			if err != nil {
				continue
			}
			var st rspec.ContainerProcessState
			if json.Unmarshal(buf[:n], &st) != nil {
				continue
			}
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			if len(msgs) != 1 {
				continue
			}
			fds, _ := unix.ParseUnixRights(&msgs[0])
			if len(fds) != 1 {
				continue
			}
			states <- st
			go func(fd int) {
				defer unix.Close(fd)
				for {
					var req seccompNotif
					if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req))); e != 0 {
						if e == unix.EINTR {
							continue
						}
						return // the filter's last process is gone
					}
					resp := seccompNotifResp{ID: req.ID, Error: -int32(unix.EACCES)}
					unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
				}
			}(fds[0])
		}
	}()
	return states
}

// TestSeccompNotify: SCMP_ACT_NOTIFY hands the filter's listener to the agent at
// linux.seccomp.listenerPath with the container's state (runc's protocol), for the init and
// for each exec, and the agent's answer is what the syscall returns; WAIT_KILLABLE_RECV is
// applied with it.
func TestSeccompNotify(t *testing.T) {
	bothPaths(t, func(t *testing.T, flags []string) {
		for _, sflags := range [][]rspec.LinuxSeccompFlag{nil, {rspec.LinuxSeccompFlagWaitKillableRecv}} {
			sock := filepath.Join(t.TempDir(), "agent.sock")
			states := seccompAgent(t, sock)
			b := newBundle(t, "sh", "-c", "mkdir /tmp/x 2>&1; sleep 1000")
			b.spec.Root.Readonly = false
			b.spec.Linux.Seccomp = &rspec.LinuxSeccomp{DefaultAction: rspec.ActAllow, ListenerPath: sock, Flags: sflags,
				Syscalls: []rspec.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: rspec.ActNotify}}}
			b.write(t)
			id := uniqueID(t)
			b.must(t, append(append([]string{"run", "-d"}, flags...), id)...)
			st := <-states
			if st.State.ID != id || len(st.Fds) != 1 || st.Fds[0] != rspec.SeccompFdName {
				t.Fatalf("flags %v: agent got %+v", sflags, st)
			}
			out := b.must(t, "exec", id, "sh", "-c", "mkdir /tmp/y 2>&1; true")
			if !strings.Contains(out, "Permission denied") {
				t.Fatalf("flags %v: exec's mkdir: %q, want the agent's EACCES", sflags, out)
			}
			if st := <-states; st.State.ID != id {
				t.Fatalf("flags %v: exec: agent got %+v", sflags, st)
			}
			b.must(t, "delete", "-f", id)
		}
	})
}
