#!/bin/busybox sh
# /init of the cgroup v2 test guest: a pure cgroup2 kernel, busybox and husk. Each check prints
# HUSKTEST PASS/FAIL; the host's TestCgroup2InVM turns those lines into test results.
/bin/busybox --install -s /bin
# pivot_root cannot leave the initramfs rootfs: move onto a tmpfs first, as a real boot does.
if [ ! -e /.switched ]; then
	mount -t tmpfs -o size=512m tmpfs /mnt
	cp -a /bin /b /init /mnt/
	mkdir -p /mnt/proc /mnt/sys /mnt/dev /mnt/run /mnt/tmp /mnt/mnt
	touch /mnt/.switched
	exec switch_root /mnt /init
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "+cpu +memory +pids +io +cpuset" > /sys/fs/cgroup/cgroup.subtree_control
echo "HUSKTEST INFO kernel $(uname -r), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

H="/bin/husk --root /run/husk"
ok() { echo "HUSKTEST PASS $1"; }
bad() { echo "HUSKTEST FAIL $1: $2"; }
expect() { # name file want
	got=$(cat "$2" 2>&1)
	if [ "$got" = "$3" ]; then ok "$1"; else bad "$1" "$2 = '$got', want '$3'"; fi
}
wait_stopped() {
	i=0
	while $H state "$1" 2>/dev/null | grep -q '"status": "running"'; do
		i=$((i+1)); [ $i -gt 200 ] && return 1; sleep 0.05
	done
}

# Resources at create: memory, pids, cpu weight (from shares), from the host side.
if $H run -d --bundle /b/limits lim; then ok create; else bad create "run -d failed"; fi
expect memory.max /sys/fs/cgroup/lim/memory.max 33554432
expect pids.max /sys/fs/cgroup/lim/pids.max 20
expect unified-key /sys/fs/cgroup/lim/memory.high 31457280
expect cpu.max /sys/fs/cgroup/lim/cpu.max "50000 100000"
expect cpuset.cpus /sys/fs/cgroup/lim/cpuset.cpus 0
expect cpu.max.burst /sys/fs/cgroup/lim/cpu.max.burst 10000
expect memory.swap.max /sys/fs/cgroup/lim/memory.swap.max 0
# shares 512 -> weight 59: containerd/cgroups' mapping, the one current runc and crun use.
expect cpu.weight /sys/fs/cgroup/lim/cpu.weight 59
# Placement: the init is in the container's cgroup.
pid=$($H state lim | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
expect placement /proc/$pid/cgroup "0::/lim"
# update changes the limits.
$H update --memory 41943040 --pids-limit 30 --cpu-quota 25000 lim || bad update "update failed"
expect update-cpu.max /sys/fs/cgroup/lim/cpu.max "25000 100000"
expect update-memory /sys/fs/cgroup/lim/memory.max 41943040
expect update-pids /sys/fs/cgroup/lim/pids.max 30
# Stats for events (runc's JSON; the shim builds containerd's v2 Metrics from the same reader).
$H events --stats lim > /tmp/ev-stats 2>&1
grep -q '"limit":41943040' /tmp/ev-stats && ok events-stats-v2 || bad events-stats-v2 "$(cut -c1-200 /tmp/ev-stats)"
grep -q '"anon":' /tmp/ev-stats && grep -q '"current":1' /tmp/ev-stats && ok events-stats-raw || bad events-stats-raw "$(cut -c1-300 /tmp/ev-stats)"
# PSI of cpu, memory and io, as runc 1.2+ reports it.
[ "$(grep -o '"psi":{"some":{"avg10":' /tmp/ev-stats | wc -l)" = 3 ] && ok events-stats-psi || bad events-stats-psi "$(grep -o '"psi":[^}]*}' /tmp/ev-stats | head -3)"
# The cgroup namespace shows the container its own subtree.
out=$($H exec lim cat /proc/self/cgroup)
[ "$out" = "0::/" ] && ok cgroupns || bad cgroupns "exec sees '$out'"
out=$($H exec lim cat /sys/fs/cgroup/pids.max)
[ "$out" = "30" ] && ok cgroup-mount || bad cgroup-mount "container's /sys/fs/cgroup/pids.max = '$out'"
# pause / resume through cgroup.freeze.
$H pause lim && expect freeze /sys/fs/cgroup/lim/cgroup.freeze 1
$H state lim | grep -q '"paused"' && ok paused-state || bad paused-state "state does not say paused"
$H resume lim && expect thaw /sys/fs/cgroup/lim/cgroup.freeze 0
# kill --all uses cgroup.kill; delete removes the cgroup.
$H exec -d lim sleep 1000
$H kill --all lim KILL
wait_stopped lim && ok kill-all || bad kill-all "still running"
$H delete lim && [ ! -d /sys/fs/cgroup/lim ] && ok delete-cgroup || bad delete-cgroup "cgroup left"

# OOM: a memory hog over its limit is killed; events reports it.
$H run -d --bundle /b/oom oom
expect cpu.idle /sys/fs/cgroup/oom/cpu.idle 1
$H events --interval 1s oom > /tmp/ev 2>&1 &
evpid=$!
wait_stopped oom
sleep 0.3
kill $evpid 2>/dev/null
grep -q '"type":"oom"' /tmp/ev && ok oom-event || bad oom-event "$(cat /tmp/ev | tail -c 300)"
grep -q "oom_kill [1-9]" /sys/fs/cgroup/oom/memory.events && ok oom-kill || bad oom-kill "$(cat /sys/fs/cgroup/oom/memory.events)"
$H delete oom

# Devices: the eBPF filter denies what the allow-list does not grant.
out=$($H run --bundle /b/dev dev 2>&1)
case "$out" in
*"Operation not permitted"*NULL-OK*) ok device-filter ;;
*) bad device-filter "$out" ;;
esac

echo "HUSKTEST DONE"
poweroff -f
