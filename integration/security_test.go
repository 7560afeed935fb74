package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/typeurl/v2"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// TestRuntimeBinaryIsWriteProtected covers CVE-2019-5736: while husk init runs inside the
// container (a created container's pid 1), the container must not be able to write the husk
// binary through /proc/<pid>/exe.
func TestRuntimeBinaryIsWriteProtected(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "create", id)
	defer b.husk(t, "delete", "-f", id)
	pid := int(b.state(t, id)["pid"].(float64))
	before, _ := os.ReadFile(huskBin)

	// From the host side: the init's executable lives on a read-only mount, so even root gets
	// EROFS (an unprotected running binary would give ETXTBSY, and a copy would be writable).
	_, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", pid), os.O_WRONLY, 0)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("open /proc/%d/exe for writing: %v, want EROFS", pid, err)
	}
	// From inside: a process exec'd into the created container attacks pid 1 (husk init).
	r := b.husk(t, "exec", id, "sh", "-c", "echo pwned >> /proc/1/exe && echo WROTE")
	if strings.Contains(r.stdout, "WROTE") {
		t.Fatalf("container wrote to the runtime binary: %s", r)
	}
	after, _ := os.ReadFile(huskBin)
	if string(before) != string(after) {
		t.Fatal("husk binary changed")
	}
}

// TestNoFdLeaksIntoContainer covers CVE-2024-21626: the container sees stdio and the fds it was
// asked to keep, nothing of husk's.
func TestNoFdLeaksIntoContainer(t *testing.T) {
	b := newBundle(t, "sh", "-c", "ls /proc/self/fd | tr '\\n' ' '")
	b.write(t)
	// ls itself holds one fd for the directory it lists (3, or 4 with one preserved fd).
	if out := strings.TrimSpace(b.must(t, "run", uniqueID(t))); out != "0 1 2 3" {
		t.Fatalf("fds in container: %q, want 0 1 2 3", out)
	}
	extra, err := os.CreateTemp(t.TempDir(), "extra")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	cmd := exec.Command(huskBin, "--root", b.root, "run", "--preserve-fds", "1", uniqueID(t))
	cmd.Dir = b.dir
	cmd.ExtraFiles = []*os.File{extra}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run --preserve-fds: %v", err)
	}
	if strings.TrimSpace(string(out)) != "0 1 2 3 4" {
		t.Fatalf("fds with --preserve-fds 1: %q, want 0 1 2 3 4", out)
	}
}

// TestCwdThroughLeakedFdIsRefused is the other half of CVE-2024-21626: a cwd of
// /proc/self/fd/N must never leave the process outside the container root.
func TestCwdThroughLeakedFdIsRefused(t *testing.T) {
	for fd := 3; fd < 10; fd++ {
		b := newBundle(t, "pwd")
		b.spec.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd)
		r := b.run(t, uniqueID(t))
		if r.code == 0 && !strings.HasPrefix(r.stdout, "/proc") && r.stdout != "/\n" {
			t.Fatalf("cwd /proc/self/fd/%d put the process at %q", fd, r.stdout)
		}
	}
}

// TestStateIsPrivate: the state root and container dirs are 0700, root's only.
func TestStateIsPrivate(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.root = t.TempDir() + "/state"
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)
	for _, p := range []string{b.root, b.root + "/" + id} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v (%v), want 0700", p, st.Mode().Perm(), err)
		}
	}
}

// TestImageDevSymlink (CVE-2026-41579 class): an image whose /dev is a symlink must not make husk
// create device nodes or mounts on the host: an escaping link is refused, an absolute one stays
// inside the rootfs.
func TestImageDevSymlink(t *testing.T) {
	b := newBundle(t, "true")
	os.Remove(b.rootfs() + "/dev")
	os.Symlink("../../../../../../../tmp", b.rootfs()+"/dev")
	b.write(t)
	id := uniqueID(t)
	assertOneLineError(t, b.husk(t, "create", id), "escapes the rootfs")
	assertClean(t, b, id)

	hostTarget := t.TempDir() // what /devdir would mean if resolved on the host
	b = newBundle(t, "true")
	os.Remove(b.rootfs() + "/dev")
	os.MkdirAll(b.rootfs()+"/devdir", 0o755)
	os.Symlink(hostTarget, b.rootfs()+"/dev") // absolute: means <rootfs><hostTarget> in the container
	os.MkdirAll(b.rootfs()+hostTarget, 0o755)
	b.write(t)
	if r := b.run(t, uniqueID(t)); r.code != 0 {
		t.Fatalf("container with an absolute /dev symlink: %s", r)
	}
	if entries, _ := os.ReadDir(hostTarget); len(entries) != 0 {
		t.Fatalf("husk wrote to the host through the image's /dev symlink: %v", entries)
	}
}

// TestShimSocketsAreNotAbstract (CVE-2020-15257): a container sharing the host network namespace
// can reach abstract unix sockets; the husk shim listens only on 0600 files.
func TestShimSocketsAreNotAbstract(t *testing.T) {
	b := newBundle(t)
	c := startContainerdWithShim(t)
	if out, code := c.ctr(t, "run", "-d", "--runtime", "io.containerd.husk.v2", "--env", "PATH=/bin", "--rootfs", b.rootfs(), "abs1", "sleep", "1000"); code != 0 {
		t.Fatalf("run: %s", out)
	}
	defer func() {
		c.ctr(t, "task", "kill", "-s", "KILL", "abs1")
	}()
	pidData, _ := os.ReadFile(filepath.Join(c.dir, "state/io.containerd.runtime.v2.task/default/abs1/shim.pid"))
	shimPid := strings.TrimSpace(string(pidData))
	inodes := map[string]bool{}
	fds, _ := os.ReadDir("/proc/" + shimPid + "/fd")
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/" + shimPid + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	unixTable, _ := os.ReadFile("/proc/net/unix")
	listening := 0
	for _, l := range strings.Split(string(unixTable), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 7 || !inodes[f[6]] {
			continue
		}
		if len(f) >= 8 && strings.HasPrefix(f[7], "@") {
			t.Errorf("shim has an abstract socket: %s", f[7])
		}
		if len(f) >= 8 && strings.HasPrefix(f[7], "/run/containerd/s/") {
			listening++
			if st, err := os.Stat(f[7]); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("shim socket %s: %v %v, want mode 0600", f[7], st.Mode(), err)
			}
		}
	}
	if listening == 0 {
		t.Fatalf("no shim socket found under /run/containerd/s (shim pid %q)", shimPid)
	}
}

// TestRacingVolumeCannotRedirectMkdir (CVE-2024-45310 class): while husk creates a mount
// destination inside a shared volume, another process keeps swapping a directory of it for a
// symlink to a host directory. Whatever husk creates must stay inside the rootfs.
func TestRacingVolumeCannotRedirectMkdir(t *testing.T) {
	b := newBundle(t, "true")
	host := t.TempDir() // the attacker's target outside the rootfs
	vol := b.rootfs() + "/vol"
	os.MkdirAll(vol, 0o755)
	b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/vol/a/b/c", Type: "tmpfs", Source: "tmpfs"})
	b.write(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Mostly a symlink to the host, briefly a directory again.
			os.RemoveAll(vol + "/a")
			os.Symlink(host, vol+"/a")
			time.Sleep(300 * time.Microsecond)
			os.Remove(vol + "/a")
			os.MkdirAll(vol+"/a", 0o755)
		}
	}()
	for i := 0; i < 40; i++ {
		b.run(t, fmt.Sprintf("race-%d", i)) // may fail when the race bites; must never escape
	}
	close(stop)
	<-done
	if entries, _ := os.ReadDir(host); len(entries) != 0 {
		t.Fatalf("husk created %v in the host directory through a racing symlink", entries)
	}
}

// TestPlantedDevNullIsRefused (CVE-2025-31133): with /dev from a volume whose "null" is a
// symlink to a procfs file, masking must not bind that file over the masked paths.
func TestPlantedDevNullIsRefused(t *testing.T) {
	b := newBundle(t, "true")
	vol := t.TempDir()
	os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(vol, "null"))
	var mounts []rspec.Mount
	for _, m := range b.spec.Mounts {
		if m.Destination == "/dev" {
			m = rspec.Mount{Destination: "/dev", Type: "bind", Source: vol, Options: []string{"rbind"}}
		}
		if m.Destination == "/dev/pts" || m.Destination == "/dev/shm" || m.Destination == "/dev/mqueue" {
			continue
		}
		mounts = append(mounts, m)
	}
	b.spec.Mounts = mounts
	b.write(t)
	id := uniqueID(t)
	assertOneLineError(t, b.husk(t, "create", id), "/dev/null is not the null device")
	assertClean(t, b, id)
}

// TestProcWritesStayOnProcfs (CVE-2025-52881 / CVE-2019-16884): a volume mounted over part of
// /proc cannot catch husk's writes (a sysctl here), and /proc itself must be procfs.
func TestProcWritesStayOnProcfs(t *testing.T) {
	b := newBundle(t, "true")
	vol := t.TempDir()
	os.MkdirAll(filepath.Join(vol, "ipv4"), 0o755)
	os.WriteFile(filepath.Join(vol, "ipv4", "ip_forward"), []byte("untouched\n"), 0o644)
	b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/proc/sys/net", Type: "bind", Source: vol, Options: []string{"rbind"}})
	b.spec.Linux.ReadonlyPaths = nil
	b.spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	b.write(t)
	id := uniqueID(t)
	// The write goes through husk's private procfs: the sysctl is set in the container's
	// network namespace, and the volume covering /proc/sys/net is not written.
	b.must(t, "create", id)
	pid := int(b.state(t, id)["pid"].(float64))
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "cat", "/proc/sys/net/ipv4/ip_forward").CombinedOutput()
	b.husk(t, "delete", "-f", id)
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Errorf("net.ipv4.ip_forward in the container's network namespace: %q %v", out, err)
	}
	if data, _ := os.ReadFile(filepath.Join(vol, "ipv4", "ip_forward")); string(data) != "untouched\n" {
		t.Fatalf("the sysctl write landed in the volume: %q", data)
	}

	b = newBundle(t, "true")
	b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"})
	b.write(t)
	id = uniqueID(t)
	assertOneLineError(t, b.husk(t, "create", id), "not a procfs")
	assertClean(t, b, id)
}

// TestConsoleSymlinkIsNotFollowed (CVE-2025-52565): with /dev from a volume whose "console" is a
// symlink to a host file, husk must not bind the pty over that file.
func TestConsoleSymlinkIsNotFollowed(t *testing.T) {
	b := newBundle(t, "true")
	target := filepath.Join(t.TempDir(), "host-file")
	os.WriteFile(target, []byte("host\n"), 0o644)
	vol := t.TempDir()
	os.Symlink(target, filepath.Join(vol, "console"))
	os.Symlink("pts/ptmx", filepath.Join(vol, "ptmx"))
	os.Mkdir(filepath.Join(vol, "pts"), 0o755)
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		os.WriteFile(filepath.Join(vol, n), nil, 0o666)
	}
	var mounts []rspec.Mount
	for _, m := range b.spec.Mounts {
		if m.Destination == "/dev" {
			m = rspec.Mount{Destination: "/dev", Type: "bind", Source: vol, Options: []string{"rbind"}}
		}
		if m.Destination == "/dev/shm" || m.Destination == "/dev/mqueue" {
			continue
		}
		mounts = append(mounts, m)
	}
	b.spec.Mounts = mounts
	b.spec.Linux.MaskedPaths = nil // the volume's null is not a device: no masking in this test
	b.spec.Process.Terminal = true
	b.write(t)
	sock := filepath.Join(t.TempDir(), "c.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			time.Sleep(time.Second)
			c.Close()
		}
	}()
	id := uniqueID(t)
	if r := b.husk(t, "create", "--console-socket", sock, id); r.code != 0 {
		t.Fatalf("create with a terminal: %s", r)
	}
	defer b.husk(t, "delete", "-f", id)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), target) {
		t.Fatal("the pty was mounted over the host file the image's /dev/console points at")
	}
	if data, _ := os.ReadFile(target); string(data) != "host\n" {
		t.Fatalf("host file changed: %q", data)
	}
}

// TestShimSealedInitIsReadOnlyAndFollowsUpgrades: the husk shim keeps one sealed view of
// husk-init for all its creates and execs (libcontainer.InitBinary). The view stays read-only
// from the host (CVE-2019-5736), and once husk-init is replaced on disk (an upgrade, while the
// shim lives on) the next container runs the new binary, not the view of the old one.
func TestShimSealedInitIsReadOnlyAndFollowsUpgrades(t *testing.T) {
	dir := t.TempDir()
	for src, name := range map[string]string{shimBinary(t): "containerd-shim-husk-v2", huskBin: "husk", filepath.Join(filepath.Dir(huskBin), "husk-init"): "husk-init"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h := startShimBinary(t, filepath.Join(dir, "containerd-shim-husk-v2"))
	ctx := context.Background()
	opts, err := typeurl.MarshalAnyToProto(&options.Options{BinaryName: filepath.Join(dir, "husk"), Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	create := func(id string) (exe []byte) {
		b := newBundle(t, "sleep", "1000")
		b.write(t)
		cr, err := h.client.Create(ctx, &taskapi.CreateTaskRequest{ID: id, Bundle: b.dir, Options: opts})
		if err != nil {
			t.Fatalf("Create %s: %v", id, err)
		}
		t.Cleanup(func() {
			h.client.Kill(ctx, &taskapi.KillRequest{ID: id, Signal: 9})
			h.client.Delete(ctx, &taskapi.DeleteRequest{ID: id})
		})
		// A created container's pid 1 is still husk-init, run from the sealed view.
		exePath := fmt.Sprintf("/proc/%d/exe", cr.Pid)
		if _, err := os.OpenFile(exePath, os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("%s: open %s for writing: %v, want EROFS", id, exePath, err)
		}
		exe, err = os.ReadFile(exePath)
		if err != nil {
			t.Fatal(err)
		}
		return exe
	}
	initPath := filepath.Join(dir, "husk-init")
	old, _ := os.ReadFile(initPath)
	if got := create("c1"); !bytes.Equal(got, old) {
		t.Fatal("c1's init is not husk-init")
	}
	if got := create("c2"); !bytes.Equal(got, old) {
		t.Fatal("c2's init is not husk-init")
	}
	// The upgrade: a new husk-init renamed into place (bytes after an ELF's end are inert).
	upgraded := append(append([]byte(nil), old...), []byte("upgrade")...)
	if err := os.WriteFile(initPath+".new", upgraded, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(initPath+".new", initPath); err != nil {
		t.Fatal(err)
	}
	if got := create("c3"); !bytes.Equal(got, upgraded) {
		t.Fatalf("after the upgrade c3 runs the old husk-init (%d bytes, want %d)", len(got), len(upgraded))
	}
}
