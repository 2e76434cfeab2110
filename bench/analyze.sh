#!/usr/bin/env bash
# Scale of `shadowdiff analyze`: PAIRS pairs (~1 KB JSON bodies, 2 % with a difference), analyzed
# end to end (both passes, polars aggregation, statistics, verdict). Prints wall time, pairs/s and
# peak RSS, and the same for a quarter of the pairs, so memory growth with input size shows.
# Aims: ≤ 60 s and ≤ 2 GiB peak RSS for 1,000,000 pairs on a 2-core machine.
#
#   bench/analyze.sh                  # 1,000,000 pairs
#   PAIRS=200000 bench/analyze.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-1000000}
DIFF_RATE=${DIFF_RATE:-0.02}
work=${WORK:-$(mktemp -d)}
trap 'rm -rf "$work"' EXIT

cargo build --quiet --release -p shadowdiff -p shadowdiff-fixtures --bins
# Copies, so that a concurrent cargo build relinking target/release cannot pull them away.
bin=$work/bin
mkdir -p "$bin" && cp target/release/shadowdiff target/release/shadowdiff-fixtures "$bin/"

measure() { # name pairs
    local name=$1 n=$2
    if [ ! -d "$work/$name" ]; then
        "$bin/shadowdiff-fixtures" corpus --pairs "$n" --out "$work/$name" --diff-rate "$DIFF_RATE" --seed 7 --rotate-rows 250000 > /dev/null
    fi
    local size; size=$(du -sh "$work/$name" | cut -f1)
    local start end
    start=$(date +%s.%N)
    set +e
    /usr/bin/time -f '%M' -o "$work/$name.rss" "$bin/shadowdiff" analyze "$work/$name" --out "$work/$name.out" --quiet
    local code=$?
    set -e
    end=$(date +%s.%N)
    local rss_kb; rss_kb=$(tail -1 "$work/$name.rss")
    awk -v n="$n" -v s="$start" -v e="$end" -v r="$rss_kb" -v c="$code" -v z="$size" -v name="$name" 'BEGIN {
        t = e - s; printf "%-8s %8d pairs (%s input)  %6.1f s  %8.0f pairs/s  peak RSS %6.0f MiB  exit %d\n", name, n, z, t, n / t, r / 1024, c }'
}

echo "cores: $(nproc)"
measure quarter $((PAIRS / 4))
measure full "$PAIRS"
