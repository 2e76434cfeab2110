//! `shadowdiff import`: convert HAR and GoReplay files into pair files, the recorded responses
//! becoming the baseline side, so analyze and replay read them like captured traffic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shadowdiff_format::{PairWriter, WriterConfig};

use crate::error::{Error, Result};
use crate::source::{Format, gor, har};

/// The counter, in every imported file's `shadowdiff.counters`, of `.gor` response payloads left
/// out because they could not be read.
pub const SKIPPED_RESPONSES: &str = "skipped.unreadable_response";

#[derive(Debug)]
pub struct ImportSummary {
    pub pairs: u64,
    /// Pairs with a recorded baseline response (a status).
    pub with_response: u64,
    /// Payloads left out, each an error that names the file, the payload and its byte offset:
    /// `.gor` responses that cannot be read. Their pairs are written without that response.
    pub skipped: Vec<Error>,
    pub files: Vec<PathBuf>,
}

/// Read `input` and write its pairs under `out`, in time order.
pub fn import(format: Format, input: &Path, out: &Path, agent: &str) -> Result<ImportSummary> {
    let (mut records, skipped) = match format {
        Format::Har => (har::read(input, agent)?, Vec::new()),
        Format::Gor => {
            let f = gor::read_file(input, agent)?;
            (f.records, f.skipped)
        }
    };
    records.sort_by_key(|r| r.captured_at);
    let mut config = WriterConfig::new(out, agent);
    config.summary = serde_json::json!({
        "imported_from": format.name(),
        "file": input.display().to_string(),
    });
    let mut counters = BTreeMap::from([("imported".to_owned(), records.len() as u64)]);
    if format == Format::Gor {
        counters.insert(SKIPPED_RESPONSES.to_owned(), skipped.len() as u64);
    }
    config.counters = Some(Arc::new(move || counters.clone()));
    let mut writer = PairWriter::new(config)?;
    let mut with_response = 0;
    for r in records {
        with_response += u64::from(r.baseline.status.is_some());
        writer.write(r)?;
    }
    let stats = writer.close()?;
    Ok(ImportSummary { pairs: stats.rows_committed, with_response, skipped, files: stats.files })
}
