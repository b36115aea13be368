# The benchmark in containers (sourced by scripts/containers.sh bench; not run by itself).
#
# One svrd container (the device under test, benches/dut/svrd-dut.yaml: one worker on CPU 1,
# busy polling, static neighbours, test-mode keys) between svr-pktgen in another container
# (CPU 0) and itself, over two links (LAN and WAN), each step as in benches/dut/run.sh:
#   memif     the links are memif sockets in a directory both containers mount (socket-abstract=no:
#             the default abstract sockets would not cross network namespaces); generator =
#             server, DUT = client
#   af_packet the links are two internal Docker bridges; both containers have one interface on
#             each, renamed lan / wan with fixed MACs (svr-ifnames), driven by net_af_packet
# and per link: dpdk-testpmd io-forward in the DUT's container (the I/O ceiling), svrd encrypt
# direction, svrd decrypt direction. Each step: full-speed forwarding rate, then a binary search
# for the no-drop rate with latency percentiles (svr-pktgen --search, JSON per size).
# and per link, two svrd containers chained (chain_step): generator -> svrd-a (encrypt) ->
# svrd-b (decrypt) -> generator, benches/dut/svrd-chain.yaml; both workers share CPU 1
# (idle-backoff: adaptive), the generator has CPU 0.
# Results: $OUT/<link>-<step>.json and logs; the section of BENCHMARKS.md between
# <!-- containers:begin --> and <!-- containers:end --> (benches/report.py --splice-containers).
#
# SVR_CTR_BENCH_STEPS (default "testpmd encrypt decrypt chain native") and SVR_CTR_BENCH_LINKS
# (default "memif af_packet") pick a part, e.g. SVR_CTR_BENCH_STEPS=chain for the chain alone;
# a partial run writes its report into $OUT/BENCHMARKS.md (a copy), not BENCHMARKS.md, unless
# SVR_BENCH_DOC names a file.

BENCH_SIZES=${SVR_CTR_BENCH_SIZES:-64,1400,imix}
BENCH_STEP_TIMEOUT=${SVR_CTR_BENCH_STEP_TIMEOUT:-150}
BENCH_STEPS_ALL="testpmd encrypt decrypt chain native"
BENCH_STEPS=${SVR_CTR_BENCH_STEPS:-$BENCH_STEPS_ALL}
BENCH_LINKS=${SVR_CTR_BENCH_LINKS:-memif af_packet}
GEN_LAN_MAC=02:00:00:00:e0:01
GEN_WAN_MAC=02:00:00:00:e0:02
DUT_LAN_MAC=02:00:00:00:d0:01
DUT_WAN_MAC=02:00:00:00:d0:02
# the chain's second router (svrd-b); svrd-a has the DUT's MACs
B_LAN_MAC=02:00:00:00:c0:01
B_WAN_MAC=02:00:00:00:c0:02
# docker without its output, and without the engine's "IPv4 forwarding is disabled" warning
# (dockerd runs with --ip-forward=false: nothing here is routed by the host); errors are shown.
dk() { local e; e=$(docker "$@" 2>&1 >/dev/null) || { echo "$e" >&2; return 1; }; }
# The measured containers get the largest CPU weight (--cpu-shares): a container is a cgroup, in
# which `nice -n -19` (benches/dut/run.sh's priority over other jobs) weighs only against the
# container's own processes; the cgroup's weight is what counts against the rest of the machine.
DPDK_CAPS=(--cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW --cap-add IPC_LOCK --cap-add SYS_NICE
           --cpu-shares 262144)

bench_cleanup() {
  docker rm -f svr-bench-gen svr-bench-dut svr-bench-a svr-bench-b >/dev/null 2>&1 || true
  docker network rm svr-bench-lan svr-bench-wan svr-bench-lanb >/dev/null 2>&1 || true
}

# dut_conf LINK FILE: svrd-dut.yaml for the container bench: memif sockets in /run/svr-ctr
# (not abstract) or af_packet on lan / wan, its own DPDK file prefix, 128 MiB.
dut_conf() {
  local link=$1 f=$2
  sed -e 's/file-prefix: svrd-dut/file-prefix: ctr-svrd-dut/' \
      -e 's/memory-mb: 192/memory-mb: 128/' "$ROOT/benches/dut/svrd-dut.yaml" >"$f"
  if [ "$link" = memif ]; then
    sed -i -e 's#socket=/run/svr-dut/\(lan\|wan\)\.sock#socket=/run/svr-ctr/\1.sock,socket-abstract=no#' "$f"
  else
    sed -i -e "s#vdev: \"net_memif0,role=client[^\"]*\"#vdev: \"net_af_packet0,iface=lan\"#" \
           -e "s#vdev: \"net_memif1,role=client[^\"]*\"#vdev: \"net_af_packet1,iface=wan\"#" "$f"
  fi
}

# bench_step LINK STEP: one generator run against one DUT (testpmd, encrypt or decrypt).
bench_step() {
  local link=$1 step=$2 name="$1-$2" gen_dev dut_args net_args=() mode gen_args i
  local conf=/etc/svr-ctr/svrd-dut.yaml
  if [ "$link" = memif ]; then
    gen_lan="net_memif0,role=server,socket=/run/svr-ctr/lan.sock,socket-abstract=no,mac=$GEN_LAN_MAC"
    gen_wan="net_memif1,role=server,socket=/run/svr-ctr/wan.sock,socket-abstract=no,mac=$GEN_WAN_MAC"
    tp_lan="net_memif0,role=client,socket=/run/svr-ctr/lan.sock,socket-abstract=no,mac=$DUT_LAN_MAC"
    tp_wan="net_memif1,role=client,socket=/run/svr-ctr/wan.sock,socket-abstract=no,mac=$DUT_WAN_MAC"
    net_args=(--network none)
  else
    gen_lan="net_af_packet0,iface=lan"
    gen_wan="net_af_packet1,iface=wan"
    tp_lan=$gen_lan
    tp_wan=$gen_wan
  fi
  case "$step" in
    testpmd) mode=(--mode plain --tx-dev "$gen_lan" --rx-dev "$gen_wan" --dst-mac "$DUT_LAN_MAC") ;;
    encrypt) mode=(--mode svr-encrypt --svr-config "$conf" --tx-dev "$gen_lan" --rx-dev "$gen_wan"
                   --dst-mac "$DUT_LAN_MAC" --src-ip 10.1.1.1 --dst-ip 10.2.0.2) ;;
    decrypt) mode=(--mode svr-decrypt --svr-config "$conf" --tx-dev "$gen_wan" --rx-dev "$gen_lan"
                   --dst-mac "$DUT_WAN_MAC" --src-ip 10.2.1.1 --dst-ip 10.1.0.2) ;;
  esac
  gen_args=("${mode[@]}" --flows 1024 --size "$BENCH_SIZES" --duration 1 --search --pdr-tolerance 0.005 --trial 0.4
            --search-steps 7 --search-budget 8 --pool-packets 600K --cpu 0 --mem-mb 128
            --file-prefix ctr-pktgen --linger 30 --json)
  if [ "$step" = testpmd ]; then
    dut_args=(--entrypoint svr-ifnames-exec "$IMG/pktgen:latest" nice -n -19 dpdk-testpmd -l 0,1 --main-lcore 0
              --file-prefix ctr-testpmd -m 128 --no-pci --log-level=error
              --vdev "$tp_lan" --vdev "$tp_wan" -- --forward-mode=io --auto-start --nb-cores=1 --stats-period 60)
  else
    dut_args=(--entrypoint svr-ifnames-exec "$IMG/svrd:latest" nice -n -19 svrd --config "$conf")
  fi
  echo "$name generator: svr-pktgen ${gen_args[*]}" >>"$OUT/commands.txt"
  echo "$name dut: ${dut_args[*]:2}" >>"$OUT/commands.txt"

  local common=("${DPDK_CAPS[@]}" -v /dev/hugepages:/dev/hugepages -v "$OUT/svrd-dut-$link.yaml:$conf:ro")
  if [ "$link" = memif ]; then
    rm -rf "$OUT/sock"; mkdir -p "$OUT/sock"
    common+=(-v "$OUT/sock:/run/svr-ctr")
  fi
  # The generator first (memif server), on CPU 0; then the DUT.
  if [ "$link" = memif ]; then
    dk run -d --name svr-bench-gen "${common[@]}" "${net_args[@]}" \
      --entrypoint nice "$IMG/pktgen:latest" -n -19 timeout "$BENCH_STEP_TIMEOUT" svr-pktgen "${gen_args[@]}"
    sleep 1
    dk run -d --name svr-bench-dut "${common[@]}" "${net_args[@]}" "${dut_args[@]}"
  else
    # Two internal bridges; each container on both, interfaces found by address, renamed,
    # given the fixed MACs of svrd-dut.yaml. The containers are created, connected, then started.
    # (testpmd io-forward does not rewrite MACs: its frames reach the generator's WAN port as
    # unknown unicast, which the bridge floods to it.)
    dk create --name svr-bench-gen "${common[@]}" --network svr-bench-lan --ip 10.201.0.2 \
      -e "SVR_IFACES=lan=10.201.0.2,$GEN_LAN_MAC wan=10.202.0.2,$GEN_WAN_MAC" \
      --entrypoint svr-ifnames-exec "$IMG/pktgen:latest" nice -n -19 timeout "$BENCH_STEP_TIMEOUT" svr-pktgen "${gen_args[@]}"
    docker network connect --ip 10.202.0.2 svr-bench-wan svr-bench-gen
    dk create --name svr-bench-dut "${common[@]}" --network svr-bench-lan --ip 10.201.0.3 \
      -e "SVR_IFACES=lan=10.201.0.3,$DUT_LAN_MAC wan=10.202.0.3,$DUT_WAN_MAC" "${dut_args[@]}"
    docker network connect --ip 10.202.0.3 svr-bench-wan svr-bench-dut
    # An af_packet link is up at once: the DUT starts first, and the generator only once the
    # DUT forwards (else the warm-up and the first trial go to a DUT still starting).
    dk start svr-bench-dut
    for i in $(seq 1 150); do
      docker logs svr-bench-dut 2>&1 | grep -E "svrd: forwarding|Start automatic packet forwarding" >/dev/null && break
      sleep 0.2
    done
    dk start svr-bench-gen
  fi
  # The generator says "pktgen: done" after its results and keeps the links up (--linger):
  # stop the DUT first, then the generator.
  for i in $(seq 1 $((BENCH_STEP_TIMEOUT * 2))); do
    docker logs svr-bench-gen 2>&1 | grep "^pktgen: done" >/dev/null && break
    [ "$(docker inspect -f '{{.State.Running}}' svr-bench-gen)" = true ] || break
    sleep 0.5
  done
  docker logs svr-bench-dut >"$OUT/$name.dut.log" 2>&1 || true
  docker stop -t 10 svr-bench-dut >/dev/null 2>&1 || true
  docker logs svr-bench-dut >"$OUT/$name.dut.log" 2>&1 || true
  docker logs svr-bench-gen >"$OUT/$name.json" 2>"$OUT/$name.gen.log" || true
  docker rm -f svr-bench-gen svr-bench-dut >/dev/null 2>&1 || true
  if ! grep -q "^pktgen: done" "$OUT/$name.gen.log"; then
    say "warning: $name: the generator did not finish (see $OUT/$name.gen.log)"
    tail -n 5 "$OUT/$name.gen.log" >&2
  fi
  say "$name: $(grep -c '"size"' "$OUT/$name.json" 2>/dev/null || true) sizes measured ($(elapsed))"
}

# chain_conf LINK ROUTER FILE: benches/dut/svrd-chain.yaml as ROUTER (dut = svrd-a, peer =
# svrd-b), memif as written or net_af_packet on lan / wan.
chain_conf() {
  local link=$1 router=$2 f=$3
  sed -e "s/^local-router: dut$/local-router: $router/" "$ROOT/benches/dut/svrd-chain.yaml" >"$f"
  if [ "$link" = af_packet ]; then
    sed -i -e "s#vdev: \"net_memif0,[^\"]*\"#vdev: \"net_af_packet0,iface=lan\"#" \
           -e "s#vdev: \"net_memif1,[^\"]*\"#vdev: \"net_af_packet1,iface=wan\"#" "$f"
  fi
}

# chain_step LINK: two svrd containers in a chain. The generator (plain mode, with the
# warm-up that opens the sessions first) sends LAN traffic to svrd-a, which encrypts it to
# svrd-b's waypoint; svrd-b decrypts it and delivers it to the generator's second port, where
# it arrives as sent (the stamp and signature of the plain mode survive the round trip).
chain_step() {
  local link=$1 name="$1-chain" gen_lan gen_rx i c
  local conf=/etc/svr-ctr/svrd.yaml
  chain_conf "$link" dut "$OUT/svrd-chain-a-$link.yaml"
  chain_conf "$link" peer "$OUT/svrd-chain-b-$link.yaml"
  if [ "$link" = memif ]; then
    gen_lan="net_memif0,role=server,socket=/run/svr-ctr/lan-a.sock,socket-abstract=no,mac=$GEN_LAN_MAC"
    gen_rx="net_memif1,role=server,socket=/run/svr-ctr/lan-b.sock,socket-abstract=no,mac=$GEN_WAN_MAC"
  else
    gen_lan="net_af_packet0,iface=lan"
    gen_rx="net_af_packet1,iface=lanb"
  fi
  local gen_args=(--mode plain --warmup --warmup-delay 2 --tx-dev "$gen_lan" --rx-dev "$gen_rx" --dst-mac "$DUT_LAN_MAC"
                  --src-ip 10.1.1.1 --dst-ip 10.2.0.2 --flows 1024 --size "$BENCH_SIZES" --duration 1
                  --search --pdr-tolerance 0.005 --trial 0.4 --search-steps 7 --search-budget 8 --pool-packets 600K --cpu 0
                  --mem-mb 128 --file-prefix ctr-pktgen --linger 30 --json)
  local r_args=(--entrypoint svr-ifnames-exec "$IMG/svrd:latest" nice -n -19 svrd --config "$conf")
  echo "$name generator: svr-pktgen ${gen_args[*]}" >>"$OUT/commands.txt"
  echo "$name svrd-a: svrd --config benches/dut/svrd-chain.yaml (local-router: dut)" >>"$OUT/commands.txt"
  echo "$name svrd-b: svrd --config benches/dut/svrd-chain.yaml (local-router: peer)" >>"$OUT/commands.txt"
  local common=("${DPDK_CAPS[@]}" -v /dev/hugepages:/dev/hugepages)
  local ca=(-v "$OUT/svrd-chain-a-$link.yaml:$conf:ro") cb=(-v "$OUT/svrd-chain-b-$link.yaml:$conf:ro")
  if [ "$link" = memif ]; then
    rm -rf "$OUT/sock"; mkdir -p "$OUT/sock"
    common+=(-v "$OUT/sock:/run/svr-ctr" --network none)
    # Servers before their clients: the generator (lan-a, lan-b), then svrd-a (wan), svrd-b.
    dk run -d --name svr-bench-gen "${common[@]}" \
      --entrypoint nice "$IMG/pktgen:latest" -n -19 timeout "$BENCH_STEP_TIMEOUT" svr-pktgen "${gen_args[@]}"
    for i in $(seq 1 50); do [ -S "$OUT/sock/lan-b.sock" ] && break; sleep 0.2; done
    dk run -d --name svr-bench-a "${common[@]}" "${ca[@]}" "${r_args[@]}"
    for i in $(seq 1 50); do [ -S "$OUT/sock/wan.sock" ] && break; sleep 0.2; done
    dk run -d --name svr-bench-b "${common[@]}" "${cb[@]}" "${r_args[@]}"
  else
    # Three internal bridges: lan-a (generator, svrd-a), wan (svrd-a, svrd-b), lan-b (svrd-b,
    # generator). The routers first, the generator once both forward.
    dk create --name svr-bench-gen "${common[@]}" --network svr-bench-lan --ip 10.201.0.2 \
      -e "SVR_IFACES=lan=10.201.0.2,$GEN_LAN_MAC lanb=10.203.0.2,$GEN_WAN_MAC" \
      --entrypoint svr-ifnames-exec "$IMG/pktgen:latest" nice -n -19 timeout "$BENCH_STEP_TIMEOUT" svr-pktgen "${gen_args[@]}"
    docker network connect --ip 10.203.0.2 svr-bench-lanb svr-bench-gen
    dk create --name svr-bench-a "${common[@]}" "${ca[@]}" --network svr-bench-lan --ip 10.201.0.3 \
      -e "SVR_IFACES=lan=10.201.0.3,$DUT_LAN_MAC wan=10.202.0.3,$DUT_WAN_MAC" "${r_args[@]}"
    docker network connect --ip 10.202.0.3 svr-bench-wan svr-bench-a
    dk create --name svr-bench-b "${common[@]}" "${cb[@]}" --network svr-bench-wan --ip 10.202.0.4 \
      -e "SVR_IFACES=lan=10.203.0.4,$B_LAN_MAC wan=10.202.0.4,$B_WAN_MAC" "${r_args[@]}"
    docker network connect --ip 10.203.0.4 svr-bench-lanb svr-bench-b
    dk start svr-bench-a
    dk start svr-bench-b
    for c in svr-bench-a svr-bench-b; do
      for i in $(seq 1 150); do
        docker logs "$c" 2>&1 | grep "svrd: forwarding" >/dev/null && break
        sleep 0.2
      done
    done
    dk start svr-bench-gen
  fi
  for i in $(seq 1 $((BENCH_STEP_TIMEOUT * 2))); do
    docker logs svr-bench-gen 2>&1 | grep "^pktgen: done" >/dev/null && break
    [ "$(docker inspect -f '{{.State.Running}}' svr-bench-gen)" = true ] || break
    sleep 0.5
  done
  # svrd prints its counters when it stops: b (the end of the chain) first, then a.
  for c in b a; do
    docker stop -t 10 "svr-bench-$c" >/dev/null 2>&1 || true
    docker logs "svr-bench-$c" >"$OUT/$name.svrd-$c.log" 2>&1 || true
  done
  docker logs svr-bench-gen >"$OUT/$name.json" 2>"$OUT/$name.gen.log" || true
  docker rm -f svr-bench-gen svr-bench-a svr-bench-b >/dev/null 2>&1 || true
  if ! grep -q "^pktgen: done" "$OUT/$name.gen.log"; then
    say "warning: $name: the generator did not finish (see $OUT/$name.gen.log)"
    tail -n 5 "$OUT/$name.gen.log" >&2
  fi
  say "$name: $(grep -c '"size"' "$OUT/$name.json" 2>/dev/null || true) sizes measured ($(elapsed))"
}

# native_step STEP: the same memif step without containers (host processes, sockets in
# $OUT/nsock), in the same run: what the machine gave at that moment, so that the containers'
# figures can be told apart from the load of the shared machine. Needs dpdk-testpmd on the host.
native_step() {
  local step=$1 name="native-$1" s=$OUT/nsock conf=$OUT/svrd-dut-native.yaml gp dp i mode
  command -v dpdk-testpmd >/dev/null 2>&1 || { say "no dpdk-testpmd on the host: no native reference"; return 0; }
  rm -rf "$s"; mkdir -p "$s"
  sed "s#/run/svr-ctr/#$s/#g; s/file-prefix: ctr-svrd-dut/file-prefix: ctr-native-dut/" "$OUT/svrd-dut-memif.yaml" >"$conf"
  local gl="net_memif0,role=server,socket=$s/lan.sock,socket-abstract=no,mac=$GEN_LAN_MAC"
  local gw="net_memif1,role=server,socket=$s/wan.sock,socket-abstract=no,mac=$GEN_WAN_MAC"
  case "$step" in
    testpmd) mode=(--mode plain --tx-dev "$gl" --rx-dev "$gw" --dst-mac "$DUT_LAN_MAC") ;;
    encrypt) mode=(--mode svr-encrypt --svr-config "$conf" --tx-dev "$gl" --rx-dev "$gw"
                   --dst-mac "$DUT_LAN_MAC" --src-ip 10.1.1.1 --dst-ip 10.2.0.2) ;;
  esac
  nice -n -19 timeout "$BENCH_STEP_TIMEOUT" "$BIN/svr-pktgen" "${mode[@]}" --flows 1024 --size "$BENCH_SIZES" \
    --duration 1 --search --pdr-tolerance 0.005 --trial 0.4 --search-steps 7 --search-budget 8 --pool-packets 600K --cpu 0 \
    --mem-mb 128 --file-prefix ctr-native-pktgen --linger 30 --json >"$OUT/$name.json" 2>"$OUT/$name.gen.log" &
  gp=$!
  sleep 1
  if [ "$step" = testpmd ]; then
    nice -n -19 timeout $((BENCH_STEP_TIMEOUT + 10)) dpdk-testpmd -l 0,1 --main-lcore 0 --file-prefix ctr-native-testpmd \
      -m 128 --no-pci --log-level=error \
      --vdev "net_memif0,role=client,socket=$s/lan.sock,socket-abstract=no,mac=$DUT_LAN_MAC" \
      --vdev "net_memif1,role=client,socket=$s/wan.sock,socket-abstract=no,mac=$DUT_WAN_MAC" \
      -- --forward-mode=io --auto-start --nb-cores=1 --stats-period 60 >"$OUT/$name.dut.log" 2>&1 </dev/null 9>&- &
  else
    nice -n -19 timeout $((BENCH_STEP_TIMEOUT + 10)) "$BIN/svrd" --config "$conf" >"$OUT/$name.dut.log" 2>&1 </dev/null 9>&- &
  fi
  dp=$!
  for i in $(seq 1 $((BENCH_STEP_TIMEOUT * 5))); do
    grep "^pktgen: done" "$OUT/$name.gen.log" >/dev/null && break
    kill -0 "$gp" 2>/dev/null || break
    sleep 0.2
  done
  kill -TERM "$dp" 2>/dev/null || true; wait "$dp" 2>/dev/null || true
  kill -TERM "$gp" 2>/dev/null || true; wait "$gp" 2>/dev/null || true
  echo "$name: the memif-$step step as host processes (svr-pktgen ${mode[*]} ...)" >>"$OUT/commands.txt"
  rm -rf "$s"
  say "$name: $(grep -c '"size"' "$OUT/$name.json" 2>/dev/null || true) sizes measured ($(elapsed))"
}

has_step() { case " $BENCH_STEPS " in *" $1 "*) return 0 ;; esac; return 1; }

run_bench() {
  if has_step chain; then
    need_free_hugepages 192       # generator 128 MiB + two svrd 128 MiB each
  else
    need_free_hugepages 128       # generator 128 MiB + DUT 128 MiB
  fi
  OUT=$ROOT/target/bench-results/containers-$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$OUT"
  trap 'bench_cleanup; cleanup' EXIT
  bench_cleanup
  {
    echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "cpus=$(nproc)"
    echo "kernel=$(uname -r)"
    echo "engine=Docker $(docker version -f '{{.Server.Version}}')"
    echo "base=$BASE"
    echo "sizes=$BENCH_SIZES"
    echo "steps=$BENCH_STEPS"
    echo "links=$BENCH_LINKS"
    echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  } >"$OUT/machine.txt"
  : >"$OUT/commands.txt"
  local link step
  for link in $BENCH_LINKS; do
    dut_conf "$link" "$OUT/svrd-dut-$link.yaml"
    if [ "$link" = af_packet ]; then
      docker network create --internal --subnet 10.201.0.0/24 --gateway 10.201.0.254 \
        -o com.docker.network.bridge.name=svr-bench-lan svr-bench-lan >/dev/null
      docker network create --internal --subnet 10.202.0.0/24 --gateway 10.202.0.254 \
        -o com.docker.network.bridge.name=svr-bench-wan svr-bench-wan >/dev/null
      if has_step chain; then
        docker network create --internal --subnet 10.203.0.0/24 --gateway 10.203.0.254 \
          -o com.docker.network.bridge.name=svr-bench-lanb svr-bench-lanb >/dev/null
      fi
    fi
    for step in testpmd encrypt decrypt; do
      if has_step "$step"; then bench_step "$link" "$step"; fi
    done
    if has_step chain; then chain_step "$link"; fi
    if [ "$link" = memif ] && has_step native; then
      native_step testpmd
      native_step encrypt
    fi
  done
  echo "elapsed_s=$(( $(date +%s) - T0 ))" >>"$OUT/machine.txt"
  echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
  bench_cleanup
  local doc=${SVR_BENCH_DOC:-$ROOT/BENCHMARKS.md}
  if [ -z "${SVR_BENCH_DOC:-}" ] && { [ "$BENCH_STEPS" != "$BENCH_STEPS_ALL" ] || [ "$BENCH_LINKS" != "memif af_packet" ]; }; then
    # A partial run: its report goes into a copy, BENCHMARKS.md keeps the full run's figures.
    cp "$ROOT/BENCHMARKS.md" "$OUT/BENCHMARKS.md"
    doc=$OUT/BENCHMARKS.md
  fi
  python3 "$ROOT/benches/report.py" --splice-containers "$OUT" "$doc" >"$OUT/BENCHMARKS.md.new"
  mv "$OUT/BENCHMARKS.md.new" "$doc"
  ok "bench done ($(elapsed)); results in ${OUT#"$ROOT"/}, section \"containers\" of ${doc#"$ROOT"/} rewritten"
}
