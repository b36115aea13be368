#!/usr/bin/env bash
# The device-under-test benchmark: svr-pktgen on one core, the DUT on another, two memif links
# (LAN and WAN; the generator is the memif server, the DUT the client).
#
#   benches/dut/run.sh OUT_DIR [RUNS]     # scripts/bench.sh --dut calls this
#
# For each run, interleaved: (1) dpdk-testpmd io-forward on the same links (the I/O ceiling),
# (2) svrd, encrypt direction (LAN plaintext in, SVR out to the peer waypoint), (3) svrd,
# decrypt direction (the generator plays the peer router and sends sealed SVR packets).
# Each step measures 64, 512, 1400 B and IMIX: full-speed forwarding rate, then a binary search
# for the no-drop rate, with latency percentiles. Results: OUT_DIR/dut/<step>.<run>.json (one
# JSON object per size), the logs beside them, the commands in OUT_DIR/dut/commands.txt.
#
# Every process started here is stopped on exit, error or signal (trap), and each one also
# runs under `timeout`, so nothing outlives the script. Bounded: each generator invocation has
# a hard limit (SVR_DUT_STEP_TIMEOUT, 120 s), the searches a time budget per size.
#
# Environment: SVR_DUT_BIN (target/release), SVR_DUT_GEN_CPU (0), SVR_DUT_DUT_CPU (1),
# SVR_DUT_FLOWS (1024), SVR_DUT_SIZES (64,512,1400,imix), SVR_DUT_NICE (-19: the measured
# processes get priority over other jobs of this user/cgroup; "" to disable).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?usage: benches/dut/run.sh OUT_DIR [RUNS]}
RUNS=${2:-3}
BIN=${SVR_DUT_BIN:-$ROOT/target/release}
GEN_CPU=${SVR_DUT_GEN_CPU:-0}
DUT_CPU=${SVR_DUT_DUT_CPU:-1}
FLOWS=${SVR_DUT_FLOWS:-1024}
SIZES=${SVR_DUT_SIZES:-64,512,1400,imix}
STEP_TIMEOUT=${SVR_DUT_STEP_TIMEOUT:-120}
NICE=${SVR_DUT_NICE--19}
CONF=$ROOT/benches/dut/svrd-dut.yaml
D=$OUT/dut
mkdir -p "$D"
say() { printf '[dut] %s\n' "$*" >&2; }
rel() { echo "${1#"$ROOT"/}"; }

# ---- cleanup: every process we start, by its pid ---------------------------------------
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  sleep 1
  for p in "${PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

nice_cmd() { if [ -n "$NICE" ]; then echo "nice -n $NICE"; fi; }

# The links. Fixed MACs (memif `mac=`); svrd's static neighbours in svrd-dut.yaml name the
# generator's. Abstract sockets (memif's default): no file to clean up.
GEN_LAN="net_memif0,role=server,socket=/run/svr-dut/lan.sock,mac=02:00:00:00:e0:01"
GEN_WAN="net_memif1,role=server,socket=/run/svr-dut/wan.sock,mac=02:00:00:00:e0:02"
DUT_LAN_MAC=02:00:00:00:d0:01
DUT_WAN_MAC=02:00:00:00:d0:02
GEN_COMMON="--flows $FLOWS --size $SIZES --duration 1 --search --trial 0.4 --search-steps 7 --search-budget 8 --pool-packets 600K --cpu $GEN_CPU --mem-mb 128 --linger 30 --json"
GEN_PLAIN="$(rel "$BIN")/svr-pktgen --mode plain --tx-dev $GEN_LAN --rx-dev $GEN_WAN --dst-mac $DUT_LAN_MAC $GEN_COMMON"
GEN_ENC="$(rel "$BIN")/svr-pktgen --mode svr-encrypt --svr-config benches/dut/svrd-dut.yaml --tx-dev $GEN_LAN --rx-dev $GEN_WAN --dst-mac $DUT_LAN_MAC --src-ip 10.1.1.1 --dst-ip 10.2.0.2 $GEN_COMMON"
GEN_DEC="$(rel "$BIN")/svr-pktgen --mode svr-decrypt --svr-config benches/dut/svrd-dut.yaml --tx-dev $GEN_WAN --rx-dev $GEN_LAN --dst-mac $DUT_WAN_MAC --src-ip 10.2.1.1 --dst-ip 10.1.0.2 $GEN_COMMON"
TESTPMD="dpdk-testpmd -l $GEN_CPU,$DUT_CPU --main-lcore $GEN_CPU --file-prefix testpmd-dut -m 128 --huge-unlink --no-pci --log-level=error --vdev net_memif0,role=client,socket=/run/svr-dut/lan.sock,mac=$DUT_LAN_MAC --vdev net_memif1,role=client,socket=/run/svr-dut/wan.sock,mac=$DUT_WAN_MAC -- --forward-mode=io --auto-start --nb-cores=1 --stats-period 60"
SVRD="$(rel "$BIN")/svrd --config benches/dut/svrd-dut.yaml"
{
  echo "dut_gen_plain=$GEN_PLAIN"
  echo "dut_gen_encrypt=$GEN_ENC"
  echo "dut_gen_decrypt=$GEN_DEC"
  echo "dut_testpmd=$TESTPMD"
  echo "dut_svrd=$SVRD"
  echo "dut_nice=$NICE"
  echo "dut_runs=$RUNS"
} >"$D/commands.txt"

for t in "$BIN/svr-pktgen" "$BIN/svrd"; do
  [ -x "$t" ] || { say "error: $t not built"; exit 1; }
done
command -v dpdk-testpmd >/dev/null || { say "error: dpdk-testpmd not found"; exit 1; }
"$BIN/svrd" --check "$CONF" >/dev/null

# One step: the generator (memif server) first, then the DUT (client); wait for the
# generator, then stop the DUT. $1 = name, $2 = generator command, $3 = DUT command.
step() {
  local name=$1 gen=$2 dut=$3 gp dp rc=0
  (cd "$ROOT" && exec $(nice_cmd) timeout "$STEP_TIMEOUT" $gen) >"$D/$name.json" 2>"$D/$name.gen.log" &
  gp=$!
  PIDS+=("$gp")
  sleep 1
  (cd "$ROOT" && exec $(nice_cmd) timeout $((STEP_TIMEOUT + 10)) $dut) >"$D/$name.dut.log" 2>&1 </dev/null &
  dp=$!
  PIDS+=("$dp")
  # The generator says "pktgen: done" after its results and keeps the links up (--linger):
  # stop the DUT first, then the generator, so the DUT never sees its memif peer vanish.
  while kill -0 "$gp" 2>/dev/null && ! grep -q "^pktgen: done" "$D/$name.gen.log"; do
    sleep 0.2
  done
  if kill -0 "$dp" 2>/dev/null; then
    kill -TERM "$dp" 2>/dev/null || true
    wait "$dp" 2>/dev/null || true
  else
    local drc=0
    wait "$dp" 2>/dev/null || drc=$?
    say "warning: $name: the DUT exited by itself during the step (status $drc)"
    echo "dut_exit_${name//./_}=$drc" >>"$D/commands.txt"
  fi
  if grep -q "^pktgen: done" "$D/$name.gen.log"; then
    kill -TERM "$gp" 2>/dev/null || true
    wait "$gp" 2>/dev/null || true
  else
    wait "$gp" || rc=$?
    [ "$rc" -ne 0 ] || rc=1
  fi
  PIDS=()
  if [ "$rc" -ne 0 ]; then
    say "warning: $name: generator exit $rc (see $(rel "$D/$name.gen.log"))"
    tail -3 "$D/$name.gen.log" >&2 || true
  fi
  return 0
}

# The DUT's profile: svrd times each stage of its burst loop with the TSC (VPP's "show
# runtime") and prints clocks per packet by stage at exit ("worker 0: clocks-per-packet ...").
# One short step per direction and size in every run, full speed, no search. (`perf record` attached to svrd
# was tried first: on this VM its cpu-clock samples of the worker thread did not match what the
# worker was doing, so the figures come from the data path itself.)
PROFILE_SIZES=${SVR_DUT_PROFILE_SIZES:-64,1400}
profile_gen() { # $1 = generator command of the direction, $2 = size
  echo "${1%%--flows*}--flows $FLOWS --size $2 --duration 4 --pool-packets 600K --cpu $GEN_CPU --mem-mb 128 --linger 30 --json"
}

START=$(date +%s)
for r in $(seq 1 "$RUNS"); do
  say "run $r/$RUNS: testpmd io-forward (the memif I/O ceiling)"
  step "testpmd.$r" "$GEN_PLAIN" "$TESTPMD"
  say "run $r/$RUNS: svrd, encrypt direction"
  step "encrypt.$r" "$GEN_ENC" "$SVRD"
  say "run $r/$RUNS: svrd, decrypt direction"
  step "decrypt.$r" "$GEN_DEC" "$SVRD"
  if [ "${SVR_DUT_PROFILE:-1}" = 1 ]; then
    say "run $r/$RUNS: svrd's clocks per packet by stage, encrypt and decrypt at $PROFILE_SIZES B"
    for size in ${PROFILE_SIZES//,/ }; do
      step "profile-encrypt-$size.$r" "$(profile_gen "$GEN_ENC" "$size")" "$SVRD"
      step "profile-decrypt-$size.$r" "$(profile_gen "$GEN_DEC" "$size")" "$SVRD"
    done
  fi
done
if [ "${SVR_DUT_PROFILE:-1}" = 1 ]; then
  echo "dut_profile_encrypt=$(profile_gen "$GEN_ENC" "<size>")" >>"$D/commands.txt"
  echo "dut_profile_decrypt=$(profile_gen "$GEN_DEC" "<size>")" >>"$D/commands.txt"
fi
echo "dut_elapsed_s=$(( $(date +%s) - START ))" >>"$D/commands.txt"
say "done in $(( $(date +%s) - START )) s; results in $(rel "$D")"
