#!/usr/bin/env bash
# The demo: installs what is needed, builds svrd in release mode, brings up the four-namespace
# testbed (host-a, router-a, router-b, host-b), runs ping and iperf3 from host-a to host-b
# through both appliances, prints what it measured, and tears everything down.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "[demo] building svrd (release)"
cargo build --release -q -p svrd
# shellcheck source=../testbed/testbed.sh
source testbed/testbed.sh
trap 'tb_down' EXIT
tb_up
tb_start

rtt() { ip netns exec host-a ping -c 10 -i 0.2 -W 2 "$1" | tail -n 1; }
tcp() {
  ip netns exec host-a timeout 30 iperf3 -c "$1" -t "${DEMO_SECONDS:-5}" -J |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]; print("%.2f Gbit/s received, %d retransmits" % (d["sum_received"]["bits_per_second"]/1e9, d["sum_sent"].get("retransmits", 0)))'
}
ip netns exec host-b iperf3 -s -D -I "$RUN/iperf3.pid" >/dev/null
sleep 0.3
echo
echo "== measured through router-a and router-b (svrd on net_af_packet) =="
echo "ping 10.2.0.2   : $(rtt 10.2.0.2)"
echo "ping fd00:2::2  : $(rtt fd00:2::2)"
echo "TCP  10.2.0.2   : $(tcp 10.2.0.2)"
echo "TCP  fd00:2::2  : $(tcp fd00:2::2)"
kill "$(cat "$RUN/iperf3.pid")" 2>/dev/null || true
echo
kill -USR1 "$(cat "$RUN/router-a.pid")"; sleep 0.3
echo "== router-a counters =="
sed -n '/svrd: counters/,$p' "$RUN/router-a.log" | grep -vE '^(drop|slowpath) [a-z0-9_]+=0$' | tail -n 40
