//! `shadowdiff capture` as a real process on real-world traffic: secrets inside gzip, br and
//! zstd bodies never reach the pair files or the logs; an event stream that never ends is served
//! to the client whole and recorded cut on both sides, with counters that add up; read-only POSTs
//! (GraphQL queries, listed JSON-RPC methods) reach the canary only when the configuration file
//! says so, and nothing else does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use shadowdiff_fixtures::service::{EventStream, upstream};
use shadowdiff_format::encoding::decode;
use shadowdiff_format::reader::PairFile;
use shadowdiff_format::{Header, PairReader, PairRecord, resolve_inputs};

use crate::support::{shadowdiff, signal, wait_with_deadline};

const SECRET: &str = "sk-live-7f3a9c2e51d4b8a6";

/// A running `shadowdiff capture` whose log (stderr, at `trace`) goes to a file.
struct Running {
    child: Child,
    addr: String,
    out: tempfile::TempDir,
    log: PathBuf,
}

fn start(baseline: &str, canary: &str, args: &[&str]) -> Running {
    let out = tempfile::tempdir().expect("tempdir");
    let log = out.path().join("capture.log");
    let mut child = shadowdiff()
        .arg("capture")
        .args(["--listen", "127.0.0.1:0", "--log-level", "trace", "--drain-timeout", "2s"])
        .args(["--baseline", baseline, "--canary", canary, "--out"])
        .arg(out.path().join("pairs"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("shadowdiff capture starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let addr = first.strip_prefix("listening on ").map(str::to_owned).expect("the proxy address on stdout");
    Running { child, addr, out, log }
}

/// What a stopped agent left: its pairs, the newest file's counters, its log, its directory.
type Stopped = (Vec<PairRecord>, std::collections::BTreeMap<String, u64>, String, tempfile::TempDir);

impl Running {
    /// SIGTERM, wait for a clean exit, and read back every pair, the newest file's counters and
    /// the log.
    fn stop(mut self) -> Stopped {
        signal(&self.child, "-TERM");
        let status = wait_with_deadline(&mut self.child, Duration::from_secs(20));
        assert!(status.success(), "capture exits 0 after SIGTERM: {status}");
        let dir = self.out.path().join("pairs");
        let files = resolve_inputs(&[dir.to_str().expect("utf-8")]).expect("pair files");
        let infos: Vec<_> = files.iter().map(|f| PairFile::open(f).expect("a whole file").info).collect();
        let counters = infos.iter().max_by_key(|i| i.file_seq).expect("a file").counters.clone();
        let mut pairs = PairReader::read_all_records(&[dir.to_str().expect("utf-8")]).expect("readable");
        pairs.sort_by_key(|p| p.captured_at);
        let log = std::fs::read_to_string(&self.log).expect("the log");
        (pairs, counters, log, self.out)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and reads the whole (finite) answer: the test is the client.
// Collecting a fixture's bounded answer in a test.
#[allow(clippy::disallowed_methods)]
async fn send(url: &str, method: Method, headers: &[(&str, &str)], body: Vec<u8>) -> (http::HeaderMap, Bytes) {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = client().request(b.body(Full::new(Bytes::from(body))).expect("request")).await.expect("answer");
    let (head, body) = resp.into_parts();
    (head.headers, body.collect().await.expect("the whole body").to_bytes())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out
}

fn content_encoding(headers: &[Header]) -> Option<String> {
    let v: Vec<_> =
        headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-encoding")).map(|h| h.value_lossy()).collect();
    (!v.is_empty()).then(|| v.join(", "))
}

/// A secret inside gzip, x-gzip, deflate, br, zstd and stacked JSON responses, and inside a gzip
/// request body: the client and the upstreams get it; no pair file and no log line holds it,
/// plain or in any of the encodings the upstreams sent; every stored body decodes by its own
/// header to the redacted document.
#[test]
fn secrets_in_compressed_bodies_reach_neither_files_nor_logs() {
    let rt = runtime();
    let codings = ["gzip", "x-gzip", "deflate", "br", "zstd", "gzip, br", "br, zstd"];
    let doc = json!({"user": "ada", "api_key": SECRET, "note": "x".repeat(3000)});
    let (base, canary) = rt.block_on(async {
        let build = || {
            codings
                .iter()
                .enumerate()
                .fold(upstream(), |b, (i, c)| b.route_encoded(&format!("/c/{i}"), doc.clone(), c))
                .route("/login", json!({"ok": true}))
        };
        (build().run().await.expect("baseline"), build().record_requests().run().await.expect("canary"))
    });
    let proxy = start(&base.url(), &canary.url(), &["--redact-json", "/api_key", "--mirror-methods", "GET,POST"]);
    let mut encoded_bodies: Vec<Vec<u8>> = Vec::new();
    rt.block_on(async {
        for i in 0..codings.len() {
            let url = format!("{}/c/{i}", proxy.addr);
            let accept = [("accept-encoding", "gzip, deflate, br, zstd")];
            let (headers, body) = send(&url, Method::GET, &accept, vec![]).await;
            let ce = headers.get("content-encoding").and_then(|v| v.to_str().ok()).expect("still encoded").to_owned();
            let content = decode(&body, Some(&ce), 1 << 20).expect("a valid body");
            assert!(contains(&content.bytes, SECRET.as_bytes()), "the client gets the real value ({ce})");
            encoded_bodies.push(body.to_vec());
        }
        let request = serde_json::to_vec(&json!({"user": "ada", "api_key": SECRET})).expect("json");
        let gz = shadowdiff_format::encoding::encode(&request, "gzip").expect("gzip");
        encoded_bodies.push(gz.clone());
        let url = format!("{}/login", proxy.addr);
        let headers = [("content-type", "application/json"), ("content-encoding", "gzip")];
        send(&url, Method::POST, &headers, gz.clone()).await;
        for _ in 0..codings.len() {
            canary.next_request().await.expect("mirrored");
        }
        assert_eq!(canary.next_request().await.expect("mirrored").body, gz, "the canary gets the real body");
    });
    let (pairs, counters, log, out) = proxy.stop();
    assert_eq!(pairs.len(), codings.len() + 1, "{counters:?}");
    assert_eq!(counters["redaction_withheld"], 0);
    let mut redacted = 0;
    for p in &pairs {
        let sides = [
            (&p.request_headers, &p.request_body),
            (&p.baseline.headers, &p.baseline.body),
            (&p.canary.headers, &p.canary.body),
        ];
        for (headers, body) in sides {
            let Some(body) = body else { continue };
            let ce = content_encoding(headers);
            let content = decode(body, ce.as_deref(), 1 << 20).expect("the stored body decodes by its header");
            let v: Value = serde_json::from_slice(&content.bytes).expect("JSON");
            if v != json!({"ok": true}) {
                // Every body but /login's answer carried the secret.
                assert_eq!(v["api_key"], "REDACTED", "{} ({ce:?})", p.path);
                assert_eq!(v["user"], "ada");
                redacted += 1;
            }
            assert!(!contains(body, SECRET.as_bytes()) && !contains(&content.bytes, SECRET.as_bytes()));
            for sent in &encoded_bodies {
                assert!(!contains(body, &sent[..sent.len().min(48)]), "{}: an upstream's encoded bytes", p.path);
            }
        }
    }
    assert_eq!(redacted, codings.len() * 2 + 1, "each compressed answer on both sides, and the request body");
    assert!(
        pairs.iter().filter(|p| p.path.starts_with("/c/")).all(|p| content_encoding(&p.baseline.headers).is_some())
    );
    for file in files_under(out.path()) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(!contains(&bytes, SECRET.as_bytes()), "{} holds the secret", file.display());
        for sent in &encoded_bodies {
            assert!(!contains(&bytes, &sent[..sent.len().min(48)]), "{} holds an encoded body", file.display());
        }
    }
    assert!(!log.is_empty(), "the agent logged at trace");
    assert!(!log.contains(SECRET), "the log holds the secret");
}

/// An SSE stream that never ends, through the real process: the client keeps receiving events
/// long past `--max-body-duration`; both recorded sides are cut there (truncated, no error, no
/// latency); a canary that goes quiet after its head is truncated, not an error; and the file's
/// counters add up.
#[test]
fn an_endless_event_stream_is_served_and_recorded_cut() {
    let rt = runtime();
    let tick = Duration::from_millis(50);
    let first = vec![json!({"price": 100}), json!({"price": 101})];
    let (base, canary) = rt.block_on(async {
        let base = upstream()
            .stream("/prices", EventStream::sse(first.clone(), tick).endless())
            .stream("/poll", EventStream::ndjson(vec![json!({"update": 1})], Duration::from_millis(10)))
            .run()
            .await
            .expect("baseline");
        // The canary's long poll waits longer than the mirror timeout before anything arrives.
        let canary = upstream()
            .stream("/prices", EventStream::sse(first.clone(), tick).endless())
            .stream("/poll", EventStream::ndjson(vec![json!({"update": 1})], Duration::from_secs(3)))
            .run()
            .await
            .expect("canary");
        (base, canary)
    });
    let proxy = start(&base.url(), &canary.url(), &["--max-body-duration", "1s", "--mirror-timeout", "500ms"]);
    let events = rt.block_on(async {
        let url: http::Uri = format!("{}/prices", proxy.addr).parse().expect("uri");
        let resp = client().get(url).await.expect("the proxy answers");
        assert_eq!(resp.headers().get("content-type").map(|v| v.as_bytes()), Some(&b"text/event-stream"[..]));
        let mut body = resp.into_body();
        let mut text = String::new();
        // 60 events at one per 50 ms: three times the recording cap, read as they come.
        while text.matches("\n\n").count() < 60 {
            let frame = body.frame().await.expect("the stream goes on").expect("no error");
            text.push_str(std::str::from_utf8(&frame.into_data().expect("data")).expect("utf-8"));
        }
        assert!(text.starts_with("id: 1\nevent: tick\ndata: {\"price\":100}\n\n"), "{text}");
        assert!(text.contains("id: 60\nevent: tick\ndata: {\"tick\":60}\n\n"), "every event, in order");
        drop(body);
        let (_, poll) = send(&format!("{}/poll", proxy.addr), Method::GET, &[], vec![]).await;
        assert_eq!(poll, "{\"update\":1}\n");
        text.matches("\n\n").count()
    });
    // A client still reading a stream when SIGTERM comes: its pair is written cut, not dropped,
    // and the process exits at the drain deadline.
    let mut body = rt.block_on(async {
        let url: http::Uri = format!("{}/prices", proxy.addr).parse().expect("uri");
        let mut body = client().get(url).await.expect("the proxy answers").into_body();
        body.frame().await.expect("a first event").expect("no error");
        body
    });
    let still_open = rt.spawn(async move { while let Some(Ok(_)) = body.frame().await {} });
    let (pairs, c, _log, _out) = proxy.stop();
    rt.block_on(still_open).expect("the client's stream ends when the agent closes it");
    let prices: Vec<_> = pairs.iter().filter(|p| p.path == "/prices").collect();
    assert_eq!(prices.len(), 2, "both streams' pairs are recorded");
    for (i, side, s) in
        prices.iter().enumerate().flat_map(|(i, p)| [(i, "baseline", &p.baseline), (i, "canary", &p.canary)])
    {
        assert_eq!(s.status, Some(200), "{side}");
        assert!(s.body_truncated, "{side}: cut at the duration cap");
        assert_eq!((s.error.as_deref(), s.latency_us), (None, None), "{side}: not an error, not ended");
        let kept = String::from_utf8_lossy(s.body.as_deref().expect("what was recorded")).into_owned();
        let n = kept.matches("\n\n").count();
        if i == 0 {
            // Cut at --max-body-duration: about 20 of the events the client read.
            assert!(kept.starts_with("id: 1\n") && n >= 2 && n < events, "{side}: {n} events recorded of {events}");
        } else {
            // Cut when draining began, an event or so in.
            assert!(kept.is_empty() || kept.starts_with("id: 1\n"), "{side}: {kept}");
        }
    }
    let poll = pairs.iter().find(|p| p.path == "/poll").expect("the poll's pair");
    assert!(!poll.baseline.body_truncated && poll.baseline.latency_us.is_some());
    assert!(poll.canary.body_truncated && poll.canary.error.is_none(), "quiet after its head: {:?}", poll.canary);
    assert_eq!(c["streams_cut"], 5, "{c:?}");
    assert_eq!((c["seen"], c["dropped"]), (3, 0), "{c:?}");
    assert_eq!(c["seen"], c["recorded"] + c["dropped"] + c["skipped"], "{c:?}");
    assert_eq!(c["recorded"], pairs.len() as u64);
}

/// Read-only POSTs set in the configuration file: GraphQL queries and listed JSON-RPC methods
/// reach the canary, which counts them; mutations, unlisted methods and unlisted persisted
/// queries do not, and are counted as `mirror_skipped.not_read_only`.
#[test]
fn read_only_posts_from_the_config_file_reach_the_canary_and_writes_do_not() {
    let rt = runtime();
    let (base, canary) = rt.block_on(async {
        let build = || upstream().route("/graphql", json!({"data": {}})).route("/rpc", json!({"result": 1}));
        (build().run().await.expect("baseline"), build().record_requests().run().await.expect("canary"))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("capture.toml");
    std::fs::write(
        &config,
        "[mirror]\ngraphql_paths = [\"/graphql\"]\njsonrpc_paths = [\"/rpc\"]\njsonrpc_methods = [\"getBlock\"]\n",
    )
    .expect("config");
    let proxy = start(&base.url(), &canary.url(), &["--config", config.to_str().expect("utf-8")]);
    let reads = [
        ("/graphql", json!({"query": "query Q($id: ID) { block(id: $id) { hash } }", "variables": {"id": 1}})),
        ("/rpc", json!({"jsonrpc": "2.0", "method": "getBlock", "params": [1], "id": 1})),
    ];
    let writes = [
        ("/graphql", json!({"query": "mutation { transfer(to: \"bob\") { id } }"})),
        ("/graphql", json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}})),
        ("/rpc", json!({"jsonrpc": "2.0", "method": "sendTransaction", "params": [], "id": 2})),
    ];
    let seen = rt.block_on(async {
        for (path, body) in reads.iter().chain(&writes) {
            let url = format!("{}{path}", proxy.addr);
            send(&url, Method::POST, &[("content-type", "application/json")], body.to_string().into_bytes()).await;
        }
        let mut seen = Vec::new();
        for _ in 0..reads.len() {
            seen.push(canary.next_request().await.expect("a read reaches the canary").json().expect("json"));
        }
        seen
    });
    let (pairs, c, _log, _out) = proxy.stop();
    assert_eq!(seen, reads.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>());
    assert_eq!(canary.requests_seen(), reads.len() as u64, "no write reached the canary");
    assert_eq!((c["mirrored"], c["mirror_skipped.not_read_only"]), (2, 3), "{c:?}");
    assert_eq!(pairs.len(), 5);
}
