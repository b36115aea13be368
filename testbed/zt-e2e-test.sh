#!/usr/bin/env bash
# Zero-trust end-to-end test: two real svrd appliances with ENHANCED SECURITY KEY MANAGEMENT
# (testbed/router-a-zt.yaml, router-b-zt.yaml: no key in the files) on the four-namespace
# testbed. A fresh PKI is made per run with `svrd pki` in testbed/run/pki. Asserts:
#   - for x25519 and for dh-modp-4096: both routers peer (events in the logs), every peer
#     path (IPv4 and IPv6 waypoint pairs) comes into service, ping / TCP / UDP cross as SVR
#     sessions keyed by the exchange;
#   - under a steady UDP stream (numbered datagrams at a fixed rate, echoed back, a new
#     session every 500) several peer-key, metadata-key and payload-key rotations happen
#     (test-time-scale 360: 1 h intervals fire every 10 s), the live sessions are re-keyed
#     (svr_payload_rekeys_*) and no datagram is lost;
#   - killing router-b takes router-a's paths out of service within the BFD detection time
#     (3 s) by the event's timestamp; restarting router-b restores traffic with no operator
#     action;
#   - a router-b with a certificate from another CA, an expired or revoked (CRL made by Python
#     `cryptography`) certificate, or the wrong
#     peering-common-name never gets a path into service, and router-a's event says why;
#     a certificate that does not name the router's own peering-common-name stops svrd at
#     start-up.
# Bounded (about three minutes); tear-down always runs.
set -euo pipefail
TB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed.sh
source "$TB_DIR/testbed.sh"
CONF_A=$TB_DIR/router-a-zt.yaml
CONF_B=$TB_DIR/router-b-zt.yaml
ZT_TAG=zt-e2e
# shellcheck source=zt-lib.sh
source "$TB_DIR/zt-lib.sh"

SERVERS=""
cleanup() {
  # shellcheck disable=SC2086
  [ -n "$SERVERS" ] && kill $SERVERS 2>/dev/null
  tb_down
}
trap cleanup EXIT

traffic() { # ping, TCP and a UDP flow host-a <-> host-b, IPv4 and IPv6
  local dst out
  for dst in 10.2.0.2 fd00:2::2; do
    out=$(ip netns exec host-a ping -c 5 -i 0.2 -W 2 "$dst") || fail "ping $dst: $out"
    echo "$out" | grep -q " 0% packet loss" || fail "ping $dst lost packets: $out"
    ok "ping host-a -> $dst over SVR: $(echo "$out" | tail -n 1)"
  done
  ip netns exec host-b iperf3 -s -D -I "$RUN/iperf3.pid" >/dev/null
  sleep 0.3
  for dst in 10.2.0.2 fd00:2::2; do
    local json bytes
    json=$(ip netns exec host-a timeout 30 iperf3 -c "$dst" -t 2 -J) || fail "iperf3 to $dst failed"
    bytes=$(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["end"]["sum_received"]["bytes"]))')
    [ "$bytes" -gt 1000000 ] || fail "iperf3 to $dst moved only $bytes bytes"
    ok "TCP host-a -> $dst over SVR: $bytes bytes"
  done
  kill "$(cat "$RUN/iperf3.pid")" 2>/dev/null || true
  for dst in 10.2.0.2 fd00:2::2; do
    ip netns exec host-b timeout 20 python3 "$TB_DIR/udp_flow.py" serve "$dst" 5001 6 &
    local srv=$! got
    sleep 0.3
    got=$(ip netns exec host-a timeout 15 python3 "$TB_DIR/udp_flow.py" send "$dst" 5001 30 1000) || fail "UDP flow to $dst"
    kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true
    [ "$got" -eq 30 ] || fail "UDP flow to $dst: only $got of 30 datagrams echoed"
    ok "UDP host-a -> $dst -> host-a over SVR: $got/30 echoed"
  done
}

svr_counters_clean() { # the traffic was SVR, keyed by the exchange, and nothing failed crypto
  local r s c n
  dump router-a router-b
  for r in router-a router-b; do
    s=$(grep -E "^svr svr_(ingress|egress)_sessions=" "$RUN/$r.log" | tail -n 2 | sed 's/.*=//' | paste -sd+ | bc)
    [ "${s:-0}" -ge 4 ] || fail "$r: only ${s:-0} SVR sessions"
    for c in svr_hmac_failure svr_replay svr_bad_metadata svr_decrypt_failure svr_unknown_peer; do
      n=$(counter "$r" "drop $c")
      [ "$n" = 0 ] || fail "$r: drop $c=$n on genuine traffic"
    done
    grep -q "^keymgmt peer=router-[ab] role=[A-Za-z]* in-service=1 " "$RUN/$r.log" || fail "$r: keymgmt not in service on SIGUSR1"
    ok "$r: $s SVR sessions, no SVR crypto drops, $(grep -E '^keymgmt peer=' "$RUN/$r.log" | tail -n 1 | cut -d' ' -f2-6)"
  done
}

# ---------------------------------------------------------------- setup
SVRD=${SVRD:-$ROOT/target/release/svrd}
[ -x "$SVRD" ] || fail "$SVRD is missing (cargo build --release -p svrd)"
tb_up
rm -rf "$RUN/pki-other" "$RUN/pki-expired"
zt_make_pki
# Another authority's CA, with a certificate for router-b's own name.
"$SVRD" pki init "$RUN/pki-other" --authority other >/dev/null
"$SVRD" pki issue "$RUN/pki-other" router-b.testbed.svr >/dev/null
# Our CA, but a router-b certificate that is already expired (--days 0: notAfter = now).
mkdir -p "$RUN/pki-expired"
cp "$PKI/root.pem" "$PKI/intermediate.pem" "$PKI/intermediate.key.pem" "$RUN/pki-expired/"
"$SVRD" pki issue "$RUN/pki-expired" router-b.testbed.svr --days 0 >/dev/null
ok "PKI made in $PKI (root, intermediate, router-a/b/c), plus another CA and an expired router-b"
"$SVRD" --check "$CONF_A" >/dev/null || fail "router-a-zt.yaml does not check"
"$SVRD" --check "$CONF_B" >/dev/null || fail "router-b-zt.yaml does not check"

# ---------------------------------------------------------------- x25519, rotations, kill
for alg in x25519 dh-modp-4096; do
  derive "$CONF_A" "$RUN/a-$alg.yaml" "s/key-exchange-algorithm: x25519/key-exchange-algorithm: $alg/"
  derive "$CONF_B" "$RUN/b-$alg.yaml" "s/key-exchange-algorithm: x25519/key-exchange-algorithm: $alg/"
  CONF_B_RUN=$RUN/b-$alg.yaml
  CONF_A=$RUN/a-$alg.yaml CONF_B=$CONF_B_RUN tb_start
  grep -q "key-exchange-algorithm=$alg" "$RUN/router-a.log" || fail "router-a does not run $alg"
  both_in_service 0 0 15
  ok "$alg: router-a and router-b peered, both peer paths (IPv4, IPv6) in service: $(grep -m1 -o 'peer=router-b event=peering-established.*' "$RUN/router-a.log")"
  traffic
  svr_counters_clean

  # Steady UDP stream across rotations: zero loss. If a slow-path thread was not scheduled
  # for a while meanwhile (svrd logs event=slow-path-stall; on a shared two-CPU machine a
  # neighbour's load can starve CPU 0 for seconds and BFD then rightly times out), the loss
  # is not the key exchange's: say so and run the stream once more.
  if [ "$alg" = x25519 ]; then n=3500; else n=1500; fi
  rate=100
  for attempt in 1 2; do
    fa=$(lines router-a); fb=$(lines router-b)
    ip netns exec host-b timeout $((n / rate + 15)) python3 "$TB_DIR/udp_flow.py" serve 10.2.0.2 5002 $((n / rate + 4)) &
    SERVERS="$!"
    sleep 0.3
    out=$(ip netns exec host-a timeout $((n / rate + 15)) python3 "$TB_DIR/udp_flow.py" stream 10.2.0.2 5002 "$n" "$rate" 500) || fail "UDP stream"
    wait $SERVERS 2>/dev/null || true; SERVERS=""
    la=$(lines router-a); lb=$(lines router-b)
    stalls=$(( $(count_log router-a "event=slow-path-stall" "$fa" "$la") + $(count_log router-b "event=slow-path-stall" "$fb" "$lb") ))
    if [ "$attempt" = 1 ] && [ "$stalls" -gt 0 ] && ! echo "$out" | grep -q " lost=0 "; then
      echo "[zt-e2e] note: $out with $stalls slow-path stall(s) logged ($({ sed -n "$((fa + 1)),${la}p" "$RUN/router-a.log"; sed -n "$((fb + 1)),${lb}p" "$RUN/router-b.log"; } | grep -ohE 'gap-ms=[0-9]+' | paste -sd' ')): the machine starved svrd; running the stream again"
      continue
    fi
    break
  done
  pk=$(count_log router-a "event=key-rotated key=peer-key" "$fa" "$la")
  mk=$(count_log router-a "event=key-rotated key=metadata-key" "$fa" "$la")
  pay=$(count_log router-a "event=payload-key-rotation-due" "$fa" "$la")
  pkb=$(count_log router-b "event=key-rotated key=peer-key" "$fb" "$lb")
  payb=$(count_log router-b "event=payload-key-rotation-due" "$fb" "$lb")
  oos=$(count_log router-a "event=path-out-of-service" "$fa" "$la")
  echo "$out" | grep -q "^sent=$n received=$n lost=0 " || fail "UDP stream lost datagrams during rotations: $out"
  # The sessions live across payload-key rotations (5 s each): they were re-keyed in flight.
  dump router-a router-b
  rks=$(counter router-a "svr svr_payload_rekeys_started"); rkc=$(counter router-a "svr svr_payload_rekeys_completed")
  rki=$(counter router-b "svr svr_payload_rekeys_installed"); rkp=$(counter router-b "svr svr_payload_key_previous_used")
  [ "${rks:-0}" -ge 1 ] && [ "${rkc:-0}" -ge 1 ] && [ "${rki:-0}" -ge 1 ] \
    || fail "$alg: live sessions were not re-keyed: router-a started=${rks:-0} completed=${rkc:-0}, router-b installed=${rki:-0}"
  for r in router-a router-b; do
    for c in svr_hmac_failure svr_replay svr_bad_metadata svr_decrypt_failure svr_stale_session; do
      v=$(counter "$r" "drop $c")
      [ "${v:-0}" = 0 ] || fail "$alg: $r: drop $c=$v during payload rekeys"
    done
  done
  ok "$alg: payload rekeys of live sessions: router-a started=$rks completed=$rkc, router-b installed=$rki previous-key-used=${rkp:-0}, no crypto drops"
  min=1; [ "$alg" = x25519 ] && min=2
  [ "$pk" -ge "$min" ] && [ "$mk" -ge "$min" ] && [ "$pay" -ge "$min" ] && [ "$pkb" -ge "$min" ] && [ "$payb" -ge "$min" ] \
    || fail "$alg: too few rotations during the stream: router-a peer-key=$pk metadata-key=$mk payload=$pay, router-b peer-key=$pkb payload=$payb"
  [ "$oos" -eq 0 ] || fail "$alg: a path left service during rotations"
  ok "$alg: UDP stream $out over $((n / rate)) s; rotations meanwhile: router-a peer-key=$pk metadata-key=$mk payload-key=$pay, router-b peer-key=$pkb payload-key=$payb; no path out of service"
  last=$(grep -o "event=payload-key-rotation-due payload-key-index=[0-9]*" "$RUN/router-a.log" | tail -n 1)
  ok "$alg: latest on router-a: $last"

  if [ "$alg" = x25519 ]; then
    # Kill router-b: router-a's paths leave service within the detection time (3 s).
    fa=$(lines router-a)
    pid=$(cat "$RUN/router-b.pid")
    t0=$(date +%s.%N)
    kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$RUN/router-b.pid"
    wait_log router-a "peer=router-b path=10\.9\.0\.1->10\.9\.0\.2 event=path-out-of-service reason=bfd-down" 6 "$fa" || fail "router-a: IPv4 path still in service 6 s after router-b died"
    wait_log router-a "peer=router-b event=path-out-of-service" 2 "$fa" || fail "router-a: no peer-level path-out-of-service event"
    ts=$(tail -n +"$((fa + 1))" "$RUN/router-a.log" | grep -m1 "path=10.9.0.1->10.9.0.2 event=path-out-of-service" | sed -E 's/^\[([^ ]+) .*/\1/')
    dt=$(python3 -c "import datetime,sys; t=datetime.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00')).timestamp(); print(f'{t-float(sys.argv[2]):.3f}')" "$ts" "$t0")
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 3.3 else 1)" "$dt" || fail "path out of service ${dt} s after the kill (detection time 3 s)"
    ok "router-b killed: router-a's path out of service after $dt s (BFD detection 3 s): $(tail -n +"$((fa + 1))" "$RUN/router-a.log" | grep -m1 'event=bfd-down' | sed -E 's/^\[[^]]*\] //')"
    out=$(ip netns exec host-a ping -c 2 -i 0.2 -W 1 10.2.0.2 2>&1 || true)
    dump router-a
    n_oos=$(counter router-a "drop svr_path_out_of_service")
    [ "${n_oos:-0}" -ge 1 ] || fail "router-a: no svr_path_out_of_service drops while router-b is down"
    ok "router-a refuses sessions over the dead path: drop svr_path_out_of_service=$n_oos"
    # Restart router-b: traffic comes back with no operator action.
    fa=$(lines router-a)
    t0=$(date +%s.%N)
    tb_start_one router-b "$CONF_B_RUN"
    tb_wait_ready router-b
    wait_log router-a "path=10\.9\.0\.1->10\.9\.0\.2 event=path-in-service" 15 "$fa" || fail "router-a: path not back in service after router-b restarted"
    # Both ends: router-b's BFD may come Up a little after router-a's (its first key install
    # makes it require authentication mid-handshake).
    wait_log router-b "path=10\.9\.0\.2->10\.9\.0\.1 event=path-in-service" 15 || fail "router-b: path not in service after its restart"
    t1=$(date +%s.%N)
    out=$(ip netns exec host-a ping -c 5 -i 0.2 -W 2 10.2.0.2) || fail "ping after router-b restart: $out"
    echo "$out" | grep -q " 0% packet loss" || fail "ping after router-b restart lost packets: $out"
    ip netns exec host-b timeout 10 python3 "$TB_DIR/udp_flow.py" serve 10.2.0.2 5001 4 &
    srv=$!; sleep 0.3
    got=$(ip netns exec host-a timeout 10 python3 "$TB_DIR/udp_flow.py" send 10.2.0.2 5001 20 500) || fail "UDP after restart"
    kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true
    [ "$got" -eq 20 ] || fail "UDP after router-b restart: $got/20"
    ok "router-b restarted: paths back in service $(python3 -c "import sys; print(f'{float(sys.argv[1])-float(sys.argv[2]):.1f}')" "$t1" "$t0") s after start, ping 0% loss, UDP $got/20, no operator action"
  fi
  for r in router-a router-b; do
    rc=0; tb_stop_one "$r" || rc=$?
    [ "$rc" -eq 0 ] || fail "$r: svrd exit status $rc on SIGTERM"
  done
  ok "$alg: both stopped cleanly"
done

# ---------------------------------------------------------------- bad certificates
# bad_peer NAME CONF_B_FILE EXPECTED_REGEX: router-a (good) against a router-b that must never
# get a path into service; router-a's event must say why.
bad_peer() {
  local what=$1 confb=$2 re=$3 confa=${4:-$RUN/a-x25519.yaml} r
  CONF_A=$confa CONF_B=$confb tb_start
  wait_log router-a "$re" 10 0 || fail "$what: router-a has no event matching /$re/"
  wait_log router-a "peer=router-b path=10\.9\.0\.1->10\.9\.0\.2 event=bfd-up" 10 0 || fail "$what: BFD never came up (the test would prove nothing)"
  sleep 2
  for r in router-a router-b; do
    ! grep -qE "event=path-in-service|event=peering-established" "$RUN/$r.log" || fail "$what: $r put a path into service"
  done
  out=$(ip netns exec host-a ping -c 2 -i 0.2 -W 1 10.2.0.2 2>&1 || true)
  echo "$out" | grep -q " 100% packet loss" || fail "$what: traffic crossed: $out"
  dump router-a
  [ "$(counter router-a "slowpath peer_paths_in_service")" = 0 ] || fail "$what: router-a reports paths in service"
  ok "$what: never in service (BFD up, ping 100% lost, drop svr_path_out_of_service=$(counter router-a "drop svr_path_out_of_service")); router-a: $(grep -m1 -oE "$re.*" "$RUN/router-a.log")"
  tb_stop || true
}
derive "$CONF_B" "$RUN/b-other-ca.yaml" "s#$RUN/pki/router-b.testbed.svr#$RUN/pki-other/router-b.testbed.svr#g"
bad_peer "certificate from another CA" "$RUN/b-other-ca.yaml" 'peer=router-b event=certificate-rejected reason="certificate is not issued under the authority.s root \(unknown issuer\)"'
derive "$CONF_B" "$RUN/b-expired.yaml" "s#$RUN/pki/router-b.testbed.svr#$RUN/pki-expired/router-b.testbed.svr#g"
bad_peer "expired certificate" "$RUN/b-expired.yaml" 'peer=router-b event=certificate-rejected reason="certificate expired"'
grep -q "event=own-certificate-invalid reason=\"certificate expired\"" "$RUN/router-b.log" || fail "the expired router-b did not warn about its own certificate"
derive "$CONF_B" "$RUN/b-wrong-name.yaml" "s#$RUN/pki/router-b.testbed.svr#$RUN/pki/router-c.testbed.svr#g" \
  "s/peering-common-name: router-b.testbed.svr/peering-common-name: router-c.testbed.svr/"
bad_peer "wrong peering-common-name" "$RUN/b-wrong-name.yaml" 'peer=router-b event=peering-failed reason=peer-name-mismatch claimed="router-c.testbed.svr"'
# router-a never offers to a peer whose name it refuses (an offer needs the follower's challenge,
# and the misnamed follower's Key Request is dropped as the wrong peer): b never peers.
! grep -q "event=peering-established" "$RUN/router-b.log" || fail "the misnamed router-b peered"
ok "wrong peering-common-name: router-b never peered either"
# A revoked router-b: router-a's authority names a CRL, made and signed with the intermediate
# CA's key by Python `cryptography` (an implementation independent of ours).
python3 "$TB_DIR/make_crl.py" "$RUN/pki/intermediate.pem" "$RUN/pki/intermediate.key.pem" \
  "$RUN/pki/router-b.testbed.svr.chain.pem" "$RUN/pki/authority.crl.pem" >/dev/null || fail "could not make the CRL"
sed "s#^\(  trusted-ca-certificate: .*\)#\1\n  certificate-revocation-list: $RUN/pki/authority.crl.pem#" \
  "$RUN/a-x25519.yaml" > "$RUN/a-crl.yaml"
grep -q "certificate-revocation-list:" "$RUN/a-crl.yaml" || fail "a-crl.yaml has no CRL"
bad_peer "revoked certificate (CRL)" "$RUN/b-x25519.yaml" 'peer=router-b event=certificate-rejected reason="certificate revoked' "$RUN/a-crl.yaml"
# A certificate that does not name the router's own peering-common-name: svrd refuses to start.
derive "$CONF_B" "$RUN/b-misnamed-cert.yaml" "s#$RUN/pki/router-b.testbed.svr#$RUN/pki/router-c.testbed.svr#g"
out=$("$SVRD" --check "$RUN/b-misnamed-cert.yaml" 2>&1) && fail "svrd accepted a certificate for another name"
echo "$out" | grep -q "peering-common-name: \"router-b.testbed.svr\" is not named by the certificate" || fail "misnamed certificate: unexpected error: $out"
ok "certificate for another name refused at start-up: $out"
echo "[zt-e2e] PASS"
