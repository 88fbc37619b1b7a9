#!/usr/bin/env bash
# Runs the cargo-fuzz targets under fuzz/fuzz_targets/.
#
# Usage:
#   scripts/fuzz.sh [SECONDS]
#       CI mode: every target for SECONDS each (default 60), from its committed seeds
#       (fuzz/seeds/<target>/) copied into a scratch corpus, so inputs found while fuzzing
#       are never added to the repository.
#   scripts/fuzz.sh --runs N TARGET...
#       Long mode (background runs of 10^7 executions, not CI): the named targets one after
#       another, N executions each (libFuzzer -runs=N), each with a corpus kept between runs
#       in fuzz/corpus/<target>/ (ignored by git) and its seeds read alongside. Prints every
#       target's exec/s and final statistics, and a summary at the end.
#
# Options (either mode, before the rest):
#   --sanitizer S   cargo-fuzz sanitizer: address (the default) or none. The targets are
#                   safe Rust, so `none` loses little and runs about 3x faster; switching
#                   rebuilds everything once.
#
# Exits non-zero as soon as a target crashes, fails an assertion, leaks or times out;
# libFuzzer leaves the reproducer in fuzz/artifacts/<target>/.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); RUSTC_BOOTSTRAP=1 lets it use the
# stable toolchain's unstable flags.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

is_number() {
    case "$1" in
        '' | *[!0-9]*) return 1 ;;
        *) return 0 ;;
    esac
}

SANITIZER=address
RUNS=
while [ $# -gt 0 ]; do
    case "$1" in
        --sanitizer)
            [ $# -ge 2 ] || usage
            SANITIZER=$2
            shift 2
            ;;
        --runs)
            [ $# -ge 2 ] && is_number "$2" || usage
            RUNS=$2
            shift 2
            ;;
        -h | --help) usage ;;
        *) break ;;
    esac
done
case "$SANITIZER" in
    address | none) ;;
    *) usage ;;
esac
export RUSTC_BOOTSTRAP=1

shopt -s nullglob
all_targets=()
for file in fuzz/fuzz_targets/*.rs; do
    all_targets+=("$(basename "$file" .rs)")
done
if [ ${#all_targets[@]} -eq 0 ]; then
    echo "no fuzz targets under fuzz/fuzz_targets" >&2
    exit 1
fi

# Common libFuzzer options: a stuck input, a runaway allocation and the statistics at the end.
LIBFUZZER_OPTS=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

# Extra libFuzzer options of one target. The structure-aware targets decode their input with
# `arbitrary`: a short input is a short sequence of steps, so libFuzzer's slow growth of the
# input length (len_control) would keep them shallow for most of a bounded run.
target_opts() {
    case "$1" in
        auth_payloads | established_requests | dh_mont) echo "-len_control=0 -max_len=1024" ;;
        # Several messages up to a jumbo frame each, so lanes of unequal lengths meet.
        hmac_multi) echo "-len_control=0 -max_len=20000" ;;
    esac
}

if [ -z "$RUNS" ]; then
    # ---- CI mode: every target for a bounded time ----
    [ $# -le 1 ] || usage
    SECONDS_PER_TARGET=${1:-60}
    is_number "$SECONDS_PER_TARGET" || usage

    SCRATCH=$(mktemp -d /tmp/ipsec-server-fuzz.XXXXXX)
    trap 'rm -rf "$SCRATCH"' EXIT

    cargo fuzz build --sanitizer "$SANITIZER"
    for target in "${all_targets[@]}"; do
        corpus="$SCRATCH/$target"
        mkdir -p "$corpus"
        if [ -d "fuzz/seeds/$target" ]; then
            cp -r "fuzz/seeds/$target/." "$corpus/"
        fi
        echo "=== $target: ${SECONDS_PER_TARGET}s from $(ls "$corpus" | wc -l) seeds"
        # libFuzzer exits non-zero on any crash; set -e stops the loop there.
        # shellcheck disable=SC2046 # target_opts is a list of words
        cargo fuzz run --sanitizer "$SANITIZER" "$target" "$corpus" -- \
            -max_total_time="$SECONDS_PER_TARGET" "${LIBFUZZER_OPTS[@]}" $(target_opts "$target")
    done
    echo "=== all ${#all_targets[@]} targets ran ${SECONDS_PER_TARGET}s without a crash"
    exit 0
fi

# ---- Long mode: the named targets for N executions each ----
[ $# -ge 1 ] || usage
for target in "$@"; do
    if [ ! -f "fuzz/fuzz_targets/$target.rs" ]; then
        echo "no fuzz target '$target' (have: ${all_targets[*]})" >&2
        exit 2
    fi
done

LOGS=$(mktemp -d /tmp/ipsec-server-fuzz-runs.XXXXXX)
summary=()
for target in "$@"; do
    cargo fuzz build --sanitizer "$SANITIZER" "$target"
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    dirs=("$corpus")
    if [ -d "fuzz/seeds/$target" ]; then
        dirs+=("fuzz/seeds/$target")
    fi
    log="$LOGS/$target.log"
    echo "=== $target: $RUNS runs from $(ls "$corpus" | wc -l) corpus inputs (log: $log)"
    start=$(date +%s)
    # New inputs go to the first directory only; the seeds are read, never written. The
    # whole output is in the log; progress, statistics and any failure are shown.
    set +e
    # shellcheck disable=SC2046 # target_opts is a list of words
    cargo fuzz run --sanitizer "$SANITIZER" "$target" "${dirs[@]}" -- \
        -runs="$RUNS" "${LIBFUZZER_OPTS[@]}" $(target_opts "$target") 2>&1 | tee "$log" |
        grep --line-buffered -E 'pulse|DONE|^stat::|ERROR|panicked|Reproduce|artifact'
    status=${PIPESTATUS[0]}
    set -e
    elapsed=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    if [ "$status" -ne 0 ]; then
        echo "=== $target FAILED after ${elapsed}s (exit $status); reproducer under fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
    line="$target: ${execs:-?} execs in ${elapsed}s, ${rate:-?} exec/s, corpus $(ls "$corpus" | wc -l)"
    echo "=== $line"
    summary+=("$line")
done
echo "=== summary ($SANITIZER sanitizer)"
printf '  %s\n' "${summary[@]}"
