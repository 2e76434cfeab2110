#!/usr/bin/env bash
# A/A calibration of `shadowdiff analyze`: how often an identical build warns or fails.
#
# Writes RUNS corpora with different seeds and no injected effect — the canary and the secondary
# draw from the baseline's own distributions (log-normal latency with per-request correlation,
# 0.1 % sparse 500s, noise fields), eight endpoints — analyzes each with the default policy and
# prints the false-fail and false-warn rates and which checks caused them. Aim: false-fail ≤ 1 %.
#
#   bench/aa.sh                       # 200 corpora of 3000 pairs
#   RUNS=500 PAIRS=10000 bench/aa.sh
#   NO_SECONDARY=1 bench/aa.sh        # corpora without a secondary
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-200}
PAIRS=${PAIRS:-3000}
FIRST_SEED=${FIRST_SEED:-1000}
extra=()
[ -n "${NO_SECONDARY:-}" ] && extra+=(--no-secondary)

cargo build --quiet --release -p shadowdiff -p shadowdiff-fixtures --bins
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Copies, so that a concurrent cargo build relinking target/release cannot pull them away.
bin=$work/bin
mkdir -p "$bin" && cp target/release/shadowdiff target/release/shadowdiff-fixtures "$bin/"

fails=0; warns=0; passes=0; other=0
: > "$work/causes"
for ((i = 0; i < RUNS; i++)); do
    seed=$((FIRST_SEED + i))
    rm -rf "$work/in" "$work/out"
    "$bin/shadowdiff-fixtures" corpus --pairs "$PAIRS" --out "$work/in" --seed "$seed" ${extra[@]+"${extra[@]}"} > /dev/null
    set +e
    "$bin/shadowdiff" analyze "$work/in" --out "$work/out" --seed "$seed" --quiet
    code=$?
    set -e
    verdict=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"])' "$work/out/verdict.json")
    case "$verdict" in
        fail) fails=$((fails + 1)) ;;
        warn) warns=$((warns + 1)) ;;
        pass) passes=$((passes + 1)) ;;
        *) other=$((other + 1)) ;;
    esac
    python3 - "$work/out/verdict.json" >> "$work/causes" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for c in v["checks"]:
    if c["status"] in ("warn", "fail"):
        print(c["status"], c["id"])
PY
    printf '\r%d/%d  fail %d  warn %d  pass %d  other %d (last exit %d)' "$((i + 1))" "$RUNS" "$fails" "$warns" "$passes" "$other" "$code" >&2
done
echo >&2
echo "A/A runs: $RUNS corpora × $PAIRS pairs${NO_SECONDARY:+ (no secondary)}"
awk -v f="$fails" -v w="$warns" -v n="$RUNS" 'BEGIN { printf "false-fail rate: %.2f%% (%d)   false-warn rate: %.2f%% (%d)\n", 100*f/n, f, 100*w/n, w }'
echo "checks that warned or failed (count of runs):"
sort "$work/causes" | uniq -c | sort -rn | sed 's/^/  /'
