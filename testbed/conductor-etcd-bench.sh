#!/usr/bin/env bash
# The conductor benchmark's etcd variant (BENCHMARKS.md section 10): three etcd members on
# loopback, two svr-conductor replicas sharing them (--store etcd), and
# target/release/conductor --routers N against both replicas (--connect twice; tokens and
# applies through replica A's admin socket; the RSS of both replicas).
#
# Usage: testbed/conductor-etcd-bench.sh [N]   (default 1000; prints the benchmark's line)
# Needs: /usr/bin/etcd, curl, and the release binaries:
#   cargo build --release -p svr-conductor -p svr-benches --bin svr-conductor --bin conductor
#   cargo build --release -p svr-conductor --example sim-router
# Ports 24179-24481 on 127.0.0.1. Every process is bounded by `timeout` and killed (by id)
# on exit; the work directory is removed unless the run failed.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-1000}
T=$(mktemp -d /tmp/svr-etcd-bench.XXXXXX)
CLUSTER=m1=http://127.0.0.1:24180,m2=http://127.0.0.1:24280,m3=http://127.0.0.1:24380
ENDPOINTS=127.0.0.1:24179,127.0.0.1:24279,127.0.0.1:24379
PIDS=()
rc=1
cleanup() {
  local p c
  for p in "${PIDS[@]}"; do
    for c in $(pgrep -P "$p" || true); do kill -9 "$c" 2>/dev/null || true; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null
  if [ "$rc" -eq 0 ]; then rm -rf "$T"; else echo "[etcd-bench] logs kept in $T" >&2; fi
}
trap cleanup EXIT

# An apply is one txn of the document (about 530 bytes a router) and a few keys: etcd's
# default --max-txn-ops does; its 1.5 MiB request limit holds about 2,500 routers, so raise it.
for i in 1 2 3; do
  timeout 1500 etcd --name "m$i" --data-dir "$T/m$i" \
    --listen-client-urls "http://127.0.0.1:24${i}79" --advertise-client-urls "http://127.0.0.1:24${i}79" \
    --listen-peer-urls "http://127.0.0.1:24${i}80" --initial-advertise-peer-urls "http://127.0.0.1:24${i}80" \
    --initial-cluster "$CLUSTER" --initial-cluster-token svr-etcd-bench --initial-cluster-state new \
    --heartbeat-interval 100 --election-timeout 1000 \
    --max-request-bytes 16777216 --quota-backend-bytes 8589934592 \
    >"$T/etcd-m$i.log" 2>&1 &
  PIDS+=($!)
done
healthy() { curl -s -m 2 "http://127.0.0.1:24${1}79/health" | grep -q '"health":"true"'; }
for _ in $(seq 1 60); do healthy 1 && healthy 2 && healthy 3 && break; sleep 0.5; done
if ! { healthy 1 && healthy 2 && healthy 3; }; then echo "[etcd-bench] etcd not healthy" >&2; exit 1; fi

"$ROOT/target/release/examples/sim-router" pki "$T" >/dev/null
STORE=(--store etcd --etcd-endpoints "$ENDPOINTS" --authority bench)
replica() { # NAME ADDR
  mkdir -p "$T/$1"
  timeout 1500 "$ROOT/target/release/svr-conductor" --state "$T/$1" "${STORE[@]}" serve --listen "$2" \
    --server-name conductor.bench.svr --root "$T/root.pem" --ca-cert "$T/intermediate.pem" \
    --ca-key "$T/intermediate.key.pem" --max-connections $((N + 256)) >"$T/conductor-$1.log" 2>&1 &
  PIDS+=($!)
  LAST=$!
}
A=127.0.0.1:24480
B=127.0.0.1:24481
replica a $A
TA=$LAST
replica b $B
TB=$LAST
for _ in $(seq 1 60); do
  grep -q "listening on" "$T/conductor-a.log" && grep -q "listening on" "$T/conductor-b.log" && break
  sleep 0.5
done
PA=$(pgrep -P "$TA")
PB=$(pgrep -P "$TB")
echo "[etcd-bench] replicas $A (pid $PA), $B (pid $PB); load $(cat /proc/loadavg)" >&2
timeout 1200 "$ROOT/target/release/conductor" --routers "$N" --connect $A --connect $B \
  --state "$T/a" --root "$T/root.pem" --pid "$PA" --pid "$PB"
rc=$?
echo "[etcd-bench] conflict reloads: $(cat "$T"/conductor-*.log | grep -c 'reloaded, trying again')" >&2
exit $rc
