#!/usr/bin/env bash
# How often the judge is wrong: the operating characteristic of the default policy.
#
# Simulates pair sets under six noise models (shared lognormal cost with per-side jitter, per-side
# stalls, a shared cache, error bursts, a diurnal load, many routes) with effects of known size
# (latency ×1.05 … ×1.5, a tail-only +30 %, errors ×1.5 and ×3, a new error kind, a field changed
# in 0.2 %, 1 %, 5 % of pairs), judges every set with analyze's judge and prints, per cell, the
# share of pass / warn / fail / inconclusive verdicts, the checks that raised them, and whether the
# cell meets its target. The table in docs/policy.md ("How often the judge is wrong") is this
# script's output.
#
#   bench/calibration/run.sh                          # 200 sets of 4,000 pairs per cell (~15 min on 2 cores)
#   SETS=50 bench/calibration/run.sh                  # a quicker look
#   bench/calibration/run.sh --noise lognormal --effect aa,lat1.05 --pairs 1000
#   bench/calibration/run.sh --looks 1000             # repeated looks at growing A/A runs (see --help)
#   bench/calibration/run.sh --policy my-policy.toml  # your own policy
#
# Arguments are passed to shadowdiff-calibration (`--help` lists them). Built in the dev profile,
# like the rest of the suite (dependencies optimised).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet -p shadowdiff-calibration
exec target/debug/shadowdiff-calibration --sets "${SETS:-200}" "$@"
