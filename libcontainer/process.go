package libcontainer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/cgroups"
)

// initConfig is what the parent sends the init process once it sits in its cgroup.
type initConfig struct {
	Mode            string         `json:"mode"` // "create" or "exec"
	ID              string         `json:"id"`
	Spec            *rspec.Spec    `json:"spec"`
	Process         *rspec.Process `json:"process"`
	Rootfs          string         `json:"rootfs,omitempty"`
	Bundle          string         `json:"bundle,omitempty"`
	NoPivot         bool           `json:"no_pivot,omitempty"`
	NoNewKeyring    bool           `json:"no_new_keyring,omitempty"`
	HasRuntimeHooks bool           `json:"has_runtime_hooks,omitempty"`
	FifoFd          int            `json:"fifo_fd,omitempty"`
	ConsoleFd       int            `json:"console_fd,omitempty"`
	PreserveFds     int            `json:"preserve_fds,omitempty"`
}

// nsOrder is the order namespaces are joined in: user first so its capabilities apply to the
// rest, mount last so /proc paths of the others still resolve.
var nsOrder = []rspec.LinuxNamespaceType{
	rspec.UserNamespace, rspec.IPCNamespace, rspec.UTSNamespace, rspec.NetworkNamespace,
	rspec.CgroupNamespace, rspec.MountNamespace,
}

var cloneFlags = map[rspec.LinuxNamespaceType]uintptr{
	rspec.UserNamespace: unix.CLONE_NEWUSER, rspec.IPCNamespace: unix.CLONE_NEWIPC,
	rspec.UTSNamespace: unix.CLONE_NEWUTS, rspec.NetworkNamespace: unix.CLONE_NEWNET,
	rspec.MountNamespace: unix.CLONE_NEWNS, rspec.PIDNamespace: unix.CLONE_NEWPID,
}

// nsProcName maps namespace types to their /proc/<pid>/ns entry.
var nsProcName = map[rspec.LinuxNamespaceType]string{
	rspec.UserNamespace: "user", rspec.IPCNamespace: "ipc", rspec.UTSNamespace: "uts",
	rspec.NetworkNamespace: "net", rspec.CgroupNamespace: "cgroup", rspec.MountNamespace: "mnt",
	rspec.PIDNamespace: "pid", rspec.TimeNamespace: "time",
}

// initProcess describes the child to start: how it enters its namespaces and which fds it gets.
type initProcess struct {
	mode        string
	stdio       Stdio
	preserveFds int
	console     *os.File
	fifo        *os.File
	namespaces  []rspec.LinuxNamespace // create: new (no path) or joined (path)
	joinPaths   map[rspec.LinuxNamespaceType]string
	uidMaps     []rspec.LinuxIDMapping
	gidMaps     []rspec.LinuxIDMapping
}

// start launches `husk init` from the sealed binary, places it in cg before it does anything,
// and sends it cfg. The returned pipe carries the rest of the conversation.
func (p *initProcess) start(cfg *initConfig, cg *cgroups.Manager) (*exec.Cmd, *syncPipe, error) {
	bin, err := sealedBinary()
	if err != nil {
		return nil, nil, err
	}
	defer bin.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "sync-parent")
	child := os.NewFile(uintptr(fds[1]), "sync-child")
	defer child.Close()

	cmd := &exec.Cmd{
		Path:   "/proc/self/fd/" + strconv.Itoa(int(bin.Fd())),
		Args:   []string{"husk", "init"},
		Stdin:  p.stdio.Stdin,
		Stdout: p.stdio.Stdout,
		Stderr: p.stdio.Stderr,
	}
	for i := 0; i < p.preserveFds; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	addFd := func(f *os.File) int {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		return 2 + len(cmd.ExtraFiles)
	}
	syncFd := addFd(child)
	if p.fifo != nil {
		cfg.FifoFd = addFd(p.fifo)
	}
	if p.console != nil {
		cfg.ConsoleFd = addFd(p.console)
	}
	cfg.PreserveFds = p.preserveFds

	var flags uintptr
	var childNs []string
	var parentNs []*os.File
	defer func() {
		for _, f := range parentNs {
			f.Close()
		}
	}()
	joins := map[rspec.LinuxNamespaceType]string{}
	for k, v := range p.joinPaths {
		joins[k] = v
	}
	for _, ns := range p.namespaces {
		if ns.Path != "" {
			joins[ns.Type] = ns.Path
		} else {
			flags |= cloneFlags[ns.Type] // cgroup and time are unshared by the init itself
		}
	}
	if flags&unix.CLONE_NEWUSER != 0 && len(joins) > 0 && p.mode == "create" {
		for t := range joins {
			if t != rspec.UserNamespace {
				return nil, nil, fmt.Errorf("joining the %s namespace by path together with a new user namespace is not supported yet", t)
			}
		}
	}
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	for _, t := range append([]rspec.LinuxNamespaceType{rspec.PIDNamespace, rspec.TimeNamespace}, nsOrder...) {
		path, ok := joins[t]
		if !ok {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("namespace %s: %w", t, err)
		}
		if t == rspec.PIDNamespace || t == rspec.TimeNamespace {
			parentNs = append(parentNs, f)
			continue
		}
		opened = append(opened, f)
		childNs = append(childNs, strconv.Itoa(addFd(f)))
	}

	cmd.Env = []string{"_HUSK_INIT=1", "_HUSK_SYNCFD=" + strconv.Itoa(syncFd), "GOMAXPROCS=1"}
	if len(childNs) > 0 {
		cmd.Env = append(cmd.Env, "_HUSK_NSFDS="+strings.Join(childNs, ","))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
	if flags&unix.CLONE_NEWUSER != 0 {
		cmd.SysProcAttr.UidMappings = idMaps(p.uidMaps)
		cmd.SysProcAttr.GidMappings = idMaps(p.gidMaps)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		// Become the namespace's root before exec, or exec drops every capability: our host
		// uid is not mapped inside.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	if err := startLocked(parentNs, cmd.Start); err != nil {
		parent.Close()
		return nil, nil, fmt.Errorf("start init: %w", err)
	}
	pipe := newSyncPipe(parent)
	fail := func(err error) (*exec.Cmd, *syncPipe, error) {
		cmd.Process.Kill()
		cmd.Wait()
		parent.Close()
		return nil, nil, err
	}
	if cg != nil {
		if err := cg.Apply(cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	child.Close()
	if err := pipe.send(syncMsg{Type: msgConfig, Config: cfg}); err != nil {
		// The constructor may have failed to join a namespace and said why.
		if _, rerr := pipe.recv(); rerr != nil && !errors.Is(rerr, os.ErrClosed) {
			return fail(rerr)
		}
		return fail(fmt.Errorf("send config to init: %w", err))
	}
	return cmd, pipe, nil
}

func idMaps(m []rspec.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

// consoleConn connects to the console socket that will receive the pty master.
func consoleConn(path string, conn *os.File) (*os.File, error) {
	if conn != nil {
		return conn, nil
	}
	if path == "" {
		return nil, nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), "console-socket"), nil
}

// ExecOpts carries what `husk exec` is given.
type ExecOpts struct {
	Process       *rspec.Process
	ConsoleSocket string
	ConsoleConn   *os.File
	PidFile       string
	PreserveFds   int
	Stdio         Stdio
}

// Exec starts a new process inside the running container and returns it once it has exec'd.
func (c *Container) Exec(o ExecOpts) (*exec.Cmd, error) {
	if st := c.status(); st != Running && st != Created {
		return nil, fmt.Errorf("container %s: cannot exec in a %s container", c.state.ID, st)
	}
	if o.Process.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return nil, errors.New("process.terminal is true: --console-socket is required")
	}
	console, err := consoleConn(o.ConsoleSocket, o.ConsoleConn)
	if err != nil {
		return nil, err
	}
	if console != nil && o.ConsoleConn == nil {
		defer console.Close()
	}
	joins := map[rspec.LinuxNamespaceType]string{}
	for _, ns := range c.state.Config.Linux.Namespaces {
		name := nsProcName[ns.Type]
		path := fmt.Sprintf("/proc/%d/ns/%s", c.state.InitPid, name)
		if sameNamespace(path, "/proc/self/ns/"+name) {
			continue
		}
		joins[ns.Type] = path
	}
	p := &initProcess{mode: "exec", stdio: o.Stdio, preserveFds: o.PreserveFds, console: console, joinPaths: joins}
	cfg := &initConfig{Mode: "exec", ID: c.state.ID, Spec: c.state.Config, Process: o.Process, NoNewKeyring: true}
	cmd, pipe, err := p.start(cfg, c.Cgroup())
	if err != nil {
		return nil, fmt.Errorf("container %s: exec: %w", c.state.ID, err)
	}
	defer pipe.Close()
	// The init closes its end by exec'ing (close-on-exec), or reports why it could not.
	if _, err := pipe.recv(); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("container %s: exec: %w", c.state.ID, err)
	}
	if err := writePidFile(o.PidFile, cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	return cmd, nil
}

func sameNamespace(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
