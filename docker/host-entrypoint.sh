#!/bin/sh
# Entrypoint of the test host image (docker/Dockerfile): a plain kernel stack behind an svrd
# router. SVR_GW4 / SVR_GW6 are its router's LAN addresses: the default routes point at them
# (the testbed networks are `internal`: Docker gives them no default route). Offloads are
# turned off as in the namespace testbed: svrd reads the frames through af_packet, and a veth
# with checksum offload would hand it packets with unfinished checksums.
set -eu
dev=$(ip -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2; exit }')
ethtool -K "$dev" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
[ -z "${SVR_GW4:-}" ] || ip route replace default via "$SVR_GW4" dev "$dev"
[ -z "${SVR_GW6:-}" ] || ip -6 route replace default via "$SVR_GW6" dev "$dev"
exec "$@"
