//! Noise: telling a real difference from one the service makes against itself.
//!
//! With a **secondary** (a second instance of the baseline build), every pair gives two diffs:
//! *raw* (baseline vs canary) and *noise* (baseline vs secondary). Per field and route we count
//! in how many pairs each differs and judge the field as Twitter's Diffy does
//! (`DifferencesFilterFactory` in `JoinedDifferences.scala`): with `total` the pairs that had a
//! secondary,
//!
//! ```text
//! absolute = |raw - noise| / total        * 100   (percent of requests)
//! relative = |raw - noise| / (raw + noise) * 100  (percent of the field's differences)
//! real difference  <=>  raw > noise  &&  relative > relative_threshold  &&  absolute > absolute_threshold
//! ```
//!
//! with Diffy's defaults: relative threshold 20 (%), absolute threshold 0.03 (%). A field that is
//! not a real difference is **noise** when the secondary differed too (`noise > 0`), and
//! **below threshold** when it did not (too rare to call: reported, never dropped).
//!
//! Without a secondary there is nothing to subtract, so nothing is called noise. Instead a field
//! whose differing values look unique per request — timestamps, UUIDs, long hex or opaque tokens,
//! or a field named like one (`request_id`, `nonce`, `timestamp` …) — in at least 90% of the pairs
//! where it differed is flagged **suspected noise**: shown with the reason, never silently ignored.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json::{Difference, diff_json};
use crate::route::{is_opaque_token, is_uuid};
use crate::rules::Rules;

/// Diffy's thresholds, both in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Minimum `|raw - noise| / (raw + noise)` in percent (Diffy's default: 20).
    pub relative: f64,
    /// Minimum `|raw - noise| / total` in percent (Diffy's default: 0.03).
    pub absolute: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { relative: 20.0, absolute: 0.03 }
    }
}

/// The share of a field's differences whose values look unique per request, at or above which
/// the field is suspected noise (no secondary).
pub const SUSPECT_SHARE: f64 = 0.9;

pub use shadowdiff_format::verdict::{FieldCounts, FieldReport, FieldVerdict as Verdict};

/// Counts raw and noise differences per field over the pairs of one route.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoiseCounter {
    pairs: u64,
    with_secondary: u64,
    fields: BTreeMap<String, FieldCounts>,
    unique_reasons: BTreeMap<String, BTreeSet<String>>,
    explained_reasons: BTreeMap<String, String>,
}

impl NoiseCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one pair: `raw` are the baseline-vs-canary differences, `noise` the
    /// baseline-vs-secondary ones (`None` when the pair had no secondary).
    pub fn add(&mut self, raw: &[Difference], noise: Option<&[Difference]>) {
        self.pairs += 1;
        self.with_secondary += u64::from(noise.is_some());
        let mut seen = BTreeSet::new();
        for d in raw {
            if !seen.insert(d.field.as_str()) {
                continue;
            }
            let c = self.fields.entry(d.field.clone()).or_default();
            c.raw += 1;
            c.raw_with_secondary += u64::from(noise.is_some());
            if let Some(reason) = &d.explained {
                c.explained += 1;
                self.explained_reasons.entry(d.field.clone()).or_insert_with(|| reason.clone());
            }
            if let Some(why) = unique_per_request(d) {
                c.unique_looking += 1;
                let reasons = self.unique_reasons.entry(d.field.clone()).or_default();
                if !reasons.contains(why) {
                    reasons.insert(why.to_owned());
                }
            }
        }
        let mut seen = BTreeSet::new();
        for d in noise.unwrap_or_default() {
            if seen.insert(d.field.as_str()) {
                self.fields.entry(d.field.clone()).or_default().noise += 1;
            }
        }
    }

    /// Adds the counts of pairs counted by another counter, met after this one's: counts add,
    /// reasons join, the first explanation met stays.
    pub fn absorb(&mut self, other: NoiseCounter) {
        self.pairs += other.pairs;
        self.with_secondary += other.with_secondary;
        for (field, c) in other.fields {
            let mine = self.fields.entry(field).or_default();
            mine.raw += c.raw;
            mine.raw_with_secondary += c.raw_with_secondary;
            mine.noise += c.noise;
            mine.unique_looking += c.unique_looking;
            mine.explained += c.explained;
        }
        for (field, reasons) in other.unique_reasons {
            self.unique_reasons.entry(field).or_default().extend(reasons);
        }
        for (field, reason) in other.explained_reasons {
            self.explained_reasons.entry(field).or_insert(reason);
        }
    }

    /// Diffs one triple under `rules` and adds it.
    pub fn add_values(
        &mut self,
        baseline: &Value,
        canary: &Value,
        secondary: Option<&Value>,
        rules: &Rules,
        route: Option<&str>,
    ) {
        let raw = diff_json(baseline, canary, rules, route);
        let noise = secondary.map(|s| diff_json(baseline, s, rules, route));
        self.add(&raw, noise.as_deref());
    }

    /// Pairs added.
    pub fn pairs(&self) -> u64 {
        self.pairs
    }

    /// Pairs added that had a secondary.
    pub fn pairs_with_secondary(&self) -> u64 {
        self.with_secondary
    }

    /// Every field that differed in some pair (raw or noise), with its verdict, sorted by field.
    pub fn report(&self, thresholds: Thresholds) -> Vec<FieldReport> {
        self.fields
            .iter()
            .filter(|(_, c)| c.raw > 0 || c.noise > 0)
            .map(|(field, c)| {
                let total = self.with_secondary;
                let (absolute, relative) = if total > 0 {
                    let (raw, noise) = (c.raw_with_secondary as f64, c.noise as f64);
                    let delta = (raw - noise).abs();
                    let relative = if raw + noise > 0.0 { delta / (raw + noise) * 100.0 } else { 0.0 };
                    (Some(delta / total as f64 * 100.0), Some(relative))
                } else {
                    (None, None)
                };
                let verdict = self.verdict(field, c, absolute, relative, thresholds);
                FieldReport {
                    field: field.clone(),
                    counts: *c,
                    total_with_secondary: total,
                    absolute,
                    relative,
                    verdict,
                }
            })
            .collect()
    }

    fn verdict(
        &self,
        field: &str,
        c: &FieldCounts,
        absolute: Option<f64>,
        relative: Option<f64>,
        t: Thresholds,
    ) -> Verdict {
        if c.raw > 0 && c.explained == c.raw {
            let reason = self.explained_reasons.get(field).cloned().unwrap_or_default();
            return Verdict::Explained { reason };
        }
        if let (Some(absolute), Some(relative)) = (absolute, relative) {
            // Raw differences in pairs without a secondary cannot be discounted: if there are
            // any, the field stays a difference whatever the secondary pairs say.
            let unjudged = c.raw - c.raw_with_secondary;
            if unjudged == 0 {
                return if c.raw_with_secondary > c.noise && relative > t.relative && absolute > t.absolute {
                    Verdict::Difference
                } else if c.noise > 0 {
                    Verdict::Noise
                } else {
                    Verdict::BelowThreshold
                };
            }
        }
        if c.raw > 0 && c.unique_looking as f64 >= SUSPECT_SHARE * c.raw as f64 {
            let reasons: Vec<&str> = self.unique_reasons.get(field).into_iter().flatten().map(String::as_str).collect();
            return Verdict::SuspectedNoise {
                reason: format!("values look unique per request ({})", reasons.join(", ")),
            };
        }
        if c.raw == 0 {
            // Only the secondary differed: noise by definition.
            return Verdict::Noise;
        }
        Verdict::Difference
    }
}

/// Why a difference's values look unique per request, if they do: both sides are timestamps,
/// UUIDs, tokens…, or the field is named like one and both sides are scalars.
pub fn unique_per_request(d: &Difference) -> Option<&'static str> {
    let (Some(a), Some(b)) = (&d.baseline, &d.canary) else { return None };
    if let (Some(x), Some(y)) = (unique_kind(a), unique_kind(b))
        && x == y
    {
        return Some(x);
    }
    let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_));
    if scalar(a) && scalar(b) && volatile_name(&d.field) {
        return Some("field name");
    }
    None
}

/// What kind of per-request value `v` looks like.
pub fn unique_kind(v: &Value) -> Option<&'static str> {
    match v {
        Value::String(s) => {
            let s = s.as_str();
            if is_uuid(s) {
                Some("uuid")
            } else if is_timestamp(s) {
                Some("timestamp")
            } else if s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                Some("hex token")
            } else if is_opaque_token(s) {
                Some("opaque token")
            } else {
                None
            }
        }
        Value::Number(n) => {
            let x = n.as_f64()?;
            // Unix time in s, ms, µs or ns between 2001 and 2100.
            const LO: f64 = 1.0e9;
            const HI: f64 = 4.1e9;
            [1.0, 1e3, 1e6, 1e9].iter().any(|scale| (LO * scale..HI * scale).contains(&x)).then_some("epoch timestamp")
        }
        _ => None,
    }
}

/// ISO 8601 / RFC 3339 date-times (`2024-05-01T12:00:00Z`, `2024-05-01 12:00:00.123+02:00`) and
/// HTTP dates (`Wed, 01 May 2024 12:00:00 GMT`).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let iso = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't' | b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16);
    let http = s.len() == 29 && s.ends_with(" GMT") && b[3] == b',' && s[5..7].bytes().all(|c| c.is_ascii_digit());
    iso || http
}

fn volatile_name(field: &str) -> bool {
    let last = field.rsplit('/').next().unwrap_or("").to_ascii_lowercase().replace(['-', '_'], "");
    const NAMES: &[&str] = &[
        "requestid",
        "traceid",
        "spanid",
        "correlationid",
        "nonce",
        "timestamp",
        "ts",
        "time",
        "now",
        "servertime",
        "generatedat",
        "requestedat",
        "respondedat",
        "expiresat",
        "etag",
        "signature",
        "csrftoken",
        "uuid",
        "elapsed",
        "elapsedms",
        "durationms",
        "took",
        "latency",
        "latencyms",
        "hostname",
        "host",
        "servedby",
        "instance",
    ];
    NAMES.contains(&last.as_str())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn d(field: &str, a: Value, b: Value) -> Difference {
        Difference {
            path: field.to_owned(),
            field: field.to_owned(),
            kind: crate::json::DiffKind::ValueChanged,
            baseline: Some(a),
            canary: Some(b),
            severity: crate::json::Severity::Changed,
            explained: None,
        }
    }

    /// `n` pairs; the field differs raw in `raw` of them and noise in `noise` of them.
    fn counter(n: u64, raw: u64, noise: u64) -> NoiseCounter {
        let mut c = NoiseCounter::new();
        for i in 0..n {
            let r = if i < raw { vec![d("/f", json!(1), json!(2))] } else { vec![] };
            let s = if i < noise { vec![d("/f", json!(1), json!(3))] } else { vec![] };
            c.add(&r, Some(&s));
        }
        c
    }

    fn verdict(n: u64, raw: u64, noise: u64) -> Verdict {
        counter(n, raw, noise).report(Thresholds::default()).remove(0).verdict
    }

    #[test]
    fn diffy_thresholds() {
        // Table: (total, raw, noise) -> verdict, with relative 20 %, absolute 0.03 %.
        let cases = [
            ((1000, 100, 0), Verdict::Difference),     // relative 100 %, absolute 10 %
            ((1000, 100, 100), Verdict::Noise),        // raw == noise
            ((1000, 100, 90), Verdict::Noise),         // relative 5.3 % <= 20 %
            ((1000, 100, 60), Verdict::Difference),    // relative 25 %, absolute 4 %
            ((1000, 100, 67), Verdict::Noise),         // relative 19.8 %
            ((1000, 50, 100), Verdict::Noise),         // raw < noise
            ((10_000, 3, 0), Verdict::BelowThreshold), // absolute exactly 0.03 %: not greater
            ((10_000, 4, 0), Verdict::Difference),     // absolute 0.04 %
            ((1000, 0, 5), Verdict::Noise),            // only the secondary differs
        ];
        for ((n, raw, noise), want) in cases {
            assert_eq!(verdict(n, raw, noise), want, "total {n}, raw {raw}, noise {noise}");
        }
    }

    #[test]
    fn diffy_figures() {
        let r = counter(1000, 100, 60).report(Thresholds::default()).remove(0);
        assert_eq!(r.total_with_secondary, 1000);
        assert!((r.absolute.unwrap() - 4.0).abs() < 1e-9);
        assert!((r.relative.unwrap() - 25.0).abs() < 1e-9);
        let custom = counter(1000, 100, 60).report(Thresholds { relative: 30.0, absolute: 0.03 }).remove(0);
        assert_eq!(custom.verdict, Verdict::Noise);
    }

    #[test]
    fn counts_once_per_pair() {
        let mut c = NoiseCounter::new();
        let raw = vec![d("/items/*/x", json!(1), json!(2)), d("/items/*/x", json!(3), json!(4))];
        c.add(&raw, None);
        assert_eq!(c.report(Thresholds::default())[0].counts.raw, 1);
    }

    #[test]
    fn suspected_noise_without_secondary() {
        let mut c = NoiseCounter::new();
        for i in 0..20 {
            c.add(
                &[
                    d(
                        "/generated",
                        json!(format!("2024-05-01T12:00:{i:02}Z")),
                        json!(format!("2024-05-01T12:01:{i:02}Z")),
                    ),
                    d(
                        "/id",
                        json!("123e4567-e89b-12d3-a456-426614174000"),
                        json!("00000000-e89b-12d3-a456-426614174000"),
                    ),
                    d("/request_id", json!(i), json!(i + 1000)),
                    d("/price", json!(10), json!(11)),
                    d("/epoch", json!(1_714_564_800_000u64), json!(1_714_564_800_123u64)),
                ],
                None,
            );
        }
        let got: BTreeMap<String, Verdict> =
            c.report(Thresholds::default()).into_iter().map(|r| (r.field, r.verdict)).collect();
        assert!(matches!(&got["/generated"], Verdict::SuspectedNoise { reason } if reason.contains("timestamp")));
        assert!(matches!(&got["/id"], Verdict::SuspectedNoise { reason } if reason.contains("uuid")));
        assert!(matches!(&got["/request_id"], Verdict::SuspectedNoise { reason } if reason.contains("field name")));
        assert!(matches!(&got["/epoch"], Verdict::SuspectedNoise { .. }));
        assert_eq!(got["/price"], Verdict::Difference, "ordinary values are never suspected");
    }

    #[test]
    fn suspicion_needs_most_pairs() {
        let mut c = NoiseCounter::new();
        for i in 0..10 {
            let (a, b) = if i < 8 {
                (json!("2024-05-01T12:00:00Z"), json!("2024-05-01T12:00:01Z"))
            } else {
                (json!("a"), json!("b"))
            };
            c.add(&[d("/t", a, b)], None);
        }
        assert_eq!(c.report(Thresholds::default())[0].verdict, Verdict::Difference, "80% < 90%");
    }

    #[test]
    fn explained_fields() {
        let mut c = NoiseCounter::new();
        let mut x = d("/price", json!(1), json!(2));
        x.explained = Some("rounding".into());
        c.add(&[x], None);
        assert_eq!(c.report(Thresholds::default())[0].verdict, Verdict::Explained { reason: "rounding".into() });
    }

    #[test]
    fn add_values_diffs_triples() {
        let mut c = NoiseCounter::new();
        for i in 0..100 {
            let base = json!({"ts": i, "v": 1, "flaky": i % 2});
            let canary = json!({"ts": i + 1, "v": 2, "flaky": (i + 1) % 2});
            let secondary = json!({"ts": i + 2, "v": 1, "flaky": (i + 1) % 2});
            c.add_values(&base, &canary, Some(&secondary), &Rules::default(), None);
        }
        let got: BTreeMap<String, Verdict> =
            c.report(Thresholds::default()).into_iter().map(|r| (r.field, r.verdict)).collect();
        assert_eq!(got["/ts"], Verdict::Noise);
        assert_eq!(got["/flaky"], Verdict::Noise);
        assert_eq!(got["/v"], Verdict::Difference);
    }

    #[test]
    fn value_shapes() {
        assert_eq!(unique_kind(&json!("Wed, 01 May 2024 12:00:00 GMT")), Some("timestamp"));
        assert_eq!(unique_kind(&json!("2024-05-01 12:00:00.123+02:00")), Some("timestamp"));
        assert_eq!(unique_kind(&json!("9f1c2ab3d4e5f607")), Some("hex token"));
        assert_eq!(unique_kind(&json!("hello world")), None);
        assert_eq!(unique_kind(&json!(42)), None);
        assert_eq!(unique_kind(&json!(1_714_564_800)), Some("epoch timestamp"));
    }
}
