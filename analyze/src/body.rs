//! Response bodies: decide how each is compared (JSON, text or binary), then compare.
//!
//! A body is JSON when its content type says so (`application/json`, `*+json`) or, with no
//! telling content type, when it is UTF-8 starting with `{` or `[` and parses. Text is a `text/*`
//! or XML-like content type, or valid UTF-8 without NUL bytes. Everything else is binary and is
//! compared by length and xxh3 hash. A body that claims JSON but does not parse — bad syntax,
//! invalid UTF-8, nesting 128 levels or deeper (serde_json's limit) — is reported as `unparseable` and
//! compared as text (or binary, if it is not UTF-8): bad input is a finding, never a crash.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use similar::{Algorithm, DiffOp, TextDiff};

use crate::json::{Difference, diff_json_with_patch};
use crate::rules::Rules;

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
    serde_json::from_slice(bytes).map_err(|e| ParseProblem::from_serde(&e))
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
}

/// Decodes one body. `content_type` is the response's `Content-Type`, if any.
pub fn parse_body<'a>(bytes: &'a [u8], content_type: Option<&str>) -> Parsed<'a> {
    let (body, unparseable) = decode(bytes, content_type, parse_json);
    let body = match body {
        Decoded::Empty => ParsedBody::Empty,
        Decoded::Json(value) => ParsedBody::Json { value, raw: bytes },
        Decoded::Text(s) => ParsedBody::Text(s),
        Decoded::Binary(b) => ParsedBody::Binary(b),
    };
    Parsed { body, unparseable }
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
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| ParseProblem::from_serde(&e))?;
    // Skipping a value does not count depth; parsing does. Agree with the parser.
    if nesting_depth(bytes) > MAX_PARSE_DEPTH { Err(ParseProblem::TooDeep) } else { Ok(()) }
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
    let (decoded, problem) = decode(bytes, content_type, validate_json);
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
    };
    match (&a.body, &b.body) {
        (ParsedBody::Empty, ParsedBody::Empty) => {}
        (ParsedBody::Json { value: x, .. }, ParsedBody::Json { value: y, .. }) => {
            out.compared_as = ComparedAs::Json;
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
        for (a, ct) in
            [(&b"{\"a\": [1, 2]}"[..], Some("application/json")), (b"text", None), (b"{x", Some("application/json"))]
        {
            let fast = compare_bodies((a, ct), (a, ct), &r, None);
            let full = compare_parsed(&parse_body(a, ct), &parse_body(a, ct), &r, None, false);
            assert_eq!(fast, full);
        }
    }

    #[test]
    fn nesting_depth_skips_strings() {
        assert_eq!(nesting_depth(br#"{"a": ["[[[", {"b": "\"]]"}]}"#), 3);
        assert_eq!(nesting_depth(b"1"), 0);
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
