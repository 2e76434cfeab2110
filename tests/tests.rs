//! End-to-end tests of the `shadowdiff` binary: one test binary, one module per subject.

// Tests panic on failure by design.
#![allow(clippy::unwrap_used)]

mod support; // running the binary, making corpora, finding the test virtualenv
mod inspect; // shadowdiff inspect: text and JSON output, every bad input
mod interop; // pair files read as they are by pyarrow, DuckDB and polars
mod import; // shadowdiff import: HAR and GoReplay samples into pair files, malformed files
mod corpus_real; // the shared real-world corpus (../shared/corpus/real): HAR and .gor files import, JSON pairs diff and patch
mod fuzz_inputs; // the fuzz targets' committed seeds and crash inputs (fuzz/seeds, fuzz/regressions) through the targets' bodies, properties checked
mod capture; // shadowdiff capture: load then SIGTERM, SIGKILL, admin endpoints, bad settings
mod diff; // shadowdiff diff: formats, rules, exit codes
mod replay; // shadowdiff replay: against fixture services, bad flags
mod analyze; // shadowdiff analyze: injected regressions fail the right check, noise and A/A pass, bad inputs
mod analyze_windows; // analyze --since/--until: exactly the window's pairs, pruned hour partitions never opened, bad times
mod report; // report.html and charts/*.png from analyze, shadowdiff report DIR re-renders, bad DIR
mod golden; // every output file of analyze on seeded corpora, byte for byte apart from paths and times
mod nginx; // a real nginx with gzip and brotli behind capture: the changed field found through compression, A/A passes but for the p99
mod grpc; // gRPC (grpcio, all four call kinds) and HTTP/2 upstreams (nginx h2c and h2 over TLS) through capture: the client sees the baseline unchanged, pairs keep trailers and grpc-status
mod streams; // real-world traffic through capture: secrets in compressed bodies, an endless SSE stream, read-only POSTs
mod demo; // shadowdiff demo: the whole flow on loopback, every output, re-runs, refusing a foreign directory
mod event_streams; // SSE and NDJSON pairs compared per event: one changed event at /N/data/field, cut streams the same, a cut stream not an error
mod routes_body; // [[routes.key]]: GraphQL and JSON-RPC POSTs from an imported .gor judged per operation, one regression fails its route only
mod envoy_tap; // shadowdiff import envoy-tap: both sidecars' traces in every encoding paired, analyze and replay on them, cut files, deploy/envoy parses
mod deploy; // deploy/: hadolint on the Dockerfile, the image's libraries, kustomize renders validated, Istio and CRDs by hand, every shadowdiff command in the manifests run
mod deploy_gate; // deploy/argo-rollouts, flagger, prometheus, grafana: fields the controllers read, the jsonPath and webhooks against a real serve, every queried metric exposed
mod serve; // shadowdiff serve: verdicts turning from pass to fail under a live capture, Flagger webhooks, /metrics through prometheus_client, single flight, every bad input
mod shards; // shadowdiff plan, analyze --plan --shard and merge: 1-9 shards merge into exactly one analyze's outputs; merge refuses missing, moved, foreign partials and another policy
mod object_store; // pair files in S3 (moto_server on loopback): capture uploads under load and SIGTERM/SIGKILL, analyze/replay/inspect from s3:// only, exit 2 on refused credentials or a missing bucket, an outage with a spool budget adds up, --retain on a local out
mod full_disk; // capture with --out on a 3 MB tmpfs that fills and empties: every client served, lost pairs counted disk_full, recording resumes, files read back add up
mod listener; // abusive clients against capture's listener (slowloris, idle connections past --max-connections, an oversized header) while a good client is served exactly
