#!/usr/bin/env bash
# Sizing a sharded analysis (docs/scale.md, "Analysis in shards"): PAIRS pairs (~1 KB JSON
# bodies, 2 % with a difference, rotated every ROTATE rows) analyzed once as one `analyze`, then
# as SHARDS shards run one after another (`plan`, `analyze --plan --shard I` for each I,
# `merge`), the way an Indexed Job with parallelism 1 would run them. Prints the wall time and
# peak RSS of each step, so a user can size a Job's pods: the time of a shard is what one pod
# takes, its RSS what one pod needs; the merge runs once. Checks the merged verdict.json equals
# the single analysis' (paths and timings aside).
#
#   bench/shards.sh                        # 10,000,000 pairs, 4 shards
#   PAIRS=1000000 SHARDS=4 bench/shards.sh
#   WORK=/big/disk bench/shards.sh         # the corpus and outputs need ~6 GB at 10M pairs
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-10000000}
SHARDS=${SHARDS:-4}
ROTATE=${ROTATE:-250000}
work=${WORK:-$(mktemp -d)}
keep=${KEEP:-0}
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT

cargo build --quiet --release -p shadowdiff -p shadowdiff-fixtures --bins
# Copies, so that a concurrent cargo build relinking target/release cannot pull them away.
bin=$work/bin
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$bin" && cp "$target/release/shadowdiff" "$target/release/shadowdiff-fixtures" "$bin/"

if [ ! -d "$work/pairs" ]; then
    echo "writing $PAIRS pairs…"
    "$bin/shadowdiff-fixtures" corpus --pairs "$PAIRS" --out "$work/pairs" --diff-rate 0.02 --seed 7 \
        --rotate-rows "$ROTATE" --effect 'latency-shift:1.3@/api/search' > /dev/null
fi
echo "corpus: $PAIRS pairs in $(find "$work/pairs" -name '*.parquet' | wc -l) files, $(du -sh "$work/pairs" | cut -f1)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# step NAME CMD...: runs CMD, prints its wall time and peak RSS, keeps them in $work/steps.
step() {
    local name=$1; shift
    local start end code
    start=$(date +%s.%N)
    set +e
    /usr/bin/time -f '%M' -o "$work/rss" "$@" > /dev/null
    code=$?
    set -e
    end=$(date +%s.%N)
    local kib; kib=$(tail -1 "$work/rss")
    awk -v n="$name" -v s="$start" -v e="$end" -v r="$kib" -v c="$code" 'BEGIN {
        printf "%-12s %8.1f s   peak RSS %6.0f MiB   exit %d\n", n, e - s, r / 1024, c }' | tee -a "$work/steps"
    if [ "$code" -gt 1 ]; then echo "$name failed (exit $code)" >&2; exit "$code"; fi
}

step single "$bin/shadowdiff" analyze "$work/pairs" --out "$work/single" --quiet
step plan "$bin/shadowdiff" plan "$work/pairs" --shards "$SHARDS" --out "$work/plan.json" --quiet
for i in $(seq 0 $((SHARDS - 1))); do
    step "shard $i" "$bin/shadowdiff" analyze --plan "$work/plan.json" --shard "$i" --partial-out "$work/partials" --quiet
done
step merge "$bin/shadowdiff" merge --plan "$work/plan.json" --partials "$work/partials" --out "$work/merged" --quiet
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "partials: $(du -sh "$work/partials" | cut -f1) for $SHARDS shards"

python3 - "$work/steps" "$work/single/verdict.json" "$work/merged/verdict.json" "$PAIRS" "$SHARDS" <<'EOF'
import json, sys
steps, single, merged, pairs, shards = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rows = [l.split() for l in open(steps)]
secs = {}
for r in rows:
    name = " ".join(r[:r.index("s") - 1]) if "s" in r else r[0]
    secs[name] = float(r[r.index("s") - 1])
shard_times = [v for k, v in secs.items() if k.startswith("shard")]
one = secs["single"]
total = secs["plan"] + sum(shard_times) + secs["merge"]
print(f"single analyze {one:.1f} s ({pairs / one:,.0f} pairs/s)")
print(f"sharded, one after another: plan {secs['plan']:.1f} s + shards {sum(shard_times):.1f} s "
      f"(each {min(shard_times):.1f}–{max(shard_times):.1f} s) + merge {secs['merge']:.1f} s = {total:.1f} s")
print(f"with {shards} pods in parallel: plan + slowest shard + merge = "
      f"{secs['plan'] + max(shard_times) + secs['merge']:.1f} s ({one / (secs['plan'] + max(shard_times) + secs['merge']):.2f}× faster than one process)")
strip = lambda v: {k: x for k, x in v.items() if k not in ("outputs", "generated_at", "analysis_seconds")}
a, b = strip(json.load(open(single))), strip(json.load(open(merged)))
print("merged verdict.json equals the single analysis': " + ("yes" if a == b else "NO: " + ", ".join(k for k in a if a[k] != b.get(k))))
EOF
