//! `/metrics`: the latest analysis at the server's default parameters as Prometheus series, in
//! the text format (version 0.0.4) that `prometheus-client` encodes. One collector reads the
//! latest verdict on each scrape, so a route that leaves the analysis leaves the exposition too.
//!
//! Statuses are gauges with a numeric encoding ([`status_value`]): `-2` disabled, `-1` not
//! comparable, `0` pass, `1` warn, `2` inconclusive, `3` fail — ordered by how much they matter,
//! so `>= 3` is a failure in an alert rule.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use shadowdiff_format::verdict::{EndpointRow, OVERALL, Status};

use super::gate::{Gate, Judged};

/// The numeric encoding of a status in `shadowdiff_verdict_status` and `shadowdiff_check_status`.
pub fn status_value(s: Status) -> f64 {
    match s {
        Status::Disabled => -2.0,
        Status::NotComparable => -1.0,
        Status::Pass => 0.0,
        Status::Warn => 1.0,
        Status::Inconclusive => 2.0,
        Status::Fail => 3.0,
    }
}

/// The exposition served at `/metrics`.
pub fn render(gate: &Arc<Gate>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(GateCollector { gate: Arc::clone(gate) }));
    let mut text = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail, and the collector fails only when the encoder does.
    let _ = prometheus_text::encode(&mut text, &registry);
    text
}

struct GateCollector {
    gate: Arc<Gate>,
}

impl std::fmt::Debug for GateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateCollector").finish_non_exhaustive()
    }
}

/// One gauge family: its descriptor, then a sample per label set.
fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> Result<(), std::fmt::Error> {
    encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)
}

/// A share, when its denominator is not zero.
fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Collector for GateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let g = &*self.gate;
        let mut analyses = encoder.encode_descriptor(
            "shadowdiff_serve_analyses",
            "Analyses the server ran, by outcome.",
            None,
            MetricType::Counter,
        )?;
        for (outcome, n) in [("ok", &g.analyses_ok), ("failed", &g.analyses_failed)] {
            analyses
                .encode_family(&[("outcome", outcome)])?
                .encode_counter::<NoLabelSet, _, u64>(&n.load(Ordering::Relaxed), None)?;
        }
        let latest: Option<Arc<Judged>> = g.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some(j) = latest else { return Ok(()) };
        let v = &j.verdict;
        gauge(
            &mut encoder,
            "shadowdiff_verdict_status",
            "The verdict: -2 disabled, -1 not comparable, 0 pass, 1 warn, 2 inconclusive, 3 fail.",
            status_value(v.verdict),
        )?;
        gauge(
            &mut encoder,
            "shadowdiff_pairs_analyzed",
            "Pairs the latest analysis judged.",
            v.inputs.pairs_analyzed as f64,
        )?;
        gauge(
            &mut encoder,
            "shadowdiff_analysis_age_seconds",
            "Seconds since the latest analysis finished.",
            j.finished.elapsed().as_secs_f64(),
        )?;
        gauge(
            &mut encoder,
            "shadowdiff_analysis_duration_seconds",
            "How long the latest analysis took.",
            j.took.as_secs_f64(),
        )?;
        let checks = || {
            v.checks.iter().flat_map(|c| {
                std::iter::once((c.id.as_str(), OVERALL, c.status, c.value))
                    .chain(c.endpoints.iter().map(move |e| (c.id.as_str(), e.route.as_str(), e.status, e.value)))
            })
        };
        gauges(
            &mut encoder,
            "shadowdiff_check_status",
            "Each check's status per route ((all) is the whole run): -2 disabled, -1 not comparable, 0 pass, 1 warn, 2 inconclusive, 3 fail.",
            checks().map(|(check, route, status, _)| ([("check", check), ("route", route)], status_value(status))),
        )?;
        gauges(
            &mut encoder,
            "shadowdiff_check_value",
            "Each check's figure per route, in the check's unit (see verdict.json's checks[].unit).",
            checks().filter_map(|(check, route, _, value)| {
                value.filter(|x| x.is_finite()).map(|x| ([("check", check), ("route", route)], x))
            }),
        )?;
        gauges(
            &mut encoder,
            "shadowdiff_latency_p99_delta_ratio",
            "The canary's p99 latency relative to the baseline's, minus one (0.1 is 10% slower), per route.",
            v.latency.iter().filter_map(|l| {
                let q = l.quantile(0.99)?;
                q.relative.is_finite().then_some(([("route", l.route.as_str())], q.relative))
            }),
        )?;
        let rows = || std::iter::once(&v.overall).chain(v.endpoints.iter());
        let route = |r: &EndpointRow| if r.route.is_empty() { OVERALL.to_owned() } else { r.route.clone() };
        let named: Vec<(String, &EndpointRow)> = rows().map(|r| (route(r), r)).collect();
        gauges(
            &mut encoder,
            "shadowdiff_error_ratio",
            "The share of pairs in which a side failed (transport error or 5xx), per route and side.",
            named.iter().flat_map(|(route, r)| {
                [("baseline", r.baseline_errors), ("canary", r.canary_errors)].into_iter().filter_map(
                    move |(side, n)| share(n, r.asked()).map(|x| ([("route", route.as_str()), ("side", side)], x)),
                )
            }),
        )?;
        gauges(
            &mut encoder,
            "shadowdiff_diff_rate",
            "The share of compared pairs with a real difference, per route.",
            named
                .iter()
                .filter_map(|(route, r)| share(r.different, r.compared).map(|x| ([("route", route.as_str())], x))),
        )?;
        gauges(
            &mut encoder,
            "shadowdiff_route_pairs",
            "Pairs per route in the latest analysis.",
            named.iter().map(|(route, r)| ([("route", route.as_str())], r.pairs as f64)),
        )
    }
}
