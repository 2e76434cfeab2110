//! `shadowdiff demo`: the whole flow on loopback with nothing to set up. Fixture services play
//! the baseline, a second baseline (the secondary, for noise) and a canary with planted
//! regressions; a real capture agent sits in front of them; seeded traffic goes through it; the
//! pair files it wrote are analyzed and reported exactly as `shadowdiff analyze` would.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use shadowdiff_analyze::pipeline::Options;
use shadowdiff_analyze::policy::Policy;
use shadowdiff_capture::agent::{Agent, Report};
use shadowdiff_capture::config::{Config, Target};
use shadowdiff_fixtures::service::upstream;
use shadowdiff_fixtures::{Profile, catalog};
use tokio::time::Instant;

use super::analyze::{self, Resolved};
use crate::exit::Exit;

/// The file that marks a directory as the demo's own, so a second run may replace it.
const MARKER: &str = ".shadowdiff-demo";

/// The whole flow on loopback in seconds, with nothing to set up: services, capture, analyze, report.
///
/// Starts fixture services on loopback ports (a baseline, a second baseline for noise, and a
/// canary with planted regressions), the capture proxy in front of them, sends traffic through
/// it, then analyzes the recorded pairs and writes the HTML report.
///
/// The canary's regressions: /api/search 1.6× slower and 3% more 500s, /api/orders/{id} drops
/// the field /legacy_code, /api/products/{id} prices drift by +0.2%, /api/users/{id} gains
/// /loyalty_points and changes /tier in 5% of responses. Every response also carries noise
/// fields (request_id, generated_at) that analyze must not count. With --no-regressions the
/// canary is a copy of the baseline, to see what a pass looks like.
///
/// Exits 0 when the demo ran (whatever the verdict; use `shadowdiff analyze` to gate), 2 on an
/// error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the pair files (DIR/pairs) and the analysis with report.html (DIR/analysis) go.
    /// An earlier demo's directory is replaced; any other non-empty directory is refused.
    #[arg(long, value_name = "DIR", default_value = "shadowdiff-demo")]
    out: PathBuf,
    /// Requests to send through the capture proxy.
    #[arg(long, value_name = "N", default_value_t = 6000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    requests: u64,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
    /// Seed for the traffic mix and the services' behaviour.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// A canary identical to the baseline but for its noise: the verdict should pass.
    #[arg(long)]
    no_regressions: bool,
    /// Print only the report's path.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    prepare_out(&args.out)?;
    let pairs_dir = args.out.join("pairs");
    let analysis_dir = args.out.join("analysis");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("shadowdiff-demo")
        .build()
        .context("cannot start the async runtime")?;
    let started = Instant::now();
    let say = |line: String| {
        if !args.quiet {
            println!("{line}");
        }
    };
    let captured = rt.block_on(capture_traffic(&args, &pairs_dir, &say))?;
    drop(rt);
    let c = &captured.counters;
    let count = |k: &str| c.get(k).copied().unwrap_or(0);
    let not_mirrored: u64 = c.iter().filter(|(k, _)| k.starts_with("mirror_skipped.")).map(|(_, v)| v).sum();
    say(format!(
        "captured   {} pairs in {} file(s): {} mirrored to the canary and the secondary, {} not mirrored (POST /api/cart: only idempotent methods are mirrored by default), {} dropped",
        count("recorded"),
        captured.writer.files.len(),
        count("mirrored"),
        not_mirrored,
        count("dropped"),
    ));
    say(format!("analyzing  {} …\n", pairs_dir.display()));
    let mut options = Options::new(&analysis_dir);
    options.seed = args.seed;
    let resolved = Resolved {
        inputs: vec![pairs_dir.to_string_lossy().into_owned()],
        policy: Policy::default(),
        options,
        quiet: args.quiet,
        window: None,
    };
    let verdict = analyze::execute(resolved)?;
    let report = analysis_dir.join(shadowdiff_reports::REPORT_FILE);
    if args.quiet {
        println!("{}", report.display());
    } else {
        let expected = if args.no_regressions {
            "PASS (the canary is a copy of the baseline)"
        } else {
            "FAIL (the canary has planted regressions)"
        };
        println!(
            "\ndemo finished in {:.1} s; verdict {}; expected {expected}.",
            started.elapsed().as_secs_f64(),
            verdict_word(verdict)
        );
        println!("open {}", absolute(&report).display());
    }
    std::io::stdout().flush()?;
    Ok(Exit::Pass)
}

fn verdict_word(exit: Exit) -> &'static str {
    match exit {
        Exit::Pass => "PASS (or WARN)",
        Exit::Fail => "FAIL",
        Exit::Inconclusive => "INCONCLUSIVE",
        Exit::Error => "ERROR",
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Creates `out`, or empties it when an earlier demo made it; refuses anything else.
fn prepare_out(out: &Path) -> anyhow::Result<()> {
    shadowdiff_format::store::Location::local_only("--out", &out.to_string_lossy(), "the demo")?;
    if out.exists() {
        if !out.is_dir() {
            bail!("--out {} exists and is not a directory", out.display());
        }
        let empty =
            std::fs::read_dir(out).with_context(|| format!("cannot read --out {}", out.display()))?.next().is_none();
        if !empty && !out.join(MARKER).is_file() {
            bail!(
                "--out {} is not empty and was not written by shadowdiff demo; choose another directory",
                out.display()
            );
        }
        for sub in ["pairs", "analysis"] {
            let dir = out.join(sub);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create --out {}", out.display()))?;
    std::fs::write(
        out.join(MARKER),
        "This directory was written by `shadowdiff demo`; a later demo run replaces it.\n",
    )
    .with_context(|| format!("cannot write into --out {}", out.display()))?;
    Ok(())
}

/// Starts the services and the capture agent, sends the traffic, and stops everything with
/// every pair on disk.
async fn capture_traffic(args: &Args, pairs_dir: &Path, say: &impl Fn(String)) -> anyhow::Result<Report> {
    let seed = args.seed;
    let baseline =
        upstream().profile(Profile::baseline()).seed(seed).run().await.context("cannot start the baseline fixture")?;
    let secondary = upstream()
        .profile(Profile::secondary())
        .seed(seed ^ 0x5eed)
        .run()
        .await
        .context("cannot start the secondary fixture")?;
    let canary_profile =
        if args.no_regressions { Profile { name: "canary".into(), ..Profile::secondary() } } else { Profile::canary() };
    let canary = upstream()
        .profile(canary_profile)
        .seed(seed ^ 0xca9a)
        .run()
        .await
        .context("cannot start the canary fixture")?;
    let mut config = Config::new(&baseline.url(), &canary.url(), pairs_dir)?;
    config.secondary =
        Some(Target::parse(&secondary.url()).map_err(|e| anyhow::anyhow!("the secondary fixture's URL {e}"))?);
    config.agent = "demo".into();
    let agent = Agent::start(config).await?;
    say(format!("baseline   {}  fixture service, profile baseline", baseline.url()));
    say(format!("secondary  {}  a second baseline: differs only in noise fields", secondary.url()));
    say(format!(
        "canary     {}  {}",
        canary.url(),
        if args.no_regressions {
            "a copy of the baseline"
        } else {
            "planted regressions (see `shadowdiff demo --help`)"
        }
    ));
    say(format!("capture    http://{}  recording to {}", agent.addr(), pairs_dir.display()));

    let sent = Instant::now();
    let outcome = drive(agent.addr(), args.requests, args.concurrency, seed).await;
    let elapsed = sent.elapsed();
    let report = agent.shutdown().await?;
    baseline.shutdown().await;
    secondary.shutdown().await;
    canary.shutdown().await;
    let outcome = outcome?;
    say(format!(
        "sent       {} requests through the proxy in {:.1} s ({:.0}/s, {} concurrent): {} answered, {} failed",
        args.requests,
        elapsed.as_secs_f64(),
        args.requests as f64 / elapsed.as_secs_f64().max(1e-9),
        args.concurrency,
        outcome.answered,
        outcome.failed
    ));
    if outcome.answered == 0 {
        bail!(
            "no request through the capture proxy was answered; the first error: {}",
            outcome.first_error.unwrap_or_default()
        );
    }
    Ok(report)
}

/// Reads a response body to its end without keeping it: the demo needs each exchange to
/// complete, not the bytes.
async fn drain<B: BodyExt + Unpin>(mut body: B) -> Result<(), String>
where
    B::Error: std::fmt::Display,
{
    while let Some(frame) = body.frame().await {
        frame.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Outcome {
    answered: u64,
    failed: u64,
    first_error: Option<String>,
}

/// Sends `requests` catalog requests through `proxy` from `concurrency` workers sharing one
/// pooled client; each worker draws its requests from its own seeded generator.
async fn drive(proxy: std::net::SocketAddr, requests: u64, concurrency: u64, seed: u64) -> anyhow::Result<Outcome> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (client, next) = (client.clone(), next.clone());
        workers.spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(w));
            let mut out = Outcome::default();
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let (endpoint, path, query, body) = catalog::sample_request(&mut rng);
                let uri = match &query {
                    Some(q) => format!("http://{proxy}{path}?{q}"),
                    None => format!("http://{proxy}{path}"),
                };
                let mut req = http::Request::builder().method(endpoint.method).uri(uri);
                if body.is_some() {
                    req = req.header(http::header::CONTENT_TYPE, "application/json");
                }
                let result = match req.body(Full::new(Bytes::from(body.unwrap_or_default()))) {
                    Ok(req) => match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
                        Ok(Ok(resp)) => drain(resp.into_body()).await,
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("no answer within 10 s".to_owned()),
                    },
                    Err(e) => Err(e.to_string()),
                };
                match result {
                    Ok(()) => out.answered += 1,
                    Err(e) => {
                        out.failed += 1;
                        out.first_error.get_or_insert(e);
                    }
                }
            }
            out
        });
    }
    let mut total = Outcome::default();
    while let Some(done) = workers.join_next().await {
        let o = done.context("a demo traffic worker panicked")?;
        total.answered += o.answered;
        total.failed += o.failed;
        if total.first_error.is_none() {
            total.first_error = o.first_error;
        }
    }
    Ok(total)
}
