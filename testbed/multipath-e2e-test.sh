#!/usr/bin/env bash
# End-to-end tests of issue 9 ("Done when", testbed bullets) on the multipath testbed
# (testbed/multipath.sh: two WAN links through the ISP namespaces mp-isp1 / mp-isp2), with the
# release svrd and zero-trust keys (a fresh PKI with certificates made at start). One testbed
# bring-up and one pair of routers are shared by all cases, in this order:
#
#  longest-match  a service `order-probe` (10.2.0.30/32, fd00:2::30/128, policy: vector link2
#             never) listed AFTER site-b (10.2.0.0/24), which also holds its prefix: its sessions
#             must take its policy (config docs: "the longest match wins"), i.e. all use link 1.
#  loss       10 % loss on link 1 (both directions). Once router-a's link test has measured it
#             (SIGUSR1 `bfd path=... loss-pct` above the max-loss on link 1's IPv4 and IPv6 paths, then the
#             hold-down), NEW voice sessions (max-loss, 5 % here, max-latency 150 ms) use link 2 and
#             bulk sessions (vector link1 priority 10, link2 100) stay on link 1; IPv4 and IPv6.
#  latency    link 1 healed, 100 ms one-way delay on link 2 (both directions, impair.py). Once
#             the link test shows link 2's latency >= 50 ms and link 1 SLA-compliant again
#             (loss <= 0.9 %; link 2's loss waited for up to 60 s too, but impair.py may drop a
#             probe on a busy machine), new voice sessions use link 1; IPv4, IPv6.
#  tcp        link 2 healed; iperf3 TCP host-a -> bulk (10.2.0.20, on link 1 by its vector),
#             `link-down 1` after 3 s: the transfer goes on over link 2 without a reset (iperf3
#             exits 0, bytes reach host-b after the link loss, svr_session_moved moves). Prints
#             the gap (largest run of 0.1 s server intervals without a received byte) and
#             asserts it is at most the path's BFD detection time (SIGUSR1 detection-ms) + 1 s.
#  revert     bulk-revert (revertible-failover) and bulk (failover) flows on link 1, link 1 goes
#             down (both move to link 2) and comes back: the revertible one returns to link 1
#             after the hold-downs, the failover one stays on link 2; IPv4 and IPv6.
#  dup        20 % loss on link 1 towards router-b: the dup service (packet-duplication) echoes
#             every datagram, packets go over both links, router-b's svr_duplicate_dropped
#             moves; bulk on link 1 alone is the control (it loses about a fifth).
#  both-down  a live voice UDP session (one 5-tuple, 50 datagrams/s) while every link is taken
#             down: router-a and router-b report `peer_paths_in_service=0` (SIGUSR1); then
#             link 1 returns: the same session's echoes resume (time printed) and a new IPv6
#             voice session works.
#
# Which link a session uses: an nftables table `mpcount` in each ISP namespace counts the
# TCP/UDP packets other than BFD/link test (UDP 1280) entering the ISP from router-a (a2b) and
# from router-b (b2a), per family. That is all SVR data (svrd sends nothing else over
# TCP/UDP), and the flows of a case run one after the other, so the counts of a flow's window
# are its packets on each link (= the packets to its wayports). svrd's per-port tx-packets
# (wan1/wan2, BFD and link tests included) are printed beside them as a cross-check.
#
# Test configuration (derived from testbed/router-{a,b}-mp.yaml into $RUN; the repository's
# files are not changed):
#   * both routers: link-test-interval 2 s (default 10), hold-down-time 1 s (default 5), so a
#     10 % loss is measured and told to the path selector within a few seconds;
#   * voice: best-path as in the repository (average-latency; VOICE_BEST_PATH=vector spreads
#     sessions over both compliant links by their UUID hash instead); max-loss 5 % instead of
#     the repository's 1 % (VOICE_MAX_LOSS): a link test is 10 probes and the loss is an EWMA
#     (alpha 0.25), so ONE probe lost on a healed link (an af_packet ring drop on a busy
#     2-CPU machine) reads 2.5 % and would make it non-compliant for 1 %;
#   * the services in the repository's order (site-b first: the longest prefix must win;
#     SERVICE_ORDER=specific-first lists voice and bulk first);
#   * the order-probe service and policy added (after site-b in both orders);
#   * PKI paths absolute ($RUN/pki).
#
#   testbed/multipath-e2e-test.sh [longest-match] [loss] [latency] [tcp] [revert] [dup]
#                                 [both-down]            (default: all, about 3 minutes)
#
# Every case prints PASS or FAIL with its figures. KNOWN_GAPS lists cases that fail because
# svrd lacks a feature (they are reported as XFAIL and do not fail the run; a listed case that
# passes is reported as XPASS). Exit 0 only when every case not in KNOWN_GAPS passed; 1
# otherwise; 2 on a set-up failure. A watchdog ends the run after MP_E2E_LIMIT seconds (480).
# Clean-up (routers, flows, namespaces) always runs. Needs root, 2 x 128 MiB of hugepages,
# nftables, iperf3, python3, and the release build (cargo build --release -p svrd).
# It refuses to start while mp- namespaces exist (another run?) unless MP_E2E_FORCE=1.
set -euo pipefail
TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$TB_DIR/.." && pwd)
# shellcheck source=multipath.sh
source "$TB_DIR/multipath.sh"
RUN=${MP_E2E_RUN:-$TB_DIR/run/mp-e2e}
SVRD=${SVRD:-$ROOT/target/release/svrd}
PKI=$RUN/pki
ZT_TAG=mp-e2e
# shellcheck source=zt-lib.sh
source "$TB_DIR/zt-lib.sh"

CASES=${*:-longest-match loss latency tcp revert dup both-down}
# Cases that fail because svrd lacks something (XFAIL in the summary; KNOWN_GAPS= to demand
# that every case pass). Empty: every case must pass.
KNOWN_GAPS=${KNOWN_GAPS-}
LIMIT=${MP_E2E_LIMIT:-480}
VOICE_BEST_PATH=${VOICE_BEST_PATH:-average-latency}
VOICE_MAX_LOSS=${VOICE_MAX_LOSS:-5}
SERVICE_ORDER=${SERVICE_ORDER:-repo}   # or: specific-first (see the header)
LINK_TEST_INTERVAL=2
HOLD_DOWN=1
FLOW_COUNT=${FLOW_COUNT:-200}   # datagrams per measured flow
FLOW_RATE=${FLOW_RATE:-100}     # per second
FLOW_PER=${FLOW_PER:-20}        # datagrams per session: 10 new sessions per flow
IPERF_SECONDS=${IPERF_SECONDS:-12}
IPERF_RATE=${IPERF_RATE:-50M}   # bounded: two routers and the hosts share 2 CPUs

# Router-a's peer paths (labels of the SIGUSR1 `bfd path=` lines and of the events).
V4_L1='10.91.0.1->10.91.0.2'; V6_L1='fd00:91::1->fd00:91::2'
V4_L2='10.92.0.1->10.92.0.2'; V6_L2='fd00:92::1->fd00:92::2'

BG=""
WATCHDOG=""
cleanup() {
  local rc=$? p r
  trap - EXIT INT TERM
  # The watchdog's sleep too: it would outlive the run (holding the caller's descriptors).
  [ -n "$WATCHDOG" ] && { pkill -P "$WATCHDOG" 2>/dev/null; kill "$WATCHDOG" 2>/dev/null; } || true
  for p in $BG; do kill "$p" 2>/dev/null || true; done
  for r in router-a router-b; do
    [ -f "$RUN/$r.pid" ] || continue
    p=$(cat "$RUN/$r.pid"); rm -f "$RUN/$r.pid"
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  mp_down
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "[$ZT_TAG] interrupted (watchdog: ${LIMIT}s, or a signal)" >&2; exit 2' INT TERM

[ "$(id -u)" = 0 ] || { echo "[$ZT_TAG] needs root" >&2; exit 2; }
[ -x "$SVRD" ] || { echo "[$ZT_TAG] $SVRD is missing (cargo build --release -p svrd)" >&2; exit 2; }
for t in nft iperf3 python3; do command -v $t >/dev/null || { echo "[$ZT_TAG] $t missing" >&2; exit 2; }; done
if ip netns list | grep -q '^mp-' && [ "${MP_E2E_FORCE:-0}" != 1 ]; then
  echo "[$ZT_TAG] mp- namespaces exist (another multipath run?): $(ip netns list | grep '^mp-' | cut -d' ' -f1 | tr '\n' ' ')- set MP_E2E_FORCE=1 to tear them down" >&2
  trap - EXIT; exit 2
fi
( sleep "$LIMIT"; kill -TERM $$ 2>/dev/null ) &
WATCHDOG=$!
T0=$(date +%s.%N)
since() { python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$1"; }

# ------------------------------------------------------------------ helpers
fgt() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a+0 > b+0)}'; }   # a > b (a numeric)
isnum() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

# snapshot ROUTER: SIGUSR1, then $RUN/ROUTER.snap holds that report.
snapshot() {
  local r=$1 from i
  from=$(lines "$r")
  kill -USR1 "$(cat "$RUN/$r.pid")"
  for i in $(seq 1 30); do
    sleep 0.1
    tail -n +"$((from + 1))" "$RUN/$r.log" | grep -q '^slowpath peer_paths_in_service=' &&
      tail -n +"$((from + 1))" "$RUN/$r.log" | grep -q '^bfd path=' && break
  done
  sleep 0.1
  tail -n +"$((from + 1))" "$RUN/$r.log" > "$RUN/$r.snap"
}
# pf ROUTER LABEL FIELD: a field of the path's `bfd path=` line in the last snapshot.
pf() { { grep -F "bfd path=$2 " "$RUN/$1.snap" || true; } | tail -n 1 | grep -oE "(^| )$3=[^ ]*" | sed 's/.*=//'; }
# sc ROUTER "svr svr_session_moved": a counter of the last snapshot (0 if absent).
sc() { local v; v=$({ grep -E "^$2=" "$RUN/$1.snap" || true; } | tail -n 1 | sed 's/.*=//'); echo "${v:-0}"; }
# port_tx ROUTER PORT: tx-packets of a port in the last snapshot.
port_tx() { { grep -E "^port $2: " "$RUN/$1.snap" || true; } | tail -n 1 | grep -oE 'tx-packets=[0-9]+' | sed 's/.*=//'; }
metrics() { # metrics LABEL: "lat/jit/loss/mos" from router-a's last snapshot
  echo "lat=$(pf router-a "$1" latency-ms)ms loss=$(pf router-a "$1" loss-pct)% jit=$(pf router-a "$1" jitter-ms)ms mos=$(pf router-a "$1" mos) in-service=$(pf router-a "$1" in-service)"
}
show_metrics() {
  note "  router-a link test: link1 v4 [$(metrics "$V4_L1")] v6 [$(metrics "$V6_L1")]"
  note "                      link2 v4 [$(metrics "$V4_L2")] v6 [$(metrics "$V6_L2")]"
}

# The counting table in each ISP (see the header): named counters DIR_FAMILY.
install_counters() {
  local l
  for l in 1 2; do
    ip netns exec "mp-isp$l" nft -f - <<'EOF'
table netdev mpcount {
  counter a2b_v4 { }
  counter a2b_v6 { }
  counter b2a_v4 { }
  counter b2a_v6 { }
  chain a2b {
    type filter hook ingress device "to-a" priority -10; policy accept;
    meta protocol ip ip protocol udp udp dport 1280 accept
    meta protocol ip6 ip6 nexthdr udp udp dport 1280 accept
    meta protocol ip ip protocol { tcp, udp } counter name "a2b_v4"
    meta protocol ip6 ip6 nexthdr { tcp, udp } counter name "a2b_v6"
  }
  chain b2a {
    type filter hook ingress device "to-b" priority -10; policy accept;
    meta protocol ip ip protocol udp udp dport 1280 accept
    meta protocol ip6 ip6 nexthdr udp udp dport 1280 accept
    meta protocol ip ip protocol { tcp, udp } counter name "b2a_v4"
    meta protocol ip6 ip6 nexthdr { tcp, udp } counter name "b2a_v6"
  }
}
EOF
  done
}
# link_counts packets|bytes: "l1a2b l1b2a l2a2b l2b2a" (both families summed).
link_counts() {
  local what=$1 l d out=""
  for l in 1 2; do
    for d in a2b b2a; do
      out="$out $(ip netns exec "mp-isp$l" nft list table netdev mpcount |
        awk -v c1="${d}_v4" -v c2="${d}_v6" -v w="$what" '
          $1=="counter" && ($2==c1 || $2==c2) {on=1; next}
          on && $1=="packets" {s += (w=="packets" ? $2 : $4); on=0}
          END {print s+0}')"
    done
  done
  echo $out
}

# run_flow NAME DST PORT: a udp_flow stream of FLOW_COUNT datagrams in FLOW_COUNT/FLOW_PER new
# sessions from host-a; sets F_SENT F_RECV and the packet deltas L1A L1B L2A L2B, W1 W2
# (router-a's wan1/wan2 tx-packets).
run_flow() {
  local name=$1 dst=$2 port=$3 b a out w1 w2
  snapshot router-a; w1=$(port_tx router-a wan1); w2=$(port_tx router-a wan2)
  read -r -a b <<<"$(link_counts packets)"
  out=$(ip netns exec mp-host-a timeout 30 python3 "$TB_DIR/udp_flow.py" stream "$dst" "$port" \
    "$FLOW_COUNT" "$FLOW_RATE" "$FLOW_PER") || true
  out=${out%%$'\n'*}
  read -r -a a <<<"$(link_counts packets)"
  snapshot router-a
  W1=$(( $(port_tx router-a wan1) - w1 )); W2=$(( $(port_tx router-a wan2) - w2 ))
  L1A=$((a[0] - b[0])); L1B=$((a[1] - b[1])); L2A=$((a[2] - b[2])); L2B=$((a[3] - b[3]))
  F_SENT=$(echo "$out" | sed -nE 's/.*sent=([0-9]+).*/\1/p'); F_SENT=${F_SENT:-0}
  F_RECV=$(echo "$out" | sed -nE 's/.*received=([0-9]+).*/\1/p'); F_RECV=${F_RECV:-0}
  F_LINE="$name $dst: $((FLOW_COUNT / FLOW_PER)) sessions, sent=$F_SENT echoed=$F_RECV; SVR packets link1 a2b=$L1A b2a=$L1B, link2 a2b=$L2A b2a=$L2B (router-a port tx incl. BFD: wan1 +$W1 wan2 +$W2)"
  note "  $F_LINE"
}
# on_link N: the last flow's sessions all used link N: at least 90 % of the datagrams entered
# ISP N from router-a, and at most 2 packets (less than one session's worth) the other link.
on_link() {
  local want=$1 mine other mine_b other_b
  if [ "$want" = 1 ]; then mine=$L1A other=$L2A mine_b=$L1B other_b=$L2B; else mine=$L2A other=$L1A mine_b=$L2B other_b=$L1B; fi
  [ "$F_SENT" -gt 0 ] && [ "$mine" -ge $((F_SENT * 9 / 10)) ] && [ "$other" -le 2 ] && [ "$other_b" -le 2 ] && [ "$mine_b" -gt 0 ]
}

in_service_all() {
  snapshot router-a
  local l
  for l in "$V4_L1" "$V6_L1" "$V4_L2" "$V6_L2"; do [ "$(pf router-a "$l" in-service)" = 1 ] || return 1; done
}
# fam_counts: "l1_v4 l1_v6 l2_v4 l2_v6", a2b packets per link and family.
fam_counts() {
  local l f out=""
  for l in 1 2; do
    for f in v4 v6; do
      out="$out $(ip netns exec "mp-isp$l" nft list counter netdev mpcount "a2b_$f" |
        awk '$1=="packets" {print $2}')"
    done
  done
  echo $out
}
# fam_window A B: "l1v4 l1v6 l2v4 l2v6" deltas between two fam_counts arrays (by name).
fam_window() {
  local -n a=$1 b=$2
  echo "$((b[0] - a[0])) $((b[1] - a[1])) $((b[2] - a[2])) $((b[3] - a[3]))"
}
# fam_on "WINDOW" v4|v6 LINK: that family's packets in the window went over LINK (at least 40,
# i.e. most of a 2 s window at 50/s) and at most 2 over the other link.
fam_on() {
  local w f=$2 want=$3 i1 i2
  read -r -a w <<<"$1"
  if [ "$f" = v4 ]; then i1=0 i2=2; else i1=1 i2=3; fi
  if [ "$want" = 1 ]; then [ "${w[$i1]}" -ge 40 ] && [ "${w[$i2]}" -le 2 ]; else [ "${w[$i2]}" -ge 40 ] && [ "${w[$i1]}" -le 2 ]; fi
}

declare -A RESULT=() DETAIL=()
ORDER=()
verdict() { # verdict CASE OK(1|0) DETAIL
  ORDER+=("$1"); DETAIL[$1]=$3
  if [ "$2" = 1 ]; then RESULT[$1]=PASS; ok "PASS $1: $3"; else RESULT[$1]=FAIL; echo "[$ZT_TAG] FAIL $1: $3"; fi
}

# wait_until SECS FUNC: calls FUNC (which snapshots and tests) every ~0.5 s until it succeeds.
wait_until() {
  local secs=$1 f=$2 end
  end=$(( $(date +%s) + secs ))
  while [ "$(date +%s)" -lt "$end" ]; do
    "$f" && return 0
    sleep 0.4
  done
  return 1
}

# ------------------------------------------------------------------ set-up
mkdir -p "$RUN"
rm -f "$RUN"/*.log "$RUN"/*.snap "$RUN"/*.json "$RUN"/*.flow
zt_make_pki
ok "PKI made in $PKI (root, intermediate, router certificates)"
derive_mp() { # derive_mp SRC DST
  sed -e "/^ *#/!s#run/mp/pki#$PKI#g" \
      -e '/^        link-test-interval:/d' -e '/^        link-test-length:/d' -e '/^        hold-down-time:/d' \
      -e "s/^        multiplier: 3\$/        multiplier: 3\n        link-test-interval: $LINK_TEST_INTERVAL\n        link-test-length: 10\n        hold-down-time: $HOLD_DOWN/" \
      -e "s/^      best-path: average-latency\(.*\)/      best-path: $VOICE_BEST_PATH\1/" \
      -e "s/^      max-loss: 1\$/      max-loss: $VOICE_MAX_LOSS/" \
      "$1" > "$2"
  python3 - "$2" "$SERVICE_ORDER" <<'PY'
import sys
p, order = sys.argv[1], sys.argv[2]
s = open(p).read()
site_b = '    - name: site-b\n      tenant: blue\n      prefix: [10.2.0.0/24, "fd00:2::/64"]\n      router: router-b\n'
bulk_end = '      service-policy: bulk\n'
probe = ('    - name: order-probe\n      tenant: blue\n      prefix: [10.2.0.30/32, "fd00:2::30/128"]\n'
         '      router: router-b\n      service-policy: order-probe\n')
policy = ('    # order-probe (multipath-e2e-test.sh): link 1 only. Its service is listed after site-b,\n'
          '    # which also holds its prefix: the longest match must win.\n'
          '    - name: order-probe\n      vector:\n        - name: link2\n          priority: never\n\n')
anchor = '  # SVR services: destination prefixes'
assert site_b in s and s.count(bulk_end) == 1 and anchor in s, "unexpected router-*-mp.yaml layout"
if order == 'specific-first':
    s = s.replace(site_b, '', 1).replace(bulk_end, bulk_end + site_b + probe, 1)
else:
    s = s.replace(bulk_end, bulk_end + probe, 1)
s = s.replace(anchor, policy + anchor, 1)
open(p, 'w').write(s)
PY
  grep -q "link-test-interval: $LINK_TEST_INTERVAL" "$2" && grep -q "best-path: $VOICE_BEST_PATH" "$2" &&
    grep -q "session-resiliency: failover" "$2" || { echo "[$ZT_TAG] could not derive $2" >&2; exit 2; }
}
derive_mp "$TB_DIR/router-a-mp.yaml" "$RUN/router-a.yaml"
derive_mp "$TB_DIR/router-b-mp.yaml" "$RUN/router-b.yaml"
for r in router-a router-b; do
  "$SVRD" --check "$RUN/$r.yaml" >"$RUN/$r.check" 2>&1 || { cat "$RUN/$r.check" >&2; echo "[$ZT_TAG] svrd --check $r failed" >&2; exit 2; }
done
ok "configs derived: link-test-interval ${LINK_TEST_INTERVAL}s hold-down ${HOLD_DOWN}s, voice best-path $VOICE_BEST_PATH, bulk failover ($(head -n 1 "$RUN/router-a.check"))"

mp_up
install_counters
# The order-probe service's addresses on host-b (beside multipath.sh's voice and bulk ones).
ip netns exec mp-host-b ip addr add 10.2.0.30/24 dev eth0
ip netns exec mp-host-b ip -6 addr add fd00:2::30/64 dev eth0 nodad
for r in router-a router-b; do
  : > "$RUN/$r.log"
  ip netns exec "mp-$r" "$SVRD" --config "$RUN/$r.yaml" >>"$RUN/$r.log" 2>&1 &
  echo $! > "$RUN/$r.pid"
done
for r in router-a router-b; do
  for _ in $(seq 1 150); do
    grep -q "svrd: forwarding" "$RUN/$r.log" && break
    kill -0 "$(cat "$RUN/$r.pid")" 2>/dev/null || fail "$r: svrd exited"
    sleep 0.1
  done
  grep -q "svrd: forwarding" "$RUN/$r.log" || fail "$r: svrd not forwarding after 15 s"
done
for r in router-a router-b; do
  wait_log "$r" "event=peering-established" 30 || fail "$r: no peering-established"
done
for l in "$V4_L1" "$V6_L1" "$V4_L2" "$V6_L2"; do
  wait_log router-a "path=${l//./\\.} event=path-in-service" 20 || fail "router-a: path $l not in service"
done
# Echo servers on host-b for the whole run: voice and bulk, IPv4 and IPv6.
for dst in 10.2.0.10 fd00:2::10 10.2.0.20 fd00:2::20 10.2.0.21 fd00:2::21 10.2.0.40 fd00:2::40 10.2.0.30 fd00:2::30; do
  ip netns exec mp-host-b python3 "$TB_DIR/udp_flow.py" serve "$dst" 5301 "$LIMIT" &
  BG="$BG $!"
done
sleep 0.5
all_measured() {
  snapshot router-a
  local l
  for l in "$V4_L1" "$V6_L1" "$V4_L2" "$V6_L2"; do isnum "$(pf router-a "$l" loss-pct)" || return 1; done
}
wait_until 20 all_measured || fail "router-a: the link test has not measured every path after 20 s"
ok "testbed up, peering established, 4 peer paths in service on router-a, all measured ($(since "$T0") s)"
show_metrics

# ------------------------------------------------------------------ longest-match
if [[ " $CASES " == *" longest-match "* ]]; then
  note "case longest-match: order-probe (10.2.0.30/32, listed after site-b 10.2.0.0/24; policy: link2 never)"
  why=""; figs=""
  for f in "order-probe 10.2.0.30 1" "order-probe fd00:2::30 1"; do
    set -- $f
    run_flow "$1" "$2" 5301
    on_link "$3" || why="$why $1 $2 not all on link $3 (link1 a2b=$L1A link2 a2b=$L2A): its policy was not applied;"
    figs="$figs | $1 $2 link1/link2 a2b=$L1A/$L2A b2a=$L1B/$L2B echoed $F_RECV/$F_SENT"
  done
  good=1; [ -z "$why" ] || good=0
  verdict longest-match "$good" "sessions to a service prefix inside a shorter one listed first take the longer one's policy$figs${why:+ | why:$why}"
fi

# ------------------------------------------------------------------ loss
if [[ " $CASES " == *" loss "* ]]; then
  note "case loss: 10 % loss on link 1 (both directions)"
  mp_impair 1 both loss=10
  link1_lossy() {
    snapshot router-a
    local a b; a=$(pf router-a "$V4_L1" loss-pct); b=$(pf router-a "$V6_L1" loss-pct)
    isnum "$a" && isnum "$b" && fgt "$a" "$VOICE_MAX_LOSS" && fgt "$b" "$VOICE_MAX_LOSS"
  }
  t=$(date +%s.%N)
  measured=1; wait_until 40 link1_lossy || measured=0
  note "  link test saw link 1's loss after $(since "$t") s (measured=$measured); hold-down ${HOLD_DOWN} s + 1 s"
  sleep $((HOLD_DOWN + 1))
  snapshot router-a; show_metrics
  why=""; figs=""
  [ $measured = 1 ] || why="$why link test never showed loss > $VOICE_MAX_LOSS % on link 1;"
  for f in "voice 10.2.0.10 2" "voice fd00:2::10 2" "bulk 10.2.0.20 1" "bulk fd00:2::20 1"; do
    set -- $f
    run_flow "$1" "$2" 5301
    on_link "$3" || why="$why $1 $2 not all on link $3 (link1 a2b=$L1A link2 a2b=$L2A);"
    figs="$figs | $1 $2 link1/link2 a2b=$L1A/$L2A b2a=$L1B/$L2B echoed $F_RECV/$F_SENT"
  done
  good=1; [ -z "$why" ] || good=0
  verdict loss "$good" "link1 loss v4=$(pf router-a "$V4_L1" loss-pct)% v6=$(pf router-a "$V6_L1" loss-pct)%, link2 loss v4=$(pf router-a "$V4_L2" loss-pct)% v6=$(pf router-a "$V6_L2" loss-pct)%$figs${why:+ | why:$why}"
fi

# ------------------------------------------------------------------ latency
if [[ " $CASES " == *" latency "* ]]; then
  note "case latency: link 1 healed, 100 ms one-way delay on link 2 (both directions)"
  mp_heal 1
  mp_impair 2 both delay=100
  # Ready: link 2 measured slow and link 1 loss-free again (voice's SLA allows it). Link 2's
  # own loss is waited for but not required: impair.py, a userspace forwarder, can drop a probe
  # on a busy 2-CPU machine, and voice must then avoid link 2 all the more.
  latency_ready() { # latency_ready PATHS-THAT-MUST-BE-LOSS-FREE...
    snapshot router-a
    local l v
    for l in "$V4_L2" "$V6_L2"; do v=$(pf router-a "$l" latency-ms); isnum "$v" && fgt "$v" 50 || return 1; done
    for l in "$@"; do v=$(pf router-a "$l" loss-pct); isnum "$v" && ! fgt "$v" 0.9 || return 1; done
  }
  all_ready() { latency_ready "$V4_L1" "$V6_L1" "$V4_L2" "$V6_L2"; }
  link1_ready() { latency_ready "$V4_L1" "$V6_L1"; }
  t=$(date +%s.%N)
  ready=1; wait_until 60 all_ready || { wait_until 30 link1_ready || ready=0; }
  note "  link 2 latency > 50 ms and link 1 loss <= 0.9 % after $(since "$t") s (ready=$ready; link 2 loss v4=$(pf router-a "$V4_L2" loss-pct)% v6=$(pf router-a "$V6_L2" loss-pct)%); hold-down ${HOLD_DOWN} s + 1 s"
  sleep $((HOLD_DOWN + 1))
  snapshot router-a; show_metrics
  why=""; figs=""
  [ $ready = 1 ] || why="$why link test never showed link 2 slow and link 1 loss-free;"
  for f in "voice 10.2.0.10 1" "voice fd00:2::10 1"; do
    set -- $f
    run_flow "$1" "$2" 5301
    on_link "$3" || why="$why $1 $2 not all on link $3 (link1 a2b=$L1A link2 a2b=$L2A);"
    figs="$figs | $1 $2 link1/link2 a2b=$L1A/$L2A b2a=$L1B/$L2B echoed $F_RECV/$F_SENT"
  done
  good=1; [ -z "$why" ] || good=0
  verdict latency "$good" "link2 latency v4=$(pf router-a "$V4_L2" latency-ms)ms v6=$(pf router-a "$V6_L2" latency-ms)ms, link1 latency v4=$(pf router-a "$V4_L1" latency-ms)ms; loss link1 $(pf router-a "$V4_L1" loss-pct)/$(pf router-a "$V6_L1" loss-pct)% link2 $(pf router-a "$V4_L2" loss-pct)/$(pf router-a "$V6_L2" loss-pct)%$figs${why:+ | why:$why}"
fi

# ------------------------------------------------------------------ tcp
if [[ " $CASES " == *" tcp "* ]]; then
  note "case tcp: iperf3 to bulk on link 1, link 1 goes down after 3 s"
  mp_heal 1; mp_heal 2
  mp_link 1 up; mp_link 2 up
  wait_until 20 in_service_all || note "  warning: not every path in service before the TCP case"
  detect=$(pf router-a "$V4_L1" detection-ms); isnum "$detect" && [ "$detect" -gt 0 ] || detect=3000
  snapshot router-b
  moved0=$(sc router-a "svr svr_session_moved"); movedb0=$(sc router-b "svr svr_session_moved")
  rm -f "$RUN/iperf-server.json" "$RUN/iperf-client.json"
  ip netns exec mp-host-b timeout $((IPERF_SECONDS + 30)) iperf3 -s -1 -i 0.1 -J > "$RUN/iperf-server.json" 2>&1 &
  srv=$!; BG="$BG $srv"
  sleep 0.5
  read -r -a c0 <<<"$(link_counts bytes)"
  ip netns exec mp-host-a timeout $((IPERF_SECONDS + 25)) iperf3 -c 10.2.0.20 -t "$IPERF_SECONDS" -b "$IPERF_RATE" -i 0.1 -J > "$RUN/iperf-client.json" 2>&1 &
  cli=$!; BG="$BG $cli"
  sleep 3
  read -r -a c1 <<<"$(link_counts bytes)"
  mp_link 1 down
  t_down=$(date +%s.%N)
  crc=0; wait "$cli" || crc=$?
  wait "$srv" 2>/dev/null || true
  read -r -a c2 <<<"$(link_counts bytes)"
  snapshot router-a; snapshot router-b
  moved=$(( $(sc router-a "svr svr_session_moved") - moved0 )); movedb=$(( $(sc router-b "svr svr_session_moved") - movedb0 ))
  pre1=$((c1[0] - c0[0])); pre2=$((c1[2] - c0[2])); post1=$((c2[0] - c1[0])); post2=$((c2[2] - c1[2]))
  res=$(python3 - "$RUN/iperf-server.json" "$RUN/iperf-client.json" <<'EOF'
import json, sys
def load(p):
    try:
        return json.load(open(p))
    except Exception as e:
        return {"error": f"unreadable {p}: {e}"}
s, c = load(sys.argv[1]), load(sys.argv[2])
err = c.get("error") or s.get("error") or ""
iv = [(i["sum"]["start"], i["sum"]["end"], i["sum"]["bytes"]) for i in s.get("intervals", [])]
nz = [k for k, x in enumerate(iv) if x[2] > 0]
gap_lo = gap_hi = 0.0
after = 0
if nz:
    best = (0.0, None)
    for a, b in zip(nz, nz[1:]):
        span = iv[b][0] - iv[a][1]          # seconds of whole intervals without a byte
        if span > best[0]:
            best = (span, b)
    gap_lo, gap_hi = best[0], best[0] + (iv[nz[0]][1] - iv[nz[0]][0]) * 2
    if best[1] is not None:
        after = sum(x[2] for x in iv[best[1]:])
rx = c.get("end", {}).get("sum_received", {}).get("bytes", 0)
retr = c.get("end", {}).get("sum_sent", {}).get("retransmits", -1)
mbps = c.get("end", {}).get("sum_received", {}).get("bits_per_second", 0) / 1e6
print(f"{gap_lo:.2f} {gap_hi:.2f} {after} {rx} {retr} {mbps:.1f} {len(iv)} err={err.replace(' ', '_') or 'none'}")
EOF
)
  read -r gap_lo gap_hi after rx retr mbps nint errf <<<"$res"
  gap=$(awk -v a="$gap_lo" -v b="$gap_hi" 'BEGIN{printf "%.2f", (a+b)/2}')
  bound=$(awk -v d="$detect" 'BEGIN{printf "%.2f", d/1000 + 1}')
  why=""
  [ "$crc" = 0 ] && [ "$errf" = err=none ] || why="$why iperf3 failed (exit $crc, $errf);"
  [ "$pre1" -gt $((pre2 * 10)) ] || why="$why before the link loss TCP was not on link 1 (bytes link1=$pre1 link2=$pre2);"
  [ "$post2" -gt 100000 ] || why="$why no TCP bytes on link 2 after the link loss ($post2);"
  [ "$after" -gt 0 ] || why="$why no bytes received after the gap;"
  [ "$moved" -ge 1 ] || why="$why router-a svr_session_moved did not move;"
  fgt "$gap" "$bound" && why="$why gap $gap s > bound $bound s;"
  good=1; [ -z "$why" ] || good=0
  verdict tcp "$good" "gap=${gap}s (0.1 s intervals without a byte: ${gap_lo}-${gap_hi}s) bound=${bound}s (detection ${detect} ms + 1 s); iperf3 exit=$crc $errf ${mbps} Mbit/s received=$rx B retransmits=$retr, bytes after the gap=$after; TCP bytes a2b before: link1=$pre1 link2=$pre2, after link-down: link1=$post1 link2=$post2; svr_session_moved router-a +$moved router-b +$movedb${why:+ | why:$why}"
fi

# ------------------------------------------------------------------ revert
# Two live single-session UDP flows at once, one per family so that the ISPs' per-family
# counters tell them apart: a bulk-revert flow (revertible-failover) and a bulk flow (failover),
# both on link 1 by their vector. Link 1 goes down (both move to link 2), then comes back: after
# BFD, the hold-down and the revert hold-down, the revertible flow is on link 1 again and the
# failover flow stays on link 2. Two rounds: revert over IPv4 / failover over IPv6, then the
# other way round.
if [[ " $CASES " == *" revert "* ]]; then
  note "case revert: bulk-revert (revertible-failover) returns to link 1 after it recovers; bulk (failover) stays on link 2"
  mp_heal 1; mp_heal 2; mp_link 1 up; mp_link 2 up
  wait_until 20 in_service_all || note "  warning: not every path in service before the revert case"
  why=""; figs=""
  for round in "10.2.0.21 fd00:2::20 v4 v6" "fd00:2::21 10.2.0.20 v6 v4"; do
    set -- $round
    rdst=$1 fdst=$2 rf=$3 ff=$4
    secs=24
    pids=""
    for d in "$rdst" "$fdst"; do
      ip netns exec mp-host-a timeout $((secs + 10)) python3 "$TB_DIR/udp_flow.py" stream "$d" 5301 \
        $((50 * secs)) 50 $((50 * secs)) 200 > "$RUN/revert-$d.flow" &
      pids="$pids $!"
    done
    BG="$BG $pids"
    sleep 2
    read -r -a c0 <<<"$(fam_counts)"; sleep 2; read -r -a c1 <<<"$(fam_counts)"
    before="$(fam_window c0 c1)"
    fa=$(lines router-a)
    mp_link 1 down
    sleep 5
    read -r -a c2 <<<"$(fam_counts)"; sleep 2; read -r -a c3 <<<"$(fam_counts)"
    during="$(fam_window c2 c3)"
    fa=$(lines router-a)
    mp_link 1 up
    t_up=$(date +%s.%N)
    back=1
    wait_log router-a "path=10\.91\.0\.1->10\.91\.0\.2 event=path-in-service" 25 "$fa" || back=0
    wait_log router-a "path=fd00:91::1->fd00:91::2 event=path-in-service" 10 "$fa" || back=0
    t_back=$(since "$t_up")
    # hold-down (BFD up to told) + revert hold-down + one packet interval, with margin.
    sleep $((2 * HOLD_DOWN + 2))
    read -r -a c4 <<<"$(fam_counts)"; sleep 3; read -r -a c5 <<<"$(fam_counts)"
    after="$(fam_window c4 c5)"
    for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    figs="$figs | revert $rdst / failover $fdst: link1/link2 a2b per family (v4 v6) before [$before] link1 down [$during] after link1 back ${t_back}s [$after]"
    [ $back = 1 ] || why="$why link 1 paths not back in service;"
    fam_on "$before" "$rf" 1 || why="$why $rdst not on link 1 before;"
    fam_on "$before" "$ff" 1 || why="$why $fdst not on link 1 before;"
    fam_on "$during" "$rf" 2 || why="$why $rdst not on link 2 while link 1 was down;"
    fam_on "$during" "$ff" 2 || why="$why $fdst not on link 2 while link 1 was down;"
    fam_on "$after" "$rf" 1 || why="$why revertible $rdst did not return to link 1;"
    fam_on "$after" "$ff" 2 || why="$why failover $fdst did not stay on link 2;"
  done
  good=1; [ -z "$why" ] || good=0
  verdict revert "$good" "revertible-failover returns, failover stays$figs${why:+ | why:$why}"
fi

# ------------------------------------------------------------------ dup
# 20 % loss on link 1 from router-a to router-b. A UDP flow to the dup service
# (packet-duplication: every packet on both links) gets every datagram through, and router-b
# drops the second copies as svr_duplicate_dropped; the same flow to bulk (link 1 only) is the
# control and loses about a fifth.
if [[ " $CASES " == *" dup "* ]]; then
  note "case dup: packet-duplication under 20 % loss on link 1 (a2b)"
  mp_heal 1; mp_heal 2; mp_link 1 up; mp_link 2 up
  wait_until 20 in_service_all || note "  warning: not every path in service before the dup case"
  mp_impair 1 a2b loss=20
  why=""; figs=""
  snapshot router-b
  dup0=$(sc router-b "drop svr_duplicate_dropped")
  for f in "dup 10.2.0.40" "dup fd00:2::40"; do
    set -- $f
    run_flow "$1" "$2" 5301
    [ "$F_SENT" -gt 0 ] && [ "$F_RECV" = "$F_SENT" ] || why="$why $1 $2 echoed $F_RECV/$F_SENT;"
    # Every datagram on both links: the ISP counts after its loss rule, so link 1 sees about
    # 80 % of them, link 2 all.
    if [ "$L1A" -lt $((F_SENT * 7 / 10)) ] || [ "$L2A" -lt $((F_SENT * 9 / 10)) ]; then
      why="$why $1 $2 not on both links (link1 a2b=$L1A link2 a2b=$L2A);"
    fi
    figs="$figs | $1 $2 echoed $F_RECV/$F_SENT, link1/link2 a2b=$L1A/$L2A b2a=$L1B/$L2B"
  done
  snapshot router-b
  dup=$(( $(sc router-b "drop svr_duplicate_dropped") - dup0 ))
  [ "$dup" -gt 0 ] || why="$why router-b svr_duplicate_dropped did not move;"
  run_flow control 10.2.0.20 5301
  figs="$figs | control bulk 10.2.0.20 (link 1 only) echoed $F_RECV/$F_SENT"
  mp_heal 1
  good=1; [ -z "$why" ] || good=0
  verdict dup "$good" "router-b svr_duplicate_dropped +$dup$figs${why:+ | why:$why}"
fi

# ------------------------------------------------------------------ both-down
if [[ " $CASES " == *" both-down "* ]]; then
  note "case both-down: a live voice session while every link goes down, then link 1 returns"
  ps_zero() {
    snapshot router-a; snapshot router-b
    [ "$(sc router-a "slowpath peer_paths_in_service")" = 0 ] && [ "$(sc router-b "slowpath peer_paths_in_service")" = 0 ]
  }
  secs=32
  rm -f "$RUN/both-echo.log"
  ip netns exec mp-host-a timeout $((secs + 10)) python3 "$TB_DIR/udp_flow.py" stream 10.2.0.10 5301 $((50 * secs)) 50 $((50 * secs)) 200 "$RUN/both-echo.log" > "$RUN/both.flow" &
  st=$!; BG="$BG $st"
  sleep 2
  snapshot router-a
  ps_before=$(sc router-a "slowpath peer_paths_in_service")
  drop0=$(sc router-a "drop svr_path_out_of_service")
  mp_link 1 down; mp_link 2 down
  t_down=$(date +%s.%N)
  zero=1; wait_until 12 ps_zero || zero=0
  t_zero=$(since "$t_down")
  psa=$(sc router-a "slowpath peer_paths_in_service"); psb=$(sc router-b "slowpath peer_paths_in_service")
  sleep 1
  fa=$(lines router-a)
  mp_link 1 up
  t_up=$(date +%s.%N)
  back=1; wait_log router-a "path=10\.91\.0\.1->10\.91\.0\.2 event=path-in-service" 25 "$fa" || back=0
  t_back=$(since "$t_up")
  wait "$st" 2>/dev/null || true
  snapshot router-a
  drop=$(( $(sc router-a "drop svr_path_out_of_service") - drop0 ))
  res=$(python3 - "$RUN/both-echo.log" "$t_down" "$t_up" <<'EOF'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()] if sys.argv[1] else []
t_down, t_up = float(sys.argv[2]), float(sys.argv[3])
before = sum(1 for r in rows if r[2] < t_down)
during = sum(1 for r in rows if t_down + 0.5 < r[2] < t_up)
after = sorted(r[2] for r in rows if r[2] > t_up)
first = f"{after[0] - t_up:.2f}" if after else "none"
print(f"{before} {during} {len(after)} {first}")
EOF
)
  read -r e_before e_during e_after resume <<<"$res"
  # A new IPv6 voice session after the return.
  new6=$(ip netns exec mp-host-a timeout 30 python3 "$TB_DIR/udp_flow.py" send fd00:2::10 5301 20 200 || echo 0)
  why=""
  [ $zero = 1 ] || why="$why peer_paths_in_service not 0 on both routers within 12 s (router-a=$psa router-b=$psb);"
  [ $back = 1 ] || why="$why router-a's link 1 IPv4 path not back in service 25 s after link-up;"
  [ "$e_after" -gt 0 ] || why="$why the live voice session got no echo after link 1 returned;"
  [ "${new6:-0}" -ge 18 ] || why="$why new IPv6 voice session: $new6/20 echoed;"
  good=1; [ -z "$why" ] || good=0
  verdict both-down "$good" "peer_paths_in_service before=$ps_before, after both links down: router-a=$psa router-b=$psb (after ${t_zero}s); link 1 IPv4 path in service ${t_back}s after link-up; live session echoes: before=$e_before while down=$e_during after=$e_after, first ${resume}s after link-up; drop svr_path_out_of_service +$drop; new IPv6 session $new6/20 echoed; flow $(head -n 1 "$RUN/both.flow" 2>/dev/null)${why:+ | why:$why}"
fi

# ------------------------------------------------------------------ summary
snapshot router-a
note "svr session_moved router-a=$(sc router-a "svr svr_session_moved"), total $(since "$T0") s"
failed=0
echo "[$ZT_TAG] summary (known gaps: ${KNOWN_GAPS:-none}):"
for c in "${ORDER[@]}"; do
  r=${RESULT[$c]}
  if [[ " $KNOWN_GAPS " == *" $c "* ]]; then
    [ "$r" = PASS ] && r=XPASS || r=XFAIL
  elif [ "$r" = FAIL ]; then
    failed=1
  fi
  if [ "$r" = FAIL ]; then echo "[$ZT_TAG]   $r $c: ${DETAIL[$c]}"; else echo "[$ZT_TAG]   $r $c"; fi
done
[ $failed = 0 ] || { echo "[$ZT_TAG] FAIL"; exit 1; }
echo "[$ZT_TAG] PASS"
