//! The judge: from an [`Analysis`] and a [`Policy`] to a [`Verdict`].
//!
//! Decisions rest on evidence, not point estimates. For the whole run, an estimated figure
//! fails when its confidence interval lies wholly beyond the fail (`warn`) threshold, passes
//! when it lies wholly within the pass threshold, and warns in between. Each endpoint is judged
//! too, with its interval widened for the number of endpoints judged (Bonferroni: confidence
//! `1 - (1 - c) / m`) and its p-values Holm-adjusted; an endpoint can only *raise* a check's
//! status, and only on evidence (its interval wholly beyond a threshold) — a small endpoint
//! whose interval is merely wide does not warn. Figures with fewer samples than `min_samples`
//! are inconclusive, not passed.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::aggregate::{self, EndpointRow};
use crate::error::Result;
use crate::pipeline::{Analysis, RouteStats, top};
use crate::policy::{Check, CheckId, Policy};
use crate::stats::{
    Bootstrap, hodges_lehmann, holm, ks_two_sample, mcnemar, quantile_deltas, wilcoxon_signed_rank, wilson,
};
use crate::verdict::{
    CheckResult, Ci, CriticalError, EndpointCheck, FieldCount, LatencySummary, Outputs, Statistic, Status, Threshold,
    Verdict,
};

const QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];
const OVERALL: &str = "(all)";

/// Judges `analysis` under `policy`; aggregates `pairs.parquet` with polars for the endpoints table.
pub fn judge(analysis: &Analysis, policy: &Policy) -> Result<Verdict> {
    let (overall_row, endpoint_rows) = aggregate::endpoints(&analysis.pairs_file)?;
    Ok(judge_with_rows(analysis, policy, overall_row, endpoint_rows))
}

/// Three-way decision for the whole run: fail when the interval is wholly beyond `warn`, pass
/// when wholly within `pass`, warn in between.
fn decide(ci: (f64, f64), t: Check) -> Status {
    if ci.0 > t.warn {
        Status::Fail
    } else if ci.1 <= t.pass {
        Status::Pass
    } else {
        Status::Warn
    }
}

/// An endpoint's decision: raises only on evidence.
fn escalate(ci: (f64, f64), t: Check) -> Status {
    if ci.0 > t.warn {
        Status::Fail
    } else if ci.0 > t.pass {
        Status::Warn
    } else {
        Status::Pass
    }
}

fn combine(overall: Status, endpoints: &[EndpointCheck]) -> Status {
    let worst = endpoints.iter().map(|e| e.status).filter(|s| matches!(s, Status::Fail | Status::Warn)).max();
    match (overall, worst) {
        (_, Some(Status::Fail)) | (Status::Fail, _) => Status::Fail,
        (Status::Inconclusive, _) => Status::Inconclusive,
        (o, Some(w)) => o.max(w),
        (o, None) => o,
    }
}

fn pct(v: f64) -> String {
    format!("{:+.1}%", v * 100.0)
}

fn share(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
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

fn drivers(endpoints: &[EndpointCheck], status: Status) -> String {
    let names: Vec<String> =
        endpoints.iter().filter(|e| e.status == status).take(5).map(|e| e.reason.clone()).collect();
    names.join("; ")
}

struct Ctx<'a> {
    a: &'a Analysis,
    p: &'a Policy,
}

impl Ctx<'_> {
    /// Every route with whether it has enough samples (`n`) for its minimum.
    fn judged<'r>(
        &'r self,
        n: impl Fn(&RouteStats) -> u64 + 'r,
    ) -> impl Iterator<Item = (&'r String, &'r RouteStats, bool)> + 'r {
        self.a.routes.iter().map(move |(r, s)| (r, s, n(s) >= self.p.min_samples_for(r)))
    }
}

/// Latency statistics of one scope at `confidence`.
fn latency_summary(route: &str, s: &RouteStats, confidence: f64, p: &Policy) -> LatencySummary {
    let items = s.latency.items();
    let b: Vec<f64> = items.iter().map(|x| x.0).collect();
    let c: Vec<f64> = items.iter().map(|x| x.1).collect();
    let d: Vec<f64> = items.iter().map(|x| x.1 - x.0).collect();
    let enough = items.len() >= 2;
    let seed = p.seed ^ xxhash_rust::xxh3::xxh3_64(route.as_bytes());
    LatencySummary {
        route: route.to_owned(),
        n: items.len() as u64,
        seen: s.latency.seen(),
        quantiles: if enough {
            quantile_deltas(
                &b,
                &c,
                &QUANTILES,
                Bootstrap { resamples: p.bootstrap_resamples, confidence, seed, max_resample: 20_000 },
            )
        } else {
            Vec::new()
        },
        wilcoxon: enough.then(|| wilcoxon_signed_rank(&d)),
        hodges_lehmann: if enough { hodges_lehmann(&d, confidence) } else { None },
        ks: enough.then(|| ks_two_sample(&b, &c)),
    }
}

pub(crate) fn judge_with_rows(
    a: &Analysis,
    p: &Policy,
    overall_row: EndpointRow,
    endpoint_rows: Vec<EndpointRow>,
) -> Verdict {
    let ctx = Ctx { a, p };
    let recorded = a.inputs.recorded_baseline();
    let latency_judged = !recorded || p.judge_recorded_latency;

    // Latency statistics, overall and per endpoint, in parallel.
    let lat_judged: Vec<(&String, &RouteStats, bool)> = ctx.judged(|s| s.latency.items().len() as u64).collect();
    let m_lat = lat_judged.iter().filter(|x| x.2).count().max(1);
    let endpoint_conf = 1.0 - (1.0 - p.confidence) / m_lat as f64;
    let mut scopes: Vec<(&str, &RouteStats, f64)> = vec![(OVERALL, &a.overall, p.confidence)];
    scopes.extend(lat_judged.iter().map(|(r, s, _)| (r.as_str(), *s, endpoint_conf)));
    let latency: Vec<LatencySummary> = scopes.par_iter().map(|(r, s, conf)| latency_summary(r, s, *conf, p)).collect();
    let lat_by_route: BTreeMap<&str, &LatencySummary> = latency.iter().map(|l| (l.route.as_str(), l)).collect();

    let mut checks = Vec::new();
    checks.push(latency_p99(&ctx, &lat_judged, &lat_by_route, latency_judged, recorded));
    checks.push(latency_shape(&ctx, &lat_judged, &lat_by_route, latency_judged, recorded));
    checks.push(error_rate(&ctx));
    let (critical, critical_errors) = critical_errors(&ctx);
    checks.push(critical);
    checks.push(diff_rate(&ctx));
    checks.push(breaking(&ctx));

    let verdict = checks
        .iter()
        .map(|c| c.status)
        .filter(|s| matches!(s, Status::Pass | Status::Warn | Status::Fail | Status::Inconclusive))
        .fold(Status::Pass, |acc, s| match (acc, s) {
            (Status::Fail, _) | (_, Status::Fail) => Status::Fail,
            (Status::Inconclusive, _) | (_, Status::Inconclusive) => Status::Inconclusive,
            (x, y) => x.max(y),
        });
    let reason = match verdict {
        Status::Fail | Status::Warn | Status::Inconclusive => {
            let parts: Vec<String> = checks
                .iter()
                .filter(|c| c.status == verdict)
                .map(|c| format!("{}: {}", c.id.as_str(), c.reason))
                .collect();
            parts.join(" | ")
        }
        _ => format!("every check passed on {} pairs", a.inputs.pairs_analyzed),
    };
    Verdict {
        schema_version: crate::verdict::SCHEMA_VERSION,
        tool: format!("shadowdiff {}", env!("CARGO_PKG_VERSION")),
        verdict,
        exit_code: verdict.exit_code(p.fail_on),
        fail_on: p.fail_on,
        reason,
        inputs: a.inputs.clone(),
        overall: overall_row,
        endpoints: endpoint_rows,
        checks,
        latency,
        critical_errors,
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

fn disabled(id: CheckId, title: &'static str, unit: &'static str, t: Check) -> CheckResult {
    CheckResult {
        id,
        title,
        status: Status::Disabled,
        reason: "disabled in the policy".into(),
        value: None,
        unit,
        threshold: Threshold { pass: t.pass, warn: t.warn },
        threshold_unit: if id == CheckId::ErrorRate { "ratio" } else { unit },
        statistic: None,
        p_value: None,
        ci: None,
        n: 0,
        endpoints: Vec::new(),
    }
}

fn latency_p99(
    ctx: &Ctx<'_>,
    judged: &[(&String, &RouteStats, bool)],
    lat: &BTreeMap<&str, &LatencySummary>,
    comparable: bool,
    recorded: bool,
) -> CheckResult {
    let (id, title, unit) = (CheckId::LatencyP99, "p99 latency delta", "relative");
    let t = ctx.p.checks.latency_p99;
    if !t.enabled {
        return disabled(id, title, unit, t);
    }
    let mut r = disabled(id, title, unit, t);
    let overall = lat.get(OVERALL).copied();
    let p99 = |l: &LatencySummary| l.quantiles.iter().find(|q| q.q == 0.99).cloned();
    if let Some(q) = overall.and_then(p99) {
        r.value = Some(q.relative);
        r.ci = Some(Ci { low: q.relative_low, high: q.relative_high, confidence: q.confidence });
    }
    if let Some(w) = overall.and_then(|l| l.wilcoxon.as_ref()) {
        r.statistic = Some(Statistic { name: "wilcoxon_signed_rank", value: w.statistic });
        r.p_value = Some(w.p_value);
    }
    r.n = overall.map_or(0, |l| l.n);
    if !comparable {
        r.status = Status::NotComparable;
        r.reason = if recorded {
            "the baseline side was recorded in another run; latency is not comparable (set judge_recorded_latency = true to judge it)".into()
        } else {
            "not comparable".into()
        };
        return r;
    }
    let overall_status = match (&r.ci, r.n >= ctx.p.min_samples) {
        (Some(ci), true) if ci.low.is_finite() => decide((ci.low, ci.high), t),
        _ => Status::Inconclusive,
    };
    for (route, _, ok) in judged {
        let tr = ctx.p.checks_for(route).latency_p99;
        let Some(l) = lat.get(route.as_str()) else { continue };
        let q = p99(l);
        let (status, reason) = match (&q, ok, tr.enabled) {
            (_, _, false) => (Status::Disabled, format!("{route}: disabled")),
            (Some(q), true, true) if q.relative_low.is_finite() => {
                let s = escalate((q.relative_low, q.relative_high), tr);
                (
                    s,
                    format!(
                        "{route} p99 {} (CI {} … {}, n={})",
                        pct(q.relative),
                        pct(q.relative_low),
                        pct(q.relative_high),
                        l.n
                    ),
                )
            }
            _ => (
                Status::Inconclusive,
                format!("{route}: {} latency pairs, fewer than {}", l.n, ctx.p.min_samples_for(route)),
            ),
        };
        r.endpoints.push(EndpointCheck {
            route: (*route).clone(),
            status,
            value: q.as_ref().map(|q| q.relative),
            ci: q.as_ref().map(|q| Ci { low: q.relative_low, high: q.relative_high, confidence: q.confidence }),
            p_value: l.wilcoxon.as_ref().map(|w| w.p_value),
            p_adjusted: None,
            n: l.n,
            reason,
            fields: Vec::new(),
        });
    }
    let ps: Vec<f64> = r.endpoints.iter().map(|e| e.p_value.unwrap_or(1.0)).collect();
    for (e, adj) in r.endpoints.iter_mut().zip(holm(&ps)) {
        e.p_adjusted = Some(adj);
    }
    order(&mut r.endpoints);
    r.status = combine(overall_status, &r.endpoints);
    r.reason = match (r.status, &r.ci) {
        (Status::Inconclusive, _) => {
            format!("{} latency pairs overall, fewer than min_samples = {}", r.n, ctx.p.min_samples)
        }
        (Status::Fail | Status::Warn, Some(ci)) if overall_status == r.status => {
            let extra = drivers(&r.endpoints, r.status);
            format!(
                "p99 {} overall (CI {} … {}) against pass ≤ {} / warn ≤ {}{}",
                pct(r.value.unwrap_or(f64::NAN)),
                pct(ci.low),
                pct(ci.high),
                pct(t.pass),
                pct(t.warn),
                if extra.is_empty() { String::new() } else { format!("; {extra}") }
            )
        }
        (Status::Fail | Status::Warn, _) => {
            format!(
                "{} beyond the {} threshold",
                drivers(&r.endpoints, r.status),
                if r.status == Status::Fail { "fail" } else { "pass" }
            )
        }
        (_, Some(ci)) => format!(
            "p99 {} overall (CI {} … {}) within {}",
            pct(r.value.unwrap_or(f64::NAN)),
            pct(ci.low),
            pct(ci.high),
            pct(t.pass)
        ),
        _ => "no latency pairs".into(),
    };
    r
}

fn latency_shape(
    ctx: &Ctx<'_>,
    judged: &[(&String, &RouteStats, bool)],
    lat: &BTreeMap<&str, &LatencySummary>,
    comparable: bool,
    recorded: bool,
) -> CheckResult {
    let (id, title, unit) = (CheckId::LatencyShape, "latency distribution shape (KS)", "ks_d");
    let t = ctx.p.checks.latency_shape;
    if !t.enabled {
        return disabled(id, title, unit, t);
    }
    let mut r = disabled(id, title, unit, t);
    let overall = lat.get(OVERALL).and_then(|l| l.ks.clone());
    r.n = lat.get(OVERALL).map_or(0, |l| l.n);
    if let Some(ks) = &overall {
        r.value = Some(ks.statistic);
        r.statistic = Some(Statistic { name: "ks_d", value: ks.statistic });
        r.p_value = Some(ks.p_value);
    }
    if !comparable {
        r.status = Status::NotComparable;
        r.reason = if recorded {
            "the baseline side was recorded in another run; latency is not comparable".into()
        } else {
            "not comparable".into()
        };
        return r;
    }
    let alpha = ctx.p.alpha;
    let overall_status = match &overall {
        Some(ks) if r.n >= ctx.p.min_samples => {
            if ks.p_value < alpha && ks.statistic >= t.warn {
                Status::Warn
            } else {
                Status::Pass
            }
        }
        _ => Status::Inconclusive,
    };
    let mut eps: Vec<(String, Option<crate::stats::KsResult>, u64, bool, Check)> = Vec::new();
    for (route, _, ok) in judged {
        let l = lat.get(route.as_str());
        eps.push((
            (*route).clone(),
            l.and_then(|l| l.ks.clone()),
            l.map_or(0, |l| l.n),
            *ok,
            ctx.p.checks_for(route).latency_shape,
        ));
    }
    let ps: Vec<f64> = eps.iter().filter(|e| e.3).map(|e| e.1.as_ref().map_or(1.0, |k| k.p_value)).collect();
    let mut adj = holm(&ps).into_iter();
    for (route, ks, n, ok, tr) in eps {
        let p_adj = if ok { adj.next() } else { None };
        let (status, reason) = match (&ks, p_adj) {
            (_, _) if !tr.enabled => (Status::Disabled, format!("{route}: disabled")),
            (Some(k), Some(pa)) => {
                let s = if pa < alpha && k.statistic >= tr.warn { Status::Warn } else { Status::Pass };
                (s, format!("{route} D={:.3} (p={:.2e} adjusted, n={n})", k.statistic, pa))
            }
            _ => (Status::Inconclusive, format!("{route}: {n} latency pairs, too few")),
        };
        r.endpoints.push(EndpointCheck {
            route,
            status,
            value: ks.as_ref().map(|k| k.statistic),
            ci: None,
            p_value: ks.as_ref().map(|k| k.p_value),
            p_adjusted: p_adj,
            n,
            reason,
            fields: Vec::new(),
        });
    }
    order(&mut r.endpoints);
    r.status = combine(overall_status, &r.endpoints);
    r.reason = match r.status {
        Status::Inconclusive => {
            format!("{} latency pairs overall, fewer than min_samples = {}", r.n, ctx.p.min_samples)
        }
        Status::Warn => {
            let d = drivers(&r.endpoints, Status::Warn);
            if d.is_empty() {
                format!(
                    "the latency distribution changed shape overall (D={:.3}, p={:.2e})",
                    r.value.unwrap_or(f64::NAN),
                    r.p_value.unwrap_or(f64::NAN)
                )
            } else {
                format!("the latency distribution changed shape: {d}")
            }
        }
        _ => format!("no significant shape change (D={:.3}, α={alpha})", r.value.unwrap_or(f64::NAN)),
    };
    r
}

fn error_rate(ctx: &Ctx<'_>) -> CheckResult {
    let (id, title, unit) = (CheckId::ErrorRate, "canary error rate against the baseline's", "share");
    let t = ctx.p.checks.error_rate;
    if !t.enabled {
        return disabled(id, title, unit, t);
    }
    let mut r = disabled(id, title, unit, t);
    let alpha = ctx.p.alpha;
    // Returns (status, value, ci, p, reason) for one scope.
    let eval = |route: &str, s: &RouteStats, p_used: f64, conf: f64, tr: Check, overall: bool| {
        let e = &s.errors;
        let n = e.n.max(1) as f64;
        let (b_rate, c_rate) = (e.baseline as f64 / n, e.canary as f64 / n);
        let w = wilson(e.canary, e.n, conf);
        let limits = Check { enabled: true, pass: b_rate * tr.pass, warn: b_rate * tr.warn };
        let status = if p_used >= alpha || e.canary_only <= e.baseline_only {
            Status::Pass
        } else if overall {
            decide((w.low, w.high), limits)
        } else {
            escalate((w.low, w.high), limits)
        };
        let reason = format!(
            "{route} canary {} (CI {} … {}) vs baseline {} (McNemar p={:.2e}{}, n={})",
            share(c_rate),
            share(w.low),
            share(w.high),
            share(b_rate),
            p_used,
            if overall { "" } else { " adjusted" },
            e.n
        );
        (status, c_rate, Ci { low: w.low, high: w.high, confidence: conf }, reason)
    };
    let o = &ctx.a.overall;
    let mc = mcnemar(o.errors.canary_only, o.errors.baseline_only);
    r.n = o.errors.n;
    r.statistic = Some(Statistic {
        name: if mc.exact { "mcnemar_exact_min_discordant" } else { "mcnemar_chi2" },
        value: mc.statistic,
    });
    r.p_value = Some(mc.p_value);
    let (os, value, ci, oreason) = eval("overall", o, mc.p_value, ctx.p.confidence, t, true);
    let overall_status = if r.n < ctx.p.min_samples { Status::Inconclusive } else { os };
    r.value = Some(value);
    r.ci = Some(ci);
    let judged: Vec<(&String, &RouteStats, bool)> = ctx.judged(|s| s.errors.n).collect();
    let m = judged.iter().filter(|x| x.2).count().max(1);
    let conf = 1.0 - (1.0 - ctx.p.confidence) / m as f64;
    let ps: Vec<f64> = judged
        .iter()
        .filter(|x| x.2)
        .map(|(_, s, _)| mcnemar(s.errors.canary_only, s.errors.baseline_only).p_value)
        .collect();
    let mut adj = holm(&ps).into_iter();
    for (route, s, ok) in judged {
        let tr = ctx.p.checks_for(route).error_rate;
        let raw_p = mcnemar(s.errors.canary_only, s.errors.baseline_only).p_value;
        let (status, value, ci, reason, pa) = if !tr.enabled {
            (Status::Disabled, None, None, format!("{route}: disabled"), None)
        } else if ok {
            let pa = adj.next().unwrap_or(1.0);
            let (st, v, ci, reason) = eval(route.as_str(), s, pa, conf, tr, false);
            (st, Some(v), Some(ci), reason, Some(pa))
        } else {
            (
                Status::Inconclusive,
                None,
                None,
                format!("{route}: {} pairs, fewer than {}", s.errors.n, ctx.p.min_samples_for(route)),
                None,
            )
        };
        r.endpoints.push(EndpointCheck {
            route: route.clone(),
            status,
            value,
            ci,
            p_value: Some(raw_p),
            p_adjusted: pa,
            n: s.errors.n,
            reason,
            fields: Vec::new(),
        });
    }
    order(&mut r.endpoints);
    r.status = combine(overall_status, &r.endpoints);
    r.reason = match r.status {
        Status::Inconclusive => format!("{} pairs overall, fewer than min_samples = {}", r.n, ctx.p.min_samples),
        Status::Fail | Status::Warn => {
            let d = drivers(&r.endpoints, r.status);
            if overall_status == r.status || d.is_empty() {
                format!("{oreason}{}", if d.is_empty() { String::new() } else { format!("; {d}") })
            } else {
                d
            }
        }
        _ => oreason,
    };
    r
}

fn critical_errors(ctx: &Ctx<'_>) -> (CheckResult, Vec<CriticalError>) {
    let (id, title, unit) = (CheckId::CriticalErrors, "errors the baseline never shows", "count");
    let t = ctx.p.checks.critical_errors;
    let mut list = Vec::new();
    // Per endpoint, and over the whole run: sparse errors spread over many endpoints are
    // evidence together even when no single endpoint has enough.
    let scopes =
        std::iter::once((&ctx.a.overall, OVERALL.to_owned())).chain(ctx.a.routes.iter().map(|(r, s)| (s, r.clone())));
    for (s, route) in scopes {
        let route = &route;
        if route != OVERALL && !ctx.p.checks_for(route).critical_errors.enabled {
            continue;
        }
        for (kind, k) in &s.errors.kinds {
            if k.baseline == 0 && k.canary > 0 {
                // One-sided sign test: under "no difference" each such error is as likely on
                // either side, so the baseline showing none of k has probability 2^-k.
                let p = 0.5f64.powi(k.canary.min(1074) as i32);
                list.push(CriticalError {
                    route: route.clone(),
                    kind: kind.clone(),
                    canary: k.canary,
                    p_value: p,
                    p_adjusted: p,
                    confirmed: false,
                });
            }
        }
    }
    let adj = holm(&list.iter().map(|c| c.p_value).collect::<Vec<_>>());
    for (c, a) in list.iter_mut().zip(adj) {
        c.p_adjusted = a;
        c.confirmed = a < ctx.p.alpha;
    }
    list.sort_by(|a, b| b.canary.cmp(&a.canary).then_with(|| a.route.cmp(&b.route)).then_with(|| a.kind.cmp(&b.kind)));
    if !t.enabled {
        return (disabled(id, title, unit, t), list);
    }
    let mut r = disabled(id, title, unit, t);
    r.n = ctx.a.overall.errors.n;
    let confirmed: Vec<&CriticalError> = list.iter().filter(|c| c.confirmed).collect();
    r.value = Some(confirmed.iter().map(|c| c.canary).sum::<u64>() as f64);
    r.p_value = list.iter().map(|c| c.p_adjusted).reduce(f64::min);
    for c in &list {
        r.endpoints.push(EndpointCheck {
            route: c.route.clone(),
            status: if c.confirmed { Status::Fail } else { Status::Pass },
            value: Some(c.canary as f64),
            ci: None,
            p_value: Some(c.p_value),
            p_adjusted: Some(c.p_adjusted),
            n: c.canary,
            reason: format!(
                "{} `{}` ×{} in the canary, never in the baseline (p={:.2e} adjusted)",
                c.route, c.kind, c.canary, c.p_adjusted
            ),
            fields: Vec::new(),
        });
    }
    r.status = if !confirmed.is_empty() {
        Status::Fail
    } else if r.n < ctx.p.min_samples {
        Status::Inconclusive
    } else {
        Status::Pass
    };
    r.reason = match r.status {
        Status::Fail => drivers(&r.endpoints, Status::Fail),
        Status::Inconclusive => format!("{} pairs overall, fewer than min_samples = {}", r.n, ctx.p.min_samples),
        _ if list.is_empty() => "no error kind appears only in the canary".into(),
        _ => format!("{} canary-only error kind(s) seen, none with evidence at α={}", list.len(), ctx.p.alpha),
    };
    (r, list)
}

fn field_counts(map: &BTreeMap<String, u64>) -> Vec<FieldCount> {
    top(map, 5).into_iter().map(|(field, count)| FieldCount { field, count }).collect()
}

fn fields_text(f: &[FieldCount]) -> String {
    f.iter().map(|f| format!("{} ×{}", f.field, f.count)).collect::<Vec<_>>().join(", ")
}

fn diff_rate(ctx: &Ctx<'_>) -> CheckResult {
    let (id, title, unit) = (CheckId::DiffRate, "pairs with a real difference", "share");
    let t = ctx.p.checks.diff_rate;
    if !t.enabled {
        return disabled(id, title, unit, t);
    }
    let mut r = disabled(id, title, unit, t);
    let o = &ctx.a.overall;
    let w = wilson(o.real_pairs, o.compared, ctx.p.confidence);
    r.n = o.compared;
    r.value = Some(w.estimate);
    r.ci = Some(Ci { low: w.low, high: w.high, confidence: w.confidence });
    r.statistic = Some(Statistic { name: "real_pairs", value: o.real_pairs as f64 });
    let overall_status = if r.n < ctx.p.min_samples { Status::Inconclusive } else { decide((w.low, w.high), t) };
    let judged: Vec<(&String, &RouteStats, bool)> = ctx.judged(|s| s.compared).collect();
    let m = judged.iter().filter(|x| x.2).count().max(1);
    let conf = 1.0 - (1.0 - ctx.p.confidence) / m as f64;
    for (route, s, ok) in judged {
        let tr = ctx.p.checks_for(route).diff_rate;
        let w = wilson(s.real_pairs, s.compared, conf);
        let fields = field_counts(&s.real_fields);
        let status = if !tr.enabled {
            Status::Disabled
        } else if ok {
            escalate((w.low, w.high), tr)
        } else if s.real_pairs > 0 {
            Status::Inconclusive
        } else {
            Status::Pass
        };
        let reason = format!(
            "{route} {} (CI {} … {}, {} of {} pairs){}",
            share(w.estimate),
            share(w.low),
            share(w.high),
            s.real_pairs,
            s.compared,
            if fields.is_empty() { String::new() } else { format!(" in {}", fields_text(&fields)) }
        );
        r.endpoints.push(EndpointCheck {
            route: route.clone(),
            status,
            value: Some(w.estimate),
            ci: Some(Ci { low: w.low, high: w.high, confidence: conf }),
            p_value: None,
            p_adjusted: None,
            n: s.compared,
            reason,
            fields,
        });
    }
    order(&mut r.endpoints);
    r.status = combine(overall_status, &r.endpoints);
    let top_routes: Vec<String> =
        r.endpoints.iter().filter(|e| e.value.unwrap_or(0.0) > 0.0).take(3).map(|e| e.reason.clone()).collect();
    r.reason = match r.status {
        Status::Inconclusive => format!("{} compared pairs, fewer than min_samples = {}", r.n, ctx.p.min_samples),
        _ => format!(
            "{} of compared pairs differ (CI {} … {}; pass ≤ {}){}",
            share(w.estimate),
            share(w.low),
            share(w.high),
            share(t.pass),
            if top_routes.is_empty() { String::new() } else { format!(": {}", top_routes.join("; ")) }
        ),
    };
    r
}

fn breaking(ctx: &Ctx<'_>) -> CheckResult {
    let (id, title, unit) = (CheckId::Breaking, "pairs with a breaking difference", "count");
    let t = ctx.p.checks.breaking;
    if !t.enabled {
        return disabled(id, title, unit, t);
    }
    let mut r = disabled(id, title, unit, t);
    let o = &ctx.a.overall;
    r.n = o.compared;
    r.value = Some(o.breaking_pairs as f64);
    let count_status = |k: u64, t: Check| {
        if k as f64 > t.warn {
            Status::Fail
        } else if k as f64 > t.pass {
            Status::Warn
        } else {
            Status::Pass
        }
    };
    let mut overall_status = count_status(o.breaking_pairs, t);
    if overall_status == Status::Pass && r.n < ctx.p.min_samples {
        overall_status = Status::Inconclusive;
    }
    for (route, s) in &ctx.a.routes {
        if s.breaking_pairs == 0 {
            continue;
        }
        let tr = ctx.p.checks_for(route).breaking;
        let fields = field_counts(&s.breaking_fields);
        r.endpoints.push(EndpointCheck {
            route: route.clone(),
            status: if tr.enabled { count_status(s.breaking_pairs, tr) } else { Status::Disabled },
            value: Some(s.breaking_pairs as f64),
            ci: None,
            p_value: None,
            p_adjusted: None,
            n: s.compared,
            reason: format!("{route}: {} of {} pairs, in {}", s.breaking_pairs, s.compared, fields_text(&fields)),
            fields,
        });
    }
    order(&mut r.endpoints);
    // Per-endpoint overrides may allow what the overall count would fail.
    let endpoint_worst = r.endpoints.iter().map(|e| e.status).filter(|s| *s != Status::Disabled).max();
    if !r.endpoints.is_empty() && overall_status != Status::Inconclusive {
        overall_status = endpoint_worst.unwrap_or(Status::Pass);
    }
    r.status = overall_status;
    r.reason = match r.status {
        Status::Inconclusive => format!("{} compared pairs, fewer than min_samples = {}", r.n, ctx.p.min_samples),
        Status::Pass if r.endpoints.is_empty() => "no breaking difference".into(),
        _ => format!(
            "{} pair(s) with a breaking difference: {}",
            o.breaking_pairs,
            r.endpoints.iter().take(5).map(|e| e.reason.clone()).collect::<Vec<_>>().join("; ")
        ),
    };
    r
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

    #[test]
    fn combining_overall_and_endpoints() {
        let ep = |status| EndpointCheck {
            route: "/r".into(),
            status,
            value: None,
            ci: None,
            p_value: None,
            p_adjusted: None,
            n: 0,
            reason: String::new(),
            fields: Vec::new(),
        };
        assert_eq!(combine(Status::Pass, &[ep(Status::Warn)]), Status::Warn);
        assert_eq!(combine(Status::Inconclusive, &[ep(Status::Warn)]), Status::Inconclusive);
        assert_eq!(combine(Status::Inconclusive, &[ep(Status::Fail)]), Status::Fail);
        assert_eq!(combine(Status::Warn, &[ep(Status::Inconclusive)]), Status::Warn);
    }
}
