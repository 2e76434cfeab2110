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
use std::path::PathBuf;

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use shadowdiff_capture::record::{PairReader, PairRecord, ReadOptions, resolve_inputs};

use crate::error::{Error, Result};
use crate::evaluate::{Evaluated, Outcome, evaluate};
use crate::examples::{self, Example};
use crate::json::Difference;
use crate::noise::{FieldReport, NoiseCounter, Verdict};
use crate::outputs::{self, RawDiffs, RawPairs, RealCounts, Sink};
use crate::policy::Policy;
use crate::route::{Overflow, RouteTemplater};

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
}

impl Options {
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Self { out: out.into(), sample: None, seed: 1, batch_size: 4096, latency_cap: 2_000_000 }
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

/// The distribution of relative deltas `(canary - baseline) / |baseline|` of one numeric field.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Drift {
    pub route: String,
    pub field: String,
    pub n: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Counts per bin of [`DRIFT_EDGES`]: `(-inf, e0], (e0, e1], …, (e_last, inf)`.
    pub histogram: Vec<u64>,
    /// The largest |relative delta|s, with their pairs.
    pub outliers: Vec<DriftOutlier>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftOutlier {
    pub pair_id: String,
    pub baseline: f64,
    pub canary: f64,
    pub relative: f64,
}

/// Bin edges of the numeric drift histogram (relative deltas).
pub const DRIFT_EDGES: [f64; 10] = [-1.0, -0.1, -0.01, -0.001, -1e-6, 1e-6, 0.001, 0.01, 0.1, 1.0];
const DRIFT_OUTLIERS: usize = 5;

impl Drift {
    fn add(&mut self, pair_id: &str, b: f64, c: f64) {
        if b == 0.0 || !b.is_finite() || !c.is_finite() {
            return;
        }
        let r = (c - b) / b.abs();
        if self.n == 0 {
            self.histogram = vec![0; DRIFT_EDGES.len() + 1];
            self.min = r;
            self.max = r;
        }
        self.n += 1;
        self.mean += (r - self.mean) / self.n as f64;
        self.min = self.min.min(r);
        self.max = self.max.max(r);
        let bin = DRIFT_EDGES.iter().position(|&e| r <= e).unwrap_or(DRIFT_EDGES.len());
        self.histogram[bin] += 1;
        if self.outliers.len() < DRIFT_OUTLIERS || self.outliers.last().is_some_and(|o| o.relative.abs() < r.abs()) {
            self.outliers.push(DriftOutlier { pair_id: pair_id.to_owned(), baseline: b, canary: c, relative: r });
            self.outliers.sort_by(|a, b| b.relative.abs().total_cmp(&a.relative.abs()));
            self.outliers.truncate(DRIFT_OUTLIERS);
        }
    }
}

/// What was counted for one route (or overall).
#[derive(Debug, Clone, Serialize)]
pub struct RouteStats {
    /// Pairs read for this route.
    pub pairs: u64,
    /// Pairs the canary was not asked for; excluded from every figure.
    pub canary_skipped: u64,
    /// Pairs whose bodies and headers were compared (same status, no transport error).
    pub compared: u64,
    /// Both sides answered with different statuses, by class change (`2xx→5xx`).
    pub status_mismatch: BTreeMap<String, u64>,
    pub errors: ErrorCounts,
    /// Compared pairs with at least one real difference.
    pub real_pairs: u64,
    /// Compared pairs with at least one real breaking difference.
    pub breaking_pairs: u64,
    /// Real differences per field (rows of diffs.parquet).
    pub real_fields: BTreeMap<String, u64>,
    /// Real breaking differences per field.
    pub breaking_fields: BTreeMap<String, u64>,
    /// Paired latencies in milliseconds (baseline, canary), where both sides answered.
    #[serde(skip)]
    pub latency: Reservoir,
    #[serde(skip)]
    noise: NoiseCounter,
}

impl RouteStats {
    fn new(cap: usize, seed: u64) -> Self {
        Self {
            pairs: 0,
            canary_skipped: 0,
            compared: 0,
            status_mismatch: BTreeMap::new(),
            errors: ErrorCounts::default(),
            real_pairs: 0,
            breaking_pairs: 0,
            real_fields: BTreeMap::new(),
            breaking_fields: BTreeMap::new(),
            latency: Reservoir::new(cap, seed),
            noise: NoiseCounter::new(),
        }
    }

    fn add(&mut self, e: &Evaluated, with_noise: bool) {
        self.pairs += 1;
        if e.outcome == Outcome::CanarySkipped {
            self.canary_skipped += 1;
            return;
        }
        match e.outcome {
            Outcome::Compared => self.compared += 1,
            Outcome::StatusMismatch => {
                let class = |s: Option<u16>| s.map_or("none".to_owned(), |s| format!("{}xx", s / 100));
                *self
                    .status_mismatch
                    .entry(format!("{}→{}", class(e.baseline.status), class(e.canary.status)))
                    .or_default() += 1;
            }
            _ => {}
        }
        let (b, c) = (e.baseline.is_error(), e.canary.is_error());
        let er = &mut self.errors;
        er.n += 1;
        er.baseline += u64::from(b);
        er.canary += u64::from(c);
        er.canary_only += u64::from(c && !b);
        er.baseline_only += u64::from(b && !c);
        if let Some(k) = e.baseline.error_label() {
            er.kinds.entry(k).or_default().baseline += 1;
        }
        if let Some(k) = e.canary.error_label() {
            er.kinds.entry(k).or_default().canary += 1;
        }
        if let (Some(bl), Some(cl)) = (e.baseline.usable_latency(), e.canary.usable_latency()) {
            self.latency.push((bl as f64 / 1000.0, cl as f64 / 1000.0));
        }
        if with_noise && e.outcome == Outcome::Compared {
            let raw: Vec<Difference> = e.raw.iter().map(|f| f.diff.clone()).collect();
            self.noise.add(&raw, e.noise.as_deref());
        }
    }
}

/// A field's judgement on one route, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct FieldRow {
    pub route: String,
    /// The strongest severity among the field's differences: `breaking`, `changed` or `additive`.
    pub severity: &'static str,
    #[serde(flatten)]
    pub report: FieldReport,
}

/// What the inputs were.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    pub files: usize,
    /// Rows in the input files.
    pub pairs_in_files: u64,
    /// Pairs analyzed (after sampling).
    pub pairs_analyzed: u64,
    pub sample: Option<u64>,
    pub seed: u64,
    /// Files per `baseline_origin` (`measured`, `recorded`).
    pub baseline_origin: BTreeMap<String, u64>,
    /// Capture counters summed over the files' runs (dropped pairs and so on).
    pub counters: BTreeMap<String, u64>,
    /// Analyzed pairs whose bodies the capture cut at its size cap, per side.
    pub truncated: Truncated,
}

/// Analyzed pairs with a body cut at the capture's size cap: their bodies were compared only as
/// far as they were kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Truncated {
    pub request: u64,
    pub baseline: u64,
    pub canary: u64,
    pub secondary: u64,
}

impl Truncated {
    fn add(&mut self, r: &PairRecord) {
        self.request += u64::from(r.request_body_truncated);
        self.baseline += u64::from(r.baseline.body_truncated);
        self.canary += u64::from(r.canary.body_truncated);
        self.secondary += u64::from(r.secondary.body_truncated);
    }
}

impl InputSummary {
    /// True when some file's baseline side was copied from an earlier run (replay's
    /// canary-only mode): latency is then not comparable.
    pub fn recorded_baseline(&self) -> bool {
        self.baseline_origin.keys().any(|k| k != "measured")
    }
}

/// Everything the judge needs.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub inputs: InputSummary,
    pub overall: RouteStats,
    pub routes: BTreeMap<String, RouteStats>,
    pub fields: Vec<FieldRow>,
    pub numeric_drift: Vec<Drift>,
    pub route_overflow: Overflow,
    /// A few pairs per troubled route with their bodies, for the report.
    pub examples: Vec<Example>,
    pub pairs_file: PathBuf,
    pub diffs_file: PathBuf,
    pub examples_file: PathBuf,
}

/// Runs both passes over `inputs`.
pub fn run<S: AsRef<str>>(inputs: &[S], policy: &Policy, opts: &Options, progress: &dyn Progress) -> Result<Analysis> {
    let files = resolve_inputs(inputs)?;
    let infos = PairReader::check_all(&files)?;
    let mut summary =
        InputSummary { files: files.len(), seed: opts.seed, sample: opts.sample, ..InputSummary::default() };
    let mut runs: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for info in &infos {
        summary.pairs_in_files += info.rows;
        *summary.baseline_origin.entry(info.baseline_origin.clone()).or_default() += 1;
        if let Some(run) = &info.run_id {
            // Counters are cumulative per run; the newest file of a run has the largest.
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
    let input_name = || inputs.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(" ");
    if summary.pairs_in_files == 0 {
        return Err(Error::Empty { input: input_name() });
    }
    let selected = opts.sample.filter(|&n| n < summary.pairs_in_files).map(|n| {
        let mut rng = SmallRng::seed_from_u64(opts.seed);
        let mut picked: Vec<u64> = rand::seq::index::sample(&mut rng, summary.pairs_in_files as usize, n as usize)
            .into_iter()
            .map(|i| i as u64)
            .collect();
        picked.sort_unstable();
        picked
    });
    std::fs::create_dir_all(&opts.out)
        .map_err(|source| Error::Output { path: opts.out.clone(), source: source.into() })?;
    progress.start(selected.as_ref().map_or(summary.pairs_in_files, |s| s.len() as u64));

    // ---- pass 1 ----
    let raw_pairs_path = opts.out.join(".pairs.raw.parquet");
    let raw_diffs_path = opts.out.join(".diffs.raw.parquet");
    let mut pair_sink = Sink::create(&raw_pairs_path, RawPairs::schema())?;
    let mut diff_sink = Sink::create(&raw_diffs_path, RawDiffs::schema())?;
    let (mut pair_rows, mut diff_rows) = (RawPairs::default(), RawDiffs::default());
    let mut templater = RouteTemplater::new(policy.rules.routes.clone());
    let mut overall = RouteStats::new(opts.latency_cap, opts.seed);
    let mut routes: BTreeMap<String, RouteStats> = BTreeMap::new();
    let mut examples = examples::Collector::new();
    let reader = PairReader::from_files(files, ReadOptions { batch_size: opts.batch_size, columns: None });
    // Three stages so that reading and writing overlap the parallel evaluation: a reader thread
    // decodes batches, this thread templates routes, evaluates a batch on rayon and counts, a
    // writer thread writes the raw rows. Bounded channels keep memory to a few batches.
    let (rec_tx, rec_rx) = std::sync::mpsc::sync_channel::<Result<Vec<PairRecord>>>(2);
    let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<(bool, RecordBatch)>(4);
    let stage_failed = || Error::Internal { message: "an analyze pipeline thread panicked".into() };
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            for batch in reader {
                let records = batch.and_then(|b| b.records()).map_err(Error::from);
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
        let counted = (|| -> Result<()> {
            let mut global = 0u64;
            let mut cursor = 0usize;
            for records in rec_rx {
                let records = records?;
                let n = records.len() as u64;
                let mut items = Vec::with_capacity(records.len());
                for (i, r) in records.into_iter().enumerate() {
                    let index = global + i as u64;
                    if let Some(sel) = &selected {
                        while cursor < sel.len() && sel[cursor] < index {
                            cursor += 1;
                        }
                        if cursor >= sel.len() || sel[cursor] != index {
                            continue;
                        }
                    }
                    let route = templater.route(&r.path);
                    items.push((index, r, route));
                }
                global += n;
                let evaluated: Vec<(Evaluated, PairRecord)> =
                    items.into_par_iter().map(|(i, r, route)| (evaluate(i, &r, route, &policy.rules), r)).collect();
                for (e, record) in &evaluated {
                    examples.offer(e, record);
                    summary.truncated.add(record);
                    overall.add(e, false);
                    let seed = opts.seed ^ xxhash_rust::xxh3::xxh3_64(e.route.as_bytes());
                    routes
                        .entry(e.route.clone())
                        .or_insert_with(|| RouteStats::new(opts.latency_cap, seed))
                        .add(e, true);
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
        counted?;
        written
    })?;
    if summary.pairs_analyzed == 0 {
        let _ = std::fs::remove_file(&raw_pairs_path);
        let _ = std::fs::remove_file(&raw_diffs_path);
        return Err(Error::Empty { input: input_name() });
    }

    // ---- noise verdicts ----
    progress.phase("classifying differences");
    let mut fields = Vec::new();
    let mut status: BTreeMap<(String, String), (&'static str, Option<String>)> = BTreeMap::new();
    for (route, stats) in &routes {
        for report in stats.noise.report(policy.noise) {
            let s = match &report.verdict {
                Verdict::Difference => ("real", None),
                Verdict::BelowThreshold => ("real", Some("below Diffy's absolute threshold; counted".to_owned())),
                Verdict::Noise => ("noise", Some("the secondary differs here as often".to_owned())),
                Verdict::SuspectedNoise { reason } => ("suspected_noise", Some(reason.clone())),
                Verdict::Explained { reason } => ("explained", Some(reason.clone())),
            };
            status.insert((route.clone(), report.field.clone()), s);
            fields.push(FieldRow { route: route.clone(), severity: "additive", report });
        }
    }

    // ---- pass 2: diffs ----
    progress.phase("writing diffs.parquet");
    let diffs_path = opts.out.join(outputs::DIFFS_FILE);
    let mut sink = Sink::create(&diffs_path, outputs::DIFFS_SCHEMA.clone())?;
    let mut per_pair: Vec<(u64, RealCounts)> = Vec::new();
    let mut current: Option<(u64, String, RealCounts)> = None;
    let mut drift: BTreeMap<(String, String), Drift> = BTreeMap::new();
    let mut close = |cur: Option<(u64, String, RealCounts)>,
                     routes: &mut BTreeMap<String, RouteStats>,
                     overall: &mut RouteStats| {
        if let Some((index, route, c)) = cur
            && c.real > 0
        {
            per_pair.push((index, c));
            let breaking = u64::from(c.breaking > 0);
            for s in [routes.get_mut(&route), Some(overall)].into_iter().flatten() {
                s.real_pairs += 1;
                s.breaking_pairs += breaking;
            }
        }
    };
    let mut field_severity: BTreeMap<(String, String), u8> = BTreeMap::new();
    for batch in outputs::read(&raw_diffs_path)? {
        let batch = batch?;
        let index = outputs::column::<UInt64Array>(&batch, outputs::PAIR_INDEX)?;
        let pair_id = outputs::column::<StringArray>(&batch, outputs::PAIR_ID)?;
        let route = outputs::column::<StringArray>(&batch, outputs::ROUTE)?;
        let field = outputs::column::<StringArray>(&batch, outputs::FIELD)?;
        let severity = outputs::column::<StringArray>(&batch, outputs::SEVERITY)?;
        let explained = outputs::column::<StringArray>(&batch, outputs::EXPLAINED)?;
        let b_num = outputs::column::<Float64Array>(&batch, outputs::BASELINE_NUMBER)?;
        let c_num = outputs::column::<Float64Array>(&batch, outputs::CANARY_NUMBER)?;
        let mut st = Vec::with_capacity(batch.num_rows());
        let mut reasons = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let (r, f) = (route.value(i), field.value(i));
            let key = (r.to_owned(), f.to_owned());
            let rank = severity_rank(severity.value(i));
            if field_severity.get(&key).is_none_or(|&have| have < rank) {
                field_severity.insert(key.clone(), rank);
            }
            let (s, reason) = if explained.is_valid(i) {
                ("explained", Some(explained.value(i).to_owned()))
            } else {
                status.get(&key).cloned().unwrap_or(("real", None))
            };
            st.push(s);
            reasons.push(reason);
            let idx = index.value(i);
            if current.as_ref().is_none_or(|c| c.0 != idx) {
                close(current.take(), &mut routes, &mut overall);
                current = Some((idx, r.to_owned(), RealCounts::default()));
            }
            if s == "real" {
                if let Some((_, _, c)) = current.as_mut() {
                    c.real += 1;
                    match severity.value(i) {
                        "breaking" => c.breaking += 1,
                        "changed" => c.changed += 1,
                        _ => c.additive += 1,
                    }
                }
                for stats in [routes.get_mut(r), Some(&mut overall)].into_iter().flatten() {
                    *stats.real_fields.entry(f.to_owned()).or_default() += 1;
                    if severity.value(i) == "breaking" {
                        *stats.breaking_fields.entry(f.to_owned()).or_default() += 1;
                    }
                }
                if b_num.is_valid(i) && c_num.is_valid(i) {
                    drift
                        .entry((r.to_owned(), f.to_owned()))
                        .or_insert_with(|| Drift { route: r.to_owned(), field: f.to_owned(), ..Drift::default() })
                        .add(pair_id.value(i), b_num.value(i), c_num.value(i));
                }
            }
        }
        sink.write(&outputs::finish_diffs(&batch, st, reasons)?)?;
    }
    close(current.take(), &mut routes, &mut overall);
    sink.finish()?;
    for row in &mut fields {
        let rank = field_severity.get(&(row.route.clone(), row.report.field.clone())).copied().unwrap_or(0);
        row.severity = ["additive", "changed", "breaking"][usize::from(rank.min(2))];
    }

    // ---- pass 2: pairs ----
    progress.phase("writing pairs.parquet");
    let pairs_path = opts.out.join(outputs::PAIRS_FILE);
    let mut sink = Sink::create(&pairs_path, outputs::PAIRS_SCHEMA.clone())?;
    let mut next = per_pair.iter().peekable();
    for batch in outputs::read(&raw_pairs_path)? {
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
    let _ = std::fs::remove_file(&raw_pairs_path);
    let _ = std::fs::remove_file(&raw_diffs_path);

    let field_status = status.iter().map(|(k, (s, _))| (k.clone(), *s)).collect();
    let examples = examples.choose(&field_status, &routes);
    examples::write(&opts.out, &examples)?;
    let mut numeric_drift: Vec<Drift> = drift.into_values().collect();
    numeric_drift.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.route.cmp(&b.route)).then_with(|| a.field.cmp(&b.field)));
    Ok(Analysis {
        inputs: summary,
        overall,
        routes,
        fields,
        numeric_drift,
        route_overflow: templater.overflow(),
        examples,
        pairs_file: pairs_path,
        diffs_file: diffs_path,
        examples_file: opts.out.join(examples::EXAMPLES_FILE),
    })
}

/// Orders severities for the field table: breaking above changed above additive.
fn severity_rank(severity: &str) -> u8 {
    match severity {
        "breaking" => 2,
        "changed" => 1,
        _ => 0,
    }
}

/// Fields with a real difference, most frequent first.
pub fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}
