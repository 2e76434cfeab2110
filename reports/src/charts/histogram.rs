//! The histogram both delta charts share: binning with the extreme tails cut off (and counted),
//! bars coloured per bin, and vertical reference lines explained in the legend.

use plotters::prelude::*;

use super::axis::{format_number, nice_step, nice_ticks, padded, quantile_sorted};
use super::{Area, Axis, DrawResult, legend, line_swatch, palette, plot, swatch};

/// Below this many values every value is binned; above it the outer 0.5% on each side are cut
/// off the axis so a handful of outliers cannot flatten the histogram (they are counted).
const CLIP_ABOVE: usize = 200;
const TARGET_BINS: usize = 40;

/// Values sorted into equal-width bins.
pub(crate) struct Binned {
    pub start: f64,
    pub step: f64,
    pub counts: Vec<usize>,
    /// Values left of the first bin / right of the last one.
    pub below: usize,
    pub above: usize,
}

impl Binned {
    /// Bins finite, sorted `sorted`; the axis always covers every value of `include`.
    pub fn new(sorted: &[f64], include: &[f64]) -> Self {
        let (mut lo, mut hi) = if sorted.len() > CLIP_ABOVE {
            (quantile_sorted(sorted, 0.005).unwrap_or(0.0), quantile_sorted(sorted, 0.995).unwrap_or(0.0))
        } else {
            (sorted.first().copied().unwrap_or(0.0), sorted.last().copied().unwrap_or(0.0))
        };
        for v in include.iter().copied().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let range = padded(lo, hi, 0.0);
        let step = nice_step(range.end - range.start, TARGET_BINS);
        let start = (range.start / step).floor() * step;
        let bins = (((range.end - start) / step).ceil() as usize).clamp(1, 4 * TARGET_BINS);
        let end = start + bins as f64 * step;
        let mut counts = vec![0usize; bins];
        let (mut below, mut above) = (0, 0);
        for &v in sorted {
            if v < start {
                below += 1;
            } else if v > end {
                above += 1;
            } else {
                let i = (((v - start) / step) as usize).min(bins - 1);
                counts[i] += 1;
            }
        }
        Self { start, step, counts, below, above }
    }

    pub fn end(&self) -> f64 {
        self.start + self.counts.len() as f64 * self.step
    }

    fn bins(&self) -> impl Iterator<Item = (f64, f64, usize)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, c)| (self.start + i as f64 * self.step, self.start + (i + 1) as f64 * self.step, *c))
    }
}

/// A vertical reference line, named in the legend.
pub(crate) struct Marker {
    pub x: f64,
    pub label: String,
    pub color: RGBColor,
    pub dashed: bool,
}

/// What to draw besides the bars.
pub(crate) struct HistogramSpec<'a> {
    pub x_desc: &'a str,
    /// What one count is ("pairs", "values").
    pub y_desc: &'a str,
    pub x_format: &'a dyn Fn(f64) -> String,
    /// The colour of the bar spanning `lo..hi`.
    pub bin_color: &'a dyn Fn(f64, f64) -> RGBColor,
    /// Legend entries for the bar colours.
    pub bar_legend: Vec<(String, RGBColor)>,
    pub markers: Vec<Marker>,
}

pub(crate) fn draw(area: &Area<'_>, binned: &Binned, spec: &HistogramSpec<'_>) -> DrawResult {
    let x_range = {
        let pad = binned.step * 0.5;
        (binned.start - pad)..(binned.end() + pad)
    };
    let max_count = binned.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let y_range = 0.0..max_count * 1.12;
    let count_format = |v: f64| format_number(v);
    let x =
        Axis { ticks: nice_ticks(&x_range, 10), range: x_range, desc: spec.x_desc, format: spec.x_format, grid: false };
    let y = Axis {
        ticks: nice_ticks(&(0.0..max_count), 5).into_iter().filter(|t| t.fract() == 0.0).collect(),
        range: y_range.clone(),
        desc: spec.y_desc,
        format: &count_format,
        grid: true,
    };
    let mut chart = plot(area, &x, &y, 64)?;
    let gap = binned.step * 0.06;
    chart.draw_series(binned.bins().filter(|(_, _, c)| *c > 0).map(|(lo, hi, c)| {
        Rectangle::new([(lo + gap, 0.0), (hi - gap, c as f64)], (spec.bin_color)(lo, hi).filled())
    }))?;
    for (label, color) in &spec.bar_legend {
        chart.draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?.label(label.as_str()).legend(swatch(*color));
    }
    for marker in &spec.markers {
        let points = vec![(marker.x, 0.0), (marker.x, y_range.end)];
        let style = marker.color.stroke_width(2);
        let anno = if marker.dashed {
            chart.draw_series(DashedLineSeries::new(points, 7, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        if !marker.label.is_empty() {
            anno.label(marker.label.as_str()).legend(line_swatch(marker.color, 2));
        }
    }
    // The legend goes in the upper corner over the lighter third of the bars.
    let third = binned.counts.len().div_ceil(3);
    let left: usize = binned.counts.iter().take(third).sum();
    let right: usize = binned.counts.iter().rev().take(third).sum();
    let corner = if right > left { SeriesLabelPosition::UpperLeft } else { SeriesLabelPosition::UpperRight };
    legend(&mut chart, corner)?;
    Ok(())
}

/// Bars in one colour.
pub(crate) fn uniform(_: f64, _: f64) -> RGBColor {
    palette::NEUTRAL
}
