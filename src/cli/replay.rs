//! `shadowdiff replay`: re-drive recorded traffic against live targets.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use http::{HeaderName, HeaderValue};
use shadowdiff_capture::config::{Flag, parse_duration, parse_nonzero_duration, parse_nonzero_size, parse_size};
use shadowdiff_capture::select::PathPattern;
use shadowdiff_format::Side;
use shadowdiff_format::store::{Location, UploadSettings, default_spool};
use shadowdiff_replay::driver::{DriverConfig, Progress, Summary};
use shadowdiff_replay::filter::{Filters, StatusMatch};
use shadowdiff_replay::pacer::Pacing;
use shadowdiff_replay::run::{Plan, replay};
use shadowdiff_replay::target::Rewrites;

use crate::exit::Exit;

/// Re-drive recorded traffic against live targets and record fresh pairs.
///
/// Two modes. With --baseline and --canary (and --secondary), every request goes to each target
/// concurrently and fresh pairs are recorded. With --canary alone, only the canary is called and
/// each fresh canary response is recorded beside the *recorded* baseline response: the "replay
/// production traffic against my local build" workflow. The files then say the baseline was
/// recorded elsewhere, and analyze reports latency as not comparable.
///
/// Pacing: the recorded pace (--speed), a fixed open-loop rate (--rate), or as fast as
/// --concurrency allows (the default). Non-idempotent methods are skipped unless
/// --allow-mutations.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("pace").args(["speed", "rate"])))]
pub struct Args {
    /// Pair files, directories or globs; `.har` and `.gor` files are read directly.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// Baseline target URL (omit for canary-only mode).
    #[arg(long, value_name = "URL")]
    baseline: Option<String>,
    /// Canary target URL.
    #[arg(long, value_name = "URL", required = true)]
    canary: String,
    /// Secondary baseline target URL (needs --baseline).
    #[arg(long, value_name = "URL", requires = "baseline")]
    secondary: Option<String>,
    /// Where the fresh pair files go: a directory, or an object-store URL (s3://BUCKET/PREFIX,
    /// gs://, az://) that closed files are uploaded to from --spool.
    #[arg(long, value_name = "DIR_OR_URL")]
    out: PathBuf,
    /// With an object-store --out: the local directory files wait in until uploaded
    /// [default: <system temp>/shadowdiff-spool/<agent>].
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// With an object-store --out: the most bytes of closed files the spool holds; past it the
    /// oldest not yet uploaded are deleted and counted [default: no limit].
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_nonzero_size))]
    max_spool: Option<u64>,
    /// With an object-store --out: how long the end of the run keeps uploading before leaving
    /// the rest in the spool [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    upload_drain_timeout: Option<Duration>,
    /// Replay at the recorded pace times X (2 = twice as fast).
    #[arg(long, value_name = "X")]
    speed: Option<f64>,
    /// Longest pause between two requests at the recorded pace, e.g. 5s, 500ms.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = Flag(parse_nonzero_duration))]
    max_gap: Duration,
    /// Send N requests per second on a fixed schedule (open loop; latency counts from the
    /// intended send time).
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// Requests in flight at most.
    #[arg(long, value_name = "N", default_value_t = 64)]
    concurrency: usize,
    /// Per-target timeout for one request.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = Flag(parse_nonzero_duration))]
    timeout: Duration,
    /// Response bytes recorded per side; longer bodies are truncated (and flagged).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = Flag(parse_size))]
    max_body: u64,
    /// Replay non-idempotent methods (POST, PUT, PATCH, DELETE) too.
    #[arg(long)]
    allow_mutations: bool,
    /// Only paths matching this glob (repeatable; `*` one segment, `**` any depth).
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Skip paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Only these methods (repeatable).
    #[arg(long = "method", value_name = "METHOD")]
    methods: Vec<String>,
    /// Only requests whose recorded baseline status is this code or class (repeatable: 200, 2xx).
    #[arg(long = "status", value_name = "STATUS", value_parser = StatusMatch::parse)]
    statuses: Vec<StatusMatch>,
    /// Only requests recorded at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only requests recorded before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// Send at most N requests.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Send this share of requests, chosen by pair id (the same ones every run).
    #[arg(long, value_name = "RATE")]
    sample: Option<f64>,
    /// Set a header on every request, `Name: value` (repeatable; replaces recorded values, e.g.
    /// credentials that capture redacted).
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = Rewrites::parse_set)]
    set_headers: Vec<(HeaderName, HeaderValue)>,
    /// Remove a header from every request (repeatable).
    #[arg(long = "remove-header", value_name = "NAME")]
    remove_headers: Vec<HeaderName>,
    /// Send this Host header instead of each target's own.
    #[arg(long, value_name = "HOST")]
    host: Option<HeaderValue>,
    /// Repeat the input (a soak run); stop with --duration or Ctrl-C.
    #[arg(long = "loop")]
    repeat: bool,
    /// Stop sending after this long, e.g. 10m.
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_nonzero_duration))]
    duration: Option<Duration>,
    /// Agent name in every fresh pair (default: replay-<time>).
    #[arg(long)]
    agent: Option<String>,
}

fn rfc3339(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e})"))
}

fn plan(args: Args) -> anyhow::Result<Plan> {
    let pacing = match (args.speed, args.rate) {
        (Some(speed), _) => Pacing::Recorded { speed, max_gap: args.max_gap },
        (_, Some(per_second)) => Pacing::Rate { per_second },
        _ => Pacing::Unpaced,
    };
    pacing.validate().map_err(anyhow::Error::msg)?;
    if args.concurrency == 0 {
        anyhow::bail!("--concurrency must be at least 1");
    }
    if let Some(s) = args.sample
        && !(s > 0.0 && s <= 1.0)
    {
        anyhow::bail!("--sample must be a share between 0 (exclusive) and 1, not {s}");
    }
    let patterns = |flag: &str, globs: &[String]| -> anyhow::Result<Vec<PathPattern>> {
        globs
            .iter()
            .map(|g| PathPattern::new(g).map_err(|e| anyhow::anyhow!("--{flag} `{g}` is not a valid pattern: {e}")))
            .collect()
    };
    let mut targets = Vec::new();
    if let Some(b) = args.baseline {
        targets.push((Side::Baseline, b));
    }
    targets.push((Side::Canary, args.canary));
    if let Some(s) = args.secondary {
        targets.push((Side::Secondary, s));
    }
    let canary_only = targets.len() == 1;
    let agent = args.agent.unwrap_or_else(|| format!("replay-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S")));
    let (out, upload) = match Location::parse(&args.out.to_string_lossy()).map_err(|e| match e {
        shadowdiff_format::Error::Store { message, .. } => anyhow::anyhow!("--out {} {message}", args.out.display()),
        e => e.into(),
    })? {
        Location::Local(dir) => {
            let store_only = [
                args.spool.as_ref().map(|_| "--spool"),
                args.max_spool.map(|_| "--max-spool"),
                args.upload_drain_timeout.map(|_| "--upload-drain-timeout"),
            ];
            if let Some(flag) = store_only.into_iter().flatten().next() {
                anyhow::bail!("{flag} applies when --out is an object-store URL (s3://, gs://, az://)");
            }
            (dir, None)
        }
        Location::Store(url) => {
            let spool = args.spool.unwrap_or_else(|| default_spool(&agent));
            let settings = UploadSettings {
                url,
                spool: spool.clone(),
                max_spool: args.max_spool,
                drain_timeout: args.upload_drain_timeout.unwrap_or(Duration::from_secs(30)),
            };
            (spool, Some(settings))
        }
    };
    Ok(Plan {
        inputs: args.inputs,
        targets,
        out,
        upload,
        input_names: Vec::new(),
        driver: DriverConfig {
            pacing,
            concurrency: args.concurrency,
            filters: Filters {
                include: patterns("include", &args.include)?,
                exclude: patterns("exclude", &args.exclude)?,
                methods: args.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
                statuses: args.statuses,
                since: args.since,
                until: args.until,
                sample: args.sample,
                allow_mutations: args.allow_mutations,
            },
            limit: args.limit,
            duration: args.duration,
            agent,
            keep_recorded_baseline: canary_only,
        },
        repeat: args.repeat,
        timeout: args.timeout,
        max_body: args.max_body as usize,
        rewrites: Rewrites { remove: args.remove_headers, set: args.set_headers, host: args.host },
    })
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut plan = plan(args)?;
    if plan.upload.is_some() {
        // Upload failures (WARN) and spool drops (ERROR) are logged, never silent.
        super::init_logging("warn")?;
    }
    let out = plan.upload.as_ref().map_or_else(|| plan.out.display().to_string(), |u| u.url.to_string());
    // Object-store inputs are fetched (partitions outside --since/--until are not) and read locally.
    let window = shadowdiff_format::TimeWindow { since: plan.driver.filters.since, until: plan.driver.filters.until };
    let fetched = super::inputs::fetch(&plan.inputs, &window)?;
    if fetched.paths != plan.inputs {
        plan.input_names = std::mem::replace(&mut plan.inputs, fetched.paths.clone());
    }
    // One async thread, like each of oha's per-core runtimes: the driver, its workers and the
    // connections then wake each other without crossing threads. The source reader and the pair
    // writer have threads of their own. On the 2-core benchmark box the multi-threaded runtime
    // spent more CPU in futex wake-ups and context switches (126k vs 45k per 194k requests)
    // than it gained from a second worker thread.
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let progress = Arc::new(Progress::default());
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let (summary, stats) = runtime.block_on(async {
        let ticker = bar.clone().map(|bar| {
            let p = Arc::clone(&progress);
            tokio::spawn(async move {
                loop {
                    bar.set_message(format!(
                        "sent {}  recorded {}  skipped {}",
                        p.sent.load(Ordering::Relaxed),
                        p.done.load(Ordering::Relaxed),
                        p.skipped.load(Ordering::Relaxed)
                    ));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        });
        let stop = shadowdiff_capture::signal::stop_signal().context("cannot install the SIGTERM/SIGINT handlers")?;
        let result = replay(plan, Arc::clone(&progress), stop).await;
        if let Some(t) = ticker {
            t.abort();
        }
        anyhow::Ok(result?)
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    eprint!("{}", render(&summary, stats.files.len(), &out));
    Ok(Exit::Pass)
}

fn render(s: &Summary, files: usize, out: &str) -> String {
    let mut o = format!(
        "replay: sent {} recorded {} of {} read in {:.1} s ({:.0} req/s) to {} file(s) under {}{}\n",
        s.sent,
        s.recorded,
        s.read,
        s.elapsed.as_secs_f64(),
        s.achieved_rate,
        files,
        out,
        if s.interrupted { " (interrupted)" } else { "" }
    );
    if let Some(u) = &s.upload {
        o.push_str(&format!(
            "  left in the spool: {} file(s) ({} pairs){}\n",
            u.left.len(),
            u.left_pairs(),
            if u.left.is_empty() { String::new() } else { format!(" under {}", u.spool.display()) }
        ));
    }
    if !s.skipped.is_empty() {
        let k: Vec<String> = s.skipped.iter().map(|(r, n)| format!("{r}={n}")).collect();
        o.push_str(&format!("  skipped: {}\n", k.join(" ")));
    }
    if !s.errors.is_empty() {
        let k: Vec<String> = s.errors.iter().map(|((side, kind), n)| format!("{side}.{kind}={n}")).collect();
        o.push_str(&format!("  errors: {}\n", k.join(" ")));
    }
    if let Some(l) = &s.lag {
        o.push_str(&format!(
            "  schedule lag: mean {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
            l.mean_ms, l.p99_ms, l.max_ms
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;
    use shadowdiff_capture::config::Flags;

    use super::Args;

    #[derive(Debug, Parser)]
    struct Replay {
        #[command(flatten)]
        args: Args,
    }

    #[derive(Debug, Parser)]
    struct Capture {
        #[command(flatten)]
        flags: Flags,
    }

    const REQUIRED: [&str; 5] = ["pairs/", "--canary", "http://127.0.0.1:1", "--out", "/tmp/out"];

    fn replay(args: &[&str]) -> Result<Args, String> {
        Replay::try_parse_from(["replay"].iter().chain(&REQUIRED).chain(args))
            .map(|r| r.args)
            .map_err(|e| e.to_string().trim_start_matches("error: ").trim_end().to_owned())
    }

    fn capture(args: &[&str]) -> Flags {
        Capture::try_parse_from(["capture"].iter().chain(args)).expect("capture takes it").flags
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = replay(&[]).expect("valid");
        assert_eq!(
            (a.max_gap, a.timeout, a.max_body, a.duration),
            (Duration::from_secs(5), Duration::from_secs(30), 1 << 20, None)
        );
    }

    /// Replay reads durations and sizes with capture's parsers: what one takes, the other takes,
    /// as the same value.
    #[test]
    fn durations_and_sizes_read_as_capture_reads_them() {
        for text in ["500ms", "5s", "1.5s", "2m", "1h30m", "3", "0.25"] {
            let a = replay(&["--timeout", text, "--max-gap", text, "--duration", text]).expect(text);
            let c = capture(&["--mirror-timeout", text, "--rotate-age", text]);
            assert_eq!(Some(a.timeout), c.mirror_timeout, "{text}");
            assert_eq!((Some(a.max_gap), a.duration), (c.rotate_age, c.rotate_age), "{text}");
        }
        for text in ["0", "4096", "10_000", "64KiB", "1MiB", "1MB", "10k", "1.5KiB"] {
            let a = replay(&["--max-body", text]).expect(text);
            assert_eq!(Some(a.max_body), capture(&["--max-response-body", text]).max_response_body, "{text}");
        }
        // Zero is a duration, and capture takes it where it means something; replay's timeouts
        // and its pacing need a positive one, as before.
        assert_eq!(capture(&["--mirror-timeout", "0s"]).mirror_timeout, Some(Duration::ZERO));
        assert_eq!(replay(&["--timeout", "0s"]).map(|_| ()), Err("--timeout must be longer than zero".to_owned()));
    }

    #[test]
    fn a_bad_value_is_one_sentence_naming_the_flag() {
        let cases = [
            (&["--timeout", "5 parsecs"][..], "--timeout must be a duration such as 500ms, 5s or 2m, not 5 parsecs"),
            (&["--max-gap", "soon"], "--max-gap must be a duration such as 500ms, 5s or 2m, not soon"),
            (&["--duration=-1s"], "--duration must be a duration such as 500ms, 5s or 2m, not -1s"),
            (&["--max-gap", "0s"], "--max-gap must be longer than zero"),
            (&["--max-body", "1.5"], "--max-body must be a whole number or a size such as 64KiB or 1MiB, not 1.5"),
        ];
        for (args, expected) in cases {
            assert_eq!(replay(args).map(|_| ()), Err(expected.to_owned()), "{args:?}");
        }
    }
}
