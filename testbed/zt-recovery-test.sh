#!/usr/bin/env bash
# Acceptance tests of issue 13 ("Done when") on the zero-trust testbed (router-a-zt.yaml,
# router-b-zt.yaml, x25519, a fresh PKI per run):
#
#  restart  kill -9 router-b under a steady UDP echo flow (100 datagrams/s, ONE 5-tuple) and
#           restart it: prints the gap between router-a's IPv4 peer path coming back into
#           service (event timestamp) and the first datagram of that same flow answered after
#           the restart; asserts gap <= 1 s.
#  rekey    iperf3 TCP host-a -> host-b for 40 s, once with rotations off (payload and peer
#           key rekey interval: never) and once with test-time-scale 720 (payload-key and
#           peer-key rotations every 5 s: >= 4 of each, counted from router-a's events);
#           asserts 0 svr_mtu_exceeded, no ICMP too-big sent (slowpath mtu_exceeded and
#           icmp_errors_sent unchanged, host-a's route cache has no lowered PMTU), no packet
#           dropped for its keys on either router (svr_hmac_failure, svr_decrypt_failure,
#           svr_unknown_key: what a rotation that loses packets shows) and
#           retransmits(rotations) <= 5 x max(retransmits(off), 1000); prints both. (The defect
#           this guards against, metadata pushing segments over the MTU, shows as
#           svr_mtu_exceeded and ICMP too-big, asserted 0. Retransmits of an unbounded iperf3
#           on 2 CPUs come mostly from af_packet ring drops when svrd is descheduled (the
#           ports' rx-ring-drops): the run without rotations alone gave 1,121 to 4,557 in
#           three CI runs of the same code, and the ratio of the two runs 0.81, 1.28 and 2.39,
#           so the ratio is only a coarse bound; the key-drop counters are the exact one.)
#
#   zt-recovery-test.sh [restart] [rekey]     (default: both; about 2.5 minutes)
# Each test prints PASS or FAIL with its numbers; exit 1 if any failed. Tear-down always runs.
set -euo pipefail
TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed.sh
source "$TB_DIR/testbed.sh"
ZT_TAG=zt-recovery
# shellcheck source=zt-lib.sh
source "$TB_DIR/zt-lib.sh"
TESTS=${*:-restart rekey}
IPERF_SECONDS=${IPERF_SECONDS:-40}

BG=""
cleanup() {
  local p
  for p in $BG; do kill "$p" 2>/dev/null || true; done
  [ -f "$RUN/iperf3.pid" ] && kill "$(cat "$RUN/iperf3.pid")" 2>/dev/null || true
  tb_down
}
trap cleanup EXIT
SVRD=${SVRD:-$ROOT/target/release/svrd}
[ -x "$SVRD" ] || fail "$SVRD is missing (cargo build --release -p svrd)"
counter_any() { local v; v=$({ grep -E "^[a-z]+ $2=" "$RUN/$1.log" || true; } | tail -n 1 | sed 's/.*=//'); echo "${v:-0}"; }

FAILED=()
verdict() { # verdict NAME OK? LINE
  if [ "$2" = 1 ]; then ok "PASS $1: $3"; else echo "[$ZT_TAG] FAIL $1: $3"; FAILED+=("$1"); fi
}

tb_up
zt_make_pki
ok "PKI made in $PKI"
derive "$TB_DIR/router-a-zt.yaml" "$RUN/rec-a.yaml"
derive "$TB_DIR/router-b-zt.yaml" "$RUN/rec-b.yaml"

# ---------------------------------------------------------------- restart
if [[ " $TESTS " == *" restart "* ]]; then
  CONF_A=$RUN/rec-a.yaml CONF_B=$RUN/rec-b.yaml tb_start
  both_in_service 0 0 20
  rate=100 secs=28
  ip netns exec host-b timeout $((secs + 10)) python3 "$TB_DIR/udp_flow.py" serve 10.2.0.2 5201 $((secs + 4)) &
  srv=$!; BG="$BG $srv"; sleep 0.3
  ip netns exec host-a timeout $((secs + 10)) python3 "$TB_DIR/udp_flow.py" stream 10.2.0.2 5201 $((rate * secs)) "$rate" $((rate * secs)) 200 "$RUN/restart-echo.log" > "$RUN/restart.flow" &
  st=$!; BG="$BG $st"
  sleep 6
  fa=$(lines router-a)
  pid=$(cat "$RUN/router-b.pid")
  t_kill=$(date +%s.%N)
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$RUN/router-b.pid"
  sleep 1
  tb_start_one router-b "$RUN/rec-b.yaml"
  tb_wait_ready router-b
  wait_log router-a "path=10\.9\.0\.1->10\.9\.0\.2 event=path-in-service" 20 "$fa" || fail "router-a: IPv4 path not back in service 20 s after router-b restarted"
  wait "$st" 2>/dev/null || true
  kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true
  line=$(tail -n +"$((fa + 1))" "$RUN/router-a.log" | grep -m1 "path=10.9.0.1->10.9.0.2 event=path-in-service")
  t_in=$(log_ts "$line")
  lineb=$(grep -m1 "path=10.9.0.2->10.9.0.1 event=path-in-service" "$RUN/router-b.log" || true)
  t_inb=$(log_ts "$lineb")
  dump router-a router-b
  res=$(python3 - "$RUN/restart-echo.log" "$t_kill" "$t_in" "${t_inb:-0}" <<'EOF'
import sys
log, t_kill, t_in, t_inb = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rows = [tuple(map(float, l.split())) for l in open(log) if l.strip()]
before = [r for r in rows if r[2] < t_kill]
after = sorted((r for r in rows if r[2] > t_kill), key=lambda r: r[2])
if not after:
    print(f"gap=none answered_before_kill={len(before)} answered_after_restart=0 in_service_after_kill={t_in - t_kill:.2f}")
else:
    first = after[0]
    print(f"gap={first[2] - t_in:.3f} answered_before_kill={len(before)} answered_after_restart={len(after)} "
          f"in_service_after_kill={t_in - t_kill:.2f}s (router-b's side {t_inb - t_kill:.2f}s) "
          f"first_answered=#{int(first[0])} {first[2] - t_kill:.2f}s_after_kill")
EOF
)
  gap=$(echo "$res" | sed -E 's/^gap=([^ ]+).*/\1/')
  good=0; [ "$gap" != none ] && python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 1.0 else 1)" "$gap" && good=1
  verdict restart "$good" "existing flow answered $gap s after router-a's path came back into service (bound 1 s); $res; flow $(head -n 1 "$RUN/restart.flow"); router-a drop svr_replay=$(counter_any router-a svr_replay) svr_hmac_failure=$(counter_any router-a svr_hmac_failure)"
  tb_stop || true
fi

# ---------------------------------------------------------------- rekey under TCP
# key_drops: packets both routers dropped for their keys (HMAC, decryption, unknown key).
key_drops() {
  local r n sum=0
  for r in router-a router-b; do
    for n in svr_hmac_failure svr_decrypt_failure svr_unknown_key; do
      sum=$((sum + $(counter_any "$r" "$n")))
    done
  done
  echo "$sum"
}
# iperf_run TAG CONF_A CONF_B: one 40 s iperf3 run; sets R_RETR R_MTU R_ICMP R_SLOW_MTU R_PK R_PAY R_PMTU R_BPS R_KEYDROP
iperf_run() {
  local tag=$1 json fa
  CONF_A=$2 CONF_B=$3 tb_start
  both_in_service 0 0 25
  ip netns exec host-a ip route flush cache >/dev/null 2>&1 || true
  dump router-a router-b
  local m0 i0 s0 mb0 ib0 sb0
  m0=$(counter_any router-a svr_mtu_exceeded); mb0=$(counter_any router-b svr_mtu_exceeded)
  i0=$(counter_any router-a icmp_errors_sent); ib0=$(counter_any router-b icmp_errors_sent)
  s0=$(counter_any router-a mtu_exceeded); sb0=$(counter_any router-b mtu_exceeded)
  local k0
  k0=$(key_drops)
  fa=$(lines router-a)
  ip netns exec host-b iperf3 -s -1 -D -I "$RUN/iperf3.pid" >/dev/null
  sleep 0.3
  json=$(ip netns exec host-a timeout $((IPERF_SECONDS + 20)) iperf3 -c 10.2.0.2 -t "$IPERF_SECONDS" -J) || fail "$tag: iperf3 failed"
  [ -f "$RUN/iperf3.pid" ] && kill "$(cat "$RUN/iperf3.pid")" 2>/dev/null || true; rm -f "$RUN/iperf3.pid"
  R_RETR=$(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["end"]["sum_sent"].get("retransmits", 0)))')
  R_BPS=$(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["end"]["sum_received"]["bits_per_second"]/1e6))')
  R_PMTU=$(ip netns exec host-a ip route get 10.2.0.2 | grep -oE "mtu [0-9]+" || echo "mtu -")
  dump router-a router-b
  local la
  la=$(lines router-a)
  R_MTU=$(( $(counter_any router-a svr_mtu_exceeded) - m0 + $(counter_any router-b svr_mtu_exceeded) - mb0 ))
  R_ICMP=$(( $(counter_any router-a icmp_errors_sent) - i0 + $(counter_any router-b icmp_errors_sent) - ib0 ))
  R_SLOW_MTU=$(( $(counter_any router-a mtu_exceeded) - s0 + $(counter_any router-b mtu_exceeded) - sb0 ))
  R_PK=$(count_log router-a "event=key-rotated key=peer-key" "$fa" "$la")
  R_PAY=$(count_log router-a "event=payload-key-rotation-due" "$fa" "$la")
  R_RK=$(counter_any router-a svr_payload_rekeys_completed)
  R_KEYDROP=$(( $(key_drops) - k0 ))
  note "$tag: iperf3 ${IPERF_SECONDS}s ${R_BPS} Mbit/s retransmits=$R_RETR svr_mtu_exceeded=$R_MTU slowpath mtu_exceeded=$R_SLOW_MTU icmp_errors_sent=$R_ICMP key drops=$R_KEYDROP host-a route: $R_PMTU; rotations on router-a: peer-key=$R_PK payload-key=$R_PAY (live-session rekeys completed=$R_RK)"
  tb_stop || true
}

if [[ " $TESTS " == *" rekey "* ]]; then
  derive "$TB_DIR/router-a-zt.yaml" "$RUN/norot-a.yaml" "s/payload-key-rekey-interval: 1 /payload-key-rekey-interval: never /" "s/peer-key-rekey-interval: 1 /peer-key-rekey-interval: never /"
  derive "$TB_DIR/router-b-zt.yaml" "$RUN/norot-b.yaml" "s/payload-key-rekey-interval: 1 /payload-key-rekey-interval: never /" "s/peer-key-rekey-interval: 1 /peer-key-rekey-interval: never /"
  derive "$TB_DIR/router-a-zt.yaml" "$RUN/rot-a.yaml" "s/test-time-scale: 360/test-time-scale: 720/"
  derive "$TB_DIR/router-b-zt.yaml" "$RUN/rot-b.yaml" "s/test-time-scale: 360/test-time-scale: 720/"
  grep -q "peer-key-rekey-interval: never" "$RUN/norot-a.yaml" || fail "could not turn rotations off in the derived config"
  iperf_run "rotations off" "$RUN/norot-a.yaml" "$RUN/norot-b.yaml"
  off_retr=$R_RETR off_line="retransmits=$R_RETR ${R_BPS} Mbit/s"
  [ "$R_PK" -eq 0 ] && [ "$R_PAY" -eq 0 ] || note "warning: rotations happened with rotations off (peer-key=$R_PK payload=$R_PAY)"
  iperf_run "rotations on" "$RUN/rot-a.yaml" "$RUN/rot-b.yaml"
  on_retr=$R_RETR
  why=""
  [ "$R_PK" -ge 4 ] && [ "$R_PAY" -ge 4 ] || why="$why too few rotations (peer-key=$R_PK payload-key=$R_PAY, want >= 4 each);"
  [ "$R_MTU" -eq 0 ] || why="$why svr_mtu_exceeded=$R_MTU;"
  [ "$R_SLOW_MTU" -eq 0 ] && [ "$R_ICMP" -eq 0 ] || why="$why ICMP too-big sent (slowpath mtu_exceeded=$R_SLOW_MTU icmp_errors_sent=$R_ICMP);"
  [ "$R_KEYDROP" -eq 0 ] || why="$why $R_KEYDROP packets dropped for their keys (svr_hmac_failure, svr_decrypt_failure, svr_unknown_key);"
  limit=$(python3 -c "import sys; print(int(5 * max(int(sys.argv[1]), 1000)))" "$off_retr")
  [ "$on_retr" -le "$limit" ] || why="$why retransmits $on_retr > 5x ($limit);"
  good=1; [ -z "$why" ] || good=0
  verdict rekey "$good" "retransmits with rotations=$on_retr (${R_BPS} Mbit/s, peer-key=$R_PK payload-key=$R_PAY rotations, key drops=$R_KEYDROP, svr_mtu_exceeded=$R_MTU, ICMP too-big: mtu_exceeded=$R_SLOW_MTU icmp_errors_sent=$R_ICMP, host-a $R_PMTU) vs without=$off_line; limit $limit${why:+ | why:$why}"
fi

[ "${#FAILED[@]}" -eq 0 ] || { echo "[$ZT_TAG] FAIL: ${FAILED[*]}"; exit 1; }
echo "[$ZT_TAG] PASS"
