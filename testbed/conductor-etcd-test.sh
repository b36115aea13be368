#!/usr/bin/env bash
# Conductor replicas over etcd (issue 11): a three-member etcd cluster on loopback (Debian's
# etcd-server) with TLS on its client URLs (client certificates required) and
# authentication on, two svr-conductor replicas A and B sharing it (--store etcd, over TLS
# with a client certificate, as the etcd user `conductor`), and a
# simulated router (conductor/examples/sim-router.rs, the crate's own client) that lists
# both replicas and is attached to A. Then the etcd leader and replica A are killed, a
# changed document is applied through B, and the router must receive the new revision by
# failing over to B. Last, the router goes silent and its status lease must expire, taking
# it out of `show routers`' live columns; B's etcd token (2 s) expires and its next apply
# authenticates again. Replicas with no CA, a wrong password or a bad file must refuse to
# start, saying why.
#
# Needs: /usr/bin/etcd (etcd-server), etcdctl (etcd-client), openssl, curl, python3
# (scripts/setup.sh installs them). No
# namespaces, no root-only steps; ports 23179-23481 on 127.0.0.1. Every process is bounded
# by `timeout` and killed by the EXIT trap, pass or fail. Runs in about 30 s once built.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); printf '  ok   %s\n' "$*"; }
bad() { FAIL=$((FAIL + 1)); printf '  FAIL %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
say() { printf '[etcd-test] %s\n' "$*"; }

for tool in etcd etcdctl openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "[etcd-test] error: $tool not found (run scripts/setup.sh)" >&2; exit 1; }
done

say "building svr-conductor and the simulated router"
nice -n 10 cargo build -q -p svr-conductor --bin svr-conductor --example sim-router
BIN=$ROOT/target/debug/svr-conductor
SIM=$ROOT/target/debug/examples/sim-router

T=$(mktemp -d /tmp/svr-etcd-test.XXXXXX)
PIDS=()
# kill9 PID: kills PID's children (the process a `timeout` runs) and PID itself, by id.
kill9() {
  local c
  for c in $(pgrep -P "$1" || true); do kill -9 "$c" 2>/dev/null || true; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  { for p in "${PIDS[@]}"; do kill9 "$p"; done
    for p in "${PIDS[@]}"; do wait "$p" || true; done; } 2>/dev/null
  if [ "$rc" -ne 0 ] || [ "$FAIL" -ne 0 ]; then
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f (tail)"; tail -n 15 "$f"; }; done
  fi
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT

# --- certificates: a CA, the members' server certificate, a client certificate -----------
P=$T/pki
mkdir -p "$P"
mkcert() { # NAME SUBJECT EXTENSIONS: a P-256 key and a certificate signed by the CA
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
    -keyout "$P/$1.key" -out "$P/$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$P/$1.ext"
  openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
    -days 2 -extfile "$P/$1.ext" -out "$P/$1.pem" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=svr-etcd-test CA" -keyout "$P/ca.key" -out "$P/ca.pem" 2>/dev/null
mkcert server "/CN=etcd" "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
# The CN is no etcd user: a request is the conductor's only with its password's token.
mkcert client "/CN=svr-etcd-test client" "extendedKeyUsage=clientAuth"
check "openssl: CA, server (IP:127.0.0.1) and client certificates" \
  eval 'openssl verify -CAfile "$P/ca.pem" "$P/server.pem" "$P/client.pem" >/dev/null'
printf 'root-%s\n' "$RANDOM$RANDOM" >"$P/root.pw"
printf 'conductor-%s\n' "$RANDOM$RANDOM" >"$P/conductor.pw"
printf 'not-the-password\n' >"$P/wrong.pw"
chmod 600 "$P"/*.key "$P"/*.pw

# --- etcd: three members on loopback, TLS client URLs, authentication on -----------------
CLUSTER=m1=http://127.0.0.1:23180,m2=http://127.0.0.1:23280,m3=http://127.0.0.1:23380
ENDPOINTS=127.0.0.1:23179,127.0.0.1:23279,127.0.0.1:23379
declare -A ETCD_PID
for i in 1 2 3; do
  timeout 150 etcd --name "m$i" --data-dir "$T/m$i" \
    --listen-client-urls "https://127.0.0.1:23${i}79" --advertise-client-urls "https://127.0.0.1:23${i}79" \
    --cert-file "$P/server.pem" --key-file "$P/server.key" --trusted-ca-file "$P/ca.pem" --client-cert-auth \
    --listen-peer-urls "http://127.0.0.1:23${i}80" --initial-advertise-peer-urls "http://127.0.0.1:23${i}80" \
    --initial-cluster "$CLUSTER" --initial-cluster-token svr-etcd-test --initial-cluster-state new \
    --heartbeat-interval 100 --election-timeout 1000 --auth-token-ttl 2 \
    >"$T/etcd-m$i.log" 2>&1 &
  ETCD_PID[$i]=$!
  PIDS+=($!)
done
TLSCURL=(curl -s --cacert "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key")
healthy() { "${TLSCURL[@]}" -m 2 "https://127.0.0.1:23${1}79/health" | grep -q '"health":"true"'; }
for _ in $(seq 1 60); do
  if healthy 1 && healthy 2 && healthy 3; then break; fi
  sleep 0.5
done
check "etcd: three members healthy (https, client certificate)" eval 'healthy 1 && healthy 2 && healthy 3'
check "etcd: a client without a certificate is refused" \
  eval '! curl -s -m 2 --cacert "$P/ca.pem" https://127.0.0.1:23179/health >/dev/null'
[ "$FAIL" -eq 0 ] || exit 1
ctl() { # etcdctl over TLS as root (once auth is on)
  timeout 20 etcdctl --endpoints "https://127.0.0.1:23179,https://127.0.0.1:23279,https://127.0.0.1:23379" \
    --cacert "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key" "$@"
}
{ ctl user add root --new-user-password "$(head -n 1 "$P/root.pw")" &&
  ctl user add conductor --new-user-password "$(head -n 1 "$P/conductor.pw")" &&
  ctl role add svr-acme &&
  ctl role grant-permission svr-acme --prefix=true readwrite /svr/v1/acme/ &&
  ctl user grant-role conductor svr-acme &&
  ctl auth enable; } >"$T/etcdctl.log" 2>&1
ROOTUSER="root:$(head -n 1 "$P/root.pw")"
check "etcd: authentication on, user conductor may read and write /svr/v1/acme/ only" \
  eval 'ctl --user "$ROOTUSER" role get svr-acme 2>&1 | grep -q "/svr/v1/acme/" &&
        ! ctl --user "conductor:$(head -n 1 "$P/conductor.pw")" get /svr/v1/other/ --prefix >/dev/null 2>&1 &&
        ! ctl get /svr/v1/acme/ --prefix >/dev/null 2>&1'
[ "$FAIL" -eq 0 ] || exit 1

# --- two conductor replicas sharing it ----------------------------------------------------
"$SIM" pki "$T"
ETCD_TLS=(--etcd-cacert "$P/ca.pem" --etcd-cert "$P/client.pem" --etcd-key "$P/client.key")
STORE=(--store etcd --etcd-endpoints "$ENDPOINTS" --authority acme "${ETCD_TLS[@]}"
  --etcd-user conductor --etcd-password-file "$P/conductor.pw")
A=127.0.0.1:23480
B=127.0.0.1:23481
replica() { # NAME ADDR
  mkdir -p "$T/$1"
  timeout 150 "$BIN" --state "$T/$1" "${STORE[@]}" serve --listen "$2" \
    --server-name conductor.acme.svr --root "$T/root.pem" --ca-cert "$T/intermediate.pem" \
    --ca-key "$T/intermediate.key.pem" --status-ttl 3 --replica "$1" >"$T/conductor-$1.log" 2>&1 &
  PIDS+=($!)
  LAST=$!
}
replica a $A
PID_A=$LAST
replica b $B
for _ in $(seq 1 60); do
  if grep -q "listening on" "$T/conductor-a.log" && grep -q "listening on" "$T/conductor-b.log"; then break; fi
  sleep 0.5
done
check "replicas A ($A) and B ($B) serving" \
  eval 'grep -q "listening on" "$T/conductor-a.log" && grep -q "listening on" "$T/conductor-b.log"'
# --- replicas that must refuse to start, saying why --------------------------------------
# refused NAME STORE-OPTION...: serve must exit non-zero (not by timeout); its output is in
# $T/refused-NAME.log, its last line in $why.
refused() {
  local n=$1 rc=0
  shift
  mkdir -p "$T/$n"
  timeout 40 "$BIN" --state "$T/$n" "$@" serve --listen 127.0.0.1:23482 \
    --server-name conductor.acme.svr --root "$T/root.pem" --ca-cert "$T/intermediate.pem" \
    --ca-key "$T/intermediate.key.pem" >"$T/refused-$n.log" 2>&1 || rc=$?
  why=$(tail -n 1 "$T/refused-$n.log")
  echo "    $n: exit $rc: $why"
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && ! grep -q "listening on" "$T/refused-$n.log"
}
BASE=(--store etcd --etcd-endpoints "$ENDPOINTS" --authority acme)
check "a replica without --etcd-cacert fails to start against the TLS cluster" \
  refused nocacert "${BASE[@]}" --etcd-user conductor --etcd-password-file "$P/conductor.pw"
check "  ... with a clear error" grep -q -- "^svr-conductor: etcd .*give --etcd-cacert" <<<"$why"
check "a replica with a wrong password fails to start with an authentication error" \
  refused wrongpw "${BASE[@]}" "${ETCD_TLS[@]}" --etcd-user conductor --etcd-password-file "$P/wrong.pw"
check "  ... naming authentication" grep -Eq "^svr-conductor: etcd .*authentication" <<<"$why"
check "a replica with a missing --etcd-key file fails with one line naming option and path" \
  eval 'refused nokey "${BASE[@]}" --etcd-cacert "$P/ca.pem" --etcd-cert "$P/client.pem" --etcd-key "$P/none.key" &&
        [ "$(wc -l <"$T/refused-nokey.log")" -eq 1 ] && grep -q -- "^svr-conductor: --etcd-key $P/none.key: " <<<"$why"'

cA() { timeout 30 "$BIN" --state "$T/a" "${STORE[@]}" "$@"; }
cB() { timeout 30 "$BIN" --state "$T/b" "${STORE[@]}" "$@"; }
# row ROUTER FIELD...: fields of ROUTER's row in B's `show routers --json` ('-' for null)
row() {
  cB show routers --json | python3 -c '
import json, sys
r = [x for x in json.load(sys.stdin) if x["router"] == sys.argv[1]]
print(" ".join("-" if not r or r[0].get(f) is None else str(r[0][f]) for f in sys.argv[2:]))
' "$@"
}
# until_row ROUTER FIELDS WANT SECONDS: waits for B's row to read WANT
until_row() {
  local i
  for i in $(seq 1 $(($4 * 4))); do
    [ "$(row "$1" $2)" = "$3" ] && return 0
    sleep 0.25
  done
  echo "    router $1 [$2] = '$(row "$1" $2)', wanted '$3'"
  return 1
}

cp conductor/tests/acme.yaml "$T/acme.yaml"
sed 's#10.7.0.0/24#10.7.0.0/23#' conductor/tests/acme.yaml >"$T/acme2.yaml"
out=$(cA apply "$T/acme.yaml")
check "apply revision 1 through A" grep -q "^revision 1 stored" <<<"$out"
check "B serves A's revision 1 (etcd watch)" until_row router-a "revision state" "1 not-enrolled" 5
token=$(cB token create router-a --ttl 600 | head -n 1)
check "token made through B (64 hex digits)" grep -Eq '^[0-9a-f]{64}$' <<<"$token"

# --- the router: enrolls and watches, attached to A (listed first) ------------------------
R=$T/router
mkdir -p "$R"
cp "$T/root.pem" "$R/"
out=$(timeout 30 "$SIM" enroll "$R" --conductors $A,$B --token "$token" --router router-a --name router-a.acme.svr)
check "router enrolled with B's token through A" grep -q "revision 1 via $A" <<<"$out"
timeout 90 "$SIM" watch "$R" --conductors $A,$B --after 0 --until 2 --deadline 80 >"$T/router-watch.log" 2>&1 &
WATCH=$!
PIDS+=($WATCH)
for _ in $(seq 1 40); do grep -q "status applied Some(1) to $A" "$T/router-watch.log" && break; sleep 0.25; done
check "router got revision 1 from A and reported to A" grep -q "config revision 1 from $A" "$T/router-watch.log"
check "B shows the router up to date (A's status write, through etcd)" \
  until_row router-a "applied state node" "1 up-to-date node-1" 5
# Each replica numbers its own audit events: A's apply and enrollment, B's token.
AUDIT=$(ctl --user "$ROOTUSER" get --prefix --keys-only /svr/v1/acme/audit/ | grep . || true)
check "audit events under each replica's own sequence (audit/a/, audit/b/)" \
  eval 'grep -q "^/svr/v1/acme/audit/a/0*1$" <<<"$AUDIT" && grep -q "^/svr/v1/acme/audit/b/0*1$" <<<"$AUDIT" &&
        ! grep -Eqv "^/svr/v1/acme/audit/[ab]/[0-9]{20}$" <<<"$AUDIT"'

# --- failure: the etcd leader and replica A die; apply through B --------------------------
# etcdctl as root (the gateway's maintenance/status wants a token once auth is on).
leader=$(ctl --user "$ROOTUSER" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
        print(s["Endpoint"][-3])
' || true)
check "etcd leader found" test -n "$leader"
leader=${leader:-1}
say "killing etcd member m$leader (the leader) and replica A"
{ kill9 "${ETCD_PID[$leader]}"; kill9 "$PID_A"; wait "${ETCD_PID[$leader]}" "$PID_A" || true; } 2>/dev/null
check "etcd m$leader and replica A are gone" \
  eval "! healthy $leader && ! curl -s -m 1 -k https://$A/v1/crl >/dev/null"
t0=$(date +%s.%N)
out=$(cB apply "$T/acme2.yaml" 2>&1) || true
t1=$(date +%s.%N)
check "apply revision 2 through B with one etcd member and replica A down" grep -q "^revision 2 stored" <<<"$out"
check "revision 2 changes router-a" grep -q "router-a" <<<"$out"
say "apply took $(python3 -c "print(round($t1 - $t0, 2))") s"
rc=0
timeout 60 tail --pid=$WATCH -f /dev/null || true
wait $WATCH || rc=$?
check "router exited after revision 2 (rc $rc)" test "$rc" -eq 0
check "router received revision 2 from B (failover)" grep -q "config revision 2 from $B" "$T/router-watch.log"
check "B shows the router up to date on revision 2" \
  until_row router-a "applied state node" "2 up-to-date node-1" 5

# --- the router goes silent: its status lease expires -------------------------------------
check "silent router: its status lease expires (node, applied, last seen gone)" \
  until_row router-a "node applied last-seen state" "- - - stale" 15

# --- B's etcd token expires (--auth-token-ttl 2) while it is idle -------------------------
sleep 3 # past the token's lifetime: the precondition of the check below, not an assertion
out=$(cB apply "$T/acme.yaml" 2>&1) || true
check "apply revision 3 through B after its etcd token expired (authenticates again)" \
  grep -q "^revision 3 stored" <<<"$out"

say "router's log:"; sed 's/^/    /' "$T/router-watch.log"
say "replica B's etcd retries:"; { grep -E "WARN|ERROR" "$T/conductor-b.log" || echo "none"; } | sed 's/^/    /'
echo
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
