//! The one pair reader: resolves inputs (files, directories searched recursively, globs), checks
//! each file before reading it, and streams record batches with column projection.
//!
//! Memory is bounded by one batch per open file, never by the input: files are opened one at a
//! time and read a batch at a time. Files rewritten by other tools (DuckDB, polars, pandas) are
//! accepted when their columns carry compatible types (large or view strings, other timestamp
//! units, wider integers); values are cast to the canonical schema, and a value that does not fit
//! is an error, never silently changed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_cast::{CastOptions, cast_with_options};
use arrow_schema::{DataType, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::batch::{DecodeError, batch_to_records};
use super::pair::PairRecord;
use super::schema::{self, SCHEMA, meta};
use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"PAR1";

/// Resolve user inputs into pair files, in a stable order without duplicates.
///
/// An input is a file (taken as it is, whatever its name), a directory (searched recursively for
/// `*.parquet`, skipping hidden and `_`-prefixed entries such as the writer's temporaries), or a
/// glob (`*`, `?`, `[..]`, `**`). An input that matches nothing is an error naming it.
pub fn resolve_inputs<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for input in inputs {
        let input = input.as_ref();
        let found = resolve_one(input)?;
        if found.is_empty() {
            return Err(Error::NoPairFiles { input: input.to_owned() });
        }
        for path in found {
            if seen.insert(path.clone()) {
                out.push(path);
            }
        }
    }
    Ok(out)
}

fn resolve_one(input: &str) -> Result<Vec<PathBuf>> {
    let path = Path::new(input);
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    if path.is_dir() {
        return walk(path);
    }
    if input.contains(['*', '?', '[']) {
        let entries =
            glob::glob(input).map_err(|e| Error::BadGlob { pattern: input.to_owned(), message: e.msg.to_owned() })?;
        let mut out = Vec::new();
        for entry in entries {
            let p = entry.map_err(|e| Error::Io { path: e.path().to_owned(), source: e.into() })?;
            if p.is_dir() {
                out.extend(walk(&p)?);
            } else if !is_hidden(&p) {
                out.push(p);
            }
        }
        return Ok(out);
    }
    Err(Error::NotFound { path: path.to_owned() })
}

fn is_hidden(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(e.path()));
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_owned();
            Error::Io { path, source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("filesystem loop")) }
        })?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|x| x == "parquet") {
            out.push(entry.into_path());
        }
    }
    Ok(out)
}

/// Hive partition values (`key=value` path components) of a path, e.g. `dt` and `hour`.
pub fn hive_partitions(path: &Path) -> BTreeMap<String, String> {
    path.parent()
        .into_iter()
        .flat_map(|p| p.components())
        .filter_map(|c| c.as_os_str().to_str())
        .filter_map(|c| c.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A time window over `captured_at`: pairs at or after `since` and before `until` (either bound
/// optional). Files are pruned by their Hive partitions before they are opened, and rows of the
/// files kept are filtered by [`TimeWindow::contains`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub since: Option<Instant>,
    pub until: Option<Instant>,
}

/// A point in time, in UTC, as `captured_at` holds it.
pub type Instant = DateTime<Utc>;

impl TimeWindow {
    /// No bound: every pair is in the window.
    pub fn is_unbounded(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// Whether a pair captured at `at` is in the window (`since <= at < until`).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }

    /// [`TimeWindow::contains`] for a `captured_at` value in microseconds since the epoch.
    pub fn contains_micros(&self, us: i64) -> bool {
        DateTime::from_timestamp_micros(us).is_some_and(|t| self.contains(t))
    }

    /// Whether the file at `path` may hold pairs in the window, judged by its Hive partitions
    /// alone (`dt=YYYY-MM-DD/hour=HH`, or `date=`). The writer names a partition after the hour of
    /// its file's first pair and keeps a late pair from the previous hour in the current file, so
    /// partition `H` holds pairs from `[H - 1h, H + 1h)`: it is pruned when that span misses the
    /// window. A path without a date partition, or with values that do not parse, is kept.
    pub fn may_hold(&self, path: &Path) -> bool {
        let Some((start, len)) = partition_span(&hive_partitions(path)) else {
            return true;
        };
        let hour = chrono::Duration::hours(1);
        let (first, end) = (start - hour, start + len);
        self.since.is_none_or(|s| end > s) && self.until.is_none_or(|u| first < u)
    }

    /// Splits `files` into those that may hold pairs in the window, in order, and the count of
    /// those pruned.
    pub fn prune(&self, files: Vec<PathBuf>) -> (Vec<PathBuf>, usize) {
        let before = files.len();
        let kept: Vec<PathBuf> = files.into_iter().filter(|f| self.may_hold(f)).collect();
        let pruned = before - kept.len();
        (kept, pruned)
    }
}

/// The start of the span a file's Hive partitions name and its length: a day (`dt=` or `date=`
/// alone) or an hour (with `hour=`).
fn partition_span(parts: &BTreeMap<String, String>) -> Option<(DateTime<Utc>, chrono::Duration)> {
    let day = parts.get("dt").or_else(|| parts.get("date"))?;
    let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    match parts.get("hour") {
        None => Some((day.and_hms_opt(0, 0, 0)?.and_utc(), chrono::Duration::days(1))),
        Some(h) => {
            let h: u32 = h.parse().ok().filter(|h| *h < 24)?;
            Some((day.and_hms_opt(h, 0, 0)?.and_utc(), chrono::Duration::hours(1)))
        }
    }
}

/// What a pair file's footer says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    pub path: PathBuf,
    pub partitions: BTreeMap<String, String>,
    pub size_bytes: u64,
    pub rows: u64,
    pub row_groups: usize,
    /// `None` when the file was rewritten by another tool that dropped shadowdiff's metadata.
    pub schema_version: Option<u32>,
    pub agent: Option<String>,
    pub run_id: Option<String>,
    pub file_seq: Option<u64>,
    pub closed_at: Option<DateTime<Utc>>,
    /// `measured` (default) or `recorded` (replay's canary-only mode).
    pub baseline_origin: String,
    pub config: serde_json::Value,
    pub counters: BTreeMap<String, u64>,
    /// Every key-value pair, for keys this version does not know.
    pub metadata: BTreeMap<String, String>,
}

/// A checked pair file, ready to stream.
pub struct PairFile {
    pub info: Arc<FileInfo>,
    builder: ParquetRecordBatchReaderBuilder<File>,
    file_schema: SchemaRef,
}

impl PairFile {
    /// Open and check a file: Parquet magic at both ends, a readable footer, a compatible
    /// schema, a schema version this build understands.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io { path: path.to_owned(), source };
        let mut file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size == 0 {
            return Err(Error::EmptyFile { path: path.to_owned() });
        }
        let mut head = [0u8; 4];
        let n = read_up_to(&mut file, &mut head).map_err(io)?;
        if n < 4 || &head != MAGIC {
            return Err(Error::NotParquet { path: path.to_owned() });
        }
        let mut tail = [0u8; 4];
        if size < 12 {
            return Err(Error::Truncated { path: path.to_owned() });
        }
        file.seek(SeekFrom::End(-4)).map_err(io)?;
        read_up_to(&mut file, &mut tail).map_err(io)?;
        if &tail != MAGIC {
            return Err(Error::Truncated { path: path.to_owned() });
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let pages = file.try_clone().map_err(io)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|source| Error::Corrupt { path: path.to_owned(), source })?;
        let file_schema = builder.schema().clone();
        check_schema(path, &file_schema)?;

        let md = builder.metadata();
        // The parquet crate panics on some damaged page headers too (an unwrap in
        // PageMetadata::try_from, found by the suite's mutation run): a damaged file.
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_chunks(md).and_then(|()| check_pages(md, pages))
        }))
        .unwrap_or_else(|panic| Err(panic_message(panic.as_ref())));
        checked.map_err(|message| Error::Corrupt {
            path: path.to_owned(),
            source: parquet::errors::ParquetError::General(message),
        })?;
        let kv: BTreeMap<String, String> = md
            .file_metadata()
            .key_value_metadata()
            .into_iter()
            .flatten()
            .filter_map(|kv| kv.value.as_ref().map(|v| (kv.key.clone(), v.clone())))
            .collect();
        let bad = |key: &str, message: String| Error::BadMetadata { path: path.to_owned(), key: key.into(), message };
        let schema_version = match kv.get(meta::SCHEMA_VERSION) {
            None => None,
            Some(v) => {
                let v: u32 = v
                    .trim()
                    .parse()
                    .map_err(|_| bad(meta::SCHEMA_VERSION, format!("`{v}` is not a version number")))?;
                if v > schema::SCHEMA_VERSION {
                    return Err(Error::NewerSchemaVersion {
                        path: path.to_owned(),
                        found: v,
                        supported: schema::SCHEMA_VERSION,
                    });
                }
                Some(v)
            }
        };
        let config = match kv.get(meta::CONFIG) {
            None => serde_json::Value::Null,
            Some(s) => serde_json::from_str(s).map_err(|e| bad(meta::CONFIG, format!("not JSON ({e})")))?,
        };
        let counters = match kv.get(meta::COUNTERS) {
            None => BTreeMap::new(),
            Some(s) => serde_json::from_str(s)
                .map_err(|e| bad(meta::COUNTERS, format!("not a JSON object of counters ({e})")))?,
        };
        let info = FileInfo {
            path: path.to_owned(),
            partitions: hive_partitions(path),
            size_bytes: size,
            rows: u64::try_from(md.file_metadata().num_rows()).unwrap_or(0),
            row_groups: md.num_row_groups(),
            schema_version,
            agent: kv.get(meta::AGENT).cloned(),
            run_id: kv.get(meta::RUN_ID).cloned(),
            file_seq: kv.get(meta::FILE_SEQ).and_then(|s| s.parse().ok()),
            closed_at: kv
                .get(meta::CLOSED_AT)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc)),
            baseline_origin: kv.get(meta::BASELINE_ORIGIN).cloned().unwrap_or_else(|| "measured".into()),
            config,
            counters,
            metadata: kv,
        };
        Ok(Self { info: Arc::new(info), builder, file_schema })
    }

    /// Stream the file's rows in batches of at most `batch_size`, with only `columns` (all when
    /// `None`), cast to the canonical pair schema.
    pub fn batches(self, batch_size: usize, columns: Option<&[&str]>) -> Result<FileBatches> {
        let path = self.info.path.clone();
        let names: Vec<String> = match columns {
            None => SCHEMA.fields().iter().map(|f| f.name().clone()).collect(),
            Some(cols) => {
                for c in cols {
                    if SCHEMA.field_with_name(c).is_err() {
                        return Err(Error::BadSetting {
                            setting: "columns",
                            message: format!("`{c}` is not a pair column"),
                        });
                    }
                }
                cols.iter().map(|c| (*c).to_owned()).collect()
            }
        };
        let indices: Vec<usize> = names.iter().filter_map(|n| self.file_schema.index_of(n).ok()).collect();
        let mask = ProjectionMask::roots(self.builder.parquet_schema(), indices);
        let reader = self
            .builder
            .with_batch_size(batch_size.max(1))
            .with_projection(mask)
            .build()
            .map_err(|source| Error::Corrupt { path: path.clone(), source })?;
        let target = Arc::new(Schema::new(
            names.iter().map(|n| SCHEMA.field_with_name(n).expect("checked above").clone()).collect::<Vec<_>>(),
        ));
        Ok(FileBatches { info: self.info, reader, target, broken: false })
    }
}

/// The parquet reader asserts (panics) when a column chunk's offset or size in the footer is
/// negative; such a footer is damaged, and is refused here before any chunk is read.
fn check_chunks(md: &parquet::file::metadata::ParquetMetaData) -> std::result::Result<(), String> {
    for (g, group) in md.row_groups().iter().enumerate() {
        for (c, chunk) in group.columns().iter().enumerate() {
            let start = chunk.dictionary_page_offset().unwrap_or_else(|| chunk.data_page_offset());
            if start < 0 || chunk.compressed_size() < 0 {
                return Err(format!(
                    "row group {g} column {c} ({}) starts at byte {start} and is {} bytes long",
                    chunk.column_path(),
                    chunk.compressed_size()
                ));
            }
        }
    }
    Ok(())
}

/// What a panic of the parquet crate said, as the reason a file is damaged.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let why = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a page does not decode".to_owned());
    format!("the parquet reader failed: {why}")
}

/// Values a column chunk may hold per row: generous for the list columns (headers, trailers),
/// far below what an RLE bomb claims.
const MAX_VALUES_PER_ROW: i64 = 1 << 16;

/// The parquet reader allocates what a column chunk's pages announce, and run-length encoding
/// lets a page of a few bytes announce hundreds of millions of values; a 12 KB file found by
/// fuzzing, whose chunk went on past its last page with bytes that are not a page header, made
/// it allocate 3 GB for one batch of 64 rows. So before any page is decoded, every page header of
/// every chunk is read (without its data): a header that does not parse refuses the file, the
/// footer's value count is held to [`MAX_VALUES_PER_ROW`] per row, and the pages' counts to the
/// footer's.
fn check_pages(md: &parquet::file::metadata::ParquetMetaData, file: File) -> std::result::Result<(), String> {
    use parquet::column::page::PageReader as _;
    let file = Arc::new(file);
    for (g, group) in md.row_groups().iter().enumerate() {
        let rows = group.num_rows().max(0);
        for (c, chunk) in group.columns().iter().enumerate() {
            let claimed = chunk.num_values();
            let name = chunk.column_path();
            if claimed < 0 || claimed > rows.max(1).saturating_mul(MAX_VALUES_PER_ROW) {
                return Err(format!("row group {g} column {c} ({name}) claims {claimed} values for {rows} rows"));
            }
            let bad = |e: parquet::errors::ParquetError| format!("row group {g} column {c} ({name}): {e}");
            let mut pages = parquet::file::serialized_reader::SerializedPageReader::new(
                Arc::clone(&file),
                chunk,
                rows as usize,
                None,
            )
            .map_err(bad)?;
            let mut seen: i64 = 0;
            while let Some(page) = pages.peek_next_page().map_err(bad)? {
                if !page.is_dict {
                    seen = seen.saturating_add(page.num_levels.unwrap_or(0) as i64);
                    if seen > claimed {
                        return Err(format!(
                            "row group {g} column {c} ({name}): its pages hold more than the {claimed} values its footer counts"
                        ));
                    }
                }
                pages.skip_next_page().map_err(bad)?;
            }
        }
    }
    Ok(())
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Every canonical column must be present with a type that casts losslessly to its own, but for
/// columns added after version 1, which a file written before them lacks (they read as empty).
fn check_schema(path: &Path, found: &Schema) -> Result<()> {
    let added = schema::added_columns();
    for field in SCHEMA.fields() {
        let mismatch = |found: String| Error::SchemaMismatch {
            path: path.to_owned(),
            column: field.name().clone(),
            expected: field.data_type().to_string(),
            found,
        };
        match found.field_with_name(field.name()) {
            Err(_) if added.contains(&field.name().as_str()) => {}
            Err(_) => return Err(mismatch("missing".into())),
            Ok(f) if !compatible(f.data_type(), field.data_type()) => {
                return Err(mismatch(f.data_type().to_string()));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

fn compatible(found: &DataType, expected: &DataType) -> bool {
    use DataType::*;
    let is_string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let is_binary = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView);
    match (found, expected) {
        (a, b) if a == b => true,
        (a, b) if is_string(b) => is_string(a),
        (a, b) if is_binary(b) => is_binary(a) || is_string(a),
        (Timestamp(..), Timestamp(..)) => true,
        (a, UInt16 | UInt64) => a.is_integer(),
        (List(a) | LargeList(a), List(b)) => compatible(a.data_type(), b.data_type()),
        (Struct(a), Struct(b)) => b.iter().all(|bf| {
            a.iter().find(|af| af.name() == bf.name()).is_some_and(|af| compatible(af.data_type(), bf.data_type()))
        }),
        _ => false,
    }
}

/// The batches of one file, cast to the canonical schema.
pub struct FileBatches {
    pub info: Arc<FileInfo>,
    reader: ParquetRecordBatchReader,
    target: SchemaRef,
    /// The parquet reader panicked on a damaged page: nothing more is read from it.
    broken: bool,
}

impl FileBatches {
    fn conform(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let path = &self.info.path;
        if batch.schema().fields() == self.target.fields() {
            return Ok(batch);
        }
        let options = CastOptions { safe: false, ..Default::default() };
        let mut columns = Vec::with_capacity(self.target.fields().len());
        for field in self.target.fields() {
            if batch.column_by_name(field.name()).is_none() && schema::added_columns().contains(&field.name().as_str())
            {
                columns.push(empty_lists(field, batch.num_rows()).map_err(|message| Error::BadValue {
                    path: path.clone(),
                    column: field.name().clone(),
                    row: 0,
                    message,
                })?);
                continue;
            }
            let col = batch.column_by_name(field.name()).ok_or_else(|| Error::SchemaMismatch {
                path: path.clone(),
                column: field.name().clone(),
                expected: field.data_type().to_string(),
                found: "missing".into(),
            })?;
            let col = if col.data_type() == field.data_type() {
                col.clone()
            } else if let (DataType::Timestamp(unit, _), DataType::Timestamp(TimeUnit::Microsecond, tz)) =
                (col.data_type(), field.data_type())
            {
                to_micros(col, *unit, tz.clone()).map_err(|message| Error::BadValue {
                    path: path.clone(),
                    column: field.name().clone(),
                    row: 0,
                    message,
                })?
            } else {
                cast_with_options(col, field.data_type(), &options).map_err(|e| Error::BadValue {
                    path: path.clone(),
                    column: field.name().clone(),
                    row: 0,
                    message: format!("cannot convert {} to {}: {e}", col.data_type(), field.data_type()),
                })?
            };
            columns.push(col);
        }
        RecordBatch::try_new(self.target.clone(), columns).map_err(|e| Error::BadValue {
            path: path.clone(),
            column: "*".into(),
            row: 0,
            message: e.to_string(),
        })
    }
}

/// A column of `rows` empty lists of `field`'s type: a column the file predates (trailers).
fn empty_lists(field: &arrow_schema::Field, rows: usize) -> std::result::Result<ArrayRef, String> {
    let DataType::List(item) = field.data_type() else {
        return Err(format!("{} is not a list column", field.name()));
    };
    let values = arrow_array::new_empty_array(item.data_type());
    let offsets = arrow_buffer::OffsetBuffer::new_zeroed(rows);
    arrow_array::ListArray::try_new(item.clone(), offsets, values, None)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| e.to_string())
}

/// Timestamps in any unit and zone, as UTC microseconds. Done by hand rather than by
/// `arrow_cast`, which would need a time-zone database to relabel zones; instants are absolute,
/// so only the unit changes.
fn to_micros(col: &ArrayRef, unit: TimeUnit, tz: Option<Arc<str>>) -> std::result::Result<ArrayRef, String> {
    let raw = cast_with_options(col, &DataType::Int64, &CastOptions::default()).map_err(|e| e.to_string())?;
    let raw = raw.as_any().downcast_ref::<Int64Array>().ok_or("timestamp did not convert to integers")?;
    let convert = |v: i64| -> std::result::Result<i64, String> {
        match unit {
            TimeUnit::Second => v.checked_mul(1_000_000).ok_or_else(|| format!("{v} s overflows microseconds")),
            TimeUnit::Millisecond => v.checked_mul(1_000).ok_or_else(|| format!("{v} ms overflows microseconds")),
            TimeUnit::Microsecond => Ok(v),
            TimeUnit::Nanosecond => Ok(v.div_euclid(1_000)),
        }
    };
    let values =
        raw.iter().map(|v| v.map(convert).transpose()).collect::<std::result::Result<Vec<Option<i64>>, String>>()?;
    Ok(Arc::new(TimestampMicrosecondArray::from(values).with_timezone_opt(tz)))
}

impl Iterator for FileBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.broken {
            return None;
        }
        // The parquet crate asserts on some damaged pages instead of returning an error
        // (definition levels longer than their buffer panic in arrow-buffer): a damaged file is
        // bad input, told as such, never a crash. The reader is not used again after a panic.
        let reader = &mut self.reader;
        let batch = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next())) {
            Ok(batch) => batch?,
            Err(panic) => {
                self.broken = true;
                return Some(Err(Error::Corrupt {
                    path: self.info.path.clone(),
                    source: parquet::errors::ParquetError::General(panic_message(panic.as_ref())),
                }));
            }
        };
        Some(
            batch
                .map_err(|e| Error::Corrupt { path: self.info.path.clone(), source: e.into() })
                .and_then(|b| self.conform(b)),
        )
    }
}

/// How a [`PairReader`] reads.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub batch_size: usize,
    /// Columns to read; `None` reads all.
    pub columns: Option<Vec<&'static str>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self { batch_size: 4096, columns: None }
    }
}

/// A batch and the file it came from.
pub struct PairBatch {
    pub file: Arc<FileInfo>,
    pub batch: RecordBatch,
}

impl PairBatch {
    /// Decode into records; needs every column (no projection).
    pub fn records(&self) -> Result<Vec<PairRecord>> {
        batch_to_records(&self.batch).map_err(|DecodeError { column, row, message }| Error::BadValue {
            path: self.file.path.clone(),
            column,
            row,
            message,
        })
    }
}

/// Streams batches from many pair files, one file open at a time.
pub struct PairReader {
    files: std::vec::IntoIter<PathBuf>,
    options: ReadOptions,
    current: Option<FileBatches>,
}

impl PairReader {
    /// Resolve `inputs` and prepare to stream them. Files are opened and checked lazily, in
    /// order; use [`PairReader::check_all`] first to fail before any work is done.
    pub fn open<S: AsRef<str>>(inputs: &[S], options: ReadOptions) -> Result<Self> {
        let files = resolve_inputs(inputs)?;
        Ok(Self::from_files(files, options))
    }

    pub fn from_files(files: Vec<PathBuf>, options: ReadOptions) -> Self {
        Self { files: files.into_iter(), options, current: None }
    }

    /// Open every file's footer and check it, returning their descriptions.
    pub fn check_all(paths: &[PathBuf]) -> Result<Vec<Arc<FileInfo>>> {
        paths.iter().map(|p| PairFile::open(p).map(|f| f.info)).collect()
    }

    /// Read everything into records. For tests and small inputs only: memory grows with input.
    pub fn read_all_records<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<PairRecord>> {
        let mut out = Vec::new();
        for batch in Self::open(inputs, ReadOptions::default())? {
            out.extend(batch?.records()?);
        }
        Ok(out)
    }
}

impl Iterator for PairReader {
    type Item = Result<PairBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(current) = self.current.as_mut() {
                match current.next() {
                    Some(Ok(batch)) => return Some(Ok(PairBatch { file: current.info.clone(), batch })),
                    Some(Err(e)) => {
                        self.current = None;
                        return Some(Err(e));
                    }
                    None => self.current = None,
                }
            }
            let path = self.files.next()?;
            let opened =
                PairFile::open(&path).and_then(|f| f.batches(self.options.batch_size, self.options.columns.as_deref()));
            match opened {
                Ok(b) => self.current = Some(b),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).expect("test time")
    }

    fn window(since: Option<&str>, until: Option<&str>) -> TimeWindow {
        TimeWindow { since: since.map(at), until: until.map(at) }
    }

    #[test]
    fn contains_since_inclusive_until_exclusive() {
        let w = window(Some("2026-11-30T10:00:00Z"), Some("2026-11-30T12:00:00Z"));
        assert!(!w.contains(at("2026-11-30T09:59:59.999999Z")));
        assert!(w.contains(at("2026-11-30T10:00:00Z")));
        assert!(w.contains(at("2026-11-30T11:59:59Z")));
        assert!(!w.contains(at("2026-11-30T12:00:00Z")));
        assert!(TimeWindow::default().contains(at("1970-01-01T00:00:00Z")));
    }

    #[test]
    fn prunes_hours_that_cannot_hold_the_window() {
        let w = window(Some("2026-11-30T10:30:00Z"), Some("2026-11-30T12:00:00Z"));
        let p = |s: &str| PathBuf::from(s);
        // Hour 09 ends at 10:00, before since: pruned. Hour 10 and 11 overlap.
        assert!(!w.may_hold(&p("in/dt=2026-11-30/hour=09/a-1-000000.parquet")));
        assert!(w.may_hold(&p("in/dt=2026-11-30/hour=10/a-1-000000.parquet")));
        assert!(w.may_hold(&p("in/dt=2026-11-30/hour=11/a-1-000000.parquet")));
        // Hour 12 may hold late pairs from hour 11; hour 13 cannot hold anything before 12:00.
        assert!(w.may_hold(&p("in/dt=2026-11-30/hour=12/a-1-000000.parquet")));
        assert!(!w.may_hold(&p("in/dt=2026-11-30/hour=13/a-1-000000.parquet")));
        // Other days, `date=` spelling, a day without an hour.
        assert!(!w.may_hold(&p("in/date=2026-11-29/hour=23/x.parquet")));
        assert!(!w.may_hold(&p("in/dt=2026-12-01/x.parquet")));
        assert!(w.may_hold(&p("in/dt=2026-11-30/x.parquet")));
        // Not partitioned, or values that do not parse: kept, and filtered by rows.
        assert!(w.may_hold(&p("in/pairs.parquet")));
        assert!(w.may_hold(&p("in/dt=yesterday/hour=09/x.parquet")));
        assert!(w.may_hold(&p("in/dt=2026-11-30/hour=25/x.parquet")));
        let (kept, pruned) = w.prune(vec![
            p("in/dt=2026-11-30/hour=09/a.parquet"),
            p("in/dt=2026-11-30/hour=10/a.parquet"),
            p("in/dt=2026-11-30/hour=13/a.parquet"),
        ]);
        assert_eq!((kept, pruned), (vec![p("in/dt=2026-11-30/hour=10/a.parquet")], 2));
        assert_eq!(TimeWindow::default().prune(vec![p("in/dt=2000-01-01/hour=00/a.parquet")]).1, 0);
    }
}
