//! `verdict.json`, typed: written by analyze, read back by the report, `shadowdiff report` and
//! anything else in the workspace, so a renamed field is a compile error, not a silent zero.
//! The fields are documented for users in `docs/verdict.md`; the file is versioned by
//! [`SCHEMA_VERSION`] (additions do not bump it).
//!
//! JSON has no NaN: serde_json writes a non-finite float as `null`, and the fields that can be
//! NaN (a relative delta over a zero baseline, say) read `null` back as NaN.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::pair::PairRecord;
pub use crate::vocab::{CheckId, DiffStatus, FailOn, LatencyReference, Outcome, Severity, Status, Unit};

/// Bumped when a field of `verdict.json` changes meaning or goes away (additions do not bump).
pub const SCHEMA_VERSION: u32 = 1;

pub const VERDICT_FILE: &str = "verdict.json";
pub const JUNIT_FILE: &str = "junit.xml";
pub const SUMMARY_FILE: &str = "summary.md";
/// The route name of the whole run in every per-route list.
pub const OVERALL: &str = "(all)";

/// Reads `null` as NaN: what serde_json wrote for a non-finite float.
fn nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// `verdict.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub schema_version: u32,
    pub tool: String,
    pub verdict: Status,
    pub exit_code: u8,
    pub fail_on: FailOn,
    /// True when the decisions are anytime-valid (`--sequential`): confidence sequences and
    /// p-values that stay valid over any number of looks. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sequential: bool,
    /// The side the canary's latency was judged against: `secondary` when the pairs had one
    /// (measured the way the canary's was), else `baseline`. Absent when `baseline`.
    #[serde(default = "LatencyReference::baseline", skip_serializing_if = "LatencyReference::is_baseline")]
    pub latency_reference: LatencyReference,
    pub reason: String,
    pub inputs: InputSummary,
    pub overall: EndpointRow,
    pub endpoints: Vec<EndpointRow>,
    pub checks: Vec<CheckResult>,
    pub latency: Vec<LatencySummary>,
    pub critical_errors: Vec<CriticalError>,
    /// With `--window`: the run judged window by window, in time order, each with anytime-valid
    /// decisions (many windows are many looks). Absent without `--window`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowRow>,
    /// Pairs where both sides answered with different statuses, by class change (`2xx→5xx`),
    /// per route and `(all)`.
    pub status_mismatches: BTreeMap<String, BTreeMap<String, u64>>,
    pub fields: Vec<FieldRow>,
    pub numeric_drift: Vec<Drift>,
    pub route_overflow: Overflow,
    pub outputs: Outputs,
}

impl Verdict {
    pub fn check(&self, id: CheckId) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// Latency statistics of a scope (a route, or [`OVERALL`]).
    pub fn latency_of(&self, route: &str) -> Option<&LatencySummary> {
        self.latency.iter().find(|l| l.route == route)
    }
}

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ci {
    #[serde(deserialize_with = "nan")]
    pub low: f64,
    #[serde(deserialize_with = "nan")]
    pub high: f64,
    pub confidence: f64,
}

/// A test statistic by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statistic {
    pub name: String,
    #[serde(deserialize_with = "nan")]
    pub value: f64,
}

/// A check's thresholds as the policy resolved them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub pass: f64,
    pub warn: f64,
}

/// A field that contributed to a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldCount {
    pub field: String,
    pub count: u64,
}

/// One endpoint's part in a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointCheck {
    pub route: String,
    pub status: Status,
    pub value: Option<f64>,
    pub ci: Option<Ci>,
    pub p_value: Option<f64>,
    /// Holm-adjusted over the check's family: the endpoints it judged.
    pub p_adjusted: Option<f64>,
    pub n: u64,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldCount>,
    /// The minimum detectable effect: the smallest regression (in the check's threshold unit)
    /// this endpoint's data would show with 80 % probability. Absent for count checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mde: Option<f64>,
}

/// One time window of the run, judged on its own (`--window`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRow {
    /// The window: `start` inclusive, `end` exclusive, in UTC.
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
    /// Pairs analyzed in the window.
    pub pairs: u64,
    pub verdict: Status,
    /// Every check's status and figures in the window, in the order of `checks[]`.
    pub checks: Vec<WindowCheck>,
}

/// One check in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowCheck {
    pub id: CheckId,
    pub status: Status,
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<Ci>,
    pub n: u64,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: CheckId,
    pub title: String,
    pub status: Status,
    /// One line a person reads in seconds: the top finding and how much more there is.
    pub reason: String,
    /// The overall figure (see `unit`).
    pub value: Option<f64>,
    pub unit: Unit,
    pub threshold: Threshold,
    /// The unit of `threshold`: the check's `unit`, except `ratio` (to the baseline's rate) for
    /// `error_rate`.
    pub threshold_unit: Unit,
    pub statistic: Option<Statistic>,
    pub p_value: Option<f64>,
    pub ci: Option<Ci>,
    /// The sample size of the overall figure.
    pub n: u64,
    /// What the whole run's data could have detected: the smallest regression (in
    /// `threshold_unit`) it would show with 80 % probability. Absent for count checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mde: Option<f64>,
    /// When the check is inconclusive: about how many more pairs would make it conclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_pairs: Option<u64>,
    /// Evaluated and reported only (policy `report_only = true`): its status does not count
    /// towards the verdict or the exit code. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report_only: bool,
    /// Every endpoint the check looked at, those that drove the status first.
    pub endpoints: Vec<EndpointCheck>,
}

/// Latency statistics of one scope (the whole run or one endpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub route: String,
    /// Paired latencies the statistics used (a uniform sample when `seen` is larger).
    pub n: u64,
    pub seen: u64,
    pub quantiles: Vec<QuantileDelta>,
    pub wilcoxon: Option<WilcoxonResult>,
    pub hodges_lehmann: Option<HodgesLehmann>,
    /// Hodges–Lehmann estimate of the paired log ratio ln(canary / baseline): the whole
    /// distribution's shift as a factor (`exp(estimate) − 1` is the relative shift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_ratio: Option<HodgesLehmann>,
    /// The same estimate over the slowest pairs only — the 2 % with the largest geometric mean
    /// √(baseline · canary), at least 20 — which is how much slower the tail got. Choosing the
    /// pairs by both sides alike keeps the estimate unbiased on identical builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_log_ratio: Option<HodgesLehmann>,
    /// The reference side's median latency (ms) over every pair and over the tail's pairs: the
    /// typical latencies at which the policy's `latency_floor_ms` becomes a relative change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_median_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_tail_median_ms: Option<f64>,
    pub ks: Option<KsResult>,
}

impl LatencySummary {
    /// The delta at quantile `q` (0.99 for p99), when it was computed.
    pub fn quantile(&self, q: f64) -> Option<&QuantileDelta> {
        self.quantiles.iter().find(|d| d.q == q)
    }
}

/// One quantile of both sides and its paired delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileDelta {
    pub q: f64,
    pub n: usize,
    #[serde(deserialize_with = "nan")]
    pub baseline: f64,
    #[serde(deserialize_with = "nan")]
    pub canary: f64,
    /// canary − baseline.
    #[serde(deserialize_with = "nan")]
    pub delta: f64,
    /// (canary − baseline) / baseline; NaN when the baseline quantile is 0.
    #[serde(deserialize_with = "nan")]
    pub relative: f64,
    /// Bootstrap confidence interval of `delta`.
    #[serde(deserialize_with = "nan")]
    pub low: f64,
    #[serde(deserialize_with = "nan")]
    pub high: f64,
    /// Bootstrap confidence interval of `relative`.
    #[serde(deserialize_with = "nan")]
    pub relative_low: f64,
    #[serde(deserialize_with = "nan")]
    pub relative_high: f64,
    pub confidence: f64,
    pub resamples: usize,
    /// Pairs per resample: n, or fewer for large samples (m-out-of-n bootstrap, rescaled).
    pub resample_size: usize,
}

/// How the Wilcoxon p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The exact null distribution (n ≤ 50, no ties, no zeros: SciPy's `method="auto"` rule).
    Exact,
    /// The normal approximation with tie correction and continuity correction.
    Normal,
}

/// The Wilcoxon signed-rank test on paired differences (canary − baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WilcoxonResult {
    /// Differences used: non-zero ones (zeros are dropped, SciPy's `zero_method="wilcox"`).
    pub n: usize,
    /// Zero differences dropped.
    pub zeros: usize,
    /// Sum of ranks of positive differences (canary slower).
    pub w_plus: f64,
    pub w_minus: f64,
    /// min(W+, W−), SciPy's two-sided statistic.
    pub statistic: f64,
    /// The z score of W+ under the normal approximation (with corrections), also for `Exact`.
    #[serde(deserialize_with = "nan")]
    pub z: f64,
    /// Two-sided p-value; 1 when there are no non-zero differences.
    pub p_value: f64,
    pub method: Method,
}

/// The Hodges–Lehmann estimate of the paired shift and its confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HodgesLehmann {
    pub n: usize,
    /// The median of the Walsh averages (d_i + d_j) / 2, i ≤ j: the shift estimate.
    #[serde(deserialize_with = "nan")]
    pub estimate: f64,
    /// The confidence interval from the signed-rank distribution (normal approximation).
    #[serde(deserialize_with = "nan")]
    pub low: f64,
    #[serde(deserialize_with = "nan")]
    pub high: f64,
    pub confidence: f64,
}

/// The two-sample Kolmogorov–Smirnov test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KsResult {
    pub n_baseline: usize,
    pub n_canary: usize,
    /// sup |F_canary − F_baseline|.
    #[serde(deserialize_with = "nan")]
    pub statistic: f64,
    /// Two-sided p-value from the limiting Kolmogorov distribution at √(n·m/(n+m))·D.
    #[serde(deserialize_with = "nan")]
    pub p_value: f64,
    /// The one-sided statistic D⁺ = sup (F_baseline' − F_canary) against the baseline slowed by
    /// the latency check's pass threshold (baseline' = baseline × 1.10 by default): how far the
    /// canary's distribution lies on the slow side of what passes, somewhere (0 when nowhere).
    #[serde(default)]
    pub slower: f64,
    /// The one-sided p-value of `slower` (SciPy: `ks_2samp(baseline, canary,
    /// alternative="greater", method="asymp")`).
    #[serde(default = "one")]
    pub slower_p_value: f64,
}

fn one() -> f64 {
    1.0
}

/// Critical errors: an error kind the baseline never showed on an endpoint, seen in the canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticalError {
    pub route: String,
    pub kind: String,
    pub canary: u64,
    pub p_value: f64,
    pub p_adjusted: f64,
    /// True when the evidence is enough to fail the check.
    pub confirmed: bool,
}

/// What analyze wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    pub pairs: PathBuf,
    pub diffs: PathBuf,
    pub examples: PathBuf,
    pub verdict: PathBuf,
    pub junit: PathBuf,
    pub summary: PathBuf,
}

/// What the inputs were.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Analyzed pairs whose bodies the capture cut at its size cap, per side; and compared
    /// pairs whose decoded content analyze cut at its decoded-size cap (each body counted once).
    #[serde(default)]
    pub truncated: Truncated,
    /// Compared pairs whose body analyze could not decode by its Content-Encoding (an unknown
    /// coding, a broken stream), per side. Absent when none.
    #[serde(default, skip_serializing_if = "Undecodable::is_zero")]
    pub undecodable: Undecodable,
    /// gRPC calls to a method the descriptor set (given, or recorded by reflection) does not
    /// hold, by method: their messages were decoded by the wire format, fields by number. At
    /// most [`GRPC_UNDESCRIBED_MAX`] methods are named; the rest are counted under `(other)`.
    /// Absent when none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grpc_undescribed: BTreeMap<String, u64>,
    /// Requests on paths with a `[[routes.key]]` rule: how many were routed by the key read from
    /// them, and those whose key could not be read. Absent when no rule applied.
    #[serde(default, skip_serializing_if = "RouteKeys::is_empty")]
    pub route_keys: RouteKeys,
    /// The `--since` / `--until` window the pairs were chosen by, and what it left out. Absent
    /// when analyze judged every pair of its inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<InputWindow>,
    /// `--warmup`: each run's first minutes, left out. Absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<InputWarmup>,
}

/// Each agent run's warm-up, left out: the pairs captured within `seconds` of the run's earliest
/// pair in the files read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputWarmup {
    pub seconds: f64,
    /// Runs found in the files read (by run id, else by agent).
    pub runs: usize,
    /// Pairs in the window that were left out as their run's warm-up.
    pub pairs_left_out: u64,
}

/// A time window over `captured_at` (`since` inclusive, `until` exclusive) and what it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputWindow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Files skipped by their Hive partition (`dt=`/`hour=`) without being opened: their pairs
    /// are all outside the window and are not in `pairs_in_files`.
    #[serde(default)]
    pub files_pruned: usize,
    /// Pairs of the files read whose `captured_at` is outside the window (counted in
    /// `pairs_in_files`, not analyzed).
    #[serde(default)]
    pub pairs_outside: u64,
}

/// What the `[[routes.key]]` rules made of the requests they apply to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteKeys {
    /// Requests routed as `ROUTE#KEY`.
    pub keyed: u64,
    /// Requests that kept their plain route because no key could be read, per route and reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unkeyed: Vec<Unkeyed>,
}

/// Requests of one route whose key could not be read, for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unkeyed {
    pub route: String,
    /// `request body is not JSON`, `no JSON-RPC \`method\``, `the key header is missing or empty` …
    pub reason: String,
    pub requests: u64,
}

impl RouteKeys {
    pub fn is_empty(&self) -> bool {
        self.keyed == 0 && self.unkeyed.is_empty()
    }

    /// Requests that kept their plain route.
    pub fn unkeyed_total(&self) -> u64 {
        self.unkeyed.iter().map(|u| u.requests).sum()
    }

    /// Counts one request of `route` whose key could not be read.
    pub fn add_unkeyed(&mut self, route: &str, reason: &str) {
        match self.unkeyed.iter_mut().find(|u| u.route == route && u.reason == reason) {
            Some(u) => u.requests += 1,
            None => self.unkeyed.push(Unkeyed { route: route.to_owned(), reason: reason.to_owned(), requests: 1 }),
        }
    }
}

/// Methods named in [`InputSummary::grpc_undescribed`]; calls to any further method are counted
/// under `(other)`, so hostile paths cannot grow the verdict.
pub const GRPC_UNDESCRIBED_MAX: usize = 100;

/// Counts a gRPC call to `method`, which the descriptor set does not hold.
pub fn count_undescribed(counts: &mut BTreeMap<String, u64>, method: &str, n: u64) {
    let key = if counts.contains_key(method) || counts.len() < GRPC_UNDESCRIBED_MAX {
        method.to_owned()
    } else {
        "(other)".to_owned()
    };
    *counts.entry(key).or_default() += n;
}

/// Compared pairs with a body whose Content-Encoding could not be undone, per side: each is one
/// `(body)` difference reading `undecodable: …`, not a comparison of content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undecodable {
    pub baseline: u64,
    pub canary: u64,
    pub secondary: u64,
}

impl Undecodable {
    pub fn total(&self) -> u64 {
        self.baseline + self.canary + self.secondary
    }

    pub fn is_zero(&self) -> bool {
        self.total() == 0
    }
}

impl InputSummary {
    /// True when some file's baseline side was copied from an earlier run (replay's
    /// canary-only mode): latency is then not comparable.
    pub fn recorded_baseline(&self) -> bool {
        self.baseline_origin.keys().any(|k| k != "measured")
    }
}

/// Analyzed pairs with a body cut at the capture's size cap: their bodies were compared only as
/// far as they were kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncated {
    pub request: u64,
    pub baseline: u64,
    pub canary: u64,
    pub secondary: u64,
}

impl Truncated {
    pub fn add(&mut self, r: &PairRecord) {
        self.request += u64::from(r.request_body_truncated);
        self.baseline += u64::from(r.baseline.body_truncated);
        self.canary += u64::from(r.canary.body_truncated);
        self.secondary += u64::from(r.secondary.body_truncated);
    }

    pub fn total(&self) -> u64 {
        self.request + self.baseline + self.canary + self.secondary
    }
}

/// One row of the endpoints table (or the whole run's, with route `(all)`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointRow {
    pub route: String,
    pub pairs: u64,
    pub canary_skipped: u64,
    pub compared: u64,
    pub status_mismatches: u64,
    pub baseline_errors: u64,
    pub canary_errors: u64,
    /// Compared pairs with a real difference.
    pub different: u64,
    pub breaking_pairs: u64,
    pub baseline_p50_ms: Option<f64>,
    pub canary_p50_ms: Option<f64>,
    pub baseline_p99_ms: Option<f64>,
    pub canary_p99_ms: Option<f64>,
}

impl EndpointRow {
    /// Pairs in which the canary was asked: the denominator of the error rates.
    pub fn asked(&self) -> u64 {
        self.pairs - self.canary_skipped
    }
}

/// Per-field counts, each at most one per pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldCounts {
    /// Pairs where baseline and canary differ at the field.
    pub raw: u64,
    /// Of those, pairs that had a secondary.
    pub raw_with_secondary: u64,
    /// Pairs where baseline and secondary differ at the field.
    pub noise: u64,
    /// Raw differences whose values look unique per request.
    pub unique_looking: u64,
    /// Raw differences that an `[[explained]]` rule covers.
    pub explained: u64,
}

/// The judgement on one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum FieldVerdict {
    /// A real difference: passes Diffy's filter, or there is no secondary to say otherwise.
    Difference,
    /// The secondary differs at this field about as often as the canary does.
    Noise,
    /// Nothing says it is noise, but it is below the absolute threshold.
    BelowThreshold,
    /// No secondary; the values look unique per request.
    SuspectedNoise { reason: String },
    /// Every difference at the field is explained by a rule.
    Explained { reason: String },
}

impl FieldVerdict {
    /// The status the field's differences get in diffs.parquet, and why when it is not plain.
    pub fn status(&self) -> (DiffStatus, Option<&str>) {
        match self {
            FieldVerdict::Difference => (DiffStatus::Real, None),
            FieldVerdict::BelowThreshold => (DiffStatus::Real, Some("below Diffy's absolute threshold; counted")),
            FieldVerdict::Noise => (DiffStatus::Noise, Some("the secondary differs here as often")),
            FieldVerdict::SuspectedNoise { reason } => (DiffStatus::SuspectedNoise, Some(reason)),
            FieldVerdict::Explained { reason } => (DiffStatus::Explained, Some(reason)),
        }
    }
}

/// One field's counts, rates and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldReport {
    pub field: String,
    pub counts: FieldCounts,
    /// Pairs that had a secondary (Diffy's `total`).
    pub total_with_secondary: u64,
    /// Diffy's absolute difference in percent, when there was a secondary.
    pub absolute: Option<f64>,
    /// Diffy's relative difference in percent, when there was a secondary.
    pub relative: Option<f64>,
    pub verdict: FieldVerdict,
}

/// A field's judgement on one route, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldRow {
    pub route: String,
    /// The strongest severity among the field's differences.
    pub severity: Severity,
    #[serde(flatten)]
    pub report: FieldReport,
}

/// Bin edges of the numeric drift histogram (relative deltas).
pub const DRIFT_EDGES: [f64; 10] = [-1.0, -0.1, -0.01, -0.001, -1e-6, 1e-6, 0.001, 0.01, 0.1, 1.0];
/// Outliers kept per field.
pub const DRIFT_OUTLIERS: usize = 5;

/// The distribution of relative deltas `(canary - baseline) / |baseline|` of one numeric field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftOutlier {
    pub pair_id: String,
    pub baseline: f64,
    pub canary: f64,
    pub relative: f64,
}

impl Drift {
    /// Adds one pair's numeric difference (ignored when the baseline is 0 or either is not finite).
    pub fn add(&mut self, pair_id: &str, b: f64, c: f64) {
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

/// What the cap on distinct routes folded into `{other}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overflow {
    /// Requests grouped as `{other}`.
    pub requests: u64,
    /// Some of the templates that did not fit, for the report.
    pub examples: Vec<String>,
}
