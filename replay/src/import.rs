//! `shadowdiff import`: convert HAR and GoReplay files into pair files, the recorded responses
//! becoming the baseline side, so analyze and replay read them like captured traffic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shadowdiff_capture::redact::{RedactRules, Redactor};
use shadowdiff_format::{PairWriter, WriterConfig};

use crate::error::{Error, Result};
use crate::source::{Format, envoy, gor, har};

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

/// `import envoy-tap` writes each kind of pair in its own directory under `--out`: analyze reads
/// [`ENVOY_PAIRED`]; `replay --canary` completes [`ENVOY_BASELINE_ONLY`].
pub const ENVOY_PAIRED: &str = "paired";
pub const ENVOY_BASELINE_ONLY: &str = "baseline-only";
pub const ENVOY_CANARY_ONLY: &str = "canary-only";

/// One directory `import envoy-tap` wrote.
#[derive(Debug)]
pub struct EnvoyTapOutput {
    /// [`ENVOY_PAIRED`], [`ENVOY_BASELINE_ONLY`] or [`ENVOY_CANARY_ONLY`].
    pub part: &'static str,
    pub dir: PathBuf,
    pub pairs: u64,
    pub files: Vec<PathBuf>,
}

#[derive(Debug)]
pub struct EnvoyTapSummary {
    pub baseline: envoy::SideCounts,
    pub canary: envoy::SideCounts,
    /// Pairs with a latency on both sides (both taps record `headers_received_time`).
    pub timed: u64,
    /// Records that cannot be requests, each naming its file, record and why (both sides).
    pub unreadable: Vec<Error>,
    /// Bodies withheld by redaction: rules apply to them and they could not be parsed.
    pub withheld: u64,
    /// Requests under one `x-request-id` that differ between the sides, each in a sentence.
    pub mismatched: Vec<String>,
    /// Where each trace without an `x-request-id` was read (`baseline FILE record N`).
    pub without_request_id: Vec<String>,
    /// Files in the given directories that are not tap files, left alone.
    pub ignored: usize,
    /// Only the directories that received pairs.
    pub outputs: Vec<EnvoyTapOutput>,
}

/// The counter, in every file `import envoy-tap` writes, of bodies withheld by redaction (rules
/// apply to them and they could not be parsed), as capture counts them.
pub const WITHHELD_BODIES: &str = "redaction.withheld_bodies";

/// Read the baseline's and the canary's sidecar tap files (`canary` may be empty: a single tap
/// on the baseline) and write the pairs under `out`, in time order, one directory per kind,
/// redacted as capture redacts (`redact`: its default headers always, plus the rules given).
/// Every trace is accounted for: per side, traces = paired + side-only + without an
/// `x-request-id` + unreadable, and those counters are in every file written.
pub fn import_envoy_tap(
    baseline: &[PathBuf],
    canary: &[PathBuf],
    out: &Path,
    agent: &str,
    redact: &RedactRules,
) -> Result<EnvoyTapSummary> {
    let b = envoy::read_side(baseline, false)?;
    let c = envoy::read_side(canary, true)?;
    let ignored = b.ignored.len() + c.ignored.len();
    let mut p = envoy::pair(b, c, agent);
    let unreadable = std::mem::take(&mut p.unreadable);
    // Secrets never reach a pair file: redact everything before the first file is opened, so
    // every file's counters hold the final figures.
    let redactor = Redactor::new(redact);
    let mut withheld = 0;
    for r in p.pairs.iter_mut().chain(&mut p.baseline_only).chain(&mut p.canary_only) {
        withheld += u64::from(redactor.apply(r));
    }
    let mut counters = p.baseline.counters("baseline");
    counters.insert(WITHHELD_BODIES.into(), withheld);
    counters.extend(p.canary.counters("canary"));
    counters.insert("pairs".into(), p.pairs.len() as u64);
    counters.insert("baseline_only".into(), p.baseline_only.len() as u64);
    counters.insert("canary_only".into(), p.canary_only.len() as u64);
    let show = |inputs: &[PathBuf]| inputs.iter().map(|i| i.display().to_string()).collect::<Vec<_>>();
    let mut outputs = Vec::new();
    for (part, records) in
        [(ENVOY_PAIRED, p.pairs), (ENVOY_BASELINE_ONLY, p.baseline_only), (ENVOY_CANARY_ONLY, p.canary_only)]
    {
        if records.is_empty() {
            continue;
        }
        let dir = out.join(part);
        let mut config = WriterConfig::new(&dir, agent);
        config.summary = serde_json::json!({
            "imported_from": "envoy-tap",
            "part": part,
            "baseline": show(baseline),
            "canary": show(canary),
            "redaction": redact.summary(),
        });
        let mut counters = counters.clone();
        counters.insert("imported".to_owned(), records.len() as u64);
        config.counters = Some(Arc::new(move || counters.clone()));
        let mut writer = PairWriter::new(config)?;
        for r in records {
            writer.write(r)?;
        }
        let stats = writer.close()?;
        outputs.push(EnvoyTapOutput { part, dir, pairs: stats.rows_committed, files: stats.files });
    }
    Ok(EnvoyTapSummary {
        baseline: p.baseline,
        canary: p.canary,
        timed: p.timed,
        unreadable,
        withheld,
        mismatched: p.mismatched,
        without_request_id: p.without_request_id,
        ignored,
        outputs,
    })
}
