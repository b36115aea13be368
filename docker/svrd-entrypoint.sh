#!/bin/sh
# Entrypoint of the svrd image (docker/Dockerfile). Two jobs:
#
#   svrd-entrypoint make-pki DIR AUTHORITY NAME...
#       a fresh PKI for a testbed (compose.yaml's one-shot `pki` service): `svrd pki init` and
#       one `svrd pki issue` per router name, unless DIR/root.pem already exists.
#   svrd-entrypoint [svrd arguments]         (default: --config /etc/svrd/svrd.yaml)
#       names the interfaces, then becomes svrd (exec: svrd is PID 1 and gets docker's SIGTERM).
#
# Interface names: Docker names a container's interfaces eth0, eth1, ... in the order it
# attaches the networks, which compose does not promise. SVR_IFACES="lan=10.1.0.1 wan=10.9.0.1"
# says which interface is which by the IPv4 address Docker gave it; each is renamed (`ip link
# set ... name`, CAP_NET_ADMIN), its addresses are removed and ARP and IPv6 address generation
# are turned off, so that the container's kernel stays silent on a link svrd drives through
# af_packet (the namespace testbed does the same), and its offloads are turned off (af_packet
# sees frames as the kernel queued them: no unfinished checksums, no super-frames).
set -eu
say() { printf '[svrd-entrypoint] %s\n' "$*" >&2; }

if [ "${1:-}" = make-pki ]; then
  dir=$2 authority=$3
  shift 3
  if [ -f "$dir/root.pem" ]; then say "PKI already in $dir"; exit 0; fi
  svrd pki init "$dir" --authority "$authority" >/dev/null
  for n in "$@"; do svrd pki issue "$dir" "$n" >/dev/null; done
  say "PKI made in $dir: root, intermediate, $*"
  exit 0
fi

for pair in ${SVR_IFACES:-}; do
  name=${pair%%=*} addr=${pair#*=}
  dev=$(ip -o -4 addr show | awk -v a="$addr" '{split($4, p, "/"); if (p[1] == a) { sub(/@.*/, "", $2); print $2; exit }}')
  if [ -z "$dev" ]; then
    # A restarted container: renamed and flushed already.
    ip link show dev "$name" >/dev/null 2>&1 || { say "error: no interface has $addr (for $name)"; exit 1; }
    dev=$name
  fi
  ip link set dev "$dev" down
  [ "$dev" = "$name" ] || ip link set dev "$dev" name "$name"
  ip link set dev "$name" addrgenmode none 2>/dev/null || true
  ip addr flush dev "$name"
  ip link set dev "$name" arp off
  ethtool -K "$name" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
  ip link set dev "$name" up
  say "$dev -> $name ($(cat "/sys/class/net/$name/address"), was $addr)"
done

[ "$#" -gt 0 ] || set -- --config /etc/svrd/svrd.yaml
case "$1" in -*) set -- svrd "$@" ;; esac
exec "$@"
