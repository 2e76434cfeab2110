//! The one entry point: from a typed verdict and the files analyze wrote beside it, write
//! everything people and CI systems read — `junit.xml`, `summary.md`, `report.html` and
//! `charts/*.png`. `shadowdiff analyze` calls it with the verdict it just judged;
//! `shadowdiff report DIR` with the one [`read_verdict`] reads back.

use std::path::{Path, PathBuf};

use shadowdiff_format::verdict::{JUNIT_FILE, SCHEMA_VERSION, SUMMARY_FILE, VERDICT_FILE, Verdict};

use crate::charts::ChartKind;
use crate::error::write_atomically;
use crate::rows::RowData;
use crate::{Error, Result};

/// The report file written into the output directory.
pub const REPORT_FILE: &str = "report.html";

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    /// `DIR/junit.xml`.
    pub junit: PathBuf,
    /// `DIR/summary.md`.
    pub summary: PathBuf,
    /// `DIR/report.html`.
    pub report: PathBuf,
    /// `DIR/charts/*.png`.
    pub charts: Vec<PathBuf>,
    /// Parts of the report left out because their file could not be read, each with the reason.
    pub left_out: Vec<String>,
}

/// Reads `dir/verdict.json` into the typed verdict.
pub fn read_verdict(dir: &Path) -> Result<Verdict> {
    let path = dir.join(VERDICT_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadVerdict { path: path.clone(), source })?;
    // Through serde_path_to_error, so a field that does not fit is named by its path
    // (`checks[2].unit`), not only by its line and column.
    let mut json = serde_json::Deserializer::from_str(&text);
    let verdict: Verdict = serde_path_to_error::deserialize(&mut json).map_err(|e| match e.inner().classify() {
        serde_json::error::Category::Data => {
            Error::VerdictShape { path: path.clone(), expected: SCHEMA_VERSION, source: e }
        }
        _ => Error::VerdictJson { path: path.clone(), source: e.into_inner() },
    })?;
    json.end().map_err(|source| Error::VerdictJson { path: path.clone(), source })?;
    if verdict.schema_version != SCHEMA_VERSION {
        return Err(Error::VerdictVersion { path, found: verdict.schema_version, expected: SCHEMA_VERSION });
    }
    Ok(verdict)
}

/// Writes `dir/junit.xml`, `dir/summary.md`, `dir/report.html` and `dir/charts/*.png` from
/// `verdict` and what `dir` holds beside it (`pairs.parquet`, `diffs.parquet`,
/// `examples.json`; a part whose file cannot be read is left out of the report, with the reason).
pub fn write_outputs(dir: &Path, verdict: &Verdict) -> Result<Written> {
    let junit = dir.join(JUNIT_FILE);
    write_atomically(&junit, crate::junit::junit(verdict)?.as_bytes())?;
    let summary = dir.join(SUMMARY_FILE);
    write_atomically(&summary, crate::summary::markdown(verdict).as_bytes())?;
    let (report, charts, left_out) = write_report(dir, verdict)?;
    Ok(Written { junit, summary, report, charts, left_out })
}

/// Writes `report.html` and its charts; returns their paths and the parts left out.
fn write_report(dir: &Path, verdict: &Verdict) -> Result<(PathBuf, Vec<PathBuf>, Vec<String>)> {
    let data = RowData::read(dir, verdict.latency_reference);
    let left_out: Vec<String> = [
        data.latencies.as_ref().err().map(|e| format!("latency charts: {e}")),
        data.drift_error.as_ref().map(|e| format!("numeric drift values: {e}")),
        data.examples_error.as_ref().map(|e| format!("example pairs: {e}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (page, pngs) = crate::page::build_page(verdict, &data)?;
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|source| Error::Write { path: charts_dir.clone(), source })?;
    let mut charts = Vec::new();
    for png in &pngs {
        charts.push(png.save_in(&charts_dir)?);
    }
    // A chart this report leaves out must not linger from an earlier render beside it.
    for kind in ChartKind::ALL {
        if !pngs.iter().any(|p| p.kind == kind) {
            let stale = charts_dir.join(kind.file_name());
            if stale.exists() {
                std::fs::remove_file(&stale).map_err(|source| Error::Write { path: stale.clone(), source })?;
            }
        }
    }
    let report = dir.join(REPORT_FILE);
    crate::html::write_page(&page, &report)?;
    Ok((report, charts, left_out))
}
