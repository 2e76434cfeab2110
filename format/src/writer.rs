//! The one pair writer: batches rows into row groups, compresses with zstd, rotates files by
//! rows, bytes and age, and makes a file visible only once it is whole.
//!
//! A file is written as `.<name>.tmp` beside its final name and renamed after the Parquet footer
//! is written and synced, so a reader never sees half a file and a killed writer leaves only
//! hidden temporaries behind. Final names are Hive-partitioned by the hour of the file's first
//! pair: `DIR/dt=YYYY-MM-DD/hour=HH/<agent>-<start>-<seq>.parquet`. A pair from a later hour
//! than its file's starts a new file; a late pair from an earlier hour stays in the current one,
//! so partitions can hold a few pairs from the previous hour (never from a later one).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::batch::records_to_batch;
use super::pair::PairRecord;
use super::schema::{self, SCHEMA, meta};
use crate::error::{Error, Result, WriteError};

/// Where the baseline side of the pairs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BaselineOrigin {
    /// Every side was called by the run that wrote the file.
    #[default]
    Measured,
    /// The baseline side was copied from earlier pair files (replay's canary-only mode): its
    /// latencies come from another environment and time.
    Recorded,
}

impl BaselineOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineOrigin::Measured => "measured",
            BaselineOrigin::Recorded => "recorded",
        }
    }
}

/// Counters supplied by the owner of the writer (capture: seen, mirrored, dropped by reason),
/// read each time a file is closed and stored cumulatively in its metadata.
pub type CounterSource = Arc<dyn Fn() -> BTreeMap<String, u64> + Send + Sync>;

/// Key-value metadata supplied by the owner of the writer and learnt while it runs (capture: the
/// baseline's gRPC descriptors, from server reflection), read each time a file is closed.
pub type MetadataSource = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// A file the writer has just closed and renamed to its final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    /// The writer's run id (also in the file's metadata).
    pub run_id: String,
}

/// Called on the writer's thread after each file is closed (the uploader queues it). It must not
/// block: the writer, and behind it capture's queue, wait for it.
pub type CloseHook = Arc<dyn Fn(&ClosedFile) + Send + Sync>;

/// How the writer names, sizes and rotates files.
#[derive(Clone)]
pub struct WriterConfig {
    /// Root output directory; partitions are created beneath it.
    pub dir: PathBuf,
    /// Agent name written into every row and file name (sanitised for the file name).
    pub agent: String,
    /// Close a file after this many rows.
    pub rotate_rows: u64,
    /// Close a file once its encoded size reaches this many bytes.
    pub rotate_bytes: u64,
    /// Close a file this long after it was opened (checked on every write and by
    /// [`PairWriter::maybe_rotate`]), so a quiet agent still publishes its pairs.
    pub rotate_age: Duration,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// zstd level (1 = fastest).
    pub zstd_level: i32,
    /// The configuration summary stored in every file's metadata. Never secrets.
    pub summary: serde_json::Value,
    pub baseline_origin: BaselineOrigin,
    pub counters: Option<CounterSource>,
    /// More metadata, read as each file closes.
    pub metadata: Option<MetadataSource>,
    /// Told of each closed file, in order.
    pub on_close: Option<CloseHook>,
    /// Set to the rows of the file being closed while [`Self::counters`] is read for it (zero
    /// otherwise), so an owner that counts a row as recorded only once its file is renamed can
    /// still store in a file counters that include the file's own rows.
    pub closing_rows: Option<Arc<AtomicU64>>,
}

impl WriterConfig {
    pub fn new(dir: impl Into<PathBuf>, agent: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            agent: agent.into(),
            rotate_rows: 1_000_000,
            rotate_bytes: 256 * 1024 * 1024,
            rotate_age: Duration::from_secs(300),
            row_group_rows: 4096,
            zstd_level: 1,
            summary: serde_json::Value::Object(Default::default()),
            baseline_origin: BaselineOrigin::Measured,
            counters: None,
            metadata: None,
            on_close: None,
            closing_rows: None,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |setting, message: &str| Err(Error::BadSetting { setting, message: message.into() });
        if self.agent.is_empty() {
            return bad("agent", "the agent name must not be empty");
        }
        if self.rotate_rows == 0 {
            return bad("rotate_rows", "must be at least 1");
        }
        if self.rotate_bytes == 0 {
            return bad("rotate_bytes", "must be at least 1");
        }
        if self.rotate_age.is_zero() {
            return bad("rotate_age", "must be longer than zero");
        }
        if self.row_group_rows == 0 {
            return bad("row_group_rows", "must be at least 1");
        }
        if ZstdLevel::try_new(self.zstd_level).is_err() {
            return bad("zstd_level", "must be between 1 and 22");
        }
        Ok(())
    }
}

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("dir", &self.dir)
            .field("agent", &self.agent)
            .field("rotate_rows", &self.rotate_rows)
            .field("rotate_bytes", &self.rotate_bytes)
            .field("rotate_age", &self.rotate_age)
            .field("row_group_rows", &self.row_group_rows)
            .finish_non_exhaustive()
    }
}

/// What the writer has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Rows in files that are closed and renamed: the rows that count as recorded.
    pub rows_committed: u64,
    /// Rows accepted but not yet in a closed file.
    pub rows_pending: u64,
    /// Rows given to [`PairWriter::write`] that will never be in a file: their file failed (a
    /// full disk, a lost permission) and was removed, or the write that carried them failed.
    /// Every row given to `write` ends up committed, pending or lost.
    pub rows_lost: u64,
    pub files: Vec<PathBuf>,
    pub bytes_committed: u64,
}

struct OpenFile {
    tmp_path: PathBuf,
    final_path: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    opened: Instant,
    hour: DateTime<Utc>,
    rows: u64,
}

/// Writes pair records to rotating, Hive-partitioned Parquet files.
///
/// Not thread-safe by design: capture feeds it from one task through a bounded channel.
pub struct PairWriter {
    config: WriterConfig,
    props: WriterProperties,
    run_id: String,
    run_started: DateTime<Utc>,
    agent_slug: String,
    seq: u64,
    buffer: Vec<PairRecord>,
    current: Option<OpenFile>,
    stats: WriterStats,
    closed: bool,
}

impl PairWriter {
    pub fn new(config: WriterConfig) -> Result<Self> {
        config.validate()?;
        let level = ZstdLevel::try_new(config.zstd_level)
            .map_err(|e| Error::BadSetting { setting: "zstd_level", message: e.to_string() })?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(config.row_group_rows));
        for col in schema::body_columns() {
            let path = ColumnPath::from(col);
            props = props
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_statistics_enabled(path, EnabledStatistics::None);
        }
        let agent_slug = slug(&config.agent);
        Ok(Self {
            props: props.build(),
            run_id: ulid::Ulid::new().to_string(),
            run_started: Utc::now(),
            agent_slug,
            seq: 0,
            buffer: Vec::with_capacity(config.row_group_rows),
            current: None,
            stats: WriterStats::default(),
            closed: false,
            config,
        })
    }

    pub fn config(&self) -> &WriterConfig {
        &self.config
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Accept one record. It is on disk once its file closes (rotation or [`Self::close`]).
    ///
    /// On an error the open file is abandoned: its temporary is removed and its rows, this
    /// record's included, are counted in [`WriterStats::rows_lost`]. The next write opens a new
    /// file, so writing resumes by itself once the cause (a full disk) has gone.
    pub fn write(&mut self, record: PairRecord) -> Result<()> {
        if self.closed {
            return Err(Error::WriterClosed);
        }
        let hour = hour_of(record.captured_at);
        if self.current.as_ref().is_some_and(|f| hour > f.hour)
            && let Err(e) = self.close_current()
        {
            self.stats.rows_lost += 1;
            return Err(e);
        }
        if self.current.is_none()
            && let Err(e) = self.open(hour)
        {
            self.stats.rows_lost += 1;
            return Err(e);
        }
        self.buffer.push(record);
        self.stats.rows_pending += 1;
        let file_rows = self.current.as_ref().map_or(0, |f| f.rows);
        if self.buffer.len() >= self.config.row_group_rows
            || file_rows + self.buffer.len() as u64 >= self.config.rotate_rows
        {
            if let Err(e) = self.flush_buffer() {
                self.abandon();
                return Err(e);
            }
            self.rotate_if_due()?;
        }
        Ok(())
    }

    /// Give up on the open file after a failure: remove its temporary (a failed file is never
    /// made visible, nor left behind) and count its rows, written and buffered, as lost.
    fn abandon(&mut self) {
        let lost = self.buffer.len() as u64 + self.current.as_ref().map_or(0, |f| f.rows);
        self.buffer.clear();
        if let Some(file) = self.current.take() {
            let OpenFile { tmp_path, writer, .. } = file;
            // Dropping the writer closes the file (a last flush may fail again; nothing to keep).
            drop(writer);
            let _ = fs::remove_file(&tmp_path);
        }
        self.stats.rows_pending -= lost.min(self.stats.rows_pending);
        self.stats.rows_lost += lost;
    }

    /// Close the current file if it is older than the rotation age. Call it periodically when
    /// traffic is sparse so pairs do not wait long to become readable.
    pub fn maybe_rotate(&mut self) -> Result<()> {
        if self.current.as_ref().is_some_and(|f| f.opened.elapsed() >= self.config.rotate_age) {
            self.close_current()?;
        }
        Ok(())
    }

    /// Flush every pending row and close the current file. The writer accepts no more rows.
    pub fn close(mut self) -> Result<WriterStats> {
        self.finish()?;
        Ok(std::mem::take(&mut self.stats))
    }

    /// [`Self::close`] that keeps the writer, so its [`Self::stats`] (the rows lost when the last
    /// file failed) can still be read after an error.
    pub fn finish(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.close_current()
    }

    // A file's age is the OS clock's: the writer runs on blocking threads, never on tokio's clock.
    #[allow(clippy::disallowed_methods)]
    fn open(&mut self, hour: DateTime<Utc>) -> Result<()> {
        let now = Utc::now();
        let partition =
            self.config.dir.join(format!("dt={}", hour.format("%Y-%m-%d"))).join(format!("hour={}", hour.format("%H")));
        let name =
            format!("{}-{}-{:06}.parquet", self.agent_slug, self.run_started.format("%Y%m%dT%H%M%S%.3fZ"), self.seq);
        let final_path = partition.join(&name);
        let tmp_path = partition.join(format!(".{name}.tmp"));
        let wrap = |path: &Path| {
            let path = path.to_owned();
            move |e: std::io::Error| Error::Write { path, source: WriteError::Io(e) }
        };
        fs::create_dir_all(&partition).map_err(wrap(&partition))?;
        let file = File::create(&tmp_path).map_err(wrap(&tmp_path))?;
        let mut kv = vec![
            KeyValue::new(meta::SCHEMA_VERSION.into(), schema::SCHEMA_VERSION.to_string()),
            KeyValue::new(meta::AGENT.into(), self.config.agent.clone()),
            KeyValue::new(meta::RUN_ID.into(), self.run_id.clone()),
            KeyValue::new(meta::FILE_SEQ.into(), self.seq.to_string()),
            KeyValue::new(meta::OPENED_AT.into(), now.to_rfc3339()),
            KeyValue::new(meta::CONFIG.into(), self.config.summary.to_string()),
            KeyValue::new(meta::BASELINE_ORIGIN.into(), self.config.baseline_origin.as_str().to_owned()),
            KeyValue::new(meta::WRITER_VERSION.into(), env!("CARGO_PKG_VERSION").to_owned()),
        ];
        kv.sort_by(|a, b| a.key.cmp(&b.key));
        let props = self.props.clone().into_builder().set_key_value_metadata(Some(kv)).build();
        let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), SCHEMA.clone(), Some(props))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp_path);
                Error::Write { path: tmp_path.clone(), source: e.into() }
            })?;
        self.seq += 1;
        self.current = Some(OpenFile { tmp_path, final_path, writer, opened: Instant::now(), hour, rows: 0 });
        Ok(())
    }

    fn flush_buffer(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let Some(file) = self.current.as_mut() else {
            return Ok(());
        };
        let fail = |source: WriteError| Error::Write { path: file.tmp_path.clone(), source };
        let batch = records_to_batch(&self.buffer).map_err(|e| fail(e.into()))?;
        file.writer.write(&batch).map_err(|e| fail(e.into()))?;
        file.rows += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    fn rotate_if_due(&mut self) -> Result<()> {
        let due = self.current.as_ref().is_some_and(|f| {
            f.rows >= self.config.rotate_rows
                || f.writer.bytes_written() as u64 + f.writer.in_progress_size() as u64 >= self.config.rotate_bytes
                || f.opened.elapsed() >= self.config.rotate_age
        });
        if due { self.close_current() } else { Ok(()) }
    }

    /// Close and rename the open file, or, when that fails, abandon it (see [`Self::abandon`]).
    fn close_current(&mut self) -> Result<()> {
        if let Err(e) = self.flush_buffer() {
            self.abandon();
            return Err(e);
        }
        let Some(file) = self.current.take() else {
            return Ok(());
        };
        let (tmp, rows) = (file.tmp_path.clone(), file.rows);
        match self.finish_file(file) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                self.stats.rows_pending -= rows.min(self.stats.rows_pending);
                self.stats.rows_lost += rows;
                Err(e)
            }
        }
    }

    fn finish_file(&mut self, mut file: OpenFile) -> Result<()> {
        let tmp = file.tmp_path.clone();
        let fail = |source: WriteError| Error::Write { path: tmp.clone(), source };
        if let Some(closing) = &self.config.closing_rows {
            closing.store(file.rows, Ordering::Release);
        }
        let counters = self.config.counters.as_ref().map(|f| f()).unwrap_or_default();
        if let Some(closing) = &self.config.closing_rows {
            closing.store(0, Ordering::Release);
        }
        file.writer.append_key_value_metadata(KeyValue::new(
            meta::COUNTERS.into(),
            serde_json::to_string(&counters).unwrap_or_else(|_| "{}".into()),
        ));
        file.writer.append_key_value_metadata(KeyValue::new(meta::CLOSED_AT.into(), Utc::now().to_rfc3339()));
        for (key, value) in self.config.metadata.as_ref().map(|f| f()).unwrap_or_default() {
            file.writer.append_key_value_metadata(KeyValue::new(key, value));
        }
        let mut out = file.writer.into_inner().map_err(|e| fail(e.into()))?;
        out.flush().map_err(|e| fail(e.into()))?;
        let out = out.into_inner().map_err(|e| fail(e.into_error().into()))?;
        out.sync_all().map_err(|e| fail(e.into()))?;
        let size = out.metadata().map(|m| m.len()).unwrap_or(0);
        drop(out);
        let final_path = unused_name(&file.final_path);
        fs::rename(&file.tmp_path, &final_path).map_err(|e| fail(e.into()))?;
        if let Some(dir) = final_path.parent() {
            // Make the rename durable; failure here loses nothing already written.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        self.stats.rows_committed += file.rows;
        self.stats.rows_pending -= file.rows;
        self.stats.bytes_committed += size;
        if let Some(hook) = &self.config.on_close {
            hook(&ClosedFile { path: final_path.clone(), rows: file.rows, bytes: size, run_id: self.run_id.clone() });
        }
        self.stats.files.push(final_path);
        Ok(())
    }
}

impl Drop for PairWriter {
    /// A writer dropped without `close` (an early return, a panic elsewhere) still publishes what
    /// it holds; errors cannot be reported from here, so the owner should call `close`.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// `path` itself, or `path` with a `-N` suffix when another run of the same agent name started in
/// the same millisecond: rename would otherwise replace that run's file.
fn unused_name(path: &Path) -> PathBuf {
    if !path.exists() {
        return path.to_owned();
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("pairs");
    (1u32..)
        .map(|n| path.with_file_name(format!("{stem}-{n}.parquet")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| path.to_owned())
}

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::TimeDelta::hours(1)).unwrap_or(t)
}

/// A file-name-safe form of an agent name.
fn slug(agent: &str) -> String {
    let s: String = agent
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' })
        .take(64)
        .collect();
    let s = s.trim_start_matches('.').to_owned();
    if s.is_empty() { "agent".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(slug("capture-1/eu west"), "capture-1_eu_west");
        assert_eq!(slug("..hidden"), "hidden");
        assert_eq!(slug("///"), "___");
        assert_eq!(slug(""), "agent");
    }

    /// A file that cannot be renamed (its partition vanished) is not counted committed: its rows
    /// are lost, and the next write starts a new file that commits.
    #[test]
    fn a_failed_file_counts_its_rows_lost_and_writing_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = WriterConfig::new(dir.path(), "a");
        c.rotate_rows = 5;
        let mut w = PairWriter::new(c).expect("writer");
        let pair = || PairRecord::new("a", Utc::now(), "GET", "/", None);
        for _ in 0..3 {
            w.write(pair()).expect("buffered");
        }
        fs::remove_dir_all(dir.path()).expect("remove the partition under the open file");
        w.write(pair()).expect("buffered");
        let e = w.write(pair()).expect_err("the rotation cannot rename");
        assert!(matches!(e, Error::Write { .. }), "{e}");
        assert!(!e.is_disk_full(), "{e}");
        assert_eq!((w.stats().rows_committed, w.stats().rows_pending, w.stats().rows_lost), (0, 0, 5));
        for _ in 0..7 {
            w.write(pair()).expect("a new file");
        }
        w.finish().expect("close");
        let s = w.stats();
        assert_eq!((s.rows_committed, s.rows_pending, s.rows_lost), (7, 0, 5));
        assert_eq!(s.files.len(), 2);
        assert!(s.files.iter().all(|f| f.exists()));
    }

    #[test]
    fn disk_full_is_told_through_the_source_chain() {
        let io = || std::io::Error::from_raw_os_error(28);
        let direct = Error::Write { path: "x".into(), source: WriteError::Io(io()) };
        let nested = Error::Write { path: "x".into(), source: WriteError::Parquet(io().into()) };
        assert!(direct.is_disk_full() && nested.is_disk_full());
        let other = Error::Write { path: "x".into(), source: WriteError::Io(std::io::Error::other("no")) };
        assert!(!other.is_disk_full());
    }

    #[test]
    fn bad_settings_are_named() {
        let mut c = WriterConfig::new("/tmp/x", "a");
        c.rotate_rows = 0;
        let e = PairWriter::new(c).err().expect("rejected");
        assert!(e.to_string().contains("rotate_rows"), "{e}");
    }
}
