package criu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	securejoin "github.com/cyphar/filepath-securejoin"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/husk-runtime/husk/libcontainer"
	"github.com/husk-runtime/husk/libcontainer/cgroups"
	"github.com/husk-runtime/husk/specs"
)

// Restore brings container co.ID back from the checkpoint in o.ImagePath, with co's bundle
// and config: husk's stdio (or the shim's pipes) become the restored init's stdio in place of
// the ones it had, and the container is running when Restore returns.
func Restore(root string, co libcontainer.CreateOpts, o Opts) (*libcontainer.Container, error) {
	if _, err := Check(o.CriuPath); err != nil {
		return nil, err
	}
	if o.ImagePath == "" {
		return nil, errors.New("restore: no image path")
	}
	descriptors, err := readDescriptors(o.ImagePath)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	mode, err := cgroupMode(o.ManageCgroupsMode)
	if err != nil {
		return nil, err
	}
	empty, err := emptyNsFlags(o.EmptyNs)
	if err != nil {
		return nil, err
	}
	return libcontainer.Restore(root, co, func(c *libcontainer.Container, cg *cgroups.Manager) (int, error) {
		images, err := os.Open(o.ImagePath)
		if err != nil {
			return 0, err
		}
		defer images.Close()
		spec := co.Spec
		opts := &rpc.CriuOpts{
			ImagesDirFd:       proto.Int32(int32(images.Fd())),
			EvasiveDevices:    proto.Bool(true),
			LogLevel:          proto.Int32(4),
			LogFile:           proto.String("restore.log"),
			RstSibling:        proto.Bool(true),
			ManageCgroups:     proto.Bool(true),
			ManageCgroupsMode: &mode,
			NotifyScripts:     proto.Bool(true),
			ShellJob:          proto.Bool(o.ShellJob),
			ExtUnixSk:         proto.Bool(o.ExtUnixSk),
			TcpEstablished:    proto.Bool(o.TCPEstablished),
			FileLocks:         proto.Bool(o.FileLocks),
			EmptyNs:           proto.Uint32(empty),
			OrphanPtsMaster:   proto.Bool(true),
			AutoDedup:         proto.Bool(o.AutoDedup),
			LazyPages:         proto.Bool(o.LazyPages),
		}
		if o.LsmProfile != "" {
			opts.LsmProfile = proto.String(o.LsmProfile)
		}
		if o.LsmMountContext != "" {
			opts.LsmMountContext = proto.String(o.LsmMountContext)
		}
		logDir := o.ImagePath
		if o.WorkPath != "" {
			work, err := openDir(o.WorkPath)
			if err != nil {
				return 0, err
			}
			defer work.Close()
			opts.WorkDirFd = proto.Int32(int32(work.Fd()))
			logDir = o.WorkPath
		}
		configFile(opts, spec)

		// CRIU wants its root to be a mount point whose parent is not overmounted: a bind of
		// the rootfs in the state directory.
		rootfs := c.Rootfs()
		criuRoot := filepath.Join(c.Dir(), "criu-root")
		if err := os.Mkdir(criuRoot, 0o700); err != nil {
			return 0, err
		}
		defer os.Remove(criuRoot)
		if err := unix.Mount(rootfs, criuRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return 0, fmt.Errorf("bind the rootfs for CRIU: %w", err)
		}
		defer unix.Unmount(criuRoot, unix.MNT_DETACH)
		opts.Root = proto.String(criuRoot)

		unmount, err := prepareMountpoints(rootfs, co.Bundle, spec.Mounts)
		defer unmount()
		if err != nil {
			return 0, err
		}
		for _, m := range spec.Mounts {
			if specs.IsBind(m) {
				src := m.Source
				if !filepath.IsAbs(src) {
					src = filepath.Join(co.Bundle, src)
				}
				opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(mountKey(rootfs, m.Destination)), Val: proto.String(src)})
			}
		}
		if len(spec.Linux.MaskedPaths) > 0 {
			opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String("/dev/null"), Val: proto.String("/dev/null")})
		}
		for _, d := range spec.Linux.Devices {
			opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(d.Path), Val: proto.String(d.Path)})
		}

		var extra []*os.File
		defer func() {
			for _, f := range extra {
				f.Close()
			}
		}()
		for _, ns := range spec.Linux.Namespaces {
			if ns.Path == "" {
				continue
			}
			switch ns.Type {
			case rspec.NetworkNamespace, rspec.PIDNamespace:
				f, err := os.Open(ns.Path)
				if err != nil {
					return 0, fmt.Errorf("%s namespace %q: %w", ns.Type, ns.Path, err)
				}
				// fds 0-2 are stdio and 3 CRIU's socket: extra files start at 4.
				opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(nsKey(ns.Type)), Fd: proto.Int32(int32(4 + len(extra)))})
				extra = append(extra, f)
			case rspec.CgroupNamespace:
				return 0, fmt.Errorf("a cgroup namespace path (%q) cannot be joined by CRIU", ns.Path)
			default:
				opts.JoinNs = append(opts.JoinNs, &rpc.JoinNamespace{Ns: proto.String(nsName(ns.Type)), NsFile: proto.String(ns.Path)})
			}
		}
		for i, name := range descriptors {
			if strings.HasPrefix(name, "pipe:") || strings.HasPrefix(name, "file[") {
				opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(name), Fd: proto.Int32(int32(i))})
			}
		}
		stdio := [3]*os.File{co.Stdio.Stdin, co.Stdio.Stdout, co.Stdio.Stderr}
		for i, f := range stdio {
			if f == nil {
				stdio[i] = []*os.File{os.Stdin, os.Stdout, os.Stderr}[i]
			}
		}
		pid := 0
		t := rpc.CriuReqType_RESTORE
		// The v1 cgroup binds point at the new cgroup, known once CRIU is in it.
		inCgroup := func(criuPid int) error {
			dest := cgroupMountV1(spec)
			if dest == "" {
				return nil
			}
			binds, err := cgroupBindsV1(dest, criuPid)
			for mp, host := range binds {
				opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(mp), Val: proto.String(host)})
			}
			return err
		}
		err = swrk(o.criu(), &rpc.CriuReq{Type: &t, Opts: opts}, stdio, extra, cg, inCgroup, func(n *rpc.CriuNotify, oob []byte) error {
			switch n.GetScript() {
			case "orphan-pts-master":
				// A terminal container: CRIU made a new pty and passes its master, which
				// goes to the console socket as at create.
				return sendPtyMaster(co.ConsoleSocket, oob)
			case "setup-namespaces":
				return c.RunRestoreHooks(int(n.GetPid()))
			case "post-restore":
				pid = int(n.GetPid())
			}
			return nil
		})
		if err != nil {
			return 0, withLog(err, logDir, "restore.log")
		}
		if pid <= 0 {
			return 0, errors.New("criu did not report the restored init's pid")
		}
		return pid, nil
	})
}

// prepareMountpoints makes the mount points the container's mounts need in its rootfs (CRIU
// mounts onto them, it does not create them), except inside tmpfs mounts, which CRIU restores
// whole; bind sources are bound for the while, so that mount points inside them exist too.
// The returned function undoes those binds.
func prepareMountpoints(rootfs, bundle string, mounts []rspec.Mount) (func(), error) {
	var binds []string
	undo := func() {
		for i := len(binds) - 1; i >= 0; i-- {
			unix.Unmount(binds[i], unix.MNT_DETACH)
		}
	}
	var tmpfs []string
	for _, m := range mounts {
		if m.Type == "tmpfs" {
			tmpfs = append(tmpfs, filepath.Clean(m.Destination))
		}
	}
	for _, m := range mounts {
		dest := filepath.Clean(m.Destination)
		if under(dest, tmpfs) || m.Type == "cgroup" || m.Type == "cgroup2" {
			continue
		}
		target, err := securejoin.SecureJoin(rootfs, dest)
		if err != nil {
			return undo, err
		}
		if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
			src := m.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(bundle, src)
			}
			fi, serr := os.Stat(src)
			if specs.IsBind(m) && serr == nil && !fi.IsDir() {
				if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
					return undo, err
				}
				f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					return undo, err
				}
				f.Close()
			} else if err := os.MkdirAll(target, 0o755); err != nil {
				return undo, fmt.Errorf("mount point %s: %w", dest, err)
			}
		}
		if specs.IsBind(m) {
			src := m.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(bundle, src)
			}
			if err := bindInRoot(rootfs, src, target); err != nil {
				return undo, fmt.Errorf("bind %s for the restore: %w", dest, err)
			}
			binds = append(binds, target)
		}
	}
	return undo, nil
}

func under(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// bindInRoot binds src onto target, a path securejoin resolved inside rootfs, through an
// O_PATH fd checked to be still inside rootfs: a symlink swapped in since cannot redirect the
// mount onto the host.
func bindInRoot(rootfs, src, target string) error {
	fd, err := unix.Open(target, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	proc := fmt.Sprintf("/proc/self/fd/%d", fd)
	real, err := os.Readlink(proc)
	if err != nil {
		return err
	}
	root, err := filepath.EvalSymlinks(rootfs)
	if err != nil {
		return err
	}
	if real != root && !strings.HasPrefix(real, root+"/") {
		return fmt.Errorf("%s resolves outside the rootfs (%s)", target, real)
	}
	return unix.Mount(src, proc, "", unix.MS_BIND|unix.MS_REC, "")
}

// sendPtyMaster sends the pty master CRIU passed (SCM_RIGHTS in oob) to the console socket.
func sendPtyMaster(socket string, oob []byte) error {
	if socket == "" {
		return errors.New("the container has a terminal: --console-socket is required")
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) == 0 {
		return fmt.Errorf("criu's pty master: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return fmt.Errorf("criu's pty master: %v", err)
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: socket}); err != nil {
		return fmt.Errorf("console socket %s: %w", socket, err)
	}
	return unix.Sendmsg(sock, []byte("/dev/ptmx"), unix.UnixRights(fds[0]), nil, 0)
}
