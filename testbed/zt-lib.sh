#!/usr/bin/env bash
# Shared helpers of the zero-trust testbed tests (zt-e2e-test.sh, attack-test.sh,
# zt-recovery-test.sh, benches/zt-flood.sh). Source it after testbed.sh; set ZT_TAG first
# (the prefix of ok/fail lines). Needs: RUN, SVRD, TB_DIR (from testbed.sh).
#
#   fail MSG / ok MSG          report (fail prints both routers' log tails and exits 1)
#   zt_make_pki                a fresh PKI in $RUN/pki: root, intermediate, router-a/b/c
#   derive SRC DST [SED...]    a config from a zt config with absolute PKI paths, then sed edits
#   wait_log R REGEX SECS [FROM]   wait for a log line of router R after line FROM
#   lines R / count_log R REGEX FROM TO / counter R "drop NAME" / dump R...
#   both_in_service FROM_A FROM_B SECS   peering established and every path in service
#   log_ts LINE                the unix time (float) of a "[2024-...Z ...]" log line
ZT_TAG=${ZT_TAG:-zt}
PKI=${PKI:-$RUN/pki}

fail() { echo "[$ZT_TAG] FAIL: $*" >&2; for r in router-a router-b; do echo "--- $r log (tail)"; tail -n 60 "$RUN/$r.log" 2>/dev/null; done >&2; exit 1; }
ok() { echo "[$ZT_TAG] ok: $*"; }
note() { echo "[$ZT_TAG] $*"; }

zt_make_pki() {
  rm -rf "$PKI"
  "$SVRD" pki init "$PKI" --authority testbed >/dev/null
  local n
  for n in router-a.testbed.svr router-b.testbed.svr router-c.testbed.svr; do
    "$SVRD" pki issue "$PKI" "$n" >/dev/null
  done
}

# A config derived from a zt config: absolute PKI paths (it lives in $RUN), then sed edits.
derive() { # derive SRC DST [sed-expr...]
  local src=$1 dst=$2; shift 2
  sed "s#run/pki#$RUN/pki#g" "$src" > "$dst"
  for e in "$@"; do sed -i "$e" "$dst"; done
}

# wait_log ROUTER REGEX SECONDS [FROM_LINE]: wait for a log line after line FROM_LINE.
wait_log() {
  local r=$1 re=$2 secs=$3 from=${4:-0} i
  for i in $(seq 1 $((secs * 10))); do
    tail -n +"$((from + 1))" "$RUN/$r.log" | grep -qE -- "$re" && return 0
    sleep 0.1
  done
  return 1
}
lines() { wc -l < "$RUN/$1.log"; }
count_log() { # count_log ROUTER REGEX FROM_LINE TO_LINE
  sed -n "$(($3 + 1)),$4p" "$RUN/$1.log" | grep -cE -- "$2" || true
}
# The value of the latest "slowpath NAME=" or "drop NAME=" or "svr NAME=" line after SIGUSR1.
counter() { # counter ROUTER "drop svr_path_out_of_service"
  { grep -E "^$2=" "$RUN/$1.log" || true; } | tail -n 1 | sed 's/.*=//'
}
dump() {
  local r
  for r in "$@"; do kill -USR1 "$(cat "$RUN/$r.pid")"; done
  sleep 0.5
}

both_in_service() { # both_in_service FROM_A FROM_B SECONDS: every path on both sides
  local fa=$1 fb=$2 secs=$3 r from
  wait_log router-a "event=peering-established" "$secs" "$fa" || fail "router-a: no peering-established"
  wait_log router-b "event=peering-established" "$secs" "$fb" || fail "router-b: no peering-established"
  for r in router-a router-b; do
    from=$fa; [ "$r" = router-b ] && from=$fb
    wait_log "$r" "path=10\.9\.0\.[12]->10\.9\.0\.[12] event=path-in-service" "$secs" "$from" || fail "$r: IPv4 path not in service"
    wait_log "$r" "path=fd00:9::[12]->fd00:9::[12] event=path-in-service" "$secs" "$from" || fail "$r: IPv6 path not in service"
  done
}

# log_ts "[2025-01-01T00:00:00.123Z ...] ...": unix seconds as a float.
log_ts() {
  python3 -c "import datetime,re,sys; m=re.match(r'^\[([^ \]]+)', sys.argv[1]); print(datetime.datetime.fromisoformat(m.group(1).replace('Z','+00:00')).timestamp() if m else '')" "$1"
}
