//! Example pairs for the report: a few pairs per endpoint that show *what* differed, with both
//! responses as captured. `pairs.parquet` and `diffs.parquet` keep no bodies, so candidates are
//! kept while pass 1 streams the input, and chosen once the noise verdicts say which
//! differences are real. Memory stays bounded: at most [`PER_KEY`] candidates per (route, field)
//! or (route, outcome), bodies cut at [`BODY_CAP`], and [`BUDGET`] bytes in all.
//!
//! The chosen examples are written to `examples.json` ([`EXAMPLES_FILE`]) beside the verdict,
//! so `shadowdiff report DIR` can show them again without the input files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use shadowdiff_format::PairRecord;
pub use shadowdiff_format::examples::{
    BODY_CAP, EXAMPLES_FILE, Example, ExampleDifference, ExampleSide, ExamplesFile, SCHEMA_VERSION,
};
use shadowdiff_format::vocab::{DiffStatus, Outcome as PairOutcome, Severity};

use crate::error::{Error, Result};
use crate::evaluate::{Evaluated, GrpcStatus, Outcome};

/// Candidates kept per (route, field) and per (route, outcome).
pub const PER_KEY: usize = 2;
/// Examples chosen per route.
pub const PER_ROUTE: usize = 3;
/// Routes that get examples, those with the most trouble first.
pub const MAX_ROUTES: usize = 40;
/// Bytes of bodies kept as candidates in all; past it, no new candidates are taken.
pub const BUDGET: usize = 64 * 1024 * 1024;
/// Differences kept per example.
pub const MAX_DIFFS: usize = 200;

/// A kept candidate and the keys it stands for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Candidate {
    example: Example,
    /// Explained differences, which are never real whatever their field's verdict.
    explained: Vec<bool>,
    /// Why a side's body could not be decoded (`canary body undecodable: …`), said in `why`.
    undecodable: Option<String>,
    /// Every key the pair stands for (its differing fields, or its kind of failure), wanted or
    /// not when it was kept: merging shards offers it again for each.
    keys: Vec<String>,
    /// Body bytes it takes from the budget.
    size: usize,
}

/// Keeps candidate examples while pass 1 streams the input.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Collector {
    used: usize,
    kept: BTreeMap<u64, Candidate>,
    /// Candidates kept per route and key (a field, or a kind of failure).
    per_key: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers a pair; it is kept when one of its keys still wants candidates and the budget allows.
    pub fn offer(&mut self, e: &Evaluated, record: &PairRecord) {
        if self.used >= BUDGET {
            return;
        }
        // Most pairs are not wanted: decide that without allocating.
        let failure_key = match e.outcome {
            Outcome::Compared if !e.raw.is_empty() => None,
            Outcome::StatusMismatch => match (&e.baseline.grpc_status, &e.canary.grpc_status) {
                (Some(b), Some(c)) if b.code() != c.code() => Some(format!("#grpc {}→{}", b.code(), c.code())),
                _ => Some(format!(
                    "#status {:?}→{:?}",
                    e.baseline.status.map(|s| s / 100),
                    e.canary.status.map(|s| s / 100)
                )),
            },
            Outcome::CanaryError => {
                Some(format!("#canary_error {}", e.canary.transport_error.as_deref().unwrap_or_default()))
            }
            _ => return,
        };
        let seen = self.per_key.get(&e.route);
        let wants = |key: &str| seen.and_then(|m| m.get(key)).copied().unwrap_or(0) < PER_KEY;
        let keys: Vec<String> = match failure_key {
            Some(k) => {
                if !wants(&k) {
                    return;
                }
                vec![k]
            }
            None => {
                if !e.raw.iter().any(|f| wants(&f.diff.field)) {
                    return;
                }
                let mut fields: Vec<&str> = e.raw.iter().map(|f| f.diff.field.as_str()).collect();
                fields.sort_unstable();
                fields.dedup();
                fields.into_iter().map(str::to_owned).collect()
            }
        };
        self.take(&e.route, &keys);
        let (mut baseline, b_len) = ExampleSide::of(&record.baseline);
        let (mut canary, c_len) = ExampleSide::of(&record.canary);
        baseline.events = stream_events(&record.baseline);
        canary.events = stream_events(&record.canary);
        baseline.grpc_status = e.baseline.grpc_status.as_ref().map(GrpcStatus::name);
        canary.grpc_status = e.canary.grpc_status.as_ref().map(GrpcStatus::name);
        if let Some(m) = &e.messages {
            baseline.messages = Some(m.baseline.clone());
            canary.messages = Some(m.canary.clone());
            baseline.decoded_as = Some(m.decoded_as.clone());
            canary.decoded_as = Some(m.decoded_as.clone());
        }
        self.used += b_len + c_len;
        let differences: Vec<ExampleDifference> = e
            .raw
            .iter()
            .take(MAX_DIFFS)
            .map(|f| ExampleDifference {
                location: f.location.as_str().to_owned(),
                path: f.diff.path.clone(),
                field: f.diff.field.clone(),
                kind: f.diff.kind.as_str().to_owned(),
                severity: f.diff.severity,
                status: DiffStatus::Real,
            })
            .collect();
        let explained = e.raw.iter().take(MAX_DIFFS).map(|f| f.diff.explained.is_some()).collect();
        let outcome = match e.outcome {
            Outcome::Compared => PairOutcome::Different,
            Outcome::CanarySkipped => PairOutcome::CanarySkipped,
            Outcome::StatusMismatch => PairOutcome::StatusMismatch,
            Outcome::CanaryError => PairOutcome::CanaryError,
            Outcome::BaselineError => PairOutcome::BaselineError,
            Outcome::BothError => PairOutcome::BothError,
        };
        let undecodable = [("baseline", &e.baseline.undecodable), ("canary", &e.canary.undecodable)]
            .into_iter()
            .filter_map(|(side, u)| u.as_ref().map(|u| format!("{side} body {u}")))
            .reduce(|a, b| format!("{a}; {b}"));
        self.kept.insert(
            e.index,
            Candidate {
                explained,
                undecodable,
                keys,
                size: b_len + c_len,
                example: Example {
                    route: e.route.clone(),
                    pair_id: e.pair_id.clone(),
                    pair_index: e.index,
                    method: e.method.clone(),
                    path: e.path.clone(),
                    query: record.query.clone(),
                    outcome,
                    why: String::new(),
                    baseline,
                    canary,
                    differences,
                },
            },
        );
    }

    /// Counts a kept candidate of `route` against each of its `keys` that still wants one.
    fn take(&mut self, route: &str, keys: &[String]) {
        let counts = self.per_key.entry(route.to_owned()).or_default();
        for k in keys {
            let n = counts.entry(k.clone()).or_default();
            if *n < PER_KEY {
                *n += 1;
            }
        }
    }

    /// The candidates of shards' collectors, in shard order, as one collector streaming the
    /// whole input would have kept them: each shard's positions shifted by its `offset`, routes
    /// renamed by `rename`, and every candidate offered again in input order. A shard keeps the
    /// first candidates of each key among its pairs, so the first ones overall are among them.
    pub fn merge(parts: Vec<(Collector, u64)>, rename: &dyn Fn(&str) -> Option<String>) -> Collector {
        let mut all = Collector::new();
        for (part, offset) in parts {
            all.absorb(part, offset, rename);
        }
        all
    }

    /// One step of [`Collector::merge`]: the next shard's candidates, after every earlier one's
    /// (so a merge can hold one shard's candidates at a time).
    pub fn absorb(&mut self, part: Collector, offset: u64, rename: &dyn Fn(&str) -> Option<String>) {
        for (index, mut c) in part.kept {
            if self.used >= BUDGET {
                return;
            }
            if let Some(route) = rename(&c.example.route) {
                c.example.route = route;
            }
            let seen = self.per_key.get(&c.example.route);
            let wanted = c.keys.iter().any(|k| seen.and_then(|m| m.get(k)).copied().unwrap_or(0) < PER_KEY);
            if !wanted {
                continue;
            }
            self.take(&c.example.route.clone(), &c.keys);
            self.used += c.size;
            c.example.pair_index = index + offset;
            self.kept.insert(index + offset, c);
        }
    }

    /// Chooses up to [`PER_ROUTE`] examples for each of the [`MAX_ROUTES`] most troubled routes,
    /// given each (route, field)'s final status (`real`, `noise` …). Status mismatches and canary
    /// errors come first, then pairs covering the most real fields not yet shown, breaking first.
    pub fn choose(
        self,
        status: &BTreeMap<(String, String), DiffStatus>,
        trouble: impl Fn(&str) -> u64,
    ) -> Vec<Example> {
        let mut by_route: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
        for (_, mut c) in self.kept {
            for (d, explained) in c.example.differences.iter_mut().zip(&c.explained) {
                d.status = if *explained {
                    DiffStatus::Explained
                } else {
                    status.get(&(c.example.route.clone(), d.field.clone())).copied().unwrap_or(DiffStatus::Real)
                };
            }
            by_route.entry(c.example.route.clone()).or_default().push(c);
        }
        let mut ranked: Vec<(String, Vec<Candidate>)> = by_route.into_iter().collect();
        ranked.sort_by_key(|(route, _)| std::cmp::Reverse(trouble(route)));
        let mut out = Vec::new();
        for (_, candidates) in ranked.into_iter().take(MAX_ROUTES) {
            out.extend(choose_for_route(candidates));
        }
        out
    }
}

fn choose_for_route(candidates: Vec<Candidate>) -> Vec<Example> {
    // Where the canary did worse (a transport error, or a 5xx where the baseline did not fail)
    // comes first, then real differences, then the other status mismatches if room is left.
    let grpc_error = |s: &Option<String>| s.as_deref().is_some_and(GrpcStatus::is_error_name);
    let canary_worse = |e: &Example| {
        e.outcome == PairOutcome::CanaryError
            || (e.canary.status.is_some_and(|s| s >= 500) && e.baseline.status.is_some_and(|s| s < 500))
            || (grpc_error(&e.canary.grpc_status) && !grpc_error(&e.baseline.grpc_status))
    };
    let (mut worse, mut other, mut differing) = (Vec::new(), Vec::new(), Vec::new());
    for c in candidates {
        if c.example.outcome == PairOutcome::Different {
            if c.example.differences.iter().any(|d| d.status == DiffStatus::Real) {
                differing.push(c);
            }
        } else if canary_worse(&c.example) {
            worse.push(c);
        } else {
            other.push(c);
        }
    }
    let mut chosen: Vec<Example> = Vec::new();
    let mut seen_kinds = BTreeSet::new();
    let mut take_failures = |list: Vec<Candidate>, chosen: &mut Vec<Example>, limit: usize| {
        for mut c in list {
            if chosen.len() >= limit {
                break;
            }
            // One of each kind: the same status change or error twice shows nothing new.
            let kind = (
                c.example.baseline.status,
                c.example.canary.status,
                c.example.canary.error.clone(),
                c.example.baseline.grpc_status.clone(),
                c.example.canary.grpc_status.clone(),
            );
            if seen_kinds.insert(kind) {
                c.example.why = failure_why(&c.example);
                chosen.push(c.example);
            }
        }
    };
    // Leave room for a real difference when there is one.
    let limit = if differing.is_empty() { PER_ROUTE } else { PER_ROUTE - 1 };
    take_failures(worse, &mut chosen, limit);
    let mut covered: BTreeSet<String> = BTreeSet::new();
    while chosen.len() < PER_ROUTE && !differing.is_empty() {
        let score = |c: &Candidate| {
            let real: BTreeSet<&String> =
                c.example.differences.iter().filter(|d| d.status == DiffStatus::Real).map(|d| &d.field).collect();
            let new = real.iter().filter(|f| !covered.contains(**f)).count();
            let breaking =
                c.example.differences.iter().any(|d| d.status == DiffStatus::Real && d.severity == Severity::Breaking);
            (new, breaking, std::cmp::Reverse(c.example.pair_index))
        };
        let Some(best) = (0..differing.len()).max_by_key(|&i| score(&differing[i])) else { break };
        // A pair that shows no field not shown yet is not worth the space.
        if score(&differing[best]).0 == 0 {
            break;
        }
        let mut c = differing.swap_remove(best);
        let real: Vec<String> = c
            .example
            .differences
            .iter()
            .filter(|d| d.status == DiffStatus::Real)
            .map(|d| d.field.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        covered.extend(real.iter().cloned());
        c.example.why = difference_why(&real);
        if let Some(u) = &c.undecodable {
            c.example.why = format!("{} ({u})", c.example.why);
        }
        chosen.push(c.example);
    }
    if chosen.is_empty() {
        take_failures(other, &mut chosen, PER_ROUTE);
    }
    chosen
}

/// A streamed body as the list of its complete records (decoded, cut at [`BODY_CAP`]).
fn stream_events(side: &shadowdiff_format::SideRecord) -> Option<serde_json::Value> {
    let kind = crate::stream::stream(side.header("content-type").map(|h| h.value_lossy()).as_deref())?;
    let decoded = shadowdiff_format::encoding::decode_side(side, BODY_CAP as u64).ok()?;
    let cut = decoded.truncated || side.body_truncated;
    Some(crate::stream::parse(kind, &decoded.bytes, cut).to_value())
}

fn failure_why(e: &Example) -> String {
    if let (None, Some(b), Some(c)) = (&e.canary.error, &e.baseline.grpc_status, &e.canary.grpc_status)
        && b != c
    {
        return format!("grpc {b} → {c}");
    }
    match (&e.canary.error, e.baseline.status, e.canary.status) {
        (Some(kind), Some(b), _) => format!("the canary failed ({kind}) where the baseline answered {b}"),
        (Some(kind), None, _) => format!("the canary failed ({kind})"),
        (None, Some(b), Some(c)) => format!("status {b} → {c}"),
        _ => "the sides answered differently".to_owned(),
    }
}

fn difference_why(fields: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut names: Vec<String> = fields.iter().take(SHOWN).cloned().collect();
    if fields.len() > SHOWN {
        names.push(format!("{} more", fields.len() - SHOWN));
    }
    format!("real {} at {}", if fields.len() == 1 { "difference" } else { "differences" }, names.join(", "))
}

/// Writes `examples.json` into `dir`.
pub fn write(dir: &Path, examples: &[Example]) -> Result<()> {
    let path = dir.join(EXAMPLES_FILE);
    let file = ExamplesFile { schema_version: SCHEMA_VERSION, examples: examples.to_vec() };
    let json =
        serde_json::to_string(&file).map_err(|e| Error::Internal { message: format!("serializing examples: {e}") })?;
    shadowdiff_format::atomic::write_atomic(&path, (json + "\n").as_bytes())
        .map_err(|source| Error::Output { path, source: source.into() })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chrono::Utc;
    use shadowdiff_format::{Header, PairRecord, SideRecord};

    use super::*;
    use crate::evaluate::evaluate;
    use crate::rules::Rules;

    fn side(status: u16, body: &[u8]) -> SideRecord {
        SideRecord {
            status: Some(status),
            headers: vec![Header::new("content-type", "application/json")],
            body: Some(Bytes::copy_from_slice(body)),
            latency_us: Some(1500),
            ..SideRecord::absent()
        }
    }

    fn pair(path: &str, baseline: SideRecord, canary: SideRecord) -> PairRecord {
        let mut r = PairRecord::new("test", Utc::now(), "GET", path, Some("x=1".into()));
        r.baseline = baseline;
        r.canary = canary;
        r
    }

    fn offer_all(records: &[PairRecord], route: &str) -> Collector {
        let rules = Rules::default();
        let mut c = Collector::new();
        for (i, r) in records.iter().enumerate() {
            c.offer(&evaluate(i as u64, r, route.to_owned(), &rules), r);
        }
        c
    }

    fn statuses(pairs: &[(&str, &str, &str)]) -> BTreeMap<(String, String), DiffStatus> {
        pairs.iter().map(|(r, f, s)| ((r.to_string(), f.to_string()), s.parse().expect("a status"))).collect()
    }

    #[test]
    fn keeps_at_most_per_key_candidates_per_route_and_field() {
        let records: Vec<PairRecord> =
            (0..10).map(|i| pair(&format!("/u/{i}"), side(200, br#"{"a":1}"#), side(200, br#"{"a":2}"#))).collect();
        let c = offer_all(&records, "/u/{id}");
        assert_eq!(c.kept.len(), PER_KEY);
        assert_eq!(c.kept.keys().copied().collect::<Vec<_>>(), vec![0, 1], "the first pairs are kept");
    }

    #[test]
    fn canary_failures_come_first_then_real_differences_and_noise_only_pairs_are_not_shown() {
        let records = vec![
            // Differs only in a noise field.
            pair("/u/1", side(200, br#"{"a":1,"ts":1}"#), side(200, br#"{"a":1,"ts":2}"#)),
            // A real difference.
            pair("/u/2", side(200, br#"{"a":1,"ts":1}"#), side(200, br#"{"a":5,"ts":2}"#)),
            // The baseline failed, the canary did not: shown only when nothing else is.
            pair("/u/3", side(500, br#"{"error":1}"#), side(200, br#"{"a":1}"#)),
            // The canary failed.
            pair("/u/4", side(200, br#"{"a":1}"#), side(503, br#"{"error":"busy"}"#)),
        ];
        let c = offer_all(&records, "/u/{id}");
        let chosen = c.choose(&statuses(&[("/u/{id}", "/ts", "noise"), ("/u/{id}", "/a", "real")]), |_| 0);
        let ids: Vec<u64> = chosen.iter().map(|e| e.pair_index).collect();
        assert_eq!(ids, vec![3, 1], "{chosen:#?}");
        assert_eq!(chosen[0].why, "status 200 → 503");
        assert_eq!(chosen[1].why, "real difference at /a");
        let statuses: Vec<(&str, &str)> =
            chosen[1].differences.iter().map(|d| (d.path.as_str(), d.status.as_str())).collect();
        assert_eq!(statuses, vec![("/a", "real"), ("/ts", "noise")]);
        assert_eq!(chosen[1].query.as_deref(), Some("x=1"));
        assert_eq!(chosen[1].baseline.latency_ms, Some(1.5));

        // With only the baseline's failure to show, it is shown.
        let c = offer_all(&records[2..3], "/u/{id}");
        let chosen = c.choose(&BTreeMap::new(), |_| 0);
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].why, "status 500 → 200");
    }

    #[test]
    fn later_examples_must_show_a_field_not_shown_yet() {
        let records = vec![
            pair("/u/1", side(200, br#"{"a":1,"b":1}"#), side(200, br#"{"a":2,"b":1}"#)),
            pair("/u/2", side(200, br#"{"a":1,"b":1}"#), side(200, br#"{"a":3,"b":1}"#)),
            pair("/u/3", side(200, br#"{"a":1,"b":1}"#), side(200, br#"{"a":1,"b":7}"#)),
        ];
        let c = offer_all(&records, "/u/{id}");
        let chosen = c.choose(&statuses(&[("/u/{id}", "/a", "real"), ("/u/{id}", "/b", "real")]), |_| 0);
        let ids: Vec<u64> = chosen.iter().map(|e| e.pair_index).collect();
        assert_eq!(ids, vec![0, 2], "the second /a pair shows nothing new");
    }

    #[test]
    fn bodies_keep_their_bytes_through_json_and_long_ones_are_cut() {
        let binary = vec![0xff, 0x00, 0xfe, b'{'];
        let long = format!("{{\"a\":\"{}é\"}}", "x".repeat(BODY_CAP - 7));
        let records = vec![pair("/b/1", side(200, &binary), side(200, long.as_bytes()))];
        let c = offer_all(&records, "/b/{id}");
        let chosen = c.choose(&BTreeMap::new(), |_| 0);
        assert_eq!(chosen.len(), 1);
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &chosen).unwrap();
        let back: ExamplesFile =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(EXAMPLES_FILE)).unwrap()).unwrap();
        let e = &back.examples[0];
        assert_eq!(e.baseline.body_bytes(), binary);
        assert!(e.baseline.body.is_none() && e.baseline.body_base64.is_some());
        assert!(!e.baseline.truncated);
        assert!(e.canary.truncated, "cut at BODY_CAP");
        // Cut before the two-byte character that straddles the cap, so it stays text.
        assert_eq!(e.canary.body.as_deref().map(str::len), Some(BODY_CAP - 1));
    }

    #[test]
    fn a_stream_is_shown_as_its_list_of_events() {
        let sse = |price: u32| {
            let mut s =
                side(200, format!("data: {{\"price\": 1}}\n\ndata: {{\"price\": {price}}}\n\ndata: {{\"pr").as_bytes());
            s.headers = vec![Header::new("content-type", "text/event-stream")];
            s.body_truncated = true;
            s
        };
        let records = vec![pair("/quotes", sse(2), sse(3))];
        let chosen = offer_all(&records, "/quotes").choose(&BTreeMap::new(), |_| 0);
        assert_eq!(chosen.len(), 1);
        let e = &chosen[0];
        assert_eq!(e.differences.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(), vec!["/1/data/price"]);
        assert_eq!(
            e.canary.events,
            Some(serde_json::json!([
                {"event": "message", "id": "", "data": {"price": 1}},
                {"event": "message", "id": "", "data": {"price": 3}},
            ])),
            "complete events only"
        );
        assert!(e.canary.body.as_deref().is_some_and(|b| b.starts_with("data: ")), "the body as captured stays");
        let json_side = &offer_all(&[pair("/u/1", side(200, br#"{"a":1}"#), side(200, br#"{"a":2}"#))], "/u/{id}")
            .choose(&BTreeMap::new(), |_| 0)[0]
            .baseline;
        assert_eq!(json_side.events, None);
    }

    #[test]
    fn no_candidates_are_taken_past_the_budget() {
        let big = format!("{{\"a\":\"{}\"}}", "y".repeat(BODY_CAP));
        let mut c = Collector::new();
        c.used = BUDGET;
        let r = pair("/u/1", side(200, big.as_bytes()), side(200, br#"{"a":2}"#));
        c.offer(&evaluate(0, &r, "/u/{id}".into(), &Rules::default()), &r);
        assert!(c.kept.is_empty());
    }
}
