//! Response bodies: decide how each is compared (JSON, text or binary), then compare.
//!
//! A body is JSON when its content type says so (`application/json`, `*+json`) or, with no
//! telling content type, when it is UTF-8 starting with `{` or `[` and parses. Text is a `text/*`
//! or XML-like content type, or valid UTF-8 without NUL bytes. Everything else is binary and is
//! compared by length and xxh3 hash. A body that claims JSON but does not parse — bad syntax,
//! invalid UTF-8, nesting 128 levels or deeper (serde_json's limit) — is reported as `unparseable` and
//! compared as text (or binary, if it is not UTF-8): bad input is a finding, never a crash.
//!
//! A streamed body (`text/event-stream`, NDJSON / JSON Lines, `application/json-seq`) is read
//! as its list of records ([`crate::stream`]) and compared as that JSON array, so one changed
//! event is one difference at `/3/data/price`. A stream that was cut is compared only as far as
//! its complete records, and two cut streams as far as the shorter one.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use similar::{Algorithm, DiffOp, TextDiff};

use crate::json::{Difference, diff_json_with_patch};
use crate::rules::Rules;
use crate::stream::{self, Stream};

/// Line diffs give up aligning after this long and report what they have: a 100 MB body with
/// every line changed must not stall a run.
const TEXT_DIFF_TIMEOUT: Duration = Duration::from_secs(2);
/// The unified diff kept in a comparison is cut after this many bytes.
pub const MAX_UNIFIED_BYTES: usize = 64 * 1024;

pub use shadowdiff_format::media::{Claim, claim};

/// Why a body that claimed to be JSON is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ParseProblem {
    /// Nested 128 or more levels deep, the parser's limit; no real API nests that deep.
    TooDeep,
    /// Not JSON: the parser's message, with line and column.
    Syntax { message: String },
}

impl std::fmt::Display for ParseProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseProblem::TooDeep => f.write_str("nested 128 or more levels deep"),
            ParseProblem::Syntax { message } => f.write_str(message),
        }
    }
}

/// Parses a JSON document, reporting pathological input instead of failing on it. Never
/// recurses past serde_json's limit of 128 levels, so no input can overflow the stack.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ParseProblem> {
    // Checking UTF-8 once over the whole body (vectorised) and parsing it as text is cheaper than
    // the byte parser's check of every string; a body that is not UTF-8 goes to the byte parser,
    // which says where it fails.
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
    .map_err(|e| ParseProblem::from_serde(&e))
}

impl ParseProblem {
    fn from_serde(e: &serde_json::Error) -> Self {
        let message = e.to_string();
        if message.starts_with("recursion limit exceeded") {
            ParseProblem::TooDeep
        } else {
            ParseProblem::Syntax { message }
        }
    }
}

/// A body decoded for comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedBody<'a> {
    Empty,
    Json { value: Value, raw: &'a [u8] },
    Text(&'a str),
    Binary(&'a [u8]),
}

/// A decoded body and, when it claimed JSON but was not, why.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<'a> {
    pub body: ParsedBody<'a>,
    pub unparseable: Option<ParseProblem>,
    /// A streamed body, read as the JSON array of its records (in `body`).
    pub stream: Option<StreamBody>,
}

/// What kind of stream a parsed body was, and whether it was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamBody {
    pub kind: Stream,
    /// The body was cut: records may have followed the ones read.
    pub cut: bool,
}

/// Decodes one body. `content_type` is the response's `Content-Type`, if any.
pub fn parse_body<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Parsed<'a> {
    parse_body_cut(bytes, content_type, false)
}

/// [`parse_body`] for a body that may have been cut (`cut`: by the recorder's cap, a duration
/// cap, or the decoded-size cap): a stream keeps only its complete records.
pub fn parse_body_cut<'a>(bytes: &'a [u8], content_type: Option<&str>, cut: bool) -> Parsed<'a> {
    if let Some(kind) = stream::stream(content_type).filter(|_| !bytes.is_empty()) {
        let records = stream::parse(kind, bytes, cut);
        return Parsed {
            body: ParsedBody::Json { value: Value::Array(records.items), raw: bytes },
            unparseable: records.problem,
            stream: Some(StreamBody { kind, cut }),
        };
    }
    let (body, unparseable) = decode(bytes, content_type, parse_json);
    let body = match body {
        Decoded::Empty => ParsedBody::Empty,
        Decoded::Json(value) => ParsedBody::Json { value, raw: bytes },
        Decoded::Text(s) => ParsedBody::Text(s),
        Decoded::Binary(b) => ParsedBody::Binary(b),
    };
    Parsed { body, unparseable, stream: None }
}

enum Decoded<'a, J> {
    Empty,
    Json(J),
    Text(&'a str),
    Binary(&'a [u8]),
}

/// The one place that decides what a body is; `json` either parses it or only validates it.
fn decode<'a, J>(
    bytes: &'a [u8],
    content_type: Option<&str>,
    json: impl Fn(&[u8]) -> Result<J, ParseProblem>,
) -> (Decoded<'a, J>, Option<ParseProblem>) {
    if bytes.is_empty() {
        return (Decoded::Empty, None);
    }
    let as_text = |bytes: &'a [u8]| match std::str::from_utf8(bytes) {
        Ok(s) if !s.contains('\0') => Decoded::Text(s),
        _ => Decoded::Binary(bytes),
    };
    match claim(content_type) {
        Claim::Json => match json(bytes) {
            Ok(value) => (Decoded::Json(value), None),
            Err(problem) => (as_text(bytes), Some(problem)),
        },
        Claim::Text => (as_text(bytes), None),
        Claim::Binary => (Decoded::Binary(bytes), None),
        Claim::Unknown => match as_text(bytes) {
            Decoded::Text(s) if s.trim_start().starts_with(['{', '[']) => match json(bytes) {
                Ok(value) => (Decoded::Json(value), None),
                Err(_) => (Decoded::Text(s), None),
            },
            other => (other, None),
        },
    }
}

/// Checks that `bytes` is one JSON document without building it: far cheaper than parsing.
fn validate_json(bytes: &[u8]) -> Result<(), ParseProblem> {
    // Skipping a string does not check its UTF-8; parsing does. Agree with the parser (and its
    // message) on a body that is not UTF-8.
    if std::str::from_utf8(bytes).is_err() {
        return parse_json(bytes).map(drop);
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| ParseProblem::from_serde(&e))?;
    // Skipping a value does not count depth; parsing does. Agree with the parser. A document
    // with no more brackets than the limit cannot nest deeper than it, and counting them (a
    // vectorised scan) is several times cheaper than tracking strings byte by byte.
    let openers = bytes.iter().filter(|&&b| b == b'[' || b == b'{').count();
    if openers > MAX_PARSE_DEPTH && nesting_depth(bytes) > MAX_PARSE_DEPTH {
        Err(ParseProblem::TooDeep)
    } else {
        Ok(())
    }
}

/// The deepest nesting serde_json parses: its recursion limit of 128 rejects the 128th level.
const MAX_PARSE_DEPTH: usize = 127;

/// The maximum nesting depth of arrays and objects in valid JSON text.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// How two bodies were compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparedAs {
    /// Both empty or absent.
    Empty,
    Json,
    Text,
    Binary,
}

/// A line diff of two text bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextDifference {
    /// Baseline lines not in the canary.
    pub removed_lines: usize,
    /// Canary lines not in the baseline.
    pub added_lines: usize,
    /// A unified diff (`--- baseline` / `+++ canary`), cut at [`MAX_UNIFIED_BYTES`].
    pub unified: String,
    pub unified_truncated: bool,
}

/// Two binary bodies: their lengths and xxh3-64 hashes (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BinaryDifference {
    pub baseline_len: usize,
    pub canary_len: usize,
    pub baseline_xxh3: String,
    pub canary_xxh3: String,
}

/// The outcome of comparing two bodies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BodyComparison {
    pub compared_as: ComparedAs,
    pub equal: bool,
    /// JSON differences (empty unless `compared_as` is `json`).
    pub differences: Vec<Difference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextDifference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinaryDifference>,
    /// The baseline claimed JSON and was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_unparseable: Option<ParseProblem>,
    /// The canary claimed JSON and was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_unparseable: Option<ParseProblem>,
    /// The RFC 6902 patch from baseline to canary, when asked for and both sides are JSON.
    #[serde(skip)]
    pub patch: Option<Vec<Value>>,
    /// A side's Content-Encoding could not be undone, so the content was not compared (the
    /// bodies as received differ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undecodable: Option<Undecodable>,
    /// Both bodies were streams of this kind, compared as JSON arrays of their records
    /// (`compared_as` is `json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
}

/// Bodies not compared because a side could not be decoded: each side's value is
/// `undecodable: <why>` or its decoded length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undecodable {
    pub baseline: String,
    pub canary: String,
    pub severity: crate::json::Severity,
}

impl BodyComparison {
    /// Whether any difference is left once explained ones are set aside.
    pub fn has_unexplained(&self) -> bool {
        match self.compared_as {
            ComparedAs::Json => self.differences.iter().any(|d| d.explained.is_none()),
            _ => !self.equal,
        }
    }
}

/// Compares two raw bodies, each with its content type. Byte-identical bodies are recognised
/// without being parsed.
pub fn compare_bodies(
    baseline: (&[u8], Option<&str>),
    canary: (&[u8], Option<&str>),
    rules: &Rules,
    route: Option<&str>,
) -> BodyComparison {
    if baseline.0 == canary.0 && claim(baseline.1) == claim(canary.1) {
        return identical(baseline.0, baseline.1);
    }
    compare_parsed(&parse_body(baseline.0, baseline.1), &parse_body(canary.0, canary.1), rules, route, false)
}

/// Byte-identical bodies, the common case in shadow traffic: equal under any rules, so they are
/// only classified (JSON validated, not built), which is several times cheaper than a diff.
fn identical(bytes: &[u8], content_type: Option<&str>) -> BodyComparison {
    let stream = stream::stream(content_type).filter(|_| !bytes.is_empty());
    let (decoded, problem) = match stream {
        Some(_) => (Decoded::Json(()), None),
        None => decode(bytes, content_type, validate_json),
    };
    let compared_as = match decoded {
        Decoded::Empty => ComparedAs::Empty,
        Decoded::Json(()) => ComparedAs::Json,
        Decoded::Text(_) => ComparedAs::Text,
        Decoded::Binary(_) => ComparedAs::Binary,
    };
    BodyComparison {
        compared_as,
        equal: true,
        differences: Vec::new(),
        text: None,
        binary: None,
        baseline_unparseable: problem.clone(),
        canary_unparseable: problem,
        patch: None,
        undecodable: None,
        stream,
    }
}

/// Compares two decoded bodies; `want_patch` also builds the JSON Patch when both are JSON.
pub fn compare_parsed(
    a: &Parsed<'_>,
    b: &Parsed<'_>,
    rules: &Rules,
    route: Option<&str>,
    want_patch: bool,
) -> BodyComparison {
    let mut out = BodyComparison {
        compared_as: ComparedAs::Empty,
        equal: true,
        differences: Vec::new(),
        text: None,
        binary: None,
        baseline_unparseable: a.unparseable.clone(),
        canary_unparseable: b.unparseable.clone(),
        patch: None,
        undecodable: None,
        stream: None,
    };
    match (&a.body, &b.body) {
        (ParsedBody::Empty, ParsedBody::Empty) => {}
        (ParsedBody::Json { value: x, .. }, ParsedBody::Json { value: y, .. }) => {
            out.compared_as = ComparedAs::Json;
            let bounded;
            let (x, y) = match (a.stream, b.stream) {
                (Some(sa), Some(sb)) if sa.kind == sb.kind => {
                    out.stream = Some(sa.kind);
                    bounded = bound_cut_streams(x, sa.cut, y, sb.cut);
                    match &bounded {
                        Some((x, y)) => (x, y),
                        None => (x, y),
                    }
                }
                _ => (x, y),
            };
            if want_patch {
                let (d, p) = diff_json_with_patch(x, y, rules, route);
                out.differences = d;
                out.patch = Some(p);
            } else {
                out.differences = crate::json::diff_json(x, y, rules, route);
            }
            out.equal = out.differences.is_empty();
        }
        (ParsedBody::Binary(_), _) | (_, ParsedBody::Binary(_)) => {
            out.compared_as = ComparedAs::Binary;
            let (x, y) = (raw(&a.body), raw(&b.body));
            out.equal = x == y;
            if !out.equal {
                out.binary = Some(BinaryDifference {
                    baseline_len: x.len(),
                    canary_len: y.len(),
                    baseline_xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(x)),
                    canary_xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(y)),
                });
            }
        }
        _ => {
            out.compared_as = ComparedAs::Text;
            let (x, y) = (raw(&a.body), raw(&b.body));
            out.equal = x == y;
            if !out.equal {
                // Both sides are UTF-8 here: Text, or JSON (parsed from UTF-8), or empty.
                let x = std::str::from_utf8(x).unwrap_or_default();
                let y = std::str::from_utf8(y).unwrap_or_default();
                out.text = Some(diff_text(x, y));
            }
        }
    }
    out
}

/// Two streams of records of which one or both were cut: each compared only as far as the
/// shortest cut side has complete records, so a stream cut at different points is not a
/// difference. `None` when nothing needs cutting.
fn bound_cut_streams(a: &Value, a_cut: bool, b: &Value, b_cut: bool) -> Option<(Value, Value)> {
    let (Value::Array(x), Value::Array(y)) = (a, b) else { return None };
    let limit = [(a_cut, x.len()), (b_cut, y.len())].into_iter().filter(|(cut, _)| *cut).map(|(_, n)| n).min()?;
    if x.len() <= limit && y.len() <= limit {
        return None;
    }
    let take = |v: &[Value]| Value::Array(v[..v.len().min(limit)].to_vec());
    Some((take(x), take(y)))
}

fn raw<'a>(body: &ParsedBody<'a>) -> &'a [u8] {
    match body {
        ParsedBody::Empty => b"",
        ParsedBody::Json { raw, .. } => raw,
        ParsedBody::Text(s) => s.as_bytes(),
        ParsedBody::Binary(b) => b,
    }
}

/// A line diff of two texts with changed-line counts and a capped unified diff.
pub fn diff_text(baseline: &str, canary: &str) -> TextDifference {
    let diff =
        TextDiff::configure().algorithm(Algorithm::Myers).timeout(TEXT_DIFF_TIMEOUT).diff_lines(baseline, canary);
    let (mut removed_lines, mut added_lines) = (0, 0);
    for op in diff.ops() {
        match *op {
            DiffOp::Equal { .. } => {}
            DiffOp::Delete { old_len, .. } => removed_lines += old_len,
            DiffOp::Insert { new_len, .. } => added_lines += new_len,
            DiffOp::Replace { old_len, new_len, .. } => {
                removed_lines += old_len;
                added_lines += new_len;
            }
        }
    }
    let mut unified = String::from("--- baseline\n+++ canary\n");
    let mut unified_truncated = false;
    let mut udiff = diff.unified_diff();
    udiff.context_radius(3);
    for hunk in udiff.iter_hunks() {
        if unified.len() >= MAX_UNIFIED_BYTES {
            unified_truncated = true;
            break;
        }
        let _ = write!(unified, "{hunk}");
    }
    if unified.len() > MAX_UNIFIED_BYTES {
        let mut cut = MAX_UNIFIED_BYTES;
        while !unified.is_char_boundary(cut) {
            cut -= 1;
        }
        unified.truncate(cut);
        unified_truncated = true;
    }
    TextDifference { removed_lines, added_lines, unified, unified_truncated }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert!(matches!(parse_body(b"{\"a\":1}", None).body, ParsedBody::Json { .. }));
        assert!(matches!(parse_body(b"{not json", None).body, ParsedBody::Text(_)));
        assert_eq!(parse_body(b"{not json", None).unparseable, None, "only a JSON claim makes it unparseable");
        assert!(matches!(parse_body(b"hello", None).body, ParsedBody::Text(_)));
        assert!(matches!(parse_body(b"\xff\xfe\x00", None).body, ParsedBody::Binary(_)));
        assert!(matches!(parse_body(b"a\0b", Some("text/plain")).body, ParsedBody::Binary(_)));
        assert_eq!(parse_body(b"", Some("application/json")).body, ParsedBody::Empty);
    }

    #[test]
    fn unparseable_json_is_compared_as_text() {
        let c = compare_bodies(
            (b"{\"a\": 1}", Some("application/json")),
            (b"{\"a\": 1,}", Some("application/json")),
            &Rules::default(),
            None,
        );
        assert_eq!(c.compared_as, ComparedAs::Text);
        assert!(!c.equal);
        assert!(matches!(c.canary_unparseable, Some(ParseProblem::Syntax { .. })));
        assert_eq!(c.baseline_unparseable, None);
        let t = c.text.expect("text diff");
        assert_eq!((t.removed_lines, t.added_lines), (1, 1));
    }

    #[test]
    fn invalid_utf8_json_is_binary_and_unparseable() {
        let c = compare_bodies(
            (b"{\"a\": \"\xff\"}", Some("application/json")),
            (b"{\"a\": 1}", Some("application/json")),
            &Rules::default(),
            None,
        );
        assert_eq!(c.compared_as, ComparedAs::Binary);
        assert!(c.baseline_unparseable.is_some());
    }

    #[test]
    fn too_deep_is_reported() {
        let depth = 100_000;
        let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(parse_json(doc.as_bytes()), Err(ParseProblem::TooDeep));
        let obj = "{\"a\":".repeat(depth) + "1" + &"}".repeat(depth);
        let c = compare_bodies(
            (doc.as_bytes(), Some("application/json")),
            (obj.as_bytes(), Some("application/json")),
            &Rules::default(),
            None,
        );
        assert_eq!(c.baseline_unparseable, Some(ParseProblem::TooDeep));
        assert_eq!(c.canary_unparseable, Some(ParseProblem::TooDeep));
        assert_eq!(c.compared_as, ComparedAs::Text);
        assert!(!c.equal);
    }

    #[test]
    fn text_diff_counts_and_unified() {
        let t = diff_text("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!((t.removed_lines, t.added_lines), (1, 2));
        assert!(t.unified.starts_with("--- baseline\n+++ canary\n@@"), "{}", t.unified);
        assert!(t.unified.contains("-b\n") && t.unified.contains("+B\n") && t.unified.contains("+d\n"));
    }

    #[test]
    fn unified_is_capped() {
        let a: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        let b: String = (0..50_000).map(|i| format!("LINE {i}\n")).collect();
        let t = diff_text(&a, &b);
        assert!(t.unified_truncated);
        assert!(t.unified.len() <= MAX_UNIFIED_BYTES);
        assert_eq!((t.removed_lines, t.added_lines), (50_000, 50_000));
    }

    #[test]
    fn binary_by_hash() {
        let c = compare_bodies(
            (b"\x89PNG\x00\x01", Some("image/png")),
            (b"\x89PNG\x00\x02!", Some("image/png")),
            &Rules::default(),
            None,
        );
        assert_eq!(c.compared_as, ComparedAs::Binary);
        let bin = c.binary.expect("binary");
        assert_eq!((bin.baseline_len, bin.canary_len), (6, 7));
        assert_ne!(bin.baseline_xxh3, bin.canary_xxh3);
        let same = compare_bodies((b"\x00\x01", None), (b"\x00\x01", None), &Rules::default(), None);
        assert!(same.equal && same.binary.is_none());
    }

    #[test]
    fn identical_bytes_are_classified_without_a_diff() {
        let r = Rules::default();
        let json = compare_bodies(
            (b"{\"a\":1}", Some("application/json")),
            (b"{\"a\":1}", Some("application/json")),
            &r,
            None,
        );
        assert_eq!((json.compared_as, json.equal, json.canary_unparseable), (ComparedAs::Json, true, None));
        let sniffed = compare_bodies((b"[1]", None), (b"[1]", None), &r, None);
        assert_eq!(sniffed.compared_as, ComparedAs::Json);
        let bad = compare_bodies((b"{oops", Some("application/json")), (b"{oops", Some("application/json")), &r, None);
        assert_eq!(bad.compared_as, ComparedAs::Text);
        assert!(bad.equal && bad.baseline_unparseable.is_some() && bad.canary_unparseable.is_some());
        for depth in [127, 128, 129, 1000] {
            let doc = "[".repeat(depth) + &"]".repeat(depth);
            let fast = compare_bodies(
                (doc.as_bytes(), Some("application/json")),
                (doc.as_bytes(), Some("application/json")),
                &r,
                None,
            );
            assert_eq!(
                fast.baseline_unparseable,
                parse_body(doc.as_bytes(), Some("application/json")).unparseable,
                "depth {depth}"
            );
        }
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        let deep = compare_bodies(
            (deep.as_bytes(), Some("application/json")),
            (deep.as_bytes(), Some("application/json")),
            &r,
            None,
        );
        assert_eq!(deep.baseline_unparseable, Some(ParseProblem::TooDeep));
        let bin = compare_bodies((b"\x00\x01", None), (b"\x00\x01", None), &r, None);
        assert_eq!((bin.compared_as, bin.equal), (ComparedAs::Binary, true));
        let empty = compare_bodies((b"", None), (b"", Some("application/json")), &r, None);
        assert_eq!(empty.compared_as, ComparedAs::Empty);
        // The fast path and the full comparison agree.
        for (a, ct) in [
            (&b"{\"a\": [1, 2]}"[..], Some("application/json")),
            (b"text", None),
            (b"{x", Some("application/json")),
            (b"{\"a\": \"\xff\"}", Some("application/json")),
        ] {
            let fast = compare_bodies((a, ct), (a, ct), &r, None);
            let full = compare_parsed(&parse_body(a, ct), &parse_body(a, ct), &r, None, false);
            assert_eq!(fast, full);
        }
    }

    #[test]
    fn brackets_in_strings_are_counted_but_not_nesting() {
        // More openers than the depth limit, all inside one string: the bound lets it through to
        // the exact scan, which finds depth 1.
        let doc = format!("[\"{}\"]", "[{".repeat(200));
        let ct = Some("application/json");
        let c = compare_bodies((doc.as_bytes(), ct), (doc.as_bytes(), ct), &Rules::default(), None);
        assert_eq!((c.compared_as, c.baseline_unparseable), (ComparedAs::Json, None));
    }

    #[test]
    fn nesting_depth_skips_strings() {
        assert_eq!(nesting_depth(br#"{"a": ["[[[", {"b": "\"]]"}]}"#), 3);
        assert_eq!(nesting_depth(b"1"), 0);
    }

    fn sse_events(prices: &[i64]) -> String {
        prices.iter().enumerate().map(|(i, p)| format!("id: {i}\ndata: {{\"price\": {p}}}\n\n")).collect()
    }

    #[test]
    fn one_changed_event_is_one_difference_at_its_data_field() {
        let a = sse_events(&[1, 2, 3, 4, 5]);
        let b = sse_events(&[1, 2, 3, 40, 5]).replace("id: 0\n", ": keep-alive\nid: 0\n");
        let ct = Some("text/event-stream");
        let c = compare_bodies((a.as_bytes(), ct), (b.as_bytes(), ct), &Rules::default(), None);
        assert_eq!((c.compared_as, c.stream), (ComparedAs::Json, Some(Stream::EventStream)));
        let paths: Vec<(&str, &str)> = c.differences.iter().map(|d| (d.path.as_str(), d.field.as_str())).collect();
        assert_eq!(paths, vec![("/3/data/price", "/*/data/price")], "a comment is not a difference");
        let same = compare_bodies((a.as_bytes(), ct), (a.as_bytes(), ct), &Rules::default(), None);
        assert_eq!((same.compared_as, same.equal, same.stream), (ComparedAs::Json, true, Some(Stream::EventStream)));
    }

    #[test]
    fn cut_streams_are_compared_as_far_as_the_shorter_cut_side() {
        let r = Rules::default();
        let ct = Some("text/event-stream");
        let full = sse_events(&[1, 2, 3, 4, 5]);
        let compare = |a: &str, a_cut: bool, b: &str, b_cut: bool| {
            compare_parsed(
                &parse_body_cut(a.as_bytes(), ct, a_cut),
                &parse_body_cut(b.as_bytes(), ct, b_cut),
                &r,
                None,
                false,
            )
        };
        // Cut at different points, mid-event: the same stream.
        let (short, long) = (&full[..full.len() / 3], &full[..full.len() * 2 / 3]);
        assert!(compare(short, true, long, true).equal);
        // Only one side cut: the other side's extra events are past what is known of it.
        assert!(compare(short, true, &full, false).equal);
        assert!(compare(&full, false, long, true).equal);
        // A whole stream that ended early against a longer whole one differs.
        let fewer = sse_events(&[1, 2, 3]);
        let c = compare(&fewer, false, &full, false);
        assert_eq!(c.differences.len(), 2, "{:?}", c.differences);
        // A change before the cut is still found.
        let changed = sse_events(&[1, 9, 3, 4, 5]);
        let c = compare(long, true, &changed[..changed.len() / 2], true);
        assert_eq!(c.differences.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), vec!["/1/data/price"]);
    }

    #[test]
    fn json_lines_and_sequences_are_compared_per_record() {
        let r = Rules::default();
        for (ct, a, b) in [
            ("application/x-ndjson", "{\"a\":1}\n{\"a\":2}\n", "{\"a\":1}\n{\"a\":3}\n"),
            ("application/jsonl", "{\"a\":1}\n{\"a\":2}", "{\"a\":1}\r\n{\"a\":3}\r\n"),
            ("application/json-seq", "\u{1e}{\"a\":1}\n\u{1e}{\"a\":2}\n", "\u{1e}{\"a\":1}\n\u{1e}{\"a\":3}\n"),
        ] {
            let c = compare_bodies((a.as_bytes(), Some(ct)), (b.as_bytes(), Some(ct)), &r, None);
            assert_eq!(c.differences.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), vec!["/1/a"], "{ct}");
            assert!(c.canary_unparseable.is_none(), "{ct}");
        }
    }

    #[test]
    fn empty_against_json() {
        let c = compare_bodies((b"", None), (b"{}", Some("application/json")), &Rules::default(), None);
        assert_eq!(c.compared_as, ComparedAs::Text);
        assert!(!c.equal);
        let c = compare_bodies((b"", Some("application/json")), (b"", None), &Rules::default(), None);
        assert_eq!(c.compared_as, ComparedAs::Empty);
        assert!(c.equal && c.baseline_unparseable.is_none());
    }
}
