//! Fields: per endpoint, the fields that differed, by the rate of real differences, with the
//! noise rate, the severity and what analyze made of them.

use shadowdiff_format::verdict::{FieldRow, FieldVerdict, Verdict};
use shadowdiff_format::vocab::{DiffStatus, Severity, Unit};

use super::figures::share;
use crate::html::{Block, Cell, Column, DataTable, Row, Section, SortOrder, Status};

/// The "Fields" section.
pub(super) fn section(v: &Verdict) -> Section {
    let mut fields: Vec<&FieldRow> = v.fields.iter().collect();
    fields.sort_by(|a, b| b.report.absolute.unwrap_or(0.0).total_cmp(&a.report.absolute.unwrap_or(0.0)));
    Section {
        id: "fields".into(),
        title: "Fields".into(),
        intro: "Per-endpoint fields that differed, by the rate of real differences (Diffy's absolute figure: differences beyond what the secondary shows, per pair compared); the noise rate is how often the field differs between baseline and secondary. Severity is the strongest seen: breaking (removed, type changed), changed (value), additive (added).".into(),
        blocks: vec![Block::Table(DataTable {
            caption: String::new(),
            columns: vec![
                Column::text("endpoint"),
                Column::text("path"),
                Column::number("count"),
                Column::number("rate").sorted(SortOrder::Descending),
                Column::number("noise rate"),
                Column::text("severity"),
                Column::text("status"),
                Column::text("why"),
            ],
            rows: fields.into_iter().map(row).collect(),
            note: String::new(),
        })],
    }
}

fn row(f: &FieldRow) -> Row {
    let r = &f.report;
    let (status, why) = match &r.verdict {
        FieldVerdict::Difference => (DiffStatus::Real.label().to_owned(), ""),
        FieldVerdict::BelowThreshold => (format!("{} (below Diffy's threshold)", DiffStatus::Real.label()), ""),
        FieldVerdict::Noise => (DiffStatus::Noise.label().to_owned(), ""),
        FieldVerdict::SuspectedNoise { reason } => (DiffStatus::SuspectedNoise.label().to_owned(), reason.as_str()),
        FieldVerdict::Explained { reason } => (DiffStatus::Explained.label().to_owned(), reason.as_str()),
    };
    // A real difference tints the row: red when it can break a client.
    let tint = match (r.verdict.status().0, f.severity) {
        (DiffStatus::Real, Severity::Breaking) => Some(Status::Fail),
        (DiffStatus::Real, _) => Some(Status::Warn),
        _ => None,
    };
    let row = Row::new([
        Cell::code(f.route.clone()),
        Cell::code(r.field.clone()),
        r.counts.raw.to_string().into(),
        // Diffy's absolute figure is a percentage of the pairs.
        Unit::Share.format(r.absolute.unwrap_or(0.0) / 100.0).into(),
        share(r.counts.noise, r.total_with_secondary).into(),
        f.severity.as_str().into(),
        status.into(),
        why.into(),
    ]);
    match tint {
        Some(st) => row.with_status(st),
        None => row,
    }
}
