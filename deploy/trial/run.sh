#!/usr/bin/env bash
# The local trial, in order: start the fixture services and capture, send traffic through
# capture, stop capture (SIGTERM: it drains and closes its last pair file), analyze the pairs.
# Prints analyze's verdict and exits with its code (0 pass or warn, 1 fail, 2 error,
# 3 inconclusive); the report lands in ./shadowdiff-trial (or the directory given).
#
#   docker compose -f deploy/trial/compose.yaml build
#   deploy/trial/run.sh [OUT_DIR]
#
# The canary has planted regressions, so expect FAIL naming /api/search (latency, errors),
# /api/orders/{id} (a removed field) and numeric drift on /api/products/{id}.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-shadowdiff-trial}" && cd "${1:-shadowdiff-trial}" && pwd)
compose() { docker compose -f "$here/compose.yaml" "$@"; }

trap 'compose --profile manual down --volumes --remove-orphans >/dev/null 2>&1 || true' EXIT

echo "==> baseline, secondary, canary and capture"
compose up --detach baseline secondary canary capture

echo "==> traffic through capture"
compose run --rm load

echo "==> stopping capture (SIGTERM: drains, closes every file)"
compose stop capture
compose logs --no-log-prefix capture | tail -n 2

echo "==> analyze"
# As you, so the report in $out is yours; the pair files are read from the volume.
status=0
compose run --rm --user "$(id -u):$(id -g)" --volume "$out:/out" analyze || status=$?
echo "report: $out/report.html (exit $status)"
exit "$status"
