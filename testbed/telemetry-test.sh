#!/usr/bin/env bash
# DPDK's own tools against a running svrd (issue 10, item 5): two zero-trust routers
# (testbed/router-a-zt.yaml, router-b-zt.yaml, fresh PKI) carrying a UDP flow, and
#   - dpdk-telemetry.py -f router-a (commands piped on stdin) lists svrd's /svr/ commands and
#     each answers JSON with the expected content: /svr/info (router, ports), /svr/peers
#     (router-b in service, keys installed, both paths BFD Up and in service), /svr/stats
#     (port, drop, svr and slowpath counters, traffic counted), /svr/stats,drop_ (only drops),
#     /svr/sessions,4 (the flow's session: service site-b on a router-a->router-b path);
#     DPDK's own /ethdev/list and /ethdev/stats work too;
#   - dpdk-dumpcap --file-prefix router-a -i net_af_packet1 (router-a's WAN port) captures
#     into pcapng while the flow runs, and tshark reads it: SVR UDP between the waypoints
#     10.9.0.1 and 10.9.0.2 on wayports (16384-65534), BFD on UDP 1280, no ESP;
#   - a bad parameter gets an error entry, and a clean stop leaves no hugepage file behind.
#
# The testbed's namespaces are shared with other tests: run it under the testbed lock,
#   flock /tmp/testbed.lock testbed/telemetry-test.sh
# Needs a release svrd (cargo build --release -p svrd; or SVRD=path), dpdk-dev (dpdk-dumpcap,
# dpdk-telemetry.py) and tshark. Tear-down (svrd, flow, capture, namespaces) always runs.
set -euo pipefail
TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed.sh
source "$TB_DIR/testbed.sh"
ZT_TAG=telemetry
# shellcheck source=zt-lib.sh
source "$TB_DIR/zt-lib.sh"

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  tb_down
}
trap cleanup EXIT

SVRD=${SVRD:-$ROOT/target/release/svrd}
[ -x "$SVRD" ] || fail "$SVRD is missing (cargo build --release -p svrd)"
for tool in dpdk-telemetry.py dpdk-dumpcap tshark; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup.sh installs it)"
done

# telem ROUTER CMD...: the commands' answers, one JSON object per line.
telem() {
  local r=$1; shift
  printf '%s\n' "$@" | timeout 20 dpdk-telemetry.py -f "$r"
}

# ---------------------------------------------------------------- routers, peering
tb_up
zt_make_pki
derive "$TB_DIR/router-a-zt.yaml" "$RUN/tel-a.yaml"
derive "$TB_DIR/router-b-zt.yaml" "$RUN/tel-b.yaml"
CONF_A=$RUN/tel-a.yaml CONF_B=$RUN/tel-b.yaml tb_start
both_in_service 0 0 20
grep -q "telemetry on: dpdk-telemetry.py -f router-a" "$RUN/router-a.log" || fail "router-a: no 'telemetry on' line"
grep -q "packet capture on: dpdk-dumpcap --file-prefix router-a" "$RUN/router-a.log" || fail "router-a: no 'packet capture on' line"
ok "router-a and router-b peered, every path in service; telemetry and capture on"
# Neighbours resolved on both LANs before the measured flow (as zt-e2e-test.sh's traffic).
out=$(ip netns exec host-a ping -c 3 -i 0.2 -W 2 10.2.0.2) || fail "ping 10.2.0.2: $out"

# ---------------------------------------------------------------- capture during a UDP flow
ifaces=$(ip netns exec router-a timeout 20 dpdk-dumpcap --file-prefix router-a -D 2>&1) || fail "dpdk-dumpcap -D: $ifaces"
echo "$ifaces" > "$RUN/dumpcap-D.txt"
echo "$ifaces" | grep -q "net_af_packet1" || fail "dpdk-dumpcap -D does not list router-a's WAN port: $ifaces"
ok "dpdk-dumpcap -D lists router-a's ports: $(echo "$ifaces" | grep -o 'net_af_packet[0-9]*' | paste -sd' ')"

PCAP=$RUN/tel-wan.pcapng
rm -f "$PCAP"
# A capture filter (libpcap syntax, run by DPDK's BPF in svrd): UDP only. BFD and the link
# tests on port 1280 come several per second, so the count limit is generous; the capture
# stops on SIGINT after the flow.
ip netns exec router-a stdbuf -oL -eL dpdk-dumpcap --file-prefix router-a -i net_af_packet1 -f udp -w "$PCAP" -c 5000 -a duration:30 >"$RUN/dumpcap.log" 2>&1 &
CAP=$!; PIDS+=("$CAP")
# It writes the pcapng header when capture starts.
for _ in $(seq 1 150); do [ -s "$PCAP" ] && break; kill -0 "$CAP" 2>/dev/null || break; sleep 0.1; done
[ -s "$PCAP" ] && kill -0 "$CAP" 2>/dev/null || fail "dpdk-dumpcap did not start: $(cat "$RUN/dumpcap.log")"
sleep 0.5

ip netns exec host-b timeout 30 python3 "$TB_DIR/udp_flow.py" serve 10.2.0.2 5001 25 &
PIDS+=("$!")
sleep 0.3
got=$(ip netns exec host-a timeout 20 python3 "$TB_DIR/udp_flow.py" send 10.2.0.2 5001 30 300) || fail "UDP flow to 10.2.0.2"
[ "$got" -eq 30 ] || fail "UDP flow: only $got of 30 datagrams echoed"
ok "UDP host-a -> 10.2.0.2 -> host-a over SVR: $got/30 echoed"

# Let BFD add a few packets, then stop the capture (SIGINT, as Ctrl-C) if -c has not.
sleep 2
kill -INT "$CAP" 2>/dev/null || true
wait "$CAP" 2>/dev/null || true
[ -s "$PCAP" ] || fail "dpdk-dumpcap wrote no file: $(cat "$RUN/dumpcap.log")"
ok "dpdk-dumpcap: $(grep -E "Packets received" "$RUN/dumpcap.log" || true)"

file_type=$(capinfos -t "$PCAP" 2>/dev/null | sed -n 's/^File type: *//p' || true)
svr=$(tshark -r "$PCAP" -Y "ip.addr==10.9.0.1 && ip.addr==10.9.0.2 && udp.srcport>=16384 && udp.dstport>=16384 && !(udp.port==1280)" -T fields -e frame.number 2>/dev/null | wc -l)
bfd=$(tshark -r "$PCAP" -Y "udp.srcport==1280 && udp.dstport==1280" -T fields -e frame.number 2>/dev/null | wc -l)
esp=$(tshark -r "$PCAP" -Y "esp || ip.proto==50" -T fields -e frame.number 2>/dev/null | wc -l)
[ "$svr" -ge 30 ] || fail "tshark found only $svr SVR UDP packets between the waypoints in $PCAP"
[ "$bfd" -ge 1 ] || fail "tshark found no BFD (UDP 1280) packet in $PCAP"
[ "$esp" -eq 0 ] || fail "tshark found $esp ESP packets: SVR is UDP"
sample=$(tshark -r "$PCAP" -Y "udp.dstport>=16384 && !(udp.port==1280)" 2>/dev/null | head -n 1 | sed -E "s/^ +//" || true)
ok "tshark reads the capture (${file_type:-pcapng}): $svr SVR UDP packets between the waypoints on wayports, $bfd BFD, 0 ESP; e.g. $sample"

# ---------------------------------------------------------------- telemetry
OUT=$RUN/telemetry.json
telem router-a / "/help,/svr/peers" /svr/info /svr/peers /svr/stats /svr/sessions,4 /ethdev/list /ethdev/stats,1 > "$OUT" \
  || fail "dpdk-telemetry.py -f router-a failed"
python3 - "$OUT" <<'EOF' || fail "telemetry answers: see above ($OUT)"
import json, sys
answers = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    for k, v in json.loads(line).items():
        answers[k] = v
def need(cond, msg):
    if not cond:
        print(f"telemetry: {msg}", file=sys.stderr)
        sys.exit(1)
cmds = answers.get("/", [])
for c in ["/svr/info", "/svr/peers", "/svr/stats", "/svr/sessions"]:
    need(c in cmds, f"{c} not listed by '/': {cmds}")
need("BFD" in answers.get("/help", {}).get("/svr/peers", ""), f"help: {answers.get('/help')}")
info = answers["/svr/info"]
need(info["router"] == "router-a" and info["ports"] == ["lan", "wan"] and info["zero_trust"] == 1, f"info: {info}")
peers = answers["/svr/peers"]
need(peers["count"] == 1, f"peers: {peers}")
b = peers["peers"]["0"]
need(b["name"] == "router-b" and b["in_service"] == 1 and b["invalid"] == 0, f"router-b: {b}")
need(b["peer_key_index"] >= 1 and isinstance(b["payload_key_index"], int), f"router-b keys: {b}")
paths = list(b["paths"].values())
need(len(paths) == 2, f"paths: {paths}")
for p in paths:
    need(p["bfd_state"] == "Up" and p["in_service"] == 1, f"path: {p}")
need(sum(p["sessions_ingress"] for p in paths) >= 1, f"no ingress session on router-a's paths: {paths}")
stats = answers["/svr/stats"]
for k in ["port_wan_rx_packets", "port_lan_rx_packets", "worker_0_rx", "drop_no_route",
          "svr_svr_ingress_sessions", "slowpath_bfd_rx", "slowpath_peer_paths_in_service"]:
    need(k in stats, f"/svr/stats has no {k}: {sorted(stats)[:20]}...")
need(stats["port_wan_rx_packets"] > 30 and stats["slowpath_bfd_rx"] > 0, "traffic not counted")
need(stats["slowpath_peer_paths_in_service"] == 2, f"peer_paths_in_service {stats['slowpath_peer_paths_in_service']}")
sess = answers["/svr/sessions"]
need(sess["live"] >= 1 and sess["ingress"] >= 1, f"sessions: {sess}")
rows = list(sess.get("sessions", {}).values())
need(any(r["service"] == "site-b" and r["role"] == "ingress" and r["path"].startswith(("10.9.0.1->10.9.0.2", "fd00:9::1->fd00:9::2")) and r["lan"].endswith(":5001/udp") for r in rows), f"no site-b UDP session in {rows}")
need(answers["/ethdev/list"] == [0, 1], f"/ethdev/list: {answers['/ethdev/list']}")
need(answers["/ethdev/stats"]["ipackets"] > 30, f"/ethdev/stats,1: {answers['/ethdev/stats']}")
print(f"svr/stats: {len(stats)} counters; peer router-b keys peer={b['peer_key_index']} payload={b['payload_key_index']}; "
      f"paths {[(p['label'], p['bfd_state'], p['latency_ms']) for p in paths]}; sessions live={sess['live']} e.g. {rows[0]['service']} {rows[0]['lan']} via {rows[0]['path']}")
EOF
# /svr/stats,drop_ answers under the same key as /svr/stats: ask it on its own.
drops=$(telem router-a /svr/stats,drop_ | python3 -c '
import json, sys
d = [json.loads(l)["/svr/stats"] for l in sys.stdin if l.startswith("{\"/svr/stats\"")][0]
assert d and all(k.startswith("drop_") for k in d), d
print(len(d))') || fail "/svr/stats,drop_ is not only drops"
ok "dpdk-telemetry.py: /svr/info, /svr/peers, /svr/stats, /svr/sessions answer with router-b in service and the flow's session; /svr/stats,drop_ gives $drops drop counters; /ethdev/list and /ethdev/stats work"
peer=$(telem router-a /svr/stats,slowpath_peer | tee "$RUN/telemetry-peer-stats.json")
echo "$peer" | grep -qF '{"/svr/stats": {"slowpath_peer_paths": 2, "slowpath_peer_paths_in_service": 2}}' \
  || fail "/svr/stats,slowpath_peer: $peer"
bad=$(telem router-a "/svr/sessions,abc") || fail "dpdk-telemetry.py on a bad parameter"
echo "$bad" | grep -q '"error"' || fail "/svr/sessions,abc: no error entry: $bad"
kill -0 "$(cat "$RUN/router-a.pid")" || fail "router-a died on a bad telemetry parameter"
ok "a bad parameter gets an error entry; svrd lives on"

for r in router-a router-b; do
  rc=0; tb_stop_one "$r" || rc=$?
  [ "$rc" -eq 0 ] || fail "$r: svrd exit status $rc on SIGTERM"
done
left=$(find /dev/hugepages -maxdepth 1 \( -name 'router-amap_*' -o -name 'router-bmap_*' \) 2>/dev/null | wc -l)
[ "$left" -eq 0 ] || fail "$left hugepage files of router-a/router-b left after a clean stop"
ok "both routers stopped cleanly and removed their hugepage files (kept for capture while running)"
