//! `shadowdiff analyze`: judge pair files against a policy.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{DateTime, SubsecRound as _, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use shadowdiff_analyze::judge::judge;
use shadowdiff_analyze::pipeline::{self, Analysis, Options, Progress};
use shadowdiff_analyze::policy::{FailOn, Policy};
use shadowdiff_capture::config::{Flag, parse_duration, parse_nonzero_size};
use shadowdiff_format::TimeWindow;
use shadowdiff_format::verdict::{LatencyReference, Verdict, WindowCheck, WindowRow};

use crate::exit::Exit;

/// Analyze pair files and judge the canary: latency and error statistics, structural body
/// diffs with noise handling, per-endpoint aggregation, and a verdict against a policy.
///
/// Writes pairs.parquet, diffs.parquet, verdict.json, junit.xml, summary.md, report.html and
/// charts/*.png into --out.
/// Exit codes: 0 pass or warn, 1 fail (or warn with --fail-on warn), 2 error, 3 inconclusive.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pair files, directories (searched recursively) or globs.
    #[arg(required_unless_present = "plan", value_name = "INPUT")]
    inputs: Vec<String>,
    /// The policy: comparison rules and checks (TOML; see docs/policy.md). Built-in defaults
    /// without it.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The output directory (created if missing).
    #[arg(long, value_name = "DIR", required_unless_present = "plan")]
    out: Option<PathBuf>,
    /// Analyze one shard of a plan made by `shadowdiff plan` (with --shard and --partial-out)
    /// instead of INPUT: its pass over the pair files the plan gives the shard, written as a
    /// partial for `shadowdiff merge`. A local path or an object-store URL. See docs/scale.md.
    #[arg(
        long,
        value_name = "PLAN",
        requires_all = ["shard", "partial_out"],
        conflicts_with_all = ["inputs", "out", "sample", "seed", "fail_on", "max_decoded_body", "sequential", "since", "until", "warmup", "window"]
    )]
    plan: Option<String>,
    /// The shard to analyze, from 0 (a Kubernetes Indexed Job passes $JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I", requires = "plan")]
    shard: Option<usize>,
    /// Where the shard's partial goes: under this directory or object-store prefix, in
    /// `shard-0000I/` (a re-run replaces it).
    #[arg(long, value_name = "URL", requires = "plan")]
    partial_out: Option<String>,
    /// Analyze a uniform random sample of N pairs (reproducible with --seed).
    #[arg(long, value_name = "N")]
    sample: Option<u64>,
    /// Seed for --sample and for the latency reservoirs.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// `warn` makes a warning exit 1, as a failure does. Overrides the policy's fail_on.
    #[arg(long, value_enum, value_name = "LEVEL")]
    fail_on: Option<FailOnArg>,
    /// Decode bodies by their Content-Encoding up to this size (`64MiB` by default; the policy's
    /// `defaults.max_decoded_body`); longer content is cut there and counted as truncated.
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_nonzero_size))]
    max_decoded_body: Option<u64>,
    /// Decode gRPC messages by this descriptor set (`protoc --include_imports
    /// --descriptor_set_out`, `buf build -o`) into their proto3 JSON, diffed field by field.
    /// Overrides the policy's `[grpc] descriptor_set`; without either, messages are decoded by
    /// the wire format, fields by number.
    #[arg(long, value_name = "FILE")]
    descriptor_set: Option<PathBuf>,
    /// Anytime-valid decisions, for a shadow period judged again and again (a CI job re-run
    /// every hour, windows, the live gate): intervals become confidence sequences and p-values
    /// stay valid over any number of looks, so repeated looks do not multiply false alarms. Wider
    /// intervals in exchange. Overrides the policy's `sequential`.
    #[arg(long)]
    sequential: bool,
    /// Judge only pairs captured at or after this time: RFC 3339 (`2026-11-30T09:00:00Z`,
    /// `2026-11-30T10:00:00+01:00`) or relative to now (`-2h`, `-30m`, `-1d`). Files in hour
    /// partitions (`dt=…/hour=…`) that cannot hold such pairs are not opened; verdict.json's
    /// `inputs.window` says how many files and pairs the window left out.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    since: Option<String>,
    /// Judge only pairs captured before this time (same forms as --since, and `now`).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    until: Option<String>,
    /// Leave out each agent run's first pairs, e.g. `5m`: those captured within this long of the
    /// run's earliest pair (runs told apart by the files' run id). For a canary whose caches and
    /// JIT are still cold. verdict.json's `inputs.warmup` counts the pairs left out.
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    warmup: Option<std::time::Duration>,
    /// Also judge the run window by window, e.g. `15m` or `6h`: verdict.json's `windows[]` has
    /// each window's verdict and checks, so a regression that started on day 3 shows as such.
    /// Windows are aligned to multiples of the duration (UTC) and judged with anytime-valid
    /// decisions (many windows are many looks); the run's own verdict is unchanged.
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    window: Option<std::time::Duration>,
    /// No progress bar and no summary on stdout.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FailOnArg {
    Fail,
    Warn,
}

/// What the user asked for, validated.
pub(super) struct Resolved {
    pub inputs: Vec<String>,
    pub policy: Policy,
    pub options: Options,
    pub quiet: bool,
    /// `--window`: judge the run window by window too.
    pub window: Option<std::time::Duration>,
}

fn resolve(args: Args) -> anyhow::Result<Resolved> {
    let Some(out) = args.out else { bail!("--out is required") };
    let mut policy = match &args.policy {
        Some(path) => Policy::from_file(path)?,
        None => Policy::default(),
    };
    if let Some(f) = args.fail_on {
        policy.fail_on = match f {
            FailOnArg::Fail => FailOn::Fail,
            FailOnArg::Warn => FailOn::Warn,
        };
    }
    if let Some(cap) = args.max_decoded_body {
        policy.rules.max_decoded_body = cap;
    }
    if let Some(set) = &args.descriptor_set {
        policy.rules.grpc_schema = Some(shadowdiff_analyze::grpc::Schema::load(set)?);
    }
    if args.sequential {
        policy.sequential = true;
    }
    if args.sample == Some(0) {
        bail!("--sample must be at least 1");
    }
    shadowdiff_format::store::Location::local_only("--out", &out.to_string_lossy(), "the analysis")?;
    if out.exists() && !out.is_dir() {
        bail!("--out {} exists and is not a directory", out.display());
    }
    let mut options = Options::new(&out);
    options.sample = args.sample;
    options.seed = args.seed;
    options.warmup = args.warmup;
    options.window = parse_window(args.since.as_deref(), args.until.as_deref())?;
    if args.window.is_some_and(|w| w.as_secs() < 1) {
        bail!("--window must be at least 1s");
    }
    Ok(Resolved { inputs: args.inputs, policy, options, quiet: args.quiet, window: args.window })
}

/// The window `--since` / `--until` give, checked to hold some time.
pub(super) fn parse_window(since: Option<&str>, until: Option<&str>) -> anyhow::Result<TimeWindow> {
    // Both bounds relative to one reading of the clock, so `--since -1h --until -0s` is an hour.
    // Whole seconds: the times it prints read as typed, and a window is never that precise.
    let now = Utc::now().trunc_subsecs(0);
    let window = TimeWindow {
        since: since.map(|t| parse_time("--since", t, now)).transpose()?,
        until: until.map(|t| parse_time("--until", t, now)).transpose()?,
    };
    if let (Some(since), Some(until)) = (window.since, window.until)
        && since >= until
    {
        bail!("--since {} is not before --until {}: the window holds no time", rfc3339(since), rfc3339(until));
    }
    Ok(window)
}

/// A time as `--since` / `--until` take it: RFC 3339, `now`, or `-DURATION` before `now`.
pub(super) fn parse_time(flag: &str, text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let t = text.trim();
    if t == "now" {
        return Ok(now);
    }
    if let Some(ago) = t.strip_prefix('-') {
        let ago = parse_duration(ago)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| now.checked_sub_signed(d));
        return ago.with_context(|| format!("{flag} `{text}` is not a time before now such as -2h, -30m or -1d"));
    }
    DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        anyhow::anyhow!("{flag} `{text}` is not an RFC 3339 time such as 2026-11-30T09:00:00Z nor a time before now such as -2h ({e})")
    })
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A progress bar on a terminal, nothing otherwise.
pub(super) struct Bar(Option<ProgressBar>);

impl Bar {
    pub(super) fn new(quiet: bool) -> Self {
        Bar((!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(0);
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {pos}/{len} pairs {bar:30} {per_sec} eta {eta} {msg}")
            {
                b.set_style(style);
            }
            b
        }))
    }
}

impl Progress for Bar {
    fn start(&self, total: u64) {
        if let Some(b) = &self.0 {
            b.set_length(total);
        }
    }
    fn advance(&self, pairs: u64) {
        if let Some(b) = &self.0 {
            b.inc(pairs);
        }
    }
    fn phase(&self, message: &str) {
        if let Some(b) = &self.0 {
            b.set_message(message.to_owned());
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if let (Some(plan), Some(shard), Some(partial_out)) = (&args.plan, args.shard, &args.partial_out) {
        return super::shard::analyze_shard(plan, shard, partial_out, args.policy.as_deref(), args.quiet);
    }
    let mut r = resolve(args)?;
    // Object-store inputs are fetched (their partitions pruned by the window) and read locally.
    let fetched = super::inputs::fetch(&r.inputs, &r.options.window)?;
    r.inputs.clone_from(&fetched.paths);
    execute(r)
}

/// Analyzes, judges, writes every output and the report, and prints the summary.
pub(super) fn execute(r: Resolved) -> anyhow::Result<Exit> {
    // analyze runs on plain threads (rayon, its pipeline), without a tokio clock.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let progress = Bar::new(r.quiet);
    let verdict = judge_inputs(&r.inputs, &r.policy, &r.options, r.window, &progress)?;
    conclude(verdict, &r.options.out, r.quiet, started, progress)
}

/// Writes the verdict, the report and the other outputs into `out`, prints the summary, and
/// gives the verdict's exit code. `analyze` and `merge` both end here.
pub(super) fn conclude(
    mut verdict: Verdict,
    out: &std::path::Path,
    quiet: bool,
    started: Instant,
    progress: Bar,
) -> anyhow::Result<Exit> {
    shadowdiff_analyze::verdict::write(&mut verdict, out)
        .with_context(|| format!("cannot write the verdict into {}", out.display()))?;
    progress.phase("writing the report");
    let written = shadowdiff_reports::write_outputs(out, &verdict)
        .with_context(|| format!("cannot write the report into {}", out.display()))?;
    if let Some(b) = &progress.0 {
        b.finish_and_clear();
    }
    if !quiet {
        let mut out = std::io::stdout().lock();
        out.write_all(shadowdiff_reports::summary::text(&verdict).as_bytes())?;
        writeln!(out, "report   {}", written.report.display())?;
        writeln!(
            out,
            "took     {:.1} s ({:.0} pairs/s)",
            started.elapsed().as_secs_f64(),
            verdict.inputs.pairs_analyzed as f64 / started.elapsed().as_secs_f64().max(1e-9)
        )?;
        out.flush()?;
    }
    Ok(match verdict.exit_code {
        0 => Exit::Pass,
        1 => Exit::Fail,
        3 => Exit::Inconclusive,
        _ => Exit::Error,
    })
}

/// One judgement of `inputs`: the pipeline (its files written into `options.out`), the judge,
/// and with `window` each window judged too. `analyze` and `serve` both judge through here.
pub(super) fn judge_inputs(
    inputs: &[String],
    policy: &Policy,
    options: &Options,
    window: Option<std::time::Duration>,
    progress: &dyn Progress,
) -> anyhow::Result<Verdict> {
    let analysis = pipeline::run(inputs, policy, options, progress)?;
    progress.phase("judging");
    let mut verdict = judge(&analysis, policy);
    if let Some(width) = window {
        progress.phase("judging each window");
        let mut run =
            |options: &Options, policy: &Policy| match pipeline::run(inputs, policy, options, &pipeline::Quiet) {
                Ok(a) => Ok(Some(a)),
                Err(shadowdiff_analyze::Error::Empty { .. }) => Ok(None),
                Err(e) => Err(anyhow::Error::new(e)),
            };
        verdict.windows = windows(policy, options, width, &verdict.outputs.pairs, &mut run)?;
    }
    Ok(verdict)
}

/// One analysis of the pairs inside `options.window` under a policy; `None` when the window
/// holds no pair. `analyze` runs the pipeline over the files; `serve` merges its kept passes.
pub(super) type WindowRun<'a> = dyn FnMut(&Options, &Policy) -> anyhow::Result<Option<Analysis>> + 'a;

/// The run judged window by window: windows of `width` aligned to its multiples (UTC) over the
/// span of the analyzed pairs (from `pairs.parquet`), each analyzed again on its own — the
/// inputs pruned to it — by `run`, with anytime-valid decisions. Windows without pairs are left
/// out.
pub(super) fn windows(
    policy: &Policy,
    base: &Options,
    width: std::time::Duration,
    pairs: &std::path::Path,
    run: &mut WindowRun<'_>,
) -> anyhow::Result<Vec<WindowRow>> {
    let span = shadowdiff_reports::rows::read_latencies(pairs, 1, LatencyReference::Baseline)
        .map_err(|e| anyhow::anyhow!("cannot read the analyzed pairs' times from {}: {e}", pairs.display()))?
        .window_us;
    let Some((first, last)) = span else { return Ok(Vec::new()) };
    let step = i64::try_from(width.as_micros()).unwrap_or(i64::MAX).max(1);
    let mut policy = policy.clone();
    policy.sequential = true;
    // Each window's own pairs.parquet and diffs.parquet go to a scratch directory, removed after.
    let scratch = base.out.join(".windows-scratch");
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot make {}", scratch.display()))?;
    let mut rows = Vec::new();
    let mut start = first.div_euclid(step) * step;
    while start <= last {
        let end = start.saturating_add(step);
        let at = |us: i64| DateTime::from_timestamp_micros(us).unwrap_or_default();
        let mut options = base.clone();
        options.out = scratch.clone();
        // The window, inside the one the user asked for.
        let user = base.window;
        options.window = TimeWindow {
            since: Some(user.since.map_or(at(start), |s| s.max(at(start)))),
            until: Some(user.until.map_or(at(end), |u| u.min(at(end)))),
        };
        options.sample = None;
        // A window without pairs is left out; any other failure is the run's.
        let analysis = if options.window.since < options.window.until {
            match run(&options, &policy) {
                Ok(a) => a,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&scratch);
                    return Err(e.context(format!(
                        "cannot analyze the window {} … {}",
                        rfc3339(at(start)),
                        rfc3339(at(end))
                    )));
                }
            }
        } else {
            None
        };
        if let Some(a) = analysis.filter(|a| a.inputs.pairs_analyzed > 0) {
            let v = judge(&a, &policy);
            rows.push(WindowRow {
                start: at(start),
                end: at(end),
                pairs: v.inputs.pairs_analyzed,
                verdict: v.verdict,
                checks: v
                    .checks
                    .iter()
                    .map(|c| WindowCheck { id: c.id, status: c.status, value: c.value, ci: c.ci, n: c.n })
                    .collect(),
            });
        }
        start = end;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z").map(|t| t.with_timezone(&Utc)).expect("test time")
    }

    #[test]
    fn times_absolute_relative_and_now() {
        let at = |t: &str| parse_time("--since", t, now()).map(rfc3339).map_err(|e| e.to_string());
        assert_eq!(at("2026-11-30T09:15:00Z").as_deref(), Ok("2026-11-30T09:15:00Z"));
        assert_eq!(at("2026-11-30T10:00:00+01:00").as_deref(), Ok("2026-11-30T09:00:00Z"));
        assert_eq!(at("-2h").as_deref(), Ok("2026-11-30T10:00:00Z"));
        assert_eq!(at("-30m").as_deref(), Ok("2026-11-30T11:30:00Z"));
        assert_eq!(at("-1d").as_deref(), Ok("2026-11-29T12:00:00Z"));
        assert_eq!(at("-90").as_deref(), Ok("2026-11-30T11:58:30Z"));
        assert_eq!(at("now").as_deref(), Ok("2026-11-30T12:00:00Z"));
    }

    #[test]
    fn bad_times_name_the_flag() {
        for bad in ["yesterday", "2026-11-30", "-2 fortnights", "-", "2h"] {
            let e = parse_time("--until", bad, now()).expect_err(bad).to_string();
            assert!(e.starts_with(&format!("--until `{bad}` is not")), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
