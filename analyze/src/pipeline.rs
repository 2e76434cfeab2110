//! The streaming pipeline: pair files in, `pairs.parquet` / `diffs.parquet` and per-endpoint
//! aggregates out, in bounded memory.
//!
//! **Pass 1** streams the input a batch at a time. Routes are templated in order (the templater
//! keeps state), then every pair of the batch is evaluated in parallel with rayon. Each pair's
//! raw row and raw differences go to temporary Parquet files; what the verdict needs is counted
//! per route: error outcomes (paired, for McNemar), status mismatches, latency pairs (a seeded
//! reservoir, capped at [`Options::latency_cap`] per route and overall — beyond it the
//! statistics run on a uniform sample) and the Diffy noise counters per (route, field).
//!
//! **Pass 2** runs once every (route, field) has its noise verdict. It streams the *temporary*
//! files, not the input: each difference gets its status (real, noise, suspected noise,
//! explained), each pair its count of real differences, and the final files are written. Memory
//! holds the counters, the latency reservoirs, and one small entry per pair that has a real
//! difference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use shadowdiff_format::{FileInfo, PairReader, PairRecord, ReadOptions, TimeWindow, resolve_inputs};

use crate::aggregate::{self, EndpointRow};
use crate::error::{Error, Result};
use crate::evaluate::{Evaluated, Outcome, SideOutcome, evaluate};
use crate::examples::{self, Example};
use crate::json::Difference;
use crate::noise::NoiseCounter;
use crate::outputs::{self, RawDiffs, RawPairs, RealCounts, Sink};
use crate::policy::{LatencyReference, Policy};
use crate::route::{Overflow, RouteTemplater};
use crate::route_key::{self, KeyOutcome};
use shadowdiff_format::vocab::{DiffStatus, Severity};

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

/// A seeded uniform reservoir (Vitter's algorithm R).
#[derive(Debug, Clone)]
pub struct Reservoir {
    cap: usize,
    seen: u64,
    items: Vec<(f64, f64)>,
    rng: SmallRng,
}

impl Reservoir {
    pub fn new(cap: usize, seed: u64) -> Self {
        Self { cap: cap.max(1), seen: 0, items: Vec::new(), rng: SmallRng::seed_from_u64(seed) }
    }

    pub fn push(&mut self, item: (f64, f64)) {
        self.seen += 1;
        if self.items.len() < self.cap {
            self.items.push(item);
        } else {
            let j = self.rng.random_range(0..self.seen);
            if (j as usize) < self.cap {
                self.items[j as usize] = item;
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
}

/// Baseline and canary counts of one error kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCount {
    pub baseline: u64,
    pub canary: u64,
}

/// Paired error outcomes of the pairs where the canary was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
        if let Some(l) = f.latency_ms {
            self.latency.push(l);
        }
        if let Some(l) = f.secondary_latency_ms {
            self.latency_secondary.push(l);
        }
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
        let paired = |reference: Option<u64>| match (reference, e.canary.usable_latency()) {
            (Some(r), Some(c)) => Some((r as f64 / 1000.0, c as f64 / 1000.0)),
            _ => None,
        };
        self.count(&PairFacts {
            status_mismatch: (e.outcome == Outcome::StatusMismatch).then_some((e.baseline.status, e.canary.status)),
            grpc_status_mismatch: (e.outcome == Outcome::StatusMismatch && e.baseline.status == e.canary.status)
                .then(|| {
                    Some((e.baseline.grpc_status.as_ref()?.static_name(), e.canary.grpc_status.as_ref()?.static_name()))
                })
                .flatten(),
            baseline_error: e.baseline.error_label().as_deref(),
            canary_error: e.canary.error_label().as_deref(),
            latency_ms: paired(e.baseline.usable_latency()),
            secondary_latency_ms: paired(e.secondary.as_ref().and_then(SideOutcome::usable_latency)),
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

/// Runs every pass over `inputs`: [`summarize_inputs`], [`evaluate_pass`] (pass 1: evaluate and
/// count every pair, write raw rows), [`classify`] (the noise verdicts), [`diffs_pass`] and
/// [`pairs_pass`] (pass 2: the final Parquet files), the example pairs, and the endpoint table
/// (polars over pairs.parquet).
pub fn run<S: AsRef<str>>(inputs: &[S], policy: &Policy, opts: &Options, progress: &dyn Progress) -> Result<Analysis> {
    let files = resolve_inputs(inputs)?;
    let (files, files_pruned) = opts.window.prune(files);
    let mut summary = summarize_inputs(&files, opts)?;
    let window = opts.window;
    if !window.is_unbounded() {
        summary.window = Some(InputWindow { since: window.since, until: window.until, files_pruned, pairs_outside: 0 });
    }
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
    if summary.pairs_in_files == 0 {
        return Err(Error::Empty { input: input_name() });
    }
    let mut keep = Keep { window, ..Keep::default() };
    if let Some(warmup) = opts.warmup.filter(|w| !w.is_zero()) {
        let starts = run_starts(&files)?;
        let us = i64::try_from(warmup.as_micros()).unwrap_or(i64::MAX);
        keep.warm_end = starts.iter().map(|(run, start)| (run.clone(), start.saturating_add(us))).collect();
        summary.warmup = Some(InputWarmup { seconds: warmup.as_secs_f64(), runs: starts.len(), pairs_left_out: 0 });
    }
    // A sample is drawn from the pairs kept, so they are counted first (one column).
    let population = match opts.sample {
        Some(_) if !keep.keeps_all() => count_kept(&files, &keep)?,
        _ => summary.pairs_in_files,
    };
    keep.sample = sample_indices(population, opts);
    std::fs::create_dir_all(&opts.out)
        .map_err(|source| Error::Output { path: opts.out.clone(), source: source.into() })?;
    progress.start(keep.sample.as_ref().map_or(summary.pairs_in_files, |s| s.len() as u64));
    let scratch = Scratch { pairs: opts.out.join(".pairs.raw.parquet"), diffs: opts.out.join(".diffs.raw.parquet") };
    let counted = evaluate_pass(files, &keep, policy, opts, &mut summary, progress, &scratch);
    let mut counted = match counted {
        Ok(c) if summary.pairs_analyzed > 0 => c,
        other => {
            scratch.remove();
            other?;
            return Err(Error::Empty { input: input_name() });
        }
    };

    progress.phase("classifying differences");
    let mut noise = classify(&counted.routes, policy);
    progress.phase("writing diffs.parquet");
    let diffs_file = opts.out.join(outputs::DIFFS_FILE);
    let diffs = diffs_pass(&scratch.diffs, &diffs_file, &mut noise, &mut counted)?;
    progress.phase("writing pairs.parquet");
    let pairs_file = opts.out.join(outputs::PAIRS_FILE);
    pairs_pass(&scratch.pairs, &pairs_file, &diffs.per_pair)?;
    scratch.remove();

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
    fn remove(&self) {
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
fn summarize_inputs(files: &[PathBuf], opts: &Options) -> Result<InputSummary> {
    let infos = PairReader::check_all(files)?;
    let mut summary =
        InputSummary { files: files.len(), seed: opts.seed, sample: opts.sample, ..InputSummary::default() };
    let mut runs: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for info in &infos {
        summary.pairs_in_files += info.rows;
        *summary.baseline_origin.entry(info.baseline_origin.clone()).or_default() += 1;
        if let Some(run) = &info.run_id {
            let entry = runs.entry(run.clone()).or_default();
            for (k, v) in &info.counters {
                let e = entry.entry(k.clone()).or_default();
                *e = (*e).max(*v);
            }
        }
    }
    for counters in runs.values() {
        for (k, v) in counters {
            *summary.counters.entry(k.clone()).or_default() += v;
        }
    }
    Ok(summary)
}

/// The sorted indices of a seeded uniform sample, when `--sample` asks for fewer pairs than
/// there are.
/// Counts the bodies analyze could not decode, and those it cut at the decoded-size cap (a body
/// the capture already cut is counted once, by [`Truncated::add`]).
fn count_decoding(summary: &mut InputSummary, e: &Evaluated) {
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

/// Which pairs of the files read are judged: those in the window, past their run's warm-up, and
/// of those the sample.
#[derive(Debug, Clone, Default)]
struct Keep {
    window: TimeWindow,
    /// Per run ([`run_key`]): the end of its warm-up, in microseconds since the epoch.
    warm_end: BTreeMap<String, i64>,
    /// `--sample`: the sorted indices, among the pairs kept, of those analyzed.
    sample: Option<Vec<u64>>,
}

impl Keep {
    fn keeps_all(&self) -> bool {
        self.window.is_unbounded() && self.warm_end.is_empty()
    }

    /// The end of the warm-up of the run that wrote `file`, when `--warmup` was given.
    fn warm_end(&self, file: &FileInfo) -> Option<i64> {
        self.warm_end.get(&run_key(file)).copied()
    }
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
fn count_kept(files: &[PathBuf], keep: &Keep) -> Result<u64> {
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
    keep: &Keep,
    policy: &Policy,
    opts: &Options,
    summary: &mut InputSummary,
    progress: &dyn Progress,
    scratch: &Scratch,
) -> Result<Counted> {
    let mut pair_sink = Sink::create(&scratch.pairs, RawPairs::schema())?;
    let mut diff_sink = Sink::create(&scratch.diffs, RawDiffs::schema())?;
    let mut templater = RouteTemplater::new(policy.rules.routes.clone());
    let mut counted = Counted {
        overall: RouteStats::new(opts.latency_cap, opts.seed),
        routes: BTreeMap::new(),
        examples: examples::Collector::new(),
        overflow: Overflow::default(),
    };
    let reader = PairReader::from_files(files, ReadOptions { batch_size: opts.batch_size, columns: None });
    let (rec_tx, rec_rx) = std::sync::mpsc::sync_channel::<Result<(Option<i64>, Vec<PairRecord>)>>(2);
    let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<(bool, RecordBatch)>(4);
    let stage_failed = || Error::Internal { message: "an analyze pipeline thread panicked".into() };
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            for batch in reader {
                let records = batch.and_then(|b| Ok((keep.warm_end(&b.file), b.records()?))).map_err(Error::from);
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
        let mut global = 0u64;
        let mut cursor = 0usize;
        let key_rules = &policy.rules.routes.keys;
        let result = (|| -> Result<()> {
            for records in rec_rx {
                let (warm_end, mut records) = records?;
                if let Some(w) = summary.window.as_mut() {
                    let before = records.len();
                    records.retain(|r| keep.window.contains(r.captured_at));
                    w.pairs_outside += (before - records.len()) as u64;
                }
                if let (Some(end), Some(w)) = (warm_end, summary.warmup.as_mut()) {
                    let before = records.len();
                    records.retain(|r| r.captured_at.timestamp_micros() >= end);
                    w.pairs_left_out += (before - records.len()) as u64;
                }
                let n = records.len() as u64;
                let mut picked = Vec::with_capacity(records.len());
                for (i, r) in records.into_iter().enumerate() {
                    let index = global + i as u64;
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
                global += n;
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
                    let route = templater.route_keyed(&r.path, key);
                    match key {
                        Some(KeyOutcome::Key(_)) => summary.route_keys.keyed += 1,
                        Some(KeyOutcome::Missing(why)) => summary.route_keys.add_unkeyed(&route, why),
                        _ => {}
                    }
                    items.push((index, r, route));
                }
                let evaluated: Vec<(Evaluated, PairRecord)> =
                    items.into_par_iter().map(|(i, r, route)| (evaluate(i, &r, route, &policy.rules), r)).collect();
                for (e, record) in &evaluated {
                    counted.count(e, record, opts);
                    summary.truncated.add(record);
                    count_decoding(summary, e);
                    pair_rows.push(e);
                    for f in &e.raw {
                        diff_rows.push(e, f);
                    }
                }
                summary.pairs_analyzed += evaluated.len() as u64;
                // A send fails only when the writer stopped on an error; joining it reports that.
                if pair_rows.len() >= 8192 && out_tx.send((true, pair_rows.take()?)).is_err() {
                    return Ok(());
                }
                if diff_rows.len() >= 8192 && out_tx.send((false, diff_rows.take()?)).is_err() {
                    return Ok(());
                }
                progress.advance(evaluated.len() as u64);
            }
            if !pair_rows.is_empty() {
                let _ = out_tx.send((true, pair_rows.take()?));
            }
            if !diff_rows.is_empty() {
                let _ = out_tx.send((false, diff_rows.take()?));
            }
            Ok(())
        })();
        drop(out_tx);
        let written = writer.join().map_err(|_| stage_failed())?;
        result?;
        written
    })?;
    counted.overflow = templater.overflow();
    Ok(counted)
}

impl Counted {
    /// Counts one evaluated pair overall and on its route, and offers it as an example.
    fn count(&mut self, e: &Evaluated, record: &PairRecord, opts: &Options) {
        self.examples.offer(e, record);
        self.overall.add(e, false);
        let seed = opts.seed ^ xxhash_rust::xxh3::xxh3_64(e.route.as_bytes());
        self.routes.entry(e.route.clone()).or_insert_with(|| RouteStats::new(opts.latency_cap, seed)).add(e, true);
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
fn diffs_pass(raw: &Path, out: &Path, noise: &mut Noise, counted: &mut Counted) -> Result<Diffs> {
    let mut sink = Sink::create(out, outputs::DIFFS_SCHEMA.clone())?;
    let mut state = DiffsState::default();
    for batch in outputs::read(raw)? {
        let batch = batch?;
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

/// Pass 2 over the pairs: appends each pair's real-difference counts and its final outcome, and
/// writes pairs.parquet.
fn pairs_pass(raw: &Path, out: &Path, per_pair: &[(u64, RealCounts)]) -> Result<()> {
    let mut sink = Sink::create(out, outputs::PAIRS_SCHEMA.clone())?;
    let mut next = per_pair.iter().peekable();
    for batch in outputs::read(raw)? {
        let batch = batch?;
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
        sink.write(&outputs::finish_pairs(&batch, &counts)?)?;
    }
    sink.finish()?;
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
