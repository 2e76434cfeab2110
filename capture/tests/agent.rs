//! The capture agent in-process, in front of real fixture services on loopback: what the client
//! gets, what the upstreams see, and what lands on disk.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use shadowdiff_capture::redact::{HashKey, RedactRules};
use shadowdiff_capture::{Agent, Config, Report};
use shadowdiff_fixtures::FaultKind;
use shadowdiff_fixtures::service::{Upstream, upstream};
use shadowdiff_format::reader::PairFile;
use shadowdiff_format::schema::error_kind;
use shadowdiff_format::{PairReader, PairRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

type TestClient = Client<HttpConnector, Full<Bytes>>;

/// A capture agent under test, with a client pointed at it.
struct Capture {
    agent: Agent,
    client: TestClient,
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn capture(baseline: &str, canary: &str, edit: impl FnOnce(&mut Config)) -> Capture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::new(baseline, canary, dir.path()).expect("config");
    config.mirror_timeout = Duration::from_millis(500);
    config.drain_timeout = Duration::from_secs(5);
    edit(&mut config);
    let agent = Agent::start(config).await.expect("the agent starts");
    Capture { agent, client: client(), dir }
}

impl Capture {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.agent.addr())
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    // Reads the whole answer of the agent under test: the test is the client that asserts on it.
    #[allow(clippy::disallowed_methods)]
    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Bytes) -> Answer {
        let mut b = Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self.client.request(b.body(Full::new(body)).expect("request")).await.expect("the proxy answers");
        let (head, body) = resp.into_parts();
        let body = body.collect().await.expect("the whole body").to_bytes();
        Answer { status: head.status, headers: head.headers, body }
    }

    /// Drain, close every file, and read back every pair.
    async fn finish(self) -> (Report, Vec<PairRecord>, tempfile::TempDir) {
        let report = self.agent.shutdown().await.expect("clean shutdown");
        let pairs = read_pairs(self.dir.path());
        (report, pairs, self.dir)
    }
}

fn read_pairs(dir: &Path) -> Vec<PairRecord> {
    let root = dir.to_str().expect("utf-8");
    if shadowdiff_format::resolve_inputs(&[root]).is_err() {
        return Vec::new();
    }
    let mut pairs = PairReader::read_all_records(&[root]).expect("pair files are readable");
    pairs.sort_by_key(|p| p.captured_at);
    pairs
}

// Reads the whole answer of a fixture the test started.
#[allow(clippy::disallowed_methods)]
async fn direct(url: &str) -> Answer {
    let resp = client().get(url.parse().expect("uri")).await.expect("the fixture answers");
    let (head, body) = resp.into_parts();
    Answer { status: head.status, headers: head.headers, body: body.collect().await.expect("body").to_bytes() }
}

/// An address nothing listens on.
async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a
}

fn doc() -> Value {
    json!({"id": 1, "name": "Ada", "tags": ["a", "b"]})
}

async fn baseline() -> Upstream {
    upstream().route("/users/1", doc()).record_requests().run().await.expect("baseline")
}

/// The client gets the baseline's status and bytes, whatever the canary does, and the pair
/// records what the canary did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_gets_the_baseline_under_every_canary_fault() {
    let base = baseline().await;
    let expected = direct(&format!("{}/users/1", base.url())).await;
    assert_eq!(expected.status, 200);

    let down = format!("http://{}", closed_port().await);
    let cases: Vec<(&str, Option<Upstream>, Option<&str>)> = vec![
        ("down", None, Some(error_kind::CONNECT)),
        ("hang", Some(upstream().hang().run().await.expect("canary")), Some(error_kind::TIMEOUT)),
        ("reset", Some(upstream().reset().run().await.expect("canary")), Some(error_kind::RESET)),
        ("garbage", Some(upstream().garbage().run().await.expect("canary")), Some(error_kind::PROTOCOL)),
        (
            "slow body",
            Some(
                upstream()
                    .route("/users/1", doc())
                    .slow_body(4, Duration::from_millis(25))
                    .run()
                    .await
                    .expect("canary"),
            ),
            None,
        ),
        ("5xx burst", Some(upstream().route("/users/1", doc()).burst(10, 10).run().await.expect("canary")), None),
    ];
    for (name, canary, kind) in cases {
        let canary_url = canary.as_ref().map_or(down.clone(), Upstream::url);
        let proxy = capture(&base.url(), &canary_url, |_| {}).await;
        for _ in 0..3 {
            let got = proxy.get("/users/1").await;
            assert_eq!(got.status, expected.status, "{name}");
            assert_eq!(got.body, expected.body, "{name}: the client gets the baseline's bytes");
            assert_eq!(got.headers.get("content-type"), expected.headers.get("content-type"), "{name}");
        }
        let (report, pairs, _dir) = proxy.finish().await;
        assert_eq!(pairs.len(), 3, "{name}: {:?}", report.counters);
        for p in &pairs {
            assert_eq!(p.baseline.status, Some(200), "{name}");
            assert_eq!(p.baseline.body.as_deref(), Some(&expected.body[..]), "{name}");
            assert_eq!(p.canary.error.as_deref(), kind, "{name}: {:?}", p.canary);
        }
        match name {
            "5xx burst" => assert!(pairs.iter().all(|p| p.canary.status == Some(503)), "{name}"),
            "slow body" => assert!(
                pairs.iter().all(|p| p.canary.status == Some(200) && p.canary.latency_us.is_some_and(|l| l >= 75_000)),
                "{name}: the canary's latency covers its slow body"
            ),
            _ => assert!(pairs.iter().all(|p| p.canary.status.is_none()), "{name}"),
        }
        assert_eq!(report.counters["seen"], 3);
        assert_eq!(report.counters["recorded"], 3);
        assert_eq!(report.counters["mirrored"], 3);
        while base.try_next_request().await.is_some() {}
    }
}

/// A canary that never answers adds nothing measurable to what the client waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_canary_adds_nothing_to_client_latency() {
    let base = upstream().route("/users/1", doc()).run().await.expect("baseline");
    let healthy = upstream().route("/users/1", doc()).run().await.expect("canary");
    let hanging = upstream().hang().run().await.expect("canary");

    async fn median_latency(proxy: &Capture) -> Duration {
        let mut times = Vec::new();
        for _ in 0..25 {
            let t = Instant::now();
            let got = proxy.get("/users/1").await;
            times.push(t.elapsed());
            assert_eq!(got.status, 200);
        }
        times.sort();
        times[times.len() / 2]
    }
    let with_healthy = capture(&base.url(), &healthy.url(), |_| {}).await;
    let healthy_median = median_latency(&with_healthy).await;
    let with_hanging = capture(&base.url(), &hanging.url(), |c| c.mirror_timeout = Duration::from_secs(1)).await;
    let hanging_median = median_latency(&with_hanging).await;
    assert!(
        hanging_median < healthy_median + Duration::from_millis(50),
        "median with a hanging canary {hanging_median:?}, with a healthy one {healthy_median:?}"
    );
    let (_, pairs, _dir) = with_hanging.finish().await;
    assert_eq!(pairs.len(), 25);
    assert!(pairs.iter().all(|p| p.canary.error.as_deref() == Some(error_kind::TIMEOUT)));
    with_healthy.finish().await;
}

/// The pair on disk is what the services received and returned; the secondary is recorded;
/// mirrored requests carry the marker header and forwarding headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_match_what_the_services_saw() {
    let base = baseline().await;
    let canary = upstream()
        .route("/users/1", json!({"id": 1, "name": "Ada", "new": true}))
        .record_requests()
        .run()
        .await
        .expect("canary");
    let secondary = upstream().route("/users/1", doc()).record_requests().run().await.expect("secondary");
    let sec_url = secondary.url();
    let proxy = capture(&base.url(), &canary.url(), move |c| {
        c.secondary = Some(shadowdiff_capture::config::Target::parse(&sec_url).expect("url"));
    })
    .await;
    let got = proxy
        .send(Method::GET, "/users/1?expand=tags", &[("accept", "application/json"), ("x-trace", "t-1")], Bytes::new())
        .await;
    assert_eq!(got.json(), doc());

    let b = base.next_request().await.expect("baseline saw it");
    let c = canary.next_request().await.expect("canary saw it");
    let s = secondary.next_request().await.expect("secondary saw it");
    assert_eq!(b.uri.to_string(), "/users/1?expand=tags");
    assert_eq!(c.uri.to_string(), "/users/1?expand=tags");
    assert_eq!(b.header("x-shadowdiff-mirror"), None, "the baseline request is the client's");
    assert_eq!(c.header("x-shadowdiff-mirror"), Some("canary"));
    assert_eq!(s.header("x-shadowdiff-mirror"), Some("secondary"));
    for r in [&b, &c, &s] {
        assert_eq!(r.header("x-trace"), Some("t-1"));
        assert_eq!(r.header("x-forwarded-for"), Some("127.0.0.1"));
        assert!(r.header("forwarded").is_some_and(|f| f.starts_with("for=127.0.0.1;proto=http")), "{:?}", r.headers);
    }

    let (report, pairs, dir) = proxy.finish().await;
    assert_eq!(pairs.len(), 1);
    let p = &pairs[0];
    assert_eq!((p.method.as_str(), p.path.as_str(), p.query.as_deref()), ("GET", "/users/1", Some("expand=tags")));
    assert!(p.request_headers.iter().any(|h| h.name == "x-trace" && h.value == "t-1"));
    assert_eq!(p.baseline.body.as_deref(), Some(&got.body[..]));
    let canary_body: Value = serde_json::from_slice(p.canary.body.as_deref().expect("canary body")).expect("json");
    assert_eq!(canary_body["new"], true);
    assert_eq!(p.secondary.status, Some(200));
    assert_eq!(p.secondary.body.as_deref(), Some(&got.body[..]));
    for side in [&p.baseline, &p.canary, &p.secondary] {
        assert!(side.ttfb_us.is_some() && side.latency_us >= side.ttfb_us, "{side:?}");
        assert!(side.header("x-request-id").is_some());
        assert_eq!(side.error, None);
    }
    assert!(p.captured_at <= chrono::Utc::now());
    assert_eq!(report.counters["recorded"], 1);

    let files = shadowdiff_format::resolve_inputs(&[dir.path().to_str().expect("utf-8")]).expect("files");
    let info = PairFile::open(&files[0]).expect("valid file").info;
    assert_eq!(info.config["canary"], canary.url());
    assert_eq!(info.config["secondary"], secondary.url());
    assert_eq!(info.counters.get("seen"), Some(&1));
    assert_eq!(info.counters.get("recorded"), Some(&1));
}

/// Secrets are redacted before the writer; the keyed hash gives the same token on both sides;
/// upstreams still get the real values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_reaches_disk_and_keyed_tokens_match_across_sides() {
    let session = json!({"user": "ada", "session": "s3ss10n-secret", "card": {"number": "4111-1111"}});
    let base = upstream().route("/login", session.clone()).record_requests().run().await.expect("baseline");
    let canary = upstream().route("/login", session.clone()).record_requests().run().await.expect("canary");
    let key = HashKey::new(b"a-test-key-of-enough-bytes".to_vec()).expect("key");
    let rules = RedactRules {
        headers: vec!["x-session".into()],
        query_params: vec!["token".into()],
        json_paths: vec!["/session".into(), "/card/number".into(), "/password".into()],
        key: Some(key.clone()),
        ..RedactRules::default()
    };
    let proxy = capture(&base.url(), &canary.url(), |c| {
        c.redact = rules.clone();
        c.mirror_methods.push(Method::POST);
    })
    .await;
    let got = proxy
        .send(
            Method::POST,
            "/login?token=tok-123&page=2",
            &[
                ("authorization", "Bearer bearer-secret"),
                ("x-session", "xs-secret"),
                ("content-type", "application/json"),
            ],
            Bytes::from_static(br#"{"user":"ada","password":"pw-secret"}"#),
        )
        .await;
    assert_eq!(got.json(), session, "the client gets the real values");
    let c = canary.next_request().await.expect("canary saw it");
    assert_eq!(c.header("authorization"), Some("Bearer bearer-secret"), "upstreams get the real values");
    assert_eq!(c.json().expect("json")["password"], "pw-secret");

    let (_, pairs, _dir) = proxy.finish().await;
    let p = &pairs[0];
    let redactor = shadowdiff_capture::redact::Redactor::new(&rules);
    let everything = format!("{p:?}");
    for secret in ["bearer-secret", "xs-secret", "tok-123", "pw-secret", "s3ss10n-secret", "4111-1111"] {
        assert!(!everything.contains(secret), "{secret} reached the pair");
    }
    let header = |name: &str| p.request_headers.iter().find(|h| h.name == name).map(|h| h.value_lossy().into_owned());
    assert_eq!(header("authorization"), Some(redactor.token(b"Bearer bearer-secret")));
    assert_eq!(p.query.as_deref(), Some(format!("token={}&page=2", redactor.token(b"tok-123")).as_str()));
    let body = |b: &Option<Bytes>| -> Value { serde_json::from_slice(b.as_deref().expect("body")).expect("json") };
    assert_eq!(body(&p.request_body)["password"], redactor.token(b"pw-secret"));
    let (bb, cb) = (body(&p.baseline.body), body(&p.canary.body));
    assert_eq!(bb["session"], redactor.token(b"s3ss10n-secret"));
    assert_eq!(bb["session"], cb["session"], "equal secrets, equal tokens, on both sides");
    assert_eq!(bb["card"]["number"], cb["card"]["number"]);
    assert_eq!(bb["user"], "ada", "everything else untouched");
}

/// Path patterns, consistent sampling and the default mirrored methods, verified on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_filters_and_method_defaults_on_disk() {
    let base = upstream().record_requests().run().await.expect("baseline");
    let canary = upstream().record_requests().run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |c| {
        c.include = vec!["/api/**".into()];
        c.exclude = vec!["/api/internal/*".into()];
        c.sample_rate = 0.5;
        c.sample_key = Some(shadowdiff_capture::config::SampleKey::Header(http::HeaderName::from_static("x-user")));
    })
    .await;
    proxy.get("/health").await;
    proxy.get("/api/internal/stats").await;
    for user in 0..30 {
        let u = format!("user-{user}");
        for _ in 0..2 {
            proxy.send(Method::GET, &format!("/api/products/{user}"), &[("x-user", &u)], Bytes::new()).await;
        }
    }
    // POSTs: captured for sampled users, never mirrored.
    for user in 0..30 {
        let u = format!("user-{user}");
        let headers = [("x-user", u.as_str()), ("content-type", "application/json")];
        proxy.send(Method::POST, "/api/orders", &headers, Bytes::from_static(b"{\"sku\":\"A-1\",\"qty\":1}")).await;
    }
    let (report, pairs, _dir) = proxy.finish().await;
    let c = &report.counters;
    assert_eq!(c["seen"], 2 + 60 + 30);
    assert_eq!(c["skipped.path"], 2);
    assert_eq!(c["seen"], c["recorded"] + c["dropped"] + c["skipped"], "{c:?}");
    assert!(pairs.iter().all(|p| p.path.starts_with("/api/") && !p.path.starts_with("/api/internal")));

    let mut by_user: BTreeMap<String, usize> = BTreeMap::new();
    for p in pairs.iter().filter(|p| p.method == "GET") {
        let u = p
            .request_headers
            .iter()
            .find(|h| h.name == "x-user")
            .map(|h| h.value_lossy().into_owned())
            .expect("x-user");
        *by_user.entry(u).or_default() += 1;
    }
    assert!(by_user.values().all(|n| *n == 2), "a user's requests are all kept or all skipped: {by_user:?}");
    assert!((5..=25).contains(&by_user.len()), "about half of 30 users sampled: {}", by_user.len());

    let posts: Vec<_> = pairs.iter().filter(|p| p.method == "POST").collect();
    assert_eq!(posts.len(), by_user.len(), "the POSTs of sampled users are captured");
    assert!(
        posts.iter().all(|p| p.canary.error.as_deref() == Some(error_kind::SKIPPED) && p.baseline.status.is_some())
    );
    assert_eq!(c["mirror_skipped.method"], posts.len() as u64);
    let mut canary_methods = Vec::new();
    while let Some(r) = canary.try_next_request().await {
        canary_methods.push(r.method);
    }
    assert!(canary_methods.iter().all(|m| m == Method::GET), "the canary never sees a POST");
    assert_eq!(canary_methods.len(), pairs.len() - posts.len());
}

/// The baseline is down: the client gets a 502 that says so, and the pair is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_baseline_gives_a_502_and_is_recorded() {
    let canary = upstream().route("/users/1", doc()).run().await.expect("canary");
    let down = format!("http://{}", closed_port().await);
    let proxy = capture(&down, &canary.url(), |_| {}).await;
    let got = proxy.get("/users/1").await;
    assert_eq!(got.status, StatusCode::BAD_GATEWAY);
    let text = String::from_utf8_lossy(&got.body);
    assert!(text.contains("baseline") && text.contains(&down) && text.contains("connect"), "{text}");
    let (_, pairs, _dir) = proxy.finish().await;
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].baseline.error.as_deref(), Some(error_kind::CONNECT));
    assert_eq!(pairs[0].baseline.status, None);
    assert_eq!(pairs[0].canary.status, Some(200), "the canary is still mirrored");
}

/// Bodies past the caps: a large request goes to the baseline whole, unmirrored, recorded as
/// skipped; a large response reaches the client whole and is recorded truncated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_caps() {
    let big = json!({"items": (0..200).map(|i| format!("item-{i:04}")).collect::<Vec<_>>()});
    let base = upstream().route("/upload", big.clone()).record_requests().run().await.expect("baseline");
    let canary = upstream().route("/upload", big.clone()).record_requests().run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |c| {
        c.max_request_body = 1024;
        c.max_response_body = 100;
        c.mirror_methods.push(Method::POST);
    })
    .await;
    let upload = Bytes::from(vec![b'x'; 10_000]);
    let got =
        proxy.send(Method::POST, "/upload", &[("content-type", "application/octet-stream")], upload.clone()).await;
    assert_eq!(got.json(), big, "the client gets the whole response");
    assert_eq!(base.next_request().await.expect("baseline saw it").body, upload, "the baseline gets the whole upload");
    let small = proxy.send(Method::POST, "/upload", &[], Bytes::from_static(b"small")).await;
    assert_eq!(small.json(), big);
    let c = canary.next_request().await.expect("the small one is mirrored");
    assert_eq!(c.body, "small", "only the small body reached the canary");

    let (report, pairs, _dir) = proxy.finish().await;
    let (large, small) = (&pairs[0], &pairs[1]);
    assert_eq!(large.request_body.as_ref().map(Bytes::len), Some(1024));
    assert!(large.request_body_truncated);
    assert_eq!(large.canary.error.as_deref(), Some(error_kind::SKIPPED));
    assert_eq!(report.counters["mirror_skipped.body_too_large"], 1);
    for p in [large, small] {
        assert_eq!(p.baseline.body.as_ref().map(Bytes::len), Some(100));
        assert!(p.baseline.body_truncated);
    }
    assert!(small.canary.body_truncated && small.canary.body.as_ref().map(Bytes::len) == Some(100));
}

/// Past the in-flight bound, mirrors are skipped and recorded as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_bound_skips_mirrors() {
    let base = upstream().route("/users/1", doc()).run().await.expect("baseline");
    let canary = upstream().hang().run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |c| {
        c.max_in_flight_mirrors = 1;
        c.mirror_timeout = Duration::from_millis(800);
    })
    .await;
    for _ in 0..5 {
        assert_eq!(proxy.get("/users/1").await.status, 200);
    }
    let (report, pairs, _dir) = proxy.finish().await;
    let kinds: Vec<_> = pairs.iter().map(|p| p.canary.error.clone().unwrap_or_default()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == error_kind::TIMEOUT).count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == error_kind::SKIPPED).count(), 4, "{kinds:?}");
    assert_eq!(report.counters["mirror_skipped.in_flight"], 4);
    assert_eq!(report.counters["mirrored"], 1);
}

/// The admin listener serves Prometheus text and a health check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_healthz() {
    let base = upstream().route("/users/1", doc()).run().await.expect("baseline");
    let canary = upstream().reset().run().await.expect("canary");
    let proxy =
        capture(&base.url(), &canary.url(), |c| c.admin_listen = Some("127.0.0.1:0".parse().expect("addr"))).await;
    for _ in 0..4 {
        proxy.get("/users/1").await;
    }
    let admin = format!("http://{}", proxy.agent.admin_addr().expect("admin listener"));
    let health = direct(&format!("{admin}/healthz")).await;
    assert_eq!((health.status, &health.body[..]), (StatusCode::OK, &b"ok\n"[..]));
    // Pairs complete after the client's response: wait until all four are handed over.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let m = direct(&format!("{admin}/metrics")).await;
        let text = String::from_utf8_lossy(&m.body).into_owned();
        if text.contains("shadowdiff_pairs_writing 4\n") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for line in [
        "shadowdiff_requests_total 4\n",
        "shadowdiff_pairs_mirrored_total 4\n",
        // In the writer's open file: recorded once the file is closed and renamed.
        "shadowdiff_pairs_writing 4\n",
        "shadowdiff_pairs_recorded_total 0\n",
        "shadowdiff_pairs_dropped_total{reason=\"queue_full\"} 0\n",
        "shadowdiff_upstream_errors_total{side=\"canary\",kind=\"reset\"} 4\n",
        "shadowdiff_upstream_latency_seconds_count{side=\"baseline\"} 4\n",
        "shadowdiff_requests_in_flight 0\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert_eq!(direct(&format!("{admin}/nope")).await.status, StatusCode::NOT_FOUND);
    proxy.finish().await;
}

/// Routing ignores the Host header and absolute-form URIs: not an open proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_absolute_uris_cannot_redirect_traffic() {
    let base = baseline().await;
    let canary = upstream().route("/users/1", doc()).run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |_| {}).await;
    let mut s = tokio::net::TcpStream::connect(proxy.agent.addr()).await.expect("connect");
    s.write_all(b"GET http://evil.invalid/users/1 HTTP/1.1\r\nHost: evil.invalid\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"name\":\"Ada\""), "{text}");
    let seen = base.next_request().await.expect("the baseline got it");
    assert_eq!(seen.uri.path(), "/users/1");
    assert_eq!(seen.header("host"), Some(base.addr().to_string().as_str()));
    assert_eq!(seen.header("x-forwarded-host"), Some("evil.invalid"));
    // CONNECT is refused outright.
    let mut s = tokio::net::TcpStream::connect(proxy.agent.addr()).await.expect("connect");
    s.write_all(b"CONNECT evil.invalid:443 HTTP/1.1\r\nHost: evil.invalid:443\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 405"), "{}", String::from_utf8_lossy(&buf[..n]));
    let (report, _, _dir) = proxy.finish().await;
    assert_eq!(report.counters["skipped.not_proxied"], 1);
}

/// Upgrade requests go to the baseline only, and are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_go_to_the_baseline_only() {
    let base = baseline().await;
    let canary = upstream().record_requests().run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |_| {}).await;
    let got =
        proxy.send(Method::GET, "/users/1", &[("connection", "upgrade"), ("upgrade", "websocket")], Bytes::new()).await;
    assert_eq!(got.json(), doc(), "the fixture does not upgrade, so its answer passes through");
    let seen = base.next_request().await.expect("baseline");
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    let (report, pairs, _dir) = proxy.finish().await;
    assert!(pairs.is_empty());
    assert_eq!(report.counters["upgrades"], 1);
    assert!(canary.try_next_request().await.is_none(), "never mirrored");
}

/// HTTP/2 from clients: h2c in clear text, and h2 over TLS with ALPN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// Reads the whole answer of the agent under test.
#[allow(clippy::disallowed_methods)]
async fn http2_and_tls_listeners() {
    let base = baseline().await;
    let canary = upstream().route("/users/1", doc()).run().await.expect("canary");

    // h2c, prior knowledge.
    let proxy = capture(&base.url(), &canary.url(), |_| {}).await;
    let h2c: TestClient = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let resp = h2c.get(proxy.url("/users/1").parse().expect("uri")).await.expect("h2c answer");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.into_body().collect().await.expect("body").to_bytes(), serde_json::to_vec(&doc()).expect("json"));
    let (_, pairs, _dir) = proxy.finish().await;
    assert_eq!(pairs.len(), 1);

    // TLS with a self-signed certificate.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let tls_dir = tempfile::tempdir().expect("tempdir");
    let (cert_path, key_path) = (tls_dir.path().join("cert.pem"), tls_dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write");
    let tls = shadowdiff_capture::config::TlsFiles { cert: cert_path.clone(), key: key_path };
    let proxy = capture(&base.url(), &canary.url(), |c| c.tls = Some(tls)).await;
    let roots = shadowdiff_capture::upstream::client_tls(Some(&cert_path)).expect("client tls");
    let roots = (*roots).clone();
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(roots).https_only().enable_http2().build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).http2_only(true).build(https);
    let url = format!("https://localhost:{}/users/1", proxy.agent.addr().port());
    let resp = client.get(url.parse().expect("uri")).await.expect("https answer");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let seen = base.next_request().await.expect("baseline");
    let seen = if seen.header("x-forwarded-proto") == Some("https") {
        seen
    } else {
        base.next_request().await.expect("baseline")
    };
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    let (_, pairs, _dir) = proxy.finish().await;
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].baseline.status, Some(200));
}

/// Many concurrent clients: every pair is accounted for, and the counters add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_add_up_under_concurrency() {
    let base = upstream().route("/users/1", doc()).run().await.expect("baseline");
    let canary = upstream().route("/users/1", doc()).fault(FaultKind::Reset, 0.2).run().await.expect("canary");
    let proxy = Arc::new(capture(&base.url(), &canary.url(), |c| c.recorder.queue = 64).await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let p = Arc::clone(&proxy);
        tasks.spawn(async move {
            let mut ok = 0u64;
            for _ in 0..25 {
                if p.get("/users/1").await.status == 200 {
                    ok += 1;
                }
            }
            ok
        });
    }
    let mut served = 0;
    while let Some(n) = tasks.join_next().await {
        served += n.expect("task");
    }
    let proxy = Arc::into_inner(proxy).expect("sole owner");
    let (report, pairs, _dir) = proxy.finish().await;
    let c = &report.counters;
    assert_eq!(served, 400);
    assert_eq!(c["seen"], 400);
    assert_eq!(pairs.len() as u64, c["recorded"]);
    assert_eq!(c["recorded"] + c["dropped"], served, "{c:?}");
    assert_eq!(report.writer.rows_committed, c["recorded"]);
    assert!(pairs.iter().any(|p| p.canary.error.as_deref() == Some(error_kind::RESET)));
}

/// A real upgrade: the baseline answers 101 and the two connections are joined byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_101_upgrade_is_joined_to_the_baseline() {
    // A minimal upstream that switches protocols and then echoes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let up = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        read_head(&mut s).await;
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let canary = upstream().record_requests().run().await.expect("canary");
    let proxy = capture(&format!("http://{up}"), &canary.url(), |_| {}).await;
    let mut s = tokio::net::TcpStream::connect(proxy.agent.addr()).await.expect("connect");
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n").await.expect("write");
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await.expect("echo in time").expect("read");
    assert_eq!(&buf, b"ping");
    drop(s);
    let (report, pairs, _dir) = proxy.finish().await;
    assert!(pairs.is_empty());
    assert_eq!(report.counters["upgrades"], 1);
    assert!(canary.try_next_request().await.is_none());
}

async fn read_head(s: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.expect("read") == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// HEAD and 204 answers have no body to stream; their pairs are recorded all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodiless_answers_are_recorded() {
    let base =
        upstream().route("/users/1", doc()).route_with_status("/gone", 204, Value::Null).run().await.expect("baseline");
    let canary = upstream().route("/users/1", doc()).run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |_| {}).await;
    let head = proxy.send(Method::HEAD, "/users/1", &[], Bytes::new()).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let _ = proxy.get("/gone").await;
    let (report, pairs, _dir) = proxy.finish().await;
    assert_eq!(pairs.len(), 2, "{:?}", report.counters);
    assert_eq!(pairs[0].method, "HEAD");
    assert_eq!(pairs[0].canary.status, Some(200));
    assert_eq!(report.counters["dropped"], 0);
}

/// `--redact-json` reaches inside gzip, x-gzip, deflate, br, zstd and stacked bodies, on every
/// side and in a gzip request body: what is stored decodes (by its unchanged header) to the
/// redacted document, and neither the secret nor any of the upstream's encoded bodies is stored.
/// A compressed body that cannot be decoded is withheld and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_inside_compressed_bodies_are_redacted() {
    use shadowdiff_format::encoding::decode;
    const SECRET: &str = "tok-5ecret-in-a-compressed-body";
    let codings = ["gzip", "x-gzip", "deflate", "br", "zstd", "gzip, br"];
    let doc = json!({"user": "ada", "token": SECRET, "padding": "a".repeat(2000)});
    let routes = |mut b: shadowdiff_fixtures::service::UpstreamBuilder| {
        for (i, c) in codings.iter().enumerate() {
            b = b.route_encoded(&format!("/c/{i}"), doc.clone(), c);
        }
        b.route("/plain", doc.clone())
    };
    let base = routes(upstream()).run().await.expect("baseline");
    let canary = routes(upstream()).record_requests().run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |c| {
        c.redact.json_paths = vec!["/token".into()];
        c.mirror_methods.push(Method::POST);
    })
    .await;
    for i in 0..codings.len() {
        let got = proxy.get(&format!("/c/{i}")).await;
        let ce = got.headers.get("content-encoding").and_then(|v| v.to_str().ok()).expect("encoded").to_owned();
        let content = decode(&got.body, Some(&ce), 1 << 20).expect("the client gets a valid body");
        assert!(String::from_utf8_lossy(&content.bytes).contains(SECRET), "the client gets the real value");
    }
    // A gzip request body carries the secret too.
    let request = serde_json::to_vec(&json!({"token": SECRET, "q": 1})).expect("json");
    let gz_request = shadowdiff_format::encoding::encode(&request, "gzip").expect("gzip");
    let got = proxy
        .send(
            Method::POST,
            "/plain",
            &[("content-type", "application/json"), ("content-encoding", "gzip")],
            Bytes::from(gz_request.clone()),
        )
        .await;
    assert_eq!(got.status, 200);
    for _ in 0..codings.len() {
        canary.next_request().await.expect("mirrored");
    }
    assert_eq!(canary.next_request().await.expect("mirrored").body, gz_request, "upstreams get the real body");

    let (report, pairs, dir) = proxy.finish().await;
    assert_eq!(pairs.len(), codings.len() + 1);
    assert_eq!(report.counters["redaction_withheld"], 0);
    // What each upstream sent, encoded: none of it may be stored.
    let originals: Vec<Vec<u8>> = codings
        .iter()
        .map(|c| shadowdiff_format::encoding::encode(&serde_json::to_vec(&doc).expect("json"), c).expect("encodes"))
        .collect();
    for p in &pairs {
        let stored: Vec<(&[shadowdiff_format::Header], &[u8])> = [
            (&p.request_headers[..], p.request_body.as_deref()),
            (&p.baseline.headers[..], p.baseline.body.as_deref()),
            (&p.canary.headers[..], p.canary.body.as_deref()),
        ]
        .into_iter()
        .filter_map(|(h, b)| b.map(|b| (h, b)))
        .collect();
        assert!(stored.len() >= 2, "{}: bodies are kept", p.path);
        for (headers, body) in stored {
            let ce = headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-encoding")).map(|h| h.value_lossy());
            let content = decode(body, ce.as_deref(), 1 << 20).expect("the stored body decodes by its header");
            let v: Value = serde_json::from_slice(&content.bytes).expect("json");
            assert_eq!(v["token"], "REDACTED", "{} ({ce:?})", p.path);
            assert!(!contains(body, SECRET.as_bytes()) && !contains(&content.bytes, SECRET.as_bytes()));
            for original in &originals {
                assert!(!contains(body, &original[..original.len().min(64)]), "{}: an upstream's bytes", p.path);
            }
        }
    }
    for file in walk(dir.path()) {
        assert!(!contains(&std::fs::read(&file).expect("read"), SECRET.as_bytes()), "{}", file.display());
    }

    // A body labelled gzip that is not: withheld, counted, and the client still gets it as sent.
    let liar = upstream().route_encoded("/liar", doc.clone(), "gzip").run().await.expect("baseline");
    let lying = upstream().route_encoded("/liar", doc.clone(), "br").run().await.expect("canary");
    let proxy = capture(&liar.url(), &lying.url(), |c| c.redact.json_paths = vec!["/token".into()]).await;
    assert_eq!(proxy.get("/liar").await.status, 200);
    let (report, pairs, _dir) = proxy.finish().await;
    assert_eq!(report.counters["redaction_withheld"], 0, "both sides decode by their own header");
    assert!(pairs[0].canary.body.is_some());
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

/// An event stream that never ends: the client keeps receiving it past the duration cap, both
/// recorded sides are cut there (truncated, no error, no latency), and the counters add up. A
/// stream that ends within the cap is recorded whole; a canary whose open-ended stream goes
/// quiet is recorded truncated, while a body of announced length that stalls is a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_streams_are_served_whole_and_recorded_cut() {
    use shadowdiff_fixtures::service::EventStream;
    let tick = Duration::from_millis(40);
    let first = vec![json!({"price": 1}), json!({"price": 2})];
    let build = || {
        upstream()
            .stream("/feed", EventStream::sse(first.clone(), tick).endless())
            .stream("/short", EventStream::ndjson(first.clone(), tick))
            .stream("/quiet", EventStream::sse(first.clone(), tick))
    };
    let base = build().run().await.expect("baseline");
    // The canary's /quiet stream pauses longer than the mirror timeout before its first event.
    let canary = upstream()
        .stream("/feed", EventStream::sse(first.clone(), tick).endless())
        .stream("/short", EventStream::ndjson(first.clone(), tick))
        .stream("/quiet", EventStream::sse(first.clone(), Duration::from_secs(2)))
        .run()
        .await
        .expect("canary");
    let stall = upstream().route("/stall", doc()).slow_body(2, Duration::from_secs(2)).run().await.expect("canary");
    let cap = Duration::from_millis(500);
    let proxy = capture(&base.url(), &canary.url(), |c| c.max_body_duration = cap).await;

    // Read the endless stream as a client would, well past the cap.
    let resp = proxy.client.get(proxy.url("/feed").parse().expect("uri")).await.expect("the proxy answers");
    assert_eq!(resp.headers().get("content-type").map(|v| v.as_bytes()), Some(&b"text/event-stream"[..]));
    let mut body = resp.into_body();
    let mut received = Vec::new();
    let started = Instant::now();
    while started.elapsed() < cap * 3 {
        let frame = body.frame().await.expect("the stream goes on").expect("no error");
        received.extend_from_slice(&frame.into_data().expect("data"));
    }
    let text = String::from_utf8(received).expect("utf-8");
    let events = text.matches("\n\n").count();
    assert!(text.starts_with("id: 1\nevent: tick\ndata: {\"price\":1}\n\n"), "{text}");
    // The pair of /feed is on its way to the writer while the client still reads.
    let recorded_while_streaming = tokio::time::timeout(Duration::from_secs(5), async {
        let c = proxy.agent.counters();
        while c.recorded.load(Ordering::Relaxed) + c.writing.load(Ordering::Relaxed) < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(recorded_while_streaming.is_ok(), "the cut pair is recorded before the stream ends");
    let more = body.frame().await.expect("still streaming after the cut").expect("no error");
    assert!(!more.into_data().expect("data").is_empty());
    drop(body);

    let short = proxy.get("/short").await;
    assert_eq!(short.body, "{\"price\":1}\n{\"price\":2}\n");
    assert_eq!(proxy.get("/quiet").await.status, 200);
    let (report, pairs, _dir) = proxy.finish().await;

    let feed = pairs.iter().find(|p| p.path == "/feed").expect("/feed recorded");
    for (side, s) in [("baseline", &feed.baseline), ("canary", &feed.canary)] {
        assert_eq!(s.status, Some(200), "{side}");
        assert!(s.body_truncated, "{side}: cut at the duration cap");
        assert_eq!(s.error, None, "{side}: a stream is not an error");
        assert_eq!(s.latency_us, None, "{side}: it had not ended");
        assert!(s.ttfb_us.is_some(), "{side}");
        let kept = String::from_utf8_lossy(s.body.as_deref().expect("body")).into_owned();
        assert!(kept.starts_with("id: 1\n") && kept.matches("\n\n").count() < events, "{side}: {kept}");
    }
    let short = pairs.iter().find(|p| p.path == "/short").expect("/short recorded");
    for s in [&short.baseline, &short.canary] {
        assert_eq!(s.body.as_deref(), Some(&b"{\"price\":1}\n{\"price\":2}\n"[..]));
        assert!(!s.body_truncated && s.error.is_none() && s.latency_us.is_some());
    }
    let quiet = pairs.iter().find(|p| p.path == "/quiet").expect("/quiet recorded");
    assert!(!quiet.baseline.body_truncated && quiet.baseline.latency_us.is_some());
    assert_eq!(quiet.canary.status, Some(200));
    assert!(quiet.canary.body_truncated, "an open-ended stream that goes quiet is cut");
    assert_eq!(quiet.canary.error, None);
    let c = &report.counters;
    assert_eq!(c["streams_cut"], 3, "{c:?}");
    assert_eq!((c["seen"], c["recorded"], c["dropped"], c["skipped"]), (3, 3, 0, 0), "{c:?}");

    // A body of announced length that stalls past the mirror timeout is still a timeout.
    let proxy = capture(&base.url(), &stall.url(), |_| {}).await;
    let _ = proxy.get("/stall").await;
    let (report, pairs, _dir) = proxy.finish().await;
    assert_eq!(pairs[0].canary.error.as_deref(), Some(error_kind::TIMEOUT), "{:?}", pairs[0].canary);
    assert_eq!(report.counters["streams_cut"], 0);
}

/// Read-only POSTs on listed paths reach the canary (GraphQL queries, JSON-RPC calls of listed
/// methods); mutations, unlisted methods, mixed batches, unlisted persisted queries and bodies
/// that cannot be read do not, and are counted. Nothing is mirrored this way unless configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_posts_are_mirrored_only_when_configured_and_provably_reads() {
    let answer = json!({"data": {"ok": true}});
    let base = upstream().route("/graphql", answer.clone()).route("/rpc", answer.clone()).run().await.expect("base");
    let canary = upstream()
        .route("/graphql", answer.clone())
        .route("/rpc", answer.clone())
        .record_requests()
        .run()
        .await
        .expect("canary");
    let json_ct = [("content-type", "application/json")];
    let reads = [
        ("/graphql", json!({"query": "query GetUser { user(id: 1) { name } }"}).to_string()),
        ("/graphql", json!({"query": "query A { a } mutation B { b }", "operationName": "A"}).to_string()),
        (
            "/graphql",
            json!({"operationName": "Listed", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "f00"}}})
                .to_string(),
        ),
        ("/rpc", json!({"jsonrpc": "2.0", "method": "eth_call", "params": [], "id": 1}).to_string()),
        (
            "/rpc",
            json!([{"jsonrpc": "2.0", "method": "eth_call", "id": 1}, {"method": "eth_getBalance", "id": 2}])
                .to_string(),
        ),
    ];
    let writes = [
        ("/graphql", json!({"query": "mutation { deleteUser(id: 1) }"}).to_string()),
        ("/graphql", json!({"query": "query A { a } mutation B { b }", "operationName": "B"}).to_string()),
        ("/graphql", json!({"query": "query A { a } mutation B { b }"}).to_string()),
        ("/graphql", json!({"query": "subscription { ticks }"}).to_string()),
        (
            "/graphql",
            json!({"operationName": "Unknown", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "bad"}}})
                .to_string(),
        ),
        ("/graphql", "not json".to_owned()),
        ("/rpc", json!({"jsonrpc": "2.0", "method": "eth_sendTransaction", "id": 1}).to_string()),
        ("/rpc", json!([{"method": "eth_call", "id": 1}, {"method": "eth_sendTransaction", "id": 2}]).to_string()),
    ];

    // Off by default: no POST reaches the canary.
    let proxy = capture(&base.url(), &canary.url(), |_| {}).await;
    for (path, body) in &reads {
        assert_eq!(proxy.send(Method::POST, path, &json_ct, Bytes::from(body.clone())).await.json(), answer);
    }
    let (report, _, _dir) = proxy.finish().await;
    assert_eq!(canary.requests_seen(), 0);
    assert_eq!(report.counters["mirror_skipped.method"], reads.len() as u64);

    let proxy = capture(&base.url(), &canary.url(), |c| {
        c.read_only_posts.graphql_paths = vec!["/graphql".into()];
        c.read_only_posts.graphql_persisted = vec!["Listed".into()];
        c.read_only_posts.jsonrpc_paths = vec!["/rpc".into()];
        c.read_only_posts.jsonrpc_methods = vec!["eth_call".into(), "eth_getBalance".into()];
    })
    .await;
    for (path, body) in reads.iter().chain(&writes) {
        assert_eq!(proxy.send(Method::POST, path, &json_ct, Bytes::from(body.clone())).await.json(), answer);
    }
    let (report, pairs, _dir) = proxy.finish().await;
    let mut seen = Vec::new();
    while let Some(r) = canary.try_next_request().await {
        seen.push(String::from_utf8(r.body.to_vec()).expect("utf-8"));
    }
    let expected: Vec<String> = reads.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(seen, expected, "exactly the reads reached the canary");
    let c = &report.counters;
    assert_eq!((c["mirrored"], c["mirror_skipped.not_read_only"]), (reads.len() as u64, writes.len() as u64));
    let skipped = pairs.iter().filter(|p| p.canary.error.as_deref() == Some(error_kind::SKIPPED)).count();
    assert_eq!(skipped, writes.len());
}

/// A client that leaves a stream early (as browsers leave event streams) ends its recording: the
/// pair is recorded cut with what the client received, not dropped. A client that leaves a body
/// of announced length halfway is still a drop: that response never reached it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_a_stream_ends_its_recording() {
    use shadowdiff_fixtures::service::EventStream;
    let stream = EventStream::sse(vec![json!({"n": 1})], Duration::from_millis(30)).endless();
    let base = upstream()
        .stream("/feed", stream.clone())
        .route("/slow", doc())
        .slow_body(4, Duration::from_millis(300))
        .run()
        .await
        .expect("baseline");
    let canary = upstream().stream("/feed", stream).run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |c| c.max_body_duration = Duration::from_secs(2)).await;
    for path in ["/feed", "/slow"] {
        let resp = proxy.client.get(proxy.url(path).parse().expect("uri")).await.expect("the proxy answers");
        let mut body = resp.into_body();
        let first = body.frame().await.expect("a first piece").expect("no error");
        assert!(!first.into_data().expect("data").is_empty());
        drop(body);
    }
    let (report, pairs, _dir) = proxy.finish().await;
    let c = &report.counters;
    assert_eq!((c["seen"], c["recorded"], c["dropped.client_closed"]), (2, 1, 1), "{c:?}");
    let feed = &pairs[0];
    assert_eq!(feed.path, "/feed");
    assert!(feed.baseline.body_truncated && feed.baseline.error.is_none() && feed.baseline.latency_us.is_none());
    assert!(feed.baseline.body.as_ref().is_some_and(|b| b.starts_with(b"id: 1\n")), "{:?}", feed.baseline.body);
    assert!(feed.canary.body_truncated && feed.canary.error.is_none(), "the canary is cut at the duration cap");
}

/// Shutting down while a client still reads an endless stream: the recordings (baseline and
/// mirror) end when draining starts, so the pair is written, not dropped; the client's stream
/// goes on until the drain deadline closes its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_ends_the_recordings_of_streams_still_open() {
    use shadowdiff_fixtures::service::EventStream;
    let stream = EventStream::sse(vec![json!({"n": 1})], Duration::from_millis(30)).endless();
    let base = upstream().stream("/feed", stream.clone()).run().await.expect("baseline");
    let canary = upstream().stream("/feed", stream).run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |c| {
        c.max_body_duration = Duration::from_secs(600);
        c.drain_timeout = Duration::from_secs(1);
    })
    .await;
    let resp = proxy.client.get(proxy.url("/feed").parse().expect("uri")).await.expect("the proxy answers");
    let mut body = resp.into_body();
    body.frame().await.expect("a first event").expect("no error");
    let reader = tokio::spawn(async move {
        let mut events = 0;
        while let Some(Ok(_)) = body.frame().await {
            events += 1;
        }
        events
    });
    let (report, pairs, _dir) = proxy.finish().await;
    let c = &report.counters;
    assert_eq!((c["seen"], c["recorded"], c["dropped"]), (1, 1, 0), "{c:?}");
    assert_eq!(c["streams_cut"], 2);
    for s in [&pairs[0].baseline, &pairs[0].canary] {
        assert!(s.body_truncated && s.error.is_none() && s.latency_us.is_none(), "{s:?}");
    }
    assert!(reader.await.expect("reader") > 0, "the client kept receiving events while the agent drained");
}

/// `--redact-json` applies to each event of an event stream and each line of NDJSON, on a stream
/// cut by the duration cap too: the client gets the real values, the files do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_stream_is_redacted() {
    use shadowdiff_fixtures::service::EventStream;
    const SECRET: &str = "stream-5ecret";
    let events: Vec<Value> = (0..3).map(|i| json!({"n": i, "token": SECRET})).collect();
    let build = || {
        upstream()
            .stream("/sse", EventStream::sse(events.clone(), Duration::from_millis(20)).endless())
            .stream("/nd", EventStream::ndjson(events.clone(), Duration::from_millis(5)))
    };
    let base = build().run().await.expect("baseline");
    let canary = build().run().await.expect("canary");
    let proxy = capture(&base.url(), &canary.url(), |c| {
        c.redact.json_paths = vec!["/token".into()];
        c.max_body_duration = Duration::from_millis(400);
    })
    .await;
    let resp = proxy.client.get(proxy.url("/sse").parse().expect("uri")).await.expect("answer");
    let mut body = resp.into_body();
    let mut text = String::new();
    while text.matches("\n\n").count() < 25 {
        let frame = body.frame().await.expect("streaming").expect("no error");
        text.push_str(std::str::from_utf8(&frame.into_data().expect("data")).expect("utf-8"));
    }
    drop(body);
    assert_eq!(text.matches(SECRET).count(), 3, "the client gets the real values");
    assert_eq!(proxy.get("/nd").await.body.windows(SECRET.len()).filter(|w| *w == SECRET.as_bytes()).count(), 3);
    let (report, pairs, _dir) = proxy.finish().await;
    assert_eq!(report.counters["redaction_withheld"], 0);
    for p in &pairs {
        for s in [&p.baseline, &p.canary] {
            let stored = String::from_utf8(s.body.as_deref().expect("body").to_vec()).expect("utf-8");
            assert!(!stored.contains(SECRET), "{}: {stored}", p.path);
            let redacted = stored.matches("\"token\":\"REDACTED\"").count();
            if p.path == "/nd" && s.body_truncated {
                // The canary's mirror of /nd can still be streaming when the agent drains right
                // after the client's answer, and draining cuts a stream where it is (recorded
                // truncated): fewer events, each redacted.
                assert!((1..=3).contains(&redacted), "{}: {stored}", p.path);
            } else {
                assert_eq!(redacted, 3, "{}: {stored} ({s:?})", p.path);
            }
        }
    }
}
