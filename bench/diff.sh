#!/usr/bin/env bash
# shadowdiff's JSON diff against Python's deepdiff, on the same generated pairs, in one run.
#
# Generates ~1 KB API-like JSON response pairs (half identical, half with one to three
# differences: changed values, type changes, added and removed fields, array elements removed),
# times "parse both bodies + diff" per pair on one core for each tool, prints both rates and
# their ratio, and checks that both tools report the same changed paths (as RFC 6901 pointers)
# on a sample of pairs. Exits non-zero if the paths disagree.
#
#   bench/diff.sh                      # defaults below
#   PAIRS=100000 PY_PAIRS=5000 bench/diff.sh
#
# deepdiff is installed with pip into a virtualenv ($DEEPDIFF_VENV, default under /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-50000}       # pairs shadowdiff diffs
PY_PAIRS=${PY_PAIRS:-3000}  # the first PY_PAIRS of them are diffed by deepdiff (it is slower)
SAMPLE=${SAMPLE:-1000}      # pairs on which both tools must report the same changed paths
VENV=${DEEPDIFF_VENV:-/tmp/shadowdiff-bench-venv}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! "$VENV/bin/python" -c 'import deepdiff' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check deepdiff
fi

cargo build --quiet --release -p shadowdiff-analyze --example diff_batch
bin=target/release/examples/diff_batch
"$bin" generate "$PAIRS" "$work" 0.5

echo "pairs: $(wc -l < "$work/baseline.jsonl"), mean body $(( $(wc -c < "$work/baseline.jsonl") / PAIRS )) bytes"
rust=$("$bin" run "$work" "$work/shadowdiff.paths" "$SAMPLE")
echo "shadowdiff: $rust"

"$VENV/bin/python" - "$work" "$PY_PAIRS" "$SAMPLE" "$rust" <<'PY'
import json, sys, time
import deepdiff
from deepdiff import DeepDiff

work, n, sample, rust = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(f"{work}/baseline.jsonl") as fa, open(f"{work}/canary.jsonl") as fb:
    pairs = [(a, b) for _, a, b in zip(range(max(n, sample)), fa, fb)]

def pointer(level, added):
    keys = level.path(output_format="list", use_t2=added)
    return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)

def paths(diff):
    out = []
    for report, levels in diff.tree.items():
        for level in levels:
            out.append(pointer(level, report.endswith("_added")))
    return sorted(out)

start = time.perf_counter()
differing = 0
for a, b in pairs[:n]:
    d = DeepDiff(json.loads(a), json.loads(b))
    differing += bool(d)
secs = time.perf_counter() - start
py_rate = n / secs
print(f"deepdiff {deepdiff.__version__}: pairs={n} differing={differing} seconds={secs:.3f} pairs_per_sec={py_rate:.0f}")

rust_rate = float(dict(kv.split("=") for kv in rust.split())["pairs_per_sec"])
print(f"ratio: shadowdiff is {rust_rate / py_rate:.0f}x faster than deepdiff (aim: >= 50x)")

with open(f"{work}/shadowdiff.paths") as f:
    ours = [json.loads(line) for line in f]
theirs = [paths(DeepDiff(json.loads(a), json.loads(b), view="tree")) for a, b in pairs[:sample]]
mismatches = [(i, o, t) for i, (o, t) in enumerate(zip(ours, theirs)) if o != t]
changed = sum(1 for o in ours if o)
print(f"changed paths: {len(ours) - len(mismatches)}/{len(ours)} pairs agree ({changed} of them with differences)")
for i, o, t in mismatches[:5]:
    print(f"  pair {i}: shadowdiff {o} deepdiff {t}")
sys.exit(1 if mismatches else 0)
PY
