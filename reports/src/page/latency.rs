//! Latency: the CDF of both sides and the paired deltas (drawn from `pairs.parquet`), and the
//! quantile table of every scope with its bootstrap intervals.

use shadowdiff_format::verdict::{CheckId, LatencySummary, QuantileDelta, Verdict};
use shadowdiff_format::vocab::{LatencyReference, Unit};

use super::figures::ms_unit;
use super::{figure, route_status};
use crate::Result;
use crate::charts::{self, ChartOptions, LatencyCdf, Png};
use crate::html::{Block, Cell, Column, DataTable, Row, Section};
use crate::rows::Latencies;

/// The "Latency" section; its charts are added to `charts` (none when the latencies could not
/// be read, and the section says why).
pub(super) fn section(
    v: &Verdict,
    latencies: Result<&Latencies, &String>,
    opts: &ChartOptions,
    charts: &mut Vec<Png>,
) -> Result<Section> {
    let mut blocks = Vec::new();
    match latencies {
        Ok(l) => {
            let reference = l.reference.as_str();
            let cdf = charts::latency_cdf(
                &LatencyCdf { reference, reference_ms: &l.reference_ms, canary_ms: &l.canary_ms, log_x: true },
                opts,
            )?;
            let deltas: Vec<f64> = l.reference_ms.iter().zip(&l.canary_ms).map(|(b, c)| c - b).collect();
            let hist = charts::latency_delta_histogram(&deltas, reference, opts)?;
            blocks.push(figure(
                &cdf,
                &format!("Latency CDF of {reference} and canary"),
                &format!("{} of {} pairs drawn.", l.reference_ms.len(), l.total),
            ));
            blocks.push(figure(
                &hist,
                &format!("Histogram of per-pair latency deltas, canary minus {reference}"),
                "Mass right of zero: the canary was slower on those requests.",
            ));
            charts.push(cdf);
            charts.push(hist);
        }
        Err(e) => blocks.push(Block::Paragraph(format!("Latency charts are left out: {e}."))),
    }
    blocks.push(Block::Table(quantile_table(v)));
    let intro = if v.latency_reference == LatencyReference::Secondary {
        "The canary's latency is judged against the secondary's, not the baseline's: capture answers \
         clients from the baseline and reaches the canary and the secondary alike, as mirrors, so \
         only the secondary was timed the way the canary was (policy key `latency_reference`)."
            .to_owned()
    } else {
        String::new()
    };
    Ok(Section { id: "latency".into(), title: "Latency".into(), intro, blocks })
}

/// One row per scope; each quantile cell holds both sides, the relative delta and its interval,
/// and the row is coloured by the worst latency status the checks gave that scope.
fn quantile_table(v: &Verdict) -> DataTable {
    let mut columns = vec![Column::text("scope"), Column::number("n")];
    if let Some(first) = v.latency.first() {
        columns.extend(first.quantiles.iter().map(|q| Column::number(format!("p{}", q.q * 100.0))));
    }
    let rows = v
        .latency
        .iter()
        .map(|l| {
            let row = scope_row(l);
            let latency = |id| matches!(id, CheckId::LatencyP99 | CheckId::LatencyShape);
            match route_status(v, &l.route, latency) {
                Some(st) => row.with_status(st),
                None => row,
            }
        })
        .collect();
    DataTable {
        caption: format!("Latency quantiles: {} → canary (delta; confidence interval)", reference_of(v)),
        columns,
        rows,
        note: "Intervals are seeded bootstrap intervals of the paired quantile delta.".into(),
    }
}

fn scope_row(l: &LatencySummary) -> Row {
    let mut cells: Vec<Cell> = vec![Cell::code(l.route.clone()), l.n.to_string().into()];
    cells.extend(l.quantiles.iter().map(|q| quantile_cell(q).into()));
    Row::new(cells)
}

/// `8.01 ms → 9.12 ms (+13.9%; +6.9% … +24.1%)`.
fn quantile_cell(q: &QuantileDelta) -> String {
    let r = Unit::Relative;
    format!(
        "{} → {} ({}; {} … {})",
        ms_unit(q.baseline),
        ms_unit(q.canary),
        r.format(q.relative),
        r.format(q.relative_low),
        r.format(q.relative_high)
    )
}

/// The side the canary's latency was judged against, for people.
fn reference_of(v: &Verdict) -> &'static str {
    match v.latency_reference {
        LatencyReference::Secondary => "secondary",
        _ => "baseline",
    }
}
