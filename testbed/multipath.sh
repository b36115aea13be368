#!/usr/bin/env bash
# The multipath testbed (issue 9): two routers joined by two WAN links, each through an "ISP"
# namespace where loss, delay and jitter can be added per direction and the link taken down.
#
#                          mp-isp1 (br0: to-a, to-b)
#                  ra-wan1 ──── to-a ══ to-b ──── rb-wan1
#   mp-host-a ── mp-router-a                       mp-router-b ── mp-host-b
#                  ra-wan2 ──── to-a ══ to-b ──── rb-wan2
#                          mp-isp2 (br0: to-a, to-b)
#
#   host-a eth0 10.1.0.2/24 fd00:1::2/64  ── ra-lan 10.1.0.1  fd00:1::1
#   link 1:  ra-wan1 10.91.0.1/24 fd00:91::1/64  ──  rb-wan1 10.91.0.2 fd00:91::2
#   link 2:  ra-wan2 10.92.0.1/24 fd00:92::1/64  ──  rb-wan2 10.92.0.2 fd00:92::2
#   host-b eth0 10.2.0.2/24 fd00:2::2/64  ── rb-lan 10.2.0.1  fd00:2::1
#          and 10.2.0.10 fd00:2::10 (service voice), 10.2.0.20 fd00:2::20 (service bulk),
#          10.2.0.21 fd00:2::21 (bulk-revert), 10.2.0.40 fd00:2::40 (dup)
#
# Every namespace is prefixed mp- so this runs beside testbed/testbed.sh (host-a, router-a, ...);
# interface names live inside the namespaces. Each ISP is one L2 segment per link (a bridge),
# so the routers' waypoints reach each other directly. Directions: a2b (router-a -> router-b,
# frames entering the ISP on to-a), b2a (the reverse), both.
#
#   multipath.sh up [--kernel]     create everything (tears down first). Routers as svrd wants
#                                  them (no kernel addresses, ARP off); --kernel: the routers are
#                                  plain kernel hosts with the addresses above (self-test)
#   multipath.sh down              stop forwarders, delete the mp- namespaces (always safe)
#   multipath.sh impair LINK DIR [loss=PCT] [delay=MS] [jitter=MS]
#                                  set DIR's impairment of link 1|2 (keys not given are 0).
#                                  Loss alone: nftables in the bridge (netdev ingress hook on the
#                                  ISP veth, numgen random mod 100 < PCT drop; whole percent).
#                                  Delay or jitter in either direction: the link is taken out of
#                                  the bridge and testbed/impair.py forwards it (loss there too)
#   multipath.sh heal LINK         no impairment: forwarder stopped, bridge back, rules flushed
#   multipath.sh link-down LINK    both ISP veths down (the routers see carrier loss); for a
#                                  silent black hole with carrier use: impair LINK both loss=100
#   multipath.sh link-up LINK      both ISP veths up again
#   multipath.sh show              namespaces, per-link mode, impairments, nft counters
#
# Needs nftables (scripts/setup.sh installs it) and python3. Never uses netem.
set -euo pipefail

TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MP_RUN=${MP_RUN:-$TB_DIR/run/mp}
MP_NS=(mp-host-a mp-router-a mp-isp1 mp-isp2 mp-router-b mp-host-b)

mp_log() { printf '[multipath] %s\n' "$*" >&2; }
die() { mp_log "error: $*"; exit 2; }
x() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
no_offload() { x "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true; }
quiet_v6() { x "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"; }
isp() { case "$1" in 1|2) echo "mp-isp$1" ;; *) die "LINK must be 1 or 2, not '$1'" ;; esac; }

mp_stop_forwarder() { # LINK
  local pidf=$MP_RUN/link$1.pid pid i
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf"); rm -f "$pidf"
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  mp_log "link $1: forwarder $pid ignored SIGTERM, killing"; kill -KILL "$pid" 2>/dev/null || true
}

mp_down() {
  local l ns
  for l in 1 2; do mp_stop_forwarder "$l"; done
  for ns in "${MP_NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -f "$MP_RUN"/link?.ctl "$MP_RUN"/link?.state
}

mp_up() {
  local kernel=0 ns l r s
  [ "${1:-}" = --kernel ] && kernel=1
  command -v nft >/dev/null || die "nft missing (apt-get install nftables, or scripts/setup.sh)"
  mp_down
  mkdir -p "$MP_RUN"
  for ns in "${MP_NS[@]}"; do ip netns add "$ns"; x "$ns" ip link set lo up; done
  ip link add eth0 netns mp-host-a type veth peer name ra-lan netns mp-router-a
  ip link add rb-lan netns mp-router-b type veth peer name eth0 netns mp-host-b
  for l in 1 2; do
    s=mp-isp$l
    ip link add "ra-wan$l" netns mp-router-a type veth peer name to-a netns "$s"
    ip link add "rb-wan$l" netns mp-router-b type veth peer name to-b netns "$s"
    # The ISP: a bridge with no addresses, silent (no IPv6), no STP; one L2 segment.
    x "$s" ip link add br0 type bridge stp_state 0
    quiet_v6 "$s" br0
    for r in to-a to-b; do
      quiet_v6 "$s" "$r"; no_offload "$s" "$r"
      x "$s" ip link set "$r" master br0 up
    done
    x "$s" ip link set br0 up
    # Loss per direction: a netdev ingress chain on each ISP veth (empty = no loss).
    x "$s" nft -f - <<EOF
table netdev mp {
  chain a2b { type filter hook ingress device "to-a" priority 0; policy accept; }
  chain b2a { type filter hook ingress device "to-b" priority 0; policy accept; }
}
EOF
    printf 'a2b loss=0 delay=0 jitter=0\nb2a loss=0 delay=0 jitter=0\n' > "$MP_RUN/link$l.state"
  done
  for r in mp-router-a:ra-lan mp-router-a:ra-wan1 mp-router-a:ra-wan2 \
           mp-router-b:rb-lan mp-router-b:rb-wan1 mp-router-b:rb-wan2; do
    ns=${r%%:*}; l=${r#*:}
    if [ $kernel = 0 ]; then
      # svrd owns these links (net_af_packet): the router kernel stays silent.
      quiet_v6 "$ns" "$l"; x "$ns" ip link set "$l" arp off
    else
      x "$ns" sysctl -qw "net.ipv6.conf.$l.accept_dad=0"
    fi
    x "$ns" ip link set "$l" up
    no_offload "$ns" "$l"
  done
  if [ $kernel = 1 ]; then
    mp_addr mp-router-a ra-lan 10.1.0.1/24 fd00:1::1/64
    mp_addr mp-router-a ra-wan1 10.91.0.1/24 fd00:91::1/64
    mp_addr mp-router-a ra-wan2 10.92.0.1/24 fd00:92::1/64
    mp_addr mp-router-b rb-lan 10.2.0.1/24 fd00:2::1/64
    mp_addr mp-router-b rb-wan1 10.91.0.2/24 fd00:91::2/64
    mp_addr mp-router-b rb-wan2 10.92.0.2/24 fd00:92::2/64
    for ns in mp-router-a mp-router-b; do
      x "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    done
    # Kernel routers route the far LAN over link 1 (svrd chooses per session instead).
    x mp-router-a ip route add 10.2.0.0/24 via 10.91.0.2
    x mp-router-a ip -6 route add fd00:2::/64 via fd00:91::2
    x mp-router-b ip route add 10.1.0.0/24 via 10.91.0.1
    x mp-router-b ip -6 route add fd00:1::/64 via fd00:91::1
  fi
  mp_host mp-host-a 10.1.0.2/24 fd00:1::2/64 10.1.0.1 fd00:1::1
  mp_host mp-host-b 10.2.0.2/24 fd00:2::2/64 10.2.0.1 fd00:2::1
  # host-b's service addresses (router-*-mp.yaml): voice and bulk are host prefixes in site-b.
  mp_addr mp-host-b eth0 10.2.0.10/24 fd00:2::10/64
  mp_addr mp-host-b eth0 10.2.0.20/24 fd00:2::20/64
  mp_addr mp-host-b eth0 10.2.0.21/24 fd00:2::21/64
  mp_addr mp-host-b eth0 10.2.0.40/24 fd00:2::40/64
  mp_log "up$([ $kernel = 1 ] && echo ' (kernel routers)'): ${MP_NS[*]}"
}

mp_addr() { # NS DEV V4 V6
  x "$1" ip addr add "$3" dev "$2"
  x "$1" ip -6 addr add "$4" dev "$2" nodad
}

mp_host() { # NS V4 V6 GW4 GW6
  local ns=$1
  x "$ns" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
  mp_addr "$ns" eth0 "$2" "$3"
  x "$ns" ip link set eth0 up
  no_offload "$ns" eth0
  x "$ns" ip route add default via "$4"
  x "$ns" ip -6 route add default via "$5"
}

# mp_field LINK DIR KEY: the current value from the link's state file.
mp_field() { sed -n "s/^$2 .*$3=\([0-9.]*\).*/\1/p" "$MP_RUN/link$1.state"; }

# mp_apply LINK: put the state file into effect (bridge + nft, or the forwarder).
mp_apply() {
  local l=$1 s d loss fwd=0 r
  s=$(isp "$l")
  for d in a2b b2a; do
    [ "$(mp_field "$l" $d delay)" != 0 ] || [ "$(mp_field "$l" $d jitter)" != 0 ] && fwd=1
  done
  if [ $fwd = 1 ]; then
    # Forwarder mode: loss is the forwarder's too (AF_PACKET sees frames before nft ingress).
    x "$s" nft flush chain netdev mp a2b; x "$s" nft flush chain netdev mp b2a
    cp "$MP_RUN/link$l.state" "$MP_RUN/link$l.ctl.tmp"; mv "$MP_RUN/link$l.ctl.tmp" "$MP_RUN/link$l.ctl"
    if ! { [ -f "$MP_RUN/link$l.pid" ] && kill -0 "$(cat "$MP_RUN/link$l.pid")" 2>/dev/null; }; then
      for r in to-a to-b; do x "$s" ip link set "$r" nomaster; x "$s" ip link set "$r" promisc on; done
      ip netns exec "$s" python3 "$TB_DIR/impair.py" --a to-a --b to-b --control "$MP_RUN/link$l.ctl" \
        >>"$MP_RUN/link$l.log" 2>&1 &
      echo $! > "$MP_RUN/link$l.pid"
      # Ready when it logs "forwarding" (sockets bound).
      for r in $(seq 1 50); do grep -q "pid $(cat "$MP_RUN/link$l.pid"))" "$MP_RUN/link$l.log" 2>/dev/null && break; sleep 0.1; done
      kill -0 "$(cat "$MP_RUN/link$l.pid")" 2>/dev/null || { tail -n 5 "$MP_RUN/link$l.log" >&2; die "link $l: impair.py failed"; }
    else
      sleep 0.2   # the forwarder re-reads the control file within 100 ms
    fi
  else
    mp_stop_forwarder "$l"
    for r in to-a to-b; do
      [ -n "$(x "$s" ip -o link show "$r" master br0 2>/dev/null)" ] || { x "$s" ip link set "$r" promisc off; x "$s" ip link set "$r" master br0; }
    done
    for d in a2b b2a; do
      x "$s" nft flush chain netdev mp $d
      loss=$(mp_field "$l" $d loss)
      case "$loss" in
        0) ;;
        100) x "$s" nft add rule netdev mp $d counter drop ;;   # numgen's operand stops at 99
        *) x "$s" nft add rule netdev mp $d numgen random mod 100 '<' "$loss" counter drop ;;
      esac
    done
  fi
}

mp_impair() { # LINK DIR key=value...
  local l=${1:-} dir=${2:-} loss=0 delay=0 jitter=0 kv d dirs
  isp "$l" >/dev/null
  case "$dir" in a2b|b2a) dirs=$dir ;; both) dirs="a2b b2a" ;; *) die "DIR must be a2b, b2a or both" ;; esac
  shift 2
  for kv in "$@"; do
    case "$kv" in
      loss=*) loss=${kv#loss=} ;;
      delay=*) delay=${kv#delay=} ;;
      jitter=*) jitter=${kv#jitter=} ;;
      *) die "unknown impairment '$kv' (loss=PCT delay=MS jitter=MS)" ;;
    esac
  done
  [[ $loss =~ ^[0-9]+$ ]] && [ "$loss" -le 100 ] || die "loss=$loss: a whole percent 0-100"
  [[ $delay =~ ^[0-9]+$ ]] || die "delay=$delay: whole milliseconds"
  [[ $jitter =~ ^[0-9]+$ ]] || die "jitter=$jitter: whole milliseconds"
  [ -f "$MP_RUN/link$l.state" ] || die "not up (multipath.sh up)"
  for d in $dirs; do sed -i "s/^$d .*/$d loss=$loss delay=$delay jitter=$jitter/" "$MP_RUN/link$l.state"; done
  mp_apply "$l"
  mp_log "link $l: $(tr '\n' ';' < "$MP_RUN/link$l.state")"
}

mp_heal() {
  local l=${1:-}
  isp "$l" >/dev/null
  [ -f "$MP_RUN/link$l.state" ] || die "not up (multipath.sh up)"
  printf 'a2b loss=0 delay=0 jitter=0\nb2a loss=0 delay=0 jitter=0\n' > "$MP_RUN/link$l.state"
  mp_apply "$l"
  mp_log "link $l: healed"
}

mp_link() { # LINK up|down
  local s r
  s=$(isp "${1:-}")
  for r in to-a to-b; do x "$s" ip link set "$r" "$2"; done
  mp_log "link $1: $2"
}

mp_show() {
  local l s
  ip netns list | grep '^mp-' || true
  for l in 1 2; do
    s=mp-isp$l
    ip netns list | grep -q "^$s\b" || continue
    if [ -f "$MP_RUN/link$l.pid" ] && kill -0 "$(cat "$MP_RUN/link$l.pid")" 2>/dev/null; then
      echo "link $l: forwarder pid $(cat "$MP_RUN/link$l.pid") (log $MP_RUN/link$l.log; SIGUSR1 prints counters)"
    else
      echo "link $l: bridge"
    fi
    sed 's/^/  /' "$MP_RUN/link$l.state" 2>/dev/null || true
    x "$s" ip -br link show | sed 's/^/  /'
    x "$s" nft list table netdev mp | grep -E 'chain|drop' | sed 's/^/  /'
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  cmd=${1:-}; shift || true
  case "$cmd" in
    up) mp_up "$@" ;;
    down) mp_down ;;
    impair) mp_impair "$@" ;;
    heal) mp_heal "$@" ;;
    link-down) mp_link "${1:-}" down ;;
    link-up) mp_link "${1:-}" up ;;
    show) mp_show ;;
    *) echo "usage: $0 up [--kernel]|down|impair LINK a2b|b2a|both [loss=PCT] [delay=MS] [jitter=MS]|heal LINK|link-down LINK|link-up LINK|show" >&2; exit 2 ;;
  esac
fi
