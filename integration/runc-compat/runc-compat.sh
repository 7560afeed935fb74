#!/bin/bash
# runc's own bats integration suite (runc 1.1.5, tests/integration/*.bats, from Debian's source
# package) run against husk: "anything that drives runc can drive husk" checked the way runc's
# maintainers check runc. make test-runc-compat calls it; CI runs it.
#
#   runc-compat.sh setup                 fetch the source, vendor its Go deps, build the suite's
#                                        helpers (recvtty, seccompagent), build the test images
#   runc-compat.sh run RUNTIME OUTDIR [FILE.bats ...]
#                                        run the files one at a time under script(1) (the suite
#                                        needs a tty), one TAP file each in OUTDIR
#   runc-compat.sh gate OUTDIR           compare with expected-pass.txt (what runc 1.1.5 passes on
#                                        this kind of machine) less exceptions.txt; exit 1 when a
#                                        test runc passes fails or skips for the runtime
#
# env: RUNC_COMPAT_DIR (default build/runc-bats): the source tree and images, kept between runs;
#      RUNC_COMPAT_FILE_TIMEOUT (default 600): seconds per .bats file.
# Quirks of the suite (from ../shared/tools/runc-bats): never export BATS_TEST_TIMEOUT (bats 1.8
# runs it as a background job, and events.bats' bare "wait" then hangs); a test that times out
# can leave a frozen cgroup, so a watchdog thaws any of the suite's cgroups frozen for over 60 s;
# a runtime with runc issue 3674 chowns the host's /dev/null, which is put back and reported.
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
base=$(readlink -f "${RUNC_COMPAT_DIR:-build/runc-bats}")
version=1.1.5+ds1-1+deb12u1
src=${RUNC_SUITE_SRC:-$base/runc-1.1.5+ds1} # runc15.sh points it at runc 1.5.3's suite

setup() {
	set -e
	export DEBIAN_FRONTEND=noninteractive
	mkdir -p "$base"
	# The suites run under a subreaper that reaps orphans at once (see subreaper/main.go).
	[ -x "$base/subreaper" ] || (cd "$here/subreaper" && GOTOOLCHAIN=local go build -o "$base/subreaper" .)
	if [ -x "$src/contrib/cmd/recvtty/recvtty" ] && [ -x "$src/contrib/cmd/seccompagent/seccompagent" ] &&
		[ -e "$src/tests/integration/testdata/busybox-amd64.tar.xz" ] && [ -e "$src/tests/integration/testdata/debian-amd64.tar.xz" ] &&
		command -v bats >/dev/null && command -v jq >/dev/null; then
		return 0
	fi
	# apt-get source needs deb-src entries: the same mirrors as the binary packages.
	if ! apt-cache showsrc runc 2>/dev/null | grep -q '^Package: runc'; then
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >/etc/apt/sources.list.d/debian-src.sources
		apt-get update -qq >/dev/null
	fi
	apt-get install -y -qq --no-install-recommends bats jq gawk gcc libc6-dev make pkgconf libseccomp-dev \
		dpkg-dev busybox-static debootstrap xz-utils util-linux iproute2 >/dev/null
	mkdir -p "$base"
	[ -d "$src" ] || (cd "$base" && apt-get source -qq "runc=$version" >/dev/null)
	cd "$src"
	# Debian's source drops vendor/: vendor it again from the Go module proxy.
	export GOTOOLCHAIN=local GOFLAGS= GOPATH=$base/gopath GOCACHE=$base/gocache
	[ -d vendor ] || go mod vendor
	make recvtty seccompagent COMMIT= >/dev/null
	if [ ! -e tests/integration/testdata/busybox-amd64.tar.xz ] || [ ! -e tests/integration/testdata/debian-amd64.tar.xz ]; then
		"$here/make-test-images.sh" "$base/images"
		cp "$base/images/busybox-amd64.tar.xz" "$base/images/debian-amd64.tar.xz" tests/integration/testdata/
	fi
	echo "runc-compat: setup done in $src"
}

# The suite's cgroups all live under runc-cgroups-integration-test: thaw, kill and remove what a
# timed-out file left there.
cleanup_test_cgroups() {
	local d f p
	for d in /sys/fs/cgroup/*/runc-cgroups-integration-test /sys/fs/cgroup/runc-cgroups-integration-test; do
		[ -d "$d" ] || continue
		find "$d" -name freezer.state 2>/dev/null | while read -r f; do echo THAWED >"$f"; done
		find "$d" -name cgroup.freeze 2>/dev/null | while read -r f; do echo 0 >"$f"; done
		find "$d" -name cgroup.procs 2>/dev/null | while read -r f; do
			for p in $(cat "$f"); do kill -9 "$p" 2>/dev/null; done
		done
	done
	sleep 1
	for d in /sys/fs/cgroup/*/runc-cgroups-integration-test /sys/fs/cgroup/runc-cgroups-integration-test; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	return 0
}

freeze_watchdog() {
	declare -A since
	local f now
	while sleep 10; do
		now=$(date +%s)
		for f in $(find /sys/fs/cgroup/freezer/runc-cgroups-integration-test -name freezer.state 2>/dev/null) \
			$(find /sys/fs/cgroup/runc-cgroups-integration-test -name cgroup.freeze 2>/dev/null); do
			if grep -qxE 'FROZEN|1' "$f" 2>/dev/null; then
				: "${since[$f]:=$now}"
				if [ $((now - since[$f])) -gt 60 ]; then
					case $f in */freezer.state) echo THAWED >"$f" ;; *) echo 0 >"$f" ;; esac 2>/dev/null
					echo "watchdog: thawed ${f%/*} (frozen > 60s)" >&2
					unset "since[$f]"
				fi
			else
				unset "since[$f]"
			fi
		done
	done
}

run_suite() {
	local rt out
	rt=$(readlink -f "$1")
	out=$2
	shift 2
	[ -x "$rt" ] || { echo "runc-compat: runtime $rt is not executable" >&2; exit 2; }
	[ -x "$src/contrib/cmd/recvtty/recvtty" ] || [ -x "$src/tests/cmd/_bin/recvtty" ] || { echo "runc-compat: run '$0 setup' first" >&2; exit 2; }
	[ -x "$base/subreaper" ] || { echo "runc-compat: run '$0 setup' first (no subreaper)" >&2; exit 2; }
	mkdir -p "$out"
	out=$(readlink -f "$out")
	local files=("$@")
	[ ${#files[@]} -gt 0 ] || mapfile -t files < <(cd "$src/tests/integration" && ls ./*.bats | sed 's|^\./||')
	local tmp=$base/tmp
	mkdir -p "$tmp"
	: >"$out/summary.tsv"
	local f name s e rc wd pass fail skip
	for f in "${files[@]}"; do
		name=$(basename "$f" .bats)
		s=$(date +%s)
		freeze_watchdog 2>>"$out/watchdog.log" &
		wd=$!
		# RUNC_COMPAT_STDIN=endless: script's stdin never ends (runc 1.5's suite reads exact
		# output, and with /dev/null script puts ^@ before the first output now and then).
		local feeder= input=/dev/null
		if [ "${RUNC_COMPAT_STDIN:-}" = endless ]; then
			input=$tmp/stdin.fifo
			rm -f "$input" && mkfifo "$input"
			sleep infinity >"$input" &
			feeder=$!
		fi
		(cd "$src" && RUNC=$rt TMPDIR=$tmp timeout -k 20 "${RUNC_COMPAT_FILE_TIMEOUT:-600}" "$base/subreaper" \
			script -e -q -c "bats --tap tests/integration/$name.bats" /dev/null <"$input" >"$out/$name.raw" 2>&1)
		rc=$?
		[ -n "$feeder" ] && kill "$feeder" 2>/dev/null && wait "$feeder" 2>/dev/null
		e=$(date +%s)
		kill "$wd" 2>/dev/null
		wait "$wd" 2>/dev/null
		cleanup_test_cgroups
		if [ "$(stat -c %u:%g /dev/null)" != 0:0 ]; then
			echo "WARNING: $name left the host's /dev/null owned by $(stat -c %u:%g /dev/null); restored" | tee -a "$out/host-damage.log"
			chown 0:0 /dev/null
		fi
		tr -d '\r' <"$out/$name.raw" >"$out/$name.tap" && rm -f "$out/$name.raw"
		pass=$(grep -E '^ok [0-9]+' "$out/$name.tap" | grep -vc '# skip')
		skip=$(grep -cE '^ok [0-9]+ .*# skip' "$out/$name.tap")
		fail=$(grep -cE '^not ok [0-9]+' "$out/$name.tap")
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$pass" "$fail" "$skip" "$((e - s))" >>"$out/summary.tsv"
		printf '%-28s rc=%-3s pass=%-3s fail=%-3s skip=%-3s %ss\n' "$name" "$rc" "$pass" "$fail" "$skip" "$((e - s))"
	done
	# What a timed-out file left: its mounts first, then the run dirs (never rm across a mount).
	local m
	for m in $(awk -v t="$tmp/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	rm -rf --one-file-system "${tmp:?}"/bats-run-* 2>/dev/null
	return 0
}

# results OUTDIR: one line per test, "file<TAB>ok|fail|skip<TAB>name".
results() {
	local t
	for t in "$1"/*.tap; do
		awk -v f="$(basename "$t" .tap)" '
			/^ok [0-9]+ .*# skip/ { sub(/^ok [0-9]+ /, ""); sub(/ # skip.*/, ""); print f "\tskip\t" $0; next }
			/^ok [0-9]+ /          { sub(/^ok [0-9]+ /, ""); print f "\tok\t" $0; next }
			/^not ok [0-9]+ /      { sub(/^not ok [0-9]+ /, ""); sub(/ in [0-9]+ms$/, ""); print f "\tfail\t" $0 }' "$t"
	done
}

gate() {
	local out=$1 bad=0 key status npass=0 nfail=0
	declare -A got
	while IFS=$'\t' read -r file status name; do
		got["$file: $name"]=$status
	done < <(results "$out")
	declare -A except
	while IFS=$'\t' read -r key reason; do
		[ -n "$key" ] && [ "${key:0:1}" != "#" ] && except["$key"]=$reason
	done <"$here/exceptions.txt"
	echo "runc-compat: tests husk does not pass on purpose (exceptions.txt: naming, or runc 1.5's behaviour):"
	for key in "${!except[@]}"; do printf '  %s: %s\n' "$key" "${except[$key]}"; done
	# expected-pass.txt was recorded on one machine: a test that skips itself here for a reason
	# of this machine's (no BFQ scheduler, say) is asked of runc on this machine too, and is
	# accepted only when runc skips it as well.
	local -a skipped_files=()
	declare -A runc_got
	while IFS= read -r key; do
		[ -z "$key" ] || [ "${key:0:1}" = "#" ] && continue
		[ "${got[$key]:-}" = skip ] && skipped_files+=("${key%%: *}")
	done <"$here/expected-pass.txt"
	if [ ${#skipped_files[@]} -gt 0 ]; then
		mapfile -t skipped_files < <(printf '%s\n' "${skipped_files[@]}" | sort -u)
		echo "runc-compat: husk skipped tests runc passed where expected-pass.txt was recorded; asking runc on this machine (${skipped_files[*]})"
		rm -rf "$out/runc-same-machine"
		run_suite "${RUNC_SAME_MACHINE:-$(command -v runc)}" "$out/runc-same-machine" "${skipped_files[@]/%/.bats}" >/dev/null
		while IFS=$'\t' read -r file status name; do
			runc_got["$file: $name"]=$status
		done < <(results "$out/runc-same-machine")
	fi
	while IFS= read -r key; do
		[ -z "$key" ] || [ "${key:0:1}" = "#" ] && continue
		[ -n "${except[$key]:-}" ] && continue
		status=${got[$key]:-missing}
		if [ "$status" = skip ] && [ "${runc_got[$key]:-}" = skip ]; then
			echo "runc-compat: skipped for runc too on this machine (environment): $key"
			continue
		fi
		if [ "$status" != ok ]; then
			echo "runc-compat: runc passes, husk: $status: $key"
			bad=1
			nfail=$((nfail + 1))
		else
			npass=$((npass + 1))
		fi
	done <"$here/expected-pass.txt"
	# The whole suite, as runc's own runs count it (runc 1.1.5 here: 145 passed, 1 failed, 28
	# skipped), then last the gate: the tests runc passes, passed or failed by husk, and the
	# naming-only exceptions, counted as skipped.
	awk -F'\t' '{p+=$3; f+=$4; s+=$5} END {printf "runc-compat: suite totals %d passed, %d failed, %d skipped (runc 1.1.5 here: 145, 1, 28)\n", p, f, s}' "$out/summary.tsv"
	echo "runc-compat: $npass passed, $nfail failed, ${#except[@]} skipped"
	return $bad
}

case "${1:-}" in
setup) setup ;;
run)
	shift
	[ $# -ge 2 ] || { sed -n '2,24p' "$0"; exit 2; }
	run_suite "$@"
	;;
gate) gate "${2:?usage: $0 gate OUTDIR}" ;;
results) results "${2:?usage: $0 results OUTDIR}" ;;
*) sed -n '2,24p' "$0"; exit 2 ;;
esac
