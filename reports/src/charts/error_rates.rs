//! Per-endpoint error rates, baseline and canary side by side.

use super::bars::{self, BarSpec, MAX_CATEGORIES, Series};
use super::{ChartKind, ChartOptions, Heading, Png, count, draw_no_data, palette, render};
use crate::Result;

/// One endpoint's error rates, as fractions of its pairs (0.02 = 2%). What counts as an error
/// (5xx, a transport error, both) is the caller's definition; the report's prose says which.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EndpointErrorRate {
    /// The route template (`GET /users/{id}`).
    pub endpoint: String,
    /// Baseline error rate.
    pub baseline: f64,
    /// Canary error rate.
    pub canary: f64,
}

/// Draws grouped horizontal bars, baseline above canary, per endpoint, worst canary rate first.
/// At most 15 endpoints are drawn; the subtitle says how many others there were.
pub fn error_rates(rows: &[EndpointErrorRate], opts: &ChartOptions) -> Result<Png> {
    let mut sorted: Vec<&EndpointErrorRate> = rows.iter().collect();
    sorted.sort_by(|a, b| {
        key(b.canary)
            .total_cmp(&key(a.canary))
            .then(key(b.baseline).total_cmp(&key(a.baseline)))
            .then(a.endpoint.cmp(&b.endpoint))
    });
    let shown = &sorted[..sorted.len().min(MAX_CATEGORIES)];
    let mut subtitle = format!("{} endpoints, worst canary error rate first", count(rows.len()));
    if shown.len() < sorted.len() {
        subtitle = format!("worst {} of {} endpoints by canary error rate", shown.len(), count(rows.len()));
    }
    let heading = Heading { title: "Error rate per endpoint".to_owned(), subtitle };
    if shown.is_empty() {
        return render(ChartKind::ErrorRates, opts, &heading, |area| draw_no_data(area, "no endpoints to show"));
    }
    let spec = BarSpec {
        categories: shown.iter().map(|r| r.endpoint.as_str()).collect(),
        series: vec![
            Series { label: "baseline", color: palette::BASELINE, values: shown.iter().map(|r| r.baseline).collect() },
            Series { label: "canary", color: palette::CANARY, values: shown.iter().map(|r| r.canary).collect() },
        ],
        x_desc: "error rate (share of the endpoint's requests)",
        threshold: None,
        recolor: None,
        extra_legend: Vec::new(),
    };
    render(ChartKind::ErrorRates, opts, &heading, |area| bars::draw(area, &spec))
}

/// Sort key that puts NaN last.
fn key(v: f64) -> f64 {
    if v.is_finite() { v } else { f64::NEG_INFINITY }
}
