//! Axis ranges, tick positions and tick labels.
//!
//! Every chart uses a plain `f64` axis with explicit key points, so linear and logarithmic axes
//! (the log axis plots `log10(x)` and labels ticks with `x`) share one coordinate type and one
//! drawing path.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// A linear `f64` axis whose ticks are exactly the ones given. (plotters' own key-point
/// combinator cannot take label formatters on an `f64` axis, hence this small type.)
#[derive(Debug, Clone)]
pub(crate) struct Ticked {
    pub range: Range<f64>,
    pub ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let pixels = f64::from(limit.1 - limit.0);
        if span == 0.0 || !span.is_finite() {
            return limit.0 + (pixels / 2.0) as i32;
        }
        let fraction = ((value - self.range.start) / span).clamp(-16.0, 16.0);
        let offset = pixels * fraction;
        limit.0 + if offset.is_finite() { offset.round() as i32 } else { 0 }
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A drawable range around `lo..hi`: never empty, never infinite.
pub(crate) fn padded(lo: f64, hi: f64, pad_fraction: f64) -> Range<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(1.0) {
        let half = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - half)..(hi + half);
    }
    (lo - span * pad_fraction)..(hi + span * pad_fraction)
}

/// "Nice" tick positions (1, 2, 2.5, 5 × 10ⁿ steps) covering `range`, about `target` of them.
pub(crate) fn nice_ticks(range: &Range<f64>, target: usize) -> Vec<f64> {
    let span = range.end - range.start;
    if !(span.is_finite() && span > 0.0) {
        return vec![range.start];
    }
    let step = nice_step(span, target);
    let first = (range.start / step - 1e-9).ceil() as i64;
    let last = (range.end / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            if v.abs() < step * 1e-9 { 0.0 } else { v }
        })
        .collect()
}

/// A round step (1, 2, 2.5 or 5 × 10ⁿ) that cuts `span` into about `target` pieces.
pub(crate) fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude)
}

/// Ticks for a log10 axis spanning `range` (in log10 units): 1-2-5 per decade when the axis is
/// short, whole decades when it is long.
pub(crate) fn log_ticks(range: &Range<f64>) -> Vec<f64> {
    let decades = range.end - range.start;
    let mantissas: &[f64] = if decades <= 3.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let mut ticks = Vec::new();
    let mut exponent = range.start.floor() as i32;
    while f64::from(exponent) <= range.end {
        for m in mantissas {
            let t = m.log10() + f64::from(exponent);
            if t >= range.start && t <= range.end {
                ticks.push(t);
            }
        }
        exponent += 1;
    }
    ticks
}

/// A tick label: as few digits as the value needs, thousands grouped, no float noise.
pub(crate) fn format_number(v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let abs = v.abs();
    if abs >= 1000.0 {
        group_thousands(v.round() as i64)
    } else if abs >= 100.0 {
        format!("{v:.0}")
    } else if abs >= 1.0 {
        trim(format!("{v:.2}"))
    } else if abs >= 0.001 {
        trim(format!("{v:.3}"))
    } else {
        format!("{v:.1e}")
    }
}

/// A fraction (0.05) as a percentage label ("5%"), with enough digits for small rates.
pub(crate) fn format_percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    let text = if p == 0.0 {
        "0".to_owned()
    } else if p.abs() >= 10.0 {
        trim(format!("{p:.1}"))
    } else if p.abs() >= 0.1 {
        trim(format!("{p:.2}"))
    } else {
        trim(format!("{p:.3}"))
    };
    format!("{text}%")
}

fn trim(s: String) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The `q`-quantile of sorted, finite `values` (linear interpolation, the "type 7" definition
/// that numpy and polars use by default).
pub(crate) fn quantile_sorted(values: &[f64], q: f64) -> Option<f64> {
    let last = values.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(values[lo] + (values[hi] - values[lo]) * frac)
}

/// The finite values of `values`, sorted, and how many were dropped for being NaN or infinite.
pub(crate) fn finite_sorted(values: &[f64]) -> (Vec<f64>, usize) {
    let mut out: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let dropped = values.len() - out.len();
    out.sort_by(f64::total_cmp);
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_are_round() {
        assert_eq!(nice_ticks(&(0.0..10.0), 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = nice_ticks(&(-0.3..0.3), 6);
        let labels: Vec<String> = t.iter().map(|v| format_number(*v)).collect();
        assert_eq!(labels, ["-0.3", "-0.2", "-0.1", "0", "0.1", "0.2", "0.3"]);
    }

    #[test]
    fn log_ticks_cover_decades() {
        let t = log_ticks(&(0.0..2.0));
        let labels: Vec<String> = t.iter().map(|v| format_number(10f64.powf(*v))).collect();
        assert_eq!(labels, ["1", "2", "5", "10", "20", "50", "100"]);
    }

    #[test]
    fn numbers_format_without_noise() {
        assert_eq!(format_number(1234.0), "1,234");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(0.30000000000000004), "0.3");
        assert_eq!(format_percent(0.005), "0.5%");
        assert_eq!(format_percent(0.25), "25%");
    }

    #[test]
    fn degenerate_ranges_are_widened() {
        let r = padded(5.0, 5.0, 0.05);
        assert!(r.start < 5.0 && r.end > 5.0);
        let r = padded(f64::NAN, 1.0, 0.05);
        assert!(r.start < r.end);
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }
}
