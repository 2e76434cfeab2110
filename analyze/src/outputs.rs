//! `pairs.parquet` (one row per pair) and `diffs.parquet` (one row per difference): the analysis
//! at row level, for users to query with DuckDB, polars or pandas, and the input of the polars
//! aggregation. Column names are the `pub const`s below; `docs/verdict.md` documents them.
//!
//! Both files are written twice. Pass 1 streams the input and writes *raw* rows to temporary
//! files while the noise counters fill; once every (route, field) has its noise verdict, pass 2
//! streams the temporary files (not the input) and writes the final files with each
//! difference's status and each pair's count of real differences. Neither pass holds more than
//! a batch of rows.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Float64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::evaluate::{Evaluated, Found, Outcome};

pub const PAIRS_FILE: &str = "pairs.parquet";
pub const DIFFS_FILE: &str = "diffs.parquet";

// pairs.parquet
pub const PAIR_INDEX: &str = "pair_index";
pub const PAIR_ID: &str = "pair_id";
pub const CAPTURED_AT: &str = "captured_at";
pub const METHOD: &str = "method";
pub const PATH: &str = "path";
pub const ROUTE: &str = "route";
pub const BASELINE_STATUS: &str = "baseline_status";
pub const CANARY_STATUS: &str = "canary_status";
pub const SECONDARY_STATUS: &str = "secondary_status";
pub const BASELINE_LATENCY_US: &str = "baseline_latency_us";
pub const CANARY_LATENCY_US: &str = "canary_latency_us";
pub const BASELINE_ERROR: &str = "baseline_error";
pub const CANARY_ERROR: &str = "canary_error";
pub const SECONDARY_LATENCY_US: &str = "secondary_latency_us";
pub const SECONDARY_ERROR: &str = "secondary_error";
pub const BASELINE_FAILED: &str = "baseline_failed";
pub const CANARY_FAILED: &str = "canary_failed";
pub const OUTCOME: &str = "outcome";
pub const DIFFS_TOTAL: &str = "diffs_total";
pub const DIFFS_REAL: &str = "diffs_real";
pub const DIFFS_BREAKING: &str = "diffs_breaking";
pub const DIFFS_CHANGED: &str = "diffs_changed";
pub const DIFFS_ADDITIVE: &str = "diffs_additive";

// diffs.parquet
pub const LOCATION: &str = "location";
pub const DIFF_PATH: &str = "diff_path";
pub const FIELD: &str = "field";
pub const KIND: &str = "kind";
pub const SEVERITY: &str = "severity";
pub const EXPLAINED: &str = "explained";
pub const BASELINE_VALUE: &str = "baseline_value";
pub const CANARY_VALUE: &str = "canary_value";
pub const BASELINE_NUMBER: &str = "baseline_number";
pub const CANARY_NUMBER: &str = "canary_number";
pub const STATUS: &str = "status";
pub const STATUS_REASON: &str = "status_reason";

/// Values in diffs.parquet are JSON text cut to this many bytes (at a character boundary).
pub const VALUE_CAP: usize = 256;

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// The columns pass 1 writes to the temporary pairs file.
static RAW_PAIRS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(PAIR_INDEX, DataType::UInt64, false),
        utf8(PAIR_ID, false),
        Field::new(CAPTURED_AT, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        utf8(METHOD, false),
        utf8(PATH, false),
        utf8(ROUTE, false),
        Field::new(BASELINE_STATUS, DataType::UInt16, true),
        Field::new(CANARY_STATUS, DataType::UInt16, true),
        Field::new(SECONDARY_STATUS, DataType::UInt16, true),
        Field::new(BASELINE_LATENCY_US, DataType::UInt64, true),
        Field::new(CANARY_LATENCY_US, DataType::UInt64, true),
        utf8(BASELINE_ERROR, true),
        utf8(CANARY_ERROR, true),
        Field::new(BASELINE_FAILED, DataType::Boolean, false),
        Field::new(CANARY_FAILED, DataType::Boolean, false),
        utf8(OUTCOME, false),
        Field::new(DIFFS_TOTAL, DataType::UInt32, false),
        Field::new(SECONDARY_LATENCY_US, DataType::UInt64, true),
        utf8(SECONDARY_ERROR, true),
    ]))
});

/// pairs.parquet: the raw columns plus the counts pass 2 adds.
pub static PAIRS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = RAW_PAIRS.fields().iter().map(|f| f.as_ref().clone()).collect();
    for name in [DIFFS_REAL, DIFFS_BREAKING, DIFFS_CHANGED, DIFFS_ADDITIVE] {
        fields.push(Field::new(name, DataType::UInt32, false));
    }
    Arc::new(Schema::new(fields))
});

static RAW_DIFFS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(PAIR_INDEX, DataType::UInt64, false),
        utf8(PAIR_ID, false),
        utf8(ROUTE, false),
        utf8(LOCATION, false),
        utf8(DIFF_PATH, false),
        utf8(FIELD, false),
        utf8(KIND, false),
        utf8(SEVERITY, false),
        utf8(EXPLAINED, true),
        utf8(BASELINE_VALUE, true),
        utf8(CANARY_VALUE, true),
        Field::new(BASELINE_NUMBER, DataType::Float64, true),
        Field::new(CANARY_NUMBER, DataType::Float64, true),
    ]))
});

/// diffs.parquet: the raw columns plus each difference's status.
pub static DIFFS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = RAW_DIFFS.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(utf8(STATUS, false));
    fields.push(utf8(STATUS_REASON, true));
    Arc::new(Schema::new(fields))
});

/// Rows per row group of every file written here.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// How a [`Sink`] encodes.
enum Writer {
    /// Row groups encoded on the calling thread, as batches arrive.
    Serial(ArrowWriter<File>),
    /// Rows gathered into a row group, then its columns encoded in parallel on rayon's pool.
    Columns {
        file: SerializedFileWriter<File>,
        factory: ArrowRowGroupWriterFactory,
        schema: SchemaRef,
        /// Slices of batches, [`ROW_GROUP_ROWS`] rows at most in all.
        pending: Vec<RecordBatch>,
    },
}

impl Writer {
    fn write(&mut self, batch: &RecordBatch) -> parquet::errors::Result<()> {
        let mut at = 0;
        while at < batch.num_rows() {
            let full = match self {
                Writer::Serial(writer) => return writer.write(batch),
                Writer::Columns { pending, .. } => {
                    let gathered: usize = pending.iter().map(RecordBatch::num_rows).sum();
                    let take = (ROW_GROUP_ROWS - gathered).min(batch.num_rows() - at);
                    pending.push(batch.slice(at, take));
                    at += take;
                    gathered + take == ROW_GROUP_ROWS
                }
            };
            if full {
                self.encode_group()?;
            }
        }
        Ok(())
    }

    /// Encodes the rows gathered as one row group, each column on its own rayon task, and
    /// appends it to the file.
    fn encode_group(&mut self) -> parquet::errors::Result<()> {
        let Writer::Columns { file, factory, schema, pending } = self else { return Ok(()) };
        if pending.is_empty() {
            return Ok(());
        }
        let writers = factory.create_column_writers(file.flushed_row_groups().len())?;
        // Every column of these schemas is flat: one leaf, one writer, per field.
        let chunks = writers
            .into_par_iter()
            .enumerate()
            .map(|(i, mut column)| {
                for batch in pending.iter() {
                    for leaf in compute_leaves(schema.field(i), batch.column(i))? {
                        column.write(&leaf)?;
                    }
                }
                column.close()
            })
            .collect::<parquet::errors::Result<Vec<_>>>()?;
        let mut group = file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        pending.clear();
        Ok(())
    }

    fn close(mut self) -> parquet::errors::Result<()> {
        self.encode_group()?;
        match self {
            Writer::Serial(writer) => writer.close().map(drop),
            Writer::Columns { file, .. } => file.close().map(drop),
        }
    }
}

/// A Parquet file written under a temporary name and renamed into place at [`Sink::finish`].
/// A sink dropped unfinished (an error on the way, a full disk) removes its temporary.
pub struct Sink {
    /// `None` once [`Sink::finish`] took it.
    writer: Option<Writer>,
    tmp: PathBuf,
    path: PathBuf,
}

impl Sink {
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let (writer, tmp) = Self::arrow_writer(path, schema)?;
        Ok(Self { writer: Some(Writer::Serial(writer)), tmp, path: path.to_owned() })
    }

    /// A sink whose row groups are encoded a column per task on rayon's pool, for writing on a
    /// thread that would otherwise encode alone (pass 2). The file is the one [`Sink::create`]
    /// writes: the same row groups, properties and Arrow schema, each column encoded whole.
    pub fn create_parallel(path: &Path, schema: SchemaRef) -> Result<Self> {
        let (writer, tmp) = Self::arrow_writer(path, schema.clone())?;
        let (file, factory) = writer.into_serialized_writer().map_err(|e| output_error(&tmp, e))?;
        let writer = Writer::Columns { file, factory, schema, pending: Vec::new() };
        Ok(Self { writer: Some(writer), tmp, path: path.to_owned() })
    }

    fn arrow_writer(path: &Path, schema: SchemaRef) -> Result<(ArrowWriter<File>, PathBuf)> {
        let tmp = path.with_extension("parquet.partial");
        let file = File::create(&tmp).map_err(|source| Error::Output { path: tmp.clone(), source: source.into() })?;
        let props = WriterProperties::builder()
            .set_compression(ZstdLevel::try_new(1).map_or(Compression::SNAPPY, Compression::ZSTD))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            // Every pair_id is distinct: a dictionary of them only grows until parquet gives up on
            // it, after interning every value (1.5 % of an analysis' CPU, perf).
            .set_column_dictionary_enabled(ColumnPath::from(PAIR_ID), false)
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| output_error(&tmp, e))?;
        Ok((writer, tmp))
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::Internal {
                message: format!("{} was written after it was finished", self.path.display()),
            });
        };
        writer.write(batch).map_err(|e| output_error(&self.tmp, e))
    }

    pub fn finish(mut self) -> Result<PathBuf> {
        if let Some(writer) = self.writer.take() {
            writer.close().map_err(|e| output_error(&self.tmp, e))?;
        }
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|source| Error::Output { path: self.path.clone(), source: source.into() })?;
        Ok(self.path.clone())
    }
}

fn output_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::Output { path: path.to_owned(), source: e.into() }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Finished: the temporary was renamed and is gone; otherwise it is half a file.
        drop(self.writer.take());
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Reads a file this module wrote, batch by batch.
pub fn read(path: &Path) -> Result<impl Iterator<Item = Result<RecordBatch>>> {
    let err = |e| output_error(path, e);
    let file = File::open(path).map_err(|source| Error::Output { path: path.to_owned(), source: source.into() })?;
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(err)?.with_batch_size(8192).build().map_err(err)?;
    let path = path.to_owned();
    Ok(reader.map(move |b| b.map_err(|e| Error::Output { path: path.clone(), source: e.into() })))
}

fn cut(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > VALUE_CAP {
        let mut end = VALUE_CAP;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Builds raw pair rows for pass 1.
#[derive(Default)]
pub struct RawPairs {
    index: Vec<u64>,
    pair_id: Vec<String>,
    captured_at: Vec<i64>,
    method: Vec<String>,
    path: Vec<String>,
    route: Vec<String>,
    b_status: Vec<Option<u16>>,
    c_status: Vec<Option<u16>>,
    s_status: Vec<Option<u16>>,
    b_latency: Vec<Option<u64>>,
    c_latency: Vec<Option<u64>>,
    b_error: Vec<Option<String>>,
    c_error: Vec<Option<String>>,
    b_failed: Vec<bool>,
    c_failed: Vec<bool>,
    outcome: Vec<&'static str>,
    total: Vec<u32>,
    s_latency: Vec<Option<u64>>,
    s_error: Vec<Option<String>>,
}

impl RawPairs {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn push(&mut self, e: &Evaluated) {
        self.index.push(e.index);
        self.pair_id.push(e.pair_id.clone());
        self.captured_at.push(e.captured_at_us);
        self.method.push(e.method.clone());
        self.path.push(e.path.clone());
        self.route.push(e.route.clone());
        self.b_status.push(e.baseline.status);
        self.c_status.push(e.canary.status);
        self.s_status.push(e.secondary.as_ref().and_then(|s| s.status));
        self.b_latency.push(e.baseline.latency_us);
        self.c_latency.push(e.canary.latency_us);
        self.b_error.push(e.baseline.transport_error.clone());
        self.c_error.push(e.canary.transport_error.clone());
        self.b_failed.push(e.outcome != Outcome::CanarySkipped && e.baseline.is_error());
        self.c_failed.push(e.outcome != Outcome::CanarySkipped && e.canary.is_error());
        self.outcome.push(e.outcome.as_str());
        self.total.push(u32::try_from(e.raw.len()).unwrap_or(u32::MAX));
        self.s_latency.push(e.secondary.as_ref().and_then(|s| s.latency_us));
        self.s_error.push(e.secondary.as_ref().and_then(|s| s.transport_error.clone()));
    }

    pub fn take(&mut self) -> Result<RecordBatch> {
        let t = std::mem::take(self);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(t.index)),
            Arc::new(StringArray::from(t.pair_id)),
            Arc::new(TimestampMicrosecondArray::from(t.captured_at).with_timezone("UTC")),
            Arc::new(StringArray::from(t.method)),
            Arc::new(StringArray::from(t.path)),
            Arc::new(StringArray::from(t.route)),
            Arc::new(arrow_array::UInt16Array::from(t.b_status)),
            Arc::new(arrow_array::UInt16Array::from(t.c_status)),
            Arc::new(arrow_array::UInt16Array::from(t.s_status)),
            Arc::new(UInt64Array::from(t.b_latency)),
            Arc::new(UInt64Array::from(t.c_latency)),
            Arc::new(StringArray::from(t.b_error)),
            Arc::new(StringArray::from(t.c_error)),
            Arc::new(arrow_array::BooleanArray::from(t.b_failed)),
            Arc::new(arrow_array::BooleanArray::from(t.c_failed)),
            Arc::new(StringArray::from(t.outcome)),
            Arc::new(arrow_array::UInt32Array::from(t.total)),
            Arc::new(UInt64Array::from(t.s_latency)),
            Arc::new(StringArray::from(t.s_error)),
        ];
        batch(RAW_PAIRS.clone(), columns)
    }

    pub fn schema() -> SchemaRef {
        RAW_PAIRS.clone()
    }
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema, columns)
        .map_err(|e| Error::Internal { message: format!("building an output batch: {e}") })
}

/// Builds raw difference rows for pass 1.
pub struct RawDiffs {
    index: UInt64Builder,
    pair_id: StringBuilder,
    route: StringBuilder,
    location: StringBuilder,
    path: StringBuilder,
    field: StringBuilder,
    kind: StringBuilder,
    severity: StringBuilder,
    explained: StringBuilder,
    baseline: StringBuilder,
    canary: StringBuilder,
    b_num: Float64Builder,
    c_num: Float64Builder,
    rows: usize,
}

impl Default for RawDiffs {
    fn default() -> Self {
        Self {
            index: UInt64Builder::new(),
            pair_id: StringBuilder::new(),
            route: StringBuilder::new(),
            location: StringBuilder::new(),
            path: StringBuilder::new(),
            field: StringBuilder::new(),
            kind: StringBuilder::new(),
            severity: StringBuilder::new(),
            explained: StringBuilder::new(),
            baseline: StringBuilder::new(),
            canary: StringBuilder::new(),
            b_num: Float64Builder::new(),
            c_num: Float64Builder::new(),
            rows: 0,
        }
    }
}

impl RawDiffs {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn push(&mut self, e: &Evaluated, f: &Found) {
        let d = &f.diff;
        self.index.append_value(e.index);
        self.pair_id.append_value(&e.pair_id);
        self.route.append_value(&e.route);
        self.location.append_value(f.location.as_str());
        self.path.append_value(&d.path);
        self.field.append_value(&d.field);
        self.kind.append_value(d.kind.as_str());
        self.severity.append_value(d.severity.as_str());
        self.explained.append_option(d.explained.as_deref());
        self.baseline.append_option(d.baseline.as_ref().map(cut));
        self.canary.append_option(d.canary.as_ref().map(cut));
        self.b_num.append_option(d.baseline.as_ref().and_then(Value::as_f64));
        self.c_num.append_option(d.canary.as_ref().and_then(Value::as_f64));
        self.rows += 1;
    }

    pub fn take(&mut self) -> Result<RecordBatch> {
        self.rows = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.index.finish()),
            Arc::new(self.pair_id.finish()),
            Arc::new(self.route.finish()),
            Arc::new(self.location.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.field.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.explained.finish()),
            Arc::new(self.baseline.finish()),
            Arc::new(self.canary.finish()),
            Arc::new(self.b_num.finish()),
            Arc::new(self.c_num.finish()),
        ];
        batch(RAW_DIFFS.clone(), columns)
    }

    pub fn schema() -> SchemaRef {
        RAW_DIFFS.clone()
    }
}

/// Appends `status` and `status_reason` to a raw diffs batch.
pub fn finish_diffs(raw: &RecordBatch, status: Vec<&str>, reason: Vec<Option<String>>) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = raw.columns().to_vec();
    columns.push(Arc::new(StringArray::from(status)));
    columns.push(Arc::new(StringArray::from(reason)));
    batch(DIFFS_SCHEMA.clone(), columns)
}

/// Per-pair counts of real differences, added by pass 2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RealCounts {
    pub real: u32,
    pub breaking: u32,
    pub changed: u32,
    pub additive: u32,
}

/// Appends the real-difference counts to a raw pairs batch and refines `outcome` for compared
/// pairs: `same`, `noise_only` or `different`.
pub fn finish_pairs(raw: &RecordBatch, counts: &[RealCounts]) -> Result<RecordBatch> {
    let n = raw.num_rows();
    let outcome = column::<StringArray>(raw, OUTCOME)?;
    let total = column::<arrow_array::UInt32Array>(raw, DIFFS_TOTAL)?;
    let mut refined = StringBuilder::with_capacity(n, n * 8);
    for (i, c) in counts.iter().enumerate().take(n) {
        let o = outcome.value(i);
        refined.append_value(match o {
            "compared" if c.real > 0 => "different",
            "compared" if total.value(i) > 0 => "noise_only",
            "compared" => "same",
            other => other,
        });
    }
    let mut columns: Vec<ArrayRef> = raw.columns().to_vec();
    let outcome_at = raw.schema().index_of(OUTCOME).map_err(|e| Error::Internal { message: e.to_string() })?;
    columns[outcome_at] = Arc::new(refined.finish());
    let mut builders = [
        UInt32Builder::with_capacity(n),
        UInt32Builder::with_capacity(n),
        UInt32Builder::with_capacity(n),
        UInt32Builder::with_capacity(n),
    ];
    for c in counts.iter().take(n) {
        for (b, v) in builders.iter_mut().zip([c.real, c.breaking, c.changed, c.additive]) {
            b.append_value(v);
        }
    }
    for mut b in builders {
        columns.push(Arc::new(b.finish()));
    }
    batch(PAIRS_SCHEMA.clone(), columns)
}

/// A typed column of a batch this module wrote.
/// A shard's raw rows as rows of the whole input: `pair_index` shifted by `offset` (the pairs
/// kept by earlier shards) and each route renamed by `rename` (the route cap settled over every
/// shard). The batch is returned unchanged when neither changes anything.
pub fn rebase(batch: RecordBatch, offset: u64, rename: &dyn Fn(&str) -> Option<String>) -> Result<RecordBatch> {
    let route = column::<StringArray>(&batch, ROUTE)?;
    let renamed: Vec<Option<String>> = route.iter().map(|r| r.and_then(rename)).collect();
    let any_renamed = renamed.iter().any(Option::is_some);
    if offset == 0 && !any_renamed {
        return Ok(batch);
    }
    let schema = batch.schema();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    if offset != 0 {
        let i = schema.index_of(PAIR_INDEX).map_err(|e| Error::Internal { message: e.to_string() })?;
        let index = column::<UInt64Array>(&batch, PAIR_INDEX)?;
        columns[i] = Arc::new(index.iter().map(|v| v.map(|v| v + offset)).collect::<UInt64Array>());
    }
    if any_renamed {
        let i = schema.index_of(ROUTE).map_err(|e| Error::Internal { message: e.to_string() })?;
        let routes: StringArray =
            route.iter().zip(&renamed).map(|(r, n)| n.as_deref().or(r).map(str::to_owned)).collect();
        columns[i] = Arc::new(routes);
    }
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Internal { message: e.to_string() })
}

pub fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| Error::Internal { message: format!("output column `{name}` is missing or mistyped") })
}

#[cfg(test)]
mod tests {
    use arrow_array::{Float64Array, UInt64Array};

    use super::*;

    /// A batch of `n` rows starting at `from`: an id, a number with nulls, a string.
    fn batch(schema: &SchemaRef, from: u64, n: usize) -> RecordBatch {
        let ids: Vec<u64> = (from..from + n as u64).collect();
        let numbers: Vec<Option<f64>> = ids.iter().map(|i| (i % 7 != 0).then_some(*i as f64 / 3.0)).collect();
        let text: Vec<String> = ids.iter().map(|i| format!("row {i} {}", "x".repeat((*i % 13) as usize))).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(ids)),
            Arc::new(Float64Array::from(numbers)),
            Arc::new(StringArray::from(text)),
        ];
        RecordBatch::try_new(schema.clone(), columns).unwrap()
    }

    #[test]
    fn a_parallel_sink_writes_the_file_a_serial_one_does() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("number", DataType::Float64, true),
            Field::new(PAIR_ID, DataType::Utf8, false),
        ]));
        let dir = tempfile::tempdir().unwrap();
        // Batches of uneven sizes, so that row groups begin and end inside batches.
        let sizes = [5000, ROW_GROUP_ROWS - 1, 3, 70_000, 1, 20_000];
        let mut written = Vec::new();
        for (name, parallel) in [("serial.parquet", false), ("parallel.parquet", true)] {
            let path = dir.path().join(name);
            let mut sink = if parallel {
                Sink::create_parallel(&path, schema.clone())
            } else {
                Sink::create(&path, schema.clone())
            }
            .unwrap();
            let mut from = 0;
            for n in sizes {
                sink.write(&batch(&schema, from, n)).unwrap();
                from += n as u64;
            }
            assert_eq!(sink.finish().unwrap(), path);
            let file = parquet::file::reader::SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
            let groups: Vec<i64> = {
                use parquet::file::reader::FileReader;
                file.metadata().row_groups().iter().map(|g| g.num_rows()).collect()
            };
            let batches: Vec<RecordBatch> = read(&path).unwrap().collect::<Result<_>>().unwrap();
            written.push((groups, rows(&batches)));
        }
        let total: usize = sizes.iter().sum();
        assert_eq!(written[0].0.iter().sum::<i64>(), total as i64);
        assert_eq!(written[0].0[0], ROW_GROUP_ROWS as i64);
        assert_eq!(written[0], written[1], "row groups and rows");
        assert_eq!(written[1].1, rows(&[batch(&schema, 0, total)]));
    }

    type Rows = (Vec<u64>, Vec<Option<f64>>, Vec<String>);

    /// The rows of `batches`, column by column.
    fn rows(batches: &[RecordBatch]) -> Rows {
        let mut out: Rows = Default::default();
        for b in batches {
            let ids = b.column(0).as_any().downcast_ref::<UInt64Array>().unwrap();
            let numbers = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
            let text = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
            out.0.extend(ids.values().iter().copied());
            out.1.extend(numbers.iter());
            out.2.extend(text.iter().map(|t| t.unwrap_or_default().to_owned()));
        }
        out
    }
}
