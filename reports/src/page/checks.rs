//! Policy checks: one row per check, failures first, and the endpoints that drove a check.

use shadowdiff_format::verdict::{CheckResult, Verdict};
use shadowdiff_format::vocab::Status as Word;

use super::figures::{p_value, statistic, value};
use super::rank;
use crate::html::{Block, Cell, CheckRow, ChecksTable, Column, DataTable, Row, Section, Status};

/// The "Policy checks" section.
pub(super) fn section(v: &Verdict) -> Section {
    let mut rows: Vec<CheckRow> = v.checks.iter().map(check_row).collect();
    rows.sort_by_key(|r| std::cmp::Reverse(rank(r.status)));
    let mut blocks = vec![Block::Checks(ChecksTable { caption: String::new(), rows })];
    if let Some(table) = drivers_table(v) {
        blocks.push(Block::Table(table));
    }
    Section {
        id: "checks".into(),
        title: "Policy checks".into(),
        intro: "Every check of the policy, failures first: value, thresholds, statistic, p-value, confidence interval, sample size and the endpoints that drove it.".into(),
        blocks,
    }
}

/// Whether an endpoint drove its check's status.
fn drove(status: Word) -> bool {
    matches!(status, Word::Fail | Word::Warn)
}

/// What the row's pill cannot say: a check shown as a pass that was not judged, or one that
/// does not count.
fn note(c: &CheckResult) -> String {
    match c.status {
        Word::Disabled | Word::NotComparable => format!(" — not judged: {}", c.reason),
        _ if c.report_only => " — report only, does not count".to_owned(),
        _ => String::new(),
    }
}

fn check_row(c: &CheckResult) -> CheckRow {
    let drivers: Vec<&str> = c.endpoints.iter().filter(|e| drove(e.status)).map(|e| e.route.as_str()).collect();
    let interval = match c.ci {
        Some(ci) if !ci.low.is_nan() && !ci.high.is_nan() => {
            format!("{:.0}% CI {} … {}", ci.confidence * 100.0, c.unit.format(ci.low), c.unit.format(ci.high))
        }
        _ => String::new(),
    };
    CheckRow {
        status: c.status.into(),
        name: format!("{} ({}){}", c.title, c.id, note(c)),
        scope: "overall".to_owned(),
        value: value(c.value, c.unit),
        threshold: format!(
            "pass ≤ {}, warn ≤ {}{}",
            c.threshold_unit.format(c.threshold.pass),
            c.threshold_unit.format(c.threshold.warn),
            // What the data could have seen: the minimum detectable effect.
            c.mde.map_or(String::new(), |m| format!("; detectable ≥ {}", c.threshold_unit.format(m)))
        ),
        interval,
        statistic: c.statistic.as_ref().map(|s| format!("{} = {}", s.name, statistic(s.value))).unwrap_or_default(),
        p_value: p_value(c.p_value),
        samples: c.n,
        drivers: drivers.join(", "),
    }
}

/// The endpoints that failed or warned a check, worst first; `None` when there are none.
fn drivers_table(v: &Verdict) -> Option<DataTable> {
    let mut rows = Vec::new();
    for c in &v.checks {
        for e in c.endpoints.iter().filter(|e| drove(e.status)) {
            let status = Status::from(e.status);
            rows.push(
                Row::new([
                    Cell::status(status),
                    c.id.as_str().into(),
                    Cell::code(e.route.clone()),
                    value(e.value, c.unit).into(),
                    p_value(e.p_adjusted).into(),
                    e.n.to_string().into(),
                    e.reason.clone().into(),
                ])
                .with_status(status),
            );
        }
    }
    rows.sort_by_key(|r: &Row| std::cmp::Reverse(r.status.map(rank)));
    (!rows.is_empty()).then(|| DataTable {
        caption: "Endpoints that drove a check".into(),
        columns: vec![
            Column::text("status"),
            Column::text("check"),
            Column::text("endpoint"),
            Column::number("value"),
            Column::number("p (Holm)"),
            Column::number("n"),
            Column::text("reason"),
        ],
        rows,
        note: String::new(),
    })
}
