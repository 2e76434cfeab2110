//! The streaming pipeline: pair files in, `pairs.parquet` / `diffs.parquet` and per-endpoint
//! aggregates out, in bounded memory.
//!
//! **Pass 1** streams the input a batch at a time. Routes are templated in order (the templater
//! keeps state), then every pair of the batch is evaluated in parallel with rayon. Each pair's
//! raw row and raw differences go to temporary Parquet files; what the verdict needs is counted
//! per route: error outcomes (paired, for McNemar), status mismatches, latency pairs (a seeded
//! reservoir, capped at [`Options::latency_cap`] per route and overall and at
//! [`Options::latency_budget`] for all routes together — beyond it the statistics run on a
//! uniform sample) and the Diffy noise counters per (route, field).
//!
//! **Pass 2** runs once every (route, field) has its noise verdict. It streams the *temporary*
//! files, not the input: each difference gets its status (real, noise, suspected noise,
//! explained), each pair its count of real differences, and the final files are written. Memory
//! holds the counters, the latency reservoirs, and one small entry per pair that has a real
//! difference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use shadowdiff_format::{FileInfo, PairReader, PairRecord, ReadOptions, TimeWindow, resolve_inputs};

use crate::aggregate::{self, EndpointRow};
use crate::error::{Error, Result};
use crate::evaluate::{Evaluated, Outcome, evaluate};
use crate::examples::{self, Example};
use crate::json::Difference;
use crate::noise::NoiseCounter;
use crate::outputs::{self, RawDiffs, RawPairs, RealCounts, Sink};
use crate::policy::{LatencyReference, Policy};
use crate::route::{Overflow, RouteRecorder, SeenRoute, settle};
use crate::route_key::{self, KeyOutcome};
use crate::rules::Rules;
use shadowdiff_format::vocab::{DiffStatus, Severity};

#[path = "shard.rs"]
pub mod shard;

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where `pairs.parquet` and `diffs.parquet` go.
    pub out: PathBuf,
    /// Analyze a uniform random sample of this many pairs.
    pub sample: Option<u64>,
    /// Seeds the sample and the latency reservoirs.
    pub seed: u64,
    pub batch_size: usize,
    /// Latency pairs kept per route (and overall) for the statistics; beyond it, a uniform
    /// reservoir sample of this size.
    pub latency_cap: usize,
    /// Latency pairs kept for all routes together (the overall sample aside): when the routes
    /// have more, the largest routes' samples are capped at an equal share (see
    /// [`route_caps`]), so memory stays flat however many pairs and routes come in.
    pub latency_budget: usize,
    /// Only pairs captured in this window: files are pruned by their Hive partitions, then rows
    /// filtered by `captured_at`.
    pub window: TimeWindow,
    /// Leave out each run's first pairs: those captured within this long of the run's earliest
    /// pair in the files read.
    pub warmup: Option<std::time::Duration>,
}

impl Options {
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Self {
            out: out.into(),
            sample: None,
            seed: 1,
            batch_size: 4096,
            latency_cap: 2_000_000,
            latency_budget: 2_000_000,
            window: TimeWindow::default(),
            warmup: None,
        }
    }
}

/// Progress reports, for a progress bar. Every method has a no-op default.
pub trait Progress: Sync {
    fn start(&self, _total_pairs: u64) {}
    fn advance(&self, _pairs: u64) {}
    fn phase(&self, _message: &str) {}
}

/// No progress reporting.
pub struct Quiet;
impl Progress for Quiet {}

/// A seeded uniform reservoir (Vitter's algorithm R) of latency pairs, each with the time its
/// request was captured (microseconds since the epoch; [`Reservoir::NO_TIME`] when unknown).
#[derive(Debug, Clone)]
pub struct Reservoir {
    cap: usize,
    seen: u64,
    items: Vec<(f64, f64)>,
    times: Vec<i64>,
    rng: SmallRng,
}

impl Reservoir {
    /// The time of a pair captured at an unknown time.
    pub const NO_TIME: i64 = i64::MIN;

    pub fn new(cap: usize, seed: u64) -> Self {
        Self { cap: cap.max(1), seen: 0, items: Vec::new(), times: Vec::new(), rng: SmallRng::seed_from_u64(seed) }
    }

    pub fn push(&mut self, item: (f64, f64)) {
        self.push_at(item, None);
    }

    /// Offers a pair captured at `at`.
    pub fn push_at(&mut self, item: (f64, f64), at: Option<i64>) {
        let at = at.unwrap_or(Self::NO_TIME);
        self.seen += 1;
        if self.items.len() < self.cap {
            self.items.push(item);
            self.times.push(at);
        } else {
            let j = self.rng.random_range(0..self.seen);
            if (j as usize) < self.cap {
                self.items[j as usize] = item;
                self.times[j as usize] = at;
            }
        }
    }

    /// Pairs offered.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The kept pairs (all of them when fewer than the cap were offered).
    pub fn items(&self) -> &[(f64, f64)] {
        &self.items
    }

    /// When each kept pair was captured, in the order of [`Reservoir::items`]
    /// ([`Reservoir::NO_TIME`] when unknown).
    pub fn times(&self) -> &[i64] {
        &self.times
    }
}

/// Baseline and canary counts of one error kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KindCount {
    pub baseline: u64,
    pub canary: u64,
}

/// Paired error outcomes of the pairs where the canary was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorCounts {
    pub n: u64,
    pub baseline: u64,
    pub canary: u64,
    pub canary_only: u64,
    pub baseline_only: u64,
    /// By transport error kind or 5xx status (`status 503`).
    pub kinds: BTreeMap<String, KindCount>,
}

pub use shadowdiff_format::verdict::{
    DRIFT_EDGES, Drift, DriftOutlier, FieldRow, InputSummary, InputWarmup, InputWindow, Truncated, Undecodable,
};

/// The counts of error kind `k`, created on its first occurrence (a known kind is looked up
/// without allocating its name again).
fn kind<'m>(kinds: &'m mut BTreeMap<String, KindCount>, k: &str) -> &'m mut KindCount {
    if !kinds.contains_key(k) {
        kinds.insert(k.to_owned(), KindCount::default());
    }
    kinds.get_mut(k).unwrap_or_else(|| unreachable!("inserted above"))
}

/// One pair's part in a scope's counts ([`RouteStats::count`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct PairFacts<'a> {
    /// Both statuses, when the sides answered with different ones.
    pub status_mismatch: Option<(Option<u16>, Option<u16>)>,
    /// Both gRPC statuses by name, when the sides' `grpc-status` differ: counted by name
    /// (`grpc NOT_FOUND→UNAVAILABLE`) instead of by HTTP status class.
    pub grpc_status_mismatch: Option<(&'static str, &'static str)>,
    /// Each side's error kind (a transport error kind, `status 503`), when it failed.
    pub baseline_error: Option<&'a str>,
    pub canary_error: Option<&'a str>,
    /// Paired latencies in milliseconds, when both sides answered.
    pub latency_ms: Option<(f64, f64)>,
    /// The secondary's and the canary's latencies in milliseconds, when both answered.
    pub secondary_latency_ms: Option<(f64, f64)>,
    /// When the request was captured, in microseconds since the epoch (tail pairs close in time
    /// are judged as one event).
    pub captured_at_us: Option<i64>,
}

/// What was counted for one route (or overall).
#[derive(Debug, Clone, Serialize)]
pub struct RouteStats {
    /// Both sides answered with different statuses, by class change (`2xx→5xx`).
    pub status_mismatch: BTreeMap<String, u64>,
    pub errors: ErrorCounts,
    /// Real differences per field (rows of diffs.parquet).
    pub real_fields: BTreeMap<String, u64>,
    /// Real breaking differences per field.
    pub breaking_fields: BTreeMap<String, u64>,
    /// Paired latencies in milliseconds (reference, canary), where both sides answered: the
    /// baseline's, or after [`Analysis::latency_reference`] chose it, the secondary's.
    #[serde(skip)]
    pub latency: Reservoir,
    /// The secondary's and the canary's, where both answered (the other reference).
    #[serde(skip)]
    latency_secondary: Reservoir,
    #[serde(skip)]
    noise: NoiseCounter,
}

impl RouteStats {
    /// Empty counts keeping at most `cap` latency pairs (a reservoir seeded by `seed`).
    pub fn empty(cap: usize, seed: u64) -> Self {
        Self::new(cap, seed)
    }

    /// Counts one pair in which the canary was asked: its status classes, error kinds and paired
    /// latency. The pipeline counts every evaluated pair through here; tools that simulate pairs
    /// (the calibration harness in bench/calibration) do too, so both count alike.
    pub fn count(&mut self, f: &PairFacts<'_>) {
        if let Some((b, c)) = f.grpc_status_mismatch {
            *self.status_mismatch.entry(format!("grpc {b}→{c}")).or_default() += 1;
        } else if let Some((b, c)) = f.status_mismatch {
            let class = |s: Option<u16>| s.map_or("none".to_owned(), |s| format!("{}xx", s / 100));
            *self.status_mismatch.entry(format!("{}→{}", class(b), class(c))).or_default() += 1;
        }
        let (b, c) = (f.baseline_error.is_some(), f.canary_error.is_some());
        let er = &mut self.errors;
        er.n += 1;
        er.baseline += u64::from(b);
        er.canary += u64::from(c);
        er.canary_only += u64::from(c && !b);
        er.baseline_only += u64::from(b && !c);
        if let Some(k) = f.baseline_error {
            kind(&mut er.kinds, k).baseline += 1;
        }
        if let Some(k) = f.canary_error {
            kind(&mut er.kinds, k).canary += 1;
        }
        self.push_latency(f.latency_ms, f.secondary_latency_ms, f.captured_at_us);
    }

    /// Offers one pair's latencies to the samples: (reference, canary) with the baseline as the
    /// reference, and with the secondary.
    pub fn push_latency(&mut self, baseline: Option<(f64, f64)>, secondary: Option<(f64, f64)>, at: Option<i64>) {
        if let Some(l) = baseline {
            self.latency.push_at(l, at);
        }
        if let Some(l) = secondary {
            self.latency_secondary.push_at(l, at);
        }
    }

    /// The counts a shard hands to the merge (its latency samples are drawn at the merge).
    fn into_counts(self) -> RouteCounts {
        RouteCounts { status_mismatch: self.status_mismatch, errors: self.errors, noise: self.noise }
    }

    /// Adds a shard's counts.
    fn absorb(&mut self, c: RouteCounts) {
        for (k, n) in c.status_mismatch {
            *self.status_mismatch.entry(k).or_default() += n;
        }
        let (mine, theirs) = (&mut self.errors, c.errors);
        mine.n += theirs.n;
        mine.baseline += theirs.baseline;
        mine.canary += theirs.canary;
        mine.canary_only += theirs.canary_only;
        mine.baseline_only += theirs.baseline_only;
        for (k, n) in theirs.kinds {
            let e = kind(&mut mine.kinds, &k);
            e.baseline += n.baseline;
            e.canary += n.canary;
        }
        self.noise.absorb(c.noise);
    }

    /// Keeps at most `cap` latency pairs in each sample; before any pair is offered.
    fn cap_latency(&mut self, cap: usize) {
        self.latency.cap = cap.max(1);
        self.latency_secondary.cap = cap.max(1);
    }

    /// Judges latency against the secondary from here on: its pairs replace the baseline's.
    fn use_secondary(&mut self) {
        std::mem::swap(&mut self.latency, &mut self.latency_secondary);
    }

    fn new(cap: usize, seed: u64) -> Self {
        Self {
            status_mismatch: BTreeMap::new(),
            errors: ErrorCounts::default(),
            real_fields: BTreeMap::new(),
            breaking_fields: BTreeMap::new(),
            latency: Reservoir::new(cap, seed),
            latency_secondary: Reservoir::new(cap, seed),
            noise: NoiseCounter::new(),
        }
    }

    fn add(&mut self, e: &Evaluated, with_noise: bool) {
        // Pairs, canary-skipped, compared, different and breaking pairs are counted once, by
        // polars over pairs.parquet (the endpoint table); this counts what that table cannot.
        if e.outcome == Outcome::CanarySkipped {
            return;
        }
        // Latencies are sampled by the merge, from the rows in input order.
        self.count(&PairFacts {
            status_mismatch: (e.outcome == Outcome::StatusMismatch).then_some((e.baseline.status, e.canary.status)),
            grpc_status_mismatch: (e.outcome == Outcome::StatusMismatch && e.baseline.status == e.canary.status)
                .then(|| {
                    Some((e.baseline.grpc_status.as_ref()?.static_name(), e.canary.grpc_status.as_ref()?.static_name()))
                })
                .flatten(),
            baseline_error: e.baseline.error_label().as_deref(),
            canary_error: e.canary.error_label().as_deref(),
            latency_ms: None,
            secondary_latency_ms: None,
            captured_at_us: None,
        });
        if with_noise && e.outcome == Outcome::Compared {
            let raw: Vec<Difference> = e.raw.iter().map(|f| f.diff.clone()).collect();
            self.noise.add(&raw, e.noise.as_deref());
        }
    }
}

/// The side latency is judged against. `auto` takes the secondary when at least half of the
/// pairs with a baseline latency also have a secondary one: capture answers the client from the
/// baseline and reaches the canary and the secondary as mirrors, so under load the mirrored path
/// is slower and only the secondary's latency was measured the way the canary's was.
fn latency_reference(asked: LatencyReference, overall: &RouteStats) -> LatencyReference {
    match asked {
        LatencyReference::Auto => {
            let (secondary, baseline) = (overall.latency_secondary.seen(), overall.latency.seen());
            if secondary > 0 && secondary.saturating_mul(2) >= baseline {
                LatencyReference::Secondary
            } else {
                LatencyReference::Baseline
            }
        }
        other => other,
    }
}

/// Everything the judge needs.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub inputs: InputSummary,
    /// The side the canary's latency is judged against (`baseline` or `secondary`, resolved).
    pub latency_reference: LatencyReference,
    pub overall: RouteStats,
    pub routes: BTreeMap<String, RouteStats>,
    pub fields: Vec<FieldRow>,
    pub numeric_drift: Vec<Drift>,
    pub route_overflow: Overflow,
    /// A few pairs per troubled route with their bodies, for the report.
    pub examples: Vec<Example>,
    /// The whole run's row of the endpoints table, and each route's (polars over pairs.parquet).
    pub overall_row: EndpointRow,
    pub endpoint_rows: Vec<EndpointRow>,
    pub pairs_file: PathBuf,
    pub diffs_file: PathBuf,
    pub examples_file: PathBuf,
}

/// Runs every pass over `inputs` in one process: [`map`] (pass 1 over one shard holding every
/// input: evaluate and count every pair, write raw rows) and [`merge`] of that one shard (the
/// noise verdicts, pass 2 writing the final Parquet files, the latency samples, the example
/// pairs and the endpoint table). A sharded analysis runs the same two halves in many
/// processes (docs/scale.md).
pub fn run<S: AsRef<str>>(inputs: &[S], policy: &Policy, opts: &Options, progress: &dyn Progress) -> Result<Analysis> {
    let files = resolve_inputs(inputs)?;
    let (files, files_pruned) = opts.window.prune(files);
    let shard_inputs = summarize_inputs(&files)?;
    let window = opts.window;
    let input_name = || {
        let names = inputs.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(" ");
        let bound = |flag: &str, t: Option<shadowdiff_format::reader::Instant>| {
            t.map(|t| format!(" {flag} {}", t.format("%Y-%m-%dT%H:%M:%SZ")))
        };
        match (bound("--since", window.since), bound("--until", window.until)) {
            (None, None) => names,
            (s, u) => format!("the window{}{} of {names}", s.unwrap_or_default(), u.unwrap_or_default()),
        }
    };
    if shard_inputs.pairs_in_files == 0 {
        return Err(Error::Empty { input: input_name() });
    }
    let mut selection = Selection { window, warm_end: BTreeMap::new() };
    let warmup_runs = match opts.warmup.filter(|w| !w.is_zero()) {
        Some(warmup) => {
            selection.warm_end = warm_ends(&files, warmup)?;
            selection.warm_end.len()
        }
        None => 0,
    };
    // A sample is drawn from the pairs kept, so they are counted first (one column).
    let population = match opts.sample {
        Some(_) if !selection.keeps_all() => count_kept(&files, &selection)?,
        _ => shard_inputs.pairs_in_files,
    };
    let sample = sample_indices(population, opts);
    std::fs::create_dir_all(&opts.out)
        .map_err(|source| Error::Output { path: opts.out.clone(), source: source.into() })?;
    progress.start(sample.as_ref().map_or(shard_inputs.pairs_in_files, |s| s.len() as u64));
    let scratch = Scratch { pairs: opts.out.join(".pairs.raw.parquet"), diffs: opts.out.join(".diffs.raw.parquet") };
    let keep = Keep { selection, sample };
    let state = match evaluate_pass(files, shard_inputs, &keep, policy, opts, progress, &scratch) {
        Ok(state) if state.pairs_analyzed > 0 => state,
        other => {
            scratch.remove();
            other?;
            return Err(Error::Empty { input: input_name() });
        }
    };
    let part = Partial { state, pairs: scratch.pairs.clone(), diffs: scratch.diffs.clone(), examples: None };
    let context = MergeContext { files_pruned, warmup_runs };
    merge(vec![part], policy, opts, &context, progress)
}

/// Pass 1 over one shard's `files` for [`merge`]: evaluates every pair `selection` keeps, writes
/// the raw rows into `dir` (`pairs.raw.parquet`, `diffs.raw.parquet`) and returns what it
/// counted. `files` may be empty (a shard with nothing to do).
pub fn map(files: Vec<PathBuf>, selection: Selection, policy: &Policy, opts: &Options, dir: &Path) -> Result<Partial> {
    let shard_inputs = summarize_inputs(&files)?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Output { path: dir.to_owned(), source: source.into() })?;
    let raw = Scratch { pairs: dir.join(RAW_PAIRS_FILE), diffs: dir.join(RAW_DIFFS_FILE) };
    let keep = Keep { selection, sample: None };
    let state = evaluate_pass(files, shard_inputs, &keep, policy, opts, &Quiet, &raw)?;
    let (pairs, diffs) = raw.keep();
    Ok(Partial { state, pairs, diffs, examples: None })
}

/// A shard's raw rows, in a partial.
pub const RAW_PAIRS_FILE: &str = "pairs.raw.parquet";
/// A shard's raw differences, in a partial.
pub const RAW_DIFFS_FILE: &str = "diffs.raw.parquet";

/// Which pairs of the files read are judged: those in the window and past their run's warm-up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    #[serde(with = "window_serde")]
    pub window: TimeWindow,
    /// Per run ([`run_key`]): the end of its warm-up, in microseconds since the epoch.
    pub warm_end: BTreeMap<String, i64>,
}

mod window_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use shadowdiff_format::TimeWindow;
    use shadowdiff_format::reader::Instant;

    #[derive(Serialize, Deserialize)]
    struct Bounds {
        since: Option<Instant>,
        until: Option<Instant>,
    }

    pub fn serialize<S: Serializer>(w: &TimeWindow, s: S) -> Result<S::Ok, S::Error> {
        Bounds { since: w.since, until: w.until }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeWindow, D::Error> {
        let b = Bounds::deserialize(d)?;
        Ok(TimeWindow { since: b.since, until: b.until })
    }
}

impl Selection {
    fn keeps_all(&self) -> bool {
        self.window.is_unbounded() && self.warm_end.is_empty()
    }

    /// The end of the warm-up of the run that wrote `file`, when `--warmup` was given.
    fn warm_end(&self, file: &FileInfo) -> Option<i64> {
        self.warm_end.get(&run_key(file)).copied()
    }
}

/// Each run's warm-up end over `files`: its earliest pair plus `warmup`.
pub fn warm_ends(files: &[PathBuf], warmup: std::time::Duration) -> Result<BTreeMap<String, i64>> {
    let us = i64::try_from(warmup.as_micros()).unwrap_or(i64::MAX);
    Ok(run_starts(files)?.into_iter().map(|(run, start)| (run, start.saturating_add(us))).collect())
}

/// One shard's pass 1: its raw rows (files) and what it counted.
#[derive(Debug)]
pub struct Partial {
    pub state: MapState,
    pub pairs: PathBuf,
    pub diffs: PathBuf,
    /// Where the state's example candidates are, when they are kept on disk apart from it
    /// ([`MapState::examples_apart`]); read back one shard at a time by the merge.
    pub examples: Option<PathBuf>,
}

/// What the merge needs to know besides the shards: what the plan (or the one process) decided
/// over all inputs.
#[derive(Debug, Clone, Copy, Default)]
pub struct MergeContext {
    /// Files the window pruned by their partitions, unopened.
    pub files_pruned: usize,
    /// Runs found for `--warmup`.
    pub warmup_runs: usize,
}

/// The counts of one route (or overall) that a shard hands to the merge.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct RouteCounts {
    status_mismatch: BTreeMap<String, u64>,
    errors: ErrorCounts,
    noise: NoiseCounter,
}

/// The files a shard read, summed as one process sums them.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct ShardInputs {
    pub files: usize,
    pub pairs_in_files: u64,
    pub baseline_origin: BTreeMap<String, u64>,
    /// Capture counters per run: the largest value of each among the shard's files of that run
    /// (they are cumulative per run).
    pub runs: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Everything pass 1 counted over one shard (a `partial.json`'s `state`).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct MapState {
    pub inputs: ShardInputs,
    /// Pairs in the window and past the warm-up: positions `0..kept` (before any sample).
    pub kept: u64,
    pub pairs_analyzed: u64,
    pub pairs_outside: u64,
    pub pairs_left_out: u64,
    pub truncated: Truncated,
    pub undecodable: Undecodable,
    pub route_keys: shadowdiff_format::verdict::RouteKeys,
    /// gRPC calls to methods the descriptor set does not hold, by method.
    #[serde(default)]
    pub grpc_undescribed: BTreeMap<String, u64>,
    overall: RouteCounts,
    routes: BTreeMap<String, RouteCounts>,
    routes_seen: Vec<SeenRoute>,
    examples: examples::Collector,
}

/// The second half of an analysis, over the shards' partials in input order: the route cap
/// settled over all of them, counts added, the noise verdicts, pass 2 over the shards' raw rows
/// (pairs.parquet and diffs.parquet, positions shifted and routes renamed, the latency samples
/// drawn in input order), the example pairs and the endpoint table. The result is what one
/// process over the same inputs computes (docs/scale.md, "The merge algebra").
pub fn merge(
    parts: Vec<Partial>,
    policy: &Policy,
    opts: &Options,
    context: &MergeContext,
    progress: &dyn Progress,
) -> Result<Analysis> {
    progress.phase("merging");
    std::fs::create_dir_all(&opts.out)
        .map_err(|source| Error::Output { path: opts.out.clone(), source: source.into() })?;
    let mut offsets = Vec::with_capacity(parts.len());
    let mut seen = Vec::new();
    let mut next = 0u64;
    for p in &parts {
        offsets.push(next);
        seen.extend(p.state.routes_seen.iter().cloned().map(|mut r| {
            r.first += next;
            r
        }));
        next += p.state.kept;
    }
    let (renamed, overflow) = settle(seen, policy.rules.routes.max_routes);
    let rename = |route: &str| renamed.get(route).cloned();
    let mut summary = InputSummary { seed: opts.seed, sample: opts.sample, ..InputSummary::default() };
    let mut runs: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut pairs_outside, mut pairs_left_out) = (0u64, 0u64);
    let mut overall = RouteStats::new(opts.latency_cap, opts.seed);
    let mut routes: BTreeMap<String, RouteStats> = BTreeMap::new();
    let mut examples = examples::Collector::new();
    let mut raw = Vec::with_capacity(parts.len());
    for (p, offset) in parts.into_iter().zip(offsets) {
        let mut st = p.state;
        if let Some(path) = &p.examples {
            st.examples = read_examples(path)?;
        }
        summary.files += st.inputs.files;
        summary.pairs_in_files += st.inputs.pairs_in_files;
        summary.pairs_analyzed += st.pairs_analyzed;
        for (k, v) in st.inputs.baseline_origin {
            *summary.baseline_origin.entry(k).or_default() += v;
        }
        for (run, counters) in st.inputs.runs {
            let entry = runs.entry(run).or_default();
            for (k, v) in counters {
                let e = entry.entry(k).or_default();
                *e = (*e).max(v);
            }
        }
        pairs_outside += st.pairs_outside;
        pairs_left_out += st.pairs_left_out;
        add_truncated(&mut summary.truncated, &st.truncated);
        summary.undecodable.baseline += st.undecodable.baseline;
        summary.undecodable.canary += st.undecodable.canary;
        summary.undecodable.secondary += st.undecodable.secondary;
        for (method, n) in st.grpc_undescribed {
            shadowdiff_format::verdict::count_undescribed(&mut summary.grpc_undescribed, &method, n);
        }
        summary.route_keys.keyed += st.route_keys.keyed;
        for u in st.route_keys.unkeyed {
            let route = rename(&u.route).unwrap_or(u.route);
            match summary.route_keys.unkeyed.iter_mut().find(|x| x.route == route && x.reason == u.reason) {
                Some(x) => x.requests += u.requests,
                None => summary.route_keys.unkeyed.push(shadowdiff_format::verdict::Unkeyed { route, ..u }),
            }
        }
        overall.absorb(st.overall);
        for (route, counts) in st.routes {
            let route = rename(&route).unwrap_or(route);
            routes.entry(route.clone()).or_insert_with(|| route_stats(&route, opts)).absorb(counts);
        }
        examples.absorb(st.examples, offset, &rename);
        raw.push((p.pairs, p.diffs, offset));
    }
    for counters in runs.values() {
        for (k, v) in counters {
            *summary.counters.entry(k.clone()).or_default() += v;
        }
    }
    if !opts.window.is_unbounded() {
        let w = opts.window;
        summary.window =
            Some(InputWindow { since: w.since, until: w.until, files_pruned: context.files_pruned, pairs_outside });
    }
    if let Some(warmup) = opts.warmup.filter(|w| !w.is_zero()) {
        summary.warmup = Some(InputWarmup { seconds: warmup.as_secs_f64(), runs: context.warmup_runs, pairs_left_out });
    }
    let sizes: Vec<u64> = routes.values().map(|r| r.errors.n).collect();
    for (stats, cap) in routes.values_mut().zip(route_caps(&sizes, opts.latency_cap, opts.latency_budget)) {
        stats.cap_latency(cap);
    }
    let mut counted = Counted { overall, routes, examples, overflow };

    progress.phase("classifying differences");
    let mut noise = classify(&counted.routes, policy);
    progress.phase("writing diffs.parquet");
    let diffs_file = opts.out.join(outputs::DIFFS_FILE);
    let diff_inputs: Vec<(&Path, u64)> = raw.iter().map(|(_, d, o)| (d.as_path(), *o)).collect();
    let diffs = diffs_pass(&diff_inputs, &rename, &diffs_file, &mut noise, &mut counted)?;
    progress.phase("writing pairs.parquet");
    let pairs_file = opts.out.join(outputs::PAIRS_FILE);
    let pair_inputs: Vec<(&Path, u64)> = raw.iter().map(|(p, _, o)| (p.as_path(), *o)).collect();
    pairs_pass(&pair_inputs, &rename, &pairs_file, &diffs.per_pair, &mut counted, opts)?;

    progress.phase("aggregating endpoints");
    let (overall_row, endpoint_rows) = aggregate::endpoints(&pairs_file)?;
    let field_status = noise.status.iter().map(|(k, (s, _))| (k.clone(), *s)).collect();
    let different: BTreeMap<&str, u64> = endpoint_rows.iter().map(|r| (r.route.as_str(), r.different)).collect();
    let trouble = |route: &str| {
        let different = different.get(route).copied().unwrap_or(0);
        let stats = counted.routes.get(route);
        different + stats.map_or(0, |s| s.status_mismatch.values().sum::<u64>() + s.errors.canary_only)
    };
    let examples = counted.examples.choose(&field_status, trouble);
    examples::write(&opts.out, &examples)?;
    let latency_reference = latency_reference(policy.latency_reference, &counted.overall);
    if latency_reference == LatencyReference::Secondary {
        counted.overall.use_secondary();
        counted.routes.values_mut().for_each(RouteStats::use_secondary);
    }
    Ok(Analysis {
        inputs: summary,
        latency_reference,
        overall: counted.overall,
        routes: counted.routes,
        fields: noise.fields,
        numeric_drift: diffs.drift,
        route_overflow: counted.overflow,
        examples,
        overall_row,
        endpoint_rows,
        pairs_file,
        diffs_file,
        examples_file: opts.out.join(examples::EXAMPLES_FILE),
    })
}

/// The raw rows of pass 1, read again by pass 2 and then removed.
struct Scratch {
    pairs: PathBuf,
    diffs: PathBuf,
}

/// Removed however the run ends, an error on the way included (a full disk).
impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

impl Scratch {
    /// The files, kept: no longer removed when this is dropped.
    fn keep(mut self) -> (PathBuf, PathBuf) {
        (std::mem::take(&mut self.pairs), std::mem::take(&mut self.diffs))
    }

    fn remove(&self) {
        if self.pairs.as_os_str().is_empty() {
            return;
        }
        let _ = std::fs::remove_file(&self.pairs);
        let _ = std::fs::remove_file(&self.diffs);
    }
}

/// What pass 1 counted.
struct Counted {
    overall: RouteStats,
    routes: BTreeMap<String, RouteStats>,
    examples: examples::Collector,
    overflow: Overflow,
}

/// The noise verdicts: every (route, field)'s row for the report and the status its
/// differences get.
struct Noise {
    fields: Vec<FieldRow>,
    status: BTreeMap<(String, String), (DiffStatus, Option<String>)>,
}

/// What pass 2 over the differences found.
struct Diffs {
    /// Real-difference counts of each pair that has any, in pair order.
    per_pair: Vec<(u64, RealCounts)>,
    drift: Vec<Drift>,
}

/// Checks every file and sums what their metadata says: rows, baseline origins, and the capture
/// counters of each run (cumulative per run: the newest file of a run has the largest).
fn summarize_inputs(files: &[PathBuf]) -> Result<ShardInputs> {
    let infos = PairReader::check_all(files)?;
    let mut summary = ShardInputs { files: files.len(), ..ShardInputs::default() };
    for info in &infos {
        summary.pairs_in_files += info.rows;
        *summary.baseline_origin.entry(info.baseline_origin.clone()).or_default() += 1;
        if let Some(run) = &info.run_id {
            let entry = summary.runs.entry(run.clone()).or_default();
            for (k, v) in &info.counters {
                let e = entry.entry(k.clone()).or_default();
                *e = (*e).max(*v);
            }
        }
    }
    Ok(summary)
}

fn add_truncated(sum: &mut Truncated, t: &Truncated) {
    sum.request += t.request;
    sum.baseline += t.baseline;
    sum.canary += t.canary;
    sum.secondary += t.secondary;
}

/// The latency sample of one route is seeded by the route's name.
fn route_stats(route: &str, opts: &Options) -> RouteStats {
    RouteStats::new(opts.latency_cap, opts.seed ^ xxhash_rust::xxh3::xxh3_64(route.as_bytes()))
}

/// Each route's latency sample size from how many pairs it has (`sizes`, an upper bound on the
/// latency pairs it will offer): at most `cap`, and all routes together at most `budget`, filled
/// like water — a route smaller than an equal share of what is left keeps every pair, the larger
/// ones share the rest equally (each at least 1). Under the budget every route keeps
/// `min(size, cap)`, as with no budget at all.
fn route_caps(sizes: &[u64], cap: usize, budget: usize) -> Vec<usize> {
    let want = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).min(cap);
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let mut caps = vec![0; sizes.len()];
    let mut left = budget;
    for (done, &i) in order.iter().enumerate() {
        let share = (left / (sizes.len() - done)).max(1);
        caps[i] = want(sizes[i]).min(share);
        left = left.saturating_sub(caps[i]);
    }
    caps
}

/// The sorted indices of a seeded uniform sample, when `--sample` asks for fewer pairs than
/// there are.
/// Counts the bodies analyze could not decode, and those it cut at the decoded-size cap (a body
/// the capture already cut is counted once, by [`Truncated::add`]).
fn count_decoding(summary: &mut MapState, e: &Evaluated) {
    let sides = [
        (Some(&e.baseline), &mut summary.truncated.baseline, &mut summary.undecodable.baseline),
        (Some(&e.canary), &mut summary.truncated.canary, &mut summary.undecodable.canary),
        (e.secondary.as_ref(), &mut summary.truncated.secondary, &mut summary.undecodable.secondary),
    ];
    for (side, truncated, undecodable) in sides {
        if let Some(side) = side {
            *truncated += u64::from(side.cut_at_decoded_cap);
            *undecodable += u64::from(side.undecodable.is_some());
        }
    }
}

impl MapState {
    /// Moves the example candidates — most of a state's size, the bodies of the pairs that may
    /// become examples — out of memory into `path`; the merge reads them back
    /// ([`Partial::examples`]). serve keeps every pair file's state, so it keeps them on disk.
    pub fn examples_apart(&mut self, path: &Path) -> Result<()> {
        let examples = std::mem::take(&mut self.examples);
        let bytes = serde_json::to_vec(&examples)
            .map_err(|source| Error::Output { path: path.to_owned(), source: source.into() })?;
        std::fs::write(path, bytes).map_err(|source| Error::Output { path: path.to_owned(), source: source.into() })
    }
}

/// Example candidates written by [`MapState::examples_apart`].
fn read_examples(path: &Path) -> Result<examples::Collector> {
    let bytes = std::fs::read(path).map_err(|source| Error::Output { path: path.to_owned(), source: source.into() })?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Output { path: path.to_owned(), source: source.into() })
}

/// A batch as the reader thread hands it on: the warm-up end of its file's run, its records, and
/// its file's own rules when they differ from the policy's.
type ReadBatch = (Option<i64>, Vec<PairRecord>, Option<Arc<Rules>>);
/// A pair as pass 1 evaluated it, with its record.
type EvaluatedPair = (Evaluated, PairRecord);

/// The rules each file is evaluated by: the policy's, except that a file carrying its baseline's
/// gRPC descriptors (capture learnt them by server reflection) decodes its messages by them
/// when the policy names no descriptor set. Rules are made once per distinct set, when the first
/// file carrying it is read: an agent's files all carry the same one.
struct FileRules<'a> {
    policy: &'a Rules,
    /// The last set seen (its base64 text) and the rules made from it.
    last: Option<(String, Arc<Rules>)>,
}

impl<'a> FileRules<'a> {
    fn new(policy: &'a Rules) -> Self {
        Self { policy, last: None }
    }

    fn of(&mut self, file: &FileInfo) -> Result<Option<Arc<Rules>>> {
        let Some(set) = file.metadata.get(shadowdiff_format::schema::meta::GRPC_DESCRIPTORS) else {
            return Ok(None);
        };
        if self.policy.grpc_schema.is_some() {
            return Ok(None);
        }
        if let Some((seen, rules)) = &self.last
            && seen == set
        {
            return Ok(Some(Arc::clone(rules)));
        }
        let label = PathBuf::from(format!(
            "in the metadata of {} ({})",
            file.path.display(),
            shadowdiff_format::schema::meta::GRPC_DESCRIPTORS
        ));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(set.trim())
            .map_err(|e| Error::DescriptorSet { path: label.clone(), message: format!("not base64: {e}") })?;
        let mut rules = self.policy.clone();
        rules.grpc_schema = Some(crate::grpc::Schema::from_bytes(&bytes, &label)?);
        let rules = Arc::new(rules);
        self.last = Some((set.clone(), Arc::clone(&rules)));
        Ok(Some(rules))
    }
}

/// Which pairs of the files read are judged: the selection's, and of those the sample.
#[derive(Debug, Clone, Default)]
struct Keep {
    selection: Selection,
    /// `--sample`: the sorted indices, among the pairs kept, of those analyzed.
    sample: Option<Vec<u64>>,
}

/// The agent run that wrote a file: its run id, else its agent, else the file itself (a file
/// rewritten by another tool that dropped shadowdiff's metadata).
fn run_key(info: &FileInfo) -> String {
    match (&info.run_id, &info.agent) {
        (Some(run), _) => format!("run {run}"),
        (None, Some(agent)) => format!("agent {agent}"),
        (None, None) => format!("file {}", info.path.display()),
    }
}

/// Calls `f` with every batch of `captured_at` values (microseconds since the epoch) of
/// `files`, and the file it came from, reading that column only.
fn scan_captured_at(files: &[PathBuf], mut f: impl FnMut(&FileInfo, &[i64])) -> Result<()> {
    let columns = Some(vec![shadowdiff_format::schema::CAPTURED_AT]);
    for batch in PairReader::from_files(files.to_vec(), ReadOptions { batch_size: 65_536, columns }) {
        let batch = batch?;
        let col = batch.batch.column(0);
        let at = col.as_any().downcast_ref::<arrow_array::TimestampMicrosecondArray>().ok_or_else(|| {
            Error::Internal { message: format!("captured_at read as {} rather than timestamps", col.data_type()) }
        })?;
        f(&batch.file, at.values());
    }
    Ok(())
}

/// The earliest and latest `captured_at` of `file`, in microseconds since the epoch; `None`
/// when it has no rows.
pub fn file_span(file: &Path) -> Result<Option<(i64, i64)>> {
    let mut span: Option<(i64, i64)> = None;
    scan_captured_at(&[file.to_owned()], |_, at| {
        if let (Some(&lo), Some(&hi)) = (at.iter().min(), at.iter().max()) {
            span = Some(span.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
    })?;
    Ok(span)
}

/// Each run's earliest `captured_at` in `files`, in microseconds since the epoch.
fn run_starts(files: &[PathBuf]) -> Result<BTreeMap<String, i64>> {
    let mut starts: BTreeMap<String, i64> = BTreeMap::new();
    scan_captured_at(files, |file, at| {
        if let Some(&first) = at.iter().min() {
            let start = starts.entry(run_key(file)).or_insert(first);
            *start = (*start).min(first);
        }
    })?;
    Ok(starts)
}

/// The pairs of `files` that `keep` keeps.
fn count_kept(files: &[PathBuf], keep: &Selection) -> Result<u64> {
    let mut n = 0u64;
    scan_captured_at(files, |file, at| {
        let warm_end = keep.warm_end(file);
        let kept = |us: i64| keep.window.contains_micros(us) && warm_end.is_none_or(|end| us >= end);
        n += at.iter().filter(|&&us| kept(us)).count() as u64;
    })?;
    Ok(n)
}

fn sample_indices(population: u64, opts: &Options) -> Option<Vec<u64>> {
    opts.sample.filter(|&n| n < population).map(|n| {
        let mut rng = SmallRng::seed_from_u64(opts.seed);
        let mut picked: Vec<u64> =
            rand::seq::index::sample(&mut rng, population as usize, n as usize).into_iter().map(|i| i as u64).collect();
        picked.sort_unstable();
        picked
    })
}

/// Pass 1: evaluates every (selected) pair and counts it, keeps example candidates, and writes
/// the raw rows to `scratch`. Three stages so that reading and writing overlap the parallel
/// evaluation: a reader thread decodes batches, this thread templates routes, evaluates a batch
/// on rayon and counts, a writer thread writes the raw rows. Bounded channels keep memory to a
/// few batches.
fn evaluate_pass(
    files: Vec<PathBuf>,
    inputs: ShardInputs,
    keep: &Keep,
    policy: &Policy,
    opts: &Options,
    progress: &dyn Progress,
    scratch: &Scratch,
) -> Result<MapState> {
    let mut pair_sink = Sink::create(&scratch.pairs, RawPairs::schema())?;
    let mut diff_sink = Sink::create(&scratch.diffs, RawDiffs::schema())?;
    let mut templater = RouteRecorder::new(policy.rules.routes.clone());
    let mut counted = Counted {
        overall: RouteStats::new(opts.latency_cap, opts.seed),
        routes: BTreeMap::new(),
        examples: examples::Collector::new(),
        overflow: Overflow::default(),
    };
    let mut summary = MapState { inputs, ..MapState::default() };
    let summary = &mut summary;
    let window = keep.selection.window;
    let reader = PairReader::from_files(files, ReadOptions { batch_size: opts.batch_size, columns: None });
    let (rec_tx, rec_rx) = std::sync::mpsc::sync_channel::<Result<ReadBatch>>(2);
    let mut file_rules = FileRules::new(&policy.rules);
    let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<(bool, RecordBatch)>(4);
    let stage_failed = || Error::Internal { message: "an analyze pipeline thread panicked".into() };
    // Pairs kept so far (in the window, past the warm-up): the next pair's position.
    let mut global = 0u64;
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            for batch in reader {
                let records = batch.map_err(Error::from).and_then(|b| {
                    let rules = file_rules.of(&b.file)?;
                    Ok((keep.selection.warm_end(&b.file), b.records()?, rules))
                });
                let stop = records.is_err();
                if rec_tx.send(records).is_err() || stop {
                    break;
                }
            }
        });
        let writer = scope.spawn(move || -> Result<()> {
            for (is_pairs, batch) in out_rx {
                if is_pairs { pair_sink.write(&batch)? } else { diff_sink.write(&batch)? }
            }
            pair_sink.finish()?;
            diff_sink.finish()?;
            Ok(())
        });
        let (mut pair_rows, mut diff_rows) = (RawPairs::default(), RawDiffs::default());
        let global = &mut global;
        let mut cursor = 0usize;
        let key_rules = &policy.rules.routes.keys;
        // Counts one evaluated batch, in input order, and hands its rows to the writer (all that
        // are left when `last`); false when the writer has stopped (on an error, which joining it
        // reports).
        let mut settle =
            |evaluated: Vec<EvaluatedPair>, rules: &Rules, summary: &mut MapState, last: bool| -> Result<bool> {
                for (e, record) in &evaluated {
                    counted.count(e, record, opts);
                    summary.truncated.add(record);
                    count_decoding(summary, e);
                    if let Some(schema) = &rules.grpc_schema
                        && crate::grpc::is_grpc(
                            record.baseline.header("content-type").map(|h| h.value_lossy()).as_deref(),
                        )
                        && schema.method(&record.path).is_none()
                    {
                        shadowdiff_format::verdict::count_undescribed(&mut summary.grpc_undescribed, &record.path, 1);
                    }
                    pair_rows.push(e);
                    for f in &e.raw {
                        diff_rows.push(e, f);
                    }
                }
                summary.pairs_analyzed += evaluated.len() as u64;
                let full = if last { 1 } else { 8192 };
                if pair_rows.len() >= full && out_tx.send((true, pair_rows.take()?)).is_err() {
                    return Ok(false);
                }
                if diff_rows.len() >= full && out_tx.send((false, diff_rows.take()?)).is_err() {
                    return Ok(false);
                }
                progress.advance(evaluated.len() as u64);
                Ok(true)
            };
        let result = (|| -> Result<()> {
            // The batch evaluated last, counted while the next one is evaluated: counting is in
            // order on one thread, and left alone it kept the other core idle for a tenth of pass 1.
            let mut pending: Option<(Vec<EvaluatedPair>, Option<Arc<Rules>>)> = None;
            for records in rec_rx {
                let (warm_end, mut records, file_rules) = records?;
                let rules = file_rules.as_deref().unwrap_or(&policy.rules);
                if !window.is_unbounded() {
                    let before = records.len();
                    records.retain(|r| window.contains(r.captured_at));
                    summary.pairs_outside += (before - records.len()) as u64;
                }
                if let Some(end) = warm_end {
                    let before = records.len();
                    records.retain(|r| r.captured_at.timestamp_micros() >= end);
                    summary.pairs_left_out += (before - records.len()) as u64;
                }
                let n = records.len() as u64;
                let mut picked = Vec::with_capacity(records.len());
                for (i, r) in records.into_iter().enumerate() {
                    let index = *global + i as u64;
                    if let Some(sel) = keep.sample.as_deref() {
                        while cursor < sel.len() && sel[cursor] < index {
                            cursor += 1;
                        }
                        if cursor >= sel.len() || sel[cursor] != index {
                            continue;
                        }
                    }
                    picked.push((index, r));
                }
                *global += n;
                // Keys are read in parallel (a body to decode and parse), routes assigned in order.
                let keys: Vec<KeyOutcome> = if key_rules.is_empty() {
                    Vec::new()
                } else {
                    let cap = policy.rules.max_decoded_body;
                    picked.par_iter().map(|(_, r)| route_key::key_of(key_rules, r, cap)).collect()
                };
                let mut items = Vec::with_capacity(picked.len());
                for (k, (index, r)) in picked.into_iter().enumerate() {
                    let key = keys.get(k);
                    let route = templater.route_keyed(&r.path, key, index);
                    match key {
                        Some(KeyOutcome::Key(_)) => summary.route_keys.keyed += 1,
                        Some(KeyOutcome::Missing(why)) => summary.route_keys.add_unkeyed(&route, why),
                        _ => {}
                    }
                    items.push((index, r, route));
                }
                let evaluate_batch = || {
                    items.into_par_iter().map(|(i, r, route)| (evaluate(i, &r, route, rules), r)).collect::<Vec<_>>()
                };
                let (evaluated, settled) = match pending.take() {
                    None => (evaluate_batch(), true),
                    Some((done, done_rules)) => {
                        let summary = &mut *summary;
                        let settle = &mut settle;
                        let count =
                            move || settle(done, done_rules.as_deref().unwrap_or(&policy.rules), summary, false);
                        let (evaluated, settled) = rayon::join(evaluate_batch, count);
                        (evaluated, settled?)
                    }
                };
                if !settled {
                    return Ok(());
                }
                pending = Some((evaluated, file_rules));
            }
            let (done, done_rules) = pending.take().unwrap_or_default();
            settle(done, done_rules.as_deref().unwrap_or(&policy.rules), summary, true)?;
            Ok(())
        })();
        drop(out_tx);
        let written = writer.join().map_err(|_| stage_failed())?;
        result?;
        written
    })?;
    summary.kept = global;
    summary.overall = counted.overall.into_counts();
    summary.routes = counted.routes.into_iter().map(|(r, s)| (r, s.into_counts())).collect();
    summary.routes_seen = templater.into_seen();
    summary.examples = counted.examples;
    Ok(std::mem::take(summary))
}

impl Counted {
    /// Counts one evaluated pair overall and on its route, and offers it as an example.
    fn count(&mut self, e: &Evaluated, record: &PairRecord, opts: &Options) {
        self.examples.offer(e, record);
        self.overall.add(e, false);
        self.routes.entry(e.route.clone()).or_insert_with(|| route_stats(&e.route, opts)).add(e, true);
    }
}

/// The noise verdict of every (route, field) that differed.
fn classify(routes: &BTreeMap<String, RouteStats>, policy: &Policy) -> Noise {
    let mut noise = Noise { fields: Vec::new(), status: BTreeMap::new() };
    for (route, stats) in routes {
        for report in stats.noise.report(policy.noise) {
            let (s, why) = report.verdict.status();
            noise.status.insert((route.clone(), report.field.clone()), (s, why.map(str::to_owned)));
            noise.fields.push(FieldRow { route: route.clone(), severity: Severity::Additive, report });
        }
    }
    noise
}

/// Pass 2 over the differences: gives each its status, counts each pair's real differences
/// (by severity) on its route and overall, collects the numeric drift of real numeric
/// differences, and writes diffs.parquet. Sets each field row's severity to the strongest seen.
fn diffs_pass(
    raw: &[(&Path, u64)],
    rename: &dyn Fn(&str) -> Option<String>,
    out: &Path,
    noise: &mut Noise,
    counted: &mut Counted,
) -> Result<Diffs> {
    let mut sink = Sink::create_parallel(out, outputs::DIFFS_SCHEMA.clone())?;
    let mut state = DiffsState::default();
    let batches = raw.iter().map(|(path, offset)| Ok((outputs::read(path)?, *offset))).collect::<Result<Vec<_>>>()?;
    for batch in batches.into_iter().flat_map(|(b, offset)| b.map(move |b| b.map(|b| (b, offset)))) {
        let (batch, offset) = batch?;
        let batch = outputs::rebase(batch, offset, rename)?;
        let index = outputs::column::<UInt64Array>(&batch, outputs::PAIR_INDEX)?;
        let pair_id = outputs::column::<StringArray>(&batch, outputs::PAIR_ID)?;
        let route = outputs::column::<StringArray>(&batch, outputs::ROUTE)?;
        let field = outputs::column::<StringArray>(&batch, outputs::FIELD)?;
        let severity = outputs::column::<StringArray>(&batch, outputs::SEVERITY)?;
        let explained = outputs::column::<StringArray>(&batch, outputs::EXPLAINED)?;
        let b_num = outputs::column::<Float64Array>(&batch, outputs::BASELINE_NUMBER)?;
        let c_num = outputs::column::<Float64Array>(&batch, outputs::CANARY_NUMBER)?;
        let mut statuses = Vec::with_capacity(batch.num_rows());
        let mut reasons = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let (r, f) = (route.value(i), field.value(i));
            let key = (r.to_owned(), f.to_owned());
            let sev = severity.value(i).parse::<Severity>().unwrap_or(Severity::Additive);
            if state.severity.get(&key).is_none_or(|&have| have < sev) {
                state.severity.insert(key.clone(), sev);
            }
            let (status, reason) = if explained.is_valid(i) {
                (DiffStatus::Explained, Some(explained.value(i).to_owned()))
            } else {
                noise.status.get(&key).cloned().unwrap_or((DiffStatus::Real, None))
            };
            statuses.push(status.as_str());
            reasons.push(reason);
            state.pair(index.value(i), r);
            if status == DiffStatus::Real {
                state.real(r, f, sev, counted);
                if b_num.is_valid(i) && c_num.is_valid(i) {
                    state
                        .drift
                        .entry(key)
                        .or_insert_with(|| Drift { route: r.to_owned(), field: f.to_owned(), ..Drift::default() })
                        .add(pair_id.value(i), b_num.value(i), c_num.value(i));
                }
            }
        }
        sink.write(&outputs::finish_diffs(&batch, statuses, reasons)?)?;
    }
    state.close();
    sink.finish()?;
    for row in &mut noise.fields {
        let key = (row.route.clone(), row.report.field.clone());
        row.severity = state.severity.get(&key).copied().unwrap_or(Severity::Additive);
    }
    let mut drift: Vec<Drift> = state.drift.into_values().collect();
    drift.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.route.cmp(&b.route)).then_with(|| a.field.cmp(&b.field)));
    Ok(Diffs { per_pair: state.per_pair, drift })
}

/// What [`diffs_pass`] carries from one row to the next. Rows come in pair order.
#[derive(Default)]
struct DiffsState {
    per_pair: Vec<(u64, RealCounts)>,
    /// The pair being read: its index, route and real-difference counts.
    current: Option<(u64, String, RealCounts)>,
    severity: BTreeMap<(String, String), Severity>,
    drift: BTreeMap<(String, String), Drift>,
}

impl DiffsState {
    /// Moves on to pair `index` (closing the previous one) unless it is the current one.
    fn pair(&mut self, index: u64, route: &str) {
        if self.current.as_ref().is_none_or(|c| c.0 != index) {
            self.close();
            self.current = Some((index, route.to_owned(), RealCounts::default()));
        }
    }

    /// Counts one real difference of the current pair.
    fn real(&mut self, route: &str, field: &str, severity: Severity, counted: &mut Counted) {
        if let Some((_, _, c)) = self.current.as_mut() {
            c.real += 1;
            match severity {
                Severity::Breaking => c.breaking += 1,
                Severity::Changed => c.changed += 1,
                Severity::Additive => c.additive += 1,
            }
        }
        for stats in [counted.routes.get_mut(route), Some(&mut counted.overall)].into_iter().flatten() {
            *stats.real_fields.entry(field.to_owned()).or_default() += 1;
            if severity == Severity::Breaking {
                *stats.breaking_fields.entry(field.to_owned()).or_default() += 1;
            }
        }
    }

    /// Closes the current pair, keeping its real-difference counts when it has any (pairs.parquet
    /// carries them, and polars counts the different and breaking pairs from there).
    fn close(&mut self) {
        if let Some((index, _, c)) = self.current.take()
            && c.real > 0
        {
            self.per_pair.push((index, c));
        }
    }
}

/// Pass 2 over the pairs: appends each pair's real-difference counts and its final outcome,
/// writes pairs.parquet, and offers each pair's latencies to its route's and the overall
/// samples, in input order (so the samples are those of one process however the input was
/// split).
fn pairs_pass(
    raw: &[(&Path, u64)],
    rename: &dyn Fn(&str) -> Option<String>,
    out: &Path,
    per_pair: &[(u64, RealCounts)],
    counted: &mut Counted,
    opts: &Options,
) -> Result<()> {
    let mut sink = Sink::create_parallel(out, outputs::PAIRS_SCHEMA.clone())?;
    let mut next = per_pair.iter().peekable();
    for (path, offset) in raw {
        for batch in outputs::read(path)? {
            let batch = outputs::rebase(batch?, *offset, rename)?;
            let index = outputs::column::<UInt64Array>(&batch, outputs::PAIR_INDEX)?;
            let mut counts = vec![RealCounts::default(); batch.num_rows()];
            for (i, c) in counts.iter_mut().enumerate() {
                let idx = index.value(i);
                while next.peek().is_some_and(|(j, _)| *j < idx) {
                    next.next();
                }
                if let Some((j, rc)) = next.peek()
                    && *j == idx
                {
                    *c = *rc;
                }
            }
            sample_latencies(&batch, counted, opts)?;
            sink.write(&outputs::finish_pairs(&batch, &counts)?)?;
        }
    }
    sink.finish()?;
    Ok(())
}

/// Offers the latencies of a batch of raw rows to the samples, as pass 1 once did: every pair
/// but those the canary skipped, (reference, canary) in milliseconds where both sides answered.
fn sample_latencies(batch: &RecordBatch, counted: &mut Counted, opts: &Options) -> Result<()> {
    use arrow_array::UInt16Array;
    let route = outputs::column::<StringArray>(batch, outputs::ROUTE)?;
    let outcome = outputs::column::<StringArray>(batch, outputs::OUTCOME)?;
    let captured = outputs::column::<arrow_array::TimestampMicrosecondArray>(batch, outputs::CAPTURED_AT)?;
    let side = |status: &str, latency: &str, error: &str| -> Result<_> {
        Ok((
            outputs::column::<UInt16Array>(batch, status)?,
            outputs::column::<UInt64Array>(batch, latency)?,
            outputs::column::<StringArray>(batch, error)?,
        ))
    };
    use outputs as col;
    let b = side(col::BASELINE_STATUS, col::BASELINE_LATENCY_US, col::BASELINE_ERROR)?;
    let c = side(col::CANARY_STATUS, col::CANARY_LATENCY_US, col::CANARY_ERROR)?;
    let s = side(col::SECONDARY_STATUS, col::SECONDARY_LATENCY_US, col::SECONDARY_ERROR)?;
    // A side's latency counts when it answered: no transport error, a status, a latency.
    let usable = |(st, lat, err): &(&UInt16Array, &UInt64Array, &StringArray), i: usize| {
        (err.is_null(i) && st.is_valid(i) && lat.is_valid(i)).then(|| lat.value(i) as f64 / 1000.0)
    };
    let skipped = Outcome::CanarySkipped.as_str();
    for i in 0..batch.num_rows() {
        if outcome.value(i) == skipped {
            continue;
        }
        let Some(canary) = usable(&c, i) else { continue };
        let baseline = usable(&b, i).map(|r| (r, canary));
        let secondary = usable(&s, i).map(|r| (r, canary));
        if baseline.is_none() && secondary.is_none() {
            continue;
        }
        let at = captured.is_valid(i).then(|| captured.value(i));
        counted.overall.push_latency(baseline, secondary, at);
        let r = route.value(i);
        if !counted.routes.contains_key(r) {
            counted.routes.insert(r.to_owned(), route_stats(r, opts));
        }
        if let Some(stats) = counted.routes.get_mut(r) {
            stats.push_latency(baseline, secondary, at);
        }
    }
    Ok(())
}

/// Fields with a real difference, most frequent first.
pub fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_caps_fill_the_budget_like_water() {
        // Under the budget every route keeps all its pairs, up to the per-route cap.
        assert_eq!(route_caps(&[10, 500, 3], 100, 1000), [10, 100, 3]);
        assert_eq!(route_caps(&[300, 200, 500], 2_000_000, 1000), [300, 200, 500]);
        // Over it, the routes smaller than an equal share keep everything; the rest share what is left.
        assert_eq!(
            route_caps(&[3_000_000, 100, 2_000_000, 900_000], 2_000_000, 2_000_000),
            [666_634, 100, 666_633, 666_633]
        );
        let caps = route_caps(
            &[3_000_000, 2_000_929, 1_798_211, 1_001_102, 998_568, 700_618, 299_601, 200_026],
            2_000_000,
            2_000_000,
        );
        assert!(caps.iter().sum::<usize>() <= 2_000_000, "{caps:?}");
        assert_eq!(&caps[6..], [257_139, 200_026]);
        // More routes than the budget: each keeps at least one pair.
        assert_eq!(route_caps(&[5, 5, 5], 10, 2), [1, 1, 1]);
        assert!(route_caps(&[], 10, 10).is_empty());
    }

    fn stats(baseline_pairs: u64, secondary_pairs: u64) -> RouteStats {
        let mut s = RouteStats::empty(100, 1);
        for i in 0..baseline_pairs.max(secondary_pairs) {
            s.count(&PairFacts {
                latency_ms: (i < baseline_pairs).then_some((1.0, 2.0)),
                secondary_latency_ms: (i < secondary_pairs).then_some((3.0, 2.0)),
                ..PairFacts::default()
            });
        }
        s
    }

    #[test]
    fn latency_is_judged_against_the_secondary_when_most_pairs_have_one() {
        use LatencyReference::*;
        assert_eq!(latency_reference(Auto, &stats(100, 100)), Secondary);
        assert_eq!(latency_reference(Auto, &stats(100, 50)), Secondary, "half is enough");
        assert_eq!(latency_reference(Auto, &stats(100, 49)), Baseline);
        assert_eq!(latency_reference(Auto, &stats(100, 0)), Baseline, "no secondary");
        assert_eq!(latency_reference(Baseline, &stats(100, 100)), Baseline, "asked for");
        assert_eq!(latency_reference(Secondary, &stats(100, 0)), Secondary, "asked for, even without pairs");
        // The swap puts the secondary's pairs where every latency statistic reads them.
        let mut s = stats(10, 10);
        s.use_secondary();
        assert!(s.latency.items().iter().all(|&(r, c)| r == 3.0 && c == 2.0));
    }
}
