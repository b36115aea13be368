#!/usr/bin/env bash
# Operations test (issue 10): svrctl and the Prometheus endpoint against two zero-trust
# routers (router-a-zt.yaml / router-b-zt.yaml, fresh PKI, test-time-scale 10: the 1 h rekey
# intervals are 6 min, so no key rotates by itself during the test, and a new peer key
# replaces the old one 3 s after the exchange) carrying traffic. Every svrctl command runs in table and
# JSON form and the test asserts the content:
#   - show peers / detail / security: router-b up with 2/2 paths and its software version (this
#     build's), BFD Up on both, keys valid,
#     peer-key index >= 1, our certificate's subject names router-a and is not expired;
#   - show sessions [--service] [--by-id]: a UDP session host-a -> host-b:5001 shows service
#     site-b, tenant blue, peer router-b and a waypoint pair 10.9.0.1->10.9.0.2 or
#     fd00:9::1->fd00:9::2, a forward and a reverse row each with at least the 20 datagrams
#     of the flow and their bytes (228 IP bytes each), an age and the 60 s UDP timeout, in
#     table and JSON form, on router-a (ingress) and router-b (egress);
#   - show stats [PREFIX]: drop counters move after garbage is sent to router-a's WAN;
#   - show events [--type]: peering-established is there;
#   - show config: the running file (router-a), nothing else;
#   - rekey peer: on the leader, the peer-key index goes up on both routers; on the follower,
#     the request is refused with kind "refused";
#   - clear sessions --service site-b: the sessions are gone;
#   - the socket is mode 0600 and refuses a non-root user; a malformed, an oversized, an
#     unknown-version and an unknown-command request each get an error answer, and svrd
#     still answers afterwards;
#   - GET /metrics (127.0.0.1:9464 in router-a's namespace): the peer-path and drop metrics
#     are there, `promtool check metrics` passes when promtool is installed, other paths 404;
#     a real Prometheus server scrapes it and its HTTP API returns a peer-path and a drop metric.
# Run as root under the testbed lock:  flock /tmp/testbed.lock testbed/ops-test.sh
# SVRD (default target/release/svrd) and SVRCTL (default: svrctl beside SVRD) may be given.
set -euo pipefail
TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed.sh
source "$TB_DIR/testbed.sh"
ZT_TAG=ops
# shellcheck source=zt-lib.sh
source "$TB_DIR/zt-lib.sh"
SVRD=${SVRD:-$ROOT/target/release/svrd}
SVRCTL=${SVRCTL:-$(dirname "$SVRD")/svrctl}
[ -x "$SVRD" ] || fail "$SVRD is missing (cargo build --release -p svrd -p svr-mgmt)"
[ -x "$SVRCTL" ] || fail "$SVRCTL is missing (cargo build --release -p svr-mgmt)"
OUT=$RUN/ops
SERVERS=""

cleanup() {
  # shellcheck disable=SC2086
  [ -n "$SERVERS" ] && kill $SERVERS 2>/dev/null
  tb_down
}
trap cleanup EXIT

ctl() { "$SVRCTL" --router "$@"; }          # ctl ROUTER ARGS...
# py 'EXPR' < json: run Python with the JSON document as d; a false assert fails the test.
py() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
# both ROUTER NAME ARGS...: the command in table and JSON form, saved as $OUT/NAME.{txt,json}
both() {
  local r=$1 name=$2; shift 2
  ctl "$r" "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err" || fail "svrctl $* (table) failed: $(cat "$OUT/$name.txt" "$OUT/$name.err")"
  ctl "$r" --json "$@" > "$OUT/$name.json" 2> "$OUT/$name.err" || fail "svrctl --json $* failed: $(cat "$OUT/$name.err")"
}
drops() { ctl router-a --json show stats drop. | py 'print(sum(s["value"] for s in d["stats"]))'; }

# ---------------------------------------------------------------- setup
tb_up
mkdir -p "$OUT"
zt_make_pki
# Key clock 10x (1 h rekey intervals: 6 min, no rotation by itself during the test; the 30 s
# switch-over to a new peer key: 3 s), and
# the metrics endpoint on loopback in each router's namespace. The control socket is the
# default, /var/run/dpdk/<file-prefix>/svrd.sock.
MGMT='s#^          neighbor: \[\]#          neighbor: []\n          management:\n            metrics-listen: "127.0.0.1:9464"#'
derive "$TB_DIR/router-a-zt.yaml" "$RUN/ops-a.yaml" 's/test-time-scale: 360/test-time-scale: 10/' "$MGMT"
derive "$TB_DIR/router-b-zt.yaml" "$RUN/ops-b.yaml" 's/test-time-scale: 360/test-time-scale: 10/' "$MGMT"
"$SVRD" --check "$RUN/ops-a.yaml" >/dev/null || fail "ops-a.yaml does not check"
CONF_A=$RUN/ops-a.yaml CONF_B=$RUN/ops-b.yaml tb_start
both_in_service 0 0 20
ok "router-a and router-b peered, every path in service"

SOCK_A=/var/run/dpdk/router-a/svrd.sock
[ -S "$SOCK_A" ] || fail "no control socket at $SOCK_A"
mode=$(stat -c %a "$SOCK_A")
[ "$mode" = 600 ] || fail "control socket mode $mode, not 600"
ok "control socket $SOCK_A, mode $mode"

# Traffic: a UDP flow host-a -> host-b:5001 (its session lives 60 s idle) and pings.
ip netns exec host-b timeout 30 python3 "$TB_DIR/udp_flow.py" serve 10.2.0.2 5001 20 &
SERVERS="$!"
sleep 0.3
got=$(ip netns exec host-a timeout 15 python3 "$TB_DIR/udp_flow.py" send 10.2.0.2 5001 20 200) || fail "UDP flow"
[ "$got" -eq 20 ] || fail "UDP flow: only $got of 20 echoed"
ip netns exec host-a ping -c 3 -i 0.2 -W 2 fd00:2::2 >/dev/null || fail "ping fd00:2::2"
ok "traffic: UDP 20/20 echoed, ping over IPv6"

# ---------------------------------------------------------------- show peers
both router-a peers show peers
# The peer's version comes from its sealed key-exchange blocks; both routers run this build.
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
grep -E "^router-b\.testbed\.svr +router-b +${VERSION//./\\.} +2/2 +up " "$OUT/peers.txt" >/dev/null || fail "show peers: $(cat "$OUT/peers.txt")"
py 'p=d["peers"][0]; assert (p["name"],p["status"],p["paths_up"],p["paths_total"],p["version"])==("router-b","up",2,2,"'"$VERSION"'"), p' < "$OUT/peers.json" || fail "show peers --json"
ok "show peers: router-b up, 2/2 paths, version $VERSION"

both router-a peers-detail show peers detail
[ "$(grep -cE "^router-b +(10\.9\.0\.1|fd00:9::1) +(10\.9\.0\.2|fd00:9::2) +Up +in " "$OUT/peers-detail.txt")" = 2 ] || fail "show peers detail: $(cat "$OUT/peers-detail.txt")"
py 'ps=d["peers"][0]["paths"]; assert len(ps)==2 and all(p["bfd_state"]=="Up" and p["in_service"] for p in ps), ps' < "$OUT/peers-detail.json" || fail "show peers detail --json"
ok "show peers detail: both paths BFD Up, in service"

both router-a peers-security show peers security
py '
import time
s=d["peers"][0]["security"]; c=s["local_certificate"]
assert s["key_state"]=="valid" and s["peer_key_index"]>=1, s
assert "router-a.testbed.svr" in c["subject"] and c["not_after_unix"]>time.time(), c
assert "router-b.testbed.svr" in s["peer_certificate"]["subject"], s
assert not any(k in json.dumps(d).lower() for k in ("secret", "key_bytes")), d' < "$OUT/peers-security.json" || fail "show peers security --json"
grep -q "valid" "$OUT/peers-security.txt" && grep -q "CN=router-a.testbed.svr" "$OUT/peers-security.txt" || fail "show peers security: $(cat "$OUT/peers-security.txt")"
ROLE_A=$(py 'print(d["peers"][0]["role"])' < "$OUT/peers-security.json")
ok "show peers security: keys valid, certificates shown, router-a is the $ROLE_A"

# ---------------------------------------------------------------- show sessions
both router-a sessions show sessions --service site-b
py '
ss=[s for s in d["sessions"] if s["protocol"]=="udp" and s["destination_port"]==5001]
assert ss, d
s=ss[0]
assert (s["service"],s["tenant"],s["peer"],s["role"],s["destination"])==("site-b","blue","router-b","ingress","10.2.0.2"), s
assert s["path"] in ("10.9.0.1->10.9.0.2","fd00:9::1->fd00:9::2"), s
assert all(x["service"]=="site-b" for x in d["sessions"]), d' < "$OUT/sessions.json" || fail "show sessions --service site-b --json: $(cat "$OUT/sessions.json")"
grep -E " fwd +site-b +blue +udp +10\.1\.0\.2:[0-9]+ +10\.2\.0\.2:5001 +ingress +router-b " "$OUT/sessions.txt" >/dev/null || fail "show sessions table: $(cat "$OUT/sessions.txt")"
UUID=$(py 'print([s for s in d["sessions"] if s["destination_port"]==5001][0]["uuid"])' < "$OUT/sessions.json")
# The flow's counters: 20 datagrams each way (200 B of payload: 228 IP bytes), an age, the
# 60 s UDP timeout (`session-timeouts` default) and time left; the same on both routers.
# sessions_ok ROUTER ROLE PEER LOCAL-WP-PREFIX: the session $UUID in table and JSON form on
# ROUTER (the path is local->remote waypoint: 10.9.0.1->10.9.0.2 on router-a, the other way
# on router-b).
sessions_ok() {
  local r=$1 role=$2 peer=$3 me=$4 other=$((3 - $4))
  both "$r" "session-$r" show sessions --by-id "$UUID"
  py "
s=d['sessions'][0]
assert d['matched']==1 and s['uuid']=='$UUID' and s['role']=='$role', d
assert s['service']=='site-b' and s['peer']=='$peer', s
assert s['path'] in ('10.9.0.$me->10.9.0.$other','fd00:9::$me->fd00:9::$other'), s
for k in ('forward','reverse'):
    assert s[k]['packets']>=20 and s[k]['bytes']>=20*228, (k, s)
assert s['age_ms']>0 and s['age_ms']>=s['idle_ms'], s
assert s['timeout_s']==60 and 0<s['expires_in_ms']<=60000, s" < "$OUT/session-$r.json" || fail "$r: show sessions --by-id --json: $(cat "$OUT/session-$r.json")"
  # Two rows, fwd (client -> server) and rev (server -> client): packets and bytes >= the
  # flow's, then age, idle, timeout 1m 0s and time left.
  local n='[0-9]+' dur='([0-9]+[dhm] )*[0-9.]+s'
  for row in "fwd +site-b +blue +udp +10\.1\.0\.2:$n +10\.2\.0\.2:5001 " "rev +site-b +blue +udp +10\.2\.0\.2:5001 +10\.1\.0\.2:$n "; do
    line=$(grep -E "^$UUID +$row+$role +$peer " "$OUT/session-$r.txt") || fail "$r: show sessions --by-id: no row /$row/: $(cat "$OUT/session-$r.txt")"
    echo "$line" | grep -qE " $n +$n +$dur +[0-9.]+s +1m 0s +$dur\$" || fail "$r: show sessions row: $line"
    # shellcheck disable=SC2001
    read -r pk by <<< "$(echo "$line" | sed -E "s/.* ($n) +($n) +$dur +[0-9.]+s +1m 0s +$dur\$/\1 \2/")"
    [ "$pk" -ge 20 ] && [ "$by" -ge $((20 * 228)) ] || fail "$r: show sessions row: $pk packets, $by bytes: $line"
  done
}
sessions_ok router-a ingress router-b 1
# router-b sees the same session as egress, with the same UUID.
sessions_ok router-b egress router-a 2
cp "$OUT/session-router-a.json" "$OUT/session-by-id.json"
ok "show sessions: UDP session $UUID, service site-b, path $(py 'print(d["sessions"][0]["path"])' < "$OUT/session-by-id.json"), $(py 's=d["sessions"][0]; print("fwd %d pkts/%d B, rev %d pkts/%d B, age %d ms, timeout %d s" % (s["forward"]["packets"], s["forward"]["bytes"], s["reverse"]["packets"], s["reverse"]["bytes"], s["age_ms"], s["timeout_s"]))' < "$OUT/session-by-id.json"); egress on router-b: $(py 's=d["sessions"][0]; print("fwd %d pkts, rev %d pkts" % (s["forward"]["packets"], s["reverse"]["packets"]))' < "$OUT/session-router-b.json")"

# ---------------------------------------------------------------- show stats
both router-a stats show stats
grep -qE "^port\.wan\.rx_packets +[1-9]" "$OUT/stats.txt" || fail "show stats: no port.wan.rx_packets"
py 'n=[s["name"] for s in d["stats"]]; assert "drop.svr_bad_metadata" in n and "slowpath.bfd_rx" in n and "worker.0.rx" in n, n' < "$OUT/stats.json" || fail "show stats --json"
before=$(drops)
mac=$(ip netns exec router-a cat /sys/class/net/ra-wan/address)
ip netns exec router-b python3 "$TB_DIR/garbage.py" rb-wan "$mac" 5 >/dev/null
sleep 0.5
after=$(drops)
[ "$after" -gt "$before" ] || fail "drop counters did not move after garbage on the WAN ($before -> $after)"
both router-a stats-drop show stats drop.
py 'assert all(s["name"].startswith("drop.") for s in d["stats"]), d' < "$OUT/stats-drop.json" || fail "show stats drop. --json"
ok "show stats: drops $before -> $after after garbage sent to router-a's WAN ($(grep -E ' [1-9][0-9]*$' "$OUT/stats-drop.txt" | awk '{print $1"="$2}' | paste -sd' '))"

# ---------------------------------------------------------------- interfaces, runtime, reset point
both router-a interfaces show interfaces
grep -qE '^wan +[1-9]' "$OUT/interfaces.txt" || fail "show interfaces: $(cat "$OUT/interfaces.txt")"
py 'i={x["name"]:x["counters"] for x in d["interfaces"]}; assert i["wan"]["rx_packets"]>0 and "rx_ring_drops" in i["wan"] and "lan" in i, i' < "$OUT/interfaces.json" || fail "show interfaces --json"
both router-a runtime show runtime
py 'r=d["runtime"]; assert any(x["stage"]=="crypto" and x["packets"]>0 and x["clocks_per_packet"]>0 for x in r), r' < "$OUT/runtime.json" || fail "show runtime --json"
grep -qE '^0 +total ' "$OUT/runtime.txt" || fail "show runtime: no total line: $(cat "$OUT/runtime.txt")"
ctl router-a clear stats > "$OUT/clear-stats.txt" || fail "clear stats"
launch=$(ctl router-a --json show stats --since-launch port.wan.rx_packets | py 'assert d["since"]=="launch", d; print(d["stats"][0]["value"])') || fail "show stats --since-launch"
since=$(ctl router-a --json show stats port.wan.rx_packets | py 'assert d["since"].startswith("reset at"), d; print(d["stats"][0]["value"])') || fail "show stats after clear stats"
[ "$since" -lt "$launch" ] || fail "show stats after clear stats: $since not below $launch since launch"
ok "show interfaces (wan rx $(py 'print({x["name"]:x["counters"] for x in d["interfaces"]}["wan"]["rx_packets"])' < "$OUT/interfaces.json")), show runtime ($(grep -E '^0 +total ' "$OUT/runtime.txt" | awk '{print $NF}') clocks/packet), clear stats: port.wan.rx_packets $since since the reset, $launch since launch"

# ---------------------------------------------------------------- capture
ctl router-a capture --list > "$OUT/capture-list.txt" 2>&1 || fail "capture --list: $(cat "$OUT/capture-list.txt")"
ctl router-a capture -i net_af_packet1 --seconds 3 -w "$OUT/wan.pcapng" udp > "$OUT/capture.txt" 2>&1 ||
  fail "svrctl capture: $(tail -n 5 "$OUT/capture.txt")"
if command -v tshark >/dev/null; then
  n=$(tshark -r "$OUT/wan.pcapng" -Y 'udp.port == 1280' 2>/dev/null | wc -l)
  [ "$n" -gt 0 ] || fail "svrctl capture: no BFD packets in $OUT/wan.pcapng"
  ok "svrctl capture -i net_af_packet1: $n BFD packets in 3 s read back by tshark"
else
  [ -s "$OUT/wan.pcapng" ] || fail "svrctl capture wrote nothing"
  ok "svrctl capture -i net_af_packet1: $(stat -c %s "$OUT/wan.pcapng") bytes of pcapng"
fi

# ---------------------------------------------------------------- show events, config
both router-a events show events --type peering-established
py 'e=d["events"]; assert e and all(x["type"]=="peer.up" and x["event"]=="peering-established" and x["peer"]=="router-b" for x in e), e' < "$OUT/events.json" || fail "show events --json"
grep -q "event=peering-established" "$OUT/events.txt" || fail "show events: $(cat "$OUT/events.txt")"
ctl router-a show events > "$OUT/events-all.txt"
ok "show events: $(wc -l < "$OUT/events-all.txt") events, peering-established among them"

both router-a config show config
py 'c=d["config"]["config"]; assert c["local-router"]=="router-a" and c["authority"]["enhanced-security-key-management"] is True, c' < "$OUT/config.json" || fail "show config --json"
grep -q '"local-router": "router-a"' "$OUT/config.txt" || fail "show config table"
ok "show config: the running file of router-a"

# ---------------------------------------------------------------- rekey peer
if [ "$ROLE_A" = leader ]; then LEADER=router-a; FOLLOWER=router-b; PEER_OF_LEADER=router-b; PEER_OF_FOLLOWER=router-a
else LEADER=router-b; FOLLOWER=router-a; PEER_OF_LEADER=router-a; PEER_OF_FOLLOWER=router-b; fi
idx() { ctl "$1" --json show peers security | py 'print(d["peers"][0]["security"]["peer_key_index"])'; }
ia=$(idx router-a); ib=$(idx router-b)
timeout 8 "$SVRCTL" --router router-a show events --follow > "$OUT/events-follow.txt" 2>&1 &
FOLLOW=$!
sleep 1.5
if ctl "$FOLLOWER" --json rekey peer "$PEER_OF_FOLLOWER" > "$OUT/rekey-follower.json" 2>/dev/null; then fail "rekey on the follower was accepted"; fi
py 'assert d["error"]["kind"]=="refused" and "leader" in d["error"]["message"], d' < "$OUT/rekey-follower.json" || fail "rekey on the follower: $(cat "$OUT/rekey-follower.json")"
ctl "$LEADER" rekey peer "$PEER_OF_LEADER" > "$OUT/rekey.txt" || fail "rekey peer: $(cat "$OUT/rekey.txt")"
grep -q "peer-key rotation started with $PEER_OF_LEADER (current peer-key index" "$OUT/rekey.txt" || fail "rekey table: $(cat "$OUT/rekey.txt")"
for i in $(seq 1 100); do
  na=$(idx router-a); nb=$(idx router-b)
  [ "$na" -gt "$ia" ] && [ "$nb" -gt "$ib" ] && break
  sleep 0.3
done
[ "$na" -gt "$ia" ] && [ "$nb" -gt "$ib" ] || fail "peer-key index did not increase after rekey (a $ia -> $na, b $ib -> $nb)"
ctl "$LEADER" --json rekey peer "$PEER_OF_LEADER" > "$OUT/rekey.json" 2>/dev/null || true
ctl router-a --json show events --type key-rotated | py 'assert d["events"], d' || fail "no key-rotated event after rekey"
ctl router-a show peers security > "$OUT/peers-security-after.txt"
wait "$FOLLOW" || true
grep -q "event=peering-established" "$OUT/events-follow.txt" && grep -q "event=rekey-requested" "$OUT/events-follow.txt" \
  || fail "show events --follow did not print the history and the new rekey event: $(cat "$OUT/events-follow.txt")"
ok "rekey peer on $LEADER: peer-key index a $ia -> $na, b $ib -> $nb; refused on $FOLLOWER; show events --follow printed it live"

# ---------------------------------------------------------------- clear sessions
both router-a clear-sessions clear sessions --service site-b
py 'assert d["cleared"]>=0, d' < "$OUT/clear-sessions.json" || fail "clear sessions --json"
grep -qE "^[0-9]+ sessions cleared" "$OUT/clear-sessions.txt" || fail "clear sessions table"
n=$(py 'print(d["cleared"])' < "$OUT/clear-sessions.json"); t=$(grep -oE "^[0-9]+" "$OUT/clear-sessions.txt")
[ $((n + t)) -ge 1 ] || fail "clear sessions removed nothing"
ctl router-a --json show sessions --service site-b | py 'assert d["matched"]==0, d' || fail "sessions left after clear"
ok "clear sessions --service site-b: $t + $n cleared, none left"

# ---------------------------------------------------------------- hostile and non-root clients
raw() { # raw BYTES-EXPR: send one request line built by Python, print the answer
  python3 -c "
import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect('$SOCK_A')
s.sendall($1)
buf=b''
while not buf.endswith(b'\n'):
    c=s.recv(65536)
    if not c: break
    buf+=c
sys.stdout.write(buf.decode())"
}
raw "b'}{ not json\n'" | py 'assert d["ok"] is False and d["error"]["kind"]=="malformed", d' || fail "malformed request"
raw "b'{\"v\":1,\"cmd\":\"show-peers\",\"pad\":\"' + b'x'*70000 + b'\"}\n'" | py 'assert d["error"]["kind"]=="too-large", d' || fail "oversized request"
raw "b'{\"v\":7,\"cmd\":\"show-peers\"}\n'" | py 'assert d["error"]["kind"]=="unsupported-version", d' || fail "unknown version"
raw "b'{\"v\":1,\"cmd\":\"halt\"}\n'" | py 'assert d["error"]["kind"]=="unknown-command", d' || fail "unknown command"
if setpriv --reuid=65534 --regid=65534 --clear-groups "$SVRCTL" --socket "$SOCK_A" show peers > "$OUT/nonroot.txt" 2>&1; then fail "a non-root user got an answer"; fi
ctl router-a show peers >/dev/null || fail "svrd stopped answering after bad requests"
ctl router-a --json show stats mgmt. | py '
m={s["name"]:s["value"] for s in d["stats"]}
assert m["mgmt.request_errors"]>=3 and m["mgmt.requests_too_large"]>=1 and m["mgmt.requests"]>=20, m' || fail "mgmt counters did not count the bad requests"
kill -0 "$(cat "$RUN/router-a.pid")" || fail "router-a died"
ok "malformed, oversized, unknown-version, unknown-command requests answered with errors; non-root refused ($(tail -n 1 "$OUT/nonroot.txt"))"

# ---------------------------------------------------------------- /metrics
ip netns exec router-a curl -sf http://127.0.0.1:9464/metrics > "$OUT/metrics.txt" || fail "GET /metrics"
grep -qE '^svr_peer_path_up\{path="10\.9\.0\.1->10\.9\.0\.2",peer="router-b"\} 1$' "$OUT/metrics.txt" || fail "no svr_peer_path_up for the IPv4 path"
grep -qE '^svr_drops_total\{reason="[a-z0-9_]+"\} [1-9]' "$OUT/metrics.txt" || fail "no moved svr_drops_total"
grep -qE '^svr_peer_key_index\{peer="router-b"\} [1-9]' "$OUT/metrics.txt" || fail "no svr_peer_key_index"
grep -qE '^svr_port_rx_packets_total\{port="wan"\} [1-9]' "$OUT/metrics.txt" || fail "no svr_port_rx_packets_total"
code=$(ip netns exec router-a curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9464/other)
[ "$code" = 404 ] || fail "GET /other gave $code, not 404"
if command -v promtool >/dev/null; then
  promtool check metrics < "$OUT/metrics.txt" || fail "promtool check metrics"
  ok "/metrics: $(grep -vc '^#' "$OUT/metrics.txt") samples, promtool check metrics passes, /other is 404"
else
  ok "/metrics: $(grep -vc '^#' "$OUT/metrics.txt") samples, /other is 404 (promtool not installed: not checked)"
fi

# A real Prometheus server (Debian's package) in router-a's namespace scrapes the endpoint
# every second; the test reads a peer-path metric and a drop metric back through its HTTP API.
if command -v prometheus >/dev/null; then
  mkdir -p "$OUT/prom"
  cat > "$OUT/prom/prometheus.yml" <<'YAML'
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: svrd
    static_configs: [{targets: ["127.0.0.1:9464"], labels: {router: router-a}}]
YAML
  ip netns exec router-a timeout 120 prometheus --config.file="$OUT/prom/prometheus.yml" \
    --storage.tsdb.path="$OUT/prom/data" --web.listen-address=127.0.0.1:9099 \
    --log.level=warn > "$OUT/prom/prometheus.log" 2>&1 &
  SERVERS="$SERVERS $!"
  # promq QUERY: the first sample's value of an instant query, or nothing.
  promq() {
    ip netns exec router-a curl -sfG --max-time 2 http://127.0.0.1:9099/api/v1/query \
      --data-urlencode "query=$1" 2>/dev/null |
      python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null || true
  }
  path_up="" drops_sum=""
  for _ in $(seq 1 60); do
    path_up=$(promq 'svr_peer_path_up{peer="router-b",path="10.9.0.1->10.9.0.2"}')
    drops_sum=$(promq 'sum(svr_drops_total{router="router-a"})')
    [ "$path_up" = 1 ] && [ -n "$drops_sum" ] && [ "${drops_sum%.*}" -gt 0 ] 2>/dev/null && break
    sleep 0.5
  done
  [ "$path_up" = 1 ] || { tail -n 5 "$OUT/prom/prometheus.log" >&2; fail "Prometheus: svr_peer_path_up for router-b's IPv4 path is '$path_up', not 1"; }
  [ -n "$drops_sum" ] && [ "${drops_sum%.*}" -gt 0 ] || fail "Prometheus: sum(svr_drops_total) is '$drops_sum'"
  ok "Prometheus $(prometheus --version 2>&1 | head -n 1 | awk '{print $3}') scraped svrd: svr_peer_path_up{path=10.9.0.1->10.9.0.2}=$path_up, sum(svr_drops_total)=$drops_sum (HTTP API)"
else
  fail "prometheus is not installed (scripts/setup.sh installs it)"
fi

ok "all svrctl commands and /metrics checked; outputs in $OUT"
