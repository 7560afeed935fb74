# husk: build, demo, test, bench.
SHELL := /bin/bash
PREFIX ?= /usr/local
# Go from PATH, else where the official tarball installs it.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# The scripts make runs (test-deps, the suites' setups) find that go too.
export PATH := $(dir $(GO)):$(PATH)
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# urfave_cli_no_docs drops the man-page generator: 1 ms of package init on every call.
GOFLAGS_BUILD := -trimpath -buildvcs=false -tags urfave_cli_no_docs
DEMO_DIR ?= build/demo

.PHONY: all build build-deps install demo test test-deps test-cgroup2 test-systemd test-runc-compat test-runc15-compat test-critest test-containerd-client test-kubelet check-security check lint bench bench-critest bench-node fuzz clean

all: build

comma := ,
INIT_ENTRY := $(if $(filter x86_64,$(shell uname -m)), -Wl$(comma)-e$(comma)husk_entry)

build: build-deps
	# husk, the command line, is pure Go and static: no libc to load on any of the four
	# processes a container's life starts, and no cgroup, protobuf or eBPF libraries to initialise.
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o bin/husk ./cmd/runtime
	# husk-init, the container's first process, needs cgo (setns before the Go runtime starts,
	# libseccomp); it links libseccomp and glibc statically (no dynamic loading at each start),
	# with osusergo/netgo keeping NSS out of static glibc. On x86_64 its entry point runs the
	# fast paths of exec and create before static glibc's own start (libcontainer/nsenter/early.c).
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD),osusergo,netgo -ldflags '$(LDFLAGS) -linkmode external -extldflags "-static$(INIT_ENTRY)"' -o bin/husk-init ./cmd/husk-init
	# husk's checkpoint and restore: this command line with the criu tag (CRIU's RPC protocol
	# and protobuf), exec'd by husk for those two commands only.
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD),criu -ldflags '$(LDFLAGS)' -o bin/husk-criu ./cmd/runtime
	# The systemd cgroup driver's D-Bus side, started by husk only under --systemd-cgroup: the
	# D-Bus libraries (with the crypto and net packages they pull in) stay out of husk.
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o bin/husk-systemd ./cmd/husk-systemd
	# The shim is static (no cgo, no libc): it stays resident for the whole life of a container.
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o bin/containerd-shim-husk-v2 ./cmd/shim

# A C compiler, pkg-config and libseccomp for husk-init: installed when missing (Debian, root).
build-deps:
	@./.ci/build-deps

install: build
	install -D -m 0755 bin/husk $(DESTDIR)$(PREFIX)/bin/husk
	install -D -m 0755 bin/husk-init $(DESTDIR)$(PREFIX)/bin/husk-init
	install -D -m 0755 bin/husk-systemd $(DESTDIR)$(PREFIX)/bin/husk-systemd
	install -D -m 0755 bin/husk-criu $(DESTDIR)$(PREFIX)/bin/husk-criu
	install -D -m 0755 bin/containerd-shim-husk-v2 $(DESTDIR)$(PREFIX)/bin/containerd-shim-husk-v2

# Runs a real container: the rootfs is one static Go binary built here, nothing is downloaded.
demo: build
	@test "$$(id -u)" = 0 || { echo "make demo: run as root (containers need CAP_SYS_ADMIN)"; exit 1; }
	rm -rf $(DEMO_DIR)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o build/demo-bin ./integration/demo
	build/demo-bin -bundle $(DEMO_DIR)
	bin/husk --root build/state run --bundle $(DEMO_DIR) husk-demo-$$$$

# Installs what the tests need on a fresh Debian machine (idempotent).
test-deps:
	./.ci/install-deps

test: test-deps build lint
	@mkdir -p build
	$(GO) test -count=1 -timeout 20m ./specs/... ./libcontainer/... ./shimapi/... ./internal/...
	# Rebuilt (-a): its C is nsenter's (../execfast.c, ../hx.h), files outside its directory that
	# Go's build cache does not track, so a change to them alone would test a stale build.
	$(GO) test -count=1 -a ./libcontainer/nsenter/parsetest/
	HUSK_CRICTL=$(CURDIR)/build/bin/crictl HUSK_CONTAINERD2=$(CURDIR)/build/containerd2/bin HUSK_BINARY=$(CURDIR)/bin/husk HUSK_SHIM_BINARY=$(CURDIR)/bin/containerd-shim-husk-v2 $(GO) test -count=1 -timeout 30m -v ./integration/... 2>&1 | tee build/integration.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|SKIP|\.go:[0-9]+:'; \
		rc=$${PIPESTATUS[0]}; [ $$rc = 0 ] || { ./.ci/fail-summary build/integration.log; \
		[ -z "$$HUSK_FAILURE_LOGS" ] || { mkdir -p "$$HUSK_FAILURE_LOGS" && cp build/integration.log "$$HUSK_FAILURE_LOGS/"; }; }; exit $$rc

# cgroup v2 proper: this host is hybrid, so boot Debian's kernel with cgroup2 only under qemu
# (software emulation, ~10 s) with husk and busybox in an initramfs.
test-cgroup2: build test-deps
	@command -v qemu-system-x86_64 >/dev/null && ls /boot/vmlinuz-* >/dev/null 2>&1 || { \
		echo "test-cgroup2: installing qemu-system-x86 and linux-image-amd64"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 linux-image-amd64 >/dev/null; }
	HUSK_CGROUP2_VM=1 HUSK_BINARY=$(CURDIR)/bin/husk $(GO) test -count=1 -timeout 10m -v -run '^TestCgroup2InVM$$' ./integration/

# The systemd cgroup driver on a real systemd host: a Debian 12 guest (systemd 252 as PID 1,
# containerd 1.6) under qemu, booted on cgroup v2 and then hybrid; its rootfs is built once
# into build/guest (debootstrap) and reused while integration/systemd/build-rootfs.sh is unchanged.
test-systemd: build test-deps
	@command -v qemu-system-x86_64 >/dev/null && command -v debootstrap >/dev/null && command -v mkfs.ext4 >/dev/null && ls /boot/vmlinuz-* >/dev/null 2>&1 || { \
		echo "test-systemd: installing qemu-system-x86, linux-image-amd64, debootstrap, e2fsprogs"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 linux-image-amd64 debootstrap e2fsprogs >/dev/null; }
	integration/systemd/run-guest.sh $(SYSTEMD_LAYOUTS)

# runc 1.1.5's own bats suite (Debian's source package) against bin/husk; fails when a test that
# runc passes on this kind of machine fails for husk (integration/runc-compat/expected-pass.txt,
# less the naming-only exceptions.txt). The source, helpers and images stay in build/runc-bats.
RUNC_COMPAT_DIR ?= $(CURDIR)/build/runc-bats
test-runc-compat: build test-deps
	RUNC_COMPAT_DIR=$(RUNC_COMPAT_DIR) integration/runc-compat/runc-compat.sh setup
	rm -rf build/runc-compat
	RUNC_COMPAT_DIR=$(RUNC_COMPAT_DIR) integration/runc-compat/runc-compat.sh run bin/husk build/runc-compat
	RUNC_COMPAT_DIR=$(RUNC_COMPAT_DIR) integration/runc-compat/runc-compat.sh gate build/runc-compat

# runc 1.5.3's own suite against husk, and against runc 1.5.3 built here where husk does not
# pass everything; fails when a test runc passes on this machine does not pass for husk (less
# the naming-only runc15-exceptions.txt). RUNC15_FULL=1 runs runc over every file too.
RUNC15_DIR ?= $(CURDIR)/build/runc15
test-runc15-compat: build test-deps
	RUNC_COMPAT_DIR=$(RUNC_COMPAT_DIR) RUNC15_DIR=$(RUNC15_DIR) integration/runc-compat/runc15.sh setup
	rm -rf build/runc15-out
	RUNC_COMPAT_DIR=$(RUNC_COMPAT_DIR) RUNC15_DIR=$(RUNC15_DIR) integration/runc-compat/runc15.sh run bin/husk build/runc15-out
	RUNC_COMPAT_DIR=$(RUNC_COMPAT_DIR) RUNC15_DIR=$(RUNC15_DIR) integration/runc-compat/runc15.sh gate build/runc15-out

# Kubernetes' CRI validation suite (critest v1.37.0, built once into CRITEST_DIR) against
# containerd 2.4 and 1.6 with the husk shim as the pods' handler; fails when a spec that runc's
# handler passes on the same containerd fails for husk (integration/critest_test.go). Images come
# from a registry the test serves on 127.0.0.1. In a mount namespace whose / is shared, as on a
# systemd node (this machine's is private): Bidirectional propagation needs it.
CRITEST_DIR ?= $(CURDIR)/build/critest
test-critest: build test-deps
	integration/suites/build.sh sigs.k8s.io/cri-tools v1.37.0 ./cmd/critest $(CRITEST_DIR)/critest
	rm -rf build/critest-out && mkdir -p build/critest-out
	unshare -m sh -c 'mount --make-rshared / && exec env HUSK_CRITEST=$(CRITEST_DIR)/critest HUSK_CRITEST_OUT=$(CURDIR)/build/critest-out \
		HUSK_CRICTL=$(CURDIR)/build/bin/crictl HUSK_CONTAINERD2=$(CURDIR)/build/containerd2/bin HUSK_BINARY=$(CURDIR)/bin/husk \
		HUSK_SHIM_BINARY=$(CURDIR)/bin/containerd-shim-husk-v2 $(GO) test -count=1 -timeout 30m -v -run "^TestCritest$$" ./integration/'

# critest's own benchmarks (pod lifecycle, container operations) with husk's handler and runc's
# on containerd 2.4, interleaved: medians and husk/runc ratios (CRITEST_BENCH_ROUNDS rounds of
# 30 pods and 30 containers), written to build/critest-bench.json.
CRITEST_BENCH_ROUNDS ?= 6
bench-critest: build test-deps
	integration/suites/build.sh sigs.k8s.io/cri-tools v1.37.0 ./cmd/critest $(CRITEST_DIR)/critest
	unshare -m sh -c 'mount --make-rshared / && exec env HUSK_CRITEST=$(CRITEST_DIR)/critest HUSK_CRITEST_BENCH=$(CRITEST_BENCH_ROUNDS) \
		HUSK_CRITEST_BENCH_OUT=$(CURDIR)/build/critest-bench.json HUSK_CRICTL=$(CURDIR)/build/bin/crictl HUSK_CONTAINERD2=$(CURDIR)/build/containerd2/bin \
		HUSK_BINARY=$(CURDIR)/bin/husk HUSK_SHIM_BINARY=$(CURDIR)/bin/containerd-shim-husk-v2 $(GO) test -count=1 -timeout 60m -v -run "^TestCritestBenchmark$$" ./integration/'

# A node's load through containerd 2.4's CRI (integration/nodebench, a module of its own: the
# CRI API's dependencies stay out of husk's): pod start throughput at concurrency 10, exec
# probes once a second per pod (CPU per probe, latency), the shims' PSS, and a container's
# start with 1, 64 and 256 masked directories; husk against runc and the runc shim driving
# crun, at each of NODEBENCH_PODS pods. NODEBENCH_PROBE_FOR shortens the probe phase.
NODEBENCH_PODS ?= 10,50,100
NODEBENCH_PROBE_FOR ?= 60s
bench-node: build test-deps
	cd integration/nodebench && GOWORK=off $(GO) build -o $(CURDIR)/build/bin/nodebench .
	gcc -O2 -Wall -o build/bin/crunwrap integration/nodebench/crunwrap/crunwrap.c
	unshare -m sh -c 'mount --make-rshared / && exec env HUSK_NODEBENCH=$(CURDIR)/build/bin/nodebench HUSK_NODEBENCH_PODS=$(NODEBENCH_PODS) \
		HUSK_NODEBENCH_CRUN=$(CURDIR)/build/bin/crunwrap \
		HUSK_NODEBENCH_PROBE_FOR=$(NODEBENCH_PROBE_FOR) HUSK_NODEBENCH_OUT=$$(realpath -m $${NODEBENCH_JSON:-integration/node-bench-results.json}) \
		HUSK_CRICTL=$(CURDIR)/build/bin/crictl HUSK_CONTAINERD2=$(CURDIR)/build/containerd2/bin \
		HUSK_BINARY=$(CURDIR)/bin/husk HUSK_SHIM_BINARY=$(CURDIR)/bin/containerd-shim-husk-v2 $(GO) test -count=1 -timeout 120m -v -run "^TestNodeBenchmark$$" ./integration/'

# A standalone kubelet (v1.37.2, built once into KUBELET_DIR from the module proxy) on
# containerd 2.4 with husk as the default runtime: static pods through their life on a node
# (integration/kubelet_test.go), in a mount namespace of its own (integration/kubelet/node.sh).
KUBELET_DIR ?= $(CURDIR)/build/kubelet
test-kubelet: build test-deps
	integration/kubelet/build.sh v1.37.2 $(KUBELET_DIR)/kubelet
	unshare -m integration/kubelet/node.sh env HUSK_KUBELET=$(KUBELET_DIR)/kubelet \
		HUSK_CRICTL=$(CURDIR)/build/bin/crictl HUSK_CONTAINERD2=$(CURDIR)/build/containerd2/bin HUSK_BINARY=$(CURDIR)/bin/husk \
		HUSK_SHIM_BINARY=$(CURDIR)/bin/containerd-shim-husk-v2 $(GO) test -count=1 -timeout 20m -v -run "^TestKubelet$$" ./integration/

# containerd v2.4.2's own client integration tests (integration/client, built once into
# CONTAINERD_CLIENT_DIR) with the husk shim as the default runtime; fails when a test the runc
# shim passes on this machine fails for husk (integration/containerd_client_test.go).
CONTAINERD_CLIENT_DIR ?= $(CURDIR)/build/containerd-client
test-containerd-client: build test-deps
	integration/suites/build.sh github.com/containerd/containerd/v2 v2.4.2 ./integration/client $(CONTAINERD_CLIENT_DIR)/client.test \
		./integration/failpoint/cmd/runc-fp ./integration/failpoint/cmd/containerd-shim-runc-fp-v1
	rm -rf build/containerd-client-out && mkdir -p build/containerd-client-out
	HUSK_CONTAINERD_CLIENT=$(CONTAINERD_CLIENT_DIR)/client.test HUSK_CONTAINERD_CLIENT_OUT=$(CURDIR)/build/containerd-client-out \
		HUSK_CONTAINERD2=$(CURDIR)/build/containerd2/bin HUSK_BINARY=$(CURDIR)/bin/husk HUSK_SHIM_BINARY=$(CURDIR)/bin/containerd-shim-husk-v2 \
		$(GO) test -count=1 -timeout 60m -v -run "^TestContainerdClient$$" ./integration/

# The attacks of the security issue (also part of make test).
check-security: build test-deps
	HUSK_BINARY=$(CURDIR)/bin/husk HUSK_SHIM_BINARY=$(CURDIR)/bin/containerd-shim-husk-v2 $(GO) test -count=1 -v \
		-run 'Attack|Protected|SealedInit|FdLeak|Cwd|StateIsPrivate|ImageDevSymlink|RacingVolume|PlantedDevNull|ProcWritesStayOnProcfs|ConsoleSymlink|ShimSocketsAreNotAbstract|BadInputFailsCleanly|CapabilitiesAndNoNewPrivs|TestExec$$|DeviceCgroupDenies|Seccomp|KilledCreate|Rootless|NonEmptyCgroup|KillWithoutPidNamespace|KillAfterInitExited|DeleteForceUnderLoad|TmpCopyUp|MountLabel|PidsLimitZero' ./integration/
	$(GO) test -count=1 -run 'ExecFdAbove|SeccompCache|CPUAndNodeLists|PathsCheck' ./libcontainer/... ./specs/
	$(MAKE) fuzz

# A short fuzz run of every target; the seeds live in the fuzz tests.
# A count, not a duration: Go's fuzzing coordinator can fail a run with a bare "context deadline
# exceeded" when a duration runs out while a worker is busy (golang/go#51484, #75804; it happened
# in this project's CI, with no failing input). A count has no deadline to race.
FUZZTIME ?= 100000x
fuzz:
	$(GO) test -run XXX -fuzz '^FuzzParseAndValidate$$' -fuzztime $(FUZZTIME) ./specs
	$(GO) test -run XXX -fuzz '^FuzzParseMountOptions$$' -fuzztime $(FUZZTIME) ./specs
	$(GO) test -run XXX -fuzz '^FuzzParseProcess$$' -fuzztime $(FUZZTIME) ./specs
	$(GO) test -run XXX -fuzz '^FuzzCheckNoEscape$$' -fuzztime $(FUZZTIME) ./libcontainer/rootfs
	$(GO) test -run XXX -fuzz '^FuzzCreateRequest$$' -fuzztime $(FUZZTIME) ./shimapi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	# (named, not ./...: build/ holds Go module caches of the test tools)
	$(GO) vet ./cmd/... ./libcontainer/... ./shimapi/... ./specs/... ./internal/... ./integration/...
	$(GO) vet -tags criu ./cmd/runtime

# Interleaved husk / runc / crun and husk shim / runc shim; not part of `make test`. crun 1.8
# refuses hybrid cgroups, so every runtime runs in a mount namespace where cgroup2's
# cgroup.controllers is masked by an empty file.
bench: build test-deps
	$(GO) test -run XXX -bench . -benchtime 2000x ./specs ./libcontainer ./shimapi
	@mkdir -p build && : > build/empty
	unshare -m sh -c 'mount --bind build/empty /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; \
		$(GO) run ./integration/bench -husk bin/husk -shim bin/containerd-shim-husk-v2 -json $${BENCH_JSON:-integration/bench-results.json} $(BENCH_ARGS)'

clean:
	rm -rf bin build
