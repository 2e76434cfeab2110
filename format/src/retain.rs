//! Retention for a local output directory: hour partitions whose pairs are all older than the
//! retention are deleted, oldest first, and counted.
//!
//! The writer names a partition after the hour of its file's first pair and keeps a late pair
//! from the previous hour in the current file, so partition `H` holds pairs captured in
//! `[H - 1h, H + 1h)`: it is deleted once `H + 1h` is at or before `now - retain`. Only closed
//! pair files (`*.parquet`, not hidden) are deleted, never a writer's temporary, and a
//! directory only once it is empty.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, NaiveDate, Utc};

use crate::reader::PairFile;

/// What retention has deleted so far.
#[derive(Debug, Default)]
pub struct RetainStats {
    pub files: AtomicU64,
    pub pairs: AtomicU64,
    pub bytes: AtomicU64,
}

impl RetainStats {
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, u64> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [("retain.files", load(&self.files)), ("retain.pairs", load(&self.pairs)), ("retain.bytes", load(&self.bytes))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }
}

/// Delete the hour partitions under `dir` whose pairs are all before `cutoff`, and count what
/// was deleted into `stats`. Errors are logged, not returned: retention never stops a writer.
pub fn prune(dir: &Path, cutoff: DateTime<Utc>, stats: &RetainStats) {
    for (start, partition) in hour_partitions(dir) {
        if start + chrono::Duration::hours(1) > cutoff {
            continue;
        }
        let files = std::fs::read_dir(&partition).into_iter().flatten().flatten().map(|e| e.path());
        for file in files.filter(|p| is_pair_file(p)) {
            let rows = PairFile::open(&file).map(|f| f.info.rows).unwrap_or(0);
            let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&file) {
                Ok(()) => {
                    stats.files.fetch_add(1, Ordering::Relaxed);
                    stats.pairs.fetch_add(rows, Ordering::Relaxed);
                    stats.bytes.fetch_add(bytes, Ordering::Relaxed);
                    tracing::info!(file = %file.display(), pairs = rows, "Deleted a pair file past --retain.");
                }
                Err(error) => {
                    tracing::warn!(file = %file.display(), %error, "Cannot delete a pair file past --retain.")
                }
            }
        }
        // Only empty directories go; a partition still holding a temporary stays.
        let _ = std::fs::remove_dir(&partition);
        if let Some(day) = partition.parent() {
            let _ = std::fs::remove_dir(day);
        }
    }
}

fn is_pair_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && !name.starts_with('_') && name.ends_with(".parquet") && p.is_file()
}

/// `dir/dt=YYYY-MM-DD/hour=HH` partitions with the start of their hour, oldest first.
fn hour_partitions(dir: &Path) -> Vec<(DateTime<Utc>, PathBuf)> {
    let mut out = Vec::new();
    for day in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = day.file_name();
        let Some(date) = name.to_str().and_then(|n| n.strip_prefix("dt=")) else {
            continue;
        };
        let Ok(date) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
            continue;
        };
        for hour in std::fs::read_dir(day.path()).into_iter().flatten().flatten() {
            let name = hour.file_name();
            let h = name.to_str().and_then(|n| n.strip_prefix("hour=")).and_then(|h| h.parse::<u32>().ok());
            if let Some(start) = h.and_then(|h| date.and_hms_opt(h, 0, 0)) {
                out.push((start.and_utc(), hour.path()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PairRecord, PairWriter, WriterConfig};

    #[test]
    fn old_partitions_go_and_recent_ones_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let at = |h: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, h, 10, 0).single().expect("time");
        for h in [6, 7, 9] {
            let mut w = PairWriter::new(WriterConfig::new(dir.path(), "t")).expect("writer");
            w.write(PairRecord::new("p", at(h), "GET", "/", None)).expect("write");
            w.write(PairRecord::new("q", at(h), "GET", "/", None)).expect("write");
            w.close().expect("close");
        }
        std::fs::write(dir.path().join("dt=2026-11-30/hour=06/.t-x.parquet.tmp"), b"partial").expect("tmp");
        let stats = RetainStats::default();
        // 08:00 cutoff: hour 06 (pairs up to 07:00) and hour 07 (up to 08:00) go; hour 09 stays.
        prune(dir.path(), at(8) - chrono::Duration::minutes(10), &stats);
        assert_eq!(stats.snapshot()["retain.files"], 2);
        assert_eq!(stats.snapshot()["retain.pairs"], 4);
        assert!(dir.path().join("dt=2026-11-30/hour=06/.t-x.parquet.tmp").exists(), "temporaries are not touched");
        assert!(!dir.path().join("dt=2026-11-30/hour=07").exists());
        assert!(dir.path().join("dt=2026-11-30/hour=09").exists());
    }
}
