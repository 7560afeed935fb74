// Package integration runs real containers with the husk binary (and real runc peers,
// containerd and podman) and checks them as a user would: from inside the container and from
// the host.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/husk-runtime/husk/specs"
)

var (
	huskBin    string
	busyboxBin string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("SKIP: integration tests need root (namespaces, mounts, cgroups)")
		os.Exit(0)
	}
	huskBin = os.Getenv("HUSK_BINARY")
	if huskBin == "" {
		dir, err := os.MkdirTemp("", "husk-bin")
		if err != nil {
			panic(err)
		}
		// husk is pure Go; the init it starts, husk-init, beside it, needs cgo and its tag.
		huskBin = filepath.Join(dir, "husk")
		for _, args := range [][]string{
			{"build", "-o", huskBin, "../cmd/runtime"},
			{"build", "-o", filepath.Join(dir, "husk-init"), "../cmd/husk-init"},
			{"build", "-tags", "criu", "-o", filepath.Join(dir, "husk-criu"), "../cmd/runtime"},
			{"build", "-o", filepath.Join(dir, "husk-systemd"), "../cmd/husk-systemd"},
		} {
			if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
				fmt.Printf("go %v: %v\n%s", args, err, out)
				os.Exit(1)
			}
		}
	}
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			busyboxBin = p
			break
		}
	}
	code := m.Run()
	if left := suiteLeftovers(); len(left) > 0 {
		fmt.Printf("FAIL: the suite left these on the host:\n  %s\n", strings.Join(left, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// cgroupHierarchies lists the mount directories of the host's cgroup hierarchies.
func cgroupHierarchies() []string {
	var out []string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		d := filepath.Join("/sys/fs/cgroup", e.Name())
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// removeCgroupEverywhere removes the cgroup name (a top-level one) and what is below it, in
// every hierarchy, deepest first.
func removeCgroupEverywhere(name string) {
	for _, h := range cgroupHierarchies() {
		root := filepath.Join(h, name)
		var dirs []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			syscall.Rmdir(dirs[i])
		}
	}
}

// uniqueIDName matches the ids uniqueID makes.
var uniqueIDName = regexp.MustCompile(`^t[0-9]+-Test`)

// suiteLeftovers lists cgroups this suite run named (its CRI tests' parent, husk-kubelet-test,
// and any named after an id uniqueID made) still on the host after every test has run. Only
// this run's own names count: other work on the machine, another run of this suite included,
// is not this run's to judge.
func suiteLeftovers() []string {
	var out []string
	for _, h := range cgroupHierarchies() {
		filepath.WalkDir(h, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || p == h {
				return nil
			}
			n := d.Name()
			if n == criCgroupParent || n == kubeletCgroupRoot || (uniqueIDName.MatchString(n) || strings.HasPrefix(n, "husk-test-")) && madeHere(n) {
				out = append(out, "cgroup "+p)
				return filepath.SkipDir
			}
			return nil
		})
	}
	return out
}

// madeHere reports whether cgroup name n holds an id this process made.
func madeHere(n string) bool {
	found := false
	madeIDs.Range(func(id, _ any) bool {
		found = strings.Contains(n, id.(string))
		return !found
	})
	return found
}

func needBusybox(t testing.TB) {
	t.Helper()
	if busyboxBin == "" {
		t.Skip("busybox-static is not installed (make test-deps installs it)")
	}
}

// bundle is an OCI bundle in a temp dir with a busybox rootfs.
type bundle struct {
	dir  string
	root string // husk --root for this test
	spec *rspec.Spec
}

func newBundle(t testing.TB, args ...string) *bundle {
	t.Helper()
	needBusybox(t)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busyboxBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(busyboxBin, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
		}
	}
	os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\nnobody:x:65534:\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"), 0o644)
	s := specs.Default()
	s.Process.Terminal = false
	s.Process.Env = []string{"PATH=/bin", "TERM=xterm"}
	if len(args) > 0 {
		s.Process.Args = args
	}
	// Root on these machines lacks CAP_SYS_RESOURCE: do not raise the hard nofile limit.
	s.Process.Rlimits = nil
	b := &bundle{dir: dir, root: t.TempDir(), spec: s}
	// A test that fails after a create must not leave its container behind (it runs before the
	// temp dirs go: cleanups run last-registered first).
	t.Cleanup(func() {
		out, err := exec.Command(huskBin, "--root", b.root, "list", "-q").Output()
		if err != nil {
			return
		}
		for _, id := range strings.Fields(string(out)) {
			exec.Command(huskBin, "--root", b.root, "delete", "-f", id).Run()
		}
	})
	return b
}

func (b *bundle) write(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.spec, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) rootfs() string { return filepath.Join(b.dir, "rootfs") }

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// husk runs the husk binary with the bundle's root and the bundle dir as working directory.
func (b *bundle) husk(t testing.TB, args ...string) result {
	t.Helper()
	return runHusk(t, b.dir, b.root, nil, args...)
}

func runHusk(t testing.TB, dir, root string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(huskBin, append([]string{"--root", root}, args...)...)
	cmd.Dir = dir
	// Files, not pipes: a detached container keeps husk's stdio open, and waiting for a pipe's
	// EOF would wait for the container.
	out, errb := tempFile(t), tempFile(t)
	cmd.Stdout, cmd.Stderr = out, errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("husk %v hung", args)
	}
	r := result{readFile(out), readFile(errb), cmd.ProcessState.ExitCode()}
	out.Close()
	errb.Close()
	return r
}

func tempFile(t testing.TB) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readFile(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}

// run writes the config and runs the container in the foreground.
func (b *bundle) run(t testing.TB, id string) result {
	t.Helper()
	b.write(t)
	return b.husk(t, "run", id)
}

func (b *bundle) mustRun(t testing.TB, id string) string {
	t.Helper()
	r := b.run(t, id)
	if r.code != 0 {
		t.Fatalf("husk run %s: %s", id, r)
	}
	return r.stdout
}

func (b *bundle) must(t testing.TB, args ...string) string {
	t.Helper()
	r := b.husk(t, args...)
	if r.code != 0 {
		t.Fatalf("husk %v: %s", args, r)
	}
	return r.stdout
}

// state returns the parsed `husk state`.
func (b *bundle) state(t testing.TB, id string) map[string]any {
	t.Helper()
	var st map[string]any
	if err := json.Unmarshal([]byte(b.must(t, "state", id)), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitStatus polls until the container reaches status.
func (b *bundle) waitStatus(t testing.TB, id, status string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if b.state(t, id)["status"] == status {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("container %s never reached %s", id, status)
}

// hostTraces lists what a container could leave on the host: mounts under the bundle, cgroup
// directories named after it, its state directory.
func hostTraces(t testing.TB, root, bundleDir, id string) []string {
	t.Helper()
	var traces []string
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if bundleDir != "" && strings.Contains(l, bundleDir) {
			traces = append(traces, "mount: "+l)
		}
	}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && d.Name() == id {
			traces = append(traces, "cgroup: "+p)
			return filepath.SkipDir
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(root, id)); err == nil {
		traces = append(traces, "state dir: "+filepath.Join(root, id))
	}
	return traces
}

func assertClean(t testing.TB, b *bundle, id string) {
	t.Helper()
	if tr := hostTraces(t, b.root, b.dir, id); len(tr) > 0 {
		t.Fatalf("container %s left traces:\n%s", id, strings.Join(tr, "\n"))
	}
}

// procStatus reads a field of /proc/self/status as printed by a container.
func statusField(out, field string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, field+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, field+":"))
		}
	}
	return ""
}

func uniqueID(t testing.TB) string {
	id := fmt.Sprintf("t%d-%s", time.Now().UnixNano()%1e9, strings.NewReplacer("/", "-", " ", "", "=", "-").Replace(t.Name()))
	madeIDs.Store(id, true)
	return id
}

// madeIDs holds the ids uniqueID made in this process: the leak check counts only those.
var madeIDs sync.Map

func fmtSscan(s string, v ...any) (int, error) { return fmt.Sscan(s, v...) }

// syscallIoprioGet is ioprio_get(IOPRIO_WHO_PROCESS, pid).
func syscallIoprioGet(pid int) (int, uintptr, syscall.Errno) {
	r, r2, e := syscall.Syscall(syscall.SYS_IOPRIO_GET, 1, uintptr(pid), 0)
	return int(r), r2, e
}
