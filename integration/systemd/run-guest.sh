#!/bin/bash
# make test-systemd: husk on a real systemd host. Builds (once, cached under build/guest) a
# Debian 12 guest with systemd 252 as PID 1, copies husk, its shim, crictl and the test images
# in, and boots it under qemu (software emulation: KVM does not work on these machines) once
# per cgroup layout: pure cgroup v2, then hybrid (systemd.unified_cgroup_hierarchy=0). The
# guest runs guest-test.sh and powers off; every result line starts with GUESTTEST.
#   usage: run-guest.sh [v2|v1 ...]        (default: v2 v1)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=$ROOT/build/guest
ROOTFS=$B/rootfs
KVER=$(ls /boot/vmlinuz-* | sort | tail -1 | sed 's|/boot/vmlinuz-||')
layouts=${*:-v2 v1}
mkdir -p "$B"

# The root filesystem, rebuilt when its script changes.
stamp=$(sha256sum "$HERE/build-rootfs.sh" | cut -c1-16)
if [ "$(cat "$B/rootfs.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -x "$ROOTFS/usr/bin/containerd" ]; then
	t0=$(date +%s)
	"$HERE/build-rootfs.sh" "$ROOTFS"
	echo "$stamp" > "$B/rootfs.stamp"
	echo "test-systemd: guest rootfs built in $(( $(date +%s) - t0 )) s"
fi

# What changes each run: modules of the booted kernel, husk, the test and its images.
M=/lib/modules/$KVER
if [ ! -d "$ROOTFS$M/kernel/fs" ]; then
	rm -rf "$ROOTFS/lib/modules"; mkdir -p "$ROOTFS$M/kernel/drivers/net"
	for d in fs net lib crypto arch; do cp -a "$M/kernel/$d" "$ROOTFS$M/kernel/"; done
	cp -a "$M/kernel/drivers/net/veth.ko"* "$ROOTFS$M/kernel/drivers/net/" 2>/dev/null || true
	cp -a "$M"/modules.order "$M"/modules.builtin* "$ROOTFS$M/"
	chroot "$ROOTFS" depmod -a "$KVER"
fi
for b in husk husk-init husk-systemd husk-criu containerd-shim-husk-v2; do install -m 0755 "$ROOT/bin/$b" "$ROOTFS/usr/local/bin/$b"; done
install -m 0755 "$ROOT/build/bin/crictl" "$ROOTFS/usr/local/bin/crictl"
# runc 1.1.5's own checkpoint.bats (from make test-runc-compat's setup, when it has run):
# its tests/integration tree and recvtty, run in the guest against husk and runc.
RUNC_SRC=$(ls -d "${RUNC_COMPAT_DIR:-$ROOT/build/runc-bats}"/runc-1.1.5* 2>/dev/null | head -1)
rm -rf "$ROOTFS/opt/runc-tests"
if [ -n "$RUNC_SRC" ] && [ -x "$RUNC_SRC/contrib/cmd/recvtty/recvtty" ]; then
	mkdir -p "$ROOTFS/opt/runc-tests/contrib/cmd/recvtty" "$ROOTFS/opt/runc-tests/tests"
	cp -a "$RUNC_SRC/tests/integration" "$ROOTFS/opt/runc-tests/tests/"
	cp "$RUNC_SRC/contrib/cmd/recvtty/recvtty" "$ROOTFS/opt/runc-tests/contrib/cmd/recvtty/"
	# The suite's get-images.sh asks `go env GOARCH`; the guest has no Go.
	mkdir -p "$ROOTFS/opt/runc-tests/bin"
	printf '#!/bin/sh\n[ "$1 $2" = "env GOARCH" ] && echo amd64\n' > "$ROOTFS/opt/runc-tests/bin/go"
	chmod 0755 "$ROOTFS/opt/runc-tests/bin/go"
else
	echo "test-systemd: runc's bats suite is not set up (integration/runc-compat/runc-compat.sh setup); checkpoint.bats is skipped in the guest"
fi
# containerd 2.4 (make test-deps builds it) for the CRI checkpoint: the guest's own is 1.6.
rm -rf "$ROOTFS/opt/ctd2"
if [ -x "$ROOT/build/containerd2/bin/containerd" ]; then
	mkdir -p "$ROOTFS/opt/ctd2/bin"
	cp "$ROOT"/build/containerd2/bin/* "$ROOTFS/opt/ctd2/bin/"
fi
# critest v1.37.0 (make test-critest builds it into CRITEST_DIR) with what it pulls: a static
# registry of its images (critest-registry, as the host's critest test serves them) and the
# host's CNI plugins for its pods' network.
CRITEST_BIN=${CRITEST_DIR:-$ROOT/build/critest}/critest
rm -rf "$ROOTFS/opt/critest"
if [ -x "$CRITEST_BIN" ] && [ -x "$ROOT/build/containerd2/bin/containerd" ] && [ -x /usr/lib/cni/bridge ]; then
	mkdir -p "$ROOTFS/opt/critest/cni"
	cp "$CRITEST_BIN" "$ROOTFS/opt/critest/critest"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ROOTFS/opt/critest/critest-registry" ./integration/suites/critest-registry \
		&& CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ROOTFS/opt/critest/imagetool" ./integration/suites/imagetool)
	cp /bin/busybox "$ROOTFS/opt/critest/busybox"
	cp /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback /usr/lib/cni/portmap "$ROOTFS/opt/critest/cni/"
	# CRITEST_FOCUS: a ginkgo focus for a shorter run (the whole suite by default).
	printf '%s\n' "${CRITEST_FOCUS:-}" > "$ROOTFS/opt/critest/focus"
else
	echo "test-systemd: critest, containerd 2.4 or the CNI plugins are missing (make test-critest builds critest); critest is skipped in the guest"
fi
install -m 0755 "$HERE/guest-test.sh" "$ROOTFS/opt/test/run.sh"
grep -v '^#' "$HERE/checkpoint-known-gaps.txt" > "$ROOTFS/opt/test/checkpoint-known-gaps.txt"
grep -v '^#' "$HERE/checkpoint-expected-pass.txt" > "$ROOTFS/opt/test/checkpoint-expected-pass.txt"
rm -f "$ROOTFS/opt/test/ckbats-runc" "$ROOTFS/opt/test/ckbats-filter"
[ -n "${CKBATS_FILTER:-}" ] && printf '%s\n' "$CKBATS_FILTER" > "$ROOTFS/opt/test/ckbats-filter"
[ -n "${CKBATS_RUNC:-}" ] && touch "$ROOTFS/opt/test/ckbats-runc"
rm -f "$ROOTFS/opt/test/only-ckbats" "$ROOTFS/opt/test/script.sh"
# GUEST_SCRIPT=file runs that script in the guest instead of the tests (a debugging aid): its
# output lines go to the console log, and the guest prints GUESTTEST DONE after it.
[ -n "${GUEST_SCRIPT:-}" ] && install -m 0755 "$GUEST_SCRIPT" "$ROOTFS/opt/test/script.sh"
[ -n "${ONLY_CKBATS:-}" ] && touch "$ROOTFS/opt/test/only-ckbats"
mkdir -p "$ROOTFS/opt/test/images"
(cd "$ROOT" && go run ./integration/ociimage/mkimage -busybox /bin/busybox -o "$ROOTFS/opt/test/images" \
	husk.test/busybox:1=sh husk.test/pause:1=sleep)
rm -f "$B/guest.ext4"
SZ=$(( $(du -sm "$ROOTFS" | cut -f1) * 14 / 10 + 200 ))
mkfs.ext4 -q -L guestroot -d "$ROOTFS" "$B/guest.ext4" "${SZ}M"

rc=0
for layout in $layouts; do
	OUT=$B/out-$layout
	rm -rf "$OUT"; mkdir -p "$OUT"
	args="systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
	[ "$layout" = v1 ] && args="systemd.unified_cgroup_hierarchy=0"
	echo "test-systemd: booting the guest ($layout: $args)"
	start=$(date +%s)
	timeout "${TIMEOUT:-1800}" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 2 -m 2048 \
		-nographic -no-reboot -serial mon:stdio \
		-kernel "/boot/vmlinuz-$KVER" -initrd "/boot/initrd.img-$KVER" \
		-append "root=/dev/vda rw rootfstype=ext4 console=ttyS0 panic=-1 quiet loglevel=3 systemd.show_status=error $args" \
		-drive file="$B/guest.ext4",format=raw,if=virtio,cache=unsafe -snapshot \
		-virtfs local,path="$OUT",mount_tag=out,security_model=none,id=out \
		-nic none < /dev/null 2>&1 | tr -d '\r' > "$OUT/console.log" || true
	grep 'GUESTTEST' "$OUT/console.log" | sed "s/^.*GUESTTEST /[$layout] /"
	echo "test-systemd: $layout guest ran $(( $(date +%s) - start )) s"
	if ! grep -q 'GUESTTEST DONE' "$OUT/console.log"; then
		echo "test-systemd: the $layout guest did not finish; console tail:"; tail -30 "$OUT/console.log"; rc=1
	elif grep -q 'GUESTTEST FAIL' "$OUT/console.log"; then
		rc=1
	fi
	# A failing guest's console (and what its tests wrote) is kept where CI keeps failure logs.
	if [ $rc != 0 ] && [ -n "${HUSK_FAILURE_LOGS:-}" ]; then
		mkdir -p "$HUSK_FAILURE_LOGS/guest-$layout" && cp -a "$OUT"/. "$HUSK_FAILURE_LOGS/guest-$layout/" 2>/dev/null || true
	fi
done
# CI shows the end of its output only: the failures again, last, whichever layout had them.
for layout in $layouts; do
	grep -a 'GUESTTEST FAIL' "$B/out-$layout/console.log" 2>/dev/null | sed "s/^.*GUESTTEST /test-systemd: [$layout] /"
done
exit $rc
