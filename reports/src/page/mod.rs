//! The report page, built from the typed verdict ([`Verdict`]) and what the files beside it hold
//! ([`RowData`]): one module per section, in the order a reader meets them. Each section takes
//! the verdict as analyze wrote it and returns view models ([`crate::html`]); the charts it draws
//! are collected for `charts/`.

mod capture;
mod checks;
mod drift;
mod endpoints;
mod errors;
mod examples;
mod fields;
mod figures;
mod header;
mod latency;
mod windows;

use shadowdiff_format::verdict::{CheckId, Verdict};

pub use examples::MAX_EXAMPLE_ROUTES;
pub(crate) use windows::span as window_span;

use crate::Result;
use crate::charts::{ChartOptions, Png};
use crate::html::{Block, Figure, ReportPage, Status};
use crate::rows::RowData;

/// Maps a verdict (and what was read beside it) onto a report page and the charts it embeds.
pub fn build_page(v: &Verdict, data: &RowData) -> Result<(ReportPage, Vec<Png>)> {
    let opts = ChartOptions::default();
    let mut charts = Vec::new();
    let mut sections = vec![
        checks::section(v),
        capture::section(v),
        latency::section(v, data.latencies.as_ref(), &opts, &mut charts)?,
    ];
    // Only when analyze judged the run window by window (`--window`).
    sections.extend(windows::section(v, &opts, &mut charts)?);
    sections.extend([
        errors::section(v, &opts, &mut charts)?,
        endpoints::section(v, &opts, &mut charts)?,
        fields::section(v),
        drift::section(v, data, &opts, &mut charts)?,
        examples::section(v, &data.examples, data.examples_error.as_deref()),
    ]);
    let page = ReportPage {
        title: "shadowdiff canary report".into(),
        subject: "baseline vs canary".into(),
        generated_at: data.generated_at.clone(),
        facts: header::facts(v, data.latencies.as_ref().ok()),
        verdict: header::banner(v),
        sections,
        footer: "Re-render with `shadowdiff report DIR`.".into(),
    };
    Ok((page, charts))
}

/// How much a status matters to a reader: a failure first, then what could not be judged, then
/// warnings.
fn rank(s: Status) -> u8 {
    match s {
        Status::Fail => 3,
        Status::Inconclusive => 2,
        Status::Warn => 1,
        Status::Pass => 0,
    }
}

/// The worst status other than pass that the checks `which` selects gave `route`.
fn route_status(v: &Verdict, route: &str, which: impl Fn(CheckId) -> bool) -> Option<Status> {
    v.checks
        .iter()
        .filter(|c| which(c.id))
        .flat_map(|c| &c.endpoints)
        .filter(|e| e.route == route)
        .map(|e| Status::from(e.status))
        .filter(|s| *s != Status::Pass)
        .max_by_key(|s| rank(*s))
}

/// Every check.
fn any_check(_: CheckId) -> bool {
    true
}

/// A chart block.
fn figure(png: &Png, alt: &str, caption: &str) -> Block {
    Block::Figure(Figure { png: png.clone(), alt: alt.to_owned(), caption: caption.to_owned() })
}
