#!/usr/bin/env bash
# One measurement of one data path between two sites, on a private four-namespace testbed:
#
#   bt-host-a [eth0]--[ra-lan] bt-gw-a [ra-wan]--[rb-wan] bt-gw-b [rb-lan]--[eth0] bt-host-b
#   10.1.0.2/24     10.1.0.1          10.9.0.1    10.9.0.2         10.2.0.1      10.2.0.2/24
#
# (the addresses of testbed/testbed.sh, under namespace names of our own so that it can run
# while someone uses the testbed). The two gateways carry host-a <-> host-b traffic with MODE:
#
#   svrd          svrd on net_af_packet with testbed/router-{a,b}.yaml (SVR, AES-256-CBC +
#                 HMAC-SHA384/192 per packet); the gateway kernels have no addresses
#   strongswan    charon, IKEv2 PSK, ESP tunnel mode aes256-sha384 (AES-256-CBC +
#                 HMAC-SHA384-192), kernel-libipsec backend (userspace ESP on a TUN device)
#   wireguard-go  wireguard-go (userspace WireGuard on a TUN device), wg set with fresh keys
#   openvpn       OpenVPN 2.6 static-key p2p over UDP, --cipher AES-256-CBC --auth SHA384
#   plain         kernel IPv4 forwarding in the gateways: the no-crypto reference
#
# and runs, host-a -> host-b (IPv4): ping RTT (20 pings 0.1 s apart), iperf3 TCP (5 s), iperf3
# UDP with 64 B and 1400 B payloads at an unlimited offered rate (-b 0, 5 s). It prints
# machine-readable `tunnel ...` lines on stdout (see benches/report.py, tunnels_section), and
# everything else on stderr. Namespaces and daemons are torn down on every exit.
#
#   benches/tunnels/run.sh MODE            # as root
#
# Environment: SVRD (svrd binary, default target/release/svrd, built if missing),
# BT_LOGDIR (copy the daemons' logs there), BT_SETUP=0 (do not apt-get install),
# BT_DURATION (iperf3 seconds, default 5).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MODE=${1:-}
DUR=${BT_DURATION:-5}
SVRD=${SVRD:-$ROOT/target/release/svrd}
NS=(bt-host-a bt-gw-a bt-gw-b bt-host-b)
HA=bt-host-a GA=bt-gw-a GB=bt-gw-b HB=bt-host-b
DST=10.2.0.2

say() { printf '[tunnels:%s] %s\n' "${MODE:-?}" "$*" >&2; }
die() { say "error: $*"; exit 1; }
usage() { echo "usage: $0 svrd|strongswan|wireguard-go|openvpn|plain" >&2; exit 2; }
case "$MODE" in svrd|strongswan|wireguard-go|openvpn|plain) ;; *) usage ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, TUN devices, hugepages)"

# ---- what we need ------------------------------------------------------------------------
# Debian 12 names. strongSwan: charon + swanctl, the kernel-libipsec plugin is in
# libcharon-extra-plugins, the openssl crypto plugin in libstrongswan-standard-plugins.
need_pkgs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "${BT_SETUP:-1}" = 1 ] || die "missing packages: ${missing[*]} (BT_SETUP=0)"
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}
need_pkgs iproute2 iputils-ping iperf3 ethtool python3 procps util-linux
case "$MODE" in
  strongswan) need_pkgs strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins ;;
  wireguard-go) need_pkgs wireguard-go wireguard-tools ;;
  openvpn) need_pkgs openvpn ;;
  svrd)
    if [ ! -x "$SVRD" ]; then
      say "$SVRD is missing: cargo build --release -p svrd"
      (cd "$ROOT" && cargo build --release -p svrd >&2) || die "svrd does not build"
    fi
    [ "$(cat /proc/sys/vm/nr_hugepages)" -gt 0 ] || die "no hugepages (scripts/setup.sh reserves them)"
    ;;
esac

# One run at a time on this machine: the bt-* names are ours alone.
exec 9>/tmp/bt-tunnels.lock
flock -w 120 9 || die "another benches/tunnels/run.sh holds /tmp/bt-tunnels.lock"

WORK=$(mktemp -d /tmp/bt-tunnels.XXXXXX)
PIDS=()
cleanup() {
  local rc=$? p
  set +e
  # svrd first, gently: SIGTERM lets it free its hugepages and print its counters.
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 1 50); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -f /run/wireguard/btwga.sock /run/wireguard/btwgb.sock
  rm -rf /run/dpdk/bt-gw-a /run/dpdk/bt-gw-b
  if [ -n "${BT_LOGDIR:-}" ]; then
    mkdir -p "$BT_LOGDIR"
    cp "$WORK"/*.log "$BT_LOGDIR"/ 2>/dev/null
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# bg NS LOG CMD...: a daemon in NS, foreground, killed by cleanup.
bg() { local ns=$1 log=$2; shift 2; ip netns exec "$ns" "$@" >>"$log" 2>&1 & PIDS+=("$!"); }
no_offload() { nsx "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true; }
# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.1 s.
wait_for() {
  local t=$1 what=$2; shift 2
  for _ in $(seq 1 $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "$what not ready after $t s"
}

# ---- the topology ------------------------------------------------------------------------
for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
for ns in "${NS[@]}"; do ip netns add "$ns"; nsx "$ns" ip link set lo up; done
ip link add eth0 netns "$HA" type veth peer name ra-lan netns "$GA"
ip link add ra-wan netns "$GA" type veth peer name rb-wan netns "$GB"
ip link add rb-lan netns "$GB" type veth peer name eth0 netns "$HB"
# Offloads off on every veth, as in testbed/testbed.sh (svrd's af_packet needs finished
# checksums); the same links for every mode.
for pair in "$GA:ra-lan" "$GA:ra-wan" "$GB:rb-wan" "$GB:rb-lan"; do
  ns=${pair%%:*}; dev=${pair#*:}
  nsx "$ns" ip link set "$dev" up
  no_offload "$ns" "$dev"
done
host() {
  local ns=$1
  nsx "$ns" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
  nsx "$ns" ip addr add "$2" dev eth0
  nsx "$ns" ip -6 addr add "$3" dev eth0 nodad
  nsx "$ns" ip link set eth0 up
  no_offload "$ns" eth0
  nsx "$ns" ip route add default via "$4"
  nsx "$ns" ip -6 route add default via "$5"
}
host "$HA" 10.1.0.2/24 fd00:1::2/64 10.1.0.1 fd00:1::1
host "$HB" 10.2.0.2/24 fd00:2::2/64 10.2.0.1 fd00:2::1

# Kernel gateways (every mode but svrd): LAN and WAN addresses, forwarding on. The far LAN is
# routed by the tunnel (or, for plain, over the WAN).
kernel_gw() {
  local ns=$1 lan=$2 lanaddr=$3 wan=$4 wanaddr=$5
  nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
  nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  nsx "$ns" ip addr add "$lanaddr" dev "$lan"
  nsx "$ns" ip addr add "$wanaddr" dev "$wan"
}

TUNDEV=""   # the gateway-a device whose counters prove the traffic took the tunnel
case "$MODE" in
  plain)
    kernel_gw "$GA" ra-lan 10.1.0.1/24 ra-wan 10.9.0.1/24
    kernel_gw "$GB" rb-lan 10.2.0.1/24 rb-wan 10.9.0.2/24
    nsx "$GA" ip route add 10.2.0.0/24 via 10.9.0.2
    nsx "$GB" ip route add 10.1.0.0/24 via 10.9.0.1
    TUNDEV=ra-wan
    ;;

  svrd)
    # The testbed configurations, with a DPDK file prefix of our own (the testbed's svrd may be
    # running with router-a / router-b).
    for pair in "$GA:ra-lan:ra-wan" "$GB:rb-wan:rb-lan"; do
      IFS=: read -r ns d1 d2 <<<"$pair"
      for dev in "$d1" "$d2"; do
        nsx "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
        nsx "$ns" ip link set "$dev" arp off
      done
    done
    sed 's/file-prefix: router-a/file-prefix: bt-gw-a/' "$ROOT/testbed/router-a.yaml" >"$WORK/gw-a.yaml"
    sed 's/file-prefix: router-b/file-prefix: bt-gw-b/' "$ROOT/testbed/router-b.yaml" >"$WORK/gw-b.yaml"
    if ! grep -q 'file-prefix: bt-gw-a' "$WORK/gw-a.yaml" || ! grep -q 'file-prefix: bt-gw-b' "$WORK/gw-b.yaml"; then
      die "testbed/router-{a,b}.yaml no longer set file-prefix: router-{a,b}"
    fi
    for g in a b; do
      ns=bt-gw-$g
      : >"$WORK/svrd-$g.log"
      bg "$ns" "$WORK/svrd-$g.log" "$SVRD" --config "$WORK/gw-$g.yaml"
    done
    for g in a b; do
      for _ in $(seq 1 150); do
        grep -q "svrd: forwarding" "$WORK/svrd-$g.log" && break
        if ! kill -0 "${PIDS[-1]}" 2>/dev/null || ! kill -0 "${PIDS[-2]}" 2>/dev/null; then
          tail -n 20 "$WORK/svrd-$g.log" >&2; die "an svrd exited"
        fi
        sleep 0.1
      done
      grep -q "svrd: forwarding" "$WORK/svrd-$g.log" \
        || { tail -n 20 "$WORK/svrd-$g.log" >&2; die "svrd in bt-gw-$g not forwarding after 15 s"; }
    done
    TUNDEV=""
    ;;

  strongswan)
    kernel_gw "$GA" ra-lan 10.1.0.1/24 ra-wan 10.9.0.1/24
    kernel_gw "$GB" rb-lan 10.2.0.1/24 rb-wan 10.9.0.2/24
    # charon's pid file is compiled in (/var/run/charon.pid): each charon gets a private /run
    # (its own mount namespace) and a vici socket in our work directory.
    for g in a b; do
      d=$WORK/ss-$g
      mkdir -p "$d/run"
      if [ $g = a ]; then me=10.9.0.1 peer=10.9.0.2 lts=10.1.0.0/24 rts=10.2.0.0/24 start=none
      else me=10.9.0.2 peer=10.9.0.1 lts=10.2.0.0/24 rts=10.1.0.0/24 start=none; fi
      sed -e "s|@VICI@|unix://$d/charon.vici|" -e "s|@LOG@|$WORK/charon-$g.log|" \
        "$HERE/strongswan.conf.in" >"$d/strongswan.conf"
      sed -e "s|@ME@|$me|" -e "s|@PEER@|$peer|" -e "s|@LTS@|$lts|" -e "s|@RTS@|$rts|" \
        -e "s|@MYID@|gw-$g.bt|" -e "s|@PEERID@|gw-$([ $g = a ] && echo b || echo a).bt|" \
        -e "s|@START@|$start|" "$HERE/swanctl.conf.in" >"$d/swanctl.conf"
      : >"$WORK/charon-$g.log"
      # shellcheck disable=SC2016 # $1 is the inner sh's
      bg "bt-gw-$g" "$WORK/charon-$g.out.log" env STRONGSWAN_CONF="$d/strongswan.conf" \
        unshare --mount --propagation private sh -c 'mount --bind "$1" /run && exec /usr/lib/ipsec/charon' \
        sh "$d/run"
    done
    for g in a b; do
      wait_for 15 "charon in bt-gw-$g (vici socket)" test -S "$WORK/ss-$g/charon.vici"
    done
    for g in a b; do
      wait_for 10 "charon's kernel-libipsec in bt-gw-$g (see its log)" grep -q "loaded plugins:.*kernel-libipsec" "$WORK/charon-$g.log"
    done
    for g in b a; do
      nsx "bt-gw-$g" swanctl --load-all --noprompt --uri "unix://$WORK/ss-$g/charon.vici" \
        --file "$WORK/ss-$g/swanctl.conf" >>"$WORK/swanctl-$g.log" 2>&1 \
        || { cat "$WORK/swanctl-$g.log" >&2; die "swanctl --load-all in bt-gw-$g failed"; }
    done
    nsx "$GA" timeout 20 swanctl --initiate --child lan --uri "unix://$WORK/ss-a/charon.vici" \
      >>"$WORK/swanctl-a.log" 2>&1 || { tail -n 30 "$WORK/charon-a.log" >&2; die "IKE/ESP negotiation failed"; }
    TUNDEV=ipsec0
    ;;

  wireguard-go)
    kernel_gw "$GA" ra-lan 10.1.0.1/24 ra-wan 10.9.0.1/24
    kernel_gw "$GB" rb-lan 10.2.0.1/24 rb-wan 10.9.0.2/24
    for g in a b; do
      (umask 077; wg genkey >"$WORK/wg-$g.key")
      wg pubkey <"$WORK/wg-$g.key" >"$WORK/wg-$g.pub"
      # The UAPI socket is /run/wireguard/<ifname>.sock, shared by all namespaces: names of our own.
      bg "bt-gw-$g" "$WORK/wireguard-go-$g.log" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error \
        wireguard-go -f "btwg$g"
    done
    for g in a b; do
      wait_for 10 "wireguard-go in bt-gw-$g" test -S "/run/wireguard/btwg$g.sock"
    done
    nsx "$GA" wg set btwga private-key "$WORK/wg-a.key" listen-port 51820 \
      peer "$(cat "$WORK/wg-b.pub")" endpoint 10.9.0.2:51820 allowed-ips 10.2.0.0/24
    nsx "$GB" wg set btwgb private-key "$WORK/wg-b.key" listen-port 51820 \
      peer "$(cat "$WORK/wg-a.pub")" endpoint 10.9.0.1:51820 allowed-ips 10.1.0.0/24
    # MTU 1420: what wg-quick sets on a 1500-byte underlay.
    for g in a b; do nsx "bt-gw-$g" ip link set "btwg$g" mtu 1420 up; done
    nsx "$GA" ip route add 10.2.0.0/24 dev btwga
    nsx "$GB" ip route add 10.1.0.0/24 dev btwgb
    TUNDEV=btwga
    ;;

  openvpn)
    kernel_gw "$GA" ra-lan 10.1.0.1/24 ra-wan 10.9.0.1/24
    kernel_gw "$GB" rb-lan 10.2.0.1/24 rb-wan 10.9.0.2/24
    openvpn --genkey secret "$WORK/ovpn.key" >/dev/null 2>&1 || die "openvpn --genkey failed"
    for g in a b; do
      if [ $g = a ]; then me=10.9.0.1 peer=10.9.0.2 tl=10.8.0.1 tr=10.8.0.2
      else me=10.9.0.2 peer=10.9.0.1 tl=10.8.0.2 tr=10.8.0.1; fi
      # Static key (p2p, no TLS): --cipher and --auth choose the data channel directly; AES-256-CBC
      # and SHA384 are in OpenSSL 3's default provider (no --providers legacy needed).
      bg "bt-gw-$g" "$WORK/openvpn-$g.log" openvpn --dev "btovpn$g" --dev-type tun --proto udp \
        --local "$me" --lport 1194 --remote "$peer" --rport 1194 --ifconfig "$tl" "$tr" \
        --secret "$WORK/ovpn.key" --cipher AES-256-CBC --auth SHA384 --verb 3 --ping 5
    done
    for g in a b; do
      wait_for 15 "openvpn in bt-gw-$g" grep -q "Initialization Sequence Completed" "$WORK/openvpn-$g.log"
    done
    nsx "$GA" ip route add 10.2.0.0/24 dev btovpna
    nsx "$GB" ip route add 10.1.0.0/24 dev btovpnb
    TUNDEV=btovpna
    ;;
esac

# ---- measurements ------------------------------------------------------------------------
# Up: the first packets may wait for ARP, IKE, a WireGuard handshake or an SVR session.
ok=0
for _ in $(seq 1 30); do
  if nsx "$HA" ping -c 1 -W 1 "$DST" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.2
done
[ "$ok" = 1 ] || die "host-a cannot reach host-b through $MODE after 30 pings"

mtu=$( [ -n "$TUNDEV" ] && nsx "$GA" cat "/sys/class/net/$TUNDEV/mtu" 2>/dev/null || echo 1500)
echo "tunnel mode=$MODE metric=info tundev=${TUNDEV:-none} mtu=$mtu kernel=$(uname -r) load=$(cut -d' ' -f1 /proc/loadavg)"
case "$MODE" in
  strongswan)
    v=$(/usr/lib/ipsec/charon --version 2>&1 | awk '{print $NF}' | head -1)
    esp=$(nsx "$GA" swanctl --list-sas --uri "unix://$WORK/ss-a/charon.vici" 2>/dev/null | grep -Eo 'ESP:[^ ]+' | head -1 || true)
    echo "tunnel mode=$MODE metric=version strongswan=$v backend=kernel-libipsec esp=${esp:-?}" ;;
  wireguard-go) echo "tunnel mode=$MODE metric=version wireguard-go=$(wireguard-go --version | awk '/wireguard-go/ {print $2; exit}')" ;;
  openvpn)
    c=$(sed -n "s/.*Data Channel: cipher '\([^']*\)', auth '\([^']*\)'.*/cipher=\1 auth=\2/p" "$WORK/openvpn-a.log" | head -1)
    echo "tunnel mode=$MODE metric=version openvpn=$(openvpn --version | awk 'NR==1 {print $2}') ${c:-cipher=?}" ;;
  svrd) echo "tunnel mode=$MODE metric=version svrd_mtime=$(date -u -r "$SVRD" +%Y-%m-%dT%H:%M:%SZ)" ;;
esac

out=$(nsx "$HA" timeout 15 ping -c 20 -i 0.1 -q "$DST" 2>&1) || say "warning: ping lost packets"
# rtt min/avg/max/mdev = 0.051/0.062/0.090/0.010 ms
rtt=$(sed -n 's|.* = \([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\)/.*|min=\1 avg=\2 max=\3|p' <<<"$out")
loss=$(grep -Eo '[0-9.]+% packet loss' <<<"$out" | cut -d% -f1)
[ -n "$rtt" ] || die "ping gave no RTT: $out"
echo "tunnel mode=$MODE metric=ping unit=ms $rtt loss_pct=${loss:-?}"

bg "$HB" "$WORK/iperf3-server.log" iperf3 -s -p 5201
wait_for 5 "iperf3 server" nsx "$HB" sh -c 'ss -ltn | grep -q ":5201 "'

# iperf3 CLIENT-ARGS...: one client run, JSON in $WORK/last.json.
iperf() { nsx "$HA" timeout -k 2 $((DUR + 20)) iperf3 -c "$DST" -p 5201 -t "$DUR" -J "$@" >"$WORK/last.json" 2>>"$WORK/iperf3-client.log"; }
pyjson() { python3 - "$WORK/last.json" "$MODE" "$@" <<'EOF'
import json, sys
path, mode, kind = sys.argv[1], sys.argv[2], sys.argv[3]
raw = open(path, encoding="utf-8", errors="replace").read()
try:
    j = json.loads(raw)
except ValueError:
    print(f"tunnel mode={mode} metric={kind}{' size=' + sys.argv[4] if kind == 'udp' else ''} error=no_json")
    print(f"iperf3 output (not JSON): {raw[-600:]!r}", file=sys.stderr)
    sys.exit(0)
if "error" in j and not j.get("end"):
    print(f"tunnel mode={mode} metric={kind} error={j['error'].replace(' ', '_')}")
    sys.exit(0)
end = j["end"]
if kind == "tcp":
    r = end["sum_received"]
    s = end["sum_sent"]
    print(f"tunnel mode={mode} metric=tcp gbps={r['bits_per_second'] / 1e9:.4f} "
          f"seconds={r['seconds']:.3f} retransmits={s.get('retransmits', 0)}")
else:
    size = int(sys.argv[4])
    # Sent: datagrams the client handed to its socket. Delivered: the server's received bytes
    # (sum_received, reported back to the client) / payload size, over the longer of the
    # sending time and the receiver's time (a gateway with a deep queue keeps delivering after
    # the sender stopped; that backlog does not count as rate).
    sent = end["sum_sent"]["packets"]
    secs = max(end["sum_sent"]["seconds"], end["sum_received"]["seconds"])
    got = end["sum_received"]["bytes"] // size
    loss = 100.0 * (sent - got) / sent if sent else 0.0
    print(f"tunnel mode={mode} metric=udp size={size} sent_pkts={sent} recv_pkts={got} "
          f"seconds={secs:.3f} sent_kpps={sent / secs / 1e3:.2f} kpps={got / secs / 1e3:.2f} "
          f"loss_pct={loss:.2f} recv_mbps={got * size * 8 / secs / 1e6:.1f}")
EOF
}
iperf || say "warning: iperf3 TCP exited non-zero"
pyjson tcp
sleep 0.5
for size in 64 1400; do
  iperf -u -l "$size" -b 0 || say "warning: iperf3 UDP $size exited non-zero"
  pyjson udp "$size"
  sleep 0.5
done

# Proof that the traffic took the tunnel (or, for svrd, svrd's own counters at exit).
if [ -n "$TUNDEV" ]; then
  tx=$(nsx "$GA" cat "/sys/class/net/$TUNDEV/statistics/tx_packets")
  echo "tunnel mode=$MODE metric=check dev=$TUNDEV tx_packets=$tx"
  [ "$tx" -gt 1000 ] || die "only $tx packets left through $TUNDEV: the traffic did not take the tunnel"
fi
say "done"
