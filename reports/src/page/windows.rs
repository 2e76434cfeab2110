//! Over time (`analyze --window`): the run judged window by window — the trend chart of the p99
//! latency change, the canary's error share and the diff rate with the policy's limits, and a
//! table of every window's verdict and checks. Absent when the verdict has no windows.

use shadowdiff_format::verdict::{CheckId, CheckResult, Verdict, WindowRow};
use shadowdiff_format::vocab::Status as Word;

use super::figure;
use super::figures::value;
use crate::Result;
use crate::charts::{self, ChartOptions, Png, TrendPanel, TrendPoint};
use crate::html::{Cell, Column, DataTable, Row, Section, Status};

/// The trend chart's height: three panels of about 230 pixels under the heading and key.
const TREND_HEIGHT: u32 = 780;

/// The checks the chart draws, top to bottom, with what their figure is.
const PANELS: [(CheckId, &str); 3] = [
    (CheckId::LatencyP99, "p99 latency: the slowest 2%'s relative change"),
    (CheckId::ErrorRate, "Errors: the canary's share of error responses"),
    (CheckId::DiffRate, "Diff rate: share of pairs with a real difference"),
];

/// The "Over time" section, or `None` when the run was not judged by window; its chart is added
/// to `charts`.
pub(super) fn section(v: &Verdict, opts: &ChartOptions, charts: &mut Vec<Png>) -> Result<Option<Section>> {
    let Some(first) = v.windows.first() else {
        return Ok(None);
    };
    let window = first.end - first.start;
    let panels: Vec<TrendPanel> = PANELS
        .iter()
        .filter_map(|(id, title)| v.check(*id).filter(|c| c.status != Word::Disabled).map(|c| panel(v, c, title)))
        .collect();
    let mut blocks = Vec::new();
    if !panels.is_empty() {
        let png = charts::trend(&panels, window, &ChartOptions { height: TREND_HEIGHT, ..*opts })?;
        blocks.push(figure(
            &png,
            "The p99 latency change, the canary's error share and the diff rate in each window, with the policy's limits",
            "One marker per window at its start, shaped and coloured by the status the check got there; the grey band is the \
             window's confidence interval, the dashed lines the policy's limits. The error check's limits are ratios to the \
             baseline's error rate in the same window, so they are not drawn on the canary's share.",
        ));
        charts.push(png);
    }
    blocks.push(crate::html::Block::Table(table(v)));
    Ok(Some(Section {
        id: "windows".into(),
        title: "Over time".into(),
        intro: format!(
            "The run judged window by window ({} windows of {}, UTC): each window analyzed on its own, with decisions that \
             stay valid over many looks. A regression that started at some point shows as the windows from then on.",
            v.windows.len(),
            charts::duration(window)
        ),
        blocks,
    }))
}

/// One check over the windows.
fn panel(v: &Verdict, c: &CheckResult, title: &str) -> TrendPanel {
    let points = v
        .windows
        .iter()
        .filter_map(|w| {
            w.checks.iter().find(|wc| wc.id == c.id).map(|wc| TrendPoint {
                start: w.start,
                value: wc.value,
                ci: wc.ci.map(|ci| (ci.low, ci.high)),
                status: wc.status,
            })
        })
        .collect();
    let same_unit = c.threshold_unit == c.unit;
    TrendPanel {
        title: title.to_owned(),
        unit: c.unit,
        points,
        thresholds: same_unit.then_some((c.threshold.pass, c.threshold.warn)),
        note: if same_unit {
            String::new()
        } else {
            format!(
                "limits (pass ≤ {}, warn ≤ {} the baseline's rate) not drawn",
                c.threshold_unit.format(c.threshold.pass),
                c.threshold_unit.format(c.threshold.warn)
            )
        },
    }
}

/// One row per window: its span, pairs, verdict and each check's status with its figure.
fn table(v: &Verdict) -> DataTable {
    let mut columns = vec![Column::text("window (UTC)"), Column::number("pairs"), Column::text("verdict")];
    columns.extend(v.checks.iter().map(|c| Column::text(c.id.as_str())));
    let rows = v.windows.iter().map(|w| row(v, w)).collect();
    DataTable {
        caption: "Each window's verdict and checks".into(),
        columns,
        rows,
        note: "A window is judged like a whole run of its own pairs; a window with few pairs is often inconclusive."
            .into(),
    }
}

fn row(v: &Verdict, w: &WindowRow) -> Row {
    let verdict = Status::from(w.verdict);
    let mut cells: Vec<Cell> = vec![span(w).into(), w.pairs.to_string().into(), Cell::status(verdict)];
    cells.extend(v.checks.iter().map(|c| match w.checks.iter().find(|wc| wc.id == c.id) {
        Some(wc) => Cell { text: value(wc.value, c.unit), ..Cell::status(wc.status.into()) },
        None => Cell::from(String::new()),
    }));
    Row::new(cells).with_status(verdict)
}

/// `2026-03-02 10:00 – 10:15`; the end's date too when it falls on another day.
pub(crate) fn span(w: &WindowRow) -> String {
    let end = if w.end.date_naive() == w.start.date_naive() { "%H:%M" } else { "%Y-%m-%d %H:%M" };
    format!("{} – {}", w.start.format("%Y-%m-%d %H:%M"), w.end.format(end))
}
