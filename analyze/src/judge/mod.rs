//! The judge: from an [`Analysis`] and a [`Policy`] to a [`Verdict`]. Pure: it reads nothing and
//! writes nothing; the endpoint table it reports was aggregated by the pipeline.
//!
//! Decisions rest on evidence, not point estimates. For the whole run, an estimated figure
//! fails when its confidence interval lies wholly beyond the fail (`warn`) threshold, passes
//! when it lies wholly within the pass threshold, and warns in between. Each endpoint is judged
//! too, by the one skeleton in [`skeleton`] (the Holm family, the widened intervals, the order
//! and the reason are defined there once); the six checks in [`checks`] supply only their
//! estimators and sentences. Figures with fewer samples than `min_samples` are inconclusive,
//! not passed.

mod checks;
mod goals;
mod skeleton;

use rayon::prelude::*;
use shadowdiff_format::verdict::{EndpointRow, LatencySummary, OVERALL, Outputs, SCHEMA_VERSION, Status, Verdict};

use self::checks::{Breaking, CriticalErrors, DiffRate, ErrorRate, LatencyP99, LatencyShape};
use self::skeleton::{Ctx, Scope, run};
use crate::pipeline::{Analysis, RouteStats};
use crate::policy::{CheckId, Policy};
use crate::stats::{
    Bootstrap, HodgesLehmann, KsResult, hodges_lehmann, ks_two_sample, quantile_deltas, widened, wilcoxon_signed_rank,
};

const QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

/// Judges `analysis` under `policy`.
pub fn judge(a: &Analysis, p: &Policy) -> Verdict {
    let recorded = a.inputs.recorded_baseline();
    let not_comparable = (recorded && !p.judge_recorded_latency).then(|| {
        "the baseline side was recorded in another run; latency is not comparable (set judge_recorded_latency = true to judge it)"
            .to_owned()
    });
    let latency_check = LatencyP99 { not_comparable: not_comparable.clone(), floor_ms: p.latency_floor_ms };

    // Latency statistics of the whole run and of every endpoint (those latency_p99 does not judge
    // are still shown in the report), at the family's confidence, in parallel: the costly part.
    let empty = EndpointRow::default();
    let row = |route: &str| a.endpoint_rows.iter().find(|r| r.route == route).unwrap_or(&empty);
    let bare = Ctx {
        policy: p,
        overall: Scope { route: OVERALL, stats: &a.overall, row: &a.overall_row, latency: None },
        routes: a.routes.iter().map(|(r, s)| Scope { route: r, stats: s, row: row(r), latency: None }).collect(),
    };
    let family = bare.family(&latency_check);
    let endpoint_conf = bare.endpoint_confidence(family.len());
    let mut scopes: Vec<(&str, &RouteStats, f64)> = vec![(OVERALL, &a.overall, p.confidence)];
    scopes.extend(bare.routes.iter().map(|s| (s.route, s.stats, endpoint_conf)));
    let latency: Vec<LatencySummary> = scopes.par_iter().map(|(r, s, conf)| latency_summary(r, s, *conf, p)).collect();
    // `latency` is in `scopes`' order: the whole run first, then each route.
    let ctx = Ctx {
        policy: p,
        overall: Scope { latency: latency.first(), ..bare.overall },
        routes: bare.routes.iter().zip(latency.iter().skip(1)).map(|(s, l)| Scope { latency: Some(l), ..*s }).collect(),
    };

    let critical = CriticalErrors { alpha: p.alpha };
    let critical_check = run(&critical, &ctx);
    let holm_factors: Vec<(String, f64)> = critical_check
        .endpoints
        .iter()
        .filter_map(|e| Some((e.route.clone(), e.p_adjusted? / e.p_value?.max(f64::MIN_POSITIVE))))
        .collect();
    let critical_errors = critical.list(ctx.overall, &ctx.routes, &holm_factors);
    let checks = vec![
        run(&latency_check, &ctx),
        run(&LatencyShape { alpha: p.alpha, not_comparable, sequential: p.sequential }, &ctx),
        run(&ErrorRate { alpha: p.alpha, sequential: p.sequential }, &ctx),
        critical_check,
        run(&DiffRate { sequential: p.sequential }, &ctx),
        run(&Breaking, &ctx),
        goals::goals(&ctx),
    ];
    debug_assert!(checks.iter().map(|c| c.id).eq(CheckId::ALL.iter().copied()));

    // Report-only checks are judged and shown but do not count.
    let verdict = overall_status(checks.iter().filter(|c| !c.report_only).map(|c| c.status));
    let reason = match verdict {
        Status::Fail | Status::Warn | Status::Inconclusive => checks
            .iter()
            .filter(|c| c.status == verdict && !c.report_only)
            .map(|c| format!("{}: {}", c.id, c.reason))
            .collect::<Vec<_>>()
            .join(" | "),
        _ => format!("every check passed on {} pairs", a.inputs.pairs_analyzed),
    };
    Verdict {
        schema_version: SCHEMA_VERSION,
        tool: format!("shadowdiff {}", env!("CARGO_PKG_VERSION")),
        verdict,
        exit_code: verdict.exit_code(p.fail_on),
        fail_on: p.fail_on,
        sequential: p.sequential,
        latency_reference: a.latency_reference,
        reason,
        inputs: a.inputs.clone(),
        overall: a.overall_row.clone(),
        endpoints: a.endpoint_rows.clone(),
        checks,
        latency,
        critical_errors,
        windows: Vec::new(),
        status_mismatches: std::iter::once((OVERALL.to_owned(), a.overall.status_mismatch.clone()))
            .chain(a.routes.iter().map(|(r, s)| (r.clone(), s.status_mismatch.clone())))
            .filter(|(_, m)| !m.is_empty())
            .collect(),
        fields: a.fields.clone(),
        numeric_drift: a.numeric_drift.clone(),
        route_overflow: a.route_overflow.clone(),
        outputs: Outputs {
            pairs: a.pairs_file.clone(),
            diffs: a.diffs_file.clone(),
            examples: a.examples_file.clone(),
            ..Outputs::default()
        },
    }
}

/// The run's verdict from its checks': any failure fails, then any inconclusive check makes the
/// run inconclusive, then the worst of pass and warn. Disabled and not comparable checks do not
/// count.
fn overall_status(statuses: impl Iterator<Item = Status>) -> Status {
    statuses.filter(|s| matches!(s, Status::Pass | Status::Warn | Status::Fail | Status::Inconclusive)).fold(
        Status::Pass,
        |acc, s| match (acc, s) {
            (Status::Fail, _) | (_, Status::Fail) => Status::Fail,
            (Status::Inconclusive, _) | (_, Status::Inconclusive) => Status::Inconclusive,
            (x, y) => x.max(y),
        },
    )
}

/// Latency statistics of one scope at `confidence`.
fn latency_summary(route: &str, s: &RouteStats, confidence: f64, p: &Policy) -> LatencySummary {
    let items = s.latency.items();
    let enough = items.len() >= 2;
    let tail = tail_pairs(items, s.latency.times());
    let seed = p.seed ^ xxhash_rust::xxh3::xxh3_64(route.as_bytes());
    let bootstrap = Bootstrap { resamples: p.bootstrap_resamples, confidence, seed, max_resample: 20_000 };
    // One statistic after another, each column of the sample made when needed and dropped after:
    // scopes are judged in parallel and the largest holds up to 2,000,000 pairs, so holding
    // every column at once cost ~70 bytes a pair more at the peak.
    let (quantiles, ks, reference_median_ms) = {
        let b: Vec<f64> = items.iter().map(|x| x.0).collect();
        let c: Vec<f64> = items.iter().map(|x| x.1).collect();
        let quantiles = if enough { quantile_deltas(&b, &c, &QUANTILES, bootstrap) } else { Vec::new() };
        let ks = enough.then(|| {
            // Two-sided on the distributions as they are; one-sided (`slower`) against the
            // reference slowed by the latency check's pass threshold and at least by the latency
            // floor, so a shift the policy calls practically nothing (two instances of one build
            // 3 % apart, or 50 µs apart at 0.1 ms) is not a finding.
            let margin = 1.0 + p.checks_for(route).latency_p99.pass.max(0.0);
            let slowed: Vec<f64> = b.iter().map(|x| (x * margin).max(x + p.latency_floor_ms)).collect();
            let tolerant = ks_two_sample(&slowed, &c);
            KsResult { slower: tolerant.slower, slower_p_value: tolerant.slower_p_value, ..ks_two_sample(&b, &c) }
        });
        (quantiles, ks, median(b))
    };
    let (wilcoxon, shift) = {
        let d: Vec<f64> = items.iter().map(|x| x.1 - x.0).collect();
        (enough.then(|| wilcoxon_signed_rank(&d)), if enough { hodges_lehmann(&d, confidence) } else { None })
    };
    // ln(canary / baseline) of the pairs where both took some time.
    let log_ratio = {
        let log_ratios: Vec<f64> = items.iter().filter(|x| x.0 > 0.0 && x.1 > 0.0).map(|x| (x.1 / x.0).ln()).collect();
        (log_ratios.len() >= 2).then(|| hodges_lehmann(&log_ratios, confidence).map(|h| anytime(h, p))).flatten()
    };
    LatencySummary {
        route: route.to_owned(),
        n: items.len() as u64,
        seen: s.latency.seen(),
        quantiles,
        wilcoxon,
        hodges_lehmann: shift,
        log_ratio,
        tail_log_ratio: tail
            .as_ref()
            .and_then(|t| hodges_lehmann(&events_log_ratios(t), confidence))
            .map(|h| anytime(h, p)),
        reference_median_ms,
        reference_tail_median_ms: tail.and_then(|t| median(t.iter().map(|x| x.0.0).collect())),
        ks,
    }
}

/// Samples at which a confidence sequence is tightest: a shadow period's typical size.
pub const SEQUENTIAL_T_STAR: f64 = 10_000.0;

/// `h` as the policy asks: its fixed-sample interval, or, with `sequential = true`, widened into
/// an asymptotic confidence sequence that stays valid over any number of looks.
fn anytime(mut h: HodgesLehmann, p: &Policy) -> HodgesLehmann {
    if p.sequential {
        (h.low, h.high) = widened(h.estimate, (h.low, h.high), h.n as u64, h.confidence, SEQUENTIAL_T_STAR);
    }
    h
}

/// Pairs in the tail: the slowest 2 % by the geometric mean of both sides, at least this many.
pub const TAIL_MIN_PAIRS: usize = 20;

/// The median of `values` (by selection), `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let (mid, odd) = (values.len() / 2, values.len() % 2 == 1);
    let (below, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    Some(if odd { m } else { (m + below.iter().copied().fold(f64::MIN, f64::max)) / 2.0 })
}

/// A latency pair (reference, canary) in milliseconds and when it was captured (µs).
type TailPair = ((f64, f64), Option<i64>);

/// The tail's pairs: the 2 % (at least [`TAIL_MIN_PAIRS`]) with the largest √(baseline ·
/// canary), each with the time it was captured. Both sides choose alike, so on identical builds
/// their log ratios stay symmetric about zero — choosing by the baseline alone would favour pairs
/// whose baseline was slow by chance and show an improvement that is not there. `None` with too
/// few pairs.
fn tail_pairs(items: &[(f64, f64)], times: &[i64]) -> Option<Vec<TailPair>> {
    let known = |t: i64| (t != crate::pipeline::Reservoir::NO_TIME).then_some(t);
    let mut both: Vec<TailPair> = items
        .iter()
        .copied()
        .zip(times.iter().copied().map(known).chain(std::iter::repeat(None)))
        .filter(|((b, c), _)| *b > 0.0 && *c > 0.0 && b.is_finite() && c.is_finite())
        .collect();
    if both.len() < TAIL_MIN_PAIRS {
        return None;
    }
    let k = (both.len().div_ceil(50)).max(TAIL_MIN_PAIRS);
    // The k largest products first (the order among them does not matter).
    let cut = both.len() - k;
    both.select_nth_unstable_by(cut, |x, y| (x.0.0 * x.0.1).total_cmp(&(y.0.0 * y.0.1)));
    both.drain(..cut);
    Some(both)
}

/// The tail's log ratios by **event**: tail pairs that were in flight while an event's first
/// pair was (captured before it answered on its slower side) are one event — a pause of a
/// process, a garbage collection, a burst — and count as one value, the mean of their log ratios.
/// Ten consecutive requests caught in one stall of the canary's process are one piece of
/// evidence, not ten. Pairs without a capture time are events of their own.
fn events_log_ratios(tail: &[TailPair]) -> Vec<f64> {
    let mut timed: Vec<(i64, f64, f64)> = Vec::with_capacity(tail.len());
    let mut out = Vec::with_capacity(tail.len());
    for &((b, c), at) in tail {
        let r = (c / b).ln();
        match at {
            Some(t) => timed.push((t, b.max(c) * 1000.0, r)),
            None => out.push(r),
        }
    }
    timed.sort_by(|x, y| x.0.cmp(&y.0).then(x.2.total_cmp(&y.2)));
    let mut i = 0;
    while i < timed.len() {
        let (start, slower_us, _) = timed[i];
        let end = start.saturating_add(slower_us.ceil() as i64);
        let mut j = i + 1;
        while j < timed.len() && timed[j].0 <= end {
            j += 1;
        }
        out.push(timed[i..j].iter().map(|x| x.2).sum::<f64>() / (j - i) as f64);
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_slowest_pairs_by_both_sides() {
        // 500 pairs: the tail is the 20 (at least) with the largest b·c, whatever the side.
        let mut items: Vec<(f64, f64)> = (1..=500).map(|i| (i as f64, i as f64)).collect();
        items[0] = (1.0, 1e9); // the canary alone slow: its product is the largest
        let no_times = |items: &[(f64, f64)]| tail_pairs(items, &[]);
        let t = events_log_ratios(&no_times(&items).unwrap());
        assert_eq!(t.len(), TAIL_MIN_PAIRS);
        assert!(t.iter().any(|r| *r > 10.0), "{t:?}");
        assert_eq!(t.iter().filter(|r| **r == 0.0).count(), 19);
        // 5,000 pairs: 2 %.
        let many: Vec<(f64, f64)> = (1..=5000).map(|i| (i as f64, 2.0 * i as f64)).collect();
        let t = events_log_ratios(&no_times(&many).unwrap());
        assert_eq!(t.len(), 100);
        assert!(t.iter().all(|r| (r - 2f64.ln()).abs() < 1e-12));
        assert_eq!(no_times(&many[..19]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    /// Tail pairs in flight together are one event: two stalls of ten consecutive requests each
    /// are two values, not twenty; pairs far apart in time stay one each.
    #[test]
    fn tail_pairs_in_flight_together_are_one_event() {
        let ms = 1_000i64;
        // Two bursts of ten requests 1 ms apart, each 10 ms or more: one event each.
        let mut tail: Vec<TailPair> = Vec::new();
        for (burst, start, ratio) in [(0, 0, 1.3f64), (1, 5_000 * ms, 1.1)] {
            for k in 0..10 {
                let _ = burst;
                tail.push(((10.0, 10.0 * ratio), Some(start + k * ms)));
            }
        }
        let events = events_log_ratios(&tail);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!((events[0] - 1.3f64.ln()).abs() < 1e-12 && (events[1] - 1.1f64.ln()).abs() < 1e-12);
        // The same twenty a second apart: twenty events.
        let apart: Vec<_> = tail.iter().enumerate().map(|(i, (l, _))| (*l, Some(i as i64 * 1_000 * ms))).collect();
        assert_eq!(events_log_ratios(&apart).len(), 20);
        // A chain of overlapping requests is cut at the first one's answer: an event spans at
        // most its first request's time, so a busy service's tail is many events, not one.
        let chain: Vec<_> = (0..100).map(|i| ((10.0, 10.0), Some(i as i64 * 4 * ms))).collect();
        assert_eq!(events_log_ratios(&chain).len(), 34, "10 ms each, 4 ms apart: 3 per event");
    }

    #[test]
    fn the_run_fails_on_any_failure_and_is_inconclusive_before_it_warns() {
        use Status::*;
        assert_eq!(overall_status([Pass, Warn, Disabled].into_iter()), Warn);
        assert_eq!(overall_status([Warn, Inconclusive].into_iter()), Inconclusive);
        assert_eq!(overall_status([Inconclusive, Fail].into_iter()), Fail);
        assert_eq!(overall_status([NotComparable, Disabled].into_iter()), Pass);
    }
}
