#!/usr/bin/env bash
# Proves the multipath testbed's equipment (testbed/multipath.sh, testbed/impair.py) without
# svrd: `multipath.sh up --kernel` makes the routers plain kernel hosts with the waypoint
# addresses, and ping from mp-router-a to mp-router-b measures each impairment:
#
#   1. each link carries IPv4 and IPv6 (and host-a reaches host-b through link 1)
#   2. 10 % loss, 500 pings at 5 ms: nftables a2b on link 1 (IPv4), nftables b2a on link 2
#      (IPv6), the forwarder's own loss a2b on link 2; each within 4-17 % (about +-3 sigma),
#      and the other link stays clean
#   3. 100 ms one-way delay (forwarder, a2b): the RTT grows by 90-130 ms
#   4. 50 ms +- 20 ms jitter: mdev above 5 ms (below 2 ms before)
#   5. heal: back on the bridge, RTT under 5 ms
#   6. loss=100 black-holes link 1; link-down 1 stops link 1 (link 2 unaffected), link-up 1 restores it
#
# Bounded (a 90 s watchdog), cleans up on any exit. Root; needs nftables and python3.
set -euo pipefail
TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MP="$TB_DIR/multipath.sh"
LIMIT=${MP_SELFTEST_LIMIT:-90}

fail() { echo "[mp-selftest] FAIL: $*" >&2; tail -n 5 "${MP_RUN:-$TB_DIR/run/mp}"/link?.log 2>/dev/null >&2 || true; exit 1; }
ok() { echo "[mp-selftest] ok: $*"; }

watchdog=
cleanup() {
  local rc=$?
  [ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null || true
  bash "$MP" down 2>/dev/null || true
  [ $rc = 0 ] && echo "[mp-selftest] PASS (${SECONDS}s)" || echo "[mp-selftest] failed (rc $rc, ${SECONDS}s)" >&2
  exit $rc
}
trap cleanup EXIT
trap 'fail "interrupted (watchdog: over ${LIMIT}s?)"' TERM INT
( sleep "$LIMIT"; echo "[mp-selftest] watchdog: ${LIMIT}s" >&2; kill -TERM $$ ) & watchdog=$!

# pingstat NS DST COUNT INTERVAL: "LOSS_PCT AVG_MS MDEV_MS" (avg/mdev "-" if nothing came back).
pingstat() {
  local out
  # No -w: with a deadline ping waits for COUNT replies and counts the ones in flight as lost.
  out=$(timeout 20 ip netns exec "$1" ping -q -n -c "$3" -i "$4" -W 1 "$2" 2>&1 || true)
  python3 - "$out" <<'EOF'
import re, sys
t = sys.argv[1]
loss = re.search(r"([0-9.]+)% packet loss", t)
rtt = re.search(r"= [0-9.]+/([0-9.]+)/[0-9.]+/([0-9.]+) ms", t)
print(loss.group(1) if loss else "100", *(rtt.groups() if rtt else ("-", "-")))
EOF
}
# within X LO HI: LO <= X <= HI (floats)
within() { python3 -c "import sys; x,lo,hi=map(float,sys.argv[1:]); sys.exit(0 if lo<=x<=hi else 1)" "$1" "$2" "$3"; }
A=mp-router-a

bash "$MP" up --kernel 2>/dev/null

# 1. Reachability on both links, both families.
for dst in 10.91.0.2 fd00:91::2 10.92.0.2 fd00:92::2; do
  read -r loss avg _ < <(pingstat $A $dst 5 0.05)
  [ "$loss" = 0 ] || fail "ping $dst: $loss % loss on a clean link"
done
read -r loss _ _ < <(pingstat mp-host-a 10.2.0.2 3 0.05)
[ "$loss" = 0 ] || fail "host-a -> host-b: $loss % loss"
ok "both links carry IPv4 and IPv6; host-a reaches host-b"

# 2. Loss, 10 %, 500 pings at 5 ms.
measure_loss() { # LABEL DST OTHER_DST
  local l o
  read -r l _ _ < <(pingstat $A "$2" 500 0.005)
  within "$l" 4 17 || fail "$1: measured $l % loss, want 10 % (4-17)"
  read -r o _ _ < <(pingstat $A "$3" 50 0.005)
  [ "$o" = 0 ] || fail "$1: the other link ($3) lost $o %"
  ok "$1: 10 % set, $l % measured over 500 pings (other link clean)"
}
bash "$MP" impair 1 a2b loss=10 2>/dev/null
measure_loss "link 1 a2b nftables loss, IPv4" 10.91.0.2 10.92.0.2
bash "$MP" heal 1 2>/dev/null
bash "$MP" impair 2 b2a loss=10 2>/dev/null
measure_loss "link 2 b2a nftables loss, IPv6" fd00:92::2 fd00:91::2
bash "$MP" impair 2 b2a loss=0 2>/dev/null
bash "$MP" impair 2 a2b loss=10 delay=1 2>/dev/null
measure_loss "link 2 a2b forwarder loss (+1 ms), IPv4" 10.92.0.2 10.91.0.2
bash "$MP" heal 2 2>/dev/null

# 3. Delay: 100 ms one way.
read -r _ base basemdev < <(pingstat $A 10.91.0.2 20 0.05)
bash "$MP" impair 1 a2b delay=100 2>/dev/null
read -r loss avg _ < <(pingstat $A 10.91.0.2 20 0.05)
[ "$loss" = 0 ] || fail "delay: $loss % loss"
grow=$(python3 -c "print(round($avg - $base, 1))")
within "$grow" 90 130 || fail "delay: RTT grew by $grow ms (avg $base -> $avg), want ~100"
ok "100 ms a2b delay on link 1: RTT $base -> $avg ms (+$grow)"

# 4. Jitter.
bash "$MP" impair 1 a2b delay=50 jitter=20 2>/dev/null
read -r loss avg mdev < <(pingstat $A fd00:91::2 40 0.05)
[ "$loss" = 0 ] || fail "jitter: $loss % loss"
within "$mdev" 5 40 || fail "jitter: mdev $mdev ms, want > 5 (baseline $basemdev)"
within "$avg" 35 75 || fail "jitter: avg $avg ms, want ~50"
within "$basemdev" 0 2 || fail "baseline mdev $basemdev ms is already above 2"
ok "50 +- 20 ms a2b on link 1 (IPv6): avg $avg ms, mdev $mdev ms (baseline mdev $basemdev)"

# 5. Heal.
bash "$MP" heal 1 2>/dev/null
read -r loss avg _ < <(pingstat $A 10.91.0.2 10 0.02)
[ "$loss" = 0 ] && within "$avg" 0 5 || fail "heal: $loss % loss, avg $avg ms"
ok "heal: link 1 back on the bridge (avg $avg ms)"

# 6. Black hole (carrier stays up), then link down and up.
bash "$MP" impair 1 both loss=100 2>/dev/null
read -r loss _ _ < <(pingstat $A 10.91.0.2 5 0.05)
[ "$loss" = 100 ] || fail "loss=100: link 1 still answers ($loss % loss)"
bash "$MP" heal 1 2>/dev/null
ok "impair 1 both loss=100 black-holes link 1"
bash "$MP" link-down 1 2>/dev/null
read -r loss _ _ < <(pingstat $A 10.91.0.2 5 0.2)
[ "$loss" = 100 ] || fail "link-down: link 1 still answers ($loss % loss)"
read -r loss _ _ < <(pingstat $A 10.92.0.2 5 0.05)
[ "$loss" = 0 ] || fail "link-down 1: link 2 lost $loss %"
bash "$MP" link-up 1 2>/dev/null
t0=$SECONDS; up=0
for _ in $(seq 1 20); do
  if ip netns exec $A ping -q -n -c 1 -W 1 10.91.0.2 >/dev/null 2>&1; then up=1; break; fi
done
[ $up = 1 ] || fail "link-up: link 1 does not come back"
read -r loss _ _ < <(pingstat $A fd00:91::2 5 0.05)
[ "$loss" = 0 ] || fail "link-up: IPv6 $loss % loss"
ok "link-down 1 stops link 1 (link 2 unaffected); link-up 1 restores it ($((SECONDS - t0)) s)"
