#!/bin/sh
# Runs a command as on a Kubernetes node, in a mount namespace of its own (call it under
# unshare -m): / shared as on a systemd host; a private /var/log (kubelet links every
# container's log into /var/log/containers) and a copy-on-write /var/lib (its device plugin
# socket and default certificates go to /var/lib/kubelet whatever its root dir): paths it does
# not let one move, kept off the host; and the kernel settings kubelet's protectKernelDefaults
# checks shown with the values it wants, bound over /proc/sys in this namespace only: the
# host's sysctls are never written.
set -eu
mount --make-rshared /
mount -t tmpfs -o mode=0755 husk-kubelet-log /var/log
mkdir /var/log/.varlib-upper /var/log/.varlib-work
mount -t overlay husk-kubelet-varlib -o lowerdir=/var/lib,upperdir=/var/log/.varlib-upper,workdir=/var/log/.varlib-work /var/lib
vals=/var/log/.husk-sysctl
mkdir "$vals"
while read -r key want; do
  f=/proc/sys/$key
  if [ "$(cat "$f")" != "$want" ]; then
    echo "$want" >"$vals/$(echo "$key" | tr / .)"
    mount --bind "$vals/$(echo "$key" | tr / .)" "$f"
  fi
done <<'SYSCTLS'
vm/overcommit_memory 1
vm/panic_on_oom 0
kernel/panic 10
kernel/panic_on_oops 1
kernel/keys/root_maxkeys 1000000
kernel/keys/root_maxbytes 25000000
SYSCTLS
exec "$@"
