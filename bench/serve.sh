#!/usr/bin/env bash
# The live gate at scale: `shadowdiff serve` over PAIRS already-analyzed pairs (the fixtures
# corpus, ~1 KB JSON bodies, 2 % with a difference) plus NEW new pairs per round.
#
# Prints, with peak and current RSS of the serve process after each round:
#   - the analysis serve runs at start over PAIRS pairs (its own figure, from /metrics),
#   - a cached answer (/v1/verdict with no new file: the directory listing is the whole cost),
#   - the answer after NEW new pairs appear (ROUNDS rounds),
#   - one full `shadowdiff analyze --sequential` over the same files, for comparison.
# serve keeps each file's pass 1 and merges (docs/serve.md, "What it costs"), so the answer after
# new files costs the new files' pass 1 plus one merge of everything, not a full analysis.
#
#   bench/serve.sh                       # 1,000,000 + 5 rounds of 10,000
#   PAIRS=200000 NEW=10000 ROUNDS=20 bench/serve.sh
#   NEW=0 PAIRS=100000 ROUNDS=40 bench/serve.sh   # no new pairs: each round touches one file, so
#                                                 # the same input is analyzed again (RSS drift)
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-1000000}
NEW=${NEW:-10000}
ROUNDS=${ROUNDS:-5}
CACHED=${CACHED:-20}
DIFF_RATE=${DIFF_RATE:-0.02}
work=${WORK:-$(mktemp -d)}
serve_pid=
cleanup() {
    if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --quiet --release -p shadowdiff -p shadowdiff-fixtures --bins
bin=$work/bin
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$bin" && cp "$target/release/shadowdiff" "$target/release/shadowdiff-fixtures" "$bin/"

# The existing period: PAIRS pairs from 2026-11-24T08:00Z at 100 pairs/s.
"$bin/shadowdiff-fixtures" corpus --pairs "$PAIRS" --out "$work/pairs/old" --diff-rate "$DIFF_RATE" \
    --seed 7 --rotate-rows 250000 > /dev/null
echo "corpus   $PAIRS pairs ($(du -sh "$work/pairs" | cut -f1))"

"$bin/shadowdiff" serve "$work/pairs" --listen 127.0.0.1:0 --refresh 24h --work-dir "$work/scratch" \
    --log-level warn > "$work/serve.out" &
serve_pid=$!
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/serve.out")

metric() { curl -sf "$url/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
rss() { awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "RSS %5.0f MiB (peak %5.0f MiB)", r / 1024, h / 1024 }' "/proc/$serve_pid/status"; }
timed_get() { curl -sf -o "$work/verdict.json" -w '%{time_total}' "$url/v1/verdict"; }

# The analysis serve starts with (the refresher's first tick).
until [ "$(metric 'shadowdiff_serve_analyses_total{outcome="ok"}')" = "1" ]; do sleep 1; done
printf 'start    full analysis of %d pairs in serve: %6.2f s   %s\n' "$PAIRS" "$(metric shadowdiff_analysis_duration_seconds)" "$(rss)"

# Cached answers: no new file.
times=$(for _ in $(seq "$CACHED"); do timed_get; echo; done | sort -n)
printf 'cached   /v1/verdict x%d: min %.4f s  median %.4f s  max %.4f s\n' "$CACHED" \
    "$(echo "$times" | head -1)" "$(echo "$times" | sed -n "$(( (CACHED + 1) / 2 ))p")" "$(echo "$times" | tail -1)"

total=$PAIRS
for round in $(seq "$ROUNDS"); do
    # NEW pairs captured after the period so far, as another agent run.
    start=$(date -u -d "2026-11-24T08:00:00Z + $(( total / 100 + 60 )) seconds" +%Y-%m-%dT%H:%M:%SZ)
    if [ "$NEW" -gt 0 ]; then
        "$bin/shadowdiff-fixtures" corpus --pairs "$NEW" --out "$work/pairs/new-$round" --diff-rate "$DIFF_RATE" \
            --seed $((100 + round)) --agent "round$round" --start "$start" > /dev/null
    else
        # A new modification time: the listing changes, the pairs do not.
        touch -d "@$(( $(date +%s) + round ))" "$(find "$work/pairs/old" -name '*.parquet' | head -1)"
    fi
    total=$(( total + NEW ))
    t=$(timed_get)
    analyzed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inputs"]["pairs_analyzed"])' "$work/verdict.json")
    printf 'round %3d  +%d new -> /v1/verdict %7.2f s over %d pairs   %s\n' "$round" "$NEW" "$t" "$analyzed" "$(rss)"
done

start=$(date +%s.%N)
set +e
/usr/bin/time -f '%M' -o "$work/analyze.rss" "$bin/shadowdiff" analyze "$work/pairs" --out "$work/analyze.out" --sequential --quiet
code=$?
set -e
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v r="$(tail -1 "$work/analyze.rss")" -v n="$total" -v c="$code" 'BEGIN {
    printf "analyze  full analyze --sequential of %d pairs: %6.2f s  peak RSS %5.0f MiB  exit %d\n", n, e - s, r / 1024, c }'
