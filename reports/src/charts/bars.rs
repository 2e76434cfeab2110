//! Horizontal bars per endpoint, one or more series, with an optional threshold line: the
//! shape both per-endpoint rate charts share. Horizontal, because endpoint names are long and
//! must stay readable.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axis::{format_percent, nice_ticks};
use super::{Area, Axis, DrawResult, anchored, legend, line_swatch, palette, plot, swatch};

/// At most this many categories are drawn; the caller says in its subtitle how many were left.
pub(crate) const MAX_CATEGORIES: usize = 15;
/// Longest category label drawn before it is cut with an ellipsis.
const MAX_LABEL_CHARS: usize = 34;

/// One series of bars: a value (a fraction, 0..=1) per category.
pub(crate) struct Series<'a> {
    pub label: &'a str,
    pub color: RGBColor,
    pub values: Vec<f64>,
}

pub(crate) struct Threshold {
    pub value: f64,
    pub label: String,
}

pub(crate) struct BarSpec<'a> {
    /// Category names, top to bottom.
    pub categories: Vec<&'a str>,
    pub series: Vec<Series<'a>>,
    pub x_desc: &'a str,
    pub threshold: Option<Threshold>,
    /// Recolours a bar: `(series index, value) -> colour`; `None` keeps the series colour.
    pub recolor: Option<&'a dyn Fn(usize, f64) -> RGBColor>,
    /// Extra legend entries (colour meanings introduced by `recolor`).
    pub extra_legend: Vec<(String, RGBColor)>,
}

pub(crate) fn draw(area: &Area<'_>, spec: &BarSpec<'_>) -> DrawResult {
    let n = spec.categories.len();
    let max_value = spec
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .chain(spec.threshold.as_ref().map(|t| t.value))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    // Room on the right for the value labels at the end of the longest bar.
    let x_max = if max_value > 0.0 { max_value * 1.22 } else { 0.01 };
    let x_range = 0.0..x_max;
    let labels: Vec<String> = spec.categories.iter().map(|c| ellipsize(c)).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let y_label_width = (longest as u32 * 8 + 20).clamp(80, 300);
    // Category i sits at y = n - 1 - i, so the first category is on top.
    let y_of = |i: usize| (n - 1 - i) as f64;
    let category_format = |v: f64| {
        let i = n as i64 - 1 - v.round() as i64;
        usize::try_from(i).ok().and_then(|i| labels.get(i)).cloned().unwrap_or_default()
    };
    let percent = |v: f64| format_percent(v);
    let x = Axis { ticks: nice_ticks(&x_range, 6), range: x_range, desc: spec.x_desc, format: &percent, grid: true };
    let y = Axis {
        range: -0.6..(n as f64 - 0.4),
        ticks: (0..n).map(|i| i as f64).collect(),
        desc: "",
        format: &category_format,
        grid: false,
    };
    let mut chart = plot(area, &x, &y, y_label_width)?;

    let group = 0.74;
    let slot = group / spec.series.len().max(1) as f64;
    for (s, series) in spec.series.iter().enumerate() {
        let bar = |i: usize, v: f64| {
            let top = y_of(i) + group / 2.0 - s as f64 * slot;
            let color = spec.recolor.map_or(series.color, |f| f(s, v));
            Rectangle::new([(0.0, top - slot * 0.9), (v.max(0.0), top)], color.filled())
        };
        let values = series.values.iter().copied().enumerate().filter(|(_, v)| v.is_finite());
        let anno = chart.draw_series(values.clone().map(|(i, v)| bar(i, v)))?;
        if !series.label.is_empty() {
            anno.label(series.label).legend(swatch(series.color));
        }
        chart.draw_series(values.map(|(i, v)| {
            let mid = y_of(i) + group / 2.0 - s as f64 * slot - slot * 0.45;
            EmptyElement::at((v.max(0.0), mid))
                + Text::new(format_percent(v), (5, 0), anchored(12, palette::INK, HPos::Left, VPos::Center))
        }))?;
    }
    for (label, color) in &spec.extra_legend {
        chart.draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?.label(label.as_str()).legend(swatch(*color));
    }
    if let Some(threshold) = &spec.threshold {
        let y = chart.y_range();
        chart
            .draw_series(DashedLineSeries::new(
                vec![(threshold.value, y.start), (threshold.value, y.end)],
                7,
                5,
                palette::INK.stroke_width(2),
            ))?
            .label(threshold.label.as_str())
            .legend(line_swatch(palette::INK, 2));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

fn ellipsize(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_LABEL_CHARS - 1).collect();
    out.push('…');
    out
}
