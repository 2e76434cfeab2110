#!/usr/bin/env bash
# A soak of shadowdiff capture (issue 17 item 4): a steady paced load for DURATION, pair files
# rotated every ROTATE, and every INTERVAL a row of figures — capture's RSS and open file
# descriptors, its open client connections, requests served by the load tool vs seen / recorded /
# writing / dropped / skipped by capture, and the p50/p99 latency through capture next to the
# same load sent straight to the baseline (the p99 capture adds). With SERVE=1 (default) a
# `shadowdiff serve` runs on the pairs as they are written, refreshed every INTERVAL, and its RSS,
# descriptors and the verdict it answers are sampled too.
#
# At the end: capture is stopped with SIGTERM, every pair file is read back (shadowdiff inspect),
# and the script checks, printing each figure:
#   - every request wrk sent was answered 200, and capture saw those requests (and at most the
#     ones still in flight when a round ended, which wrk does not count);
#   - seen = recorded + dropped + skipped, and recorded = the rows in the files, every file whole;
#   - capture's RSS is flat: after the first WARMUP samples, the largest sample is within 20 %
#     (plus 8 MiB) of the median, and the last half's median within 10 % (plus 4 MiB) of the
#     first half's;
#   - capture's descriptors do not grow: the last half's largest sample is at most 2 above the
#     first half's;
#   - no client connection is left open between rounds.
# Exits 1 when a check fails.
#
# Load: wrk (paced by its delay() hook) at RATE req/s over CONNS connections through capture, and
# the same to the baseline directly; upstreams are nginx serving one JSON document. Everything
# runs under `nice` (the machine is shared).
#
# Environment: DURATION (default 60m), INTERVAL (1m), ROTATE (1m), RATE (200), CONNS (8),
# WARMUP (2 samples), SERVE (1), SHADOWDIFF (a prebuilt binary; default: build
# target/release/shadowdiff), KEEP (1: keep the work directory).
set -euo pipefail

DURATION=${DURATION:-60m}
INTERVAL=${INTERVAL:-1m}
ROTATE=${ROTATE:-1m}
RATE=${RATE:-200}
CONNS=${CONNS:-8}
WARMUP=${WARMUP:-2}
SERVE=${SERVE:-1}
KEEP=${KEEP:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

seconds() { python3 -c "
import re, sys
t, s = sys.argv[1], 0
for n, u in re.findall(r'(\d+(?:\.\d+)?)(h|m|s)', t):
    s += float(n) * {'h': 3600, 'm': 60, 's': 1}[u]
print(int(s) if re.fullmatch(r'((\d+(\.\d+)?)(h|m|s))+', t) else sys.exit(f'{t}: a duration such as 60m, 90s or 1h30m'))" "$1"; }
TOTAL_S=$(seconds "$DURATION"); INTERVAL_S=$(seconds "$INTERVAL")
ROUNDS=$(( (TOTAL_S + INTERVAL_S - 1) / INTERVAL_S ))

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

WORK=$(mktemp -d /tmp/shadowdiff-soak.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ $KEEP == 1 ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
P_BASE=$(free_port); P_CANARY=$(free_port); P_SD=$(free_port); P_ADMIN=$(free_port); P_SERVE=$(free_port)
mkdir -p "$WORK/www" "$WORK/up" "$WORK/pairs" "$WORK/serve"
python3 - "$WORK/www/users.json" <<'EOF'
import json, sys
doc = {"id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "active": True,
       "roles": ["admin", "editor"], "balance": 1234.56,
       "orders": [{"id": i, "sku": f"SKU-{i:05d}", "qty": i % 5 + 1, "price": 9.99 + i} for i in range(8)]}
open(sys.argv[1], "w").write(json.dumps(doc))
EOF
cat >"$WORK/up/nginx.conf" <<EOF
worker_processes 1;
error_log $WORK/up/error.log warn;
pid $WORK/up/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/up/body; proxy_temp_path $WORK/up/proxy;
    fastcgi_temp_path $WORK/up/fcgi; uwsgi_temp_path $WORK/up/uwsgi; scgi_temp_path $WORK/up/scgi;
    server { listen 127.0.0.1:$P_BASE;   location / { root $WORK/www; default_type application/json; try_files /users.json =404; } }
    server { listen 127.0.0.1:$P_CANARY; location / { root $WORK/www; default_type application/json; try_files /users.json =404; } }
}
EOF
nice "$NGINX" -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)
nice "$SHADOWDIFF" capture --listen "127.0.0.1:$P_SD" --admin-listen "127.0.0.1:$P_ADMIN" \
    --baseline "http://127.0.0.1:$P_BASE" --canary "http://127.0.0.1:$P_CANARY" \
    --out "$WORK/pairs" --agent soak --rotate-age "$ROTATE" --log-level warn \
    >"$WORK/capture.out" 2>"$WORK/capture.log" & SD_PID=$!
PIDS+=($SD_PID)

wait_up() {
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing answers at $1; logs:" >&2
    cat "$WORK"/up/error.log "$WORK"/capture.log "$WORK"/serve.log >&2 2>/dev/null || true
    exit 1
}
wait_up "http://127.0.0.1:$P_BASE/users"; wait_up "http://127.0.0.1:$P_ADMIN/healthz"
# The one request the script itself sends through capture, so that it has a first file for serve.
curl -fsS -o /dev/null "http://127.0.0.1:$P_SD/users"
OWN_REQUESTS=1

if [[ $SERVE == 1 ]]; then
    nice "$SHADOWDIFF" serve "$WORK/pairs" --listen "127.0.0.1:$P_SERVE" --refresh "$INTERVAL" \
        --work-dir "$WORK/serve" --log-level warn >"$WORK/serve.out" 2>"$WORK/serve.log" & SERVE_PID=$!
    PIDS+=($SERVE_PID)
    wait_up "http://127.0.0.1:$P_SERVE/healthz"
fi

# Paced: each connection waits CONNS/RATE s between requests, so the offered rate stays near
# RATE whatever the latency.
DELAY_MS=$(python3 -c "print(max(1, round($CONNS * 1000 / max($RATE, 1))))")
cat >"$WORK/pace.lua" <<EOF
function delay() return $DELAY_MS end
EOF
# wrk's summary → "requests p50_ms p99_ms errors" (errors: non-2xx answers and socket errors).
run_wrk() {
    nice wrk -t1 -c"$CONNS" -d"${INTERVAL_S}s" --timeout 10s --latency -s "$WORK/pace.lua" "$1" | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        / requests in / { n = $1 }
        /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
        /Non-2xx/ { e += $NF } /Socket errors/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
        END { printf "%d %.3f %.3f %d\n", n, p50, p99, e }'
}
metrics() { curl -fsS "http://127.0.0.1:$P_ADMIN/metrics"; }
metric() { awk -v m="$1" '$1 == m { print $2 }' <<<"$2"; }
summed() { awk -v m="$1" 'index($1, m "{") == 1 { s += $2 } END { print s + 0 }' <<<"$2"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

echo "shadowdiff soak — $(nproc) cores, $DURATION at $RATE req/s over $CONNS connections (wrk, paced), rotation every $ROTATE, a row every $INTERVAL; serve: $([[ $SERVE == 1 ]] && echo on || echo off)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%6s %9s %4s %5s %9s %9s %9s %7s %7s %5s %8s %8s %8s %8s' t rss_MiB fds conns served seen recorded writing dropped files p50_ms p99_ms d_p99_ms added_ms
[[ $SERVE == 1 ]] && printf ' %13s %9s' serve_rss_MiB serve_fds
[[ $SERVE == 1 ]] && printf ' %s' verdict
echo
SERVED=0; ERRORS=0
: >"$WORK/samples"
for i in $(seq 1 "$ROUNDS"); do
    run_wrk "http://127.0.0.1:$P_SD/users" >"$WORK/sd.wrk" &
    W1=$!
    run_wrk "http://127.0.0.1:$P_BASE/users" >"$WORK/direct.wrk" &
    W2=$!
    wait "$W1" "$W2"
    read -r N P50 P99 E <"$WORK/sd.wrk"
    read -r _ _ D_P99 _ <"$WORK/direct.wrk"
    SERVED=$((SERVED + N)); ERRORS=$((ERRORS + E))
    M=$(metrics)
    RSS=$(rss_kib "$SD_PID"); FDS=$(fds "$SD_PID")
    CONNS_OPEN=$(metric shadowdiff_client_connections_open "$M")
    # wrk has exited, but capture may not have seen its connections close yet (the 60-minute run
    # of 30 November read 8 once, under a build, and 0 in the next sample): a left-open
    # connection is one still open 2 s later.
    for _ in $(seq 1 20); do
        [[ $CONNS_OPEN == 0 ]] && break
        sleep 0.1
        CONNS_OPEN=$(metric shadowdiff_client_connections_open "$(metrics)")
    done
    SEEN=$(metric shadowdiff_requests_total "$M"); RECORDED=$(metric shadowdiff_pairs_recorded_total "$M")
    WRITING=$(metric shadowdiff_pairs_writing "$M"); DROPPED=$(summed shadowdiff_pairs_dropped_total "$M")
    SKIPPED=$(summed shadowdiff_requests_skipped_total "$M"); FILES=$(metric shadowdiff_files_written_total "$M")
    ADDED=$(python3 -c "print(f'{$P99 - $D_P99:.3f}')")
    printf '%6s %9.1f %4d %5d %9d %9d %9d %7d %7d %5d %8.3f %8.3f %8.3f %8s' "$(printf '%d:%02d' $((i * INTERVAL_S / 60)) $((i * INTERVAL_S % 60)))" \
        "$(python3 -c "print($RSS / 1024)")" "$FDS" "$CONNS_OPEN" "$((SERVED + OWN_REQUESTS))" "$SEEN" "$RECORDED" \
        "$WRITING" "$DROPPED" "$FILES" "$P50" "$P99" "$D_P99" "$ADDED"
    S_RSS=0; S_FDS=0; VERDICT=-
    if [[ $SERVE == 1 ]]; then
        S_RSS=$(rss_kib "$SERVE_PID"); S_FDS=$(fds "$SERVE_PID")
        VERDICT=$(curl -fsS -m 60 "http://127.0.0.1:$P_SERVE/v1/verdict" 2>/dev/null \
            | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("verdict") or d.get("outcome") or "?")' 2>/dev/null || echo error)
        printf ' %13.1f %9d %s' "$(python3 -c "print($S_RSS / 1024)")" "$S_FDS" "$VERDICT"
    fi
    echo
    echo "$i $RSS $FDS $CONNS_OPEN $P99 $D_P99 $S_RSS $S_FDS" >>"$WORK/samples"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

FINAL=$(metrics)
FINAL_SEEN=$(metric shadowdiff_requests_total "$FINAL")
kill -TERM "$SD_PID"
STATUS=0; wait "$SD_PID" || STATUS=$?
"$SHADOWDIFF" inspect --json "$WORK/pairs" >"$WORK/inspect.json"
grep -h '^capture:' "$WORK/capture.log" || true

python3 - "$WORK/samples" "$WORK/inspect.json" "$WARMUP" "$((SERVED + OWN_REQUESTS))" "$ERRORS" "$FINAL_SEEN" "$STATUS" "$WORK/pairs" "$CONNS" <<'EOF'
import json, pathlib, statistics, sys
samples_path, inspect_path, warmup, served, errors, seen_live, status, pairs, conns_per_round = sys.argv[1:]
conns_per_round = int(conns_per_round)
warmup, served, errors, seen_live, status = int(warmup), int(served), int(errors), int(seen_live), int(status)
rows = [list(map(float, l.split())) for l in open(samples_path)]
ins = json.load(open(inspect_path))
c = ins["counters"]
files = list(pathlib.Path(pairs).rglob("*"))
parquet = [f for f in files if f.is_file() and f.suffix == ".parquet"]
others = [f for f in files if f.is_file() and f.suffix != ".parquet"]
failures = []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)

rss = [r[1] / 1024 for r in rows]
fds = [int(r[2]) for r in rows]
conns = [int(r[3]) for r in rows]
added = [r[4] - r[5] for r in rows]
steady = rss[warmup:] if len(rss) > warmup + 1 else rss
print(f"\ncapture RSS MiB over {len(rss)} samples: min {min(rss):.1f}, median {statistics.median(rss):.1f}, max {max(rss):.1f}"
      f" (after {warmup} warm-up samples: min {min(steady):.1f}, median {statistics.median(steady):.1f}, max {max(steady):.1f})")
half = len(steady) // 2
first, last = (steady[:half], steady[half:]) if half else (steady, steady)
xs = list(range(len(steady)))
mx, my = statistics.mean(xs), statistics.mean(steady)
slope = sum((x - mx) * (y - my) for x, y in zip(xs, steady)) / max(sum((x - mx) ** 2 for x in xs), 1)
print(f"capture RSS median, first half {statistics.median(first):.1f} MiB, last half {statistics.median(last):.1f} MiB;"
      f" least-squares slope {slope:+.3f} MiB per sample")
print(f"capture descriptors: min {min(fds)}, median {statistics.median(fds)}, max {max(fds)}")
print(f"open client connections between rounds: {sorted(set(conns))}")
print(f"p99 added by capture per interval (ms): min {min(added):.3f}, median {statistics.median(added):.3f}, max {max(added):.3f}")
if rows[0][6] > 0:
    srss = [r[6] / 1024 for r in rows]; sfds = [int(r[7]) for r in rows]
    print(f"serve RSS MiB: min {min(srss):.1f}, median {statistics.median(srss):.1f}, max {max(srss):.1f}; descriptors min {min(sfds)}, max {max(sfds)}")
print(f"served by wrk {served} (errors {errors}); capture saw {seen_live}; files {len(parquet)}, rows {ins['rows']}")
print(f"last file's counters: seen {c['seen']}, recorded {c['recorded']}, dropped {c['dropped']}, skipped {c['skipped']}")

check(status == 0, f"capture exited 0 on SIGTERM (status {status})")
# wrk counts the requests it had answered; one still in flight when a round ends (at most one
# per connection per round) or past wrk's timeout (an error) was seen by capture all the same.
slack = conns_per_round * len(rows) + errors
check(errors <= len(rows), f"requests through capture were answered 200 ({errors} errors or wrk timeouts)")
check(served <= seen_live <= served + slack,
      f"capture saw every request answered, and at most those in flight at a round's end or timed out beside ({seen_live} seen, {served} answered)")
check(c["seen"] == seen_live, f"the files' counters saw what /metrics did ({c['seen']} of {seen_live})")
check(c["seen"] == c["recorded"] + c["dropped"] + c["skipped"], "seen = recorded + dropped + skipped")
check(c["recorded"] == ins["rows"], f"recorded = rows in the files ({c['recorded']} vs {ins['rows']})")
check(not others, f"no temporaries left ({len(others)})")
check(max(steady) <= statistics.median(steady) * 1.2 + 8, "RSS flat: largest sample within 20 % + 8 MiB of the median")
check(statistics.median(last) <= statistics.median(first) * 1.1 + 4, "RSS not growing: last half's median within 10 % + 4 MiB of the first half's")
fd_first, fd_last = (fds[:len(fds) // 2], fds[len(fds) // 2:]) if len(fds) > 1 else (fds, fds)
check(max(fd_last) <= max(fd_first) + 2, f"descriptors not growing: last half's largest {max(fd_last)}, first half's {max(fd_first)}")
check(max(conns) == 0, "no client connection left open between rounds")
sys.exit(1 if failures else 0)
EOF
