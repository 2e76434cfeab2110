#!/usr/bin/env bash
# A well-behaved client's latency through shadowdiff capture, unloaded and while abusive clients
# run against the same listener (issue 17 item 3: "latency stays within 2 ms of an unloaded
# agent's").
#
# The good client is wrk, paced (its delay() hook) at RATE req/s over CONNS connections, for
# ROUND_SECONDS per round. The abusive clients are bench/abuse.py on raw sockets:
#   idle          10,000 connections that never send a byte (capture runs with
#                 --max-connections 12000 so that the good client still gets in)
#   slowloris     200 connections sending a request's headers a byte every 100 ms
#   rapid-reset   HTTP/2 connections sending HEADERS + RST_STREAM pairs as fast as they can
#   continuation  HTTP/2 connections sending one header block that never ends
#   ping          HTTP/2 connections sending PINGs without reading the answers
# Rounds are interleaved (unloaded, then each abuse, ROUNDS times) so that drift in the machine's
# load falls on every condition alike. The abusers run on the same cores as capture and wrk: what
# is measured includes the CPU they take, as an attacker on the same host would.
#
# Prints, per condition, capture's CPU time during each round, the good client's p50 and p99 (min / median / max over the rounds), the
# median's difference from the unloaded median and the ratio, and whether the difference is within
# 2 ms; then capture's connection counters. Exits 0 whatever the figures (a benchmark, not a test).
#
# The abusers connect from ABUSE_FROM (127.0.0.2; Linux routes all of 127.0.0.0/8 to loopback),
# the good client from 127.0.0.1, so that capture's abuse penalty (--abuse-penalty: an address
# whose HTTP/2 connection was cut for abuse waits before its next one is read) falls on the abuser
# as it would on a real network. PENALTY sets --abuse-penalty (default: capture's, 1s; 0s turns
# it off, which is what the rounds measured before the penalty existed).
#
# Environment: ROUNDS (3), ROUND_SECONDS (10), RATE (200), CONNS (4), MODES (all five), ELSEWHERE
# (1: the abusers hit a second agent — a control for the shared cores), ABUSE_FROM (127.0.0.2),
# PENALTY, SPLIT_CPUS (1: the abuser on the last CPU, everything else — nginx, capture, wrk — on
# the others, so that the abuser's own CPU and kernel work fall where a remote attacker's would,
# not on the good client's cores), SHADOWDIFF (a prebuilt binary; default: build
# target/release/shadowdiff).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
# Not SECONDS: bash sets that itself (seconds since the shell started, 0 here).
SECONDS_PER_ROUND=${ROUND_SECONDS:-10}
RATE=${RATE:-200}
CONNS=${CONNS:-4}
MODES=${MODES:-idle slowloris rapid-reset continuation ping}
export ABUSE_FROM=${ABUSE_FROM:-127.0.0.2}
PENALTY_ARGS=()
GOOD=()
BAD=()
if [[ ${SPLIT_CPUS:-0} == 1 ]]; then
    LAST=$(($(nproc) - 1))
    GOOD=(taskset -c "0-$((LAST > 0 ? LAST - 1 : 0))")
    BAD=(taskset -c "$LAST")
fi
if [[ -n ${PENALTY:-} ]]; then PENALTY_ARGS=(--abuse-penalty "$PENALTY"); fi
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
# 10,000 idle connections need as many descriptors in capture and in the abuser.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d /tmp/shadowdiff-abuse.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
P_BASE=$(free_port); P_CANARY=$(free_port); P_SD=$(free_port); P_ADMIN=$(free_port)
mkdir -p "$WORK/www" "$WORK/up" "$WORK/pairs"
echo '{"id": 42, "name": "Ada Lovelace", "roles": ["admin", "editor"], "balance": 1234.56}' >"$WORK/www/users.json"
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
"${GOOD[@]}" "$NGINX" -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)
"${GOOD[@]}" "$SHADOWDIFF" capture --listen "127.0.0.1:$P_SD" --admin-listen "127.0.0.1:$P_ADMIN" \
    --baseline "http://127.0.0.1:$P_BASE" --canary "http://127.0.0.1:$P_CANARY" \
    --out "$WORK/pairs" --agent abuse --log-level warn --max-connections 12000 "${PENALTY_ARGS[@]}" \
    >"$WORK/capture.out" 2>"$WORK/capture.log" & SD_PID=$!
PIDS+=($SD_PID)
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$P_SD/users" 2>/dev/null && break; sleep 0.1; done
# ELSEWHERE=1, a control: the abusers hit a second, separate capture agent, so the good client's
# agent handles none of their traffic and what its latency loses is the abusers' (and the other
# agent's) CPU on the shared cores alone.
P_TARGET=$P_SD
if [[ ${ELSEWHERE:-0} == 1 ]]; then
    P_OTHER=$(free_port); P_OTHER_ADMIN=$(free_port)
    "${GOOD[@]}" "$SHADOWDIFF" capture --listen "127.0.0.1:$P_OTHER" --admin-listen "127.0.0.1:$P_OTHER_ADMIN" \
        --baseline "http://127.0.0.1:$P_BASE" --canary "http://127.0.0.1:$P_CANARY" \
        --out "$WORK/pairs-other" --agent abuse-other --log-level warn --max-connections 12000 "${PENALTY_ARGS[@]}" \
        >"$WORK/other.out" 2>"$WORK/other.log" & PIDS+=($!)
    for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$P_OTHER/users" 2>/dev/null && break; sleep 0.1; done
    P_TARGET=$P_OTHER
fi

DELAY_MS=$(python3 -c "print(max(1, round($CONNS * 1000 / max($RATE, 1))))")
echo "function delay() return $DELAY_MS end" >"$WORK/pace.lua"
# capture's user + system CPU so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SD_PID/stat"; }
# → "p50_ms p99_ms requests errors"
good_client() {
    "${GOOD[@]}" wrk -t1 -c"$CONNS" -d"${SECONDS_PER_ROUND}s" --latency -s "$WORK/pace.lua" "http://127.0.0.1:$P_SD/users" | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        / requests in / { n = $1 }
        /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
        /Non-2xx/ { e += $NF } /Socket errors/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
        END { printf "%.3f %.3f %d %d\n", p50, p99, n, e }'
}

echo "good client's latency through capture, unloaded and under abuse — $(nproc) cores, wrk -t1 -c$CONNS paced at $RATE req/s, ${SECONDS_PER_ROUND}s rounds, $ROUNDS rounds each; abusers from $ABUSE_FROM${BAD:+ on CPU ${BAD[2]}}, --abuse-penalty ${PENALTY:-1s (default)}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$WORK/runs"
for r in $(seq 1 "$ROUNDS"); do
    for mode in none $MODES; do
        ABUSER=""
        if [[ $mode != none ]]; then
            "${BAD[@]}" python3 "$ROOT/bench/abuse.py" "$mode" "127.0.0.1:$P_TARGET" $((SECONDS_PER_ROUND + 30)) >"$WORK/abuse.out" 2>&1 &
            ABUSER=$!
            PIDS+=($ABUSER)
            for _ in $(seq 1 300); do grep -q ready "$WORK/abuse.out" && break; sleep 0.1; done
            sleep 1
        fi
        CPU0=$(cpu_ticks)
        read -r P50 P99 N E < <(good_client)
        CPU_MS=$(( ($(cpu_ticks) - CPU0) * 1000 / $(getconf CLK_TCK) ))
        OPEN=$(curl -fsS "http://127.0.0.1:$P_ADMIN/metrics" | awk '$1 == "shadowdiff_client_connections_open" { print $2 }')
        WHAT=""
        if [[ -n $ABUSER ]]; then
            kill -INT "$ABUSER" 2>/dev/null || true; wait "$ABUSER" 2>/dev/null || true
            WHAT=" — abuser: $(tail -1 "$WORK/abuse.out")"
        fi
        echo "$mode $P50 $P99 $N $E" >>"$WORK/runs"
        printf 'round %d %-13s p50 %7.3f ms  p99 %7.3f ms  %6d requests  %d errors  (capture: %s connections open, %d ms CPU)%s\n' "$r" "$mode" "$P50" "$P99" "$N" "$E" "$OPEN" "$CPU_MS" "$WHAT"
        sleep 2
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
curl -fsS "http://127.0.0.1:$P_ADMIN/metrics" | grep -E '^shadowdiff_client_connections' || true
echo "capture RSS peak: $(awk '/VmHWM/ { print $2 / 1024 " MiB" }' "/proc/$SD_PID/status")"

python3 - "$WORK/runs" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, p50, p99, n, e = line.split()
    runs.setdefault(mode, []).append((float(p50), float(p99), int(n), int(e)))
base50 = statistics.median(r[0] for r in runs["none"])
base99 = statistics.median(r[1] for r in runs["none"])
print(f"\n{'condition':13} {'p50 ms min/median/max':>26} {'p99 ms min/median/max':>26} {'Δp50':>8} {'Δp99':>8} {'p99 ratio':>9} {'errors':>6}  within 2 ms")
for mode, rs in runs.items():
    p50 = [r[0] for r in rs]; p99 = [r[1] for r in rs]
    d50 = statistics.median(p50) - base50; d99 = statistics.median(p99) - base99
    ok = "yes" if mode == "none" or (d50 <= 2 and d99 <= 2) else ("p50 only" if d50 <= 2 else "no")
    print(f"{mode:13} {min(p50):8.3f}/{statistics.median(p50):7.3f}/{max(p50):8.3f} {min(p99):8.3f}/{statistics.median(p99):7.3f}/{max(p99):8.3f}"
          f" {d50:+8.3f} {d99:+8.3f} {statistics.median(p99) / base99:9.2f} {sum(r[3] for r in rs):6d}  {ok}")
EOF
