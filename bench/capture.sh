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
# Then, at -c$CPU_CONNS (32), the CPU time per request: the capture process's user+sys (all
# threads, /proc) over the requests wrk completed, against nginx mirror's workers' over theirs
# (the static upstreams counted for neither). Steadier than req/s on a shared machine.
#
# Prints the figures and the ratios. Targets (issue 16): throughput ratio shadowdiff/nginx >= 1.5
# while recording every pair; added median latency <= 0.3 ms (p99 <= 1 ms) at half of nginx's
# saturation rate; CPU per captured request <= 45 µs.
#
# Measured (issue 16, release build, DURATION=8s, three runs, load average 7–14 from other
# builds; min / median / max): saturation nginx mirror 8.4k / 11.8k / 12.3k req/s, capture
# 10.8k / 10.9k / 13.7k, same-run ratio 0.89 / 1.16 / 1.28; CPU per request capture 56.7 / 57.4 /
# 60.0 µs, nginx mirror 56.8 / 61.6 / 61.7 µs, same-run ratio 0.93 / 0.97 / 1.00; added median
# latency at half rate 0.34 / 0.46 / 0.46 ms (the paced rate was not reached: the cores were
# busy); peak RSS 117–126 MB. perf (dwarf call graphs, 6 s at saturation): 86 % of capture's
# samples on the tokio workers, 14 % on the writer thread (Arrow batches, Parquet, zstd);
# syscalls (writev/read/epoll on loopback sockets, the kernel's TCP work counted in them) 52 %,
# hyper's HTTP/1 parse/encode and dispatch most of the rest, mimalloc ~8 %, copies (memmove) 5.6 %,
# our proxy code (forward_headers, record_headers, mirror, redact) under 10 %.
#
# GZIP=1 measures instead what compressing upstreams cost capture: a second pair of upstreams,
# the same nginx with `gzip on` (gzip_types application/json, gzip_min_length 64, level 1), and a
# second capture in front of them. Every client sends `Accept-Encoding: gzip` as browsers do, so
# only the upstreams' setting differs. RUNS rounds (default 3), each at saturation: direct to the
# plain baseline, direct to the gzip baseline, capture over plain upstreams, capture over gzip
# upstreams. Prints min / median / max req/s of each and the ratio gzip/plain for capture (target:
# >= 0.90, throughput drops by no more than 10 %) and for direct calls (what nginx's own gzip costs
# on the same cores). GZIP_STATIC=1 has the gzip upstreams send a precompressed copy of the file
# (`gzip_static on`) instead, so that compressing costs the shared cores nothing and what remains
# is capture's own cost of relaying and recording compressed responses.
#
# Environment: DURATION (per run, default 10s), CONNS (default 64), THREADS (wrk threads, 2),
# SHADOWDIFF (a prebuilt binary; default: build target/release/shadowdiff), GZIP, RUNS.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
GZIP=${GZIP:-0}
GZIP_STATIC=${GZIP_STATIC:-0}
RUNS=${RUNS:-3}
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
P_BASE_GZ=$(free_port); P_CANARY_GZ=$(free_port); P_SD_GZ=$(free_port); P_ADMIN_GZ=$(free_port)

mkdir -p "$WORK/www" "$WORK/up" "$WORK/mirror" "$WORK/pairs" "$WORK/pairs-gzip"
python3 - "$WORK/www/users.json" <<'EOF'
import json, sys
doc = {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "active": True,
       "roles": ["admin", "editor"], "balance": 1234.56,
       "orders": [{"id": i, "sku": f"SKU-{i:05d}", "qty": i % 5 + 1, "price": 9.99 + i} for i in range(8)]}
open(sys.argv[1], "w").write(json.dumps(doc))
EOF
env -u GZIP gzip -1 -k -n "$WORK/www/users.json"   # for GZIP_STATIC=1 (gzip reads options from $GZIP)
if [[ $GZIP_STATIC == 1 ]]; then GZIP_DIRECTIVES="gzip_static on;"; else
    GZIP_DIRECTIVES="gzip on; gzip_types application/json; gzip_min_length 64; gzip_comp_level 1;"; fi

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
    # The same two, compressing as a typical API does (GZIP=1).
    server {
        listen 127.0.0.1:$P_BASE_GZ; listen 127.0.0.1:$P_CANARY_GZ;
        $GZIP_DIRECTIVES
        location / { root $WORK/www; default_type application/json; try_files /users.json =404; }
    }
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
if [[ $GZIP == 1 ]]; then
    "$SHADOWDIFF" capture --listen "127.0.0.1:$P_SD_GZ" --admin-listen "127.0.0.1:$P_ADMIN_GZ" \
        --baseline "http://127.0.0.1:$P_BASE_GZ" --canary "http://127.0.0.1:$P_CANARY_GZ" \
        --out "$WORK/pairs-gzip" --agent bench-gzip --log-level error >"$WORK/sd-gzip.out" & SD_GZ_PID=$!
    PIDS+=($SD_GZ_PID)
fi

wait_up() {
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$1/users" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1; logs:" >&2
    cat "$WORK"/up/error.log "$WORK"/mirror/error.log "$WORK"/sd.out "$WORK"/sd-gzip.out >&2 2>/dev/null || true
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

if [[ $GZIP == 1 ]]; then
    wait_up "$P_BASE_GZ"; wait_up "$P_SD_GZ"
    AE=(-H "Accept-Encoding: gzip")
    # Each path must really answer as labelled, through capture too.
    coding() { curl -fsS -o /dev/null -D - -H 'Accept-Encoding: gzip' "http://127.0.0.1:$1/users" | tr -d '\r' | awk -F': ' 'tolower($1) == "content-encoding" { print $2 }'; }
    [[ -z $(coding "$P_SD") && $(coding "$P_SD_GZ") == gzip && $(coding "$P_BASE_GZ") == gzip ]] || {
        echo "the gzip upstreams do not answer gzip (or the plain ones do)" >&2; exit 1; }
    echo "capture over plain vs gzip upstreams ($GZIP_DIRECTIVES) — loopback, $(nproc) cores, wrk -t$THREADS -c$CONNS -d$DURATION -H 'Accept-Encoding: gzip', $RUNS rounds"
    echo "body: $(wc -c <"$WORK/www/users.json") bytes of JSON, $(curl -fsS -H 'Accept-Encoding: gzip' "http://127.0.0.1:$P_BASE_GZ/users" | wc -c) gzip-encoded"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    : >"$WORK/gzip.runs"
    for i in $(seq 1 "$RUNS"); do
        for path in "direct-plain $P_BASE" "direct-gzip $P_BASE_GZ" "capture-plain $P_SD" "capture-gzip $P_SD_GZ"; do
            read -r name port <<<"$path"
            read -r rps _ _ < <(run_wrk "http://127.0.0.1:$port/users" "${AE[@]}")
            echo "$name $rps" >>"$WORK/gzip.runs"
            echo "round $i: $name $rps req/s"
        done
    done
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    METRICS=$(curl -fsS "http://127.0.0.1:$P_ADMIN/metrics"; curl -fsS "http://127.0.0.1:$P_ADMIN_GZ/metrics")
    awk '$1 == "shadowdiff_pairs_recorded_total" { r += $2 } /^shadowdiff_pairs_dropped_total/ { d += $2 } END { printf "capture pairs recorded %d, dropped %d (both instances)\n", r, d }' <<<"$METRICS"
    python3 - "$WORK/gzip.runs" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, rps = line.split()
    runs.setdefault(name, []).append(float(rps))
print(f"\n{'req/s':16} {'min':>9} {'median':>9} {'max':>9}")
for name, r in runs.items():
    print(f"{name:16} {min(r):9.0f} {statistics.median(r):9.0f} {max(r):9.0f}")
def ratio(a, b):
    m = statistics.median(runs[a]) / statistics.median(runs[b])
    return f"medians {m:.3f} (min {min(runs[a]) / min(runs[b]):.3f}, max {max(runs[a]) / max(runs[b]):.3f})"
print(f"\ncapture gzip / plain upstreams   {ratio('capture-gzip', 'capture-plain')}   (target >= 0.90)")
print(f"direct  gzip / plain upstreams   {ratio('direct-gzip', 'direct-plain')}   (what the upstream's gzip costs it)")
EOF
    exit 0
fi

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

# CPU per request at -c$CPU_CONNS, unsaturated enough that the cores are not the limit: the
# capture process's user+sys time (all its threads, from /proc) over the requests wrk completed,
# against nginx mirror's workers' time over theirs (the two static upstreams are not counted for
# either). On a shared machine this is steadier than req/s: other work slows both, it does not
# add to their CPU time.
cpu_seconds() { # pids… → user+sys seconds so far
    local ticks=0 p
    for p in "$@"; do ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$ticks $(getconf CLK_TCK)" | awk '{print $1 / $2}'
}
cpu_per_request() { # url pids… → "µs/request requests"
    local url=$1; shift
    local before n
    before=$(cpu_seconds "$@")
    n=$(wrk -t"$THREADS" -c"$CPU_CONNS" -d"$DURATION" "$url" | awk '/requests in/ { print $1 }')
    echo "$(cpu_seconds "$@") $before $n" | awk '{ printf "%.1f %d\n", ($1 - $2) / $3 * 1e6, $3 }'
}
CPU_CONNS=${CPU_CONNS:-32}
read -r N_CPU N_CPU_N < <(cpu_per_request "http://127.0.0.1:$P_MIRROR/users" $(pgrep -P "$(cat "$WORK/mirror/nginx.pid")"))
read -r S_CPU S_CPU_N < <(cpu_per_request "http://127.0.0.1:$P_SD/users" "$SD_PID")
printf '\n%-34s %12s %10s\n' "CPU per request, wrk -c$CPU_CONNS" "µs" "requests"
printf '%-34s %12s %10s\n' "nginx mirror (its workers)" "$N_CPU" "$N_CPU_N"
printf '%-34s %12s %10s\n' "shadowdiff capture (recording)" "$S_CPU" "$S_CPU_N"

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
python3 - "$S_RPS" "$N_RPS" "$D_RPS" "$SP_P50" "$DP_P50" "$S_CPU" "$N_CPU" "$SP_P99" "$DP_P99" <<'EOF'
import sys
s, n, d, sp, dp, s_cpu, n_cpu, sp99, dp99 = map(float, sys.argv[1:])
print(f"\n{'throughput shadowdiff / nginx mirror':34} {s / n:.2f}   (target >= 1.5)")
print(f"{'throughput shadowdiff / direct':34} {s / d:.2f}")
print(f"{'added median latency at half rate':34} {sp - dp:.3f} ms   (target <= 0.3 ms)")
print(f"{'added p99 latency at half rate':34} {sp99 - dp99:.3f} ms   (target <= 1 ms)")
print(f"{'CPU per request shadowdiff / nginx':34} {s_cpu / n_cpu:.2f}   ({s_cpu:.1f} µs, target <= 45 µs)")
EOF
