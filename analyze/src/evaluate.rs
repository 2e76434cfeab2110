//! One pair, judged on its own: which sides answered or failed, their latencies, and every
//! difference between baseline and canary (and between baseline and secondary, for noise).
//! A pure function of the record and the rules, so the pipeline runs it on many pairs at once.

use serde_json::Value;
use shadowdiff_format::{PairRecord, SideRecord, schema::error_kind};

use crate::body::{ComparedAs, Parsed, claim, compare_bodies, compare_parsed, parse_body};
use crate::headers::diff_header_records;
use crate::json::{DiffKind, Difference, Severity};
use crate::pair::{SideComparison, compare_status};
use crate::rules::Rules;

/// Why a pair's bodies were not compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Both sides answered with the same status: bodies and headers were compared.
    Compared,
    /// The canary was not asked (the capture agent's mirror queue was full, or a replay skipped it).
    CanarySkipped,
    /// Both answered, with different statuses.
    StatusMismatch,
    /// The canary failed in transport (timeout, reset …) and the baseline did not.
    CanaryError,
    /// The baseline failed in transport and the canary did not.
    BaselineError,
    /// Both failed in transport.
    BothError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Compared => "compared",
            Outcome::CanarySkipped => "canary_skipped",
            Outcome::StatusMismatch => "status_mismatch",
            Outcome::CanaryError => "canary_error",
            Outcome::BaselineError => "baseline_error",
            Outcome::BothError => "both_error",
        }
    }
}

/// A side's outcome as the error statistics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideOutcome {
    pub status: Option<u16>,
    pub latency_us: Option<u64>,
    pub transport_error: Option<String>,
}

impl SideOutcome {
    fn of(side: &SideRecord) -> Self {
        Self { status: side.status, latency_us: side.latency_us, transport_error: side.error.clone() }
    }

    /// An error for the error-rate checks: a transport error or a 5xx.
    pub fn is_error(&self) -> bool {
        self.transport_error.is_some() || self.status.is_some_and(|s| s >= 500)
    }

    /// What kind of error, for the critical-errors check: the transport error kind, or the
    /// status code.
    pub fn error_label(&self) -> Option<String> {
        match (&self.transport_error, self.status) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(s)) if s >= 500 => Some(format!("status {s}")),
            _ => None,
        }
    }

    /// A latency fit for the paired latency statistics: the side answered without a transport error.
    pub fn usable_latency(&self) -> Option<u64> {
        if self.transport_error.is_some() || self.status.is_none() { None } else { self.latency_us }
    }
}

/// Where in the response a difference is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Body,
    Header,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Body => "body",
            Location::Header => "header",
        }
    }
}

/// One difference in a form common to bodies and headers.
#[derive(Debug, Clone)]
pub struct Found {
    pub location: Location,
    pub diff: Difference,
}

/// Everything the pipeline needs from one pair.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub index: u64,
    pub pair_id: String,
    pub method: String,
    pub path: String,
    pub route: String,
    pub captured_at_us: i64,
    pub baseline: SideOutcome,
    pub canary: SideOutcome,
    pub secondary: Option<SideOutcome>,
    pub outcome: Outcome,
    /// Baseline against canary.
    pub raw: Vec<Found>,
    /// Baseline against secondary, when a secondary answered with the baseline's status.
    pub noise: Option<Vec<Difference>>,
}

/// Judges one pair. `route` is its route template, assigned by the caller (templating keeps
/// state across pairs, so it is not done here).
pub fn evaluate(index: u64, record: &PairRecord, route: String, rules: &Rules) -> Evaluated {
    let baseline = SideOutcome::of(&record.baseline);
    let canary = SideOutcome::of(&record.canary);
    let secondary = (!record.secondary.is_absent()).then(|| SideOutcome::of(&record.secondary));
    let skipped = record.canary.error.as_deref() == Some(error_kind::SKIPPED);
    let outcome = match (skipped, baseline.transport_error.is_some(), canary.transport_error.is_some()) {
        (true, _, _) => Outcome::CanarySkipped,
        (_, true, true) => Outcome::BothError,
        (_, true, false) => Outcome::BaselineError,
        (_, false, true) => Outcome::CanaryError,
        _ if baseline.status != canary.status => Outcome::StatusMismatch,
        _ => Outcome::Compared,
    };
    let mut raw = Vec::new();
    let mut noise = None;
    if outcome == Outcome::Compared {
        let with_secondary =
            secondary.as_ref().is_some_and(|s| s.transport_error.is_none() && s.status == baseline.status);
        let mut against = Against::new(&record.baseline, rules, Some(route.as_str()));
        raw = found(against.compare(&record.canary));
        if with_secondary {
            noise = Some(found(against.compare(&record.secondary)).into_iter().map(|f| f.diff).collect());
        }
    }
    Evaluated {
        index,
        pair_id: record.pair_id.clone(),
        method: record.method.clone(),
        path: record.path.clone(),
        route,
        captured_at_us: record.captured_at.timestamp_micros(),
        baseline,
        canary,
        secondary,
        outcome,
        raw,
        noise,
    }
}

/// Compares sides against one baseline, parsing the baseline body at most once (with a
/// secondary, every pair is compared twice against it).
struct Against<'a> {
    baseline: &'a SideRecord,
    content_type: Option<String>,
    parsed: Option<Parsed<'a>>,
    rules: &'a Rules,
    route: Option<&'a str>,
}

impl<'a> Against<'a> {
    fn new(baseline: &'a SideRecord, rules: &'a Rules, route: Option<&'a str>) -> Self {
        Self { baseline, content_type: content_type(baseline), parsed: None, rules, route }
    }

    fn compare(&mut self, other: &SideRecord) -> SideComparison {
        let baseline: &'a SideRecord = self.baseline;
        let bytes: &'a [u8] = baseline.body.as_deref().unwrap_or_default();
        let other_type = content_type(other);
        let other_bytes = other.body.as_deref().unwrap_or_default();
        let body = if bytes == other_bytes && claim(self.content_type.as_deref()) == claim(other_type.as_deref()) {
            // Byte-identical: the engine's fast path classifies without diffing.
            compare_bodies(
                (bytes, self.content_type.as_deref()),
                (other_bytes, other_type.as_deref()),
                self.rules,
                self.route,
            )
        } else {
            let ct = self.content_type.clone();
            let parsed = self.parsed.get_or_insert_with(|| parse_body(bytes, ct.as_deref()));
            compare_parsed(parsed, &parse_body(other_bytes, other_type.as_deref()), self.rules, self.route, false)
        };
        SideComparison {
            status: compare_status(self.baseline.status, other.status),
            headers: diff_header_records(&self.baseline.headers, &other.headers, &self.rules.headers, true),
            body,
        }
    }
}

fn content_type(side: &SideRecord) -> Option<String> {
    side.header("content-type").map(|h| h.value_lossy().into_owned())
}

pub use shadowdiff_format::vocab::BODY_FIELD;

/// Flattens a comparison into differences: JSON body differences as they are, a text or binary
/// body difference as one difference at [`BODY_FIELD`], and header differences at `header:NAME`.
fn found(c: SideComparison) -> Vec<Found> {
    let mut out = Vec::with_capacity(c.body.differences.len() + c.headers.len());
    match c.body.compared_as {
        ComparedAs::Json => {
            out.extend(c.body.differences.into_iter().map(|diff| Found { location: Location::Body, diff }));
        }
        _ if !c.body.equal => {
            let describe = |s: String| Some(Value::String(s));
            let (baseline, canary) = match (&c.body.text, &c.body.binary) {
                (Some(t), _) => {
                    (describe(format!("-{} lines", t.removed_lines)), describe(format!("+{} lines", t.added_lines)))
                }
                (_, Some(b)) => {
                    (describe(format!("{} bytes", b.baseline_len)), describe(format!("{} bytes", b.canary_len)))
                }
                _ => (None, None),
            };
            out.push(Found {
                location: Location::Body,
                diff: Difference {
                    path: String::new(),
                    field: BODY_FIELD.to_owned(),
                    kind: DiffKind::ValueChanged,
                    baseline,
                    canary,
                    severity: Severity::Changed,
                    explained: None,
                },
            });
        }
        _ => {}
    }
    for h in c.headers {
        let field = format!("header:{}", h.name);
        out.push(Found {
            location: Location::Header,
            diff: Difference {
                path: field.clone(),
                field,
                kind: h.kind,
                baseline: h.baseline.map(Value::String),
                canary: h.canary.map(Value::String),
                severity: h.severity,
                explained: None,
            },
        });
    }
    out
}
