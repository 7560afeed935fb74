package criu

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/husk-runtime/husk/libcontainer"
	"github.com/husk-runtime/husk/specs"
)

// Checkpoint dumps the running container c into o.ImagePath. Unless o.LeaveRunning or
// o.PreDump, CRIU kills its processes after the dump and the container is deleted, as runc does.
func Checkpoint(c *libcontainer.Container, o Opts) error {
	version, err := Check(o.CriuPath)
	if err != nil {
		return err
	}
	if o.ImagePath == "" {
		return fmt.Errorf("checkpoint: no image path")
	}
	if o.ParentPath != "" {
		// As runc: relative to the image directory, and it must be one.
		if filepath.IsAbs(o.ParentPath) {
			return fmt.Errorf("--parent-path %q must be relative (to --image-path)", o.ParentPath)
		}
		real := filepath.Join(o.ImagePath, o.ParentPath)
		fi, err := os.Stat(real)
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("%s: not a directory", real)
		}
		if err != nil {
			return fmt.Errorf("invalid --parent-path %q: %w", o.ParentPath, err)
		}
	}
	if st := c.Status(); st != libcontainer.Running && st != libcontainer.Paused {
		return fmt.Errorf("container %s: cannot checkpoint a %s container", c.ID(), st)
	}
	spec, err := c.Spec()
	if err != nil {
		return err
	}
	mode, err := cgroupMode(o.ManageCgroupsMode)
	if err != nil {
		return err
	}
	empty, err := emptyNsFlags(o.EmptyNs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.ImagePath, 0o700); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	images, err := os.Open(o.ImagePath)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer images.Close()
	pid := c.Pid()
	opts := &rpc.CriuOpts{
		ImagesDirFd:       proto.Int32(int32(images.Fd())),
		LogLevel:          proto.Int32(4),
		LogFile:           proto.String("dump.log"),
		Root:              proto.String(c.Rootfs()),
		ManageCgroups:     proto.Bool(true),
		ManageCgroupsMode: &mode,
		NotifyScripts:     proto.Bool(true),
		Pid:               proto.Int32(int32(pid)),
		ShellJob:          proto.Bool(o.ShellJob),
		LeaveRunning:      proto.Bool(o.LeaveRunning),
		TcpEstablished:    proto.Bool(o.TCPEstablished),
		TcpSkipInFlight:   proto.Bool(o.TCPSkipInFlight),
		LinkRemap:         proto.Bool(o.LinkRemap),
		ExtUnixSk:         proto.Bool(o.ExtUnixSk),
		FileLocks:         proto.Bool(o.FileLocks),
		EmptyNs:           proto.Uint32(empty),
		OrphanPtsMaster:   proto.Bool(true),
		AutoDedup:         proto.Bool(o.AutoDedup),
		LazyPages:         proto.Bool(o.LazyPages),
	}
	logDir := o.ImagePath
	if o.WorkPath != "" {
		work, err := openDir(o.WorkPath)
		if err != nil {
			return err
		}
		defer work.Close()
		opts.WorkDirFd = proto.Int32(int32(work.Fd()))
		logDir = o.WorkPath
	}
	configFile(opts, spec)
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path == "" || (ns.Type != rspec.NetworkNamespace && ns.Type != rspec.PIDNamespace) {
			continue
		}
		// A joined network or pid namespace (a pod's) is not the container's to dump: CRIU
		// records it as external and restore hands it back.
		var st unix.Stat_t
		if err := unix.Stat(ns.Path, &st); err != nil {
			return fmt.Errorf("checkpoint: %s namespace %q: %w", ns.Type, ns.Path, err)
		}
		opts.External = append(opts.External, fmt.Sprintf("%s[%d]:%s", nsName(ns.Type), st.Ino, nsKey(ns.Type)))
	}
	// CRIU freezes through the cgroup freezer (cgroup v2's from CRIU 3.14), else with ptrace.
	if d := c.Cgroup().FreezerDir(); d != "" && (!strings.HasPrefix(d, "/sys/fs/cgroup/freezer") && version >= 31400 || strings.HasPrefix(d, "/sys/fs/cgroup/freezer")) {
		opts.FreezeCgroup = proto.String(d)
	}
	if o.PageServer != "" {
		host, port, err := net.SplitHostPort(o.PageServer)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			return fmt.Errorf("--page-server %q: want ADDRESS:PORT", o.PageServer)
		}
		opts.Ps = &rpc.CriuPageServerInfo{Address: proto.String(host), Port: proto.Int32(int32(p))}
	}
	if o.ParentPath != "" {
		opts.ParentImg = proto.String(o.ParentPath)
		opts.TrackMem = proto.Bool(true)
	}
	if o.LazyPages && o.StatusFd >= 0 && version < 31500 {
		// CRIU 3.15+ says "status-ready" in a notification instead (below).
		opts.StatusFd = proto.Int32(int32(o.StatusFd))
	}
	t := rpc.CriuReqType_DUMP
	if o.PreDump {
		t = rpc.CriuReqType_PRE_DUMP
		opts.TrackMem = proto.Bool(true)
	} else {
		for _, m := range spec.Mounts {
			if specs.IsBind(m) {
				key := mountKey(c.Rootfs(), m.Destination)
				opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(key), Val: proto.String(key)})
			}
		}
		for _, p := range spec.Linux.MaskedPaths {
			// Masked files are /dev/null binds; masked directories are tmpfs, which CRIU dumps.
			fi, err := os.Stat(filepath.Join(fmt.Sprintf("/proc/%d/root", pid), p))
			if err == nil && !fi.IsDir() {
				opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(p), Val: proto.String("/dev/null")})
			}
		}
		for _, d := range spec.Linux.Devices {
			opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(d.Path), Val: proto.String(d.Path)})
		}
		if dest := cgroupMountV1(spec); dest != "" {
			binds, err := cgroupBindsV1(dest, pid)
			if err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			for mp := range binds {
				opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(mp), Val: proto.String(mp)})
			}
		}
		names, external, err := externalDescriptors(pid)
		if err != nil {
			return fmt.Errorf("checkpoint: the init's stdio: %w", err)
		}
		opts.External = append(opts.External, external...)
		if err := writeDescriptors(o.ImagePath, names); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	req := &rpc.CriuReq{Type: &t, Opts: opts}
	statusFd := o.StatusFd
	notify := func(n *rpc.CriuNotify, _ []byte) error {
		if n.GetScript() == "status-ready" && statusFd >= 0 {
			// The lazy-pages server is up: tell whoever waits on --status-fd, as runc does.
			unix.Write(statusFd, []byte{0})
			unix.Close(statusFd)
			statusFd = -1
		}
		return nil
	}
	if err := swrk(o.criu(), req, [3]*os.File{}, nil, nil, nil, notify); err != nil {
		return withLog(err, logDir, "dump.log")
	}
	if !o.LeaveRunning && !o.PreDump {
		// The dump killed the processes: what is left is the container's cgroup, unit,
		// poststop hooks and state.
		return c.ForceDelete()
	}
	return nil
}

// configFile names CRIU's configuration file as runc does: the org.criu.config annotation
// (empty: none), else /etc/criu/runc.conf.
func configFile(opts *rpc.CriuOpts, spec *rspec.Spec) {
	if f, ok := spec.Annotations["org.criu.config"]; ok {
		if f != "" {
			opts.ConfigFile = proto.String(f)
		}
		return
	}
	opts.ConfigFile = proto.String("/etc/criu/runc.conf")
}

func openDir(path string) (*os.File, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("criu work directory: %w", err)
	}
	return os.Open(path)
}
