#!/usr/bin/env bash
# shadowdiff capture with an object-store --out (s3:// to moto_server on loopback) against the
# same capture with a local --out.
#
# Baseline and canary are nginx serving the same static JSON file (as in bench/capture.sh); load
# comes from wrk at saturation. Two capture agents run side by side, one writing to a local
# directory, one to s3://bench/pairs through its spool; both rotate every ROTATE_ROWS pairs
# (default 20000) so that files close, and are uploaded, during each run. RUNS rounds (default
# 3), each measuring local then s3 for DURATION. Prints min / median / max req/s of each and the
# ratio s3/local (issue 14's target: >= 0.90, within 10 %), then stops both with SIGTERM and
# checks that every recorded pair of the s3 agent is in the bucket (rows read back with
# `shadowdiff inspect s3://…`) and what the upload counters say.
#
# moto_server is Python and runs on the same cores, so every byte uploaded costs the machine
# what a real S3 endpoint would cost elsewhere: the ratio is a lower bound for the agent's own
# cost.
#
# Environment: DURATION (per run, default 10s), CONNS (64), THREADS (wrk threads, 2), RUNS (3),
# ROTATE_ROWS (20000), SHADOWDIFF (a prebuilt binary; default: build target/release/shadowdiff),
# MOTO (moto_server; default .venv/bin/moto_server, installed by scripts/test).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
RUNS=${RUNS:-3}
ROTATE_ROWS=${ROTATE_ROWS:-20000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOTO=${MOTO:-$ROOT/.venv/bin/moto_server}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
    echo "installing nginx and wrk from apt…" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq nginx wrk >/dev/null
fi
[[ -x $MOTO ]] || { echo "$MOTO is missing: run scripts/test (it installs moto[server] into .venv)" >&2; exit 1; }
NGINX=$(command -v nginx)

if [[ -z "${SHADOWDIFF:-}" ]]; then
    (cd "$ROOT" && cargo build --release --quiet --bin shadowdiff)
    SHADOWDIFF=$ROOT/target/release/shadowdiff
fi

WORK=$(mktemp -d /tmp/shadowdiff-bench-s3.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
P_BASE=$(free_port); P_CANARY=$(free_port); P_MOTO=$(free_port)
P_LOCAL=$(free_port); P_LOCAL_ADMIN=$(free_port); P_S3=$(free_port); P_S3_ADMIN=$(free_port)

mkdir -p "$WORK/www" "$WORK/up" "$WORK/pairs" "$WORK/spool"
python3 - "$WORK/www/users.json" <<'EOF'
import json, sys
doc = {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "active": True,
       "roles": ["admin", "editor"], "balance": 1234.56,
       "orders": [{"id": i, "sku": f"SKU-{i:05d}", "qty": i % 5 + 1, "price": 9.99 + i} for i in range(8)]}
open(sys.argv[1], "w").write(json.dumps(doc))
EOF

cat >"$WORK/up/nginx.conf" <<EOF
worker_processes auto;
error_log $WORK/up/error.log warn;
pid $WORK/up/nginx.pid;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/up/body; proxy_temp_path $WORK/up/proxy;
    fastcgi_temp_path $WORK/up/fcgi; uwsgi_temp_path $WORK/up/uwsgi; scgi_temp_path $WORK/up/scgi;
    server { listen 127.0.0.1:$P_BASE;   location / { root $WORK/www; default_type application/json; try_files /users.json =404; } }
    server { listen 127.0.0.1:$P_CANARY; location / { root $WORK/www; default_type application/json; try_files /users.json =404; } }
}
EOF

"$NGINX" -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)
"$MOTO" -H 127.0.0.1 -p "$P_MOTO" >"$WORK/moto.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$P_MOTO/" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$P_MOTO/bench"

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$P_MOTO AWS_ALLOW_HTTP=true
common=(--baseline "http://127.0.0.1:$P_BASE" --canary "http://127.0.0.1:$P_CANARY" --rotate-rows "$ROTATE_ROWS" --log-level error)
"$SHADOWDIFF" capture --listen "127.0.0.1:$P_LOCAL" --admin-listen "127.0.0.1:$P_LOCAL_ADMIN" "${common[@]}" \
    --out "$WORK/pairs" --agent bench-local >"$WORK/local.out" 2>"$WORK/local.err" & LOCAL_PID=$!
"$SHADOWDIFF" capture --listen "127.0.0.1:$P_S3" --admin-listen "127.0.0.1:$P_S3_ADMIN" "${common[@]}" \
    --out s3://bench/pairs --spool "$WORK/spool" --agent bench-s3 --upload-drain-timeout 120s \
    >"$WORK/s3.out" 2>"$WORK/s3.err" & S3_PID=$!
PIDS+=($LOCAL_PID $S3_PID)

wait_up() {
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$1/users" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1; logs:" >&2
    cat "$WORK"/up/error.log "$WORK"/*.err "$WORK/moto.log" >&2 2>/dev/null || true
    exit 1
}
wait_up "$P_BASE"; wait_up "$P_LOCAL"; wait_up "$P_S3"

run_wrk() { wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "$1" | awk '/Requests\/sec/ { printf "%.0f\n", $2 }'; }

echo "capture --out DIR vs --out s3:// (moto_server on loopback) — $(nproc) cores, wrk -t$THREADS -c$CONNS -d$DURATION, rotate every $ROTATE_ROWS pairs, $RUNS rounds"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$WORK/runs"
for i in $(seq 1 "$RUNS"); do
    for path in "local $P_LOCAL" "s3 $P_S3"; do
        read -r name port <<<"$path"
        rps=$(run_wrk "http://127.0.0.1:$port/users")
        echo "$name $rps" >>"$WORK/runs"
        echo "round $i: $name $rps req/s"
        # Let the s3 agent's backlog drain before the next round, so its uploads are not charged
        # to the local agent's next run (they run on the same cores).
        if [[ $name == s3 ]]; then
            for _ in $(seq 1 600); do
                left=$(curl -fsS "http://127.0.0.1:$P_S3_ADMIN/metrics" | awk '$1 == "shadowdiff_spool_files" { print $2 }')
                [[ $left == 0 ]] && break
                sleep 0.2
            done
        fi
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

METRICS=$(curl -fsS "http://127.0.0.1:$P_S3_ADMIN/metrics")
metric() { awk -v m="$1" '$1 == m { print $2 }' <<<"$METRICS"; }
echo "s3 agent before SIGTERM: recorded $(metric shadowdiff_pairs_recorded_total), uploaded $(metric shadowdiff_pairs_uploaded_total) pairs in $(metric shadowdiff_files_uploaded_total) files, upload failures $(metric shadowdiff_upload_failures_total), waiting in the spool $(metric shadowdiff_spool_files) files"
kill -TERM "$LOCAL_PID" "$S3_PID"
wait "$LOCAL_PID" "$S3_PID" 2>/dev/null || true
grep '^capture:' "$WORK/s3.err" || true
RECORDED=$(metric shadowdiff_pairs_recorded_total)
ROWS=$("$SHADOWDIFF" inspect --json s3://bench/pairs | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["rows"], j["counters"].get("recorded", 0))')
echo "rows in the bucket, recorded by the agent (newest file's counters): $ROWS"

python3 - "$WORK/runs" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, rps = line.split()
    runs.setdefault(name, []).append(float(rps))
print(f"\n{'req/s':8} {'min':>9} {'median':>9} {'max':>9}")
for name, r in runs.items():
    print(f"{name:8} {min(r):9.0f} {statistics.median(r):9.0f} {max(r):9.0f}")
m = statistics.median(runs["s3"]) / statistics.median(runs["local"])
print(f"\ncapture s3:// / local out   medians {m:.3f} (min {min(runs['s3']) / min(runs['local']):.3f}, max {max(runs['s3']) / max(runs['local']):.3f})   (target >= 0.90)")
EOF
