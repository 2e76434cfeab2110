#!/usr/bin/env bash
# shadowdiff capture against nginx's own `mirror` module, on loopback.
#
# Baseline and canary are nginx serving the same static JSON file. Load comes from wrk. Three
# paths are measured at saturation:
#   direct     wrk → baseline
#   nginx      wrk → nginx (worker_processes auto, `mirror` to the canary) → baseline
#   shadowdiff wrk → shadowdiff capture (recording every pair to Parquet) → baseline, mirror to canary
# then, at half of nginx-mirror's saturation rate (paced with wrk's delay() hook), the median
# latency of direct and shadowdiff, to give the latency shadowdiff adds.
#
# Prints the figures and the ratios. Targets (issue 4): throughput ratio shadowdiff/nginx >= 1.0
# while recording every pair; added median latency <= 1 ms at half of nginx's saturation rate.
#
# Environment: DURATION (per run, default 10s), CONNS (default 64), THREADS (wrk threads, 2),
# SHADOWDIFF (a prebuilt binary; default: build target/release/shadowdiff).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
    echo "installing nginx and wrk from apt…" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq nginx wrk >/dev/null
fi
NGINX=$(command -v nginx)

if [[ -z "${SHADOWDIFF:-}" ]]; then
    (cd "$ROOT" && cargo build --release --quiet --bin shadowdiff)
    SHADOWDIFF=$ROOT/target/release/shadowdiff
fi

WORK=$(mktemp -d /tmp/shadowdiff-bench.XXXXXX)
chmod 755 "$WORK"   # nginx workers run as an unprivileged user and must read the JSON
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
P_BASE=$(free_port); P_CANARY=$(free_port); P_MIRROR=$(free_port); P_SD=$(free_port); P_ADMIN=$(free_port)

mkdir -p "$WORK/www" "$WORK/up" "$WORK/mirror" "$WORK/pairs"
python3 - "$WORK/www/users.json" <<'EOF'
import json, sys
doc = {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "active": True,
       "roles": ["admin", "editor"], "balance": 1234.56,
       "orders": [{"id": i, "sku": f"SKU-{i:05d}", "qty": i % 5 + 1, "price": 9.99 + i} for i in range(8)]}
open(sys.argv[1], "w").write(json.dumps(doc))
EOF

common() {
    cat <<EOF
worker_processes auto;
error_log $1/error.log warn;
pid $1/nginx.pid;
events { worker_connections 8192; }
EOF
}

# Baseline and canary: the same static JSON.
{
    common "$WORK/up"
    cat <<EOF
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/up/body; proxy_temp_path $WORK/up/proxy;
    fastcgi_temp_path $WORK/up/fcgi; uwsgi_temp_path $WORK/up/uwsgi; scgi_temp_path $WORK/up/scgi;
    server { listen 127.0.0.1:$P_BASE;   location / { root $WORK/www; default_type application/json; try_files /users.json =404; } }
    server { listen 127.0.0.1:$P_CANARY; location / { root $WORK/www; default_type application/json; try_files /users.json =404; } }
}
EOF
} >"$WORK/up/nginx.conf"

# nginx's own mirror in front of them.
{
    common "$WORK/mirror"
    cat <<EOF
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/mirror/body; proxy_temp_path $WORK/mirror/proxy;
    fastcgi_temp_path $WORK/mirror/fcgi; uwsgi_temp_path $WORK/mirror/uwsgi; scgi_temp_path $WORK/mirror/scgi;
    upstream baseline { server 127.0.0.1:$P_BASE; keepalive 256; }
    upstream canary { server 127.0.0.1:$P_CANARY; keepalive 256; }
    server {
        listen 127.0.0.1:$P_MIRROR;
        location / {
            mirror /__mirror;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://baseline;
        }
        location = /__mirror {
            internal;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://canary\$request_uri;
        }
    }
}
EOF
} >"$WORK/mirror/nginx.conf"

"$NGINX" -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)
"$NGINX" -p "$WORK/mirror" -c "$WORK/mirror/nginx.conf" -g 'daemon off;' & PIDS+=($!)
"$SHADOWDIFF" capture --listen "127.0.0.1:$P_SD" --admin-listen "127.0.0.1:$P_ADMIN" \
    --baseline "http://127.0.0.1:$P_BASE" --canary "http://127.0.0.1:$P_CANARY" \
    --out "$WORK/pairs" --agent bench --log-level error >"$WORK/sd.out" & SD_PID=$!
PIDS+=($SD_PID)

wait_up() {
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$1/users" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1; logs:" >&2
    cat "$WORK"/up/error.log "$WORK"/mirror/error.log "$WORK"/sd.out >&2 2>/dev/null || true
    exit 1
}
wait_up "$P_BASE"; wait_up "$P_MIRROR"; wait_up "$P_SD"

# wrk's summary → "rps p50_ms p99_ms"
run_wrk() {
    local url=$1; shift
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url" | awk '
        /Requests\/sec/ { rps = $2 }
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        END { printf "%.0f %.3f %.3f\n", rps, ms(p50), ms(p99) }'
}

echo "shadowdiff capture vs nginx mirror — loopback, $(nproc) cores, wrk -t$THREADS -c$CONNS -d$DURATION"
read -r D_RPS D_P50 D_P99 < <(run_wrk "http://127.0.0.1:$P_BASE/users")
read -r N_RPS N_P50 N_P99 < <(run_wrk "http://127.0.0.1:$P_MIRROR/users")
if [[ -n "${THREAD_CPU:-}" ]]; then
    (sleep 3; top -H -b -n 1 -d 2 -p "$SD_PID" | sed -n '7,14p' >&2; for t in /proc/$SD_PID/task/*; do echo "$(basename $t) $(cat $t/comm) $(awk '{print $14+$15}' $t/stat)" >&2; done) &
fi
read -r S_RPS S_P50 S_P99 < <(run_wrk "http://127.0.0.1:$P_SD/users")

printf '\n%-34s %12s %10s %10s\n' "saturation" "req/s" "p50 ms" "p99 ms"
printf '%-34s %12s %10s %10s\n' "direct to baseline" "$D_RPS" "$D_P50" "$D_P99"
printf '%-34s %12s %10s %10s\n' "nginx mirror" "$N_RPS" "$N_P50" "$N_P99"
printf '%-34s %12s %10s %10s\n' "shadowdiff capture (recording)" "$S_RPS" "$S_P50" "$S_P99"

# Half of nginx-mirror's saturation rate, paced: each connection waits CONNS/RATE s between
# requests (wrk's delay() hook), so the offered rate stays near RATE whatever the latency.
RATE=$(( N_RPS / 2 ))
PACED_CONNS=16
DELAY_MS=$(python3 -c "print(max(1, round($PACED_CONNS * 1000 / max($RATE, 1))))")
cat >"$WORK/pace.lua" <<EOF
function delay() return $DELAY_MS end
EOF
read -r DP_RPS DP_P50 DP_P99 < <(CONNS=$PACED_CONNS run_wrk "http://127.0.0.1:$P_BASE/users" -s "$WORK/pace.lua")
read -r SP_RPS SP_P50 SP_P99 < <(CONNS=$PACED_CONNS run_wrk "http://127.0.0.1:$P_SD/users" -s "$WORK/pace.lua")
printf '\n%-34s %12s %10s %10s\n' "paced at ~$RATE req/s (offered)" "req/s" "p50 ms" "p99 ms"
printf '%-34s %12s %10s %10s\n' "direct to baseline" "$DP_RPS" "$DP_P50" "$DP_P99"
printf '%-34s %12s %10s %10s\n' "shadowdiff capture (recording)" "$SP_RPS" "$SP_P50" "$SP_P99"

METRICS=$(curl -fsS "http://127.0.0.1:$P_ADMIN/metrics")
metric() { awk -v m="$1" '$1 == m { print $2 }' <<<"$METRICS"; }
SEEN=$(metric shadowdiff_requests_total)
RECORDED=$(metric shadowdiff_pairs_recorded_total)
DROPPED=$(grep '^shadowdiff_pairs_dropped_total' <<<"$METRICS" | awk '{ s += $2; if ($2 > 0) { sub(/.*reason="/, "", $1); sub(/".*/, "", $1); r = r " " $1 "=" $2 } } END { print s + 0 (r ? " by reason:" r : "") }')
RSS_KB=$(awk '/VmHWM/ { print $2 }' "/proc/$SD_PID/status")
kill -TERM "$SD_PID"; wait "$SD_PID" 2>/dev/null || true
ROWS=$("$SHADOWDIFF" inspect --json "$WORK/pairs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])')

printf '\n%-34s %s\n' "shadowdiff requests seen" "$SEEN"
printf '%-34s %s (dropped %s; rows on disk after SIGTERM %s)\n' "shadowdiff pairs recorded" "$RECORDED" "$DROPPED" "$ROWS"
printf '%-34s %.1f MB\n' "shadowdiff peak RSS" "$(python3 -c "print($RSS_KB / 1024)")"
python3 - "$S_RPS" "$N_RPS" "$D_RPS" "$SP_P50" "$DP_P50" <<'EOF'
import sys
s, n, d, sp, dp = map(float, sys.argv[1:])
print(f"\n{'throughput shadowdiff / nginx mirror':34} {s / n:.2f}   (target >= 1.0)")
print(f"{'throughput shadowdiff / direct':34} {s / d:.2f}")
print(f"{'added median latency at half rate':34} {sp - dp:.3f} ms   (target <= 1 ms)")
EOF
