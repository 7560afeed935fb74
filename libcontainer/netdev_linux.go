//go:build !huskinit

package libcontainer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// linux.netDevices: host interfaces moved into the container's network namespace (renamed as
// the spec asks) and moved back, under their host names, when the container is deleted while
// its namespace still exists. runc 1.3+ does the same. A few rtnetlink messages, written here
// rather than linking a netlink library into every husk command.

// netDevice is one moved interface, as kept in the state.
type netDevice struct {
	Host      string `json:"host"`
	Container string `json:"container"`
}

// plannedNetDevices lists linux.netDevices in a stable order.
func plannedNetDevices(spec map[string]rspec.LinuxNetDevice) []netDevice {
	var out []netDevice
	for host, d := range spec {
		name := d.Name
		if name == "" {
			name = host
		}
		out = append(out, netDevice{Host: host, Container: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// moveNetDevices moves each device from this process's network namespace into pid's.
func moveNetDevices(pid int, devs []netDevice) error {
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return fmt.Errorf("linux.netDevices: %w", err)
	}
	defer ns.Close()
	for _, d := range devs {
		if err := moveLink(d.Host, d.Container, ns); err != nil {
			return fmt.Errorf("linux.netDevices: move %q into the container as %q: %w", d.Host, d.Container, err)
		}
	}
	return nil
}

// returnNetDevices moves the devices back from pid's network namespace into this process's,
// under their host names. A device that is gone (its namespace died: a physical device is back
// already, a virtual one destroyed) is skipped.
func returnNetDevices(pid int, devs []netDevice) error {
	if len(devs) == 0 {
		return nil
	}
	host, err := os.Open("/proc/self/ns/net")
	if err != nil {
		return err
	}
	defer host.Close()
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return nil // the namespace is gone with the init
	}
	defer ns.Close()
	var errs []error
	err = startLocked([]*os.File{ns}, func() error {
		for _, d := range devs {
			if err := moveLink(d.Container, d.Host, host); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("move %q back to the host as %q: %w", d.Container, d.Host, err))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// moveLink moves interface name of the calling thread's network namespace into the namespace
// of nsFile, naming it newName there: one RTM_NEWLINK with IFLA_NET_NS_FD and IFLA_IFNAME.
func moveLink(name, newName string, nsFile *os.File) error {
	index, err := linkIndex(name)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	msg := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg)
	le := binary.LittleEndian // rtnetlink is in host byte order; amd64 and arm64 are little-endian
	le.PutUint16(msg[4:], unix.RTM_NEWLINK)
	le.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	le.PutUint32(msg[8:], 1)
	ifi := msg[unix.SizeofNlMsghdr:]
	ifi[0] = unix.AF_UNSPEC
	le.PutUint32(ifi[4:], uint32(index))
	msg = appendAttr(msg, unix.IFLA_NET_NS_FD, le.AppendUint32(nil, uint32(nsFile.Fd())))
	msg = appendAttr(msg, unix.IFLA_IFNAME, append([]byte(newName), 0))
	le.PutUint32(msg[0:], uint32(len(msg)))
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	if n < unix.SizeofNlMsghdr+4 || le.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return errors.New("unexpected netlink reply")
	}
	if errno := int32(le.Uint32(buf[unix.SizeofNlMsghdr:])); errno != 0 {
		return unix.Errno(-errno)
	}
	return nil
}

func appendAttr(msg []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	attr := make([]byte, (l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1))
	binary.LittleEndian.PutUint16(attr[0:], uint16(l))
	binary.LittleEndian.PutUint16(attr[2:], typ)
	copy(attr[unix.SizeofRtAttr:], data)
	return append(msg, attr...)
}

// linkIndex is the index of interface name in the calling thread's network namespace.
func linkIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}
