#!/usr/bin/env bash
# Runs every cargo-fuzz target (fastpath/fuzz and bfd/fuzz) for SECONDS each (default 60),
# starting from the committed seed corpus in <crate>/fuzz/corpus/<target>/. Fails on the
# first crash.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs a nightly toolchain (installed with `rustup toolchain install nightly --profile
# minimal` if missing) and cargo-fuzz (installed with `cargo install cargo-fuzz --locked` if
# missing). Targets are built with debug assertions (and so overflow checks). New inputs found while fuzzing go to a scratch copy of the corpus, so the committed
# seeds stay as they are; crashes land in <crate>/fuzz/artifacts/<target>/.
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -eq 0 ]; then
    echo "usage: $0 [SECONDS]   (a positive whole number of seconds per target)" >&2
    exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# crate:target, one fuzz crate (its own workspace) per crate folder.
TARGETS=(fastpath:metadata fastpath:tlv fastpath:inner_headers bfd:bfd_packet bfd:key_block)
CRATES=(fastpath bfd)

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: installing the nightly toolchain" >&2
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# One target folder for both fuzz crates, so their shared dependencies build once.
export CARGO_TARGET_DIR="$ROOT/target/fuzz"
for c in "${CRATES[@]}"; do
    echo "fuzz.sh: building the targets of $c/fuzz" >&2
    (cd "$ROOT/$c" && cargo +nightly fuzz build --debug-assertions)
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

status=0
for ct in "${TARGETS[@]}"; do
    c="${ct%%:*}"
    t="${ct#*:}"
    mkdir -p "$WORK/$t"
    echo "fuzz.sh: $c/$t for ${SECONDS_PER_TARGET}s" >&2
    if (cd "$ROOT/$c" && cargo +nightly fuzz run --debug-assertions "$t" "$WORK/$t" \
        "$ROOT/$c/fuzz/corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1) \
        2> "$WORK/$t.log"; then
        grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done )' "$WORK/$t.log" \
            | sed "s/^/fuzz.sh: $t: /" >&2 || true
    else
        echo "fuzz.sh: $t FAILED; log tail:" >&2
        tail -n 40 "$WORK/$t.log" >&2
        status=1
    fi
done

if [ "$status" -eq 0 ]; then
    echo "fuzz.sh: all targets ran ${SECONDS_PER_TARGET}s without a crash" >&2
fi
exit "$status"
