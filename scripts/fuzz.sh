#!/usr/bin/env bash
# Builds every fuzz target in fuzz/ and runs each one for a bounded time,
# failing on any crash, panic, timeout or out-of-memory (docs/robustness.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Default: 30 seconds for every target (the CI smoke run of scripts/test.sh).
# For a longer local run, e.g. 10 minutes each:  scripts/fuzz.sh 600
# or one target for an hour on 2 cores:  FUZZ_JOBS=2 scripts/fuzz.sh 3600 service_ops
#
# The toolchain is stable Rust: cargo-fuzz needs nightly-only flags
# (-Zsanitizer=address, -Cpasses=sancov-module, ...), which stable rustc
# accepts with RUSTC_BOOTSTRAP=1. The exact command this runs per target is
#
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a TARGET corpus/TARGET seeds/TARGET \
#       -- -max_total_time=SECONDS -timeout=10 -rss_limit_mb=2048
#
# (-O: optimised, -a: debug assertions, so integer overflow panics; AddressSanitizer
# is cargo-fuzz's default, FUZZ_SANITIZER=none turns it off.) New inputs go to
# fuzz/corpus/TARGET (not committed); the committed seeds stay in
# fuzz/seeds/TARGET; crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-30}"
shift || true
sanitizer="${FUZZ_SANITIZER:-address}"
jobs="${FUZZ_JOBS:-1}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    # An empty list (or a failing `cargo fuzz list`) would make a run that
    # fuzzes nothing look like a success.
    list="$(cargo fuzz list)" || { echo "cargo fuzz list failed" >&2; exit 1; }
    mapfile -t targets < <(printf '%s\n' "$list" | grep -v '^$' || true)
    if [ ${#targets[@]} -eq 0 ]; then
        echo "cargo fuzz list found no fuzz targets in fuzz/" >&2
        exit 1
    fi
fi

cargo fuzz build -O -a -s "$sanitizer"

failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t"
    log="$(mktemp)"
    echo "== fuzz $t for ${secs}s"
    status=0
    extra=()
    case "$t" in
        # Structured inputs: long operation sequences from the start.
        service_ops | device_regs) extra=(-max_len=4096 -len_control=10) ;;
    esac
    parallel=()
    if [ "$jobs" -gt 1 ]; then
        parallel=(-jobs="$jobs" -workers="$jobs")
    fi
    cargo fuzz run -O -a -s "$sanitizer" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${extra[@]}" "${parallel[@]}" >"$log" 2>&1 || status=$?
    if [ "$jobs" -gt 1 ]; then
        cat fuzz-*.log >>"$log" 2>/dev/null || true
        rm -f fuzz-*.log
    fi
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')"
    rate="$(grep -o 'exec/s: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
    summary+=("$(printf '%-12s %10s runs %8s exec/s  %s' "$t" "$runs" "${rate:-?}" \
        "$([ $status -eq 0 ] && echo ok || echo FAILED)")")
    if [ $status -ne 0 ]; then
        failed+=("$t")
        grep -E -A30 'panicked|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY' "$log" | head -60 >&2 || true
        echo "fuzz target $t failed (log: $log); artifacts in fuzz/artifacts/$t" >&2
    else
        rm -f "$log"
    fi
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failing fuzz targets: ${failed[*]}" >&2
    exit 1
fi
