#!/usr/bin/env bash
# The four-namespace testbed:
#
#   host-a [eth0]--[ra-lan] router-a [ra-wan]--[rb-wan] router-b [rb-lan]--[eth0] host-b
#   10.1.0.2/24     10.1.0.1          10.9.0.1    10.9.0.2         10.2.0.1      10.2.0.2/24
#   fd00:1::2/64    fd00:1::1         fd00:9::1   fd00:9::2        fd00:2::1     fd00:2::2/64
#
# Hosts are plain kernel namespaces. Each router namespace holds only its two veth ends, which
# svrd drives through DPDK's net_af_packet; the router kernels have no addresses of their own.
#
#   testbed.sh up          create namespaces and links (idempotent: tears down first)
#   testbed.sh start       start svrd in router-a and router-b (release build), wait until ready
#   testbed.sh stop        SIGTERM both svrd, wait for a clean exit
#   testbed.sh down        stop and delete everything (always safe to run)
#   testbed.sh status      show namespaces and svrd processes
set -euo pipefail

TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$TB_DIR/.." && pwd)
RUN=${SVR_TESTBED_RUN:-$TB_DIR/run}
SVRD=${SVRD:-$ROOT/target/release/svrd}
CONF_A=${CONF_A:-$TB_DIR/router-a.yaml}
CONF_B=${CONF_B:-$TB_DIR/router-b.yaml}
NS=(host-a router-a router-b host-b)

tb_log() { printf '[testbed] %s\n' "$*" >&2; }

# Turn off offloads: af_packet sees frames as the kernel queued them, and a veth with checksum
# offload would hand svrd (and through it the far host) packets with unfinished checksums.
tb_no_offload() { ip netns exec "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true; }

tb_down() {
  tb_stop || true
  for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

tb_up() {
  tb_down
  mkdir -p "$RUN"
  for ns in "${NS[@]}"; do ip netns add "$ns"; ip netns exec "$ns" ip link set lo up; done
  ip link add eth0 netns host-a type veth peer name ra-lan netns router-a
  ip link add ra-wan netns router-a type veth peer name rb-wan netns router-b
  ip link add rb-lan netns router-b type veth peer name eth0 netns host-b
  for pair in router-a:ra-lan router-a:ra-wan router-b:rb-wan router-b:rb-lan; do
    ns=${pair%%:*}; dev=${pair#*:}
    # The router kernel must stay silent on these links: svrd owns them (no IPv6 link-local, no ARP).
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
    ip netns exec "$ns" ip link set "$dev" arp off
    ip netns exec "$ns" ip link set "$dev" up
    tb_no_offload "$ns" "$dev"
  done
  tb_host host-a 10.1.0.2/24 fd00:1::2/64 10.1.0.1 fd00:1::1
  tb_host host-b 10.2.0.2/24 fd00:2::2/64 10.2.0.1 fd00:2::1
  tb_log "up: ${NS[*]}"
}

# tb_host NS V4/LEN V6/LEN GW4 GW6: a host whose default routes point at its router.
tb_host() {
  local ns=$1
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
  ip netns exec "$ns" ip addr add "$2" dev eth0
  ip netns exec "$ns" ip -6 addr add "$3" dev eth0 nodad
  ip netns exec "$ns" ip link set eth0 up
  tb_no_offload "$ns" eth0
  ip netns exec "$ns" ip route add default via "$4"
  ip netns exec "$ns" ip -6 route add default via "$5"
}

# tb_start_one ROUTER CONF: starts svrd in the router's namespace, logs to $RUN/ROUTER.log.
tb_start_one() {
  local r=$1 conf=$2
  [ -x "$SVRD" ] || { tb_log "error: $SVRD is missing (cargo build --release)"; return 1; }
  : > "$RUN/$r.log"
  ip netns exec "$r" "$SVRD" --config "$conf" >>"$RUN/$r.log" 2>&1 &
  echo $! > "$RUN/$r.pid"
}

tb_wait_ready() {
  local r=$1 i
  for i in $(seq 1 100); do
    grep -q "svrd: forwarding" "$RUN/$r.log" 2>/dev/null && return 0
    kill -0 "$(cat "$RUN/$r.pid")" 2>/dev/null || { tb_log "$r: svrd exited:"; tail -n 20 "$RUN/$r.log" >&2; return 1; }
    sleep 0.1
  done
  tb_log "$r: svrd not ready after 10 s"; tail -n 20 "$RUN/$r.log" >&2; return 1
}

tb_start() {
  mkdir -p "$RUN"
  tb_start_one router-a "$CONF_A"
  tb_start_one router-b "$CONF_B"
  tb_wait_ready router-a
  tb_wait_ready router-b
  tb_log "svrd running in router-a (pid $(cat "$RUN/router-a.pid")) and router-b (pid $(cat "$RUN/router-b.pid"))"
}

# tb_stop_one ROUTER: SIGTERM, wait up to 10 s, return svrd's exit status.
tb_stop_one() {
  local r=$1 pid rc=0 i
  [ -f "$RUN/$r.pid" ] || return 0
  pid=$(cat "$RUN/$r.pid"); rm -f "$RUN/$r.pid"
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || rc=$?; return $rc; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then tb_log "$r: svrd ignored SIGTERM, killing"; kill -KILL "$pid"; rc=137; fi
  wait "$pid" 2>/dev/null || rc=$?
  return $rc
}

tb_stop() {
  local rc=0
  tb_stop_one router-a || rc=$?
  tb_stop_one router-b || rc=$?
  return $rc
}

tb_status() {
  ip netns list
  for r in router-a router-b; do
    if [ -f "$RUN/$r.pid" ] && kill -0 "$(cat "$RUN/$r.pid")" 2>/dev/null; then echo "$r: svrd pid $(cat "$RUN/$r.pid")"; else echo "$r: svrd not running"; fi
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    up) tb_up ;;
    start) tb_start ;;
    stop) tb_stop ;;
    down) tb_down ;;
    status) tb_status ;;
    *) echo "usage: $0 up|start|stop|down|status" >&2; exit 2 ;;
  esac
fi
