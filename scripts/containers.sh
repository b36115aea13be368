#!/usr/bin/env bash
# svr-fastpath in containers: images built from Debian's packages only (no registry), the
# four-box testbed of docker/compose.yaml with zero-trust keys, its test, and the benchmark.
#
#   bash scripts/containers.sh up      # engine, images, hugepages; bring the testbed up, leave it
#   bash scripts/containers.sh test    # up, check it end to end, tear it down (what CI runs)
#   bash scripts/containers.sh bench   # svr-pktgen / dpdk-testpmd around one svrd container and
#                                      # two chained ones (SVR_CTR_BENCH_STEPS: docker/bench.sh);
#                                      # writes the "containers" section of BENCHMARKS.md
#   bash scripts/containers.sh down    # remove everything `up` made (always safe)
#   bash scripts/containers.sh images  # only build the images
#
# One command from a fresh Debian 12 machine, as root: installs docker.io, docker-compose and
# debootstrap with apt if missing, starts dockerd if no engine answers (and leaves it running:
# `--iptables=false --ip-forward=false`, so it changes nothing on the host's firewall or
# forwarding), builds svrd and svr-pktgen with cargo (release), makes the base image with
# debootstrap (cached: its tag is a hash of docker/base-packages.txt and docker/mkbase.sh), the
# project's images FROM it (docker/Dockerfile, a small staged build context), then runs.
#
# test asserts, through two svrd containers with certificates made at start (zero trust):
# ping and TCP (iperf3, 2 s) host-a -> host-b over IPv4 and IPv6, a UDP flow with a marker
# string echoed back, and a capture of the WAN bridge that holds SVR packets between the
# waypoints but no inner address or marker in clear (testbed/svr_wire_check.py); both routers'
# counters show SVR sessions and no crypto drop.
#
# Bounded (SVR_CTR_TIMEOUT, 1800 s, for the whole command); every container, network, volume
# and temporary directory it made is removed on exit, error or signal (trap). The testbed part
# runs under `flock /tmp/testbed.lock` (other testbeds of this machine use the same lock and
# the same hugepages); dockerd is started before the lock is taken, so it never holds it.
#
# Environment:
#   SVR_CTR_BIN=dir      use svrd / svr-pktgen (/ svrctl) from dir instead of building them
#   SVR_TESTBED_LOCK     the lock file of the testbed part (default /tmp/testbed.lock); run this
#                        script directly, not under flock of that file (SVR_CTR_NO_LOCK=1 if so)
#   SVR_CTR_TIMEOUT=s    bound of the whole command (default 1800)
#   SVR_CTR_KEEP=1       keep the run directory (logs, capture) of test / bench
#   SVR_DEBIAN_MIRROR    the Debian mirror of debootstrap (default: this host's apt source)
#   SVR_BENCH_DOC=path   the report bench writes (default BENCHMARKS.md)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMD=${1:-}
case "$CMD" in up|test|bench|down|images) ;; *) echo "usage: $0 up|test|bench|down|images" >&2; exit 2 ;; esac

# The whole command is bounded: on expiry `timeout` sends SIGTERM and the trap cleans up.
if [ -z "${SVR_CTR_BOUNDED:-}" ]; then
  export SVR_CTR_BOUNDED=1
  exec timeout --foreground -k 60 "${SVR_CTR_TIMEOUT:-1800}" bash "$0" "$@"
fi

say() { printf '[containers] %s\n' "$*" >&2; }
ok() { printf '[containers] ok: %s\n' "$*"; }
T0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - T0 )) s"; }

PROJECT=svr
COMPOSE_FILE=$ROOT/docker/compose.yaml
IMG=svr-fastpath
LOCK=${SVR_TESTBED_LOCK:-/tmp/testbed.lock}
HUGEPAGES=${SVR_HUGEPAGES:-384}
export DOCKER_BUILDKIT=0           # the classic builder: no BuildKit frontend image to pull
export COMPOSE_DOCKER_CLI_BUILD=0

[ "$(id -u)" -eq 0 ] || { echo "[containers] error: run as root (Docker, hugepages)" >&2; exit 1; }

RUN=""
CTX=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$CMD" != up ] && [ "$CMD" != images ]; then tb_down >/dev/null 2>&1 || true; fi
  [ -n "$CTX" ] && rm -rf "$CTX"
  if [ -n "$RUN" ]; then
    # Kept for a look after a failed check (logs, the WAN capture), not after an interruption.
    if [ "${SVR_CTR_KEEP:-0}" = 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ]; }; then say "run directory kept: $RUN"; else rm -rf "$RUN"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the engine and tools ------------------------------------------------------------------
apt_install() {
  say "installing with apt: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

compose() {
  if command -v docker-compose >/dev/null 2>&1; then
    docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
  else
    docker compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
  fi
}

ensure_engine() {
  local want=()
  docker info >/dev/null 2>&1 || command -v dockerd >/dev/null 2>&1 || want+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || want+=(docker-compose)
  [ "${#want[@]}" -eq 0 ] || apt_install "${want[@]}"
  if ! docker info >/dev/null 2>&1; then
    # No engine answers: start Debian's dockerd, detached from this script (its own session,
    # no inherited descriptor), without touching the host's iptables or forwarding: the testbed
    # networks are internal bridges, nothing is routed or NATed by the host.
    say "starting dockerd (log: /var/log/svr-dockerd.log)"
    # Every inherited descriptor above 2 is closed first: a caller's lock (flock) must not
    # stay held by the daemon.
    (
      for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
      done
      exec setsid dockerd --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        >/var/log/svr-dockerd.log 2>&1 </dev/null
    ) &
    local i
    for i in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { say "error: dockerd did not answer in 60 s:"; tail -n 20 /var/log/svr-dockerd.log >&2; exit 1; }
  fi
  say "engine: Docker $(docker version -f '{{.Server.Version}}' 2>/dev/null), compose: $(compose version --short 2>/dev/null || echo '?')"
}

ensure_hugepages() {
  local have
  have=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$have" -lt "$HUGEPAGES" ]; then echo "$HUGEPAGES" >/proc/sys/vm/nr_hugepages || true; fi
  mkdir -p /dev/hugepages
  mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
}

# Free 2 MiB pages, checked under the lock: at least $1 of them.
need_free_hugepages() {
  local free
  free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  [ "$free" -ge "$1" ] || { say "error: $free free hugepages, $1 needed (scripts/setup.sh reserves $HUGEPAGES)"; exit 1; }
}

# ---- images ----------------------------------------------------------------------------------
BIN=""
build_binaries() {
  if [ -n "${SVR_CTR_BIN:-}" ]; then
    BIN=$SVR_CTR_BIN
  else
    # Building needs DPDK's headers, clang and Rust: scripts/setup.sh installs them if missing.
    if ! { command -v cargo >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/cargo" ]; } || ! pkg-config --exists libdpdk 2>/dev/null; then
      bash "$ROOT/scripts/setup.sh" >&2
    fi
    say "cargo build --release -p svrd -p svr-pktgen (and -p svr-mgmt: svrctl)"
    local t=$SECONDS
    # The same package sets as scripts/test.sh and testbed/pktgen-smoke.sh build, so that after
    # them nothing is rebuilt (another set could unify features differently).
    (cd "$ROOT" && PATH="$HOME/.cargo/bin:$PATH" nice cargo build --release -q -p svrd -p svr-pktgen >&2)
    if grep -q '^name = "svr-mgmt"' "$ROOT/mgmt/Cargo.toml" 2>/dev/null; then
      (cd "$ROOT" && PATH="$HOME/.cargo/bin:$PATH" nice cargo build --release -q -p svrd -p svr-mgmt >&2)
    fi
    BIN=$ROOT/target/release
    say "built in $((SECONDS - t)) s"
  fi
  local b
  for b in svrd svr-pktgen; do [ -x "$BIN/$b" ] || { say "error: $BIN/$b missing"; exit 1; }; done
}

# The build context: only what the Dockerfile copies (a few MB), never target/.
stage_context() {
  CTX=$(mktemp -d /tmp/svr-ctx.XXXXXX)
  mkdir -p "$CTX/bin" "$CTX/pktgen-bin" "$CTX/docker" "$CTX/testbed" "$CTX/benches/dut"
  cp "$BIN/svrd" "$CTX/bin/"
  if [ -x "$BIN/svrctl" ]; then cp "$BIN/svrctl" "$CTX/bin/"; fi
  cp "$BIN/svr-pktgen" "$CTX/pktgen-bin/"
  cp "$ROOT"/docker/{base-packages.txt,ifnames.sh,svrd-entrypoint.sh,host-entrypoint.sh,router-a.yaml,router-b.yaml} "$CTX/docker/"
  cp "$ROOT"/testbed/{udp_flow.py,svr_wire_check.py} "$CTX/testbed/"
  cp "$ROOT/benches/dut/svrd-dut.yaml" "$CTX/benches/dut/"
}

BASE=""
build_base() {
  local hash
  hash=$(cat "$ROOT/docker/base-packages.txt" "$ROOT/docker/mkbase.sh" | sha256sum | cut -c1-12)
  BASE=$IMG/base:bookworm-$hash
  if docker image inspect "$BASE" >/dev/null 2>&1; then
    say "base image $BASE (cached)"
  else
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    local t=$SECONDS
    nice bash "$ROOT/docker/mkbase.sh" "$BASE"
    say "base image $BASE made in $((SECONDS - t)) s"
  fi
  docker tag "$BASE" "$IMG/base:bookworm"
}

build_images() {
  build_binaries
  stage_context
  build_base
  local t
  for t in svrd pktgen host; do
    docker build -q --force-rm --build-arg "BASE=$BASE" -f "$ROOT/docker/Dockerfile" --target "$t" \
      -t "$IMG/$t:latest" "$CTX" >"$CTX/build.log" 2>&1 \
      || { cat "$CTX/build.log" >&2; say "error: docker build --target $t"; exit 1; }
  done
  # Earlier builds of these images, now untagged.
  docker image prune -f --filter label=svr-fastpath.image >/dev/null 2>&1 || true
  say "images: $IMG/svrd $IMG/pktgen $IMG/host on $BASE ($(elapsed))"
}

# ---- the testbed -----------------------------------------------------------------------------
tb_down() {
  docker rm -f svr-wan-capture >/dev/null 2>&1 || true
  compose down -v --remove-orphans -t 15 >/dev/null 2>&1 || true
}

# wait_log CONTAINER REGEX SECONDS. (Never `docker logs | grep -q` under pipefail: grep -q
# stops reading at the first match, docker logs dies of SIGPIPE and the pipeline fails.)
wait_log() {
  local i
  for i in $(seq 1 $(($3 * 5))); do
    docker logs "$1" 2>&1 | grep -E -- "$2" >/dev/null && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ] || { sleep 0.2; docker logs "$1" 2>&1 | grep -E -- "$2" >/dev/null && return 0; return 1; }
    sleep 0.2
  done
  return 1
}

fail() {
  say "FAIL: $*"
  local c
  for c in svr-router-a svr-router-b; do echo "--- $c log (tail)"; docker logs --tail 40 "$c" 2>&1; done >&2
  exit 1
}

tb_up() {
  need_free_hugepages 128        # two routers, memory-mb 128 each
  tb_down
  compose up -d >"${RUN:-/tmp}/compose-up.log" 2>&1 || { cat "${RUN:-/tmp}/compose-up.log" >&2; fail "compose up"; }
  local r
  for r in svr-router-a svr-router-b; do
    wait_log "$r" "svrd: forwarding" 30 || fail "$r: svrd not forwarding after 30 s"
  done
  for r in a b; do
    wait_log "svr-router-$r" "event=peering-established" 30 || fail "router-$r: no peering-established"
    wait_log "svr-router-$r" "path=10\.9\.0\.[12]->10\.9\.0\.[12] event=path-in-service" 30 || fail "router-$r: IPv4 path not in service"
    wait_log "svr-router-$r" "path=fd00:9::[12]->fd00:9::[12] event=path-in-service" 30 || fail "router-$r: IPv6 path not in service"
  done
  ok "testbed up: host-a, router-a, router-b, host-b; certificates made at start, peering established, IPv4 and IPv6 peer paths in service ($(elapsed))"
}

# ---- test ------------------------------------------------------------------------------------
xa() { docker exec svr-host-a "$@"; }
xb() { docker exec svr-host-b "$@"; }

counter() { # counter CONTAINER "drop NAME": the latest value printed after SIGUSR1
  { docker logs "$1" 2>&1 | grep -E "^$2=" || true; } | tail -n 1 | sed 's/.*=//'
}

run_test() {
  # The WAN capture: tcpdump on the WAN network's bridge, from a container in the host's
  # network namespace (promiscuous on the bridge: it sees every frame between the routers;
  # SETUID/SETGID because Debian's tcpdump switches to its own user after opening the device).
  docker run -d --name svr-wan-capture --network host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
    --cap-add SETUID --cap-add SETGID \
    -v "$RUN:/cap" --entrypoint tcpdump "$IMG/host:latest" -i svr-wan -U -s 2048 -Z root -w /cap/wan.pcap >/dev/null
  sleep 1
  [ "$(docker inspect -f '{{.State.Running}}' svr-wan-capture)" = true ] || { docker logs svr-wan-capture >&2; fail "the WAN capture did not start"; }

  local dst out json bytes got
  for dst in 10.2.0.2 fd00:2::2; do
    out=$(xa ping -c 5 -i 0.2 -W 2 "$dst") || fail "ping $dst: $out"
    echo "$out" | grep -q " 0% packet loss" || fail "ping $dst lost packets: $out"
    ok "ping host-a -> $dst through router-a and router-b: $(echo "$out" | tail -n 1)"
  done

  docker exec -d svr-host-b iperf3 -s
  sleep 0.5
  for dst in 10.2.0.2 fd00:2::2; do
    json=$(xa timeout 30 iperf3 -c "$dst" -t 2 -J) || fail "iperf3 to $dst failed"
    bytes=$(echo "$json" | docker exec -i svr-host-a python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum_received"]; print(int(d["bytes"]), round(d["bits_per_second"] / 1e6))') \
      || fail "iperf3 to $dst: no result"
    [ "${bytes% *}" -gt 1000000 ] || fail "iperf3 to $dst moved only ${bytes% *} bytes"
    ok "TCP host-a -> $dst: ${bytes% *} bytes in 2 s (${bytes#* } Mbit/s)"
  done

  # UDP datagrams that start with a marker string, echoed back by host-b.
  for dst in 10.2.0.2 fd00:2::2; do
    docker exec -d svr-host-b timeout 20 python3 /usr/local/share/svr-testbed/udp_flow.py serve "$dst" 5001 8
    sleep 0.5
    got=$(xa timeout 15 python3 /usr/local/share/svr-testbed/udp_flow.py send "$dst" 5001 30 1000) || fail "UDP flow to $dst"
    [ "$got" -ge 28 ] || fail "UDP flow to $dst: only $got of 30 datagrams echoed"
    ok "UDP host-a -> $dst -> host-a, 1000 B datagrams starting with SVR-MARKER-UDP: $got/30 echoed"
  done

  sleep 1
  docker stop -t 5 svr-wan-capture >/dev/null
  docker rm svr-wan-capture >/dev/null
  out=$(docker run --rm --network none -v "$RUN:/cap" --entrypoint python3 "$IMG/host:latest" \
    /usr/local/share/svr-testbed/svr_wire_check.py 1000 /cap/wan.pcap 2>&1) || { echo "$out" >&2; fail "SVR wire check of the WAN capture"; }
  echo "$out" | sed 's/^/  /'
  grep -q "SVR-MARKER" "$RUN/wan.pcap" && fail "the marker crossed the WAN in clear"
  ok "WAN capture ($(stat -c %s "$RUN/wan.pcap") bytes): SVR packets between the waypoints, no inner address and no marker in clear"

  local r s c n
  for r in svr-router-a svr-router-b; do docker kill -s USR1 "$r" >/dev/null; done
  sleep 1
  for r in svr-router-a svr-router-b; do
    s=$(docker logs "$r" 2>&1 | grep -E "^svr svr_(ingress|egress)_sessions=" | tail -n 2 | sed 's/.*=//' | awk '{s += $1} END {print s + 0}')
    [ "${s:-0}" -ge 4 ] || fail "$r: only ${s:-0} SVR sessions"
    for c in svr_hmac_failure svr_replay svr_bad_metadata svr_decrypt_failure svr_unknown_peer; do
      n=$(counter "$r" "drop $c")
      [ "${n:-0}" = 0 ] || fail "$r: drop $c=$n on genuine traffic"
    done
    docker logs "$r" 2>&1 | grep "^keymgmt peer=router-[ab] role=[A-Za-z]* in-service=1 " >/dev/null || fail "$r: keymgmt not in service on SIGUSR1"
    ok "$r: $s SVR sessions, no SVR crypto drop, keys from the certificate-authenticated exchange in service"
  done

  # svrctl (when it is built) inside the router's container, on svrd's control socket.
  if docker exec svr-router-a sh -c 'command -v svrctl' >/dev/null 2>&1; then
    out=$(docker exec svr-router-a svrctl show peers 2>&1) || fail "svrctl show peers: $out"
    echo "$out" | grep -E "^router-b\.testbed\.svr +router-b +[0-9][0-9A-Za-z.+-]* +2/2 +up" >/dev/null || fail "svrctl show peers: $out"
    ok "svrctl in router-a's container: peer router-b.testbed.svr, 2/2 paths up"
  fi

  # A clean stop: SIGTERM, svrd frees its ports and memory and exits 0.
  compose stop -t 15 router-a router-b >/dev/null 2>&1
  for r in svr-router-a svr-router-b; do
    n=$(docker inspect -f '{{.State.ExitCode}}' "$r")
    [ "$n" = 0 ] || fail "$r: svrd exit status $n on SIGTERM"
  done
  ok "both svrd containers stopped cleanly (exit 0)"
}

# ---- main ------------------------------------------------------------------------------------
case "$CMD" in
  down)
    docker info >/dev/null 2>&1 || exit 0
    tb_down
    ok "testbed removed"
    exit 0
    ;;
esac

ensure_engine
ensure_hugepages
build_images
[ "$CMD" = images ] && exit 0
RUN=$(mktemp -d /tmp/svr-ctr-run.XXXXXX)

# The testbed and the benchmark run under the machine's testbed lock (fd 9; every process
# started from here on is short-lived or a container, which dockerd starts, not us). Not under
# a caller's flock of the same file: that would wait for itself (SVR_CTR_NO_LOCK=1 skips ours).
if [ "${SVR_CTR_NO_LOCK:-0}" != 1 ]; then
  exec 9>"$LOCK"
  say "waiting for $LOCK"
  flock -w 1200 9 || { say "error: $LOCK still held after 20 minutes"; exit 1; }
fi

case "$CMD" in
  up)
    tb_up
    say "up: docker exec -it svr-host-a ping 10.2.0.2; down: bash scripts/containers.sh down"
    ;;
  test)
    tb_up
    run_test
    tb_down
    ok "passed ($(elapsed))"
    ;;
  bench)
    # shellcheck source=../docker/bench.sh
    source "$ROOT/docker/bench.sh"
    run_bench
    ;;
esac
