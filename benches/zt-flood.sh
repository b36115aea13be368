#!/usr/bin/env bash
# The slow-path flood figure of issue 13: replayed genuine clear offers (the leader router-a's
# clear Hello with its certificate chain, captured on the WAN while the pair peered) sent to
# router-b at RATE packets/s for SECONDS against a dh-modp-4096 zero-trust pair on the
# namespace testbed (testbed/attacks.py flood-offers). Measures, over the flood:
#   - the CPU of each router's slow-path thread (/proc/<pid>/task/<tid>/stat utime+stime;
#     the thread is svrd's main thread "svrd" when slowpath-lcore = main-lcore, as in the
#     testbed configs, else DPDK's "rte-worker-<lcore>"), average and worst 1 s window;
#   - BFD: no event=bfd-down / path-out-of-service on any path during the flood and 5 s after,
#     and both routers report every peer path in service afterwards (SIGUSR1);
#   - a UDP echo flow host-a -> host-b meanwhile (datagrams lost).
# Target (issue 13 "Done when"): BFD Up on every path and the slow path under 50 % of a core.
#
#   bash benches/zt-flood.sh [RATE [SECONDS]]      (default 1000 30; root; about 1 minute)
#   FRESH_BFD=1 bash benches/zt-flood.sh           the offers behind live BFD Up headers
# Prints "bench=zt-flood ..." lines and the command; exit 1 if the target is missed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TB_DIR=$ROOT/testbed
# shellcheck source=../testbed/testbed.sh
source "$TB_DIR/testbed.sh"
ZT_TAG=zt-flood
# shellcheck source=../testbed/zt-lib.sh
source "$TB_DIR/zt-lib.sh"
RATE=${1:-1000}
SECONDS_=${2:-30}
CAP=$RUN/flood-capture.pcap
ALG=${ALG:-dh-modp-4096}

BG=""
cleanup() { local p; for p in $BG; do kill "$p" 2>/dev/null || true; done; tb_down; }
trap cleanup EXIT
SVRD=${SVRD:-$ROOT/target/release/svrd}
[ -x "$SVRD" ] || fail "$SVRD is missing (cargo build --release -p svrd)"

tb_up
zt_make_pki
derive "$TB_DIR/router-a-zt.yaml" "$RUN/flood-a.yaml" "s/key-exchange-algorithm: x25519/key-exchange-algorithm: $ALG/"
derive "$TB_DIR/router-b-zt.yaml" "$RUN/flood-b.yaml" "s/key-exchange-algorithm: x25519/key-exchange-algorithm: $ALG/"
python3 "$TB_DIR/attacks.py" capture "$CAP" 12 > "$RUN/flood-capture.out" &
capt=$!; BG="$BG $capt"
sleep 0.5
CONF_A=$RUN/flood-a.yaml CONF_B=$RUN/flood-b.yaml tb_start
both_in_service 0 0 25
wait "$capt" 2>/dev/null || true
note "captured: $(cat "$RUN/flood-capture.out")"

# slow_tid PID CONF: the slow-path thread of svrd PID.
slow_tid() {
  local pid=$1 conf=$2 main slow
  main=$(sed -nE 's/^ *main-lcore: *([0-9]+).*/\1/p' "$conf" | head -n 1)
  slow=$(sed -nE 's/^ *slowpath-lcore: *([0-9]+).*/\1/p' "$conf" | head -n 1)
  if [ "$main" = "$slow" ]; then echo "$pid"; return; fi
  local t
  for t in /proc/"$pid"/task/*; do
    [ "$(cat "$t/comm")" = "rte-worker-$slow" ] && { basename "$t"; return; }
  done
  echo "$pid"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/task/$2/stat"; }
PA=$(cat "$RUN/router-a.pid"); PB=$(cat "$RUN/router-b.pid")
TA=$(slow_tid "$PA" "$RUN/flood-a.yaml"); TB=$(slow_tid "$PB" "$RUN/flood-b.yaml")
HZ=$(getconf CLK_TCK)
note "slow-path threads: router-a tid $TA ($(cat /proc/"$PA"/task/"$TA"/comm)), router-b tid $TB ($(cat /proc/"$PB"/task/"$TB"/comm))"

# Idle baseline, 3 s.
a0=$(ticks "$PA" "$TA"); b0=$(ticks "$PB" "$TB"); sleep 3
idle_a=$(( $(ticks "$PA" "$TA") - a0 )); idle_b=$(( $(ticks "$PB" "$TB") - b0 ))

dump router-a router-b
fa=$(lines router-a); fb=$(lines router-b)
n=$(( (SECONDS_ + 6) * 50 ))
ip netns exec host-b timeout $((SECONDS_ + 20)) python3 "$TB_DIR/udp_flow.py" serve 10.2.0.2 5301 $((SECONDS_ + 12)) &
srv=$!; BG="$BG $srv"; sleep 0.3
ip netns exec host-a timeout $((SECONDS_ + 20)) python3 "$TB_DIR/udp_flow.py" stream 10.2.0.2 5301 "$n" 50 "$n" > "$RUN/flood.flow" &
st=$!; BG="$BG $st"
sleep 1
# FRESH_BFD=1: the captured blocks behind live BFD Up headers (only the key exchange is hit).
FB=(); [ "${FRESH_BFD:-0}" = 1 ] && FB=(--fresh-bfd)
CMD="python3 testbed/attacks.py flood-offers $CAP $RATE $SECONDS_ --victim b ${FB[*]:-}"
python3 "$TB_DIR/attacks.py" flood-offers "$CAP" "$RATE" "$SECONDS_" --victim b "${FB[@]}" > "$RUN/flood.out" &
fl=$!; BG="$BG $fl"
a1=$(ticks "$PA" "$TA"); b1=$(ticks "$PB" "$TB"); t1=$(date +%s.%N)
worst_a=0 worst_b=0
pa=$a1; pb=$b1
while kill -0 "$fl" 2>/dev/null; do
  sleep 1
  ca=$(ticks "$PA" "$TA"); cb=$(ticks "$PB" "$TB")
  [ $((ca - pa)) -gt "$worst_a" ] && worst_a=$((ca - pa))
  [ $((cb - pb)) -gt "$worst_b" ] && worst_b=$((cb - pb))
  pa=$ca; pb=$cb
done
a2=$(ticks "$PA" "$TA"); b2=$(ticks "$PB" "$TB"); t2=$(date +%s.%N)
wait "$fl" 2>/dev/null || true
sleep 5   # BFD must also survive the backlog after the flood (issue 13 item 5)
wait "$st" 2>/dev/null || true
kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true
la=$(lines router-a); lb=$(lines router-b)
down=$(( $(count_log router-a "event=(bfd-down|path-out-of-service)" "$fa" "$la") + $(count_log router-b "event=(bfd-down|path-out-of-service)" "$fb" "$lb") ))
stalls=$(( $(count_log router-a "event=slow-path-stall" "$fa" "$la") + $(count_log router-b "event=slow-path-stall" "$fb" "$lb") ))
dump router-a router-b
ina=$(counter router-a "slowpath peer_paths_in_service"); inb=$(counter router-b "slowpath peer_paths_in_service")
read -r pct_a pct_b wpa wpb ia ib dt < <(python3 -c "
import sys
a, b, wa, wb, ia, ib, dt, hz = map(float, sys.argv[1:])
print(f'{100*a/hz/dt:.1f} {100*b/hz/dt:.1f} {100*wa/hz:.0f} {100*wb/hz:.0f} {100*ia/hz/3:.1f} {100*ib/hz/3:.1f} {dt:.1f}')
" $((a2 - a1)) $((b2 - b1)) "$worst_a" "$worst_b" "$idle_a" "$idle_b" "$(python3 -c "print($t2 - $t1)")" "$HZ")
echo "bench=zt-flood alg=$ALG $(cat "$RUN/flood.out" | cut -d' ' -f2-)"
echo "bench=zt-flood victim=router-b slow_path_cpu_pct=$pct_b worst_1s_pct=$wpb idle_pct=$ib over=${dt}s"
echo "bench=zt-flood peer=router-a slow_path_cpu_pct=$pct_a worst_1s_pct=$wpa idle_pct=$ia"
echo "bench=zt-flood bfd_down_or_out_of_service_events=$down slow_path_stalls=$stalls paths_in_service_after=a:$ina,b:$inb flow=\"$(head -n 1 "$RUN/flood.flow")\""
echo "bench=zt-flood router-b: $(grep -E '^(slowpath (bfd_rx|punted_frames|slow_path_stalls)|drop bfdmd_[a-z_]*)=' "$RUN/router-b.log" | tail -n 40 | sort -u | grep -v '=0$' | paste -sd' ')"
echo "bench=zt-flood command: bash benches/zt-flood.sh $RATE $SECONDS_   (the flood itself: $CMD)"
good=1
[ "$down" -eq 0 ] && [ "$ina" = 2 ] && [ "$inb" = 2 ] || good=0
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 50 else 1)" "$pct_b" || good=0
[ "$good" = 1 ] && { echo "[zt-flood] PASS: BFD Up on every path, router-b slow path $pct_b % < 50 % of a core"; exit 0; }
echo "[zt-flood] FAIL: target is BFD Up on every path (events=$down, in service a:$ina b:$inb) and slow path < 50 % (router-b $pct_b %, worst 1 s $wpb %)"
exit 1
