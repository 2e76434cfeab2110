//! Errors: the error rate of each side per endpoint, and the error kinds the baseline never
//! showed.

use shadowdiff_format::verdict::{CriticalError, EndpointRow, Verdict};

use super::figure;
use super::figures::{p_value, ratio, share};
use crate::Result;
use crate::charts::{self, ChartOptions, EndpointErrorRate, Png};
use crate::html::{Block, Cell, Column, DataTable, Row, Section, SortOrder};

/// The "Errors" section; its chart is added to `charts`.
pub(super) fn section(v: &Verdict, opts: &ChartOptions, charts: &mut Vec<Png>) -> Result<Section> {
    let rates: Vec<EndpointErrorRate> = v
        .endpoints
        .iter()
        .map(|e| EndpointErrorRate {
            endpoint: e.route.clone(),
            baseline: ratio(e.baseline_errors, e.pairs),
            canary: ratio(e.canary_errors, e.pairs),
        })
        .collect();
    let png = charts::error_rates(&rates, opts)?;
    let mut blocks = vec![
        figure(
            &png,
            "Error rates per endpoint, baseline and canary",
            "Errors are 5xx responses and transport failures.",
        ),
        Block::Table(by_endpoint(&v.endpoints)),
    ];
    charts.push(png);
    if !v.critical_errors.is_empty() {
        blocks.push(Block::Table(critical(&v.critical_errors)));
    }
    Ok(Section { id: "errors".into(), title: "Errors".into(), intro: String::new(), blocks })
}

/// Errors by side and endpoint, most canary errors first.
fn by_endpoint(endpoints: &[EndpointRow]) -> DataTable {
    let mut sorted: Vec<&EndpointRow> = endpoints.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.canary_errors));
    DataTable {
        caption: "Errors by side and endpoint".into(),
        columns: vec![
            Column::text("endpoint"),
            Column::number("pairs"),
            Column::number("baseline errors"),
            Column::number("canary errors").sorted(SortOrder::Descending),
            Column::number("canary rate"),
        ],
        rows: sorted
            .iter()
            .map(|e| {
                Row::new([
                    Cell::code(e.route.clone()),
                    e.pairs.to_string().into(),
                    e.baseline_errors.to_string().into(),
                    e.canary_errors.to_string().into(),
                    share(e.canary_errors, e.pairs).into(),
                ])
            })
            .collect(),
        note: String::new(),
    }
}

/// Error kinds seen only in the canary, with the evidence for each.
fn critical(errors: &[CriticalError]) -> DataTable {
    DataTable {
        caption: "Error kinds the baseline never showed".into(),
        columns: vec![
            Column::text("endpoint"),
            Column::text("kind"),
            Column::number("canary"),
            Column::number("p (Holm)"),
            Column::text("confirmed"),
        ],
        rows: errors
            .iter()
            .map(|c| {
                Row::new([
                    Cell::code(c.route.clone()),
                    c.kind.clone().into(),
                    c.canary.to_string().into(),
                    p_value(Some(c.p_adjusted)).into(),
                    c.confirmed.to_string().into(),
                ])
            })
            .collect(),
        note: String::new(),
    }
}
