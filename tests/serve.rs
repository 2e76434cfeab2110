//! `shadowdiff serve` as a real process: a capture agent in front of fixture services writes
//! pair files while serve answers verdicts, which turn from pass to fail when the canary's fault
//! is switched on mid-run; Flagger webhooks with Flagger's documented payload; /metrics parsed by
//! the Prometheus client's own parser (Python `prometheus_client`); concurrent requests sharing
//! one analysis; a warning holding a webhook unless `--advance-on warn`; and every bad input
//! answered with a 4xx and one sentence while the server keeps running.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shadowdiff_fixtures::service::upstream;
use shadowdiff_format::verdict::Verdict;

use crate::support::{corpus, python, shadowdiff, signal, wait_with_deadline};

/// A running `shadowdiff serve`; SIGTERM and a bounded wait on drop.
pub struct Serve {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Serve {
    pub fn start(pairs: &Path, extra: &[&str]) -> Serve {
        Self::start_with(pairs.as_os_str(), &[], extra)
    }

    /// Serve `pairs` (a path or a URL) with `env` added to the environment.
    pub fn start_with(pairs: &std::ffi::OsStr, env: &[(&str, String)], extra: &[&str]) -> Serve {
        let mut child = shadowdiff()
            .arg("serve")
            .arg(pairs)
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("shadowdiff serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("a line on stdout");
        let addr = line.trim().strip_prefix("listening on http://").expect("the address on stdout").to_owned();
        Serve { child, addr }
    }

    pub fn get(&self, target: &str) -> (u16, String) {
        http(&self.addr, "GET", target, None)
    }

    pub fn post(&self, target: &str, body: &str) -> (u16, String) {
        http(&self.addr, "POST", target, Some(body))
    }

    /// GET a JSON document.
    pub fn json(&self, target: &str) -> (u16, Value) {
        let (status, body) = self.get(target);
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{target}: not JSON ({e}): {body}")))
    }

    /// `GET /v1/verdict?QUERY` answered 200, without its volatile fields.
    pub fn verdict(&self, query: &str) -> Value {
        let (status, v) = self.json(&format!("/v1/verdict{query}"));
        assert_eq!(status, 200, "{v}");
        without_volatile(v)
    }

    /// SIGTERM, and the exit status within a bound.
    pub fn stop(mut self) -> std::process::ExitStatus {
        signal(&self.child, "-TERM");
        let status = wait_with_deadline(&mut self.child, Duration::from_secs(20));
        std::mem::forget(self);
        status
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`): status and body.
pub fn http(addr: &str, method: &str, target: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).and_then(|()| s.write_all(body.as_bytes())).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    (status, body.to_owned())
}

/// Polls `f` every 200 ms until it returns `Some`, for at most `limit`.
// Polls real processes from a plain thread: the OS clock.
#[allow(clippy::disallowed_methods)]
fn poll<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `/metrics` parsed by `prometheus_client.parser` (the Prometheus text format, 0.0.4):
/// `[[sample name, labels, value], …]`.
pub fn parse_metrics(text: &str) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let o = child.wait_with_output().expect("python ends");
    assert!(o.status.success(), "prometheus_client could not parse /metrics: {}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<(String, serde_json::Map<String, Value>, f64)> = serde_json::from_slice(&o.stdout).expect("JSON");
    rows
}

/// The value of the sample `name` whose labels include `labels`.
pub fn sample(
    rows: &[(String, serde_json::Map<String, Value>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    rows.iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v)))
        .map(|r| r.2)
}

/// A policy without the latency checks: loopback latencies of a fixture are a fraction of a
/// millisecond and jitter by more than any threshold; these tests are about errors and bodies.
pub const POLICY: &str =
    "min_samples = 100\n[checks.latency_p99]\nenabled = false\n[checks.latency_shape]\nenabled = false\n";

/// A capture agent in front of `baseline` and `canary`, rotating files every 100 rows.
fn capture(baseline: &str, canary: &str, out: &Path) -> (Child, String) {
    let mut child = shadowdiff()
        .arg("capture")
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn", "--baseline", baseline, "--canary", canary])
        .args(["--rotate-rows", "100", "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("shadowdiff capture starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("a line");
    let addr = line.trim().strip_prefix("listening on http://").expect("the proxy's address").to_owned();
    (child, addr)
}

/// Flagger's documented webhook payload (docs/gitbook/usage/webhooks.md).
fn flagger(phase: &str) -> String {
    json!({"name": "podinfo", "namespace": "test", "phase": phase, "metadata": {"test": "all", "token": "16688eb5e9f289f1991c"}})
        .to_string()
}

#[test]
fn verdicts_turn_from_pass_to_fail_when_the_canary_fault_switches_on() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let fault = Arc::new(AtomicBool::new(false));
    let (base, canary) = rt.block_on(async {
        let base = upstream().seed(3).run().await.expect("baseline");
        let canary = upstream().seed(3).error_rate(0.5).effects_switch(Arc::clone(&fault)).run().await.expect("canary");
        (base, canary)
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs");
    std::fs::create_dir_all(&pairs).expect("mkdir");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).expect("policy");
    let (mut agent, proxy) = capture(&base.url(), &canary.url(), &pairs);
    let serve = Serve::start(&pairs, &["--policy", policy.to_str().expect("utf-8"), "--refresh", "1s"]);

    // Before any file: no pairs yet is 503 with a reason, and webhooks hold.
    let (status, body) = serve.json("/v1/verdict");
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().expect("error").contains("no pair files"), "{body}");
    assert_eq!(serve.post("/v1/flagger/confirm-rollout", &flagger("Initializing")).0, 503);

    let drive = |from: u64| {
        for i in from..from + 400 {
            let (status, _) = http(&proxy, "GET", &format!("/api/users/{i}"), None);
            assert_eq!(status, 200, "the client always gets the baseline's answer");
        }
    };
    drive(0);
    let passing: Verdict = poll(Duration::from_secs(60), "a verdict over 300 pairs", || {
        let (status, v) = serve.json("/v1/verdict");
        (status == 200 && v["inputs"]["pairs_analyzed"].as_u64() >= Some(300))
            .then(|| serde_json::from_value(v).expect("verdict.json's schema"))
    });
    assert_eq!(passing.verdict.as_str(), "pass", "{}", passing.reason);
    assert!(passing.sequential, "serve judges with anytime-valid decisions");
    for hook in ["confirm-rollout", "pre-rollout", "rollout", "confirm-promotion"] {
        let (status, body) = serve.post(&format!("/v1/flagger/{hook}"), &flagger("Progressing"));
        assert_eq!(status, 200, "{hook}: {body}");
        let b: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!((b["advance"].as_bool(), b["verdict"].as_str()), (Some(true), Some("pass")), "{body}");
    }

    // The canary's fault switched on mid-run: half its answers become 500s.
    fault.store(true, Ordering::Relaxed);
    drive(400);
    let failing: Verdict = poll(Duration::from_secs(60), "a failing verdict", || {
        let (status, v) = serve.json("/v1/verdict");
        let v: Verdict = (status == 200).then(|| serde_json::from_value(v).expect("schema"))?;
        (v.verdict.as_str() == "fail").then_some(v)
    });
    let error_rate = failing.checks.iter().find(|c| c.id.as_str() == "error_rate").expect("error_rate");
    assert_eq!(error_rate.status.as_str(), "fail", "{}", error_rate.reason);
    for hook in ["rollout", "confirm-promotion"] {
        let (status, body) = serve.post(&format!("/v1/flagger/{hook}"), &flagger("Progressing"));
        assert_eq!(status, 412, "{hook} holds: {body}");
        let b: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(b["advance"], false);
        let reason = b["reason"].as_str().expect("reason");
        assert!(reason.starts_with("shadowdiff verdict fail: ") && !reason.contains('\n'), "{reason}");
    }

    // /metrics, through the Prometheus client's parser: the latest default analysis.
    let rows = poll(Duration::from_secs(30), "/metrics showing the failure", || {
        let (status, text) = serve.get("/metrics");
        assert_eq!(status, 200);
        let rows = parse_metrics(&text);
        (sample(&rows, "shadowdiff_verdict_status", &[]) == Some(3.0)).then_some(rows)
    });
    assert_eq!(sample(&rows, "shadowdiff_check_status", &[("check", "error_rate"), ("route", "(all)")]), Some(3.0));
    assert_eq!(sample(&rows, "shadowdiff_check_status", &[("check", "breaking"), ("route", "(all)")]), Some(0.0));
    assert_eq!(sample(&rows, "shadowdiff_check_status", &[("check", "latency_p99"), ("route", "(all)")]), Some(-2.0));
    let analyzed = sample(&rows, "shadowdiff_pairs_analyzed", &[]).expect("pairs analyzed");
    assert!(analyzed >= 600.0, "{analyzed}");
    let canary_errors =
        sample(&rows, "shadowdiff_error_ratio", &[("route", "(all)"), ("side", "canary")]).expect("ratio");
    let baseline_errors = sample(&rows, "shadowdiff_error_ratio", &[("route", "(all)"), ("side", "baseline")]);
    assert!((0.1..0.45).contains(&canary_errors), "{canary_errors}");
    assert_eq!(baseline_errors, Some(0.0));
    assert!(sample(&rows, "shadowdiff_diff_rate", &[("route", "/api/users/{id}")]).is_some());
    assert!(sample(&rows, "shadowdiff_analysis_duration_seconds", &[]).is_some_and(|d| d > 0.0));
    assert!(sample(&rows, "shadowdiff_analysis_age_seconds", &[]).is_some_and(|a| a >= 0.0));
    assert!(sample(&rows, "shadowdiff_serve_analyses_total", &[("outcome", "ok")]).is_some_and(|n| n >= 2.0));

    assert!(serve.stop().success(), "serve exits 0 on SIGTERM");
    signal(&agent, "-TERM");
    assert!(wait_with_deadline(&mut agent, Duration::from_secs(20)).success());
    drop((base, canary));
}

#[test]
fn concurrent_requests_share_one_analysis_and_new_files_start_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs");
    corpus(&pairs.join("a"), 400, |c| c.seed = 5);
    // A refresh interval longer than the test: only the first analysis at start is the server's.
    let serve = Serve::start(&pairs, &["--refresh", "1h"]);
    let analyses = |serve: &Serve| {
        let rows = parse_metrics(&serve.get("/metrics").1);
        sample(&rows, "shadowdiff_serve_analyses_total", &[("outcome", "ok")]).unwrap_or(0.0)
    };
    poll(Duration::from_secs(60), "the analysis at start", || (analyses(&serve) == 1.0).then_some(()));
    assert_eq!(serve.json("/v1/verdict").0, 200);
    assert_eq!(analyses(&serve), 1.0, "the same files: the cached answer");

    corpus(&pairs.join("b"), 400, |c| c.seed = 6);
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8).map(|_| s.spawn(|| serve.json("/v1/verdict"))).collect();
        hs.into_iter().map(|h| h.join().expect("request thread")).collect()
    });
    for (status, v) in &answers {
        assert_eq!(*status, 200, "{v}");
        assert_eq!(v["inputs"]["pairs_analyzed"], 800, "every answer counts the new file");
    }
    assert_eq!(analyses(&serve), 2.0, "eight concurrent requests, one analysis");
    // Other parameters are another analysis, itself shared and cached.
    let (status, w) = serve.json("/v1/verdict?window=1h");
    assert_eq!(status, 200, "{w}");
    assert!(!w["windows"].as_array().expect("windows[]").is_empty());
    assert_eq!(serve.json("/v1/verdict?window=1h").1["windows"], w["windows"]);
    assert_eq!(analyses(&serve), 3.0);
    assert!(serve.stop().success());
}

#[test]
fn bad_input_is_a_4xx_with_one_sentence_and_the_server_keeps_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs");
    corpus(&pairs, 300, |c| c.seed = 9);
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).expect("mkdir");
    std::fs::write(policies.join("ok.toml"), POLICY).expect("policy");
    std::fs::write(policies.join("bad.toml"), "[checks.latency_p99]\npass = \"ten\"\n").expect("policy");
    let serve = Serve::start(&pairs, &["--policy-dir", policies.to_str().expect("utf-8"), "--refresh", "1h"]);

    let cases: [(&str, &str, Option<&str>, u16, &str); 16] = [
        ("GET", "/v1/verdict?color=red", None, 400, "unknown parameter `color`"),
        ("GET", "/v1/verdict?since=-1h&since=-2h", None, 400, "`since` is given twice"),
        ("GET", "/v1/verdict?since=2026-11-30T10:00:00Z&until=2026-11-30T09:00:00Z", None, 400, "is not before until"),
        ("GET", "/v1/verdict?since=yesterday", None, 400, "since `yesterday` is not an RFC 3339 time"),
        ("GET", "/v1/verdict?until=2026-13-01T00:00:00Z", None, 400, "until `2026-13-01T00:00:00Z` is not"),
        ("GET", "/v1/verdict?window=soon", None, 400, "window `soon` is not a duration"),
        ("GET", "/v1/verdict?window=0s", None, 400, "must be at least 1s"),
        ("GET", "/v1/verdict?policy=bad.toml", None, 400, "policy `bad.toml`: invalid rules file"),
        ("GET", "/v1/verdict?policy=missing.toml", None, 400, "cannot read rules file"),
        ("GET", "/v1/verdict?policy=../pairs", None, 400, "without `..`"),
        ("POST", "/v1/flagger/rollout", Some("not json"), 400, "the webhook body is not JSON"),
        ("POST", "/v1/flagger/rollout", Some(r#"{"namespace":"test"}"#), 400, "has no `name`"),
        (
            "POST",
            "/v1/flagger/rollout",
            Some(r#"{"name":"p","namespace":"t","metadata":{"since":"noon"}}"#),
            400,
            "since `noon` is not",
        ),
        ("GET", "/v1/flagger/rollout", None, 405, "answers POST only"),
        ("POST", "/v1/verdict", Some("{}"), 405, "answers GET only"),
        ("GET", "/v2/verdict", None, 404, "no such endpoint /v2/verdict"),
    ];
    for (method, target, body, want, says) in cases {
        let (status, text) = http(&serve.addr, method, target, body);
        assert_eq!(status, want, "{method} {target}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{target}: {e}: {text}"));
        let reason = v["error"].as_str().unwrap_or_else(|| panic!("{target}: no error: {text}"));
        assert!(reason.contains(says), "{method} {target}: {reason}");
        assert!(!reason.contains('\n'), "one sentence: {reason}");
        assert_eq!(serve.get("/healthz").0, 200, "still serving after {target}");
    }
    // A request's own policy, inside --policy-dir, works.
    let (status, v) = serve.json("/v1/verdict?policy=ok.toml");
    assert_eq!(status, 200, "{v}");

    // An unreadable pair file is the server's 500 with the file named, until it goes away.
    let broken = pairs.join("zz-broken.parquet");
    std::fs::write(&broken, b"PAR1 this is not a parquet file").expect("write");
    let (status, v) = serve.json("/v1/verdict");
    assert_eq!(status, 500, "{v}");
    let reason = v["error"].as_str().expect("error");
    assert!(reason.contains("zz-broken.parquet") && !reason.contains('\n'), "{reason}");
    std::fs::remove_file(&broken).expect("rm");
    assert_eq!(serve.json("/v1/verdict").0, 200, "the server recovers");
    assert!(serve.stop().success());
}

#[test]
fn a_warning_holds_a_webhook_unless_the_server_advances_on_warn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs");
    crate::support::corpus_with_effects(&pairs, 2000, 13, &["any-value-changed:0.05"], |_| {});
    // 5 % of pairs differ: between this policy's pass (0.1 %) and warn (50 %) limits.
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, format!("{POLICY}[checks.diff_rate]\npass = 0.001\nwarn = 0.5\n")).expect("policy");
    let policy = policy.to_str().expect("utf-8");
    for (advance_on, want) in [("pass", 412), ("warn", 200)] {
        let serve = Serve::start(&pairs, &["--policy", policy, "--advance-on", advance_on, "--refresh", "1h"]);
        let (status, v) = serve.json("/v1/verdict");
        assert_eq!((status, v["verdict"].as_str()), (200, Some("warn")), "{}", v["reason"]);
        let (status, body) = serve.post("/v1/flagger/confirm-promotion", &flagger("Promoting"));
        assert_eq!(status, want, "--advance-on {advance_on}: {body}");
        let b: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!((b["verdict"].as_str(), b["advance"].as_bool()), (Some("warn"), Some(want == 200)));
        assert!(serve.stop().success());
    }
}

/// A corpus whose canary changes 3 % of values, seeded, starting at `start`, 300 pairs a file.
fn shifted(seed: u64, start: &'static str) -> impl FnOnce(&mut shadowdiff_fixtures::corpus::CorpusConfig) {
    move |c| {
        c.seed = seed;
        c.rotate_rows = 300;
        c.start = start.parse().expect("a time");
        c.canary.effects.push(shadowdiff_fixtures::Scoped::parse("any-value-changed:0.03").expect("effect"));
    }
}

/// A verdict without what differs between two runs of the same analysis.
fn without_volatile(mut v: Value) -> Value {
    for k in ["outputs", "generated_at", "analysis_seconds"] {
        v.as_object_mut().expect("an object").remove(k);
    }
    v
}

/// The verdict an `analyze … --out OUT` run wrote (it must have judged: exit 0 or 1).
fn analyzed(o: &std::process::Output, out: &Path) -> Value {
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&o.stderr));
    let v = serde_json::from_slice(&std::fs::read(out.join("verdict.json")).expect("verdict")).expect("JSON");
    without_volatile(v)
}

/// The gate keeps each file's pass 1 and merges: its verdict must be the one a fresh `analyze
/// --sequential` of the same files gives — after files are added, for a window whose edges cut
/// through files, and for a window that holds every file.
#[test]
fn incremental_verdicts_equal_a_fresh_analysis() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs");
    corpus(&pairs.join("a"), 1_500, shifted(8, "2026-11-24T08:00:00Z"));
    let serve = Serve::start(&pairs, &["--refresh", "1h"]);
    let fresh = |extra: &[&str]| {
        let out = tempfile::tempdir().expect("tempdir");
        let o = shadowdiff()
            .arg("analyze")
            .arg(&pairs)
            .args(["--sequential", "-q", "--out"])
            .arg(out.path())
            .args(extra)
            .output()
            .expect("analyze runs");
        analyzed(&o, out.path())
    };
    let served = |q: &str| serve.verdict(q);
    assert_eq!(served(""), fresh(&[]), "the first files");
    // 100 pairs a second: the second corpus starts 30 s after the first ends.
    corpus(&pairs.join("b"), 1_500, shifted(9, "2026-11-24T08:00:45Z"));
    assert_eq!(served(""), fresh(&[]), "after new files");
    let (since, until) = ("2026-11-24T08:00:07Z", "2026-11-24T08:00:52Z");
    let cut = served(&format!("?since={since}&until={until}"));
    assert_eq!(cut, fresh(&["--since", since, "--until", until]), "a window cutting through files");
    assert!(cut["inputs"]["window"]["pairs_outside"].as_u64().expect("pairs_outside") > 0);
    let (since, until) = ("2026-11-24T07:00:00Z", "2026-11-24T09:00:00Z");
    assert_eq!(served(&format!("?since={since}&until={until}")), fresh(&["--since", since, "--until", until]));
    // A trend: every window merged from the kept passes, as analyze --window judges it.
    let trend = served("?window=10s");
    assert!(trend["windows"].as_array().is_some_and(|w| w.len() >= 4), "{trend}");
    assert_eq!(trend, fresh(&["--window", "10s"]), "a trend");
    assert!(serve.stop().success());
}

/// The gate over a bucket (a real S3 server, moto): the verdict equals `analyze` of the same
/// bucket, new objects move it, a window is judged from its partitions, a trend downloads what it
/// needs, and copies of objects are removed once their pass is kept.
#[test]
fn serve_reads_a_bucket_incrementally() {
    let Some(bin) = crate::object_store::moto_binary() else { return };
    let moto = crate::object_store::Moto::start(&bin, false);
    moto.create_bucket("gate");
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let url = "s3://gate/pairs";
    corpus(&dir.path().join("a"), 1_200, shifted(11, "2026-11-24T08:00:00Z"));
    crate::object_store::upload_dir(&moto, "s3://gate/pairs/a", &dir.path().join("a"));
    let env = moto.env();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
    let serve =
        Serve::start_with(url.as_ref(), &env, &["--refresh", "1h", "--work-dir", work.to_str().expect("utf-8")]);
    let fresh = |extra: &[&str]| {
        let out = tempfile::tempdir().expect("tempdir");
        let out_dir = out.path().to_str().expect("utf-8");
        let mut args = vec!["analyze", url, "--sequential", "-q", "--out", out_dir];
        args.extend_from_slice(extra);
        analyzed(&moto.run(&args), out.path())
    };
    let served = |q: &str| serve.verdict(q);
    let copies = || {
        let mut n = 0;
        let mut stack = vec![work.join("objects")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    n += 1;
                }
            }
        }
        n
    };
    let first = served("");
    assert_eq!(first["inputs"]["pairs_analyzed"].as_u64(), Some(1_200), "{first}");
    assert_eq!(first, fresh(&[]), "the first objects");
    assert_eq!(copies(), 0, "copies of objects are removed once mapped");
    corpus(&dir.path().join("b"), 1_200, shifted(12, "2026-11-24T08:00:40Z"));
    crate::object_store::upload_dir(&moto, "s3://gate/pairs/b", &dir.path().join("b"));
    let second = served("");
    assert_eq!(second["inputs"]["pairs_analyzed"].as_u64(), Some(2_400), "{second}");
    assert_eq!(second, fresh(&[]), "after new objects");
    let (since, until) = ("2026-11-24T08:00:05Z", "2026-11-24T08:00:47Z");
    let cut = served(&format!("?since={since}&until={until}"));
    assert_eq!(cut, fresh(&["--since", since, "--until", until]), "a window cutting through objects");
    assert!(cut["inputs"]["window"]["pairs_outside"].as_u64().expect("pairs_outside") > 0, "{cut}");
    let trend = served("?window=30s");
    assert!(trend["windows"].as_array().is_some_and(|w| w.len() >= 2), "{trend}");
    assert_eq!(trend, fresh(&["--window", "30s"]), "a trend");
    // An object that is not a pair file: the sentence names its URL, and the server stays up.
    let (status, _) =
        crate::object_store::http_with_body(moto.port, "PUT", "/gate/pairs/c/bad.parquet", b"not parquet")
            .expect("moto");
    assert_eq!(status, 200);
    let (status, body) = serve.get("/v1/verdict");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("s3://gate/pairs/c/bad.parquet"), "{body}");
    assert_eq!(serve.get("/healthz").0, 200);
    assert!(serve.stop().success());
}
