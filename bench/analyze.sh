#!/usr/bin/env bash
# Scale of `shadowdiff analyze`: PAIRS pairs (~1 KB JSON bodies, 2 % with a difference), analyzed
# end to end (both passes, polars aggregation, statistics, verdict). Prints wall time, pairs/s and
# peak RSS, and the same for a quarter of the pairs, so memory growth with input size shows;
# LARGE=10000000 also analyzes that many (a 4.6 GB corpus, ~3 min to write, ~2.5 min to analyze)
# and prints its peak RSS against PAIRS'. Aims (issue 16): 1,000,000 pairs in ≤ 15 s with
# ≤ 0.5 GiB peak RSS on a 2-core machine, and memory flat from 1M to 10M pairs.
#
# GZIP=1 measures what Content-Encoding decoding costs instead: the same corpus (same seed, same
# content) written twice by the fixtures generator, once plain and once with every body of every
# side gzip-encoded (`shadowdiff-fixtures corpus --gzip every`), then analyze timed RUNS times on
# each, alternating plain and gzip so that load from elsewhere on the machine falls on both alike.
# Prints min / median / max wall time and peak RSS per corpus, the ratio gzip/plain of the medians
# and of the minima, and whether both runs reached the same verdict. Aim: decoding adds ≤ 15 %.
#
#   bench/analyze.sh                  # 1,000,000 pairs
#   PAIRS=200000 bench/analyze.sh
#   GZIP=1 RUNS=5 bench/analyze.sh    # plain vs gzip, 1,000,000 pairs each
#   LARGE=10000000 bench/analyze.sh   # 250,000, 1,000,000 and 10,000,000 pairs
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-1000000}
DIFF_RATE=${DIFF_RATE:-0.02}
GZIP=${GZIP:-0}
RUNS=${RUNS:-3}
LARGE=${LARGE:-0}
work=${WORK:-$(mktemp -d)}
trap 'rm -rf "$work"' EXIT

cargo build --quiet --release -p shadowdiff -p shadowdiff-fixtures --bins
# Copies, so that a concurrent cargo build relinking target/release cannot pull them away.
bin=$work/bin
mkdir -p "$bin" && cp target/release/shadowdiff target/release/shadowdiff-fixtures "$bin/"

corpus() { # name pairs [gzip sides]
    local name=$1 n=$2 gzip=${3:-none}
    if [ ! -d "$work/$name" ]; then
        "$bin/shadowdiff-fixtures" corpus --pairs "$n" --out "$work/$name" --diff-rate "$DIFF_RATE" --seed 7 --rotate-rows 250000 --gzip "$gzip" > /dev/null
    fi
}

measure() { # name pairs
    local name=$1 n=$2
    corpus "$name" "$n"
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

# One timed analyze of corpus NAME into NAME.out; appends "seconds peak_kib exit" to NAME.runs.
timed() { # name
    local name=$1 start end code
    rm -rf "$work/$name.out"
    start=$(date +%s.%N)
    set +e
    /usr/bin/time -f '%M' -o "$work/$name.rss" "$bin/shadowdiff" analyze "$work/$name" --out "$work/$name.out" --quiet
    code=$?
    set -e
    end=$(date +%s.%N)
    echo "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }') $(tail -1 "$work/$name.rss") $code" >>"$work/$name.runs"
}

compare_gzip() {
    corpus plain "$PAIRS" none
    corpus gzip "$PAIRS" every
    echo "corpora: $PAIRS pairs each, seed 7; plain $(du -sh "$work/plain" | cut -f1), every body gzip-encoded $(du -sh "$work/gzip" | cut -f1)"
    echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
    for i in $(seq 1 "$RUNS"); do
        timed plain
        timed gzip
        echo "run $i/$RUNS: plain $(tail -1 "$work/plain.runs" | cut -d' ' -f1) s, gzip $(tail -1 "$work/gzip.runs" | cut -d' ' -f1) s"
    done
    echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
    python3 - "$PAIRS" "$work/plain.runs" "$work/gzip.runs" "$work/plain.out/verdict.json" "$work/gzip.out/verdict.json" <<'EOF'
import json, statistics, sys
pairs = int(sys.argv[1])
def runs(path):
    rows = [line.split() for line in open(path)]
    return [float(r[0]) for r in rows], [int(r[1]) / 1024 for r in rows], {int(r[2]) for r in rows}
(pt, pm, pc), (gt, gm, gc) = runs(sys.argv[2]), runs(sys.argv[3])
print(f"\n{'':8} {'runs':>4} {'min s':>8} {'median s':>9} {'max s':>8} {'pairs/s (median)':>17} {'peak RSS MiB':>13} {'exit':>5}")
for name, t, m, c in (("plain", pt, pm, pc), ("gzip", gt, gm, gc)):
    print(f"{name:8} {len(t):4} {min(t):8.1f} {statistics.median(t):9.1f} {max(t):8.1f} "
          f"{pairs / statistics.median(t):17.0f} {max(m):13.0f} {','.join(map(str, sorted(c))):>5}")
ratio = statistics.median(gt) / statistics.median(pt)
print(f"\ngzip / plain, medians {ratio:.3f}, minima {min(gt) / min(pt):.3f}   "
      f"(decoding adds {100 * (ratio - 1):+.1f} %; aim ≤ +15 %)")
def essence(path):
    v = json.load(open(path))
    return (v["verdict"], [(c["id"], c["status"]) for c in v["checks"]],
            sorted((f["route"], f["field"], json.dumps(f["counts"], sort_keys=True)) for f in v["fields"]))
same = essence(sys.argv[4]) == essence(sys.argv[5])
print(f"same verdict, checks and field differences on both corpora: {'yes' if same else 'NO'}")
sys.exit(0 if same else 1)
EOF
}

echo "cores: $(nproc)"
if [ "$GZIP" = 1 ]; then
    compare_gzip
else
    measure quarter $((PAIRS / 4))
    measure full "$PAIRS"
    if [ "$LARGE" -gt 0 ]; then
        # The smaller corpora go first: the large one needs the disk.
        rm -rf "$work/quarter" "$work/quarter.out" "$work/full.out"
        measure large "$LARGE"
        awk -v f="$(tail -1 "$work/full.rss")" -v l="$(tail -1 "$work/large.rss")" -v n="$PAIRS" -v m="$LARGE" 'BEGIN {
            printf "peak RSS at %d pairs / at %d pairs: %.2f\n", m, n, l / f }'
    fi
fi
