package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// huskInits lists processes sitting in `husk init`: a failed create must leave none.
func huskInits(t testing.TB) map[string]bool {
	pids := map[string]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(cmd) == "husk\x00init\x00" {
			pids[e.Name()] = true
		}
	}
	return pids
}

// newInits returns the husk init processes alive now that were not in before; with marks, only
// those whose cgroup names one of them (the test's own ids: other tests' containers may be
// starting on the same machine).
func newInits(t testing.TB, before map[string]bool, marks ...string) []string {
	var out []string
	for p := range huskInits(t) {
		if before[p] {
			continue
		}
		cg, _ := os.ReadFile(filepath.Join("/proc", p, "cgroup"))
		mine := len(marks) == 0
		for _, m := range marks {
			mine = mine || strings.Contains(string(cg), m)
		}
		if mine {
			out = append(out, p)
		}
	}
	return out
}

func assertOneLineError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("want failure, got %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Fatalf("want one error line containing %q, got %q", want, r.stderr)
	}
}

func TestBadInputFailsCleanly(t *testing.T) {
	before := huskInits(t)
	cases := []struct {
		name  string
		setup func(t *testing.T, b *bundle)
		want  string
	}{
		{"missing config.json", func(t *testing.T, b *bundle) {}, "config.json not found"},
		{"malformed JSON", func(t *testing.T, b *bundle) {
			os.WriteFile(filepath.Join(b.dir, "config.json"), []byte(`{"ociVersion": "1.0.2",`+"\n"+`"process": {`), 0o644)
		}, "invalid JSON"},
		{"wrong JSON type", func(t *testing.T, b *bundle) {
			os.WriteFile(filepath.Join(b.dir, "config.json"), []byte(`{"process": {"args": "sh"}}`), 0o644)
		}, `field "process.args"`},
		{"unknown namespace", func(t *testing.T, b *bundle) {
			b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, rspec.LinuxNamespace{Type: "bogus"})
			b.write(t)
		}, `unknown namespace type "bogus"`},
		{"missing rootfs", func(t *testing.T, b *bundle) {
			os.RemoveAll(b.rootfs())
			b.write(t)
		}, "does not exist"},
		{"mount escaping through a symlink", func(t *testing.T, b *bundle) {
			os.Symlink("../../../../../../../../tmp", filepath.Join(b.rootfs(), "escape"))
			b.spec.Mounts = append(b.spec.Mounts, rspec.Mount{Destination: "/escape/evil", Type: "tmpfs", Source: "tmpfs"})
			b.write(t)
		}, "escapes the rootfs"},
		{"proc on a symlink", func(t *testing.T, b *bundle) {
			// CVE-2023-27561 / CVE-2019-19921: /proc in the image is a symlink.
			os.MkdirAll(filepath.Join(b.rootfs(), "fakeproc"), 0o755)
			os.Remove(filepath.Join(b.rootfs(), "proc"))
			if err := os.Symlink("fakeproc", filepath.Join(b.rootfs(), "proc")); err != nil {
				t.Fatal(err)
			}
			b.write(t)
		}, "is a symlink"},
		{"missing binary", func(t *testing.T, b *bundle) {
			b.spec.Process.Args = []string{"/no/such/program"}
			b.write(t)
		}, "executable file not found"},
		{"relative cwd", func(t *testing.T, b *bundle) {
			b.spec.Process.Cwd = "tmp"
			b.write(t)
		}, "must be an absolute path"},
		{"bad rlimit", func(t *testing.T, b *bundle) {
			b.spec.Process.Rlimits = []rspec.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}
			b.write(t)
		}, "unknown rlimit"},
		{"terminal without console socket", func(t *testing.T, b *bundle) {
			b.spec.Process.Terminal = true
			b.write(t)
		}, "--console-socket is required"},
		{"unknown device type", func(t *testing.T, b *bundle) {
			b.spec.Linux.Devices = []rspec.LinuxDevice{{Path: "/dev/x", Type: "q"}}
			b.write(t)
		}, "unknown device type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, "true")
			tc.setup(t, b)
			id := uniqueID(t)
			assertOneLineError(t, b.husk(t, "create", id), tc.want)
			assertClean(t, b, id)
			if r := b.husk(t, "list", "-q"); strings.TrimSpace(r.stdout) != "" {
				t.Fatalf("list after failed create: %q", r.stdout)
			}
		})
	}
	// Only this test's (its ids name it): other containers may be starting on the machine.
	if left := newInits(t, before, "-"+t.Name()+"-"); len(left) > 0 {
		t.Fatalf("husk init processes left behind: %v", left)
	}
}

func TestBadStateTransitions(t *testing.T) {
	b := newBundle(t, "sleep", "1000")
	b.write(t)
	id := uniqueID(t)
	b.must(t, "run", "-d", id)
	defer b.husk(t, "delete", "-f", id)

	assertOneLineError(t, b.husk(t, "create", id), "already exists")
	if st := b.state(t, id); st["status"] != "running" {
		t.Fatalf("duplicate create disturbed the first container: %v", st)
	}
	assertOneLineError(t, b.husk(t, "start", id), "already running")
	assertOneLineError(t, b.husk(t, "delete", id), "without --force")
	assertOneLineError(t, b.husk(t, "resume", id), "cannot resume a running container")
	for _, args := range [][]string{{"state", "nope"}, {"start", "nope"}, {"kill", "nope"}, {"delete", "nope"}, {"exec", "nope", "true"}, {"pause", "nope"}} {
		assertOneLineError(t, b.husk(t, args...), "does not exist")
	}
	assertOneLineError(t, b.husk(t, "state", "../etc"), "invalid container id")
	b.must(t, "delete", "--force", id)
	assertClean(t, b, id)
	// A forced delete of a container that is gone succeeds, so cleanups can be repeated.
	b.must(t, "delete", "--force", id)
	assertOneLineError(t, b.husk(t, "--log-format", "yaml", "list"), "--log-format")
	// The systemd driver on a host systemd does not run (this one): one line, nothing left.
	// (make test-systemd runs it where systemd does.)
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		assertOneLineError(t, b.husk(t, "--systemd-cgroup", "run", "-d", "sd-"+id), "systemd is not running on this host")
		assertClean(t, b, "sd-"+id)
		b.must(t, "--systemd-cgroup", "list")
	}
}

func TestJSONLogCarriesTheError(t *testing.T) {
	// containerd's shim reads the last error line of --log to explain a failure.
	b := newBundle(t, "true")
	log := filepath.Join(t.TempDir(), "log.json")
	r := b.husk(t, "--log", log, "--log-format", "json", "create", uniqueID(t))
	if r.code == 0 {
		t.Fatal("create without config.json succeeded")
	}
	data, _ := os.ReadFile(log)
	if !strings.Contains(string(data), `"level":"error"`) || !strings.Contains(string(data), `config.json not found`) || !strings.Contains(string(data), `"time":"`) {
		t.Fatalf("log: %q", data)
	}
}

// TestMissingHuskInit: husk alone, without husk-init beside it, refuses a create with a
// one-line error that names the missing binary, and leaves nothing behind.
func TestMissingHuskInit(t *testing.T) {
	lone := filepath.Join(t.TempDir(), "husk")
	data, err := os.ReadFile(huskBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	b := newBundle(t, "sleep", "100")
	b.write(t)
	id := uniqueID(t)
	cmd := exec.Command(lone, "--root", b.root, "create", id)
	cmd.Dir = b.dir
	out, err := cmd.CombinedOutput()
	r := result{stderr: string(out), code: cmd.ProcessState.ExitCode()}
	if err == nil {
		t.Fatalf("create without husk-init succeeded: %s", out)
	}
	assertOneLineError(t, r, "husk-init")
	assertClean(t, b, id)
}
