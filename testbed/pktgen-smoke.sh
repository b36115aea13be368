#!/usr/bin/env bash
# Functional test (not timed) of the packet generator against svrd over memif: svr-pktgen
# (memif server) and svrd (memif client, benches/dut/svrd-dut.yaml with light settings) pass
# traffic at a low fixed rate for 2 seconds in the encrypt direction, then in the decrypt
# direction, and the generator checks that it received every frame it sent (--expect-all).
#
#   testbed/pktgen-smoke.sh            # scripts/test.sh runs it after the end-to-end tests
#
# Light on a 2-CPU CI machine: svrd's worker backs off when idle (idle-backoff: adaptive),
# the generator sleeps when it has nothing to send (--idle-sleep-us), both are bounded by
# `timeout`, and every process started here is stopped on exit (trap).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${SVR_SMOKE_BIN:-$ROOT/target/release}
WORK=$(mktemp -d /tmp/pktgen-smoke.XXXXXX)
say() { printf '[pktgen-smoke] %s\n' "$*" >&2; }

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$ROOT"
if [ "${SVR_SMOKE_BUILD:-1}" != 0 ]; then   # SVR_SMOKE_BUILD=0: use the binaries in $BIN
  cargo build --release -p svrd -p svr-pktgen >&2
fi

# The DUT configuration, lightened: adaptive idle backoff, its own DPDK file prefix and memif
# sockets (so that it can run beside a benchmark), less memory.
CONF=$WORK/svrd-smoke.yaml
sed -e 's/idle-backoff: busy/idle-backoff: adaptive/' \
    -e 's/file-prefix: svrd-dut/file-prefix: svrd-smoke/' \
    -e 's/memory-mb: 192/memory-mb: 128/' \
    -e 's#/run/svr-dut/#/run/svr-smoke/#g' \
    benches/dut/svrd-dut.yaml >"$CONF"
"$BIN/svrd" --check "$CONF" >/dev/null

LAN="net_memif0,role=server,socket=/run/svr-smoke/lan.sock,mac=02:00:00:00:e0:01"
WAN="net_memif1,role=server,socket=/run/svr-smoke/wan.sock,mac=02:00:00:00:e0:02"
COMMON=(--svr-config "$CONF" --flows 256 --size 64,imix --rate 0.02 --duration 2
        --idle-sleep-us 100 --expect-all --mem-mb 96 --mbufs 4095 --file-prefix pktgen-smoke
        --link-timeout 20 --linger 20)

run() { # name, generator args...
  local name=$1 gp sp rc=0
  shift
  timeout 60 "$BIN/svr-pktgen" "$@" "${COMMON[@]}" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  gp=$!
  PIDS+=("$gp")
  sleep 1
  timeout 70 "$BIN/svrd" --config "$CONF" >"$WORK/$name.svrd.log" 2>&1 </dev/null &
  sp=$!
  PIDS+=("$sp")
  # "pktgen: done" comes after the results, while the generator keeps the links up
  # (--linger): stop svrd first, then the generator.
  while kill -0 "$gp" 2>/dev/null && ! grep -q "^pktgen: done" "$WORK/$name.err"; do
    sleep 0.2
  done
  kill -TERM "$sp" 2>/dev/null || true
  wait "$sp" 2>/dev/null || true
  if grep -q "^pktgen: done" "$WORK/$name.err"; then
    kill -TERM "$gp" 2>/dev/null || true
    wait "$gp" 2>/dev/null || true
    if grep -q "^pktgen: FAIL" "$WORK/$name.err"; then rc=1; fi
  else
    wait "$gp" || rc=$?
    [ "$rc" -ne 0 ] || rc=1
  fi
  PIDS=()
  sed 's/^/  /' "$WORK/$name.err" >&2
  if [ "$rc" -ne 0 ]; then
    say "FAIL: $name (generator exit $rc); svrd's log:"
    tail -30 "$WORK/$name.svrd.log" >&2
    exit 1
  fi
  say "ok: $name: every frame sent came back"
}

say "encrypt direction: LAN plaintext in, SVR out to the peer waypoint"
run encrypt --mode svr-encrypt --tx-dev "$LAN" --rx-dev "$WAN" --dst-mac 02:00:00:00:d0:01 \
  --src-ip 10.1.1.1 --dst-ip 10.2.0.2
say "decrypt direction: SVR from the peer in, plaintext out to the LAN host"
run decrypt --mode svr-decrypt --tx-dev "$WAN" --rx-dev "$LAN" --dst-mac 02:00:00:00:d0:02 \
  --src-ip 10.2.1.1 --dst-ip 10.1.0.2
say "passed"
