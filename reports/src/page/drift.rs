//! Numeric drift: the histogram of relative deltas of real numeric differences (drawn from
//! `diffs.parquet`), each numeric field's summary, and its largest drifts.

use shadowdiff_format::verdict::{Drift, Verdict};
use shadowdiff_format::vocab::Unit;

use super::figure;
use super::figures::statistic;
use crate::Result;
use crate::charts::{self, ChartOptions, NumericDrift, Png};
use crate::html::{Block, Cell, Column, DataTable, Row, Section};
use crate::rows::RowData;

/// The "Numeric drift" section; its chart is added to `charts`.
pub(super) fn section(v: &Verdict, data: &RowData, opts: &ChartOptions, charts: &mut Vec<Png>) -> Result<Section> {
    let drifts = &v.numeric_drift;
    let label = match drifts.as_slice() {
        [one] => one.field.clone(),
        all => format!("{} numeric fields", all.len()),
    };
    let png =
        charts::numeric_drift(&NumericDrift { field: &label, relative_deltas: &data.drift, tolerance: 0.0 }, opts)?;
    let caption = match &data.drift_error {
        Some(e) => format!("The values could not be read: {e}."),
        None => "Every real numeric difference in diffs.parquet (or a uniform sample of them).".to_owned(),
    };
    let mut blocks = vec![
        figure(&png, "Relative drift of numeric fields, canary against baseline", &caption),
        Block::Table(summary(drifts)),
    ];
    charts.push(png);
    if let Some(table) = outliers(drifts) {
        blocks.push(Block::Table(table));
    }
    Ok(Section { id: "drift".into(), title: "Numeric drift".into(), intro: String::new(), blocks })
}

/// One row per numeric field: how many values, and the mean, least and greatest drift.
fn summary(drifts: &[Drift]) -> DataTable {
    let r = Unit::Relative;
    DataTable {
        caption: String::new(),
        columns: vec![
            Column::text("endpoint"),
            Column::text("field"),
            Column::number("n"),
            Column::number("mean"),
            Column::number("min"),
            Column::number("max"),
        ],
        rows: drifts
            .iter()
            .map(|d| {
                Row::new([
                    Cell::code(d.route.clone()),
                    Cell::code(d.field.clone()),
                    d.n.to_string().into(),
                    r.format(d.mean).into(),
                    r.format(d.min).into(),
                    r.format(d.max).into(),
                ])
            })
            .collect(),
        note: String::new(),
    }
}

/// The largest drifts of every field, with their pairs; `None` when there are none.
fn outliers(drifts: &[Drift]) -> Option<DataTable> {
    let rows: Vec<Row> = drifts
        .iter()
        .flat_map(|d| d.outliers.iter().map(move |o| (d, o)))
        .map(|(d, o)| {
            Row::new([
                Cell::code(d.route.clone()),
                Cell::code(d.field.clone()),
                Cell::code(o.pair_id.clone()),
                statistic(o.baseline).into(),
                statistic(o.canary).into(),
                Unit::Relative.format(o.relative).into(),
            ])
        })
        .collect();
    (!rows.is_empty()).then(|| DataTable {
        caption: "The largest drifts per field".into(),
        columns: vec![
            Column::text("endpoint"),
            Column::text("field"),
            Column::text("pair"),
            Column::number("baseline"),
            Column::number("canary"),
            Column::number("relative"),
        ],
        rows,
        note: "Find a pair by its id in pairs.parquet and diffs.parquet.".into(),
    })
}
