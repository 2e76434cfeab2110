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
    CheckResult {
        id: E::ID,
        title: E::TITLE.to_owned(),
        status: Status::Disabled,
        reason: "disabled in the policy".into(),
        value: None,
        unit: E::UNIT,
        threshold: Threshold { pass: t.pass, warn: t.warn },
        threshold_unit: if E::ID == CheckId::ErrorRate { Unit::Ratio } else { E::UNIT },
        statistic: None,
        p_value: None,
        ci: None,
        n: 0,
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
    if let Some(why) = est.not_comparable() {
        r.status = Status::NotComparable;
        r.reason = why;
        return r;
    }
    let overall_status = if r.n < p.min_samples && !(E::COUNTS && o.value.unwrap_or(0.0) > 0.0) {
        Status::Inconclusive
    } else {
        est.decide(&o, o.p_value, t, true)
    };
    r.endpoints = endpoints(est, ctx);
    order(&mut r.endpoints);
    let overall_status = if E::ENDPOINTS_DECIDE && !r.endpoints.is_empty() && overall_status != Status::Inconclusive {
        r.endpoints.iter().map(|e| e.status).filter(|s| *s != Status::Disabled).max().unwrap_or(Status::Pass)
    } else {
        overall_status
    };
    r.status = combine(overall_status, &r.endpoints);
    r.reason = reason(est, &r, &o, overall_status, t, p.min_samples);
    r
}

/// Every listed endpoint's part: the family judged at the widened confidence with Holm-adjusted
/// p-values, the others disabled or inconclusive.
fn endpoints<E: Estimator>(est: &E, ctx: &Ctx<'_>) -> Vec<EndpointCheck> {
    let family = ctx.family(est);
    let conf = ctx.endpoint_confidence(family.len());
    let estimates: Vec<Estimate> = family.iter().map(|&i| est.estimate(ctx.routes[i], conf)).collect();
    let adjusted = holm(&estimates.iter().map(|e| e.p_value.unwrap_or(1.0)).collect::<Vec<_>>());
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
            value: e.value,
            ci: e.ci,
            p_value: e.p_value,
            p_adjusted: None,
            n: e.n,
            reason,
            fields: e.fields,
        });
    }
    out
}

/// Three-way decision for the whole run: fail when the interval is wholly beyond `warn`, pass
/// when wholly within `pass`, warn in between.
pub(super) fn decide(ci: (f64, f64), t: Check) -> Status {
    if ci.0 > t.warn {
        Status::Fail
    } else if ci.1 <= t.pass {
        Status::Pass
    } else {
        Status::Warn
    }
}

/// An endpoint's decision: raises only on evidence.
pub(super) fn escalate(ci: (f64, f64), t: Check) -> Status {
    if ci.0 > t.warn {
        Status::Fail
    } else if ci.0 > t.pass {
        Status::Warn
    } else {
        Status::Pass
    }
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
        Status::Inconclusive => format!("{} {} overall, fewer than min_samples = {min_samples}", r.n, E::SAMPLES),
        Status::Fail | Status::Warn => {
            let drivers: Vec<&EndpointCheck> = r.endpoints.iter().filter(|e| e.status == r.status).collect();
            let top = match drivers.first() {
                Some(e) if overall_status != r.status || E::COUNTS => e.reason.clone(),
                _ => {
                    // Fail: the interval lies wholly beyond the fail threshold; warn: it is not
                    // wholly within the pass threshold.
                    let (how, limit) =
                        if r.status == Status::Fail { ("wholly above", t.warn) } else { ("not wholly within", t.pass) };
                    let of = if r.threshold_unit == Unit::Ratio { " the baseline's" } else { "" };
                    let finding = est.finding(OVERALL, overall, r.p_value);
                    format!("{finding}: {how} {}{of}", r.threshold_unit.format(limit))
                }
            };
            let shown = usize::from(overall_status != r.status || E::COUNTS);
            format!("{top}{}", more::<E>(&drivers[shown.min(drivers.len())..], &drivers))
        }
        _ => est.passed(overall, t),
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

    const T: Check = Check { enabled: true, pass: 0.1, warn: 0.2 };

    #[test]
    fn decisions_rest_on_the_interval() {
        assert_eq!(decide((0.01, 0.09), T), Status::Pass);
        assert_eq!(decide((0.05, 0.15), T), Status::Warn);
        assert_eq!(decide((0.15, 0.40), T), Status::Warn, "straddling the fail threshold is not evidence");
        assert_eq!(decide((0.21, 0.40), T), Status::Fail);
        // An endpoint only raises on evidence: a wide interval around 0 does not warn.
        assert_eq!(escalate((-0.3, 0.5), T), Status::Pass);
        assert_eq!(escalate((0.12, 0.5), T), Status::Warn);
        assert_eq!(escalate((0.25, 0.5), T), Status::Fail);
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
