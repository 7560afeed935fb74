#!/usr/bin/env bash
# Builds an upstream Go test suite into OUT, once per version: the package's test binary
# (go test -c), from a writable copy of the module's source out of the module proxy, and the
# module's helper commands the suite runs (EXTRA packages, go build, beside OUT).
#   build.sh MODULE VERSION PACKAGE OUT [EXTRA...]
#   e.g. build.sh sigs.k8s.io/cri-tools v1.37.0 ./cmd/critest dir/critest
set -euo pipefail
module=$1 version=$2 pkg=$3 out=$4
shift 4
if [ -x "$out" ] && [ "$(cat "$out.version" 2>/dev/null)" = "$module@$version" ]; then
  exit 0
fi
echo "building $(basename "$out") from $module@$version (go test -c $pkg)"
mkdir -p "$(dirname "$out")"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
# build/ has a go.mod of its own (install-deps): the download does not touch the project's.
mod=$(cd "$(dirname "$0")/../../build" && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
cp -r "$mod/." "$src"
chmod -R u+w "$src"
(cd "$src" && GOFLAGS=-mod=mod go test -c -o "$out" "$pkg")
for extra in "$@"; do
  (cd "$src" && GOFLAGS=-mod=mod go build -o "$(dirname "$out")/" "$extra")
done
echo "$module@$version" >"$out.version"
