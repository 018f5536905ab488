#!/usr/bin/env bash
# Builds the local cluster's control plane from pinned upstream Go modules:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl.
# Binaries are cached per version under $PALISADE_CACHE (default
# ~/.cache/palisade) and rebuilt only when a pinned version changes. Never
# downloads a prebuilt binary. Prints the binary folder on stdout, progress
# on stderr.
set -euo pipefail

KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.5}
cache=${PALISADE_CACHE:-$HOME/.cache/palisade}
out="$cache/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
log() { printf 'build-control-plane: %s\n' "$*" >&2; }

binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)
complete() {
  local b
  for b in "${binaries[@]}"; do [[ -x "$out/$b" ]] || return 1; done
}
if complete; then echo "$out"; exit 0; fi

command -v go >/dev/null || { log "Go is required (https://go.dev is not reachable here: use the machine's Go)"; exit 1; }
mkdir -p "$out"
# One build at a time (two test suites may ask at once); whoever waited finds
# the binaries the other built.
exec 9>"$cache/build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
if complete; then echo "$out"; exit 0; fi
work="$cache/build/k8s-$KUBERNETES_VERSION"
mkdir -p "$work"
cd "$work"

# k8s.io/kubernetes points its staging modules (k8s.io/api, k8s.io/client-go,
# ...) at local paths; a module requiring it must point each at its published
# v0.X.Y instead.
staging_version="v0${KUBERNETES_VERSION#v1}"
log "resolving k8s.io/kubernetes@$KUBERNETES_VERSION (staging modules at $staging_version)"
gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
{
  echo "module palisade.dev/control-plane-build"
  echo
  echo "go 1.24.0"
  echo
  echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
  echo
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => \./staging/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
log "downloading modules"
GOFLAGS=-mod=mod go mod tidy >&2
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  log "building $cmd (a cold build takes several minutes and a few GB of memory)"
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION" -o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" >&2
  mv "$out/$cmd.tmp" "$out/$cmd"
done

etcd_work="$cache/build/etcd-$ETCD_VERSION"
mkdir -p "$etcd_work"
cd "$etcd_work"
cat > go.mod <<GOMOD
module palisade.dev/etcd-build

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
log "building etcd $ETCD_VERSION"
GOFLAGS=-mod=mod go mod tidy >&2
go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
mv "$out/etcd.tmp" "$out/etcd"
log "control plane binaries ready in $out"
echo "$out"
