#!/usr/bin/env bash
# Run every cargo-fuzz target under fuzz/fuzz_targets/ for a bounded time each.
#
# Usage: scripts/fuzz.sh [SECONDS]   (default 60 per target)
#
# Each target starts from its committed seeds (fuzz/seeds/<target>/, if any) copied into
# a scratch corpus, so inputs found while fuzzing are never added to the repository.
# Exits non-zero as soon as a target crashes, fails an assertion, leaks or times out;
# libFuzzer leaves the reproducer in fuzz/artifacts/<target>/.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets it use the
# stable toolchain's unstable flags.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-60}
case "$SECONDS_PER_TARGET" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
export RUSTC_BOOTSTRAP=1

SCRATCH=$(mktemp -d /tmp/ipsec-server-fuzz.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT

shopt -s nullglob
targets=()
for file in fuzz/fuzz_targets/*.rs; do
    targets+=("$(basename "$file" .rs)")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "no fuzz targets under fuzz/fuzz_targets" >&2
    exit 1
fi

cargo fuzz build
for target in "${targets[@]}"; do
    corpus="$SCRATCH/$target"
    mkdir -p "$corpus"
    if [ -d "fuzz/seeds/$target" ]; then
        cp -r "fuzz/seeds/$target/." "$corpus/"
    fi
    echo "=== $target: ${SECONDS_PER_TARGET}s from $(ls "$corpus" | wc -l) seeds"
    # libFuzzer exits non-zero on any crash; set -e stops the loop there.
    cargo fuzz run "$target" "$corpus" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
echo "=== all ${#targets[@]} targets ran ${SECONDS_PER_TARGET}s without a crash"
