//! What the report shows beyond verdict.json, read from the files beside it: latencies from
//! `pairs.parquet` and numeric drift from `diffs.parquet` (through one projected-reader helper),
//! and the example pairs from `examples.json`. A file that cannot be read leaves its part of the
//! report out, with the reason.

use std::fs::File;
use std::path::Path;

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use shadowdiff_format::examples::{EXAMPLES_FILE, Example, ExamplesFile};
use shadowdiff_format::vocab::{DiffStatus, LatencyReference};

/// The most pairs whose latencies are drawn (a uniform stride over `pairs.parquet`).
pub const MAX_LATENCY_SAMPLES: usize = 20_000;
/// The most numeric differences drawn in the drift histogram.
pub const MAX_DRIFT_SAMPLES: usize = 50_000;

/// What the report shows beyond verdict.json: read from pairs.parquet, diffs.parquet and
/// examples.json. A file that cannot be read leaves its part of the report out, with the reason.
#[derive(Debug, Clone)]
pub struct RowData {
    pub latencies: Result<Latencies, String>,
    /// Relative deltas of real numeric differences.
    pub drift: Vec<f64>,
    pub drift_error: Option<String>,
    pub examples: Vec<Example>,
    pub examples_error: Option<String>,
    /// When the report was rendered, as shown in its header (empty: not shown).
    pub generated_at: String,
}

impl RowData {
    /// Reads what `dir` holds; latencies paired with the side the verdict judged against.
    pub fn read(dir: &Path, reference: LatencyReference) -> Self {
        let latencies = read_latencies(&dir.join("pairs.parquet"), MAX_LATENCY_SAMPLES, reference);
        let (drift, drift_error) = match read_drift(&dir.join("diffs.parquet"), MAX_DRIFT_SAMPLES) {
            Ok(d) => (d, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let (examples, examples_error) = match read_examples(&dir.join(EXAMPLES_FILE)) {
            Ok(e) => (e, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let generated_at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
        Self { latencies, drift, drift_error, examples, examples_error, generated_at }
    }
}

/// Reads `examples.json`.
pub fn read_examples(path: &Path) -> Result<Vec<Example>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: ExamplesFile =
        serde_json::from_str(&text).map_err(|e| format!("{} is not an examples file: {e}", path.display()))?;
    Ok(file.examples)
}

/// Reads the relative deltas `(canary − baseline) / |baseline|` of up to `max` real numeric
/// differences from `diffs.parquet` (a uniform stride over its rows).
pub fn read_drift(path: &Path, max: usize) -> Result<Vec<f64>, String> {
    let (reader, _) = open_projected(path, &["status", "baseline_number", "canary_number"])?;
    // Keep every `stride`-th real value; when the buffer fills, halve it and double the stride,
    // so the values kept stay a uniform stride over all of them whatever their count.
    let max = max.max(2);
    let mut stride = 1usize;
    let mut out = Vec::new();
    let mut seen = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        let (Some(st), Some(b), Some(c)) = (
            column::<StringArray>(&batch, "status"),
            column::<Float64Array>(&batch, "baseline_number"),
            column::<Float64Array>(&batch, "canary_number"),
        ) else {
            return Err(format!("{}: the status and number columns have unexpected types", path.display()));
        };
        for i in 0..batch.num_rows() {
            let real = st.is_valid(i)
                && st.value(i) == DiffStatus::Real.as_str()
                && b.is_valid(i)
                && c.is_valid(i)
                && b.value(i) != 0.0;
            if !real {
                continue;
            }
            if seen.is_multiple_of(stride) {
                if out.len() == max {
                    let mut k = 0;
                    out.retain(|_| {
                        k += 1;
                        k % 2 == 1
                    });
                    stride *= 2;
                }
                if seen.is_multiple_of(stride) {
                    out.push((c.value(i) - b.value(i)) / b.value(i).abs());
                }
            }
            seen += 1;
        }
    }
    Ok(out)
}

/// Opens a Parquet file reading only the leaf columns named, and says how many rows it has.
fn open_projected(path: &Path, names: &[&str]) -> Result<(ParquetRecordBatchReader, usize), String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> = (0..schema.num_columns()).filter(|&i| names.contains(&schema.column(i).name())).collect();
    if wanted.len() != names.len() {
        return Err(format!("{} lacks one of the columns {}", path.display(), names.join(", ")));
    }
    let mask = ProjectionMask::leaves(schema, wanted);
    let reader = builder.with_projection(mask).build().map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((reader, rows))
}

/// A column of `batch` by name, as the array type expected.
fn column<T: Array + Clone + 'static>(batch: &RecordBatch, name: &str) -> Option<T> {
    batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<T>().cloned())
}

/// Paired latencies in milliseconds, sampled by stride.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    /// The side the canary is compared with: the baseline, or the secondary.
    pub reference: LatencyReference,
    pub reference_ms: Vec<f64>,
    pub canary_ms: Vec<f64>,
    /// Rows in the file.
    pub total: usize,
    /// The earliest and latest `captured_at` (µs since the epoch, UTC).
    pub window_us: Option<(i64, i64)>,
}

/// Reads up to `max` pairs' latencies from `pairs.parquet` (a uniform stride over its rows): the
/// canary's paired with `reference`'s (`baseline` or `secondary`; `auto` reads the baseline).
pub fn read_latencies(path: &Path, max: usize, reference: LatencyReference) -> Result<Latencies, String> {
    let reference = match reference {
        LatencyReference::Secondary => LatencyReference::Secondary,
        _ => LatencyReference::Baseline,
    };
    let (latency, error) = (format!("{reference}_latency_us"), format!("{reference}_error"));
    let (reader, total) =
        open_projected(path, &[&latency, "canary_latency_us", &error, "canary_error", "captured_at"])?;
    let stride = total.div_ceil(max.max(1)).max(1);
    let mut out = Latencies { total, reference, ..Latencies::default() };
    let mut row = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        let (Some(b), Some(c), Some(be), Some(ce), Some(at)) = (
            column::<UInt64Array>(&batch, &latency),
            column::<UInt64Array>(&batch, "canary_latency_us"),
            column::<StringArray>(&batch, &error),
            column::<StringArray>(&batch, "canary_error"),
            column::<TimestampMicrosecondArray>(&batch, "captured_at"),
        ) else {
            return Err(format!("{}: the latency, error or captured_at columns have unexpected types", path.display()));
        };
        for i in 0..batch.num_rows() {
            if at.is_valid(i) {
                let t = at.value(i);
                out.window_us = Some(out.window_us.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
            }
            // As the statistics count them: both sides answered without a transport error.
            let usable = b.is_valid(i) && c.is_valid(i) && be.is_null(i) && ce.is_null(i);
            if row.is_multiple_of(stride) && usable && out.reference_ms.len() < max {
                out.reference_ms.push(b.value(i) as f64 / 1000.0);
                out.canary_ms.push(c.value(i) as f64 / 1000.0);
            }
            row += 1;
        }
    }
    Ok(out)
}
