//! Numeric drift histogram: relative differences of numeric fields between the two sides.

use super::axis::{finite_sorted, format_number};
use super::histogram::{self, Binned, HistogramSpec, Marker};
use super::{ChartKind, ChartOptions, Heading, Png, count, draw_no_data, palette, render};
use crate::Result;

/// Input of [`numeric_drift`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NumericDrift<'a> {
    /// What the deltas were measured on: a JSON path (`/items/*/price`) or a description
    /// ("all numeric fields"). Shown in the subtitle; empty means not named.
    pub field: &'a str,
    /// `(canary − baseline) / |baseline|` per compared value, as fractions (0.02 = +2%).
    pub relative_deltas: &'a [f64],
    /// The policy's relative tolerance as a fraction (0.01 = ±1%); 0 means exact equality.
    pub tolerance: f64,
}

/// Draws how far numeric values drifted, in percent, with the tolerance band marked: bars
/// beyond it are vermillion. With more than 200 values the outer 0.5% on each side are cut off
/// the axis and counted in the subtitle.
pub fn numeric_drift(input: &NumericDrift<'_>, opts: &ChartOptions) -> Result<Png> {
    let (fractions, dropped) = finite_sorted(input.relative_deltas);
    let percent: Vec<f64> = fractions.iter().map(|f| f * 100.0).collect();
    let tolerance = if input.tolerance.is_finite() { input.tolerance.abs() * 100.0 } else { 0.0 };
    let tolerance_label = format!("±{}%", format_number(tolerance));
    let mut subtitle = if input.field.is_empty() { String::new() } else { format!("{} · ", input.field) };
    subtitle.push_str(&format!("n = {} values", count(percent.len())));
    if dropped > 0 {
        subtitle.push_str(&format!(" · {} invalid values left out", count(dropped)));
    }
    let mut heading = Heading { title: "Numeric drift: relative difference, canary vs baseline".to_owned(), subtitle };
    if percent.is_empty() {
        return render(ChartKind::NumericDrift, opts, &heading, |area| {
            draw_no_data(area, "no numeric values were compared")
        });
    }
    let beyond = percent.iter().filter(|p| p.abs() > tolerance).count();
    heading.subtitle.push_str(&format!(
        " · {:.1}% beyond {tolerance_label} tolerance",
        beyond as f64 * 100.0 / percent.len() as f64
    ));
    let binned = Binned::new(&percent, &[-tolerance * 1.5, tolerance * 1.5]);
    if binned.below + binned.above > 0 {
        heading.subtitle.push_str(&format!(" · {} beyond the axis", count(binned.below + binned.above)));
    }
    let x_format = |v: f64| format!("{}%", format_number(v));
    let bin_color = move |lo: f64, hi: f64| {
        let centre = (lo + hi) / 2.0;
        if centre.abs() > tolerance { palette::ALERT } else { palette::NEUTRAL }
    };
    let mut markers = Vec::new();
    if tolerance > 0.0 {
        for (x, label) in [(-tolerance, format!("tolerance {tolerance_label}")), (tolerance, String::new())] {
            markers.push(Marker { x, label, color: palette::INK, dashed: true });
        }
    }
    let spec = HistogramSpec {
        x_desc: "relative difference (canary − baseline) / |baseline|",
        y_desc: "values",
        x_format: &x_format,
        bin_color: &bin_color,
        bar_legend: vec![
            ("within tolerance".to_owned(), palette::NEUTRAL),
            ("beyond tolerance".to_owned(), palette::ALERT),
        ],
        markers,
    };
    render(ChartKind::NumericDrift, opts, &heading, |area| histogram::draw(area, &binned, &spec))
}
