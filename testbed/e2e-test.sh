#!/usr/bin/env bash
# End-to-end test on the four-namespace testbed: two real svrd appliances on DPDK
# net_af_packet, kernel hosts on either side. Asserts what a user relies on:
#   - host-a pings host-b over IPv4 and IPv6 with no loss;
#   - a TCP transfer (iperf3) completes both ways, IPv4 and IPv6;
#   - garbage sent at router-a (truncated IPv4, bad IHL, bad total length, bad checksum,
#     unknown EtherType, bad IPv6 payload length) is dropped and counted, visible on SIGUSR1,
#     and traffic still flows afterwards;
#   - SIGTERM stops both appliances with exit status 0 and a final counter dump.
#   - SVR: host-a <-> host-b traffic (ping, TCP, a UDP flow; IPv4 and IPv6) crosses the WAN as
#     SVR sessions; captures on rb-wan and ra-wan (svr_wire_check.py) shows no inner address or payload
#     marker in clear, the cookie only on the first packets of each session, and data packets
#     grown by exactly the documented overhead; Python `cryptography` (svr_decrypt_capture.py)
#     verifies every HMAC and decrypts the metadata and payloads svrd sent, given the test keys;
#     SVR counters show sessions and no SVR drops.
# Tear-down always runs.
set -euo pipefail
TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed.sh
source "$TB_DIR/testbed.sh"

fail() { echo "[e2e] FAIL: $*" >&2; for r in router-a router-b; do echo "--- $r log (tail)"; tail -n 40 "$RUN/$r.log" 2>/dev/null; done >&2; exit 1; }
ok() { echo "[e2e] ok: $*"; }
# shellcheck disable=SC2086
trap '[ -n "${TCPDUMP_PID:-}" ] && kill $TCPDUMP_PID 2>/dev/null; tb_down' EXIT

tb_up
tb_start
# WAN captures for the SVR checks, one per side of the WAN link: svrd sends through
# af_packet, which other packet sockets on the same interface do not see, so rb-wan shows
# what router-a sent and ra-wan what router-b sent.
ip netns exec router-b tcpdump -i rb-wan -U -s 2048 -w "$RUN/wan-b.pcap" >/dev/null 2>&1 &
TCPDUMP_PID=$!
ip netns exec router-a tcpdump -i ra-wan -U -s 2048 -w "$RUN/wan-a.pcap" >/dev/null 2>&1 &
TCPDUMP_PID="$TCPDUMP_PID $!"
sleep 0.5

# Ping: the first packet waits in the slow path for ARP/ND, so none may be lost.
for dst in 10.2.0.2 fd00:2::2; do
  out=$(ip netns exec host-a ping -c 5 -i 0.2 -W 2 "$dst") || fail "ping $dst: $out"
  echo "$out" | grep -q " 0% packet loss" || fail "ping $dst lost packets: $out"
  ok "ping host-a -> $dst: $(echo "$out" | tail -n 1)"
done
out=$(ip netns exec host-b ping -c 3 -i 0.2 -W 2 10.1.0.2) || fail "ping host-b -> host-a: $out"
ok "ping host-b -> 10.1.0.2"
# The routers answer pings to their own addresses.
ip netns exec host-a ping -c 2 -i 0.2 -W 2 10.1.0.1 >/dev/null || fail "router-a LAN address does not answer ping"
ip netns exec host-a ping -c 2 -i 0.2 -W 2 10.9.0.2 >/dev/null || fail "router-b WAN address does not answer ping"
ip netns exec host-a ping -c 2 -i 0.2 -W 2 fd00:1::1 >/dev/null || fail "router-a LAN IPv6 address does not answer ping"
ok "routers answer echo on their own addresses"
# TTL 1 through router-a: ICMP time exceeded comes back from router-a.
out=$(ip netns exec host-a ping -c 1 -t 1 -W 2 10.2.0.2 2>&1 || true)
echo "$out" | grep -qi "time to live exceeded" || fail "no ICMP time exceeded for TTL 1: $out"
ok "TTL 1 gets ICMP time exceeded from router-a"

# TCP through both appliances.
ip netns exec host-b iperf3 -s -D -I "$RUN/iperf3.pid" >/dev/null
sleep 0.3
for dst in 10.2.0.2 fd00:2::2; do
  json=$(ip netns exec host-a timeout 30 iperf3 -c "$dst" -t 2 -J) || fail "iperf3 to $dst failed"
  bytes=$(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["end"]["sum_received"]["bytes"]))')
  [ "$bytes" -gt 1000000 ] || fail "iperf3 to $dst moved only $bytes bytes"
  ok "TCP host-a -> $dst: $bytes bytes received"
done
kill "$(cat "$RUN/iperf3.pid")" 2>/dev/null || true

# A UDP flow both ways (echoed by host-b), IPv4 and IPv6, through SVR.
for dst in 10.2.0.2 fd00:2::2; do
  ip netns exec host-b timeout 20 python3 "$TB_DIR/udp_flow.py" serve "$dst" 5001 6 &
  srv=$!
  sleep 0.3
  got=$(ip netns exec host-a timeout 15 python3 "$TB_DIR/udp_flow.py" send "$dst" 5001 30 1000) || fail "UDP flow to $dst"
  kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true
  [ "$got" -ge 28 ] || fail "UDP flow to $dst: only $got of 30 datagrams echoed"
  ok "UDP host-a -> $dst -> host-a: $got/30 datagrams of 1000 B echoed"
done

# What crossed the WAN (give tcpdump time to drain its buffer after iperf3).
sleep 1
# shellcheck disable=SC2086
kill $TCPDUMP_PID 2>/dev/null || true; wait $TCPDUMP_PID 2>/dev/null || true
TCPDUMP_PID=
python3 "$TB_DIR/svr_wire_check.py" 1000 "$RUN/wan-b.pcap" "$RUN/wan-a.pcap" || fail "SVR wire check of the WAN captures"
# An independent implementation (Python cryptography) verifies and decrypts what svrd sent.
python3 "$TB_DIR/svr_decrypt_capture.py" "$CONF_A" "$CONF_B" "$RUN/wan-b.pcap" "$RUN/wan-a.pcap" \
  || fail "independent decryption of the WAN captures"
ok "WAN capture: SVR only, no inner address or marker in clear, metadata only on first packets, exact overhead"

# Garbage at router-a's LAN port.
mac=$(ip netns exec router-a cat /sys/class/net/ra-lan/address)
ip netns exec host-a python3 "$TB_DIR/garbage.py" eth0 "$mac" 5 >/dev/null
sleep 0.5
kill -USR1 "$(cat "$RUN/router-a.pid")"
sleep 0.5
for c in bad_ipv4_length bad_ipv4_checksum unknown_ethertype bad_ipv6_length; do
  n=$(grep -E "^drop $c=" "$RUN/router-a.log" | tail -n 1 | sed 's/.*=//')
  [ -n "$n" ] && [ "$n" -ge 5 ] || fail "counter drop $c is '${n:-missing}' after SIGUSR1, expected >= 5"
  ok "garbage dropped and counted: $c=$n"
done
for r in router-a router-b; do
  kill -USR1 "$(cat "$RUN/$r.pid")"
done
sleep 0.5
for r in router-a router-b; do
  s=$(grep -E "^svr svr_(ingress|egress)_sessions=" "$RUN/$r.log" | tail -n 2 | sed 's/.*=//' | paste -sd+ | bc)
  [ "${s:-0}" -ge 4 ] || fail "$r: only ${s:-0} SVR sessions"
  for c in svr_hmac_failure svr_replay svr_unknown_peer svr_bad_metadata svr_decrypt_failure; do
    n=$(grep -E "^drop $c=" "$RUN/$r.log" | tail -n 1 | sed 's/.*=//')
    [ "$n" = 0 ] || fail "$r: drop $c=$n on genuine traffic"
  done
  ok "$r: $s SVR sessions, $(grep -E '^svr svr_metadata_sent=' "$RUN/$r.log" | tail -n 1 | sed 's/^svr //'), no SVR crypto drops"
done
n=$(grep -E "^drop bad_ipv4_length=" "$RUN/router-a.log" | tail -n 1 | sed 's/.*=//')
[ "$n" -ge 15 ] || fail "truncated, bad-IHL and bad-total-length frames should all count as bad_ipv4_length (got $n)"
out=$(ip netns exec host-a ping -c 3 -i 0.2 -W 2 10.2.0.2) || fail "ping after garbage: $out"
ok "traffic still flows after garbage"

# Clean stop.
for r in router-a router-b; do
  rc=0; tb_stop_one "$r" || rc=$?
  [ "$rc" -eq 0 ] || fail "$r: svrd exit status $rc on SIGTERM"
  grep -q "svrd: stopped" "$RUN/$r.log" || fail "$r: no clean-stop line"
  ok "$r stopped cleanly (exit 0)"
done
echo "[e2e] PASS"
