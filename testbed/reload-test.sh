#!/usr/bin/env bash
# Live reconfiguration test (issue 10 item 3): `svrctl reload` and SIGHUP on two zero-trust
# routers (router-a-zt.yaml / router-b-zt.yaml, fresh PKI, test-time-scale 360) under a
# steady UDP flow host-a -> host-b:5001 (50 datagrams/s for 24 s, one session, every datagram
# echoed). The routers start with 720 h rekey intervals (2 h at 360x: no rotation during the
# test). Asserted:
#   (d) a reload with a bad file (an invalid value) is refused with the field path and the
#       same message as `svrd --check`; the revision, the config and the counters of applied
#       reloads do not move; a `config.rejected` event is recorded;
#   (e) a reload changing a non-live field (core-map.workers) is refused naming it;
#   (a) a new service site-b-host (10.2.0.3/32) added on both routers (router-b by
#       `svrctl reload`, router-a by SIGHUP (f)): a new flow to 10.2.0.3 is a site-b-host
#       session in `show sessions --json`, where before the reload it was site-b; the steady
#       flow's session keeps its UUID and service;
#   (b) the same reload sets peer-key-rekey-interval to 1 h (10 s at 360x): the peer-key index
#       moves within 12 s, and again within the next 12 s;
#   (g) and BFD timers 1000/500 ms -> 300/300 ms on both routers: router-a sends BFD at least
#       twice as often afterwards (a Poll Sequence with the real peer), no path leaves service;
#   (f) SIGHUP reloads like `svrctl reload` (config.reloaded event, revision 2); a second
#       SIGHUP with the file unchanged is a reload with no change (revision stays);
#   (c) not one datagram of the steady flow is lost across it all.
# Run as root under the testbed lock:  flock /tmp/testbed.lock testbed/reload-test.sh
# SVRD (default target/release/svrd) and SVRCTL (default: svrctl beside SVRD) may be given.
set -euo pipefail
TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed.sh
source "$TB_DIR/testbed.sh"
ZT_TAG=reload
# shellcheck source=zt-lib.sh
source "$TB_DIR/zt-lib.sh"
SVRD=${SVRD:-$ROOT/target/release/svrd}
SVRCTL=${SVRCTL:-$(dirname "$SVRD")/svrctl}
[ -x "$SVRD" ] || fail "$SVRD is missing (cargo build --release -p svrd -p svr-mgmt)"
[ -x "$SVRCTL" ] || fail "$SVRCTL is missing (cargo build --release -p svr-mgmt)"
OUT=$RUN/reload
BG=""

cleanup() {
  local p
  for p in $BG; do kill "$p" 2>/dev/null || true; done
  for p in $BG; do wait "$p" 2>/dev/null || true; done
  tb_down
}
trap cleanup EXIT

ctl() { "$SVRCTL" --router "$@"; }          # ctl ROUTER ARGS...
py() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
stat_of() { # stat_of ROUTER NAME: one counter's value
  ctl "$1" --json show stats "$2" | py "print([s['value'] for s in d['stats'] if s['name']=='$2'][0])"
}
revision() { ctl "$1" --json show config | py 'print(d["config"]["revision"])'; }
peer_key_index() { ctl "$1" --json show peers security | py 'print(d["peers"][0]["security"]["peer_key_index"])'; }
# session_service ROUTER DST PORT: service of the session to DST:PORT
session_service() {
  ctl "$1" --json show sessions | py "
ss=[s for s in d['sessions'] if s['destination']=='$2' and s['destination_port']==$3]
print(ss[0]['service'] if ss else 'none')"
}
session_uuid() {
  ctl "$1" --json show sessions | py "
ss=[s for s in d['sessions'] if s['destination']=='$2' and s['destination_port']==$3]
print(ss[0]['uuid'] if ss else 'none')"
}

# ---------------------------------------------------------------- setup
tb_up
mkdir -p "$OUT"
zt_make_pki
# host-b answers on a second address too: the destination the new service will match.
ip netns exec host-b ip addr add 10.2.0.3/24 dev eth0
SLOW='s/rekey-interval: 1 /rekey-interval: 720 /'
derive "$TB_DIR/router-a-zt.yaml" "$RUN/reload-a.yaml" "$SLOW"
derive "$TB_DIR/router-b-zt.yaml" "$RUN/reload-b.yaml" "$SLOW"
grep -q "peer-key-rekey-interval: 720 " "$RUN/reload-a.yaml" || fail "could not set the rekey interval"
CONF_A=$RUN/reload-a.yaml CONF_B=$RUN/reload-b.yaml tb_start
both_in_service 0 0 20
ok "router-a and router-b peered, every path in service"
[ "$(revision router-a)" = 1 ] || fail "revision at start is not 1"

# ---------------------------------------------------------------- steady flow
COUNT=1200 RATE=50
ip netns exec host-b timeout 40 python3 "$TB_DIR/udp_flow.py" serve 10.2.0.2 5001 38 &
BG="$BG $!"
ip netns exec host-b timeout 40 python3 "$TB_DIR/udp_flow.py" serve 10.2.0.3 5002 38 &
BG="$BG $!"
sleep 0.3
ip netns exec host-a timeout 40 python3 "$TB_DIR/udp_flow.py" stream 10.2.0.2 5001 "$COUNT" "$RATE" "$COUNT" > "$OUT/flow.txt" &
FLOW=$!
BG="$BG $FLOW"
T0=$(date +%s.%N)
sleep 2
UUID=$(session_uuid router-a 10.2.0.2 5001)
[ "$UUID" != none ] || fail "no session for the steady flow"
[ "$(session_service router-a 10.2.0.2 5001)" = site-b ] || fail "steady flow is not site-b"
# A short flow to 10.2.0.3 before the reload: site-b (10.2.0.0/24).
got=$(ip netns exec host-a timeout 10 python3 "$TB_DIR/udp_flow.py" send 10.2.0.3 5002 3 100)
[ "$got" -eq 3 ] || fail "flow to 10.2.0.3 before the reload: $got of 3 echoed"
[ "$(session_service router-a 10.2.0.3 5002)" = site-b ] || fail "10.2.0.3 is not site-b before the reload"
ok "steady flow $UUID (site-b) running; 10.2.0.3 is site-b"

# ---------------------------------------------------------------- (d) a bad file
BAD=$OUT/bad-a.yaml
sed 's/desired-tx-interval: 1000        # ms/desired-tx-interval: 5ms/' "$RUN/reload-a.yaml" > "$BAD"
cmp -s "$BAD" "$RUN/reload-a.yaml" && fail "bad file is not different"
want=$("$SVRD" --check "$BAD" 2>&1 | sed 's/^svrd: error: //') && fail "svrd --check accepted the bad file"
applied=$(stat_of router-a slowpath.config_reloads)
rejected=$(stat_of router-a slowpath.config_reloads_rejected)
before_cfg=$(ctl router-a --json show config | py 'print(json.dumps(d["config"]["config"], sort_keys=True))')
if ctl router-a reload "$BAD" > "$OUT/bad.txt" 2>&1; then fail "reload of a bad file was accepted"; fi
grep -q "authority.router\[0\].bfd.desired-tx-interval" "$OUT/bad.txt" || fail "bad file: no field path in: $(cat "$OUT/bad.txt")"
grep -qF "$want" "$OUT/bad.txt" || fail "bad file: not the message of svrd --check ($want): $(cat "$OUT/bad.txt")"
ctl router-a --json reload "$BAD" > "$OUT/bad.json" 2>/dev/null && fail "reload --json of a bad file was accepted"
py 'assert d["error"]["kind"]=="refused" and "desired-tx-interval" in d["error"]["message"], d' < "$OUT/bad.json" || fail "bad file --json: $(cat "$OUT/bad.json")"
sleep 0.6
[ "$(revision router-a)" = 1 ] || fail "bad file moved the revision"
[ "$(stat_of router-a slowpath.config_reloads)" = "$applied" ] || fail "bad file counted as applied"
[ "$(stat_of router-a slowpath.config_reloads_rejected)" = $((rejected + 2)) ] || fail "bad file not counted as rejected"
after_cfg=$(ctl router-a --json show config | py 'print(json.dumps(d["config"]["config"], sort_keys=True))')
[ "$before_cfg" = "$after_cfg" ] || fail "bad file changed the running config"
ctl router-a --json show events --type config.rejected | py 'e=d["events"]; assert len(e)==2 and e[-1]["type"]=="config.rejected" and "desired-tx-interval" in e[-1]["line"], e' || fail "no config.rejected event"
ok "(d) bad file refused: $(cat "$OUT/bad.txt")"

# ---------------------------------------------------------------- (e) a non-live field
CORE=$OUT/core-a.yaml
sed '0,/                cpu: 1/s//                cpu: 0/' "$RUN/reload-a.yaml" > "$CORE"
"$SVRD" --check "$CORE" >/dev/null || fail "core-map edit does not check"
if ctl router-a reload "$CORE" > "$OUT/core.txt" 2>&1; then fail "core-map change was accepted"; fi
grep -q "authority.router\[0\].node\[0\].core-map.workers: cannot change while running (restart svrd)" "$OUT/core.txt" || fail "core-map: $(cat "$OUT/core.txt")"
[ "$(revision router-a)" = 1 ] || fail "refused change moved the revision"
ok "(e) non-live change refused: $(cat "$OUT/core.txt")"

# ---------------------------------------------------------------- (a) (b) (f) live changes
NEWSVC='s#^  router:$#    - name: site-b-host\n      tenant: blue\n      prefix: [10.2.0.3/32]\n      router: router-b\n\n  router:#'
FAST='s/rekey-interval: 720 /rekey-interval: 1 /'
BFD='s/desired-tx-interval: 1000/desired-tx-interval: 300/; s/required-min-rx-interval: 500/required-min-rx-interval: 300/'
for r in a b; do sed -i -e "$NEWSVC" -e "$FAST" -e "$BFD" "$RUN/reload-$r.yaml"; "$SVRD" --check "$RUN/reload-$r.yaml" >/dev/null || fail "edited reload-$r.yaml does not check"; done
grep -q "name: site-b-host" "$RUN/reload-a.yaml" || fail "service not added"
idx0=$(peer_key_index router-a)
bfd0=$(stat_of router-a slowpath.bfd_tx); sleep 3; bfd1=$(stat_of router-a slowpath.bfd_tx)
out_of_service() { cat "$RUN/router-a.log" "$RUN/router-b.log" | { grep -c "event=path-out-of-service" || true; }; }
oos=$(out_of_service)
# router-b (the egress of site-b-host) first, by the control socket, then router-a by SIGHUP.
ctl router-b reload > "$OUT/reload-b.txt" || fail "router-b reload: $(cat "$OUT/reload-b.txt")"
ctl router-b --json show config | py 'assert d["config"]["revision"]==2, d["config"]["revision"]' || fail "router-b revision"
grep -E "^router-b +2 +services, peer-timers, key-timers +$RUN/reload-b.yaml$" "$OUT/reload-b.txt" >/dev/null || fail "router-b reload table: $(cat "$OUT/reload-b.txt")"
from=$(lines router-a)
T_RELOAD=$(date +%s.%N)
kill -HUP "$(cat "$RUN/router-a.pid")"
wait_log router-a "event=config-reloaded revision=2 changes=services,peer-timers,key-timers file=$RUN/reload-a.yaml by=sighup" 5 "$from" || fail "(f) SIGHUP: no config-reloaded"
[ "$(revision router-a)" = 2 ] || fail "(f) revision after SIGHUP is not 2"
ctl router-a --json show events --type config.reloaded | py 'e=d["events"][-1]; assert e["type"]=="config.reloaded" and "revision=2" in e["line"] and "changes=services,peer-timers,key-timers" in e["line"], e' || fail "(f) event in show events"
ok "(f) SIGHUP reloaded router-a: $(sed -n "$((from + 1)),\$p" "$RUN/router-a.log" | grep -o 'event=config-reloaded.*' | head -1)"

got=$(ip netns exec host-a timeout 10 python3 "$TB_DIR/udp_flow.py" send 10.2.0.3 5002 3 100)
[ "$got" -eq 3 ] || fail "(a) flow to 10.2.0.3 after the reload: $got of 3 echoed"
svc=$(ctl router-a --json show sessions --service site-b-host | py "
ss=[s for s in d['sessions'] if s['destination']=='10.2.0.3']
assert ss and all(s['service']=='site-b-host' and s['tenant']=='blue' and s['peer']=='router-b' for s in ss), d
print(len(ss))") || fail "(a) no site-b-host session: $(ctl router-a show sessions)"
ctl router-b --json show sessions --service site-b-host | py 'assert d["matched"]>=1 and d["sessions"][0]["role"]=="egress", d' || fail "(a) router-b: no site-b-host egress session"
[ "$(session_uuid router-a 10.2.0.2 5001)" = "$UUID" ] || fail "the steady flow's session changed"
[ "$(session_service router-a 10.2.0.2 5001)" = site-b ] || fail "the steady flow's service changed"
ctl router-a show sessions > "$OUT/sessions-after.txt"
ok "(a) new flow to 10.2.0.3: $svc site-b-host session(s) on router-a, egress on router-b; steady flow $UUID still site-b"

# (b) the peer-key index moves within the new interval (10 s), and again.
idx1=$idx0
for _ in $(seq 1 120); do idx1=$(peer_key_index router-a); [ "$idx1" != "$idx0" ] && break; sleep 0.1; done
t1=$(date +%s.%N)
[ "$idx1" != "$idx0" ] || fail "(b) peer-key index still $idx0 12 s after the reload"
idx2=$idx1
for _ in $(seq 1 120); do idx2=$(peer_key_index router-a); [ "$idx2" != "$idx1" ] && break; sleep 0.1; done
t2=$(date +%s.%N)
[ "$idx2" != "$idx1" ] || fail "(b) peer-key index did not move again within 12 s ($idx1)"
ok "(b) peer-key index $idx0 -> $idx1 after $(python3 -c "print(f'{$t1-$T_RELOAD:.1f}')") s -> $idx2 after $(python3 -c "print(f'{$t2-$t1:.1f}')") s more (was 720 h = 2 h at 360x)"

# (g) BFD timers: the rate of router-a's BFD packets (both paths) before and after.
bfd2=$(stat_of router-a slowpath.bfd_tx); sleep 3; bfd3=$(stat_of router-a slowpath.bfd_tx)
[ $((bfd3 - bfd2)) -ge $((2 * (bfd1 - bfd0))) ] || fail "(g) BFD packets per 3 s: $((bfd1 - bfd0)) before, $((bfd3 - bfd2)) after"
oos1=$(out_of_service)
[ "$oos1" = "$oos" ] || fail "(g) a path left service during the reloads"
ok "(g) BFD 1000/500 ms -> 300/300 ms: router-a sent $((bfd1 - bfd0)) BFD packets in 3 s before, $((bfd3 - bfd2)) after; no path left service"

# (f) a SIGHUP with nothing changed: applied, revision stays.
from=$(lines router-a)
kill -HUP "$(cat "$RUN/router-a.pid")"
wait_log router-a "event=config-reloaded revision=2 changes=none" 5 "$from" || fail "(f) unchanged SIGHUP"
ok "(f) SIGHUP with the file unchanged: changes=none, revision 2"

# ---------------------------------------------------------------- (c) no loss
wait "$FLOW" || fail "the steady flow failed"
T1=$(date +%s.%N)
res=$(head -n 1 "$OUT/flow.txt")
echo "$res" | grep -qE "^sent=$COUNT received=$COUNT lost=0 flows=1$" || fail "(c) steady flow: $(cat "$OUT/flow.txt")"
ok "(c) steady flow across both reloads: $res ($(python3 -c "print(f'{$T1-$T0:.0f}')") s at $RATE/s)"
ctl router-a show events --type config > "$OUT/events.txt"
ctl router-a show stats slowpath.config > "$OUT/stats.txt"
cat "$OUT/stats.txt"
ok "PASS"
