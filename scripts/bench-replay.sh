#!/bin/sh
# Whole-process replay, side by side with the peer (issue 11,
# docs/performance.md): `uefi-vars replay CAPTURE` against virtfw-varstore
# 0.6.6's `pcap-replay --replay --pcap CAPTURE`, run alternately, wall time
# and peak RSS from /usr/bin/time, medians of RUNS runs (default 40).
#
# The peer is built from crates.io with its `std,json` features into a
# temporary directory (its code never enters this repository), unless
# PCAP_REPLAY names an already built `pcap-replay`.
#
#   usage: sh scripts/bench-replay.sh [CAPTURE...]
#   (default: tests/data/ovmf-2boots-empty.pcap.gz tests/data/fedora-boot-1.pcap.gz)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-40}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -x /usr/bin/time ] || { echo "bench-replay: /usr/bin/time is missing (Debian package time)" >&2; exit 1; }

peer=${PCAP_REPLAY:-}
if [ -z "$peer" ]; then
    echo "building virtfw-varstore 0.6.6 pcap-replay (features std,json) in $work" >&2
    cargo install --quiet --locked --root "$work/peer" virtfw-varstore@0.6.6 \
        --features std,json --bin pcap-replay
    peer=$work/peer/bin/pcap-replay
fi
cargo build --quiet --release --locked -p uefi-vars-cli --manifest-path "$root/Cargo.toml"
ours=$root/target/release/uefi-vars

[ $# -gt 0 ] || set -- "$root/tests/data/ovmf-2boots-empty.pcap.gz" "$root/tests/data/fedora-boot-1.pcap.gz"

# sample OUT CMD...: appends "milliseconds kilobytes" of one run to OUT
# (wall time from date(1) around /usr/bin/time, whose own %e has only
# 10 ms resolution; the same overhead for every program); the command must
# succeed.
sample() {
    out=$1
    shift
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$work/t" "$@" >/dev/null 2>"$work/err" || {
        echo "failed: $*" >&2
        cat "$work/err" >&2
        exit 1
    }
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000 )) $(tail -n 1 "$work/t")" | awk '{printf "%.3f %s\n", $1/1000, $2}' >>"$out"
}

# median COLUMN FILE
median() {
    cut -d' ' -f"$1" "$2" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}

echo "| capture | program | wall ms (median of $runs) | peak RSS MB (median) | vs peer |"
echo "| --- | --- | --- | --- | --- |"
for capture in "$@"; do
    : >"$work/ours"
    : >"$work/peer"
    : >"$work/start"
    # The Fedora captures come from QEMU 10.0 (tests/data/README.md).
    case $(basename "$capture") in
        fedora-boot-*) legacy="--legacy-payload-size --legacy-storage-accounting" ;;
        *) legacy="" ;;
    esac
    i=0
    while [ "$i" -lt "$runs" ]; do
        # shellcheck disable=SC2086
        sample "$work/ours" "$ours" replay $legacy "$capture"
        sample "$work/peer" "$peer" --replay --pcap "$capture"
        sample "$work/start" "$ours" --version
        i=$((i + 1))
    done
    name=$(basename "$capture")
    ow=$(median 1 "$work/ours"); om=$(median 2 "$work/ours")
    pw=$(median 1 "$work/peer"); pm=$(median 2 "$work/peer")
    sw=$(median 1 "$work/start"); sm=$(median 2 "$work/start")
    awk -v n="$name" -v ow="$ow" -v om="$om" -v pw="$pw" -v pm="$pm" -v sw="$sw" -v sm="$sm" 'BEGIN {
        printf "| %s | uefi-vars replay | %.1f | %.1f | %.2f× time, %.2f× memory |\n", n, ow, om/1024, (pw>0 ? ow/pw : 0), om/pm
        printf "| %s | virtfw-varstore pcap-replay | %.1f | %.1f | 1.00× |\n", n, pw, pm/1024
        printf "| %s | uefi-vars --version (start-up alone) | %.1f | %.1f | |\n", n, sw, sm/1024
    }'
done
