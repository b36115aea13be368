#!/bin/sh
# svr-ifnames-exec [COMMAND...]: names the container's interfaces, then runs COMMAND (exec).
# In every image (docker/Dockerfile); the svrd entrypoint and the af_packet benchmark use it.
#
# Docker names a container's interfaces eth0, eth1, ... in the order it attaches the networks,
# which compose does not promise. SVR_IFACES="lan=10.1.0.1 wan=10.9.0.1" says which interface is
# which by the IPv4 address Docker gave it (NAME=ADDRESS[,MAC]); each is renamed (`ip link set
# ... name`, CAP_NET_ADMIN), given MAC if one is named, its addresses are removed and ARP and
# IPv6 address generation turned off, so that the container's kernel stays silent on a link
# that DPDK drives through af_packet (the namespace testbed does the same), and its offloads
# are turned off (af_packet sees frames as the kernel queued them: no unfinished checksums, no
# super-frames).
set -eu
say() { printf '[svr-ifnames] %s\n' "$*" >&2; }
for spec in ${SVR_IFACES:-}; do
  name=${spec%%=*} rest=${spec#*=}
  addr=${rest%%,*} mac=
  case "$rest" in *,*) mac=${rest#*,} ;; esac
  dev=$(ip -o -4 addr show | awk -v a="$addr" '{split($4, p, "/"); if (p[1] == a) { sub(/@.*/, "", $2); print $2; exit }}')
  if [ -z "$dev" ]; then
    # A restarted container: renamed and flushed already.
    ip link show dev "$name" >/dev/null 2>&1 || { say "error: no interface has $addr (for $name)"; exit 1; }
    dev=$name
  fi
  ip link set dev "$dev" down
  [ "$dev" = "$name" ] || ip link set dev "$dev" name "$name"
  [ -z "$mac" ] || ip link set dev "$name" address "$mac"
  ip link set dev "$name" addrgenmode none 2>/dev/null || true
  ip addr flush dev "$name"
  ip link set dev "$name" arp off
  ethtool -K "$name" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
  ip link set dev "$name" up
  say "$dev -> $name ($(cat "/sys/class/net/$name/address"), was $addr)"
done
[ "$#" -eq 0 ] || exec "$@"
