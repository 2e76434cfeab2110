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
    let caption = if grpc(v) {
        "Errors are 5xx responses, gRPC calls that ended UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE or DATA_LOSS, and transport failures."
    } else {
        "Errors are 5xx responses and transport failures."
    };
    let mut blocks = vec![
        figure(&png, "Error rates per endpoint, baseline and canary", caption),
        Block::Table(by_endpoint(&v.endpoints)),
    ];
    charts.push(png);
    if !v.critical_errors.is_empty() {
        blocks.push(Block::Table(critical(&v.critical_errors)));
    }
    Ok(Section { id: "errors".into(), title: "Errors".into(), intro: String::new(), blocks })
}

/// Whether the run holds gRPC calls: a gRPC status was named (a status mismatch or an error
/// kind), or an endpoint is a gRPC method's path (`/package.Service/Method`).
fn grpc(v: &Verdict) -> bool {
    let method = |route: &str| {
        route.strip_prefix('/').and_then(|r| r.split_once('/')).is_some_and(|(service, method)| {
            service.contains('.') && !method.is_empty() && !method.contains('/') && !service.contains('{')
        })
    };
    v.critical_errors.iter().any(|c| c.kind.starts_with("grpc "))
        || v.status_mismatches.values().any(|m| m.keys().any(|k| k.starts_with("grpc ")))
        || v.endpoints.iter().any(|e| method(&e.route))
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
