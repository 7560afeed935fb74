package libcontainer

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/husk-runtime/husk/libcontainer/initproto"
	"github.com/husk-runtime/husk/libcontainer/procenv"
	"github.com/husk-runtime/husk/libcontainer/rootfs"
	"github.com/husk-runtime/husk/specs"
)

// The create fast path. The Go init costs a create most of its time: a Go runtime starting in
// the container, then decoding the spec again. For the common container, husk-init's C
// constructor stays the only code in the container's init, and husk create itself builds the
// rootfs from a thread it joins to the init's namespaces:
//
//  1. the init, placed in its cgroup, unshares its cgroup namespace, joins its session keyring
//     and opens a procfs context in its pid namespace (the one thing a joined thread cannot
//     make: procfs takes the pid namespace a task was born in), then says NsReady;
//  2. husk takes that context with pidfd_getfd, and on a locked thread that unshared its fs
//     attributes (which setns into a mount namespace requires, and which keeps the thread's root
//     and working directory its own) and joined the init's namespaces (startLocked) runs
//     rootfs.Build, the same code the Go init runs; the thread dies with the goroutine;
//  3. husk sends the process as for the exec fast path, plus the exec fifo: the constructor
//     sets it up (execfast.c), says Ready, waits for start and execs.
//
// A seccomp filter needs its compiled program, which only the Go init can make (libseccomp):
// the first container with a profile goes to the Go init and husk keeps the program in a cache
// under its root, keyed by the profile and the husk-init that compiled it; the next ones (every
// pod of a node shares RuntimeDefault) load it in the constructor, as an exec does.
//
// Everything else (user and time namespaces, a terminal, filter flags, LSM labels, hooks that
// run in the container, --no-pivot) goes to the Go init.

// seccompCacheDir, under husk's root, holds compiled seccomp programs, one file per
// seccompCacheKey. Its name is no valid container id.
const seccompCacheDir = "@seccomp"

// seccompCacheKey is what a compiled program depends on: the profile as JSON and the identity
// of the husk-init whose libseccomp compiles it. nil when there is no usable key.
func seccompCacheKey(s *rspec.LinuxSeccomp) []byte {
	if s == nil || len(s.Flags) > 0 {
		return nil // flags are libseccomp attributes the constructor does not apply
	}
	initBin, err := huskInitPath()
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(initBin, &st); err != nil {
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	id := fmt.Sprintf("%d:%d:%d:%d.%d\n", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	return append([]byte(id), b...)
}

// seccompCacheFile names key's entry. The name is a plain hash: an entry holds its whole key,
// checked byte for byte, so a collision costs a compile, never the wrong program.
func seccompCacheFile(root string, key []byte) string {
	h := fnv.New128a()
	h.Write(key)
	return filepath.Join(root, seccompCacheDir, hex.EncodeToString(h.Sum(nil)))
}

// cachedSeccomp returns the compiled program kept for key, or nil.
func cachedSeccomp(root string, key []byte) []byte {
	if key == nil {
		return nil
	}
	b, err := os.ReadFile(seccompCacheFile(root, key))
	if err != nil || len(b) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n != len(key) || len(b) < 4+n || !bytes.Equal(b[4:4+n], key) {
		return nil
	}
	bpf := b[4+n:]
	if len(bpf) == 0 || len(bpf)%8 != 0 {
		return nil
	}
	return bpf
}

// cacheSeccomp keeps a program the Go init compiled, written whole or not at all.
func cacheSeccomp(root string, key, bpf []byte) {
	if key == nil || len(bpf) == 0 {
		return
	}
	if err := os.Mkdir(filepath.Join(root, seccompCacheDir), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return
	}
	name := seccompCacheFile(root, key)
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-")
	if err != nil {
		return
	}
	entry := binary.LittleEndian.AppendUint32(nil, uint32(len(key)))
	entry = append(append(entry, key...), bpf...)
	_, err = f.Write(entry)
	if cerr := f.Close(); err == nil && cerr == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return
	}
	trimSeccompCache(filepath.Dir(name))
}

// maxSeccompCache bounds the cache: a node runs a handful of profiles, but every distinct
// profile (a generated one per container, say) would otherwise stay forever.
const maxSeccompCache = 64

// trimSeccompCache removes the least recently written entries past maxSeccompCache.
func trimSeccompCache(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) <= maxSeccompCache {
		return
	}
	type entry struct {
		name string
		mod  int64
	}
	var all []entry
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			all = append(all, entry{e.Name(), info.ModTime().UnixNano()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod < all[j].mod })
	for _, e := range all[:max(0, len(all)-maxSeccompCache)] {
		os.Remove(filepath.Join(dir, e.name))
	}
}

// fastCreate returns, when this container can be created without the Go init, the
// constructor's two requests: the namespace step's, encoded, and the process (an exec's,
// without the create's own fields, which need the child's fd numbers: see buildFromParent).
// Else nil, nil. bpf is the spec's compiled seccomp program, if it has a filter and the
// program is known.
func fastCreate(o CreateOpts, bpf []byte) (nsReq []byte, procReq *initproto.ExecRequest) {
	s := o.Spec
	if o.SlowPath || o.NoPivot || s.Process == nil || s.Linux == nil || (s.Linux.Seccomp != nil && bpf == nil) || !kernelAtLeast(5, 6) {
		return nil, nil
	}
	if s.Linux.Personality != nil || s.Linux.MemoryPolicy != nil || specs.HasNotify(s.Linux.Seccomp) || hasIDMappedMount(s) {
		return nil, nil // applied by the Go init (procattrs_linux.go, seccomp listeners)
	}
	if chrootedOnce() {
		// The joined thread's root becomes the mount namespace's at setns, not husk's chroot:
		// the rootfs path would name another directory. The Go init inherits the chroot.
		return nil, nil
	}
	if h := s.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer)+len(h.StartContainer) > 0 { //nolint:staticcheck // prestart is deprecated but still honoured
		return nil, nil
	}
	p := *s.Process
	p.Env = append(append([]string(nil), p.Env...), o.ExtraEnv...)
	// HOME from the container's /etc/passwd is added once the rootfs is built (buildFromParent).
	var flags uintptr
	if s.Linux.Seccomp != nil {
		flags, _ = specs.SeccompFlags(s.Linux.Seccomp.Flags, false) // validated at load
	}
	if procReq = fastExecRequest(&p, bpf, flags, o.PreserveFds, ""); procReq == nil {
		return nil, nil
	}
	var req initproto.CreateRequest
	mountNs := false
	for _, ns := range s.Linux.Namespaces {
		switch ns.Type {
		case rspec.UserNamespace, rspec.TimeNamespace:
			return nil, nil
		case rspec.MountNamespace:
			mountNs = ns.Path == ""
		case rspec.CgroupNamespace:
			if ns.Path == "" {
				req.CgroupNS = true
			}
		}
	}
	if !mountNs {
		return nil, nil // the Go init says why
	}
	procs := 0
	for _, m := range s.Mounts {
		if m.Type != "proc" || specs.IsBind(m) {
			continue
		}
		opts, err := specs.ParseMountOptions(m.Options)
		if err != nil {
			return nil, nil
		}
		if !rootfs.FlagsMountableFromContext(opts.Flags) {
			return nil, nil
		}
		if procs++; procs > 1 {
			return nil, nil
		}
	}
	req.Proc = procs == 1
	if !o.NoNewKeyring {
		req.Keyring = "_ses." + o.ID
	}
	return req.Encode(), procReq
}

// chrootedOnce is chrooted, asked once per process: the shim's in-process engine creates many
// containers, and its root does not change under it (a thread and a setns, ~40 us, each time).
var chrootedOnce = sync.OnceValue(chrooted)

// chrooted reports whether husk runs under a root that is not its mount namespace's (a chroot,
// as in a bare build root): a thread that joins the namespace sees the namespace's root.
func chrooted() bool {
	var own, ns unix.Stat_t
	if unix.Stat("/", &own) != nil {
		return false
	}
	err := onThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return err
		}
		fd, err := unix.Open("/proc/self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
			return err
		}
		return unix.Stat("/", &ns)
	})
	return err == nil && (own.Dev != ns.Dev || own.Ino != ns.Ino)
}

// kernelAtLeast reports whether the running kernel has the calls the fast path needs:
// fsopen (5.2) and pidfd_getfd (5.6).
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	majs, rest, _ := strings.Cut(rel, ".")
	mins, _, _ := strings.Cut(rest, ".")
	maj, err1 := strconv.Atoi(majs)
	if i := strings.IndexFunc(mins, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		mins = mins[:i] // "6-rc1", "18+"
	}
	min, err2 := strconv.Atoi(mins)
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || (maj == major && min >= minor)
}

// buildFromParent is steps 2 and 3: cfg is the create's config, with the whole spec; procReq
// is fastCreate's process request.
func buildFromParent(pid int, pipe *initproto.Conn, cfg *initproto.InitConfig, spec *rspec.Spec, procReq *initproto.ExecRequest) error {
	procFd, err := pipe.WaitNsReady()
	if err != nil {
		return err
	}
	site := rootfs.Site{InitPid: pid}
	if procFd >= 0 {
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return fmt.Errorf("pidfd of init: %w", err)
		}
		fd, err := unix.PidfdGetfd(pidfd, procFd, 0)
		unix.Close(pidfd)
		if err != nil {
			return fmt.Errorf("procfs context of init: %w", err)
		}
		site.ProcCtx = os.NewFile(uintptr(fd), "procfs-context")
		defer site.ProcCtx.Close()
	}
	nsfds, err := joinedNamespaces(pid, spec.Linux.Namespaces)
	if err != nil {
		return err
	}
	err = startLocked(nsfds, func() error { return rootfs.Build(rootfs.ConfigFrom(cfg, spec, nil), site, nil) })
	for _, f := range nsfds {
		f.Close()
	}
	if err != nil {
		return err
	}
	// The create's own: a session of its own, and after the process is set up, Ready and the
	// exec fifo. (fastCreate left room for HOME.)
	procReq.Setsid, procReq.Fifo = true, cfg.FifoFd
	if p := spec.Process; !procenv.HasHome(p.Env) && !procenv.HasHome(cfg.ExtraEnv) {
		procReq.Env = append(procReq.Env, "HOME="+procenv.ContainerHome(pid, p.User.UID))
	}
	if err := pipe.SendRequest(procReq.Encode()); err != nil {
		return fmt.Errorf("send process to init: %w", err)
	}
	return nil
}

// joinedNamespaces opens the namespaces pid is in, of those the spec lists but user, pid and
// time (the building thread needs none of them), in the order startLocked joins them.
func joinedNamespaces(pid int, namespaces []rspec.LinuxNamespace) ([]*os.File, error) {
	var files []*os.File
	for _, t := range []rspec.LinuxNamespaceType{rspec.IPCNamespace, rspec.UTSNamespace, rspec.NetworkNamespace, rspec.CgroupNamespace, rspec.MountNamespace} {
		if !specs.HasNamespace(namespaces, t) {
			continue
		}
		f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/" + nsProcName[t])
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("join %s namespace: %w", t, err)
		}
		files = append(files, f)
	}
	return files, nil
}
