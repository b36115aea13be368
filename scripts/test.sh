#!/usr/bin/env bash
# Runs every test of svr-fastpath: formatting and lints, unit and integration tests of every
# crate (real DPDK EAL with virtual devices), then the end-to-end testbed tests with two real
# svrd appliances between kernel hosts in network namespaces (test-key mode, then zero-trust
# key management with certificates and key rotation, the WAN attack suite and the restart /
# rekey-under-TCP acceptance tests of issue 13, the two-link multipath tests of issue 9), then
# a bounded cargo-fuzz run of
# every parser (SVR_FUZZ_SECONDS per target, default 60). Installs what it needs first.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# Each step prints the free disk: CI machines may have little, and a full disk fails late.
step() { printf '\n== %s ==  (free: %s)\n' "$*" "$(df -h --output=avail . | tail -n 1 | tr -d ' ')"; }
# tb SCRIPT: a testbed test. With SVR_TESTBED_LOCK set (a shared development machine), each
# one holds that lock file while it runs, as every testbed run there does.
tb() {
  if [ -n "${SVR_TESTBED_LOCK:-}" ]; then flock "$SVR_TESTBED_LOCK" bash "$@"; else bash "$@"; fi
}
# Incremental caches only help a second build; CI builds once.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

step "setup"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "unit and integration tests"
cargo test --workspace

step "release build"
cargo build --release -p svrd -p svr-mgmt -p svr-conductor

step "end-to-end testbed"
tb testbed/e2e-test.sh

step "end-to-end testbed, zero-trust key management"
tb testbed/zt-e2e-test.sh

step "zero-trust attack suite: an attacker on the WAN against the zero-trust pair"
tb testbed/attack-test.sh

step "zero-trust acceptance: restart recovery, rekeys under TCP"
tb testbed/zt-recovery-test.sh

step "multipath: two WAN links, SLA selection, failover, revert, duplication (issue 9)"
tb testbed/multipath-e2e-test.sh

step "operating svrd: every svrctl command, /metrics scraped by Prometheus (issue 10)"
tb testbed/ops-test.sh

step "live reload under a steady flow: svrctl reload and SIGHUP (issue 10)"
tb testbed/reload-test.sh

step "conductor: zero-touch onboarding from bootstrap files, live apply, restart with the conductor down (issue 11)"
tb testbed/conductor-test.sh

step "conductor replicas over etcd: three members, leader and replica killed, router fails over (issue 11)"
bash testbed/conductor-etcd-test.sh

step "DPDK tools against svrd: dpdk-telemetry.py /svr/ commands, dpdk-dumpcap capture"
tb testbed/telemetry-test.sh

step "packet generator against svrd over memif (functional)"
tb testbed/pktgen-smoke.sh

step "containers: images from Debian's packages, the compose testbed with zero-trust keys (issue 12)"
bash scripts/containers.sh test

step "fuzzing: every parser for ${SVR_FUZZ_SECONDS:-60} s"
bash scripts/fuzz.sh "${SVR_FUZZ_SECONDS:-60}"

step "all tests passed"
