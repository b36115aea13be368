#!/usr/bin/env bash
# Installs everything svr-fastpath needs on a fresh Debian 12 / Ubuntu 22.04+ machine (root):
# DPDK 22.11+ and bindgen's clang, the testbed tools, hugepages, and the Rust components.
# Safe to run any number of times.
set -euo pipefail

say() { printf '[setup] %s\n' "$*"; }
need_root() { [ "$(id -u)" -eq 0 ] || { echo "[setup] error: run as root (DPDK needs hugepages and raw sockets)" >&2; exit 1; }; }
need_root

PKGS=(dpdk dpdk-dev libdpdk-dev clang libclang-dev pkg-config build-essential
      iproute2 iputils-ping iperf3 ethtool nftables tcpdump python3 python3-cryptography openssl procps
      tshark curl prometheus  # prometheus: promtool and a server scraping /metrics
      protobuf-compiler libprotobuf-dev  # protoc and its well-known types: the etcd-client crate's build
      etcd-server etcd-client)  # the conductor's etcd store test (testbed/conductor-etcd-test.sh): etcd, etcdctl
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
v=$(pkg-config --modversion libdpdk)
case "$v" in
  2[2-9].*|[3-9][0-9].*) say "DPDK $v" ;;
  *) echo "[setup] error: DPDK $v is older than 22.11" >&2; exit 1 ;;
esac

# Hugepages: 2 MiB pages, enough for two routers (128 MiB each) and the generator.
want=${SVR_HUGEPAGES:-384}
have=$(cat /proc/sys/vm/nr_hugepages)
if [ "$have" -lt "$want" ]; then
  echo "$want" > /proc/sys/vm/nr_hugepages || true
  have=$(cat /proc/sys/vm/nr_hugepages)
  [ "$have" -ge "$want" ] || say "warning: only $have of $want hugepages could be reserved"
fi
mkdir -p /dev/hugepages
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
say "hugepages: $(cat /proc/sys/vm/nr_hugepages) x 2 MiB on /dev/hugepages"

# Rust: the stable toolchain with rustfmt and clippy.
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || { say "installing rustup"; curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal; }
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || say "warning: could not add rustfmt/clippy"
fi
say "$(cargo --version)"
