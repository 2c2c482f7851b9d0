#!/usr/bin/env bash
# install-kube.sh: build the Kubernetes control plane the Kubernetes end-to-end
# tests run against (tests/k8s), from the Go module proxy only. Called by
# install-tools.sh; idempotent and cached by version:
#
#   bin/kube-<K8S_VERSION>/kube-apiserver   from k8s.io/kubernetes, pinned in
#                                           tools/kube (every staging module
#                                           replaced by its published release)
#   bin/kube-<K8S_VERSION>/etcd             from go.etcd.io/etcd/server/v3,
#                                           pinned in tools/etcd
#
# The directory is what envtest's KUBEBUILDER_ASSETS points at. The first build
# takes about 9 minutes on 2 cores; afterwards this script returns at once.
# Environment: FORCE=1 rebuilds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
OUT="$ROOT/bin/kube-$K8S_VERSION"

say() { printf 'install-kube: %s\n' "$*"; }
die() {
	printf 'install-kube: ERROR: %s\n' "$*" >&2
	exit 1
}

command -v go >/dev/null 2>&1 || die "go not found on PATH: install Go (https://go.dev/dl/)"
grep -q "k8s.io/kubernetes $K8S_VERSION" tools/kube/go.mod ||
	die "tools/kube/go.mod does not require k8s.io/kubernetes $K8S_VERSION: update K8S_VERSION in $0 together with it"
grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" tools/etcd/go.mod ||
	die "tools/etcd/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION: update ETCD_VERSION in $0 together with it"
mkdir -p "$OUT"

build() { # name module-dir package ldflags
	local name=$1 dir=$2 pkg=$3 ldflags=$4
	if [[ -x "$OUT/$name" && -z "${FORCE:-}" ]]; then
		say "$name: $OUT/$name present (cached)"
		return
	fi
	say "$name: building into $OUT/$name (several minutes the first time)"
	local tmp="$OUT/$name.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg") ||
		die "building $name failed (see above)"
	mv -f "$tmp" "$OUT/$name"
	trap - EXIT
}

V=k8s.io/component-base/version
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
build etcd tools/etcd go.etcd.io/etcd/server/v3 "-s -w"
build kube-apiserver tools/kube k8s.io/kubernetes/cmd/kube-apiserver \
	"-s -w -X $V.gitVersion=$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$MINOR"
say "$("$OUT/kube-apiserver" --version), $("$OUT/etcd" --version | head -n1)"
