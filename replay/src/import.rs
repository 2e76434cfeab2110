//! `shadowdiff import`: convert HAR and GoReplay files into pair files, the recorded responses
//! becoming the baseline side, so analyze and replay read them like captured traffic.

use std::path::{Path, PathBuf};

use shadowdiff_format::{PairWriter, WriterConfig};

use crate::error::Result;
use crate::source::{self, Format};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub pairs: u64,
    /// Pairs with a recorded baseline response (a status).
    pub with_response: u64,
    pub files: Vec<PathBuf>,
}

/// Read `input` and write its pairs under `out`, in time order.
pub fn import(format: Format, input: &Path, out: &Path, agent: &str) -> Result<ImportSummary> {
    let mut records = source::read(format, input, agent)?;
    records.sort_by_key(|r| r.captured_at);
    let mut config = WriterConfig::new(out, agent);
    config.summary = serde_json::json!({
        "imported_from": format.name(),
        "file": input.display().to_string(),
    });
    let total = records.len() as u64;
    config.counters =
        Some(std::sync::Arc::new(move || std::collections::BTreeMap::from([("imported".to_owned(), total)])));
    let mut writer = PairWriter::new(config)?;
    let mut with_response = 0;
    for r in records {
        with_response += u64::from(r.baseline.status.is_some());
        writer.write(r)?;
    }
    let stats = writer.close()?;
    Ok(ImportSummary { pairs: stats.rows_committed, with_response, files: stats.files })
}
