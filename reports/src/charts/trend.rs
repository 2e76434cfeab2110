//! The run window by window (`analyze --window`): one panel per check over time, each window's
//! value as a marker coloured and shaped by the status it got, its interval as a band and the
//! policy's limits as dashed lines — so a regression that started on day 3 shows as a step.

use chrono::{DateTime, TimeDelta, Utc};
use plotters::coord::CoordTranslate;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use shadowdiff_format::vocab::{Status, Unit};

use super::axis::{format_number, format_percent, nice_ticks, padded};
use super::{
    Area, Axis, ChartKind, ChartOptions, DrawResult, Heading, Plot, Png, anchored, count, palette, plot, render,
};
use crate::Result;

/// One window's figure in one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// The window's start (UTC); the x position.
    pub start: DateTime<Utc>,
    /// The check's figure in the window; `None` when the window had none.
    pub value: Option<f64>,
    /// Its confidence interval (low, high), drawn as a band.
    pub ci: Option<(f64, f64)>,
    /// The status the check got in the window.
    pub status: Status,
}

/// One check over time.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPanel {
    /// What the figure is ("p99 latency: the slowest 2%'s relative change").
    pub title: String,
    /// The figure's unit, for the axis labels.
    pub unit: Unit,
    /// The windows, in any order.
    pub points: Vec<TrendPoint>,
    /// The policy's limits in the figure's unit, (pass, warn): a value above `pass` warns,
    /// above `warn` fails. `None` when they are not in the figure's unit.
    pub thresholds: Option<(f64, f64)>,
    /// Small print after the title (why no limits are drawn, say); may be empty.
    pub note: String,
}

/// The status colours of the report's stylesheet (`--pass`, `--warn`, `--fail`, `--inc`).
pub(crate) fn status_color(s: Status) -> RGBColor {
    match s {
        Status::Pass | Status::Disabled | Status::NotComparable => RGBColor(26, 127, 55),
        Status::Warn => RGBColor(154, 103, 0),
        Status::Fail => RGBColor(207, 34, 46),
        Status::Inconclusive => RGBColor(87, 96, 106),
    }
}

/// Draws the panels stacked over one time axis (window start, UTC). `window` is the windows'
/// length, used for the axis' margins and the subtitle. Markers differ in shape as well as
/// colour (pass ●, warn ▲, fail ✕, inconclusive ○), so the status never rests on colour alone.
pub fn trend(panels: &[TrendPanel], window: TimeDelta, opts: &ChartOptions) -> Result<Png> {
    let starts: Vec<i64> = panels.iter().flat_map(|p| &p.points).map(|p| p.start.timestamp()).collect();
    let (first, last) = (starts.iter().min().copied(), starts.iter().max().copied());
    let windows = {
        let mut s = starts.clone();
        s.sort_unstable();
        s.dedup();
        s.len()
    };
    let dropped = panels.iter().flat_map(|p| &p.points).filter(|p| p.value.is_some_and(|v| !v.is_finite())).count();
    let mut subtitle = format!("{} windows of {}", count(windows), duration(window));
    if let (Some(a), Some(b)) = (first, last) {
        subtitle.push_str(&format!(" · {} to {} UTC", stamp(a, "%Y-%m-%d %H:%M"), stamp(b, "%Y-%m-%d %H:%M")));
    }
    if dropped > 0 {
        subtitle.push_str(&format!(" · {} non-finite values left out", count(dropped)));
    }
    let heading = Heading { title: "Checks over time, window by window".to_owned(), subtitle };
    render(ChartKind::Trend, opts, &heading, |area| {
        let (Some(first), Some(last)) = (first, last) else {
            return super::draw_no_data(area, "no windows to show");
        };
        let half = (window.num_seconds().max(1) as f64) / 2.0;
        let x_range = (first as f64 - half)..(last as f64 + half);
        let (w, h) = area.dim_in_pixel();
        let (legend_strip, stack) = area.split_vertically(30);
        draw_legend(&legend_strip)?;
        let rows = panels.len().max(1) as u32;
        let height = (h - 30) / rows;
        let mut rest = stack;
        for (i, panel) in panels.iter().enumerate() {
            let (this, below) =
                if i + 1 < panels.len() { rest.split_vertically(height) } else { (rest.clone(), rest.clone()) };
            draw_panel(&this, panel, &x_range, w)?;
            rest = below;
        }
        Ok(())
    })
}

/// The marker key and the line and band key, across the top.
fn draw_legend(area: &Area<'_>) -> DrawResult {
    let mut x = 18;
    let y = 12;
    for (status, word) in
        [(Status::Pass, "pass"), (Status::Warn, "warn"), (Status::Fail, "fail"), (Status::Inconclusive, "inconclusive")]
    {
        draw_marker(area, (x + 6, y), status)?;
        area.draw(&Text::new(word, (x + 18, y), anchored(14, palette::INK, HPos::Left, VPos::Center)))?;
        x += 30 + 8 * word.len() as i32;
    }
    x += 12;
    area.draw(&PathElement::new(vec![(x, y), (x + 8, y)], palette::INK.stroke_width(2)))?;
    area.draw(&PathElement::new(vec![(x + 13, y), (x + 21, y)], palette::INK.stroke_width(2)))?;
    area.draw(&Text::new(
        "policy limits: pass, warn",
        (x + 28, y),
        anchored(14, palette::INK, HPos::Left, VPos::Center),
    ))?;
    x += 28 + 170;
    area.draw(&Rectangle::new([(x, y - 6), (x + 20, y + 6)], palette::NEUTRAL.mix(0.22).filled()))?;
    area.draw(&Text::new("interval", (x + 26, y), anchored(14, palette::INK, HPos::Left, VPos::Center)))?;
    Ok(())
}

/// A status marker centred on `at`, in the area's coordinates.
fn draw_marker<CT: CoordTranslate>(
    area: &DrawingArea<BitMapBackend<'_>, CT>,
    at: CT::From,
    status: Status,
) -> DrawResult
where
    CT::From: Clone,
{
    let color = status_color(status);
    let here = || EmptyElement::at(at.clone());
    match status {
        Status::Warn => area.draw(&(here() + TriangleMarker::new((0, 0), 7, color.filled())))?,
        Status::Fail => area.draw(&(here() + Cross::new((0, 0), 5, color.stroke_width(3))))?,
        Status::Inconclusive => {
            area.draw(&(here() + Circle::new((0, 0), 5, WHITE.filled())))?;
            area.draw(&(here() + Circle::new((0, 0), 5, color.stroke_width(2))))?;
        }
        _ => area.draw(&(here() + Circle::new((0, 0), 5, color.filled())))?,
    }
    Ok(())
}

fn draw_panel(area: &Area<'_>, panel: &TrendPanel, x_range: &std::ops::Range<f64>, width: u32) -> DrawResult {
    let (title, body) = area.split_vertically(24);
    title.draw(&Text::new(panel.title.as_str(), (18, 14), anchored(15, palette::INK, HPos::Left, VPos::Center)))?;
    let mut points: Vec<&TrendPoint> = panel.points.iter().collect();
    points.sort_by_key(|p| p.start);
    let finite = |v: f64| v.is_finite().then_some(v);
    let with_ci = |p: &&TrendPoint| p.ci.filter(|(lo, hi)| lo.is_finite() && hi.is_finite());
    // The axis fits the figures, the limits and zero; intervals may widen it by half that span
    // each way and are cut there, so one window's wide interval cannot flatten every figure.
    let mut ys: Vec<f64> = vec![0.0];
    ys.extend(points.iter().filter_map(|p| p.value.and_then(finite)));
    ys.extend(limits(panel.thresholds).into_iter().map(|(v, _)| v));
    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let reach = (hi - lo) / 2.0;
    let ci_lo = points.iter().filter_map(with_ci).map(|c| c.0).fold(lo, f64::min);
    let ci_hi = points.iter().filter_map(with_ci).map(|c| c.1).fold(hi, f64::max);
    let y_range = padded(ci_lo.max(lo - reach), ci_hi.min(hi + reach), 0.08);
    let cut = ci_lo < y_range.start || ci_hi > y_range.end;
    let (y_lo, y_hi) = (y_range.start, y_range.end);
    let clip = move |v: f64| v.clamp(y_lo, y_hi);

    // The limits are named in the strip, not on their lines, where they would cover markers.
    let mut notes: Vec<String> = Vec::new();
    match limits(panel.thresholds).as_slice() {
        [(one, _)] => notes.push(format!("dashed: pass ≤ {}, above fails", panel.unit.format(*one))),
        [(pass, _), (warn, _)] => {
            notes.push(format!("dashed: pass ≤ {}, warn ≤ {}", panel.unit.format(*pass), panel.unit.format(*warn)))
        }
        _ => {}
    }
    if !panel.note.is_empty() {
        notes.push(panel.note.clone());
    }
    if cut {
        notes.push("intervals cut at the axis".to_owned());
    }
    title.draw(&Text::new(
        notes.join(" · "),
        (width as i32 - 28, 14),
        anchored(13, palette::MUTED, HPos::Right, VPos::Center),
    ))?;
    let unit = panel.unit;
    let y_format = move |v: f64| tick_label(v, unit);
    let span = x_range.end - x_range.start;
    let (step, pattern) = time_step(span);
    let x_format = move |v: f64| stamp(v as i64, pattern);
    let x = Axis { ticks: time_ticks(x_range, step), range: x_range.clone(), desc: "", format: &x_format, grid: true };
    let y = Axis { ticks: nice_ticks(&y_range, 4), range: y_range, desc: "", format: &y_format, grid: true };
    let mut chart = plot(&body, &x, &y, 70)?;
    let x_of = |p: &TrendPoint| p.start.timestamp() as f64;

    // The interval as a band over each run of consecutive windows that have one, and a whisker
    // per window so a lone interval still shows.
    for run in points.split(|p| with_ci(p).is_none()) {
        if run.len() >= 2 {
            let mut outline: Vec<(f64, f64)> =
                run.iter().map(|p| (x_of(p), with_ci(p).map_or(0.0, |c| clip(c.1)))).collect();
            outline.extend(run.iter().rev().map(|p| (x_of(p), with_ci(p).map_or(0.0, |c| clip(c.0)))));
            chart.draw_series(std::iter::once(Polygon::new(outline, palette::NEUTRAL.mix(0.22).filled())))?;
        }
    }
    chart.draw_series(points.iter().filter_map(|p| {
        with_ci(p)
            .map(|(lo, hi)| PathElement::new(vec![(x_of(p), clip(lo)), (x_of(p), clip(hi))], palette::NEUTRAL.mix(0.6)))
    }))?;

    for (limit, status) in limits(panel.thresholds) {
        chart.draw_series(DashedLineSeries::new(
            vec![(x_range.start, limit), (x_range.end, limit)],
            7,
            5,
            status_color(status).stroke_width(2),
        ))?;
    }

    // The values, joined where consecutive windows both have one.
    let valued = |p: &&TrendPoint| p.value.and_then(finite);
    for run in points.split(|p| valued(p).is_none()) {
        let line: Vec<(f64, f64)> = run.iter().filter_map(|p| valued(p).map(|v| (x_of(p), v))).collect();
        chart.draw_series(LineSeries::new(line, palette::NEUTRAL.stroke_width(2)))?;
    }
    let any = points.iter().any(|p| valued(p).is_some());
    if !any {
        let mid = (x_range.start + x_range.end) / 2.0;
        let y_mid = (chart.y_range().start + chart.y_range().end) / 2.0;
        chart.draw_series(std::iter::once(
            EmptyElement::at((mid, y_mid))
                + Text::new(
                    "no figure in any window",
                    (0, 0),
                    anchored(14, palette::MUTED, HPos::Center, VPos::Center),
                ),
        ))?;
    }
    draw_points(&mut chart, &points, valued)
}

fn draw_points(
    chart: &mut Plot<'_, '_>,
    points: &[&TrendPoint],
    valued: impl Fn(&&TrendPoint) -> Option<f64>,
) -> DrawResult {
    let area = chart.plotting_area();
    for p in points {
        if let Some(v) = valued(p) {
            draw_marker(area, (p.start.timestamp() as f64, v), p.status)?;
        }
    }
    Ok(())
}

/// The finite limits to draw with the status a value beyond each gets: the pass limit (above
/// it warns) and the warn limit (above it fails); one line when they are the same.
fn limits(thresholds: Option<(f64, f64)>) -> Vec<(f64, Status)> {
    match thresholds {
        Some((pass, warn)) if pass.is_finite() && warn.is_finite() && pass < warn => {
            vec![(pass, Status::Warn), (warn, Status::Fail)]
        }
        Some((pass, warn)) => {
            [pass, warn].into_iter().find(|v| v.is_finite()).map(|v| (v, Status::Fail)).into_iter().collect()
        }
        None => Vec::new(),
    }
}

/// A tick label in the figure's unit, as short as it can be.
fn tick_label(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Relative if v > 0.0 => format!("+{}", format_percent(v)),
        Unit::Relative | Unit::Share => format_percent(v),
        Unit::Ratio => format!("{}×", format_number(v)),
        Unit::KsD | Unit::Count => format_number(v),
    }
}

/// A round time step (1 minute … 1 week) that cuts `span` seconds into at most 7 pieces, and the
/// label pattern that fits it.
fn time_step(span: f64) -> (f64, &'static str) {
    const STEPS: [f64; 13] =
        [60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0, 43200.0, 86400.0, 172800.0, 345600.0, 604800.0];
    let step = STEPS.iter().copied().find(|s| span / s <= 7.0).unwrap_or(604800.0 * (span / 604800.0 / 7.0).ceil());
    let pattern = if step >= 86400.0 {
        "%m-%d"
    } else if span > 86400.0 {
        "%m-%d %H:%M"
    } else {
        "%H:%M"
    };
    (step, pattern)
}

/// Multiples of `step` seconds (UTC) inside `range`.
fn time_ticks(range: &std::ops::Range<f64>, step: f64) -> Vec<f64> {
    let first = (range.start / step).ceil() as i64;
    let last = (range.end / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Seconds since the epoch as UTC text.
fn stamp(seconds: i64, pattern: &str) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0).map(|t| t.format(pattern).to_string()).unwrap_or_default()
}

/// A window length as people write it: `15m`, `1h`, `1h30m`, `1d`, `45s`.
pub(crate) fn duration(d: TimeDelta) -> String {
    let s = d.num_seconds();
    let (days, hours, minutes, seconds) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    for (n, suffix) in [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")] {
        if n != 0 {
            out.push_str(&format!("{n}{suffix}"));
        }
    }
    if out.is_empty() { "0s".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_axis_steps_and_labels() {
        assert_eq!(time_step(6.0 * 3600.0), (3600.0, "%H:%M"));
        assert_eq!(time_step(3.0 * 86400.0).1, "%m-%d %H:%M");
        assert_eq!(time_step(20.0 * 86400.0), (345600.0, "%m-%d"));
        assert_eq!(time_ticks(&(890.0..3700.0), 900.0), vec![900.0, 1800.0, 2700.0, 3600.0]);
        assert_eq!(duration(TimeDelta::minutes(15)), "15m");
        assert_eq!(duration(TimeDelta::minutes(90)), "1h30m");
        assert_eq!(duration(TimeDelta::days(1)), "1d");
        assert_eq!(tick_label(0.1, Unit::Relative), "+10%");
        assert_eq!(tick_label(-0.05, Unit::Relative), "-5%");
    }
}
