package integration

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/husk-runtime/husk/integration/ociimage"
)

// TestContainerdClient runs containerd v2.4.2's own client integration tests
// (integration/client, built by make test-containerd-client; HUSK_CONTAINERD_CLIENT names the
// binary) with the husk shim as the default runtime, against the containerd 2.4 they start
// themselves. A test husk fails is run again with the runc shim (containerd 2.4's, driving the
// runc on PATH) and once more with husk: the test fails only for one the runc shim passes and
// husk fails twice. The tests pull their images by upstream names (ghcr.io/containerd/...,
// registry.k8s.io/...; their -image-list flag is read after the names are fixed): a registry
// here serves them over TLS on 127.0.0.1:443 with a certificate of a CA made for the run, and
// the suite runs in a mount namespace whose /etc/hosts points those hosts there, trusting that
// CA (SSL_CERT_FILE), as its containerd does. The images are built from the static busybox.
// HUSK_CONTAINERD_CLIENT_FULL=1 also runs the runc shim over every test, for its totals.
func TestContainerdClient(t *testing.T) {
	suite := os.Getenv("HUSK_CONTAINERD_CLIENT")
	if suite == "" {
		t.Skip("HUSK_CONTAINERD_CLIENT is not set (make test-containerd-client builds containerd's client tests and sets it)")
	}
	bin := containerd2Bin(t)
	out := os.Getenv("HUSK_CONTAINERD_CLIENT_OUT")
	if out == "" {
		out = t.TempDir()
	}
	env := startClientRegistry(t, out)
	run := func(runtime, log string, only []string) map[string]string {
		return runClientSuite(t, suite, bin, runtime, env, filepath.Join(out, log), only)
	}
	const huskRuntime, runcRuntime = "io.containerd.husk.v2", "io.containerd.runc.v2"
	husk := run(huskRuntime, "husk.log", nil)
	t.Logf("husk shim: %s", goTestCounts(husk))
	if os.Getenv("HUSK_CONTAINERD_CLIENT_FULL") != "" {
		t.Logf("runc shim: %s", goTestCounts(run(runcRuntime, "runc-full.log", nil)))
	}
	var failed []string
	for name, r := range husk {
		if r == "FAIL" {
			failed = append(failed, name)
		}
	}
	sort.Strings(failed)
	if len(failed) == 0 {
		return
	}
	runc := run(runcRuntime, "runc.log", failed)
	again := run(huskRuntime, "husk-again.log", failed)
	for _, name := range failed {
		switch {
		case runc[name] != "PASS":
			t.Logf("fails for the runc shim too (%s): %s", runc[name], name)
		case again[name] == "PASS":
			t.Logf("FLAKY for husk (passed on the second run): %s", name)
		default:
			t.Errorf("husk fails what the runc shim passes: %s (see %s)", name, filepath.Join(out, "husk.log"))
		}
	}
}

func goTestCounts(results map[string]string) string {
	n := map[string]int{}
	for _, r := range results {
		n[r]++
	}
	return fmt.Sprintf("%d passed, %d failed, %d skipped", n["PASS"], n["FAIL"], n["SKIP"])
}

// clientSkips are the client tests this machine cannot run, for any runtime, with the reason.
var clientSkips = map[string]string{
	"TestBindLowPortNonOpt": "its container's pid 1 is the image's nc, which must end on SIGTERM; Debian's static busybox nc has no SIGTERM handler, so as a pid namespace's init it ignores the signal and the test waits forever, for every runtime",
}

// clientRuncOnly are tests of runc itself, skipped for the husk shim, with the reason.
var clientRuncOnly = map[string]string{
	"TestKillContainerDeletedByRunc": "runs the runc binary on the runtime's state directory (runc delete --force) and expects the shim to see the container gone; husk's state is its own (upstream skips it for every runtime but runc, through RUNC_FLAVOR, which would skip two failpoint tests of the shim as well)",
}

// goTestResult matches go test -v's result lines of top-level tests.
var goTestResult = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (Test[^ /]+) `)

// runClientSuite runs the client tests (only those named, when given) with runtime as the
// default and returns each top-level test's result.
func runClientSuite(t *testing.T, suite, bin, runtime string, env clientEnv, log string, only []string) map[string]string {
	t.Helper()
	skips := make([]string, 0, len(clientSkips))
	for name := range clientSkips {
		skips = append(skips, name)
	}
	if runtime != "io.containerd.runc.v2" {
		for name := range clientRuncOnly {
			skips = append(skips, name)
		}
	}
	sort.Strings(skips)
	args := []string{"-test.root", "-test.v", "-test.timeout", "20m", "-no-criu", "-test.skip", "^(" + strings.Join(skips, "|") + ")$"}
	if len(only) > 0 {
		args = append(args, "-test.run", "^("+strings.Join(only, "|")+")$")
	}
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A test that fails with its task running leaves its shim and container behind (its
	// deferred Delete is refused while the task runs), for either shim; the next run's
	// containerd would find them in its state ("already exists"). Each run starts clean.
	cleanClientLeftovers(t, runtime)
	defer cleanClientLeftovers(t, runtime)
	cmd := exec.Command("unshare", append([]string{"-m", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, env.hosts, suite}, args...)...)
	// Its containerd, ctr and runc shim are containerd 2.4's; the husk shim and husk beside it;
	// the failpoint runc and shim (runc-fp) beside the suite.
	path := strings.Join([]string{shimDir(t), bin, filepath.Dir(suite), os.Getenv("PATH")}, ":")
	cmd.Env = append(os.Environ(), "TEST_RUNTIME="+runtime, "SSL_CERT_FILE="+env.caBundle, "PATH="+path)
	cmd.Dir = filepath.Dir(log)
	cmd.Stdout, cmd.Stderr = f, f
	runErr := cmd.Run() // non-zero when a test fails: the results say which
	f.Seek(0, 0)
	results := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := goTestResult.FindStringSubmatch(sc.Text()); m != nil {
			results[m[2]] = m[1]
		}
	}
	if len(results) == 0 {
		t.Fatalf("containerd's client tests (%s) reported no test: %v (log: %s)", runtime, runErr, log)
	}
	return results
}

// clientEnv is what the suite runs with: an /etc/hosts naming the registry's hosts and a CA
// bundle that trusts its certificate.
type clientEnv struct{ hosts, caBundle string }

// startClientRegistry serves the images of containerd's client tests, under their upstream
// names, over TLS on 127.0.0.1:443.
func startClientRegistry(t *testing.T, dir string) clientEnv {
	t.Helper()
	needBusybox(t)
	b, err := ociimage.NewBuilder(busyboxBin)
	if err != nil {
		t.Fatal(err)
	}
	reg := ociimage.NewRegistry()
	sh := ociimage.Spec{Cmd: []string{"sh"}}
	dirEntry := func(p string) ociimage.File { return ociimage.File{Path: p, Dir: true, Mode: 0o755} }
	// busybox's own image has its accounts (TestContainerUserID looks uid 3's group up).
	busybox := ociimage.Spec{Cmd: []string{"sh"}, Files: []ociimage.File{
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\nsys:x:3:3:sys:/dev:/bin/false\nsync:x:4:100:sync:/bin:/bin/sync\nmail:x:8:8:mail:/var/spool/mail:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\noperator:x:37:37:Operator:/var:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nwheel:x:10:root\nmail:x:12:\nwww-data:x:33:\nusers:x:100:\nnogroup:x:65534:\n")},
	}}
	images := []struct {
		ref  string
		spec ociimage.Spec
	}{
		{"ghcr.io/containerd/busybox:1.36", busybox},
		{"ghcr.io/containerd/alpine:3.14.0", ociimage.Spec{Cmd: []string{"sh"}, Files: []ociimage.File{{Path: "etc/alpine-release", Mode: 0o644, Data: []byte("3.14.0\n")}}}},
		{"registry.k8s.io/e2e-test-images/busybox:1.29-2", sh},
		{"registry.k8s.io/pause:3.10.2", ociimage.Spec{Cmd: []string{"/bin/sleep", "2147483647"}, Files: []ociimage.File{{Path: "pause", Mode: 0o644}}}},
		{"registry.k8s.io/pause:3.6", ociimage.Spec{Cmd: []string{"/bin/sleep", "2147483647"}, Files: []ociimage.File{{Path: "pause-3.6", Mode: 0o644}}}},
		{"ghcr.io/containerd/volume-copy-up:2.2", ociimage.Spec{Cmd: []string{"sh"}, Files: []ociimage.File{
			dirEntry("test_dir"), {Path: "test_dir/test_file", Mode: 0o644, Data: []byte("test_content\n")}}}},
		{"ghcr.io/containerd/volume-ownership:2.1", ociimage.Spec{Cmd: []string{"sh"}, Files: []ociimage.File{
			{Path: "volumes", Dir: true, Mode: 0o755, UID: 405, GID: 100}, {Path: "volumes/file", Mode: 0o644, UID: 405, GID: 100}}}},
		{"ghcr.io/containerd/nginx:1.27.0", sh},
		{"registry.k8s.io/e2e-test-images/resource-consumer:1.10", sh},
	}
	// ghcr.io/containerd/busybox@sha256:7b3c... (BusyBoxByDigest) names an upstream digest,
	// which a locally built image cannot have: the tests that pull it fail for every runtime.
	for _, img := range images {
		built, err := b.Build(img.spec)
		if err != nil {
			t.Fatal(err)
		}
		reg.Add(img.ref, built)
	}
	hostsNames := []string{"ghcr.io", "registry.k8s.io"}
	cert, caPEM := testTLSCert(t, hostsNames)
	l, err := tls.Listen("tcp", "127.0.0.1:443", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatalf("serving the registry on 127.0.0.1:443: %v", err)
	}
	srv := &http.Server{Handler: reg}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	system, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	env := clientEnv{hosts: filepath.Join(dir, "hosts"), caBundle: filepath.Join(dir, "ca.pem")}
	hosts := "127.0.0.1 localhost " + strings.Join(hostsNames, " ") + "\n::1 localhost\n"
	if err := os.WriteFile(env.hosts, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.caBundle, append(system, caPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	return env
}

// testTLSCert makes a CA and a server certificate it signs for names; it returns the
// certificate and the CA's, PEM-encoded.
func testTLSCert(t *testing.T, names []string) (tls.Certificate, []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "husk test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, _ := x509.ParseCertificate(caDER)
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// clientState is the state directory of the client tests' containerd.
const clientState = "/run/containerd-test"

// cleanClientLeftovers kills what a run of the client tests left: shims still serving its
// containerd, with every process below them, their containers' cgroups ("testing" is the
// tests' namespace), its state directory and the runtimes' state of that namespace.
func cleanClientLeftovers(t *testing.T, runtime string) {
	t.Helper()
	children := map[int][]int{}
	var shims []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
				if f := strings.Fields(string(stat)[i+1:]); len(f) > 1 {
					ppid, _ := strconv.Atoi(f[1])
					children[ppid] = append(children[ppid], pid)
				}
			}
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(cmdline), "containerd-shim") && strings.Contains(string(cmdline), clientState+"/containerd.sock") {
			shims = append(shims, pid)
		}
	}
	for _, shim := range shims {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", shim))
		t.Logf("around the %s run: killing a shim a failed test left: %s", runtime, strings.ReplaceAll(string(cmdline), "\x00", " "))
		var tree func(int)
		tree = func(pid int) {
			syscall.Kill(pid, syscall.SIGKILL)
			for _, c := range children[pid] {
				tree(c)
			}
		}
		tree(shim)
	}
	if len(shims) > 0 {
		time.Sleep(500 * time.Millisecond) // the killed processes leave their cgroups
	}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		lines := strings.Split(string(data), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if f := strings.Fields(lines[i]); len(f) > 4 && strings.HasPrefix(f[4], clientState+"/") {
				syscall.Unmount(f[4], syscall.MNT_DETACH)
			}
		}
	}
	// The tests' runtime state: the husk and runc shims' roots for their namespace, and the
	// root TestKillContainerDeletedByRunc gives its runtime.
	for _, d := range []string{clientState, "/run/containerd/husk/testing", "/run/containerd/runc/testing", "/tmp/runc-test"} {
		os.RemoveAll(d)
	}
	for _, h := range cgroupHierarchies() {
		dirs, _ := filepath.Glob(filepath.Join(h, "testing*"))
		for _, d := range dirs {
			removeCgroupEverywhere(strings.TrimPrefix(d, h))
		}
	}
}
