//! Endpoints: the diff rate of each against the policy's threshold, and the endpoints table,
//! worst first.

use shadowdiff_format::verdict::{CheckId, EndpointRow, Verdict};
use shadowdiff_format::vocab::Unit;

use super::figures::{ms_pair, ratio};
use super::{any_check, figure, rank, route_status};
use crate::Result;
use crate::charts::{self, ChartOptions, EndpointDiffRate, Png};
use crate::html::{Block, Cell, Column, DataTable, Row, Section, SortOrder, Status};

/// The diff-rate pass threshold when the verdict has no diff-rate check.
const DEFAULT_DIFF_THRESHOLD: f64 = 0.005;

/// The share of compared pairs with a real difference.
fn diff_rate(e: &EndpointRow) -> f64 {
    ratio(e.different, e.compared)
}

/// The "Endpoints" section; its chart is added to `charts`.
pub(super) fn section(v: &Verdict, opts: &ChartOptions, charts: &mut Vec<Png>) -> Result<Section> {
    // The policy's pass threshold for the diff rate, as the check resolved it.
    let threshold = v.check(CheckId::DiffRate).map_or(DEFAULT_DIFF_THRESHOLD, |c| c.threshold.pass);
    let rates: Vec<EndpointDiffRate> =
        v.endpoints.iter().map(|e| EndpointDiffRate { endpoint: e.route.clone(), rate: diff_rate(e) }).collect();
    let png = charts::diff_rates(&rates, threshold, opts)?;
    let section = Section {
        id: "endpoints".into(),
        title: "Endpoints".into(),
        intro: "Diff rate: the share of compared pairs with a real difference.".into(),
        blocks: vec![
            figure(
                &png,
                "Diff rate per endpoint",
                &format!(
                    "The dashed line marks the policy's diff-rate pass threshold, {}.",
                    Unit::Share.format(threshold)
                ),
            ),
            Block::Table(table(v)),
        ],
    };
    charts.push(png);
    Ok(section)
}

/// Endpoints, worst first: by the worst status a check gave them, then breaking pairs, then
/// diff rate.
fn table(v: &Verdict) -> DataTable {
    let status = |e: &EndpointRow| route_status(v, &e.route, any_check);
    let mut sorted: Vec<&EndpointRow> = v.endpoints.iter().collect();
    sorted.sort_by(|a, b| {
        let ka = (status(a).map(rank), a.breaking_pairs);
        let kb = (status(b).map(rank), b.breaking_pairs);
        kb.cmp(&ka).then(diff_rate(b).total_cmp(&diff_rate(a)))
    });
    let rows = sorted
        .iter()
        .map(|e| {
            let st = status(e).unwrap_or(Status::Pass);
            let row = Row::new([
                Cell::status(st),
                Cell::code(e.route.clone()),
                e.pairs.to_string().into(),
                Unit::Share.format(diff_rate(e)).into(),
                e.breaking_pairs.to_string().into(),
                e.status_mismatches.to_string().into(),
                ms_pair(e.baseline_p50_ms, e.canary_p50_ms).into(),
                ms_pair(e.baseline_p99_ms, e.canary_p99_ms).into(),
            ]);
            if st == Status::Pass { row } else { row.with_status(st) }
        })
        .collect();
    DataTable {
        caption: "Endpoints, worst first".into(),
        columns: vec![
            Column::text("status"),
            Column::text("endpoint"),
            Column::number("pairs"),
            Column::number("diff rate").sorted(SortOrder::Descending),
            Column::number("breaking pairs"),
            Column::number("status mismatches"),
            Column::number("p50 ms (b → c)"),
            Column::number("p99 ms (b → c)"),
        ],
        rows,
        note: String::new(),
    }
}
