#!/usr/bin/env bash
# shadowdiff replay against oha, on loopback, in one run.
#
# nginx serves the same static JSON for every path. The URL set is taken from a generated corpus
# (realistic paths with ids). Measured:
#   oha         oha -c C -n N over the URL set (no recording)
#   shadowdiff  shadowdiff replay, unpaced, --concurrency C, canary-only (one target), recording
#               every response to Parquet
#   rate        shadowdiff replay --rate 2000 --loop --duration 10s: achieved rate vs 2000
# Prints requests/s for both, the ratio (aim >= 1.0), and the --rate error (aim within 2%); and,
# because client, recorder and nginx share the same cores, the CPU time per request of each tool
# and of nginx during its run (user + system, from bash's `time` and /proc).
#
# Measured (issue 16; CONNS=32, release build, the shared 2-core machine at load average 9–14;
# the old and the new binary alternated, three runs each): CPU per request shadowdiff 22.5 / 23.8
# / 24.0 µs before, 22.5 / 23.4 / 23.4 µs after the writer's builders were pre-sized; oha 10.4 /
# 11.3 / 11.9 µs in the same runs, a ratio of 1.97 / 2.07 / 2.16 (target <= 1.4). req/s ratios
# ranged 0.54–1.15 with oha starved by other builds: trust the CPU figures. perf (dwarf, 4 s):
# syscalls 29 % (loopback writev/read), hyper's client dispatch ~30 %, recording 21 % (Parquet
# column writing 10 %, zstd level 1 6 %, building Arrow batches 5 %), decoding the input 8 %,
# dropping records 5 %, mimalloc ~10 %. Removing all recording would not reach 1.4x oha; a faster
# codec than zstd-1 would save at most the 6 %.
#
# oha is installed with `cargo install oha` into bench/.tools (git-ignored) the first time.
# Environment: N (requests, default 200000), CONNS (default 64), RATE (default 2000),
# RATE_SECS (default 10), SHADOWDIFF (a prebuilt binary; default: build target/release/shadowdiff).
set -euo pipefail

N=${N:-200000}
CONNS=${CONNS:-64}
RATE=${RATE:-2000}
RATE_SECS=${RATE_SECS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx; then
    echo "installing nginx from apt…" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq nginx >/dev/null
fi
OHA=$ROOT/bench/.tools/bin/oha
if [[ ! -x $OHA ]]; then
    echo "installing oha with cargo (once)…" >&2
    cargo install --quiet --locked oha --root "$ROOT/bench/.tools"
fi
if [[ -z "${SHADOWDIFF:-}" ]]; then (cd "$ROOT" && cargo build --release --quiet --bin shadowdiff --bin shadowdiff-fixtures -p shadowdiff -p shadowdiff-fixtures); fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# SHADOWDIFF: a prebuilt binary (its directory must hold shadowdiff-fixtures too), so that a
# concurrent build relinking target/release cannot pull it away mid-run.
SD=${SHADOWDIFF:-$TARGET/release/shadowdiff}
FX=$(dirname "$SD")/shadowdiff-fixtures

# pyarrow reads the corpus's paths: the test virtualenv has it.
PY=$ROOT/.venv/bin/python
if [[ ! -x $PY ]]; then
    python3 -m venv "$ROOT/.venv"
    "$PY" -m pip install -q -r "$ROOT/tests/requirements.txt"
fi

WORK=$(mktemp -d /tmp/shadowdiff-replay-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
PORT=$(free_port)
mkdir -p "$WORK/www" "$WORK/ng"
python3 -c 'import json; print(json.dumps({"id": 42, "name": "Ada", "items": [{"sku": f"S{i}", "qty": i} for i in range(20)]}))' > "$WORK/www/doc.json"
cat > "$WORK/ng/nginx.conf" <<CONF
worker_processes auto;
error_log $WORK/ng/error.log warn;
pid $WORK/ng/nginx.pid;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/ng/body; proxy_temp_path $WORK/ng/proxy;
    fastcgi_temp_path $WORK/ng/fcgi; uwsgi_temp_path $WORK/ng/uwsgi; scgi_temp_path $WORK/ng/scgi;
    server { listen 127.0.0.1:$PORT; location / { root $WORK/www; default_type application/json; try_files /doc.json =404; } }
}
CONF
nginx -c "$WORK/ng/nginx.conf" -g 'daemon off;' & PIDS+=($!)
sleep 0.5

# The same URL set for both tools: the corpus's GET paths.
"$FX" corpus --pairs "$N" --out "$WORK/corpus" --no-secondary --seed 7 >/dev/null
"$PY" - "$WORK/corpus" "http://127.0.0.1:$PORT" > "$WORK/urls.txt" <<'PY'
import sys, glob, pyarrow.parquet as pq
root, base = sys.argv[1], sys.argv[2]
for f in sorted(glob.glob(root + "/**/*.parquet", recursive=True)):
    t = pq.read_table(f, columns=["method", "path", "query"]).to_pylist()
    for r in t:
        if r["method"] == "GET":
            print(base + r["path"] + ("?" + r["query"] if r["query"] is not None else ""))
PY
GETS=$(wc -l < "$WORK/urls.txt")

# CPU seconds (user + system) nginx's workers have used so far.
nginx_cpu() {
    local ticks=0 p
    for p in $(pgrep -P "$(cat "$WORK/ng/nginx.pid")"); do
        ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$ticks $(getconf CLK_TCK)" | awk '{print $1 / $2}'
}
TIMEFORMAT='%3U %3S'

echo "== oha: $GETS requests, -c $CONNS"
NG0=$(nginx_cpu)
{ time "$OHA" --no-tui -n "$GETS" -c "$CONNS" --urls-from-file "$WORK/urls.txt" > "$WORK/oha.txt" ; } 2> "$WORK/oha.cpu"
OHA_NG=$(echo "$(nginx_cpu) $NG0" | awk '{print $1 - $2}')
OHA_RPS=$(awk '/Requests\/sec:/ {print $2; exit}' "$WORK/oha.txt")
echo "oha: $OHA_RPS req/s"

echo "== shadowdiff replay: unpaced, --concurrency $CONNS, canary-only, recording every response"
NG0=$(nginx_cpu)
{ time "$SD" replay "$WORK/corpus" --canary "http://127.0.0.1:$PORT" --out "$WORK/out" --concurrency "$CONNS" 2> "$WORK/sd.txt" ; } 2> "$WORK/sd.cpu"
SD_NG=$(echo "$(nginx_cpu) $NG0" | awk '{print $1 - $2}')
cat "$WORK/sd.txt"
SD_RPS=$(sed -n 's/.*(\([0-9.]*\) req\/s).*/\1/p' "$WORK/sd.txt" | head -1)

echo "== shadowdiff replay --rate $RATE for ${RATE_SECS}s"
"$SD" replay "$WORK/corpus" --canary "http://127.0.0.1:$PORT" --out "$WORK/rate" --rate "$RATE" --loop --duration "${RATE_SECS}s" --concurrency 512 2> "$WORK/rate.txt"
cat "$WORK/rate.txt"
ACH=$(sed -n 's/.*(\([0-9.]*\) req\/s).*/\1/p' "$WORK/rate.txt" | head -1)

python3 - "$OHA_RPS" "$SD_RPS" "$RATE" "$ACH" "$GETS" "$(cat "$WORK/oha.cpu")" "$OHA_NG" "$(cat "$WORK/sd.cpu")" "$SD_NG" <<'PY'
import sys
oha, sd, rate, ach, n, oha_u, oha_s, oha_ng, sd_u, sd_s, sd_ng = map(float, " ".join(sys.argv[1:]).split())
us = lambda s: s / n * 1e6
print()
print(f"throughput  shadowdiff {sd:,.0f} req/s   oha {oha:,.0f} req/s   ratio {sd/oha:.2f} (aim >= 1.0)")
print(f"--rate {rate:.0f}  achieved {ach:,.1f} req/s   error {abs(ach-rate)/rate*100:.2f}% (aim <= 2%)")
print(f"CPU per request (user+sys)  shadowdiff {us(sd_u + sd_s):.1f} µs (nginx {us(sd_ng):.1f} µs)   "
      f"oha {us(oha_u + oha_s):.1f} µs (nginx {us(oha_ng):.1f} µs)   on {__import__('os').cpu_count()} CPUs")
PY
