#!/bin/bash
# runc 1.5.3's own integration suite (tests/integration of the Go module, with the helpers of
# tests/cmd) against husk and against runc 1.5.3 built from the same module on this machine,
# file by file, runtimes interleaved; the gate fails when a test runc passes here fails or
# skips for husk, less runc15-exceptions.txt (naming only, each with its reason).
#
#   runc15.sh setup            module source, runc 1.5.3 and the helpers into $RUNC15_DIR
#   runc15.sh run HUSK OUTDIR  both runtimes: OUTDIR/husk and OUTDIR/runc, a TAP file per file
#   runc15.sh gate OUTDIR      compare
#
# env: RUNC15_DIR (default build/runc15); RUNC_COMPAT_DIR: the 1.1.5 setup, whose test images
# (busybox and Debian, built locally) this suite takes too.
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
base=$(readlink -f "${RUNC15_DIR:-build/runc15}")
version=v1.5.3
src=$base/runc-${version#v}
compat=$(readlink -f "${RUNC_COMPAT_DIR:-build/runc-bats}")

setup() {
	set -e
	if [ -x "$src/runc" ] && [ -x "$src/tests/cmd/_bin/recvtty" ] && [ -x "$src/tests/integration/get-images.sh" ] && [ -e "$src/tests/integration/testdata/debian-amd64.tar.xz" ]; then
		return 0
	fi
	"$here/runc-compat.sh" setup >/dev/null # bats, jq, libseccomp and the images
	mkdir -p "$base"
	export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPATH=$base/gopath GOCACHE=$base/gocache
	mod=$(go mod download -json "github.com/opencontainers/runc@$version" | awk -F'"' '/"Dir"/ {print $4}')
	rm -rf "$src" && cp -r "$mod" "$src" && chmod -R u+w "$src"
	# Module zips keep no exec bits: the suite runs its scripts.
	find "$src" -name '*.sh' -exec chmod +x {} +
	cd "$src"
	go build -trimpath -tags seccomp -o runc .
	mkdir -p tests/cmd/_bin
	for d in tests/cmd/*/; do
		n=$(basename "$d")
		[ "$n" = _bin ] || go build -o "tests/cmd/_bin/$n" "./tests/cmd/$n"
	done
	cp "$compat"/images/busybox-amd64.tar.xz "$compat"/images/debian-amd64.tar.xz tests/integration/testdata/
	echo "runc15: setup done in $src ($(./runc --version | head -1))"
}

run() {
	local husk out f name
	husk=$(readlink -f "$1")
	out=$2
	mkdir -p "$out/husk" "$out/runc"
	for f in $(cd "$src/tests/integration" && ls ./*.bats | sed 's|^\./||'); do
		name=$(basename "$f" .bats)
		RUNC_COMPAT_STDIN=endless RUNC_SUITE_SRC=$src RUNC_COMPAT_DIR=$compat "$here/runc-compat.sh" run "$src/runc" "$out/runc.tmp" "$name.bats" | sed 's/^/runc  /'
		RUNC_COMPAT_STDIN=endless RUNC_SUITE_SRC=$src RUNC_COMPAT_DIR=$compat "$here/runc-compat.sh" run "$husk" "$out/husk.tmp" "$name.bats" | sed 's/^/husk  /'
		mv "$out/runc.tmp/$name.tap" "$out/runc/" 2>/dev/null
		mv "$out/husk.tmp/$name.tap" "$out/husk/" 2>/dev/null
		cat "$out/runc.tmp/summary.tsv" >>"$out/runc/summary.tsv"
		cat "$out/husk.tmp/summary.tsv" >>"$out/husk/summary.tsv"
	done
	rm -rf "$out/runc.tmp" "$out/husk.tmp"
}

# results DIR: "file<TAB>ok|fail|skip<TAB>name" per test, as the 1.1.5 gate reads them.
results() { "$here/runc-compat.sh" results "$1"; }

gate() {
	local out=$1 key status bad=0 npass=0 nfail=0
	declare -A husk runcs except
	while IFS=$'\t' read -r f status name; do husk["$f: $name"]=$status; done < <(results "$out/husk")
	while IFS=$'\t' read -r f status name; do runcs["$f: $name"]=$status; done < <(results "$out/runc")
	while IFS=$'\t' read -r key reason; do
		[ -n "$key" ] && [ "${key:0:1}" != "#" ] && except["$key"]=$reason
	done <"$here/runc15-exceptions.txt"
	for key in "${!runcs[@]}"; do
		[ "${runcs[$key]}" = ok ] || continue
		[ -n "${except[$key]:-}" ] && continue
		if [ "${husk[$key]:-missing}" = ok ]; then
			npass=$((npass + 1))
		else
			echo "runc15: runc 1.5.3 passes, husk: ${husk[$key]:-missing}: $key"
			nfail=$((nfail + 1))
			bad=1
		fi
	done | sort
	for rt in runc husk; do
		awk -F'\t' -v rt="$rt" '{p+=$3; f+=$4; s+=$5} END {printf "runc15: %s suite totals %d passed, %d failed, %d skipped\n", rt, p, f, s}' "$out/$rt/summary.tsv"
	done
	# The gate's own line: tests runc 1.5.3 passes here, passed or not by husk.
	local n_ok n_bad
	n_ok=0 n_bad=0
	for key in "${!runcs[@]}"; do
		[ "${runcs[$key]}" = ok ] && [ -z "${except[$key]:-}" ] || continue
		if [ "${husk[$key]:-}" = ok ]; then n_ok=$((n_ok + 1)); else n_bad=$((n_bad + 1)); fi
	done
	echo "runc15: $n_ok passed, $n_bad failed, ${#except[@]} skipped"
	[ "$n_bad" -eq 0 ]
}

case "${1:-}" in
setup) setup ;;
run) shift; run "$@" ;;
gate) shift; gate "$@" ;;
*) echo "usage: $0 setup | run HUSK OUTDIR | gate OUTDIR" >&2; exit 2 ;;
esac
