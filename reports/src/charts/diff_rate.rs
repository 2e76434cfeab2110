//! Diff rate per endpoint against the policy's threshold.

use super::axis::format_percent;
use super::bars::{self, BarSpec, MAX_CATEGORIES, Series, Threshold};
use super::{ChartKind, ChartOptions, Heading, Png, count, draw_no_data, palette, render};
use crate::Result;

/// One endpoint's diff rate: the share of its pairs with a real (not noise, not explained,
/// beyond tolerance) difference, as a fraction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EndpointDiffRate {
    /// The route template (`GET /users/{id}`).
    pub endpoint: String,
    /// Diff rate, 0..=1.
    pub rate: f64,
}

/// Draws one bar per endpoint, highest rate first, with the policy's threshold as a dashed
/// line; bars over the threshold are vermillion (and lie right of the line, so colour is never
/// the only cue). At most 15 endpoints are drawn; the subtitle says how many others there were.
pub fn diff_rates(rows: &[EndpointDiffRate], threshold: f64, opts: &ChartOptions) -> Result<Png> {
    let mut sorted: Vec<&EndpointDiffRate> = rows.iter().collect();
    sorted.sort_by(|a, b| key(b.rate).total_cmp(&key(a.rate)).then(a.endpoint.cmp(&b.endpoint)));
    let shown = &sorted[..sorted.len().min(MAX_CATEGORIES)];
    let over = rows.iter().filter(|r| r.rate > threshold).count();
    let mut subtitle =
        format!("{} endpoints · {} over the {} threshold", count(rows.len()), count(over), format_percent(threshold));
    if shown.len() < sorted.len() {
        subtitle.push_str(&format!(" · highest {} shown", shown.len()));
    }
    let heading = Heading { title: "Diff rate per endpoint".to_owned(), subtitle };
    if shown.is_empty() {
        return render(ChartKind::DiffRates, opts, &heading, |area| draw_no_data(area, "no endpoints to show"));
    }
    let recolor = move |_: usize, v: f64| if v > threshold { palette::ALERT } else { palette::NEUTRAL };
    let spec = BarSpec {
        categories: shown.iter().map(|r| r.endpoint.as_str()).collect(),
        series: vec![Series { label: "", color: palette::NEUTRAL, values: shown.iter().map(|r| r.rate).collect() }],
        x_desc: "share of pairs with a real difference",
        threshold: threshold
            .is_finite()
            .then(|| Threshold { value: threshold, label: format!("threshold {}", format_percent(threshold)) }),
        recolor: Some(&recolor),
        extra_legend: vec![
            ("within threshold".to_owned(), palette::NEUTRAL),
            ("over threshold".to_owned(), palette::ALERT),
        ],
    };
    render(ChartKind::DiffRates, opts, &heading, |area| bars::draw(area, &spec))
}

fn key(v: f64) -> f64 {
    if v.is_finite() { v } else { f64::NEG_INFINITY }
}
