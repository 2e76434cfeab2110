//! The verdict and `verdict.json` (fields documented in `docs/verdict.md`, versioned by
//! [`SCHEMA_VERSION`]). The types live in shadowdiff-format, shared with the report; what people
//! and CI systems read beside it (`junit.xml`, `summary.md`, the report) is written by
//! shadowdiff-reports from the same typed verdict.

use std::path::Path;

use crate::error::{Error, Result};

pub use shadowdiff_format::verdict::{
    CheckResult, Ci, CriticalError, EndpointCheck, FieldCount, JUNIT_FILE, LatencySummary, Outputs, SCHEMA_VERSION,
    SUMMARY_FILE, Statistic, Status, Threshold, Unit, VERDICT_FILE, Verdict,
};

/// Writes `verdict.json` into `dir`, recording the paths of every output it lists, those
/// shadowdiff-reports writes beside it (`junit.xml`, `summary.md`) included.
pub fn write(verdict: &mut Verdict, dir: &Path) -> Result<()> {
    verdict.outputs.verdict = dir.join(VERDICT_FILE);
    verdict.outputs.junit = dir.join(JUNIT_FILE);
    verdict.outputs.summary = dir.join(SUMMARY_FILE);
    let json = serde_json::to_string_pretty(&*verdict)
        .map_err(|e| Error::Internal { message: format!("serializing the verdict: {e}") })?;
    write_file(&verdict.outputs.verdict, &(json + "\n"))
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    shadowdiff_format::atomic::write_atomic(path, text.as_bytes())
        .map_err(|source| Error::Output { path: path.to_owned(), source: source.into() })
}
