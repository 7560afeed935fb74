// Package criu checkpoints and restores husk containers with CRIU, through its RPC interface
// (criu swrk, go-criu's protocol types), the way runc does: the container's bind mounts,
// masked paths and device nodes are external mounts, a joined network or pid namespace is an
// external namespace, stdio pipes (and fifos) are recorded at checkpoint and inherited at
// restore, and the restored processes land in the container's cgroup (both drivers).
//
// It links protobuf and go-criu, so it lives in husk-criu, a build of the husk command line
// that husk runs for checkpoint and restore only: husk's own start-up stays without them.
package criu

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	gocriu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	securejoin "github.com/cyphar/filepath-securejoin"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
)

// minVersion is CRIU 3.11: external network namespaces and the RPC features used here.
const minVersion = 31100

// descriptorsFile records, in the image directory, what the init's fds 0-2 were at checkpoint.
const descriptorsFile = "descriptors.json"

// Opts are runc's checkpoint and restore flags.
type Opts struct {
	ImagePath, WorkPath, ParentPath string
	LeaveRunning, PreDump           bool
	TCPEstablished, ExtUnixSk       bool
	TCPSkipInFlight, LinkRemap      bool // checkpoint only, as runc 1.3+
	ShellJob, FileLocks, AutoDedup  bool
	LazyPages                       bool
	StatusFd                        int
	PageServer                      string // ADDRESS:PORT
	ManageCgroupsMode               string // soft, full, strict, ignore
	EmptyNs                         []string
	LsmProfile, LsmMountContext     string
	CriuPath                        string // criu binary; "criu" from PATH when empty
}

func (o *Opts) criu() string {
	if o.CriuPath != "" {
		return o.CriuPath
	}
	return "criu"
}

// Check reports whether CRIU is installed and new enough, naming what to install if not.
func Check(criuPath string) (int, error) {
	path := criuPath
	if path == "" {
		path = "criu"
	}
	if _, err := exec.LookPath(path); err != nil {
		return 0, fmt.Errorf("checkpoint/restore needs CRIU %s or later: %q is not installed (Debian: apt-get install criu)", versionString(minVersion), path)
	}
	c := gocriu.MakeCriu()
	c.SetCriuPath(path)
	v, err := c.GetCriuVersion()
	if err != nil {
		return 0, fmt.Errorf("checkpoint/restore: asking %s for its version: %w", path, err)
	}
	if v < minVersion {
		return v, fmt.Errorf("checkpoint/restore needs CRIU %s or later; %s is %s", versionString(minVersion), path, versionString(v))
	}
	return v, nil
}

func versionString(v int) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

func cgroupMode(mode string) (rpc.CriuCgMode, error) {
	switch mode {
	case "":
		return rpc.CriuCgMode_DEFAULT, nil
	case "soft":
		return rpc.CriuCgMode_SOFT, nil
	case "full":
		return rpc.CriuCgMode_FULL, nil
	case "strict":
		return rpc.CriuCgMode_STRICT, nil
	case "ignore":
		return rpc.CriuCgMode_IGNORE, nil
	}
	return 0, fmt.Errorf("--manage-cgroups-mode %q: want soft, full, strict or ignore", mode)
}

// emptyNsFlags turns --empty-ns names into CLONE_* flags (runc accepts "network").
func emptyNsFlags(names []string) (uint32, error) {
	var f uint32
	for _, n := range names {
		switch n {
		case "network", "net":
			f |= unix.CLONE_NEWNET
		default:
			return 0, fmt.Errorf("--empty-ns %q: only the network namespace can be left empty", n)
		}
	}
	return f, nil
}

func nsKey(t rspec.LinuxNamespaceType) string {
	if t == rspec.NetworkNamespace {
		return "extRootNetNS"
	}
	return "extRootPidNS"
}

func nsName(t rspec.LinuxNamespaceType) string {
	switch t {
	case rspec.NetworkNamespace:
		return "net"
	case rspec.MountNamespace:
		return "mnt"
	}
	return string(t)
}

// swrk runs one CRIU RPC request through `criu swrk`, answering its notifications with
// notify. stdio become CRIU's own (a restore hands them on to the restored init), extra are
// its fds 4 on; with cg, CRIU is put into the container's cgroup first, so the processes it
// restores are born there.
func swrk(criuPath string, req *rpc.CriuReq, stdio [3]*os.File, extra []*os.File, cg *cgroups.Manager, inCgroup func(criuPid int) error, notify func(n *rpc.CriuNotify, oob []byte) error) error {
	fds, err := unix.Socketpair(unix.AF_LOCAL, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("criu: socketpair: %w", err)
	}
	client := os.NewFile(uintptr(fds[0]), "criu-client")
	conn, err := net.FileConn(client)
	client.Close()
	if err != nil {
		unix.Close(fds[1])
		return err
	}
	uc := conn.(*net.UnixConn)
	defer uc.Close()
	server := os.NewFile(uintptr(fds[1]), "criu-server")
	defer server.Close()

	cmd := exec.Command(criuPath, "swrk", "3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	cmd.ExtraFiles = append([]*os.File{server}, extra...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("criu: %w", err)
	}
	server.Close()
	proc := cmd.Process
	waited := false
	defer func() {
		if !waited {
			uc.Close()
			proc.Wait()
		}
	}()
	if cg != nil {
		if err := cg.Apply(proc.Pid); err != nil {
			proc.Kill()
			return err
		}
		roots, err := cgroupRoots(proc.Pid)
		if err != nil {
			proc.Kill()
			return err
		}
		req.Opts.CgRoot = roots
		if inCgroup != nil {
			if err := inCgroup(proc.Pid); err != nil {
				proc.Kill()
				return err
			}
		}
	}
	data, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := uc.Write(data); err != nil {
		return fmt.Errorf("criu: %w", err)
	}
	buf := make([]byte, 10*4096)
	oob := make([]byte, 4096)
	for {
		n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
		if req.Opts != nil && req.Opts.StatusFd != nil {
			// CRIU has reopened the status fd by its first answer: ours must not keep it open.
			unix.Close(int(*req.Opts.StatusFd))
			req.Opts.StatusFd = nil
		}
		if err != nil {
			return fmt.Errorf("criu: %w", err)
		}
		if n == 0 {
			return errors.New("criu: it exited without an answer")
		}
		resp := &rpc.CriuResp{}
		if err := proto.Unmarshal(buf[:n], resp); err != nil {
			return fmt.Errorf("criu: %w", err)
		}
		if !resp.GetSuccess() {
			msg := resp.GetCrErrmsg()
			if msg == "" {
				msg = unix.Errno(resp.GetCrErrno()).Error()
			}
			return fmt.Errorf("criu %s failed: %s", strings.ToLower(req.GetType().String()), msg)
		}
		if resp.GetType() != rpc.CriuReqType_NOTIFY {
			break
		}
		if notify != nil {
			if err := notify(resp.GetNotify(), oob[:oobn]); err != nil {
				return err
			}
		}
		t := rpc.CriuReqType_NOTIFY
		data, _ := proto.Marshal(&rpc.CriuReq{Type: &t, NotifySuccess: proto.Bool(true)})
		if _, err := uc.Write(data); err != nil {
			return fmt.Errorf("criu: %w", err)
		}
	}
	uc.CloseWrite()
	waited = true
	st, err := proc.Wait()
	if err != nil {
		return fmt.Errorf("criu: %w", err)
	}
	// After a pre-dump CRIU waits for the dump that follows; closing on it makes it exit
	// non-zero, which is not a failure (runc ignores it the same way).
	if !st.Success() && req.GetType() != rpc.CriuReqType_PRE_DUMP {
		return fmt.Errorf("criu: %s", st)
	}
	return nil
}

// cgroupRoots tells CRIU the cgroup it was put in, per hierarchy, as the root it restores in.
func cgroupRoots(pid int) ([]*rpc.CgroupRoot, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var roots []*rpc.CgroupRoot
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		// A named hierarchy by its whole name ("name=systemd", as runc passes it, and as
		// CRIU names it): stripped to "systemd", CRIU did not match it and restored into the
		// checkpointed container's name=systemd cgroup, which then could not be removed.
		roots = append(roots, &rpc.CgroupRoot{Ctrl: proto.String(parts[1]), Path: proto.String(parts[2])})
	}
	return roots, nil
}

// criuLogError returns the last "Error" line of a CRIU log, to explain a failure in one line.
func criuLogError(dir, file string) string {
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if bytes.Contains(s.Bytes(), []byte("Error")) {
			last = strings.TrimSpace(s.Text())
		}
	}
	return last
}

func withLog(err error, dir, file string) error {
	if err == nil {
		return nil
	}
	if e := criuLogError(dir, file); e != "" {
		return fmt.Errorf("%w (%s: %s)", err, filepath.Join(dir, file), e)
	}
	return fmt.Errorf("%w (see %s)", err, filepath.Join(dir, file))
}

// externalDescriptors names the init's fds 0-2 the way restore finds them again: pipes by
// inode ("pipe:[123]", CRIU's key for --inherit-fd), fifos and other files outside the
// container as external files ("file[mnt_id:inode]").
func externalDescriptors(pid int) ([]string, []string, error) {
	names := make([]string, 3)
	var external []string
	for fd := 0; fd < 3; fd++ {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
		if err != nil {
			names[fd] = "/dev/null"
			continue
		}
		names[fd] = link
		if strings.HasPrefix(link, "pipe:") || strings.HasPrefix(link, "socket:") || strings.HasPrefix(link, "anon_inode:") || link == "/dev/null" {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			continue
		}
		mnt, err := fdMountID(pid, fd)
		if err != nil {
			return nil, nil, err
		}
		key := fmt.Sprintf("file[%x:%x]", mnt, st.Ino)
		names[fd] = key
		external = append(external, key)
	}
	return names, external, nil
}

func fdMountID(pid, fd int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "mnt_id:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no mnt_id in fdinfo")
}

func writeDescriptors(dir string, names []string) error {
	b, err := json.Marshal(names)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, descriptorsFile), b, 0o600)
}

func readDescriptors(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, descriptorsFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (not a husk or runc checkpoint?)", descriptorsFile, err)
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return nil, fmt.Errorf("%s: %w", descriptorsFile, err)
	}
	return names, nil
}

// cgroupBindsV1 lists the cgroup mounts a container without a cgroup namespace has on a v1 or
// hybrid host: binds of its cgroup's directory in each hierarchy, under dest (as husk mounts
// them, libcontainer/rootfs), keyed by mount point, with their host directories for a process in
// that cgroup (pid). CRIU takes them as external mounts.
func cgroupBindsV1(dest string, pid int) (map[string]string, error) {
	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	binds := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		name := parts[1]
		switch {
		case name == "":
			name = "unified"
		case strings.HasPrefix(name, "name="):
			name = strings.TrimPrefix(name, "name=")
		}
		host := filepath.Join("/sys/fs/cgroup", name)
		if strings.Contains(name, "/") || name == "." || name == ".." {
			continue
		}
		if _, err := os.Stat(host); err != nil {
			continue
		}
		binds[filepath.Join(dest, name)] = filepath.Join(host, parts[2])
	}
	return binds, nil
}

// cgroupMountV1 returns the destination of a container's cgroup mount when its hierarchies are
// host binds (a v1 or hybrid host, no cgroup namespace of its own), "" otherwise.
func cgroupMountV1(spec *rspec.Spec) string {
	if cgroups.HostMode() == cgroups.Unified {
		return ""
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == rspec.CgroupNamespace && ns.Path == "" {
			return ""
		}
	}
	for _, m := range spec.Mounts {
		if m.Type == "cgroup" {
			return filepath.Clean(m.Destination)
		}
	}
	return ""
}

// mountKey is the key CRIU knows a mount by: its destination with symlinks in the rootfs
// resolved (a bind onto /conf -> /real/conf is mounted at /real/conf), as runc gives it.
func mountKey(rootfs, dest string) string {
	if p, err := securejoin.SecureJoin(rootfs, dest); err == nil {
		if rel, err := filepath.Rel(rootfs, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join("/", rel)
		}
	}
	return dest
}
