//! `shadowdiff serve`: the live gate. A long-running HTTP server over a pairs location that
//! judges it on request with anytime-valid decisions (it is watched again and again), for Argo
//! Rollouts' web metric provider (`GET /v1/verdict`), Flagger's webhooks (`POST /v1/flagger/…`)
//! and Prometheus (`GET /metrics`). See docs/serve.md.

mod gate;
mod metrics;

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use chrono::{SubsecRound as _, Utc};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use shadowdiff_analyze::policy::Policy;
use shadowdiff_capture::config::{Flag, parse_duration};
use shadowdiff_capture::server::Peer;
use shadowdiff_capture::signal::stop_signal;
use shadowdiff_format::verdict::Status;
use tokio::sync::watch;

use self::gate::{Failure, Gate, Key};
use super::analyze::{parse_time, rfc3339};
use crate::exit::Exit;

/// The largest webhook body read.
const MAX_BODY: usize = 64 * 1024;

/// How long open connections get to finish after SIGTERM/SIGINT.
const GRACE: Duration = Duration::from_secs(10);

/// Serve the live gate over a pairs location: verdicts on request, Flagger webhooks, /metrics.
///
/// GET /v1/verdict?since=&until=&window=&policy= answers verdict.json's schema; POST
/// /v1/flagger/{confirm-rollout,pre-rollout,rollout,confirm-promotion} answers 200 to advance
/// and 412 to hold; GET /metrics exposes the latest analysis; GET /healthz. Every judgement is
/// anytime-valid (the policy's `sequential = true`). Stops on SIGTERM or SIGINT. See
/// docs/serve.md.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pairs location: a directory (searched recursively, as capture writes it), a file, a
    /// glob, or an object-store prefix (`s3://BUCKET/PREFIX`, `gs://…`, `az://…`; credentials
    /// from the environment as for capture). A bucket is listed on every request and only new
    /// objects are downloaded.
    #[arg(value_name = "PAIRS")]
    pairs: String,
    /// Listen here (`127.0.0.1:8080`, `0.0.0.0:8080`; port 0 picks one, printed on stdout).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// The server's policy (TOML; see docs/policy.md). Built-in defaults without it. Read once
    /// at start; judged with `sequential = true` whatever it says.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Let requests choose a policy: the `policy` parameter names a file inside this directory.
    /// Without it the parameter is refused.
    #[arg(long, value_name = "DIR")]
    policy_dir: Option<PathBuf>,
    /// What a webhook lets through: `pass` (only a passing verdict advances; warn, inconclusive
    /// and fail hold) or `warn` (pass or warn advance).
    #[arg(long, value_enum, value_name = "LEVEL", default_value = "pass")]
    advance_on: AdvanceOn,
    /// How often the default analysis (no parameters; what /metrics shows) is brought up to
    /// date, and how long an answer for a window relative to now (`since=-2h`) is reused.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = Flag(parse_duration))]
    refresh: Duration,
    /// Scratch directory for the analyses' working files (removed after each analysis).
    /// A new directory under the system's temporary directory by default.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Log level on stderr: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AdvanceOn {
    Pass,
    Warn,
}

/// Removes the default scratch directory when the server stops.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server's settings, resolved.
struct Server {
    gate: Arc<Gate>,
    policy_dir: Option<PathBuf>,
    advance_on: AdvanceOn,
    refresh: Duration,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    super::init_logging(&args.log_level)?;
    let mut policy = match &args.policy {
        Some(path) => Policy::from_file(path)?,
        None => Policy::default(),
    };
    policy.sequential = true;
    if let Some(dir) = &args.policy_dir
        && !dir.is_dir()
    {
        anyhow::bail!("--policy-dir {} is not a directory", dir.display());
    }
    if args.refresh < Duration::from_secs(1) {
        anyhow::bail!("--refresh must be at least 1s");
    }
    let (scratch, _cleanup) = match &args.work_dir {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!("shadowdiff-serve-{}", std::process::id()));
            (d.clone(), Some(RemoveOnDrop(d)))
        }
    };
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot make the scratch directory {}", scratch.display()))?;
    let server = Arc::new(Server {
        gate: Arc::new(Gate::new(vec![args.pairs.clone()], policy, scratch, args.refresh)),
        policy_dir: args.policy_dir,
        advance_on: args.advance_on,
        refresh: args.refresh,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("shadowdiff-serve")
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(server, args.listen, args.pairs))?;
    Ok(Exit::Pass)
}

async fn serve(server: Arc<Server>, listen: SocketAddr, pairs: String) -> anyhow::Result<()> {
    let stop = stop_signal().context("cannot install the SIGTERM/SIGINT handlers")?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("--listen {listen}: cannot listen"))?;
    let addr = listener.local_addr().context("the listener has no address")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}")?;
        stdout.flush()?;
    }
    tracing::info!(listen = %addr, %pairs, "Serving the gate.");
    // The default analysis kept up to date for /metrics, whether or not anyone asks for verdicts.
    let refresher = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(server.refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let _ = server.gate.verdict(Key::default(), None).await;
            }
        })
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        tracing::info!("Stopping: finishing open requests.");
        let _ = stop_tx.send(true);
    });
    let handler = move |req: Request<Incoming>, _peer: Peer| {
        let server = Arc::clone(&server);
        async move { Ok::<_, Infallible>(server.handle(req).await) }
    };
    shadowdiff_capture::server::serve(listener, None, handler, stop_rx, GRACE).await;
    refresher.abort();
    Ok(())
}

/// A JSON answer.
fn json(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `{"error": reason}` with `status`.
fn error(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": reason });
    let mut r = json(status, Bytes::from(body.to_string() + "\n"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    }
    r
}

fn failure(f: &Failure) -> Response<Full<Bytes>> {
    error(f.status, &f.reason)
}

/// The Flagger hooks served under `/v1/flagger/`.
const HOOKS: [&str; 5] = ["confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion"];

/// The parameters /v1/verdict takes (and a webhook's metadata may carry).
const PARAMS: [&str; 4] = ["since", "until", "window", "policy"];

/// What a request asks to have judged, as typed.
#[derive(Debug, Default)]
struct Params {
    since: Option<String>,
    until: Option<String>,
    window: Option<String>,
    policy: Option<String>,
}

impl Params {
    /// From a query string: only the four known names, each at most once.
    fn from_query(query: Option<&str>) -> Result<Self, Failure> {
        let mut p = Params::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            p.set(&name, value.into_owned(), "parameter")?;
        }
        Ok(p)
    }

    fn set(&mut self, name: &str, value: String, what: &str) -> Result<(), Failure> {
        let slot = match name {
            "since" => &mut self.since,
            "until" => &mut self.until,
            "window" => &mut self.window,
            "policy" => &mut self.policy,
            _ => {
                return Err(Failure::new(
                    StatusCode::BAD_REQUEST,
                    format!("unknown {what} `{name}`: the gate takes {}", PARAMS.join(", ")),
                ));
            }
        };
        if slot.is_some() {
            return Err(Failure::new(StatusCode::BAD_REQUEST, format!("{what} `{name}` is given twice")));
        }
        *slot = Some(value);
        Ok(())
    }
}

impl Server {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        match (method, path.as_str()) {
            (Method::GET, "/healthz") => {
                let mut r = Response::new(Full::new(Bytes::from_static(b"ok\n")));
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                r
            }
            (Method::GET, "/metrics") => {
                let mut r = Response::new(Full::new(Bytes::from(metrics::render(&self.gate))));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
                );
                r
            }
            (Method::GET, "/v1/verdict") => match self.verdict(Params::from_query(req.uri().query())).await {
                Ok(j) => json(StatusCode::OK, j.json.clone()),
                Err(f) => failure(&f),
            },
            (Method::POST, p) if p.strip_prefix("/v1/flagger/").is_some_and(|h| HOOKS.contains(&h)) => {
                let hook = p.trim_start_matches("/v1/flagger/").to_owned();
                self.webhook(&hook, req).await
            }
            (_, "/healthz" | "/metrics" | "/v1/verdict") => {
                error(StatusCode::METHOD_NOT_ALLOWED, &format!("{path} answers GET only"))
            }
            (_, p) if p.strip_prefix("/v1/flagger/").is_some_and(|h| HOOKS.contains(&h)) => {
                error(StatusCode::METHOD_NOT_ALLOWED, &format!("{path} answers POST only (a Flagger webhook)"))
            }
            _ => error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no such endpoint {path}: try GET /v1/verdict, POST /v1/flagger/{{{}}}, GET /metrics or GET /healthz",
                    HOOKS.join(",")
                ),
            ),
        }
    }

    /// Validates the parameters and answers the (possibly shared, possibly cached) judgement.
    async fn verdict(&self, params: Result<Params, Failure>) -> Result<Arc<gate::Judged>, Failure> {
        let p = params?;
        let bad = |e: anyhow::Error| Failure::new(StatusCode::BAD_REQUEST, format!("{e:#}"));
        // Checked now, so a bad time is this request's 400; the analysis resolves relative
        // times again when it runs.
        let now = Utc::now().trunc_subsecs(0);
        let since = p.since.as_deref().map(|t| parse_time("since", t, now)).transpose().map_err(bad)?;
        let until = p.until.as_deref().map(|t| parse_time("until", t, now)).transpose().map_err(bad)?;
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                format!("since {} is not before until {}: the window holds no time", rfc3339(s), rfc3339(u)),
            ));
        }
        let window = match p.window.as_deref() {
            None => None,
            Some(w) => {
                let d = parse_duration(w).map_err(|e| {
                    Failure::new(
                        StatusCode::BAD_REQUEST,
                        format!("window `{w}` is not a duration such as 15m or 6h ({e})"),
                    )
                })?;
                if d < Duration::from_secs(1) {
                    return Err(Failure::new(StatusCode::BAD_REQUEST, format!("window `{w}` must be at least 1s")));
                }
                Some(d)
            }
        };
        let (policy_file, policy) = match p.policy.as_deref() {
            None => (None, None),
            Some(name) => {
                let file = self.policy_file(name)?;
                let mut policy = Policy::from_file(&file).map_err(|e| {
                    Failure::new(StatusCode::BAD_REQUEST, format!("policy `{name}`: {:#}", anyhow::Error::new(e)))
                })?;
                policy.sequential = true;
                (Some(file), Some(Arc::new(policy)))
            }
        };
        let key = Key { policy: policy_file, since: p.since, until: p.until, window };
        self.gate.verdict(key, policy).await
    }

    /// The file a `policy` parameter names: a relative path inside `--policy-dir`.
    fn policy_file(&self, name: &str) -> Result<PathBuf, Failure> {
        let Some(dir) = &self.policy_dir else {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "parameter `policy` is refused: this server was started without --policy-dir",
            ));
        };
        let rel = Path::new(name);
        if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                format!("parameter `policy` `{name}` must be a relative path inside --policy-dir, without `..`"),
            ));
        }
        Ok(dir.join(rel))
    }

    /// A Flagger webhook: the JSON payload (name, namespace, phase, metadata), judged with the
    /// query's parameters and the metadata's (`since`, `until`, `window`, `policy`; other
    /// metadata keys are Flagger's or the user's and are ignored). 200 advances; 412 holds with
    /// the verdict's reason; other errors as /v1/verdict.
    async fn webhook(&self, hook: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let query = req.uri().query().map(str::to_owned);
        // Bounded by `Limited`: the one kind of collect the house rule allows.
        #[allow(clippy::disallowed_methods)]
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the webhook body is larger than {MAX_BODY} bytes"),
                );
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("the webhook body could not be read: {e}")),
        };
        let payload = match parse_payload(&body) {
            Ok(p) => p,
            Err(reason) => return error(StatusCode::BAD_REQUEST, &reason),
        };
        let params = Params::from_query(query.as_deref()).and_then(|mut p| {
            for (k, v) in &payload.gate {
                p.set(k, v.clone(), "metadata key")?;
            }
            Ok(p)
        });
        let judged = match self.verdict(params).await {
            Ok(j) => j,
            Err(f) => return failure(&f),
        };
        let v = &judged.verdict;
        let advance = v.verdict == Status::Pass || (v.verdict == Status::Warn && self.advance_on == AdvanceOn::Warn);
        tracing::info!(hook, canary = %format!("{}/{}", payload.namespace, payload.name), phase = %payload.phase, verdict = %v.verdict, advance, "Webhook.");
        let body = serde_json::json!({
            "hook": hook,
            "name": payload.name,
            "namespace": payload.namespace,
            "advance": advance,
            "verdict": v.verdict,
            "reason": format!("shadowdiff verdict {}: {}", v.verdict, v.reason),
            "pairs": v.inputs.pairs_analyzed,
        });
        let status = if advance { StatusCode::OK } else { StatusCode::PRECONDITION_FAILED };
        json(status, Bytes::from(body.to_string() + "\n"))
    }
}

/// What a Flagger webhook call carries.
#[derive(Debug)]
struct Payload {
    name: String,
    namespace: String,
    phase: String,
    /// The metadata keys that are the gate's parameters.
    gate: Vec<(String, String)>,
}

/// Reads Flagger's webhook payload: a JSON object with string `name` and `namespace`, an
/// optional `phase` and an optional `metadata` object of strings.
fn parse_payload(body: &[u8]) -> Result<Payload, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the webhook body is not JSON ({e}); Flagger sends {{\"name\", \"namespace\", \"phase\", \"metadata\"}}"
        )
    })?;
    let obj = v.as_object().ok_or(
        "the webhook body is not a JSON object; Flagger sends {\"name\", \"namespace\", \"phase\", \"metadata\"}",
    )?;
    let text = |key: &str, required: bool| -> Result<String, String> {
        match obj.get(key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            None if !required => Ok(String::new()),
            None => Err(format!("the webhook body has no `{key}`; Flagger sends the canary's name and namespace")),
            Some(_) => Err(format!("the webhook body's `{key}` is not a string")),
        }
    };
    let (name, namespace, phase) = (text("name", true)?, text("namespace", true)?, text("phase", false)?);
    let mut gate = Vec::new();
    match obj.get("metadata") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(m)) => {
            for key in PARAMS {
                match m.get(key) {
                    None => {}
                    Some(serde_json::Value::String(s)) => gate.push((key.to_owned(), s.clone())),
                    Some(_) => return Err(format!("the webhook body's `metadata.{key}` is not a string")),
                }
            }
        }
        Some(_) => return Err("the webhook body's `metadata` is not an object of strings".to_owned()),
    }
    Ok(Payload { name, namespace, phase, gate })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flagger_payloads() {
        let p = parse_payload(
            br#"{"name":"podinfo","namespace":"test","phase":"Progressing","metadata":{"window":"15m","cmd":"x"}}"#,
        )
        .expect("Flagger's documented payload");
        assert_eq!((p.name.as_str(), p.namespace.as_str(), p.phase.as_str()), ("podinfo", "test", "Progressing"));
        assert_eq!(p.gate, vec![("window".to_owned(), "15m".to_owned())]);
        for bad in [&b"not json"[..], b"[]", br#"{"namespace":"x"}"#, br#"{"name":1,"namespace":"x"}"#] {
            let e = parse_payload(bad).expect_err("refused");
            assert!(e.starts_with("the webhook body"), "{e}");
        }
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let e = Params::from_query(Some("since=-1h&color=red")).expect_err("unknown");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.reason.contains("`color`"), "{}", e.reason);
        let e = Params::from_query(Some("since=-1h&since=-2h")).expect_err("twice");
        assert!(e.reason.contains("twice"), "{}", e.reason);
        let p = Params::from_query(Some("since=2026-11-30T09%3A00%3A00Z&window=15m")).expect("known");
        assert_eq!(p.since.as_deref(), Some("2026-11-30T09:00:00Z"));
    }
}
