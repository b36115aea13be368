#!/usr/bin/env bash
# Runs the svr-fastpath benchmarks and their references, each SVR_BENCH_RUNS (3) times, and
# rewrites BENCHMARKS.md from that run only (median [min-max] of the runs, the machine, date,
# commit and the exact command of every figure).
#
#   scripts/bench.sh            # as root: also runs scripts/setup.sh (DPDK, hugepages)
#   scripts/bench.sh --tunnels  # only the comparison with strongSwan, wireguard-go and OpenVPN
#                               # on a private four-namespace testbed (benches/tunnels/bench.sh):
#                               # regenerates the Tunnels section of BENCHMARKS.md, keeps the rest
#   scripts/bench.sh --dut      # everything above, plus the device-under-test benchmark
#                               # (benches/dut/run.sh: svr-pktgen -> svrd -> svr-pktgen over memif,
#                               # both directions, beside testpmd io-forward; about 5 minutes)
#   scripts/bench.sh --all      # every benchmark: --tunnels, then the rest with --dut
#                               # (about 20 minutes; rewrites every section of BENCHMARKS.md)
#
# Environment:
#   SVR_BENCH_RUNS=3       repetitions of every benchmark (interleaved: ours, then reference)
#   SVR_BENCH_CPU=1        the CPU the measured thread is pinned to
#   SVR_BENCH_MAX=10M      largest flow-table size (lowered to 1M if < 6 GiB RAM is available)
#   SVR_BENCH_OUT=dir      where raw outputs go (default target/bench-results/<UTC time>)
#   SVR_BENCH_DOC=path     the report to write (default BENCHMARKS.md at the repository root)
#
# Raw outputs, the commands and the profiles stay in $SVR_BENCH_OUT; BENCHMARKS.md is generated
# by benches/report.py from them. If the working tree does not compile (another crate mid-edit),
# the benchmarks are built from a `git archive HEAD` snapshot with this tree's benches/ on top,
# and the report says so.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${SVR_BENCH_RUNS:-3}
CPU=${SVR_BENCH_CPU:-1}
MAX=${SVR_BENCH_MAX:-10M}
OUT=${SVR_BENCH_OUT:-$ROOT/target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
DOC=${SVR_BENCH_DOC:-$ROOT/BENCHMARKS.md}
SIZES=64,128,256,512,1024,1408
say() { printf '[bench] %s\n' "$*" >&2; }

# --tunnels: the tunnel comparison (its own results directory, target/bench-results/tunnels-*;
# a full run keeps the latest one's section). Any other arguments stay for what follows.
TUNNELS=0
DUT=0
ARGS=()
for a in "$@"; do
  case "$a" in --tunnels) TUNNELS=1 ;; --dut) DUT=1 ;; --all) TUNNELS=1; DUT=1 ;; *) ARGS+=("$a") ;; esac
done
set -- ${ARGS[@]+"${ARGS[@]}"}
if [ "$TUNNELS" = 1 ]; then
  SVR_BENCH_RUNS=$RUNS SVR_BENCH_DOC=$DOC "$ROOT/benches/tunnels/bench.sh"
  [ "$#" -eq 0 ] && [ "$DUT" = 0 ] && exit 0
fi

mkdir -p "$OUT"
START=$(date +%s)

# ---- 1. what we need --------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
  "$ROOT/scripts/setup.sh" >&2
  if ! command -v valgrind >/dev/null 2>&1; then
    say "installing valgrind (instruction profiles)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null || true
  fi
else
  say "not root: skipping scripts/setup.sh (DPDK and hugepages must already be there)"
fi
for t in dpdk-test-crypto-perf pkg-config cc taskset python3 cargo; do
  command -v "$t" >/dev/null 2>&1 || { say "error: $t not found"; exit 1; }
done
avail_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
if [ "$avail_kb" -lt $((6 * 1024 * 1024)) ] && [ "$MAX" = 10M ]; then
  say "only $((avail_kb / 1024)) MiB available: flow table up to 1M sessions"
  MAX=1M
fi

# ---- 2. build ---------------------------------------------------------------------------
BUILD_NOTE="working tree"
cd "$ROOT"
if cargo build --release -p svr-benches >"$OUT/build.log" 2>&1; then
  BIN="$ROOT/target/release"
else
  say "the working tree does not build (see $OUT/build.log); building from a HEAD snapshot"
  SNAP="$OUT/src"
  rm -rf "$SNAP" && mkdir -p "$SNAP"
  git -C "$ROOT" archive HEAD | tar -x -C "$SNAP"
  rm -rf "$SNAP/benches"
  cp -r "$ROOT/benches" "$SNAP/benches"
  cp "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" "$SNAP/"
  (cd "$SNAP" && CARGO_TARGET_DIR="$ROOT/target/bench-snapshot" \
      cargo build --release -p svr-benches) >>"$OUT/build.log" 2>&1 \
    || { say "error: snapshot build failed too, see $OUT/build.log"; exit 1; }
  BIN="$ROOT/target/bench-snapshot/release"
  BUILD_NOTE="HEAD snapshot + working-tree benches/ (the working tree did not compile)"
fi
RTE_HASH_CMD_BUILD="cc -O3 -march=native -o $OUT/rte_hash_bench benches/c/rte_hash_bench.c \$(pkg-config --cflags --libs libdpdk)"
if cc -O3 -march=native -o "$OUT/rte_hash_bench" "$ROOT/benches/c/rte_hash_bench.c" \
    $(pkg-config --cflags --libs libdpdk) >>"$OUT/build.log" 2>&1; then
  HAVE_RTE_HASH=1
else
  say "warning: rte_hash reference did not build; it will be reported as not measured"
  HAVE_RTE_HASH=0
fi

# ---- 3. the machine ---------------------------------------------------------------------
dirty=$(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l)
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  echo "cpus=$(nproc)"
  echo "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -1)"
  echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "dpdk=$(pkg-config --modversion libdpdk)"
  echo "rustc=$(rustc --version)"
  echo "cc=$(cc --version | head -1)"
  echo "commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  echo "dirty_files=$dirty"
  echo "build=$BUILD_NOTE"
  echo "thp=$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
  echo "hugepages=$(cat /proc/sys/vm/nr_hugepages) x 2 MiB"
  echo "runs=$RUNS"
  echo "cpu=$CPU"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "flow_max=$MAX"
} >"$OUT/machine.txt"

# ---- 4. the runs ------------------------------------------------------------------------
# Every command is recorded verbatim (with the binary path relative to the repository).
rel() { echo "${1#"$ROOT"/}"; }
CMD_CRYPTO="taskset -c $CPU $(rel "$BIN")/crypto --cpu $CPU --sizes $SIZES --packets 200K"
CMD_DPDK="dpdk-test-crypto-perf --no-huge --no-pci -m 512 -l 0,$CPU --vdev crypto_aesni_mb --log-level=error -- --ptest throughput --devtype crypto_aesni_mb --optype cipher-then-auth --cipher-algo aes-cbc --cipher-op encrypt --cipher-key-sz 32 --cipher-iv-sz 16 --auth-algo sha2-384-hmac --auth-op generate --auth-key-sz 48 --digest-sz 24 --buffer-sz $SIZES --burst-sz 32 --total-ops 1000000"
CMD_FLOW="taskset -c $CPU $(rel "$BIN")/flowtable --cpu $CPU --sizes 1K,100K,1M,10M --max $MAX --lookups 8M"
CMD_RTE="taskset -c $CPU $(rel "$OUT")/rte_hash_bench --no-huge --no-pci -m 4096 -l $CPU --log-level=error -- <sessions> 8000000"
CMD_SETUP="taskset -c $CPU $(rel "$BIN")/session_setup --cpu $CPU --sessions 200K --payload 100"
CMD_GROWTH="taskset -c $CPU $(rel "$BIN")/growth --cpu $CPU --peers 1,100,1000 --sim-secs 60 --sessions 1K,100K,1M,10M --max $MAX --packets 2M"
{
  echo "crypto=$CMD_CRYPTO"
  echo "dpdk_crypto=$CMD_DPDK"
  echo "flowtable=$CMD_FLOW"
  echo "rte_hash=$CMD_RTE"
  echo "rte_hash_build=$RTE_HASH_CMD_BUILD"
  echo "session_setup=$CMD_SETUP"
  echo "growth=$CMD_GROWTH"
} >"$OUT/commands.txt"

flow_sizes=(1000 100000 1000000 10000000)
maxn=$(python3 -c "import sys; s=sys.argv[1]; m={'K':10**3,'M':10**6}; print(int(s[:-1])*m[s[-1].upper()] if s[-1].upper() in m else int(s))" "$MAX")

for r in $(seq 1 "$RUNS"); do
  say "run $r/$RUNS: crypto"
  (cd "$ROOT" && eval "$CMD_CRYPTO") >"$OUT/crypto.$r.txt"
  say "run $r/$RUNS: dpdk-test-crypto-perf (crypto_aesni_mb)"
  (cd /tmp && eval "$CMD_DPDK") >"$OUT/dpdk_crypto.$r.txt" 2>&1 || say "warning: crypto-perf failed (run $r)"
  say "run $r/$RUNS: flow table"
  (cd "$ROOT" && eval "$CMD_FLOW") >"$OUT/flowtable.$r.txt"
  if [ "$HAVE_RTE_HASH" = 1 ]; then
    : >"$OUT/rte_hash.$r.txt"
    for n in "${flow_sizes[@]}"; do
      [ "$n" -le "$maxn" ] || continue
      say "run $r/$RUNS: rte_hash $n"
      (cd "$ROOT" && eval "${CMD_RTE/<sessions>/$n}") >>"$OUT/rte_hash.$r.txt" 2>>"$OUT/rte_hash.$r.err" \
        || say "warning: rte_hash $n failed (run $r)"
    done
  fi
  say "run $r/$RUNS: session setup"
  (cd "$ROOT" && eval "$CMD_SETUP") >"$OUT/session_setup.$r.txt"
  say "run $r/$RUNS: cost growth (slow path vs peers, data path vs sessions)"
  (cd "$ROOT" && eval "$CMD_GROWTH") >"$OUT/growth.$r.txt" || say "warning: growth failed (run $r)"
done
# ---- 4b. the device under test (--dut) -----------------------------------------------------
# Always built from the working tree (svrd and the generator); if that does not compile, the
# DUT section keeps the latest earlier results and says so.
if [ "$DUT" = 1 ]; then
  say "device under test: building svrd and svr-pktgen (release)"
  if cargo build --release -p svrd -p svr-pktgen >>"$OUT/build.log" 2>&1; then
    SVR_DUT_BIN="$ROOT/target/release" "$ROOT/benches/dut/run.sh" "$OUT" "$RUNS" \
      || say "warning: the DUT benchmark failed (see $OUT/dut)"
  else
    say "warning: svrd or svr-pktgen does not build from the working tree; DUT not measured"
  fi
fi
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

# ---- 5. profiles ------------------------------------------------------------------------
# Hardware counters first; in a VM without a virtual PMU they are "not supported", and we
# fall back to valgrind's instruction counts (callgrind) on small runs.
if perf stat -e instructions -x, true 2>"$OUT/perf_probe.txt" >/dev/null \
    && ! grep -q "not supported" "$OUT/perf_probe.txt"; then
  echo "perf=available" >>"$OUT/machine.txt"
  perf stat -e cycles,instructions,L1-dcache-load-misses,dTLB-load-misses -x, \
    -o "$OUT/perf_flowtable.txt" "$BIN/flowtable" --cpu "$CPU" --sizes 1M --lookups 8M >/dev/null || true
else
  echo "perf=$(grep -q 'not supported' "$OUT/perf_probe.txt" && echo 'not supported in this VM' || echo 'failed')" >>"$OUT/machine.txt"
fi
if command -v valgrind >/dev/null 2>&1; then
  say "profiles: callgrind (crypto 1408 B, session setup)"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.crypto" \
    "$BIN/crypto" --cpu "$CPU" --sizes 1408 --packets 3200 --warmup 320 >/dev/null 2>&1 || true
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.setup" \
    "$BIN/session_setup" --cpu "$CPU" --sessions 5000 >/dev/null 2>&1 || true
  for p in crypto setup; do
    [ -s "$OUT/callgrind.$p" ] && callgrind_annotate --inclusive=no "$OUT/callgrind.$p" \
      >"$OUT/callgrind.$p.txt" 2>/dev/null || true
  done
  {
    echo "profile_crypto=valgrind --tool=callgrind $(rel "$BIN")/crypto --sizes 1408 --packets 3200 --warmup 320; callgrind_annotate --inclusive=no"
    echo "profile_setup=valgrind --tool=callgrind $(rel "$BIN")/session_setup --sessions 5000; callgrind_annotate --inclusive=no"
  } >>"$OUT/commands.txt"
fi

echo "elapsed_s=$(( $(date +%s) - START ))" >>"$OUT/machine.txt"

# ---- 6. the report ----------------------------------------------------------------------
python3 "$ROOT/benches/report.py" "$OUT" >"$DOC.tmp"
mv "$DOC.tmp" "$DOC"
say "wrote $(rel "$DOC") from $(rel "$OUT") in $(( $(date +%s) - START )) s"
