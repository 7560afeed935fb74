#!/bin/sh
# The systemd host husk is tested on (make test-systemd): a Debian 12 root filesystem with
# systemd 252 as PID 1, dbus, containerd 1.6, runc, busybox-static, jq, iptables, made with
# debootstrap (criu and bats too, for the checkpoint tests) and booted under qemu by run-guest.sh. Adapted from ../shared/tools/guest.
#   usage: build-rootfs.sh ROOTFS_DIR
set -eu
ROOTFS=$1
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PKGS=systemd,systemd-sysv,dbus,runc,criu,containerd,busybox-static,iproute2,procps,kmod,jq,iptables,bats,xz-utils

rm -rf "$ROOTFS"
mkdir -p "$(dirname "$ROOTFS")"
debootstrap --variant=minbase --include=$PKGS bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
	tail -20 "$ROOTFS.log"; exit 1; }

# No logins, no waits: the guest runs the test unit and powers off.
chroot "$ROOTFS" systemctl mask getty@tty1.service serial-getty@ttyS0.service \
	systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
	fstrim.timer systemd-networkd-wait-online.service >/dev/null 2>&1 || true
chroot "$ROOTFS" systemctl disable containerd.service >/dev/null 2>&1 || true
echo guest > "$ROOTFS/etc/hostname"
echo "/dev/vda / ext4 rw,relatime 0 1" > "$ROOTFS/etc/fstab"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
	"$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*

# The test runner: a one-shot unit once multi-user.target is reached; it runs /opt/test/run.sh
# and powers the guest off. Results go to the serial console and the 9p share (tag "out").
mkdir -p "$ROOTFS/opt/test/out"
cat > "$ROOTFS/etc/systemd/system/guest-test.service" <<'EOF'
[Unit]
Description=husk test runner
After=multi-user.target dbus.service
Wants=dbus.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c '/opt/test/run.sh 2>&1 | tee /opt/test/out/log >/dev/ttyS0'
ExecStopPost=/bin/systemctl poweroff --no-block
StandardOutput=journal+console
TimeoutStartSec=20min

[Install]
WantedBy=multi-user.target
EOF
chroot "$ROOTFS" systemctl enable guest-test.service >/dev/null 2>&1
cat > "$ROOTFS/etc/systemd/system/opt-test-out.mount" <<'EOF'
[Unit]
Description=host result directory (9p tag "out")
ConditionVirtualization=vm
DefaultDependencies=no
Before=guest-test.service

[Mount]
What=out
Where=/opt/test/out
Type=9p
Options=trans=virtio,version=9p2000.L,msize=262144

[Install]
WantedBy=guest-test.service
EOF
chroot "$ROOTFS" systemctl enable opt-test-out.mount >/dev/null 2>&1
printf '9p\n9pnet_virtio\noverlay\n' > "$ROOTFS/etc/modules-load.d/test.conf"
du -sh "$ROOTFS"
