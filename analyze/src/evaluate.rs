//! One pair, judged on its own: which sides answered or failed, their latencies, and every
//! difference between baseline and canary (and between baseline and secondary, for noise).
//! A pure function of the record and the rules, so the pipeline runs it on many pairs at once.

use std::borrow::Cow;

use serde_json::Value;
use shadowdiff_format::encoding::{DecodeError, decode_side};
use shadowdiff_format::{PairRecord, SideRecord, schema::error_kind};

use crate::body::{
    BodyComparison, ComparedAs, Parsed, Undecodable, claim, compare_bodies, compare_parsed, parse_body_cut,
};
use crate::grpc::{self, DecodedBy, Direction, Messages, Problem};
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
    /// The body was compared and its Content-Encoding could not be undone: why.
    pub undecodable: Option<String>,
    /// The body was compared as far as the decoded-size cap: its content is longer.
    pub cut_at_decoded_cap: bool,
    /// A long-lived response (a stream, a long poll) whose recording was cut after a 2xx head:
    /// the recorder stopped keeping its body (at the body cap or a duration cap) and recorded no
    /// error, or only that it stopped waiting (`timeout`). Its body is compared as far as it was
    /// kept, and it is not an error. A `reset` or `protocol` failure is still one.
    pub cut_stream: bool,
    /// A gRPC answer's `grpc-status` (from the trailers, or the headers of a trailers-only
    /// answer); `None` for a response that carries none.
    pub grpc_status: Option<GrpcStatus>,
}

/// A gRPC status as recorded: a code, or a `grpc-status` value that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcStatus {
    Code(u32),
    /// Not a decimal number: read as `UNKNOWN`, the way gRPC clients read it.
    NotANumber(String),
}

/// gRPC status codes (grpc/doc/statuscodes.md), by number.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl GrpcStatus {
    /// The status a side recorded, if it is a gRPC answer.
    fn of(side: &SideRecord) -> Option<Self> {
        let h = side.trailer("grpc-status").or_else(|| side.header("grpc-status"))?;
        let text = h.value_lossy();
        Some(match text.trim().parse::<u32>() {
            Ok(code) => GrpcStatus::Code(code),
            Err(_) => GrpcStatus::NotANumber(text.into_owned()),
        })
    }

    /// The code: a value that is not a number counts as `UNKNOWN` (2).
    pub fn code(&self) -> u32 {
        match self {
            GrpcStatus::Code(c) => *c,
            GrpcStatus::NotANumber(_) => 2,
        }
    }

    /// The code's name (`UNAVAILABLE`), or its number when it has none.
    pub fn name(&self) -> String {
        match self {
            GrpcStatus::Code(c) => GRPC_CODES.get(*c as usize).map_or_else(|| format!("code {c}"), |n| (*n).to_owned()),
            GrpcStatus::NotANumber(v) => format!("UNKNOWN (grpc-status `{v}` is not a number)"),
        }
    }

    /// The code's name, `UNKNOWN` for a code without one or a value that is not a number.
    pub fn static_name(&self) -> &'static str {
        GRPC_CODES.get(self.code() as usize).copied().unwrap_or("UNKNOWN")
    }

    /// Whether a code's name ([`GrpcStatus::name`]) is one of a server-side failure.
    pub fn is_error_name(name: &str) -> bool {
        ["UNKNOWN", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"]
            .iter()
            .any(|n| name == *n || name.starts_with(&format!("{n} (")))
    }

    /// A server-side failure, counted like a 5xx: `UNKNOWN`, `DEADLINE_EXCEEDED`,
    /// `RESOURCE_EXHAUSTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`. Other codes (`NOT_FOUND`,
    /// `INVALID_ARGUMENT` …) are outcomes that must match between the sides, like a 4xx.
    pub fn is_error(&self) -> bool {
        matches!(self.code(), 2 | 4 | 8 | 13 | 14 | 15)
    }
}

impl std::fmt::Display for GrpcStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "grpc {}", self.name())
    }
}

impl SideOutcome {
    fn of(side: &SideRecord) -> Self {
        let cut_stream = side.body_truncated
            && side.status.is_some_and(|s| (200..300).contains(&s))
            && side.error.as_deref().is_none_or(|e| e == error_kind::TIMEOUT);
        Self {
            status: side.status,
            latency_us: side.latency_us,
            transport_error: side.error.clone(),
            undecodable: None,
            cut_at_decoded_cap: false,
            cut_stream,
            grpc_status: GrpcStatus::of(side),
        }
    }

    /// The side failed in transport: an error that was not only the end of a cut recording.
    pub fn failed(&self) -> bool {
        self.transport_error.is_some() && !self.cut_stream
    }

    /// Notes what decoding this side's body found.
    fn decoded(&mut self, side: &SideRecord, content: &Content<'_>) {
        self.undecodable = content.undecodable.as_ref().map(|e| format!("undecodable: {e}"));
        self.cut_at_decoded_cap = content.truncated && !side.body_truncated;
    }

    /// An error for the error-rate checks: a transport error, a 5xx, or a gRPC status that is a
    /// server-side failure ([`GrpcStatus::is_error`]). A cut stream (2xx head, body cut by the
    /// recorder) is not one.
    pub fn is_error(&self) -> bool {
        self.failed()
            || self.status.is_some_and(|s| s >= 500)
            || self.grpc_status.as_ref().is_some_and(GrpcStatus::is_error)
    }

    /// What kind of error, for the critical-errors check: the transport error kind, the status
    /// code, or the gRPC status by name (`grpc UNAVAILABLE`).
    pub fn error_label(&self) -> Option<String> {
        match (&self.transport_error, self.status) {
            (Some(e), _) if self.failed() => Some(e.clone()),
            (_, Some(s)) if s >= 500 => Some(format!("status {s}")),
            _ => self.grpc_status.as_ref().filter(|g| g.is_error()).map(ToString::to_string),
        }
    }

    /// The gRPC status code, for comparing sides (`None` when not a gRPC answer).
    fn grpc_code(&self) -> Option<u32> {
        self.grpc_status.as_ref().map(GrpcStatus::code)
    }

    /// A latency fit for the paired latency statistics: the side answered without a transport
    /// error (a cut stream's ends where the recording was stopped, so it is left out too).
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
    /// A gRPC pair whose messages differ: both sides' messages as compared, for the examples.
    pub messages: Option<DecodedMessages>,
}

/// Both sides' gRPC messages as JSON, as they were compared.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedMessages {
    pub baseline: Value,
    pub canary: Value,
    /// The response type (`shop.v1.Item`), or `wire format` (fields by number).
    pub decoded_as: String,
}

/// Judges one pair. `route` is its route template, assigned by the caller (templating keeps
/// state across pairs, so it is not done here).
pub fn evaluate(index: u64, record: &PairRecord, route: String, rules: &Rules) -> Evaluated {
    let mut baseline = SideOutcome::of(&record.baseline);
    let mut canary = SideOutcome::of(&record.canary);
    let mut secondary = (!record.secondary.is_absent()).then(|| SideOutcome::of(&record.secondary));
    let skipped = record.canary.error.as_deref() == Some(error_kind::SKIPPED);
    let outcome = match (skipped, baseline.failed(), canary.failed()) {
        (true, _, _) => Outcome::CanarySkipped,
        (_, true, true) => Outcome::BothError,
        (_, true, false) => Outcome::BaselineError,
        (_, false, true) => Outcome::CanaryError,
        // A gRPC call's status is its grpc-status: a change of it (OK to UNAVAILABLE, NOT_FOUND
        // to INTERNAL) is a status mismatch, whatever the HTTP status.
        _ if baseline.status != canary.status || baseline.grpc_code() != canary.grpc_code() => Outcome::StatusMismatch,
        _ => Outcome::Compared,
    };
    let mut raw = Vec::new();
    let mut noise = None;
    let mut messages = None;
    if outcome == Outcome::Compared {
        let with_secondary = secondary
            .as_ref()
            .is_some_and(|s| !s.failed() && s.status == baseline.status && s.grpc_code() == baseline.grpc_code());
        let cap = rules.max_decoded_body;
        let base_content = Content::of(&record.baseline, cap);
        let canary_content = Content::of(&record.canary, cap);
        baseline.decoded(&record.baseline, &base_content);
        canary.decoded(&record.canary, &canary_content);
        let mut against = Against::new(&record.baseline, &base_content, rules, Some(route.as_str()), &record.path);
        raw = found(against.compare(&record.canary, &canary_content));
        messages = against.decoded.take();
        grpc_problem(&mut baseline, against.baseline_problem());
        grpc_problem(&mut canary, against.other_problem.take().as_ref());
        if with_secondary {
            let content = Content::of(&record.secondary, cap);
            if let Some(s) = secondary.as_mut() {
                s.decoded(&record.secondary, &content);
            }
            noise = Some(found(against.compare(&record.secondary, &content)).into_iter().map(|f| f.diff).collect());
            if let Some(s) = secondary.as_mut() {
                grpc_problem(s, against.other_problem.take().as_ref());
            }
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
        messages,
    }
}

/// Notes that a side's gRPC messages could not be decoded (counted with the undecodable bodies).
fn grpc_problem(side: &mut SideOutcome, problem: Option<&Problem>) {
    if let Some(p) = problem {
        side.undecodable.get_or_insert_with(|| format!("undecodable: {p}"));
    }
}

/// Compares two recorded sides, each body decoded by its own Content-Encoding.
pub(crate) fn compare_records(
    baseline: &SideRecord,
    canary: &SideRecord,
    rules: &Rules,
    route: Option<&str>,
) -> SideComparison {
    let (a, b) = (Content::of(baseline, rules.max_decoded_body), Content::of(canary, rules.max_decoded_body));
    Against::new(baseline, &a, rules, route, route.unwrap_or_default()).compare(canary, &b)
}

/// A side's body as content: decoded by its own Content-Encoding, borrowed when it has none.
struct Content<'a> {
    bytes: Cow<'a, [u8]>,
    /// Cut, by the recorder or at the decoded-size cap.
    truncated: bool,
    /// Why the body could not be decoded; `bytes` are then the body as received.
    undecodable: Option<DecodeError>,
}

impl<'a> Content<'a> {
    fn of(side: &'a SideRecord, cap: u64) -> Self {
        match decode_side(side, cap) {
            Ok(d) => Self { bytes: d.bytes, truncated: d.truncated || side.body_truncated, undecodable: None },
            Err(e) => Self {
                bytes: Cow::Borrowed(side.body.as_deref().unwrap_or_default()),
                truncated: side.body_truncated,
                undecodable: Some(e),
            },
        }
    }
}

/// Compares sides against one baseline, parsing the baseline body at most once (with a
/// secondary, every pair is compared twice against it).
struct Against<'a> {
    baseline: &'a SideRecord,
    content: &'a Content<'a>,
    content_type: Option<String>,
    parsed: Option<Parsed<'a>>,
    rules: &'a Rules,
    route: Option<&'a str>,
    /// The request path: a gRPC call's method, `/package.Service/Method`.
    call_path: &'a str,
    /// The baseline's gRPC messages, decoded once.
    grpc: Option<Result<Messages, Problem>>,
    /// Why the side last compared had gRPC messages that could not be decoded.
    other_problem: Option<Problem>,
    /// The messages of the last gRPC comparison that found differences.
    decoded: Option<DecodedMessages>,
}

impl<'a> Against<'a> {
    fn new(
        baseline: &'a SideRecord,
        content: &'a Content<'a>,
        rules: &'a Rules,
        route: Option<&'a str>,
        call_path: &'a str,
    ) -> Self {
        Self {
            baseline,
            content,
            content_type: content_type(baseline),
            parsed: None,
            rules,
            route,
            call_path,
            grpc: None,
            other_problem: None,
            decoded: None,
        }
    }

    fn baseline_problem(&self) -> Option<&Problem> {
        self.grpc.as_ref().and_then(|r| r.as_ref().err())
    }

    /// Two gRPC bodies, compared message by message as JSON ([`grpc`]). Byte-identical bodies
    /// are equal without being decoded.
    fn compare_grpc(&mut self, other: &SideRecord, other_content: &Content<'_>) -> BodyComparison {
        self.other_problem = None;
        let a: &'a [u8] = &self.content.bytes;
        let b: &[u8] = &other_content.bytes;
        let mut out = BodyComparison {
            compared_as: if a.is_empty() && b.is_empty() { ComparedAs::Empty } else { ComparedAs::Json },
            equal: true,
            differences: Vec::new(),
            text: None,
            binary: None,
            baseline_unparseable: None,
            canary_unparseable: None,
            patch: None,
            undecodable: None,
            stream: None,
        };
        if a == b && self.content.truncated == other_content.truncated {
            return out;
        }
        let method = self.rules.grpc_schema.as_ref().and_then(|s| s.method(self.call_path));
        let cap = self.rules.max_decoded_body;
        let (encoding, cut) = (grpc_encoding(self.baseline), self.content.truncated);
        let ours = &*self.grpc.get_or_insert_with(|| {
            grpc::decode_body(a, encoding.as_deref(), cut, method.as_ref(), Direction::Response, cap)
        });
        let theirs = grpc::decode_body(
            b,
            grpc_encoding(other).as_deref(),
            other_content.truncated,
            method.as_ref(),
            Direction::Response,
            cap,
        );
        match (ours, &theirs) {
            (Ok(x), Ok(y)) => {
                let bounded =
                    if x.stream && y.stream { grpc::bound_cut(&x.value, x.cut, &y.value, y.cut) } else { None };
                let (xv, yv) = match &bounded {
                    Some((p, q)) => (p, q),
                    None => (&x.value, &y.value),
                };
                out.differences = crate::json::diff_json(xv, yv, self.rules, self.route);
                out.equal = out.differences.is_empty();
                if !out.equal {
                    let decoded_as = match &x.by {
                        DecodedBy::Descriptor(name) => name.clone(),
                        DecodedBy::WireFormat if self.rules.grpc_schema.is_some() => {
                            format!("wire format ({} is not in the descriptor set)", self.call_path)
                        }
                        DecodedBy::WireFormat => "wire format".to_owned(),
                    };
                    self.decoded =
                        Some(DecodedMessages { baseline: x.value.clone(), canary: y.value.clone(), decoded_as });
                }
            }
            (x, y) => {
                let describe = |r: &Result<Messages, Problem>| match r {
                    Ok(m) if m.count == 1 => "1 message".to_owned(),
                    Ok(m) => format!("{} messages", m.count),
                    Err(p) => format!("undecodable: {p}"),
                };
                out.compared_as = ComparedAs::Binary;
                out.equal = a == b;
                if !out.equal {
                    out.undecodable = Some(Undecodable {
                        baseline: describe(x),
                        canary: describe(y),
                        // The baseline's clients could read its messages; the canary's could not.
                        severity: if x.is_ok() { Severity::Breaking } else { Severity::Changed },
                    });
                }
                self.other_problem = theirs.err();
            }
        }
        out
    }

    fn compare(&mut self, other: &SideRecord, other_content: &Content<'_>) -> SideComparison {
        let bytes: &'a [u8] = &self.content.bytes;
        let other_type = content_type(other);
        let other_bytes: &[u8] = &other_content.bytes;
        let undecodable = self.content.undecodable.is_some() || other_content.undecodable.is_some();
        let grpc = grpc::is_grpc(self.content_type.as_deref()) && grpc::is_grpc(other_type.as_deref());
        let body = if undecodable {
            undecodable_bodies(self.content, other_content)
        } else if grpc {
            self.compare_grpc(other, other_content)
        } else if bytes == other_bytes && claim(self.content_type.as_deref()) == claim(other_type.as_deref()) {
            // Byte-identical: the engine's fast path classifies without diffing.
            compare_bodies(
                (bytes, self.content_type.as_deref()),
                (other_bytes, other_type.as_deref()),
                self.rules,
                self.route,
            )
        } else {
            let (ct, cut) = (self.content_type.clone(), self.content.truncated);
            let parsed = self.parsed.get_or_insert_with(|| parse_body_cut(bytes, ct.as_deref(), cut));
            let other = parse_body_cut(other_bytes, other_type.as_deref(), other_content.truncated);
            compare_parsed(parsed, &other, self.rules, self.route, false)
        };
        let mut headers = diff_header_records(&self.baseline.headers, &other.headers, &self.rules.headers, true);
        // Trailers (gRPC's trailing metadata) by the same rules, named `trailer:NAME`.
        if !self.baseline.trailers.is_empty() || !other.trailers.is_empty() {
            let trailers = diff_header_records(&self.baseline.trailers, &other.trailers, &self.rules.headers, true);
            headers.extend(trailers.into_iter().map(|mut t| {
                t.name = format!("{TRAILER_PREFIX}{}", t.name);
                t
            }));
        }
        SideComparison { status: compare_status(self.baseline.status, other.status), headers, body }
    }
}

/// Bodies of which one side (or both) could not be decoded: equal only when both are the same
/// bytes with the same failure; otherwise one difference saying why ([`found`] spells it).
fn undecodable_bodies(baseline: &Content<'_>, other: &Content<'_>) -> BodyComparison {
    let equal = baseline.bytes == other.bytes && baseline.undecodable == other.undecodable;
    BodyComparison {
        compared_as: ComparedAs::Binary,
        equal,
        differences: Vec::new(),
        text: None,
        binary: None,
        baseline_unparseable: None,
        canary_unparseable: None,
        patch: None,
        stream: None,
        undecodable: (!equal).then(|| Undecodable {
            baseline: describe_content(baseline),
            canary: describe_content(other),
            // A canary whose body its clients cannot decode (the baseline's they can) breaks them;
            // an encoding this tool does not know, or a broken baseline, is only a change.
            severity: match (&baseline.undecodable, &other.undecodable) {
                (None, Some(DecodeError::Broken { .. } | DecodeError::EndsEarly { .. })) => Severity::Breaking,
                _ => Severity::Changed,
            },
        }),
    }
}

fn describe_content(c: &Content<'_>) -> String {
    match &c.undecodable {
        Some(e) => format!("undecodable: {e}"),
        None => format!("{} bytes", c.bytes.len()),
    }
}

/// A side's `grpc-encoding`: how its compressed messages are compressed.
fn grpc_encoding(side: &SideRecord) -> Option<String> {
    side.header("grpc-encoding").map(|h| h.value_lossy().into_owned())
}

fn content_type(side: &SideRecord) -> Option<String> {
    side.header("content-type").map(|h| h.value_lossy().into_owned())
}

pub use shadowdiff_format::vocab::BODY_FIELD;

/// One difference for the body as a whole, at [`BODY_FIELD`].
fn whole_body(baseline: Option<Value>, canary: Option<Value>, severity: Severity) -> Found {
    Found {
        location: Location::Body,
        diff: Difference {
            path: String::new(),
            field: BODY_FIELD.to_owned(),
            kind: DiffKind::ValueChanged,
            baseline,
            canary,
            severity,
            explained: None,
        },
    }
}

/// Flattens a comparison into differences: JSON body differences as they are, a text, binary or
/// undecodable body difference as one difference at [`BODY_FIELD`] (an undecodable side's value
/// reads `undecodable: gzip stream is broken (…)`), and header differences at `header:NAME`.
fn found(c: SideComparison) -> Vec<Found> {
    let mut out = Vec::with_capacity(c.body.differences.len() + c.headers.len());
    match c.body.compared_as {
        _ if c.body.undecodable.is_some() => {
            if let Some(u) = c.body.undecodable {
                out.push(whole_body(Some(Value::String(u.baseline)), Some(Value::String(u.canary)), u.severity));
            }
        }
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
            out.push(whole_body(baseline, canary, Severity::Changed));
        }
        _ => {}
    }
    for h in c.headers {
        // Reported (severity `changed`), but not a regression: the content was compared decoded.
        let explained = (h.name == "content-encoding").then(|| CODING_EXPLAINED.to_owned());
        let field = if h.name.starts_with(TRAILER_PREFIX) { h.name.clone() } else { format!("header:{}", h.name) };
        out.push(Found {
            location: Location::Header,
            diff: Difference {
                path: field.clone(),
                field,
                kind: h.kind,
                baseline: h.baseline.map(Value::String),
                canary: h.canary.map(Value::String),
                severity: h.severity,
                explained,
            },
        });
    }
    out
}

/// How a trailer difference's field is named: `trailer:x-inventory-version` (headers are
/// `header:NAME`).
pub const TRAILER_PREFIX: &str = "trailer:";

/// Why a `content-encoding` header difference is explained: bodies are compared by their decoded
/// content, and which coding a server picks is its transport's business.
pub const CODING_EXPLAINED: &str = "bodies are compared decoded; only the content-encoding differs";

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use chrono::Utc;
    use shadowdiff_format::Header;

    use super::*;

    const ORDER: &str = r#"{"id":7,"total":12.5,"legacy_code":"A1","items":[{"sku":"x","qty":2}]}"#;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("in memory");
        e.finish().expect("in memory")
    }

    fn side(encoding: Option<&'static str>, body: Vec<u8>) -> SideRecord {
        let mut headers = vec![Header::new("content-type", "application/json")];
        headers.extend(encoding.map(|e| Header::new("content-encoding", e)));
        SideRecord { status: Some(200), headers, body: Some(body.into()), ..SideRecord::default() }
    }

    fn run(baseline: SideRecord, canary: SideRecord, rules: &Rules) -> Evaluated {
        let mut r = PairRecord::new("test", Utc::now(), "GET", "/api/orders/7", None);
        r.baseline = baseline;
        r.canary = canary;
        evaluate(0, &r, "/api/orders/{id}".into(), rules)
    }

    #[test]
    fn gzip_against_identity_is_one_changed_header_and_no_body_difference() {
        let e = run(side(Some("gzip"), gzip(ORDER.as_bytes())), side(None, ORDER.into()), &Rules::default());
        assert_eq!(e.raw.len(), 1, "{:?}", e.raw);
        let d = &e.raw[0].diff;
        assert_eq!(
            (e.raw[0].location, d.field.as_str(), d.severity),
            (Location::Header, "header:content-encoding", Severity::Changed)
        );
        assert_eq!(d.explained.as_deref(), Some(CODING_EXPLAINED), "reported, not counted as a regression");
        assert_eq!(e.baseline.undecodable, None);
    }

    #[test]
    fn decoded_bodies_are_diffed_by_field() {
        let canary = ORDER.replace(r#""legacy_code":"A1","#, "");
        let e = run(
            side(Some("gzip"), gzip(ORDER.as_bytes())),
            side(Some("x-gzip"), gzip(canary.as_bytes())),
            &Rules::default(),
        );
        let fields: Vec<_> = e.raw.iter().map(|f| (f.diff.field.as_str(), f.diff.severity)).collect();
        assert_eq!(fields, vec![("/legacy_code", Severity::Breaking), ("header:content-encoding", Severity::Changed)]);
    }

    #[test]
    fn an_undecodable_body_is_one_difference_that_says_why() {
        let mut broken = gzip(ORDER.as_bytes());
        broken[12] ^= 0xff;
        let e = run(side(None, ORDER.into()), side(Some("gzip"), broken), &Rules::default());
        let body: Vec<_> = e.raw.iter().filter(|f| f.location == Location::Body).collect();
        assert_eq!(body.len(), 1);
        let d = &body[0].diff;
        assert_eq!(d.field, BODY_FIELD);
        assert_eq!(d.severity, Severity::Breaking, "the canary's clients could not read it");
        let said = d.canary.as_ref().and_then(Value::as_str).unwrap_or_default();
        assert!(said.starts_with("undecodable: gzip stream is broken"), "{said}");
        assert_eq!(e.canary.undecodable.as_deref(), Some(said));
        assert_eq!(e.baseline.undecodable, None);

        // An encoding nobody knows, the same bytes on both sides: counted, but no difference.
        let odd = side(Some("x-foo"), b"??".to_vec());
        let e = run(odd.clone(), odd, &Rules::default());
        assert!(e.raw.is_empty(), "{:?}", e.raw);
        assert_eq!(e.canary.undecodable.as_deref(), Some("undecodable: unknown content-encoding `x-foo`"));
    }

    fn stream_side(body: &str, cut: bool, error: Option<&str>) -> SideRecord {
        SideRecord {
            status: Some(200),
            headers: vec![Header::new("content-type", "text/event-stream")],
            body: Some(body.to_owned().into()),
            body_truncated: cut,
            error: error.map(str::to_owned),
            latency_us: error.is_none().then_some(1000),
            ..SideRecord::default()
        }
    }

    #[test]
    fn a_cut_stream_is_compared_and_is_not_an_error() {
        let events: String = (0..6).map(|i| format!("event: tick\ndata: {{\"n\": {i}}}\n\n")).collect();
        // The recorder stopped keeping the canary's stream at its cap and gave up waiting for the
        // end (timeout); the baseline's was cut elsewhere, by a duration cap.
        let e = run(
            stream_side(&events[..50], true, None),
            stream_side(&events[..90], true, Some("timeout")),
            &Rules::default(),
        );
        assert_eq!(e.outcome, Outcome::Compared);
        assert!(e.raw.is_empty(), "{:?}", e.raw);
        assert!(!e.canary.is_error() && e.canary.error_label().is_none() && e.canary.cut_stream);
        assert_eq!(e.canary.usable_latency(), None, "a cut exchange's latency is not the response's");

        // A changed event inside both cuts is found at its field.
        let changed = events.replace("\"n\": 1}", "\"n\": 100}");
        let e = run(stream_side(&events[..70], true, None), stream_side(&changed, false, None), &Rules::default());
        assert_eq!(e.raw.iter().map(|f| f.diff.path.as_str()).collect::<Vec<_>>(), vec!["/1/data/n"]);

        // A timeout before a 2xx head, or a reset after the cut, is still an error.
        let mut failed = stream_side("", false, Some("timeout"));
        failed.status = None;
        assert!(run(stream_side(&events, false, None), failed, &Rules::default()).canary.is_error());
        let reset =
            run(stream_side(&events, false, None), stream_side(&events[..40], true, Some("reset")), &Rules::default());
        assert_eq!((reset.outcome, reset.canary.is_error()), (Outcome::CanaryError, true));
    }

    #[test]
    fn content_past_the_decoded_cap_is_cut_and_noted() {
        let mut rules = Rules::default();
        rules.max_decoded_body = 10;
        let e = run(side(Some("gzip"), gzip(ORDER.as_bytes())), side(Some("gzip"), gzip(ORDER.as_bytes())), &rules);
        assert!(e.baseline.cut_at_decoded_cap && e.canary.cut_at_decoded_cap);
        assert!(e.raw.is_empty(), "the same first 10 bytes: {:?}", e.raw);
    }

    fn grpc_side(status: &str, trailers_only: bool, version: &str) -> SideRecord {
        let mut headers = vec![Header::new("content-type", "application/grpc")];
        let mut trailers = vec![Header::new("x-inventory-version", version.to_owned())];
        let status = Header::new("grpc-status", status.to_owned());
        if trailers_only {
            headers.push(status)
        } else {
            trailers.insert(0, status)
        }
        SideRecord {
            status: Some(200),
            headers,
            body: (!trailers_only).then(|| bytes::Bytes::from_static(&[0, 0, 0, 0, 2, 8, 1])),
            trailers: if trailers_only { Vec::new() } else { trailers },
            latency_us: Some(1000),
            ..SideRecord::default()
        }
    }

    fn grpc_body(side: &mut SideRecord, messages: &[&[u8]]) {
        let mut body = Vec::new();
        for m in messages {
            body.push(0);
            body.extend_from_slice(&(m.len() as u32).to_be_bytes());
            body.extend_from_slice(m);
        }
        side.body = Some(body.into());
    }

    #[test]
    fn grpc_messages_are_diffed_by_field_and_a_malformed_one_is_undecodable() {
        let rules = Rules::default();
        let (mut a, mut b) = (grpc_side("0", false, "1"), grpc_side("0", false, "1"));
        // Field 1 = 7, field 2 = {1: 10}; the canary changes the nested field.
        grpc_body(&mut a, &[&[0x08, 7, 0x12, 2, 0x08, 10]]);
        grpc_body(&mut b, &[&[0x08, 7, 0x12, 2, 0x08, 11]]);
        let e = run(a.clone(), b, &rules);
        let fields: Vec<(&str, Severity)> = e.raw.iter().map(|f| (f.diff.path.as_str(), f.diff.severity)).collect();
        assert_eq!(fields, vec![("/2/1", Severity::Changed)]);
        let m = e.messages.expect("the messages are kept for the examples");
        assert_eq!((m.baseline["2"]["1"].as_u64(), m.canary["2"]["1"].as_u64()), (Some(10), Some(11)));
        assert_eq!(m.decoded_as, "wire format");
        // A canary message whose prefix claims more than follows: one (body) difference that
        // says why, breaking, and the canary is counted undecodable.
        let mut broken = grpc_side("0", false, "1");
        broken.body = Some(bytes::Bytes::from_static(&[0, 0, 0, 0, 9, 8, 7]));
        let e = run(a, broken, &rules);
        assert_eq!(e.raw.len(), 1, "{:?}", e.raw);
        assert_eq!((e.raw[0].diff.field.as_str(), e.raw[0].diff.severity), (BODY_FIELD, Severity::Breaking));
        assert_eq!(
            e.canary.undecodable.as_deref(),
            Some("undecodable: gRPC message 1 is cut: its prefix says 9 bytes and 2 follow")
        );
        assert_eq!(e.baseline.undecodable, None);
    }

    #[test]
    fn grpc_status_drives_errors_and_status_mismatches() {
        let rules = Rules::default();
        // The same status: compared, and a changed trailer is a difference at trailer:NAME.
        let e = run(grpc_side("0", false, "1"), grpc_side("0", false, "2"), &rules);
        assert_eq!(e.outcome, Outcome::Compared);
        let fields: Vec<&str> = e.raw.iter().map(|f| f.diff.field.as_str()).collect();
        assert_eq!(fields, vec!["trailer:x-inventory-version"]);
        assert!(!e.canary.is_error());
        // NOT_FOUND (trailers-only) against UNAVAILABLE: a status mismatch, the canary an error
        // named by its code; NOT_FOUND itself is an outcome, not an error.
        let e = run(grpc_side("5", true, "1"), grpc_side("14", false, "1"), &rules);
        assert_eq!(e.outcome, Outcome::StatusMismatch);
        assert!(!e.baseline.is_error() && e.canary.is_error());
        assert_eq!(e.canary.error_label().as_deref(), Some("grpc UNAVAILABLE"));
        assert_eq!(e.baseline.grpc_status.as_ref().map(GrpcStatus::name).as_deref(), Some("NOT_FOUND"));
        for (code, error) in
            [("2", true), ("4", true), ("8", true), ("13", true), ("15", true), ("3", false), ("16", false)]
        {
            assert_eq!(run(grpc_side(code, false, "1"), grpc_side(code, false, "1"), &rules).canary.is_error(), error);
        }
        // A grpc-status that is not a number: UNKNOWN, an error that says why.
        let e = run(grpc_side("0", false, "1"), grpc_side("zero", false, "1"), &rules);
        assert_eq!(e.outcome, Outcome::StatusMismatch);
        assert_eq!(e.canary.error_label().as_deref(), Some("grpc UNKNOWN (grpc-status `zero` is not a number)"));
        // Not gRPC: no status of the kind.
        assert_eq!(run(side(None, ORDER.into()), side(None, ORDER.into()), &rules).canary.grpc_status, None);
    }
}
