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

// netDevice is one moved interface, as kept in the state. Index is its interface index in the
// container's network namespace: what is moved back is that device, whatever it is named there
// by then (a container with CAP_NET_ADMIN can rename it and make another under the lent name).
// NetNS names a joined namespace (a pod's), which outlives the init; NetNSIno tells it is
// still the same namespace.
type netDevice struct {
	Host      string `json:"host"`
	Container string `json:"container"`
	Index     int    `json:"index,omitempty"`
	NetNS     string `json:"netns,omitempty"`
	NetNSIno  uint64 `json:"netns_ino,omitempty"`
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

// containerNetNS opens the network namespace the devices go into: the joined one by its path,
// else the init's.
func containerNetNS(pid int, joined string) (*os.File, error) {
	if joined != "" {
		return openNamespace(rspec.NetworkNamespace, joined)
	}
	return os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
}

// moveNetDevices moves each device from this process's network namespace into the container's
// and names it there as the spec asks. The device moves under its host name and is renamed
// only once inside; a failure moves every device moved so far back, so none is lost with a
// namespace that goes away. devs gets each device's index in the container's namespace.
func moveNetDevices(pid int, joined string, devs []netDevice) error {
	ns, err := containerNetNS(pid, joined)
	if err != nil {
		return fmt.Errorf("linux.netDevices: %w", err)
	}
	defer ns.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &st); err != nil {
		return fmt.Errorf("linux.netDevices: %w", err)
	}
	for i := range devs {
		d := &devs[i]
		d.NetNS, d.NetNSIno = joined, st.Ino
		index, err := linkIndex(d.Host)
		if err == nil {
			err = setLink(index, ns, "")
		}
		if err != nil {
			returnNetDevices(pid, devs[:i])
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("the container's network namespace has a device named %q already", d.Host)
			}
			return fmt.Errorf("linux.netDevices: move %q into the container as %q: %w", d.Host, d.Container, err)
		}
		err = startLocked([]*os.File{ns}, func() error {
			if d.Index, err = linkIndex(d.Host); err != nil {
				return err
			}
			if d.Container != d.Host {
				return setLink(d.Index, nil, d.Container)
			}
			return nil
		})
		if err != nil {
			if d.Index == 0 {
				d.Index = -1 // moved, index unknown: returned by name below
			}
			returnNetDevices(pid, devs[:i+1])
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("the container's network namespace has a device named %q already", d.Container)
			}
			return fmt.Errorf("linux.netDevices: move %q into the container as %q: %w", d.Host, d.Container, err)
		}
	}
	return nil
}

// returnNetDevices moves the devices back from the container's network namespace into this
// process's, under their host names. Each is found by its index there and taken down, given a
// unique temporary name (its name in the container may be taken on the host), moved, and named
// as it was: a device whose host name was taken meanwhile stays under the temporary name, and
// the error says so. A device that is gone (a physical one back already, a virtual one
// destroyed with its namespace) is skipped.
func returnNetDevices(pid int, devs []netDevice) error {
	if len(devs) == 0 {
		return nil
	}
	host, err := os.Open("/proc/self/ns/net")
	if err != nil {
		return err
	}
	defer host.Close()
	ns, err := containerNetNS(pid, devs[0].NetNS)
	if err != nil {
		return nil // the namespace is gone with the init
	}
	defer ns.Close()
	var st unix.Stat_t
	if devs[0].NetNSIno != 0 && (unix.Fstat(int(ns.Fd()), &st) != nil || st.Ino != devs[0].NetNSIno) {
		return errors.New("the container's network namespace is not the one the devices went into")
	}
	var errs []error
	var parked []netDevice // moved back under a temporary name
	err = startLocked([]*os.File{ns}, func() error {
		for _, d := range devs {
			index := d.Index
			if index <= 0 {
				var err error
				if index, err = linkIndex(d.Host); err != nil {
					continue
				}
			}
			tmp := fmt.Sprintf("husk%x", uint32(index)^uint32(os.Getpid())<<8)
			if err := linkDown(index); err != nil {
				if !errors.Is(err, unix.ENODEV) {
					errs = append(errs, fmt.Errorf("take %q down: %w", d.Container, err))
				}
				continue
			}
			if err := setLink(index, nil, tmp); err != nil {
				errs = append(errs, fmt.Errorf("move %q back to the host as %q: %w", d.Container, d.Host, err))
				continue
			}
			if err := setLink(index, host, ""); err != nil {
				errs = append(errs, fmt.Errorf("move %q back to the host as %q: %w", d.Container, d.Host, err))
				continue
			}
			parked = append(parked, netDevice{Host: d.Host, Container: tmp})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range parked {
		index, err := linkIndex(d.Container)
		if err == nil {
			err = setLink(index, nil, d.Host)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("device %q is back on the host as %q: naming it %q: %w", d.Host, d.Container, d.Host, err))
		}
	}
	return errors.Join(errs...)
}

// setLink changes interface index of the calling thread's network namespace: moves it into the
// namespace of nsFile (if not nil) or renames it to name (if not ""), one RTM_NEWLINK. A move
// keeps the device's name (the kernel refuses it with EEXIST when the name is taken there).
func setLink(index int, nsFile *os.File, name string) error {
	var attrs []byte
	le := binary.LittleEndian // rtnetlink is in host byte order; amd64 and arm64 are little-endian
	if nsFile != nil {
		attrs = appendAttr(attrs, unix.IFLA_NET_NS_FD, le.AppendUint32(nil, uint32(nsFile.Fd())))
	}
	if name != "" {
		attrs = appendAttr(attrs, unix.IFLA_IFNAME, append([]byte(name), 0))
	}
	return rtnetlink(index, 0, 0, attrs)
}

// linkDown takes interface index of the calling thread's network namespace down: a device that
// is up cannot be renamed.
func linkDown(index int) error { return rtnetlink(index, 0, unix.IFF_UP, nil) }

// rtnetlink sends one RTM_NEWLINK for interface index (flags under change, then attrs) and
// returns the kernel's answer.
func rtnetlink(index int, flags, change uint32, attrs []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	msg := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg)
	le := binary.LittleEndian
	le.PutUint16(msg[4:], unix.RTM_NEWLINK)
	le.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	le.PutUint32(msg[8:], 1)
	ifi := msg[unix.SizeofNlMsghdr:]
	ifi[0] = unix.AF_UNSPEC
	le.PutUint32(ifi[4:], uint32(index))
	le.PutUint32(ifi[8:], flags)
	le.PutUint32(ifi[12:], change)
	msg = append(msg, attrs...)
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
