//! The six checks, each only its estimator and its sentences; [`super::skeleton`] judges them.

use std::collections::BTreeMap;

use shadowdiff_format::verdict::{Ci, CriticalError, FieldCount, OVERALL, Statistic, Status, Unit};

use super::SEQUENTIAL_T_STAR;
use super::skeleton::{Estimate, Estimator, Scope, Z_POWER, mde_of, tiers, z_of};
use crate::pipeline::top;
use crate::policy::{Check, CheckId};
use crate::stats::{dkw_p, mcnemar, mixture_p, widened, wilson};

const REL: Unit = Unit::Relative;
const SHARE: Unit = Unit::Share;

/// `(CI a … b)` in `unit`.
fn ci_text(ci: Option<Ci>, unit: Unit) -> String {
    ci.map_or_else(String::new, |c| format!(" (CI {} … {}", unit.format(c.low), unit.format(c.high)))
}

/// `/api/search ` for an endpoint, nothing for the whole run (whose sentences say `overall`).
fn scope_name(route: &str) -> String {
    if route == OVERALL { String::new() } else { format!("{route} ") }
}

/// The `n` most frequent fields of `map`.
fn field_counts(map: &BTreeMap<String, u64>) -> Vec<FieldCount> {
    top(map, 5).into_iter().map(|(field, count)| FieldCount { field, count }).collect()
}

/// The latency regression, judged on two figures by [`tiers`], the worse deciding:
/// - **the tail**: how much slower the slowest 2 % of requests got (Hodges–Lehmann of the paired
///   log ratios over the 2 % of pairs with the largest geometric mean of both sides, at least 20 — see
///   `tail_pairs`), which is what the policy's p99 thresholds are about;
/// - **every request**: the same estimate over all pairs, which sees a regression of everything
///   long before a few tail points can.
///
/// Both intervals are distribution-free (the signed-rank interval of the estimate) and exact
/// for identical builds, where a bootstrap of the 99th percentile is not: with 40 tail points its
/// interval was too narrow often enough to warn on a fifth of identical builds (bench/calibration). The p99 delta and its bootstrap interval
/// are still computed and shown (`latency[]`), as a description.
///
/// Neither figure counts below the policy's `latency_floor_ms` at the scope's typical latency
/// (the tail's median for the tail, the median for every request): at 0.15 ms two processes of
/// one build differ by 40 %, which no user calls a regression.
pub(super) struct LatencyP99 {
    /// `None` when latency is judged; otherwise why not.
    pub not_comparable: Option<String>,
    pub floor_ms: f64,
}

/// `t` with both thresholds raised to at least `floor` (a relative change).
fn raised(t: Check, floor: f64) -> Check {
    Check { pass: t.pass.max(floor), warn: t.warn.max(floor), ..t }
}

/// `exp(x) − 1` of an estimate and its interval: a log ratio as a relative change.
fn relative(h: &shadowdiff_format::verdict::HodgesLehmann) -> (f64, Ci) {
    (h.estimate.exp_m1(), Ci { low: h.low.exp_m1(), high: h.high.exp_m1(), confidence: h.confidence })
}

impl LatencyP99 {
    /// The floor as a relative change at a typical latency of `ms`: 0 without either.
    fn relative_floor(&self, ms: Option<f64>) -> f64 {
        match ms {
            Some(ms) if ms > 0.0 && self.floor_ms > 0.0 => self.floor_ms / ms,
            _ => 0.0,
        }
    }
}

impl Estimator for LatencyP99 {
    const ID: CheckId = CheckId::LatencyP99;
    const TITLE: &'static str = "latency regression (the slowest 2% and every request)";
    const UNIT: Unit = REL;
    const SAMPLES: &'static str = "latency pairs";
    const DETECTS: &'static str = "a regression of the slowest 2%";

    fn samples(&self, s: Scope<'_>) -> u64 {
        s.stats.latency.items().len() as u64
    }

    fn estimate(&self, s: Scope<'_>, _confidence: f64) -> Estimate {
        // The latency statistics were computed at the family's confidence beforehand (in parallel).
        let Some(l) = s.latency else { return Estimate::default() };
        let tail = l.tail_log_ratio.as_ref().map(relative);
        Estimate {
            value: tail.map(|t| t.0),
            ci: tail.map(|t| t.1),
            p_value: l.wilcoxon.as_ref().map(|w| w.p_value),
            n: l.n,
            statistic: l
                .wilcoxon
                .as_ref()
                .map(|w| Statistic { name: "wilcoxon_signed_rank".into(), value: w.statistic }),
            shift: l.log_ratio.as_ref().map(relative),
            floor: (self.relative_floor(l.reference_tail_median_ms), self.relative_floor(l.reference_median_ms)),
            ..Estimate::default()
        }
    }

    fn decide(&self, e: &Estimate, _p: Option<f64>, t: Check, _overall: bool) -> Status {
        let tail = match (e.value, e.ci) {
            (Some(v), Some(ci)) if v.is_finite() && ci.low.is_finite() => Some(tiers(v, ci.low, raised(t, e.floor.0))),
            _ => None,
        };
        let shift = e
            .shift
            .filter(|(v, ci)| v.is_finite() && ci.low.is_finite())
            .map(|(v, ci)| tiers(v, ci.low, raised(t, e.floor.1)));
        tail.max(shift).unwrap_or(Status::Inconclusive)
    }

    fn finding(&self, route: &str, e: &Estimate, _p: Option<f64>) -> String {
        let overall = if route == OVERALL { " overall" } else { "" };
        let shift = e.shift.map_or_else(String::new, |(v, ci)| {
            format!(", every request {}{})", REL.format(v), ci_text(Some(ci), REL))
        });
        format!(
            "{}slowest 2% {}{overall}{}){shift}, n={}",
            scope_name(route),
            REL.format_opt(e.value),
            ci_text(e.ci, REL),
            e.n
        )
    }

    fn mde(&self, e: &Estimate, t: Check) -> Option<f64> {
        let ci = e.ci?;
        mde_of((ci.high - ci.low) / 2.0, ci.confidence, raised(t, e.floor.0).pass)
    }

    fn passed(&self, o: &Estimate, t: Check) -> String {
        if o.ci.is_none() {
            return "no latency pairs".into();
        }
        let floor = if o.floor.0 > t.pass || o.floor.1 > t.pass {
            format!(
                " (or the {} ms floor: {} of the slowest 2%, {} of every request)",
                self.floor_ms,
                REL.format(o.floor.0),
                REL.format(o.floor.1)
            )
        } else {
            String::new()
        };
        format!("{} within {}{floor}", self.finding(OVERALL, o, None), REL.format(t.pass))
    }

    fn not_comparable(&self) -> Option<String> {
        self.not_comparable.clone()
    }
}

/// A shift of the latency distribution towards slow that a p99 or a median comparison can miss
/// (a spread-only change, a new slow mode): the one-sided two-sample KS statistic D⁺ against the
/// baseline slowed by the latency check's pass threshold — the largest share of requests by
/// which the canary lies on the slow side of what passes. It warns only when D⁺ is significant
/// *and* at least the policy's effect floor (`warn`, default 0.10): two instances of one build a
/// few percent apart, detectable at thousands of pairs, are not a finding, and a canary that is
/// faster is not a regression.
pub(super) struct LatencyShape {
    pub alpha: f64,
    pub not_comparable: Option<String>,
    /// Anytime-valid: the p-value of time-uniform bands instead of the fixed-sample test.
    pub sequential: bool,
}

impl Estimator for LatencyShape {
    const ID: CheckId = CheckId::LatencyShape;
    const TITLE: &'static str = "latency distribution shifted towards slow (one-sided KS)";
    const UNIT: Unit = Unit::KsD;
    const SAMPLES: &'static str = "latency pairs";

    fn samples(&self, s: Scope<'_>) -> u64 {
        s.stats.latency.items().len() as u64
    }

    fn estimate(&self, s: Scope<'_>, _confidence: f64) -> Estimate {
        let Some(l) = s.latency else { return Estimate::default() };
        let ks = l.ks.as_ref();
        let p = |k: &shadowdiff_format::verdict::KsResult| {
            if self.sequential { dkw_p(k.slower, k.n_baseline.min(k.n_canary) as u64) } else { k.slower_p_value }
        };
        Estimate {
            value: ks.map(|k| k.slower),
            p_value: ks.map(p),
            n: l.n,
            statistic: ks.map(|k| Statistic { name: "ks_d_slower".into(), value: k.slower }),
            ..Estimate::default()
        }
    }

    fn decide(&self, e: &Estimate, p: Option<f64>, t: Check, _overall: bool) -> Status {
        match (e.value, p) {
            (Some(d), Some(p)) if p < self.alpha && d >= t.warn => Status::Warn,
            (Some(_), Some(_)) => Status::Pass,
            _ => Status::Inconclusive,
        }
    }

    fn finding(&self, route: &str, e: &Estimate, p: Option<f64>) -> String {
        let d = Unit::KsD.format_opt(e.value);
        let p = p.unwrap_or(f64::NAN);
        if route == OVERALL {
            format!("the latency distribution shifted towards slow overall ({d}, p={p:.2e}, n={})", e.n)
        } else {
            format!("{route} {d} towards slow (p={p:.2e} adjusted, n={})", e.n)
        }
    }

    fn passed(&self, o: &Estimate, t: Check) -> String {
        format!(
            "no significant shift towards slow of at least {} ({}, α={})",
            Unit::KsD.format(t.warn),
            Unit::KsD.format_opt(o.value),
            self.alpha
        )
    }

    fn mde(&self, e: &Estimate, t: Check) -> Option<f64> {
        // The D⁺ a one-sided test at α needs, at this sample size (both sides have n pairs).
        if e.n < 2 {
            return None;
        }
        let en = e.n as f64 / 2.0;
        Some(t.warn.max((-self.alpha.ln() / (2.0 * en)).sqrt()))
    }

    fn not_comparable(&self) -> Option<String> {
        self.not_comparable.clone()
    }
}

/// The canary's error rate against the baseline's on the same requests: tiers on the ratio of
/// the two rates, with evidence required (the one-sided exact McNemar test on the paired
/// outcomes: more canary-only than baseline-only failures, at α).
pub(super) struct ErrorRate {
    pub alpha: f64,
    /// Anytime-valid: the mixture SPRT's p-value instead of the fixed-sample test's.
    pub sequential: bool,
}

impl Estimator for ErrorRate {
    const ID: CheckId = CheckId::ErrorRate;
    const TITLE: &'static str = "canary error rate against the baseline's";
    const UNIT: Unit = SHARE;
    const SAMPLES: &'static str = "pairs";

    fn samples(&self, s: Scope<'_>) -> u64 {
        s.stats.errors.n
    }

    fn estimate(&self, s: Scope<'_>, confidence: f64) -> Estimate {
        let e = &s.stats.errors;
        let n = e.n.max(1) as f64;
        let mc = mcnemar(e.canary_only, e.baseline_only);
        let w = wilson(e.canary, e.n, confidence);
        Estimate {
            value: Some(e.canary as f64 / n),
            ci: Some(Ci { low: w.low, high: w.high, confidence }),
            p_value: Some(if self.sequential { mixture_p(e.canary_only, e.baseline_only) } else { mc.greater_p_value }),
            n: e.n,
            statistic: Some(Statistic { name: "mcnemar_canary_only".into(), value: e.canary_only as f64 }),
            reference: Some(e.baseline as f64 / n),
            against_canary: e.canary_only > e.baseline_only,
            ..Estimate::default()
        }
    }

    fn decide(&self, e: &Estimate, p: Option<f64>, t: Check, _overall: bool) -> Status {
        let (Some(c), Some(b)) = (e.value, e.reference) else { return Status::Inconclusive };
        if p.unwrap_or(1.0) >= self.alpha || !e.against_canary {
            return Status::Pass;
        }
        let ratio = if b > 0.0 { c / b } else { f64::INFINITY };
        if ratio > t.warn {
            Status::Fail
        } else if ratio > t.pass {
            Status::Warn
        } else {
            Status::Pass
        }
    }

    fn finding(&self, route: &str, e: &Estimate, p: Option<f64>) -> String {
        format!(
            "{} canary {}{}) vs baseline {} (McNemar one-sided p={:.2e}{}, n={})",
            if route == OVERALL { "overall" } else { route },
            SHARE.format_opt(e.value),
            ci_text(e.ci, SHARE),
            SHARE.format_opt(e.reference),
            p.unwrap_or(f64::NAN),
            if route == OVERALL { "" } else { " adjusted" },
            e.n
        )
    }

    fn passed(&self, o: &Estimate, _t: Check) -> String {
        self.finding(OVERALL, o, o.p_value)
    }

    fn mde(&self, e: &Estimate, _t: Check) -> Option<f64> {
        // With B baseline errors, a canary at ρ·B gives about B baseline-only and ρB canary-only
        // pairs; the one-sided test sees it with 80 % power when B(ρ−1)²/(1+ρ) ≥ (z_α + z_β)².
        let b = e.reference? * e.n as f64;
        if b < 1.0 {
            return None;
        }
        let z = crate::stats::z_quantile(1.0 - self.alpha) + Z_POWER;
        let k = z * z / b;
        Some(((2.0 + k) + ((2.0 + k).powi(2) - 4.0 * (1.0 - k)).sqrt()) / 2.0)
    }
}

/// Error kinds (a transport failure, a 5xx status) the canary shows on a route where the baseline
/// never does. One-sided sign test: under "no difference" each such error is as likely on either
/// side, so a baseline showing none of k has probability 2^-k; a scope with several such kinds
/// tests them together (Bonferroni over its kinds).
pub(super) struct CriticalErrors {
    pub alpha: f64,
}

/// The kinds only the canary shows in a scope, most frequent first.
fn canary_only_kinds(s: Scope<'_>) -> Vec<(&str, u64)> {
    let mut kinds: Vec<(&str, u64)> = s
        .stats
        .errors
        .kinds
        .iter()
        .filter(|(_, k)| k.baseline == 0 && k.canary > 0)
        .map(|(kind, k)| (kind.as_str(), k.canary))
        .collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    kinds
}

/// The sign test's p-value for `k` errors the other side never showed.
fn sign_p(k: u64) -> f64 {
    0.5f64.powi(k.min(1074) as i32)
}

impl CriticalErrors {
    /// verdict.json's `critical_errors[]`: every canary-only kind per scope, with its p-value
    /// adjusted as its scope's test was (over the scope's kinds, then Holm over the family).
    pub fn list(&self, overall: Scope<'_>, routes: &[Scope<'_>], endpoints: &[(String, f64)]) -> Vec<CriticalError> {
        let mut list = Vec::new();
        for s in std::iter::once(overall).chain(routes.iter().copied()) {
            let kinds = canary_only_kinds(s);
            let holm_factor = endpoints.iter().find(|(r, _)| r == s.route).map_or(1.0, |(_, f)| *f);
            for (kind, canary) in &kinds {
                let p = sign_p(*canary);
                let p_adjusted = (p * kinds.len() as f64 * holm_factor).min(1.0);
                list.push(CriticalError {
                    route: s.route.to_owned(),
                    kind: (*kind).to_owned(),
                    canary: *canary,
                    p_value: p,
                    p_adjusted,
                    confirmed: p_adjusted < self.alpha,
                });
            }
        }
        list.sort_by(|a, b| {
            b.canary.cmp(&a.canary).then_with(|| a.route.cmp(&b.route)).then_with(|| a.kind.cmp(&b.kind))
        });
        list
    }
}

impl Estimator for CriticalErrors {
    const ID: CheckId = CheckId::CriticalErrors;
    const TITLE: &'static str = "errors the baseline never shows";
    const UNIT: Unit = Unit::Count;
    const SAMPLES: &'static str = "pairs";
    const COUNTS: bool = true;
    const FIELDS: (&'static str, &'static str) = ("error kind", "error kinds");

    fn samples(&self, s: Scope<'_>) -> u64 {
        canary_only_kinds(s).iter().map(|k| k.1).sum()
    }

    fn listed(&self, s: Scope<'_>) -> bool {
        self.samples(s) > 0
    }

    fn estimate(&self, s: Scope<'_>, _confidence: f64) -> Estimate {
        let kinds = canary_only_kinds(s);
        let p = kinds.first().map(|k| (sign_p(k.1) * kinds.len() as f64).min(1.0));
        Estimate {
            value: Some(kinds.iter().map(|k| k.1).sum::<u64>() as f64),
            p_value: p,
            n: s.stats.errors.n,
            fields: kinds.iter().map(|(k, c)| FieldCount { field: (*k).to_owned(), count: *c }).collect(),
            ..Estimate::default()
        }
    }

    fn decide(&self, _e: &Estimate, p: Option<f64>, _t: Check, _overall: bool) -> Status {
        if p.is_some_and(|p| p < self.alpha) { Status::Fail } else { Status::Pass }
    }

    fn finding(&self, route: &str, e: &Estimate, p: Option<f64>) -> String {
        let Some(top) = e.fields.first() else { return format!("{route}: no canary-only error") };
        format!(
            "{route} `{}` ×{} in the canary, never in the baseline (p={:.2e} adjusted)",
            top.field,
            top.count,
            p.unwrap_or(f64::NAN)
        )
    }

    fn passed(&self, o: &Estimate, _t: Check) -> String {
        match o.fields.len() {
            0 => format!("no error kind the baseline never shows has evidence in the canary at α={}", self.alpha),
            k => format!("{k} canary-only error kind(s) seen, none with evidence at α={}", self.alpha),
        }
    }
}

/// The share of compared pairs with a real (not noise, not explained) difference.
pub(super) struct DiffRate {
    /// Anytime-valid: the Wilson interval widened into a confidence sequence.
    pub sequential: bool,
}

impl Estimator for DiffRate {
    const ID: CheckId = CheckId::DiffRate;
    const TITLE: &'static str = "pairs with a real difference";
    const UNIT: Unit = SHARE;
    const SAMPLES: &'static str = "compared pairs";

    fn samples(&self, s: Scope<'_>) -> u64 {
        s.row.compared
    }

    fn estimate(&self, s: Scope<'_>, confidence: f64) -> Estimate {
        let w = wilson(s.row.different, s.row.compared, confidence);
        let (low, high) = if self.sequential {
            let (low, high) = widened(w.estimate, (w.low, w.high), s.row.compared, confidence, SEQUENTIAL_T_STAR);
            (low.max(0.0), high.min(1.0))
        } else {
            (w.low, w.high)
        };
        Estimate {
            value: Some(w.estimate),
            ci: Some(Ci { low, high, confidence }),
            n: s.row.compared,
            statistic: Some(Statistic { name: "real_pairs".into(), value: s.row.different as f64 }),
            fields: field_counts(&s.stats.real_fields),
            reference: Some(s.row.different as f64),
            ..Estimate::default()
        }
    }

    fn decide(&self, e: &Estimate, _p: Option<f64>, t: Check, _overall: bool) -> Status {
        match (e.value, e.ci) {
            (Some(v), Some(ci)) => tiers(v, ci.low, t),
            _ => Status::Inconclusive,
        }
    }

    fn mde(&self, e: &Estimate, t: Check) -> Option<f64> {
        // The rate r whose interval clears the pass threshold with 80 % probability:
        // r = pass + (z_α + z_β)·√(r(1−r)/n), solved by iteration.
        if e.n == 0 {
            return None;
        }
        let n = e.n as f64;
        let z = z_of(e.ci.map_or(0.95, |c| c.confidence)) + Z_POWER;
        let mut r = t.pass.max(1.0 / n);
        for _ in 0..50 {
            r = t.pass + z * (r * (1.0 - r) / n).sqrt();
        }
        Some(r.min(1.0))
    }

    fn finding(&self, route: &str, e: &Estimate, _p: Option<f64>) -> String {
        let most = e.fields.first().map_or_else(String::new, |f| format!(", most in `{}` ×{}", f.field, f.count));
        format!(
            "{}{} of {}pairs differ{}; {} of {}{most})",
            scope_name(route),
            SHARE.format_opt(e.value),
            if route == OVERALL { "compared " } else { "" },
            ci_text(e.ci, SHARE),
            e.reference.unwrap_or(0.0),
            e.n
        )
    }

    fn passed(&self, o: &Estimate, t: Check) -> String {
        format!(
            "{} of compared pairs differ{}; pass ≤ {})",
            SHARE.format_opt(o.value),
            ci_text(o.ci, SHARE),
            SHARE.format(t.pass)
        )
    }
}

/// Pairs with a real breaking difference: a field removed, a type changed, a status class
/// changed. One is evidence; the thresholds are counts.
pub(super) struct Breaking;

impl Estimator for Breaking {
    const ID: CheckId = CheckId::Breaking;
    const TITLE: &'static str = "pairs with a breaking difference";
    const UNIT: Unit = Unit::Count;
    const SAMPLES: &'static str = "compared pairs";
    const COUNTS: bool = true;
    const ENDPOINTS_DECIDE: bool = true;

    fn samples(&self, s: Scope<'_>) -> u64 {
        s.row.breaking_pairs
    }

    fn listed(&self, s: Scope<'_>) -> bool {
        s.row.breaking_pairs > 0
    }

    fn estimate(&self, s: Scope<'_>, _confidence: f64) -> Estimate {
        Estimate {
            value: Some(s.row.breaking_pairs as f64),
            n: s.row.compared,
            fields: field_counts(&s.stats.breaking_fields),
            ..Estimate::default()
        }
    }

    fn decide(&self, e: &Estimate, _p: Option<f64>, t: Check, _overall: bool) -> Status {
        let k = e.value.unwrap_or(0.0);
        if k > t.warn {
            Status::Fail
        } else if k > t.pass {
            Status::Warn
        } else {
            Status::Pass
        }
    }

    fn finding(&self, route: &str, e: &Estimate, _p: Option<f64>) -> String {
        let field = e.fields.first().map_or_else(String::new, |f| format!("`{}` ", f.field));
        format!("{}{field}in {} of {} pairs", scope_name(route), e.value.unwrap_or(0.0), e.n)
    }

    fn passed(&self, _o: &Estimate, _t: Check) -> String {
        "no breaking difference".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Check = Check { enabled: true, pass: 0.10, warn: 0.20, report_only: false };

    fn estimate(change: f64, low: f64, floor: (f64, f64)) -> Estimate {
        let ci = Ci { low, high: change + (change - low), confidence: 0.95 };
        Estimate { value: Some(change), ci: Some(ci), shift: Some((change, ci)), floor, ..Estimate::default() }
    }

    #[test]
    fn a_change_below_the_latency_floor_is_no_finding() {
        let check = LatencyP99 { not_comparable: None, floor_ms: 0.25 };
        // +40 % shown beyond doubt at 0.15 ms (60 µs): the 0.25 ms floor is +167 % there.
        let tiny = estimate(0.40, 0.35, (check.relative_floor(Some(0.15)), check.relative_floor(Some(0.15))));
        assert_eq!(check.decide(&tiny, None, T, true), Status::Pass);
        assert!(check.passed(&tiny, T).contains("0.25 ms floor"), "{}", check.passed(&tiny, T));
        // The same change at 50 ms (20 ms): the floor is 0.5 %, below the thresholds, and it fails.
        let real = estimate(0.40, 0.35, (check.relative_floor(Some(50.0)), check.relative_floor(Some(50.0))));
        assert_eq!(check.decide(&real, None, T, true), Status::Fail);
        // At 1 ms the floor (+25 %) is above the fail threshold: +30 % shown beyond +25 % fails.
        let near = estimate(0.30, 0.27, (0.25, 0.25));
        assert_eq!(check.decide(&near, None, T, true), Status::Fail);
        assert_eq!(check.decide(&estimate(0.30, 0.22, (0.25, 0.25)), None, T, true), Status::Pass);
        // No floor: relative thresholds alone.
        let off = LatencyP99 { not_comparable: None, floor_ms: 0.0 };
        assert_eq!(off.relative_floor(Some(0.15)), 0.0);
        assert_eq!(off.decide(&estimate(0.40, 0.35, (0.0, 0.0)), None, T, true), Status::Fail);
    }
}
