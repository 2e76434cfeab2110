//! The judge's calibration harness. It simulates pair sets under named noise models with effects
//! of known size ([`model`]), counts each set the way analyze's pipeline counts pair files (the
//! same [`RouteStats::count`]), runs the real judge under a policy, and tallies how often each
//! check and the verdict come out pass, warn, fail or inconclusive ([`Tally`]).
//!
//! Counting simulated pairs directly, instead of writing and re-reading Parquet files, makes a
//! judged set cost milliseconds, so a table of thousands of sets takes minutes; the test
//! `simulated_sets_judge_alike_through_pair_files` writes sets as real pair files, runs the whole
//! pipeline on them and checks that both ways give the same verdict.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod model;

use std::collections::BTreeMap;

use shadowdiff_analyze::Policy;
use shadowdiff_analyze::judge::judge;
use shadowdiff_analyze::pipeline::{Analysis, PairFacts, RouteStats};
use shadowdiff_format::verdict::{EndpointRow, InputSummary, OVERALL, Overflow, Status, Verdict};
use shadowdiff_format::vocab::CheckId;

use crate::model::{SimPair, route_name};

/// Latency pairs kept per scope: all of them at these sizes.
const LATENCY_CAP: usize = 2_000_000;

/// What analyze's pipeline would hand the judge for `pairs`.
pub fn analysis(pairs: &[SimPair], seed: u64) -> Analysis {
    let mut overall = RouteStats::empty(LATENCY_CAP, seed);
    let mut routes: BTreeMap<String, RouteStats> = BTreeMap::new();
    let mut overall_row = EndpointRow { route: OVERALL.to_owned(), ..EndpointRow::default() };
    let mut rows: BTreeMap<String, EndpointRow> = BTreeMap::new();
    for p in pairs {
        let route = route_name(p.route);
        let (bs, cs) = (SimPair::status(p.baseline_error), SimPair::status(p.canary_error));
        let transport = bs.is_none() || cs.is_none();
        let facts = PairFacts {
            status_mismatch: (!transport && bs != cs).then_some((bs, cs)),
            grpc_status_mismatch: None,
            baseline_error: p.baseline_error,
            canary_error: p.canary_error,
            latency_ms: (!transport).then_some((p.baseline_ms, p.canary_ms)),
            secondary_latency_ms: None,
            // Spread over the run as a service at 100 requests/s would: tail pairs in flight
            // together are judged as one event.
            captured_at_us: Some((p.at * pairs.len() as f64 * 10_000.0) as i64),
        };
        overall.count(&facts);
        let stats = routes.entry(route.clone()).or_insert_with(|| RouteStats::empty(LATENCY_CAP, seed));
        stats.count(&facts);
        if p.field_changed {
            *overall.real_fields.entry("/price".into()).or_default() += 1;
            *stats.real_fields.entry("/price".into()).or_default() += 1;
        }
        let row = rows.entry(route.clone()).or_insert_with(|| EndpointRow { route, ..EndpointRow::default() });
        for r in [&mut overall_row, row] {
            r.pairs += 1;
            r.compared += u64::from(!transport && bs == cs);
            r.status_mismatches += u64::from(!transport && bs != cs);
            r.baseline_errors += u64::from(p.baseline_error.is_some());
            r.canary_errors += u64::from(p.canary_error.is_some());
            r.different += u64::from(p.field_changed);
        }
    }
    Analysis {
        inputs: InputSummary {
            pairs_in_files: pairs.len() as u64,
            pairs_analyzed: pairs.len() as u64,
            seed,
            ..InputSummary::default()
        },
        latency_reference: shadowdiff_format::vocab::LatencyReference::Baseline,
        overall,
        routes,
        fields: Vec::new(),
        numeric_drift: Vec::new(),
        route_overflow: Overflow::default(),
        examples: Vec::new(),
        overall_row,
        endpoint_rows: rows.into_values().collect(),
        pairs_file: Default::default(),
        diffs_file: Default::default(),
        examples_file: Default::default(),
    }
}

/// Judges `pairs` under `policy`.
pub fn judge_pairs(pairs: &[SimPair], policy: &Policy, seed: u64) -> Verdict {
    judge(&analysis(pairs, seed), policy)
}

/// How often each outcome came out: the verdict's and every check's.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub sets: u64,
    /// pass, warn, fail, inconclusive.
    pub verdict: [u64; 4],
    pub checks: BTreeMap<CheckId, [u64; 4]>,
}

fn slot(s: Status) -> Option<usize> {
    match s {
        Status::Pass => Some(0),
        Status::Warn => Some(1),
        Status::Fail => Some(2),
        Status::Inconclusive => Some(3),
        _ => None,
    }
}

impl Tally {
    pub fn add(&mut self, v: &Verdict) {
        self.sets += 1;
        if let Some(i) = slot(v.verdict) {
            self.verdict[i] += 1;
        }
        for c in &v.checks {
            if let Some(i) = slot(c.status) {
                self.checks.entry(c.id).or_default()[i] += 1;
            }
        }
    }

    pub fn merge(mut self, other: Tally) -> Tally {
        self.sets += other.sets;
        for i in 0..4 {
            self.verdict[i] += other.verdict[i];
        }
        for (id, counts) in other.checks {
            let mine = self.checks.entry(id).or_default();
            for i in 0..4 {
                mine[i] += counts[i];
            }
        }
        self
    }

    /// Shares of pass, warn, fail and inconclusive verdicts.
    pub fn shares(&self) -> [f64; 4] {
        let n = self.sets.max(1) as f64;
        self.verdict.map(|c| c as f64 / n)
    }

    /// The checks that warned or failed, most often first: `latency_p99 12%w 1%f`.
    pub fn alarms(&self) -> String {
        let n = self.sets.max(1) as f64;
        let mut list: Vec<(&CheckId, &[u64; 4])> = self.checks.iter().filter(|(_, c)| c[1] + c[2] + c[3] > 0).collect();
        list.sort_by_key(|(_, c)| std::cmp::Reverse(c[1] + c[2] + c[3]));
        let pct = |k: u64| format!("{:.0}%", 100.0 * k as f64 / n);
        list.iter()
            .map(|(id, c)| {
                let mut parts = Vec::new();
                for (k, tag) in [(c[1], "w"), (c[2], "f"), (c[3], "i")] {
                    if k > 0 {
                        parts.push(format!("{}{tag}", pct(k)));
                    }
                }
                format!("{id} {}", parts.join(" "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
