//! The one skeleton every check runs through. A check supplies only its estimator (what figure a
//! scope has, with which interval or p-value) and its sentences; the skeleton does the rest, the
//! same way for all six:
//!
//! 1. disabled in the policy → `disabled`;
//! 2. the whole run: its estimate at the policy's confidence, inconclusive below `min_samples`;
//! 3. the endpoints: the **family** is the endpoints the check judges — enabled for the route and
//!    with at least the route's minimum of samples (for checks whose evidence is a count, every
//!    endpoint that shows any). Each endpoint's interval is at the Bonferroni-widened confidence
//!    `1 - (1 - c) / m` and its p-value is Holm-adjusted over that family, `m` its size — one
//!    definition, so the report's "p (Holm)" column means the same thing in every row;
//! 4. an endpoint only *raises* the check's status, and only on evidence;
//! 5. endpoints that drove the status first;
//! 6. one line of reason: the top finding and how much more there is.

use shadowdiff_format::verdict::{
    CheckResult, Ci, EndpointCheck, FieldCount, OVERALL, Statistic, Status, Threshold, Unit,
};

use crate::pipeline::RouteStats;
use crate::policy::{Check, CheckId, Policy};
use crate::stats::holm;
use shadowdiff_format::verdict::{EndpointRow, LatencySummary};

/// One scope a check looks at: the whole run or one route.
#[derive(Clone, Copy)]
pub(super) struct Scope<'a> {
    pub route: &'a str,
    pub stats: &'a RouteStats,
    /// The scope's row of the endpoint table: pairs, compared, different and breaking pairs as
    /// polars counted them over pairs.parquet, the one count of each.
    pub row: &'a EndpointRow,
    /// Latency statistics of the scope, when it had any paired latencies.
    pub latency: Option<&'a LatencySummary>,
}

/// A scope's figure as a check estimates it.
#[derive(Debug, Clone, Default)]
pub(super) struct Estimate {
    pub value: Option<f64>,
    pub ci: Option<Ci>,
    /// The raw p-value of the scope's test, when the check has one.
    pub p_value: Option<f64>,
    /// The sample size of the figure.
    pub n: u64,
    pub statistic: Option<Statistic>,
    /// The fields behind the figure (difference checks).
    pub fields: Vec<FieldCount>,
    /// The other side's figure, when the check compares against it (the baseline's error rate).
    pub reference: Option<f64>,
    /// False when the evidence points the canary's way (fewer canary-only errors than
    /// baseline-only ones): such a scope never fails.
    pub against_canary: bool,
    /// A second figure the check decides on, with its interval: the whole latency
    /// distribution's shift (Hodges–Lehmann of the paired log ratios) beside the p99.
    pub shift: Option<(f64, Ci)>,
    /// The latency floor as relative changes at the tail's and at every request's typical
    /// latency (0 without a floor): thresholds below them are raised to them.
    pub floor: (f64, f64),
}

/// What a check supplies to the skeleton.
pub(super) trait Estimator {
    const ID: CheckId;
    const TITLE: &'static str;
    const UNIT: Unit;
    /// What the samples are, for "fewer than min_samples" sentences: `latency pairs` …
    const SAMPLES: &'static str;
    /// True when one occurrence is evidence whatever the sample size (breaking differences,
    /// errors the baseline never shows): every endpoint that shows any is judged.
    const COUNTS: bool = false;
    /// What the minimum detectable effect is of, for sentences: `a regression`.
    const DETECTS: &'static str = "a regression";
    /// What the entries of [`Estimate::fields`] are, singular and plural.
    const FIELDS: (&'static str, &'static str) = ("field", "fields");

    /// The samples a scope offers, against the minimum.
    fn samples(&self, s: Scope<'_>) -> u64;

    /// The scope's figure at `confidence`.
    fn estimate(&self, s: Scope<'_>, confidence: f64) -> Estimate;

    /// The status the evidence supports. The whole run (`overall`) decides both ways; an
    /// endpoint only raises, on evidence. `p` is the raw p-value overall, Holm-adjusted for an
    /// endpoint.
    fn decide(&self, e: &Estimate, p: Option<f64>, t: Check, overall: bool) -> Status;

    /// One scope's finding, for reasons: `/api/search p99 +62.0% (CI +40.1% … +80.3%, n=812)`.
    fn finding(&self, route: &str, e: &Estimate, p: Option<f64>) -> String;

    /// The reason when the check passed.
    fn passed(&self, overall: &Estimate, t: Check) -> String;

    /// Whether an endpoint is listed at all (count checks list only the endpoints that show any).
    fn listed(&self, _s: Scope<'_>) -> bool {
        true
    }

    /// The reason the check cannot be judged at all (latency against a recorded baseline).
    fn not_comparable(&self) -> Option<String> {
        None
    }

    /// The minimum detectable effect of a scope's figure under thresholds `t`: the smallest
    /// regression (in the threshold's unit) that would raise an alarm with 80 % probability.
    fn mde(&self, _e: &Estimate, _t: Check) -> Option<f64> {
        None
    }

    /// True when the endpoints, not the whole run, decide the check once any is listed: their
    /// policy overrides may allow what the run's total would fail (breaking differences).
    const ENDPOINTS_DECIDE: bool = false;
}

/// Everything a check reads.
pub(super) struct Ctx<'a> {
    pub policy: &'a Policy,
    pub overall: Scope<'a>,
    pub routes: Vec<Scope<'a>>,
}

impl Ctx<'_> {
    /// The endpoints `E` judges, as indices into `routes`: its family.
    pub fn family<E: Estimator>(&self, est: &E) -> Vec<usize> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                let enabled = self.policy.checks_for(s.route).get(E::ID).enabled;
                let n = est.samples(**s);
                enabled
                    && est.listed(**s)
                    && (if E::COUNTS { n > 0 } else { n >= self.policy.min_samples_for(s.route) })
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The confidence of each endpoint's interval in a family of `m`.
    pub fn endpoint_confidence(&self, m: usize) -> f64 {
        1.0 - (1.0 - self.policy.confidence) / m.max(1) as f64
    }
}

/// A check with nothing judged yet.
pub(super) fn disabled<E: Estimator>(t: Check) -> CheckResult {
    let threshold_unit = if E::ID == CheckId::ErrorRate { Unit::Ratio } else { E::UNIT };
    unjudged(E::ID, E::TITLE, E::UNIT, threshold_unit, t)
}

/// Check `id` as it stands before anything is judged: disabled, with the policy's settings.
pub(super) fn unjudged(id: CheckId, title: &str, unit: Unit, threshold_unit: Unit, t: Check) -> CheckResult {
    CheckResult {
        id,
        title: title.to_owned(),
        status: Status::Disabled,
        reason: "disabled in the policy".into(),
        value: None,
        unit,
        threshold: Threshold { pass: t.pass, warn: t.warn },
        threshold_unit,
        statistic: None,
        p_value: None,
        ci: None,
        n: 0,
        mde: None,
        more_pairs: None,
        report_only: t.report_only,
        endpoints: Vec::new(),
    }
}

/// Runs check `est` through the skeleton.
pub(super) fn run<E: Estimator>(est: &E, ctx: &Ctx<'_>) -> CheckResult {
    let p = ctx.policy;
    let t = p.checks.get(E::ID);
    let mut r = disabled::<E>(t);
    if !t.enabled {
        return r;
    }
    let o = est.estimate(ctx.overall, p.confidence);
    r.value = o.value;
    r.ci = o.ci;
    r.p_value = o.p_value;
    r.n = o.n;
    r.statistic = o.statistic.clone();
    r.mde = est.mde(&o, t);
    if let Some(why) = est.not_comparable() {
        r.status = Status::NotComparable;
        r.reason = why;
        return r;
    }
    let (list, overall_p) = endpoints(est, ctx, o.p_value);
    r.endpoints = list;
    let overall_status = if r.n < p.min_samples && !(E::COUNTS && o.value.unwrap_or(0.0) > 0.0) {
        Status::Inconclusive
    } else {
        est.decide(&o, overall_p, t, true)
    };
    order(&mut r.endpoints);
    let overall_status = if E::ENDPOINTS_DECIDE && !r.endpoints.is_empty() && overall_status != Status::Inconclusive {
        r.endpoints.iter().map(|e| e.status).filter(|s| *s != Status::Disabled).max().unwrap_or(Status::Pass)
    } else {
        overall_status
    };
    r.status = combine(overall_status, &r.endpoints);
    if r.status == Status::Inconclusive {
        r.more_pairs = Some(p.min_samples.saturating_sub(r.n).max(1));
    }
    r.reason = reason(est, &r, &o, overall_status, t, p.min_samples);
    r
}

/// Every listed endpoint's part: the family judged at the widened confidence with Holm-adjusted
/// p-values, the others disabled or inconclusive. α is split in two between the whole run's test
/// (`overall_p`) and the endpoints' Holm family, so the check as a whole — the run and every
/// endpoint — raises a false alarm at most at α; the run's adjusted p-value is returned beside
/// the endpoints.
fn endpoints<E: Estimator>(est: &E, ctx: &Ctx<'_>, overall_p: Option<f64>) -> (Vec<EndpointCheck>, Option<f64>) {
    let family = ctx.family(est);
    let conf = ctx.endpoint_confidence(family.len());
    let estimates: Vec<Estimate> = family.iter().map(|&i| est.estimate(ctx.routes[i], conf)).collect();
    // α is split between the whole run's test and its endpoints' (Holm within them): the run's
    // test, the strongest, pays a factor of two rather than the family's size.
    let split = if overall_p.is_some() { 2.0 } else { 1.0 };
    let adjusted: Vec<f64> = holm(&estimates.iter().map(|e| e.p_value.unwrap_or(1.0)).collect::<Vec<_>>())
        .into_iter()
        .map(|p| (p * split).min(1.0))
        .collect();
    let overall_adjusted = overall_p.map(|p| (p * split).min(1.0));
    let mut judged = family.iter().zip(estimates).zip(adjusted).peekable();
    let mut out = Vec::new();
    for (i, s) in ctx.routes.iter().enumerate() {
        if !est.listed(*s) {
            continue;
        }
        let t = ctx.policy.checks_for(s.route).get(E::ID);
        if let Some(((_, e), adj)) = judged.next_if(|((j, _), _)| **j == i) {
            let p_adj = e.p_value.map(|_| adj);
            out.push(EndpointCheck {
                route: s.route.to_owned(),
                status: est.decide(&e, p_adj, t, false),
                reason: est.finding(s.route, &e, p_adj),
                mde: est.mde(&e, t),
                value: e.value,
                ci: e.ci,
                p_value: e.p_value,
                p_adjusted: p_adj,
                n: e.n,
                fields: e.fields,
            });
            continue;
        }
        // Not judged, but shown: its figure at the family's confidence, outside the Holm family.
        let e = est.estimate(*s, conf);
        let (status, reason) = if t.enabled {
            let min = ctx.policy.min_samples_for(s.route);
            (Status::Inconclusive, format!("{}: {} {}, fewer than {min}", s.route, est.samples(*s), E::SAMPLES))
        } else {
            (Status::Disabled, format!("{}: disabled", s.route))
        };
        out.push(EndpointCheck {
            route: s.route.to_owned(),
            status,
            mde: est.mde(&e, t),
            value: e.value,
            ci: e.ci,
            p_value: e.p_value,
            p_adjusted: None,
            n: e.n,
            reason,
            fields: e.fields,
        });
    }
    (out, overall_adjusted)
}

/// The three tiers, with evidence required for an alarm: **warn** when the interval lies wholly
/// beyond the pass threshold (the data show the figure exceeds what passes); **fail** when, in
/// addition, the estimate is beyond the fail threshold (`warn`); **pass** otherwise — within the
/// pass threshold, or not told from it. The whole run and each endpoint are judged alike (an
/// endpoint's interval is the widened one of its family).
///
/// Requiring the interval beyond *pass* (not merely above no change) is what keeps a small real
/// change (+5 % when 10 % passes) from warning whenever its estimate happens to land above the
/// threshold; requiring only the *estimate* beyond the fail threshold is what lets a regression of
/// +30 % fail although its interval reaches back below +20 %.
pub(super) fn tiers(estimate: f64, low: f64, t: Check) -> Status {
    if low > t.pass && estimate > t.warn {
        Status::Fail
    } else if low > t.pass {
        Status::Warn
    } else {
        Status::Pass
    }
}

/// z for an interval at `confidence` (two-sided) and for 80 % power.
pub(super) fn z_of(confidence: f64) -> f64 {
    crate::stats::z_quantile(1.0 - (1.0 - confidence) / 2.0)
}
pub(super) const Z_POWER: f64 = 0.841_621_233_572_914_3;

/// The smallest effect an interval of half-width `half` (at `confidence`) would flag with 80 %
/// probability: its lower bound must clear the pass threshold, with room for the noise.
pub(super) fn mde_of(half: f64, confidence: f64, pass: f64) -> Option<f64> {
    if !half.is_finite() || half <= 0.0 {
        return None;
    }
    let se = half / z_of(confidence);
    Some(pass + half + Z_POWER * se)
}

/// The check's status from the whole run's and the endpoints'.
pub(super) fn combine(overall: Status, endpoints: &[EndpointCheck]) -> Status {
    let worst = endpoints.iter().map(|e| e.status).filter(|s| matches!(s, Status::Fail | Status::Warn)).max();
    match (overall, worst) {
        (_, Some(Status::Fail)) | (Status::Fail, _) => Status::Fail,
        (Status::Inconclusive, _) => Status::Inconclusive,
        (o, Some(w)) => o.max(w),
        (o, None) => o,
    }
}

/// Sorts endpoints so the ones that drove the status come first.
fn order(endpoints: &mut [EndpointCheck]) {
    endpoints.sort_by(|a, b| {
        b.status
            .cmp(&a.status)
            .then_with(|| b.value.unwrap_or(f64::MIN).total_cmp(&a.value.unwrap_or(f64::MIN)))
            .then_with(|| a.route.cmp(&b.route))
    });
}

/// One line a person reads in seconds: the top finding, then how much more there is.
fn reason<E: Estimator>(
    est: &E,
    r: &CheckResult,
    overall: &Estimate,
    overall_status: Status,
    t: Check,
    min_samples: u64,
) -> String {
    match r.status {
        Status::Inconclusive => format!(
            "{} {} overall, fewer than min_samples = {min_samples}: {} more would make it conclusive",
            r.n,
            E::SAMPLES,
            r.more_pairs.unwrap_or(0)
        ),
        Status::Fail | Status::Warn => {
            let drivers: Vec<&EndpointCheck> = r.endpoints.iter().filter(|e| e.status == r.status).collect();
            let top = match drivers.first() {
                Some(e) if overall_status != r.status || E::COUNTS => e.reason.clone(),
                _ => {
                    // Fail: beyond the fail threshold, with evidence it exceeds pass; warn:
                    // beyond the pass threshold, with evidence of a change.
                    let limit = if r.status == Status::Fail { t.warn } else { t.pass };
                    let of = if r.threshold_unit == Unit::Ratio { " the baseline's" } else { "" };
                    let finding = est.finding(OVERALL, overall, r.p_value);
                    format!("{finding}: beyond {}{of}", r.threshold_unit.format(limit))
                }
            };
            let shown = usize::from(overall_status != r.status || E::COUNTS);
            format!("{top}{}", more::<E>(&drivers[shown.min(drivers.len())..], &drivers))
        }
        _ => {
            let passed = est.passed(overall, t);
            // Say when the data could not have seen a regression the policy fails on.
            match r.mde {
                Some(m) if r.status == Status::Pass && m > t.warn && r.threshold_unit != Unit::Ratio => format!(
                    "{passed}; with {} {} {} below {} cannot be told from noise",
                    r.n,
                    E::SAMPLES,
                    E::DETECTS,
                    r.threshold_unit.format(m)
                ),
                _ => passed,
            }
        }
    }
}

/// `; 5 more routes, 9 more fields` — what the top finding leaves out.
fn more<E: Estimator>(rest: &[&EndpointCheck], all: &[&EndpointCheck]) -> String {
    let mut parts = Vec::new();
    if !rest.is_empty() {
        parts.push(format!("{} more route{}", rest.len(), if rest.len() == 1 { "" } else { "s" }));
    }
    let fields: std::collections::BTreeSet<&str> =
        all.iter().flat_map(|e| e.fields.iter().map(|f| f.field.as_str())).collect();
    let first = all.first().and_then(|e| e.fields.first()).map(|f| f.field.as_str());
    let extra = fields.len().saturating_sub(usize::from(first.is_some()));
    if extra > 0 {
        parts.push(format!("{extra} more {}", if extra == 1 { E::FIELDS.0 } else { E::FIELDS.1 }));
    }
    if parts.is_empty() { String::new() } else { format!("; {}", parts.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Check = Check { enabled: true, pass: 0.1, warn: 0.2, report_only: false };

    #[test]
    fn tiers_rest_on_the_estimate_with_evidence_for_an_alarm() {
        // Not shown to exceed the pass threshold: pass, wherever the estimate lies.
        assert_eq!(tiers(0.05, -0.3, T), Status::Pass);
        assert_eq!(tiers(0.15, 0.02, T), Status::Pass, "a +5 % change estimated at +15 % is not evidence");
        assert_eq!(tiers(0.25, 0.05, T), Status::Pass);
        // Shown beyond pass: warn; and estimated beyond the fail threshold: fail.
        assert_eq!(tiers(0.15, 0.11, T), Status::Warn);
        assert_eq!(tiers(0.25, 0.12, T), Status::Fail);
        assert_eq!(tiers(0.20, 0.12, T), Status::Warn, "at the fail threshold is not beyond it");
    }

    #[test]
    fn the_minimum_detectable_effect_grows_with_the_noise() {
        // The pass threshold, the interval's half-width, and room for the noise.
        let tight = mde_of(0.02, 0.95, 0.10).unwrap();
        assert!((tight - (0.12 + Z_POWER * 0.02 / 1.959_964)).abs() < 1e-6, "{tight}");
        let wide = mde_of(0.30, 0.95, 0.10).unwrap();
        assert!(wide > 0.40 && wide < 0.55, "{wide}");
        assert_eq!(mde_of(f64::NAN, 0.95, 0.1), None);
    }

    fn ep(status: Status, fields: &[&str]) -> EndpointCheck {
        EndpointCheck {
            route: "/r".into(),
            status,
            value: None,
            ci: None,
            p_value: None,
            p_adjusted: None,
            n: 0,
            reason: String::new(),
            fields: fields.iter().map(|f| FieldCount { field: (*f).to_owned(), count: 1 }).collect(),
            mde: None,
        }
    }

    #[test]
    fn combining_overall_and_endpoints() {
        assert_eq!(combine(Status::Pass, &[ep(Status::Warn, &[])]), Status::Warn);
        assert_eq!(combine(Status::Inconclusive, &[ep(Status::Warn, &[])]), Status::Inconclusive);
        assert_eq!(combine(Status::Inconclusive, &[ep(Status::Fail, &[])]), Status::Fail);
        assert_eq!(combine(Status::Warn, &[ep(Status::Inconclusive, &[])]), Status::Warn);
    }

    #[test]
    fn more_counts_the_routes_and_fields_left_out() {
        let a = ep(Status::Fail, &["/id", "/name"]);
        let b = ep(Status::Fail, &["/id", "/price"]);
        let all = [&a, &b];
        use super::super::checks::{CriticalErrors, DiffRate};
        assert_eq!(more::<DiffRate>(&all[1..], &all), "; 1 more route, 2 more fields");
        assert_eq!(more::<DiffRate>(&[], &all[..1]), "; 1 more field");
        assert_eq!(more::<CriticalErrors>(&[], &all[..1]), "; 1 more error kind");
        assert_eq!(more::<DiffRate>(&[], &[]), "");
    }
}
