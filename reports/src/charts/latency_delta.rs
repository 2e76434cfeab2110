//! Paired latency delta histogram: for each pair, canary latency minus baseline latency.

use super::axis::{finite_sorted, format_number, quantile_sorted};
use super::histogram::{self, Binned, HistogramSpec, Marker};
use super::{ChartKind, ChartOptions, Heading, Png, count, draw_no_data, palette, render};
use crate::Result;

/// Draws the distribution of per-pair latency differences `canary − reference` (ms), where the
/// reference is the side latency was judged against (`baseline` or `secondary`).
///
/// Because each pair saw the same request at the same moment, this is the distribution the
/// paired tests judge: mass right of the zero line means the canary was slower on those
/// requests. The dashed line is the median delta. With more than 200 pairs the outer 0.5% on
/// each side are cut off the axis and counted in the subtitle.
pub fn latency_delta_histogram(deltas_ms: &[f64], reference: &str, opts: &ChartOptions) -> Result<Png> {
    let (sorted, dropped) = finite_sorted(deltas_ms);
    let mut heading = Heading {
        title: format!("Paired latency delta (canary − {reference})"),
        subtitle: format!("n = {} pairs", count(sorted.len())),
    };
    if dropped > 0 {
        heading.subtitle.push_str(&format!(" · {} invalid values left out", count(dropped)));
    }
    let Some(median) = quantile_sorted(&sorted, 0.5) else {
        return render(ChartKind::LatencyDelta, opts, &heading, |area| {
            draw_no_data(area, "no pair has a latency on both sides")
        });
    };
    let slower = sorted.len() - sorted.partition_point(|d| *d <= 0.0);
    let faster = sorted.partition_point(|d| *d < 0.0);
    let n = sorted.len() as f64;
    heading.subtitle.push_str(&format!(
        " · canary slower in {:.1}%, faster in {:.1}%",
        slower as f64 * 100.0 / n,
        faster as f64 * 100.0 / n
    ));
    let binned = Binned::new(&sorted, &[0.0]);
    if binned.below + binned.above > 0 {
        heading.subtitle.push_str(&format!(" · {} beyond the axis", count(binned.below + binned.above)));
    }
    let x_format = |v: f64| format_number(v);
    let x_desc = format!("canary − {reference} latency (ms)   ← canary faster · canary slower →");
    let spec = HistogramSpec {
        x_desc: &x_desc,
        y_desc: "pairs",
        x_format: &x_format,
        bin_color: &histogram::uniform,
        bar_legend: Vec::new(),
        markers: vec![
            Marker { x: 0.0, label: "no difference".to_owned(), color: palette::INK, dashed: false },
            Marker {
                x: median,
                label: format!("median {}{} ms", if median > 0.0 { "+" } else { "" }, format_number(median)),
                color: palette::ALERT,
                dashed: true,
            },
        ],
    };
    render(ChartKind::LatencyDelta, opts, &heading, |area| histogram::draw(area, &binned, &spec))
}
