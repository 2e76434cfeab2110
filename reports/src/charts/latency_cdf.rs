//! Latency CDF overlay: both sides' latency distributions on one axis.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axis::{finite_sorted, format_number, log_ticks, nice_ticks, padded, quantile_sorted};
use super::{
    Axis, ChartKind, ChartOptions, DrawResult, Heading, Plot, Png, anchored, count, draw_no_data, legend, palette,
    plot, render,
};
use crate::Result;

/// Input of [`latency_cdf`]: every pair's latency per side, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct LatencyCdf<'a> {
    /// The name of the side the canary is compared with (`baseline`, `secondary`).
    pub reference: &'a str,
    /// That side's latencies (ms), any order.
    pub reference_ms: &'a [f64],
    /// Canary latencies (ms), any order.
    pub canary_ms: &'a [f64],
    /// Plot latency on a logarithmic axis: shows the body and the tail of a long-tailed
    /// distribution at once. Non-positive latencies are left out of a log axis (and counted).
    pub log_x: bool,
}

/// The most points drawn per curve; past it the ECDF is sampled (the tail more densely), which
/// keeps the PNG small and the drawing fast for a million pairs without changing its shape.
const MAX_POINTS: usize = 1500;

/// Draws both sides' empirical CDFs with p50 and p99 marked: guide lines at 0.5 and 0.99 and a
/// dashed drop line from each curve's crossing to the axis, values in the legend.
///
/// On a linear axis the x range ends a little past the larger p99.9 so that a few timeouts do
/// not squash the whole distribution into the left edge; the subtitle says how many samples
/// lie beyond it. The log axis shows everything.
pub fn latency_cdf(input: &LatencyCdf<'_>, opts: &ChartOptions) -> Result<Png> {
    let (baseline, dropped_b) = prepared(input.reference_ms, input.log_x);
    let (canary, dropped_c) = prepared(input.canary_ms, input.log_x);
    let reference = if input.reference.is_empty() { "baseline" } else { input.reference };
    let mut subtitle = format!("{reference} n = {} · canary n = {}", count(baseline.len()), count(canary.len()));
    if dropped_b + dropped_c > 0 {
        let what = if input.log_x { "non-positive or invalid" } else { "invalid" };
        subtitle.push_str(&format!(" · {} {what} latencies left out", count(dropped_b + dropped_c)));
    }
    let mut heading = Heading { title: format!("Latency distribution (CDF): {reference} vs canary"), subtitle };
    if baseline.is_empty() && canary.is_empty() {
        return render(ChartKind::LatencyCdf, opts, &heading, |area| {
            draw_no_data(area, "no latencies were recorded for either side")
        });
    }

    let both_min = first(&baseline).min(first(&canary));
    let both_max = last(&baseline).max(last(&canary));
    let (x_lo, x_hi, beyond) = if input.log_x {
        (both_min, both_max, 0)
    } else {
        let cut = quantile_sorted(&baseline, 0.999)
            .unwrap_or(f64::NEG_INFINITY)
            .max(quantile_sorted(&canary, 0.999).unwrap_or(f64::NEG_INFINITY));
        let hi = (cut * 1.05).min(both_max);
        let beyond = count_above(&baseline, hi) + count_above(&canary, hi);
        (both_min.min(hi), hi, beyond)
    };
    if beyond > 0 {
        heading.subtitle.push_str(&format!(
            " · axis ends at {} ms, {} slower samples beyond it",
            format_number(x_hi),
            count(beyond)
        ));
    }

    let to_x = |ms: f64| if input.log_x { ms.log10() } else { ms };
    let x_range = padded(to_x(x_lo), to_x(x_hi), 0.02);
    let x_ticks = if input.log_x { log_ticks(&x_range) } else { nice_ticks(&x_range, 9) };
    let log_x = input.log_x;
    let x_format = move |v: f64| format_number(if log_x { 10f64.powf(v) } else { v });
    let y_format = |v: f64| format!("{v:.2}").trim_end_matches('0').trim_end_matches('.').to_owned();
    let x_desc = if input.log_x { "latency (ms, log scale)" } else { "latency (ms)" };

    render(ChartKind::LatencyCdf, opts, &heading, |area| {
        let x = Axis { range: x_range.clone(), ticks: x_ticks, desc: x_desc, format: &x_format, grid: true };
        let y = Axis {
            range: 0.0..1.02,
            ticks: vec![0.0, 0.25, 0.5, 0.75, 1.0],
            desc: "fraction of requests ≤ x",
            format: &y_format,
            grid: true,
        };
        let mut chart = plot(area, &x, &y, 60)?;
        for q in [0.5, 0.99] {
            let style = palette::AXIS.stroke_width(1);
            chart.draw_series(DashedLineSeries::new(vec![(x_range.start, q), (x_range.end, q)], 3, 4, style))?;
        }
        for (values, color, name) in [(&baseline, palette::BASELINE, reference), (&canary, palette::CANARY, "canary")] {
            draw_side(&mut chart, values, color, name, &to_x, &x_range)?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        chart.draw_series([(0.5, "p50"), (0.99, "p99")].map(|(q, label)| {
            EmptyElement::at((x_range.end, q))
                + Text::new(label, (-6, -3), anchored(12, palette::MUTED, HPos::Right, VPos::Bottom))
        }))?;
        Ok(())
    })
}

fn draw_side(
    chart: &mut Plot<'_, '_>,
    values: &[f64],
    color: RGBColor,
    name: &str,
    to_x: &dyn Fn(f64) -> f64,
    x_range: &std::ops::Range<f64>,
) -> DrawResult {
    let label = match (quantile_sorted(values, 0.5), quantile_sorted(values, 0.99)) {
        (Some(p50), Some(p99)) => {
            format!("{name}: p50 {} ms · p99 {} ms", format_number(p50), format_number(p99))
        }
        _ => format!("{name}: no data"),
    };
    let clamp = |x: f64| x.clamp(x_range.start, x_range.end);
    let points: Vec<(f64, f64)> = ecdf_points(values).into_iter().map(|(ms, f)| (clamp(to_x(ms)), f)).collect();
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(3)))?
        .label(label)
        .legend(super::line_swatch(color, 3));
    for q in [0.5, 0.99] {
        if let Some(v) = quantile_sorted(values, q) {
            let x = to_x(v);
            if x < x_range.start || x > x_range.end {
                continue;
            }
            chart.draw_series(DashedLineSeries::new(vec![(x, 0.0), (x, q)], 5, 4, color.stroke_width(2)))?;
            chart.draw_series(std::iter::once(Circle::new((x, q), 5, color.filled())))?;
        }
    }
    Ok(())
}

/// Finite values (positive ones, for a log axis), sorted; and how many were left out.
fn prepared(values: &[f64], log_x: bool) -> (Vec<f64>, usize) {
    let (mut sorted, dropped) = finite_sorted(values);
    if !log_x {
        return (sorted, dropped);
    }
    let before = sorted.len();
    sorted.retain(|v| *v > 0.0);
    let non_positive = before - sorted.len();
    (sorted, dropped + non_positive)
}

/// Points of the empirical CDF of sorted `values` as a step line, sampled down to about
/// [`MAX_POINTS`]: evenly over the ranks, plus every one of the top ranks where the tail lives.
fn ecdf_points(values: &[f64]) -> Vec<(f64, f64)> {
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    let nf = n as f64;
    let mut ranks: Vec<usize> = if n <= MAX_POINTS {
        (0..n).collect()
    } else {
        let step = n as f64 / (MAX_POINTS as f64 * 0.75);
        let mut r: Vec<usize> = (0..).map(|i| (i as f64 * step) as usize).take_while(|i| *i < n).collect();
        r.extend(n.saturating_sub(MAX_POINTS / 4)..n);
        r.sort_unstable();
        r.dedup();
        r
    };
    if ranks.last() != Some(&(n - 1)) {
        ranks.push(n - 1);
    }
    let mut points = Vec::with_capacity(ranks.len() * 2 + 1);
    points.push((values[0], 0.0));
    let mut prev_f = 0.0;
    for i in ranks {
        let x = values[i];
        points.push((x, prev_f));
        prev_f = (i + 1) as f64 / nf;
        points.push((x, prev_f));
    }
    points
}

fn first(v: &[f64]) -> f64 {
    v.first().copied().unwrap_or(f64::INFINITY)
}

fn last(v: &[f64]) -> f64 {
    v.last().copied().unwrap_or(f64::NEG_INFINITY)
}

fn count_above(sorted: &[f64], limit: f64) -> usize {
    sorted.len() - sorted.partition_point(|v| *v <= limit)
}
