#!/usr/bin/env bash
# Builds the kubelet of a Kubernetes release into OUT, once per version, from the module proxy:
# k8s.io/kubernetes is copied, its ./staging replaces (absent from the module) become requires of
# the published k8s.io modules of the same release, and ./cmd/kubelet is built with GOWORK=off.
#   build.sh VERSION OUT      e.g. build.sh v1.37.2 /var/cache/husk-ci/kubelet/kubelet
set -euo pipefail
version=$1 out=$2
stamp="kubelet $version (stripped, versioned)"
if [ -x "$out" ] && [ "$(cat "$out.version" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
echo "building kubelet $version (k8s.io/kubernetes@$version from the module proxy)"
mkdir -p "$(dirname "$out")"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
mod=$(cd "$(dirname "$0")/../../build" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
cp -r "$mod/." "$src"
chmod -R u+w "$src"
rm -rf "$src/vendor"
staging="v0.${version#v1.}"
cd "$src"
edits=()
for m in $(sed -n 's|^\t\(k8s.io/[^ ]*\) => ./staging/.*|\1|p' go.mod); do
  edits+=("-dropreplace=$m")
  if grep -q "^\s*$m v" go.mod; then
    edits+=("-require=$m@$staging")
  fi
done
go mod edit "${edits[@]}"
minor=${version#v1.}
minor=${minor%%.*}
GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$out" -ldflags "-s -w \
  -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" ./cmd/kubelet
echo "$stamp" >"$out.version"
