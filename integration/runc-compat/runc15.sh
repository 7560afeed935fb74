#!/bin/bash
# runc 1.5.3's own integration suite (tests/integration of the Go module, with the helpers of
# tests/cmd) against husk and against runc 1.5.3 built from the same module on this machine,
# file by file; the gate fails when a test runc passes here fails or skips for husk, less
# runc15-exceptions.txt (naming only, each with its reason).
#
#   runc15.sh setup            module source, runc 1.5.3 and the helpers into $RUNC15_DIR
#   runc15.sh run HUSK OUTDIR  husk over every file (OUTDIR/husk), runc where husk did not pass
#                              (OUTDIR/runc; every file with RUNC15_FULL=1), husk again where
#                              runc passed what it failed (OUTDIR/husk-retry); a TAP file per file
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

# onefile RUNTIME OUTDIR FILE: one .bats file for one runtime into OUTDIR/<name>.tap, with
# the file's line appended to OUTDIR/summary.tsv.
onefile() {
	local rt=$1 out=$2 f=$3 name tmp
	name=$(basename "$f" .bats)
	tmp=$out.tmp
	mkdir -p "$out"
	RUNC_COMPAT_STDIN=endless RUNC_SUITE_SRC=$src RUNC_COMPAT_DIR=$compat "$here/runc-compat.sh" run "$rt" "$tmp" "$name.bats"
	mv "$tmp/$name.tap" "$out/" 2>/dev/null
	cat "$tmp/summary.tsv" >>"$out/summary.tsv" 2>/dev/null
	rm -rf "$tmp"
}

# files_needing_runc OUTDIR: the files in which husk did not pass a test that is not a naming
# exception; only there does runc's answer on this machine matter.
files_needing_runc() {
	local out=$1
	declare -A except
	while IFS=$'\t' read -r key reason; do
		[ -n "$key" ] && [ "${key:0:1}" != "#" ] && except["$key"]=1
	done <"$here/runc15-exceptions.txt"
	results "$out/husk" | while IFS=$'\t' read -r f status name; do
		[ "$status" = ok ] || [ -n "${except["$f: $name"]:-}" ] || echo "$f"
	done | sort -u
}

# run HUSK OUTDIR: husk over every file; runc 1.5.3 over the files where husk did not pass
# everything (RUNC15_FULL=1: over every file, interleaved, for the totals side by side); then
# husk once more over the files where runc passes a test husk failed: a few of the suite's
# tests race this machine's pid 1, which reaps the orphans they count in the 2 s they allow
# (runc fails them too, now and then). The gate names every test that passed only then.
run() {
	local husk out f
	husk=$(readlink -f "$1")
	out=$2
	mkdir -p "$out"
	local files
	files=$(cd "$src/tests/integration" && ls ./*.bats | sed 's|^\./||')
	for f in $files; do
		[ -n "${RUNC15_FULL:-}" ] && onefile "$src/runc" "$out/runc" "$f" | sed 's/^/runc  /'
		onefile "$husk" "$out/husk" "$f" | sed 's/^/husk  /'
	done
	if [ -z "${RUNC15_FULL:-}" ]; then
		for f in $(files_needing_runc "$out"); do
			onefile "$src/runc" "$out/runc" "$f.bats" | sed 's/^/runc  /'
		done
	fi
	for f in $(gate_failures "$out" | cut -d: -f1 | sort -u); do
		onefile "$husk" "$out/husk-retry" "$f.bats" | sed 's/^/husk (again)  /'
	done
}

# gate_failures OUTDIR: "file: test" for each test runc 1.5.3 passes here and husk did not
# (first run), less the naming exceptions.
gate_failures() {
	local out=$1 key status
	declare -A husk runcs except
	while IFS=$'\t' read -r f status name; do husk["$f: $name"]=$status; done < <(results "$out/husk")
	while IFS=$'\t' read -r f status name; do runcs["$f: $name"]=$status; done < <(results "$out/runc")
	while IFS=$'\t' read -r key reason; do
		[ -n "$key" ] && [ "${key:0:1}" != "#" ] && except["$key"]=1
	done <"$here/runc15-exceptions.txt"
	for key in "${!runcs[@]}"; do
		[ "${runcs[$key]}" = ok ] && [ -z "${except[$key]:-}" ] && [ "${husk[$key]:-missing}" != ok ] && echo "$key"
	done | sort
}

# results DIR: "file<TAB>ok|fail|skip<TAB>name" per test, as the 1.1.5 gate reads them.
results() { [ -d "$1" ] && "$here/runc-compat.sh" results "$1"; }

gate() {
	local out=$1 key status n_bad=0 n_retry=0
	declare -A retry
	while IFS=$'\t' read -r f status name; do retry["$f: $name"]=$status; done < <(results "$out/husk-retry")
	while read -r key; do
		[ -n "$key" ] || continue
		if [ "${retry[$key]:-}" = ok ]; then
			echo "runc15: husk failed, then passed on its second run (a timing test): $key"
			n_retry=$((n_retry + 1))
		else
			echo "runc15: runc 1.5.3 passes, husk does not: $key"
			n_bad=$((n_bad + 1))
		fi
	done < <(gate_failures "$out")
	for rt in runc husk; do
		[ -s "$out/$rt/summary.tsv" ] || continue
		awk -F'\t' -v rt="$rt" '{p+=$3; f+=$4; s+=$5; n++} END {printf "runc15: %s suite totals %d passed, %d failed, %d skipped (%d files)\n", rt, p, f, s, n}' "$out/$rt/summary.tsv"
	done
	local n_husk_ok n_except
	n_husk_ok=$(results "$out/husk" | awk -F'\t' '$2 == "ok"' | wc -l)
	n_except=$(grep -vc '^#' "$here/runc15-exceptions.txt")
	echo "runc15: husk passes $n_husk_ok tests; of the tests runc 1.5.3 passes here, husk fails $n_bad ($n_retry passed on a second run); $n_except naming exceptions"
	[ "$n_bad" -eq 0 ]
}

case "${1:-}" in
setup) setup ;;
run) shift; run "$@" ;;
gate) shift; gate "$@" ;;
*) echo "usage: $0 setup | run HUSK OUTDIR | gate OUTDIR" >&2; exit 2 ;;
esac
