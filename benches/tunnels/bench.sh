#!/usr/bin/env bash
# The tunnel comparison of BENCHMARKS.md ("Against the tunnels users run today"): every mode of
# benches/tunnels/run.sh, SVR_BENCH_RUNS (3) times, interleaved (run 1 of every mode, then run
# 2, ...), raw outputs in one results directory; then the Tunnels section of BENCHMARKS.md is
# regenerated from it and the other sections are left as they are.
#
#   benches/tunnels/bench.sh          # as root; scripts/bench.sh --tunnels runs this
#
# Environment: SVR_BENCH_RUNS (3), SVR_BENCH_TUNNELS_OUT (default
# target/bench-results/tunnels-<UTC time>), SVR_BENCH_DOC (default BENCHMARKS.md),
# SVR_BENCH_TUNNEL_MODES (default "plain svrd strongswan wireguard-go openvpn").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${SVR_BENCH_RUNS:-3}
OUT=${SVR_BENCH_TUNNELS_OUT:-$ROOT/target/bench-results/tunnels-$(date -u +%Y%m%dT%H%M%SZ)}
DOC=${SVR_BENCH_DOC:-$ROOT/BENCHMARKS.md}
read -r -a MODES <<<"${SVR_BENCH_TUNNEL_MODES:-plain svrd strongswan wireguard-go openvpn}"
say() { printf '[bench:tunnels] %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "error: run as root (namespaces, TUN devices, hugepages)"; exit 1; }
mkdir -p "$OUT/logs"
START=$(date +%s)

"$ROOT/scripts/setup.sh" >&2 || { say "error: scripts/setup.sh failed"; exit 1; }

# svrd: build the working tree; if it does not build (someone mid-edit), use the existing
# release binary and say so. Either way the binary is copied, so a rebuild during the runs
# does not change what is measured.
SVRD_NOTE="release build of the working tree"
if ! (cd "$ROOT" && timeout 900 cargo build --release -p svrd) >"$OUT/build.log" 2>&1; then
  if [ -x "$ROOT/target/release/svrd" ]; then
    SVRD_NOTE="existing target/release/svrd built $(date -u -r "$ROOT/target/release/svrd" '+%Y-%m-%d %H:%M UTC') (the working tree did not build, see build.log)"
  else
    SVRD_NOTE="none: the working tree does not build (see build.log)"
  fi
  say "warning: cargo build --release -p svrd failed; svrd: $SVRD_NOTE"
fi
[ -x "$ROOT/target/release/svrd" ] && cp "$ROOT/target/release/svrd" "$OUT/svrd"

# Can this kernel do ESP (an xfrm state with our algorithms) and WireGuard (a wireguard link)?
# Probed in a scratch namespace.
probe_esp() {
  local k a
  k=0x$(printf '%064d' 0) a=0x$(printf '%096d' 0)
  ip netns add bt-probe 2>/dev/null || true
  if ip netns exec bt-probe ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 \
      mode tunnel enc 'cbc(aes)' "$k" auth-trunc 'hmac(sha384)' "$a" 192 2>/dev/null; then
    echo yes
  else
    echo no
  fi
  ip netns del bt-probe 2>/dev/null || true
}
probe_wg() {
  ip netns add bt-probe 2>/dev/null || true
  if ip netns exec bt-probe ip link add bt-wg type wireguard 2>/dev/null; then echo yes; else echo no; fi
  ip netns del bt-probe 2>/dev/null || true
}
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  echo "cpus=$(nproc)"
  echo "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -1)"
  echo "kernel=$(uname -r)"
  echo "kernel_esp=$(probe_esp)"
  echo "kernel_wireguard=$(probe_wg)"
  echo "commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  echo "dirty_files=$(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l)"
  echo "svrd_build=$SVRD_NOTE"
  echo "runs=$RUNS"
  echo "modes=${MODES[*]}"
  echo "strongswan=$(ver strongswan-charon)"
  echo "wireguard_go=$(ver wireguard-go)"
  echo "openvpn=$(ver openvpn)"
  echo "iperf3=$(ver iperf3)"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"

# The exact commands behind every figure (run.sh runs them; the gateway set-up per mode is in
# run.sh and its config templates).
DUR=${BT_DURATION:-5}
{
  echo "run=benches/tunnels/run.sh <mode>   # builds bt-host-a, bt-gw-a, bt-gw-b, bt-host-b; tears down"
  echo "ping=ip netns exec bt-host-a ping -c 20 -i 0.1 -q 10.2.0.2"
  echo "server=ip netns exec bt-host-b iperf3 -s -p 5201"
  echo "tcp=ip netns exec bt-host-a iperf3 -c 10.2.0.2 -p 5201 -t $DUR -J"
  echo "udp64=ip netns exec bt-host-a iperf3 -c 10.2.0.2 -p 5201 -t $DUR -J -u -l 64 -b 0"
  echo "udp1400=ip netns exec bt-host-a iperf3 -c 10.2.0.2 -p 5201 -t $DUR -J -u -l 1400 -b 0"
} >"$OUT/commands.txt"

for r in $(seq 1 "$RUNS"); do
  for m in "${MODES[@]}"; do
    say "run $r/$RUNS: $m"
    f="$OUT/tunnels.$m.$r.txt"
    rc=0
    SVRD="$OUT/svrd" BT_LOGDIR="$OUT/logs/$m.$r" timeout -k 10 180 "$HERE/run.sh" "$m" \
      >"$f" 2>"$OUT/logs/$m.$r.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
      why=$(grep -E '^\[tunnels:[^]]*\] error:' "$OUT/logs/$m.$r.err" | tail -1 | sed 's/^\[tunnels:[^]]*\] error: //')
      [ "$rc" -eq 124 ] && why="timed out after 180 s"
      echo "tunnel mode=$m metric=failed rc=$rc reason=${why:-exit $rc, see logs/$m.$r.err}" | tr -s ' ' >>"$f"
      say "warning: $m run $r failed: ${why:-exit $rc}"
    fi
  done
done
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
echo "elapsed_s=$(( $(date +%s) - START ))" >>"$OUT/machine.txt"
rm -f "$OUT/svrd"

python3 "$ROOT/benches/report.py" --splice-tunnels "$OUT" "$DOC" >"$DOC.tmp"
mv "$DOC.tmp" "$DOC"
say "wrote the Tunnels section of ${DOC#"$ROOT"/} from ${OUT#"$ROOT"/} in $(( $(date +%s) - START )) s"
