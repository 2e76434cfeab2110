//! A description of a set of pair files: what `shadowdiff inspect` prints. Reads only the small
//! columns (never bodies), one batch at a time.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt16Array};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::reader::{FileInfo, PairFile};
use super::schema::{self, Side};
use crate::error::{Error, Result};

/// Distinct paths tracked exactly; beyond this, further new paths are counted together.
pub const MAX_DISTINCT_PATHS: usize = 100_000;

#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub row_groups: usize,
    pub schema_version: Option<u32>,
    pub agent: Option<String>,
    pub run_id: Option<String>,
    pub partitions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathCount {
    pub path: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimeRange {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// The counters one run (one writer instance) reported in its newest file.
#[derive(Debug, Clone, Serialize)]
pub struct RunCounters {
    pub run_id: String,
    pub agent: Option<String>,
    pub files: usize,
    pub counters: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub rows: u64,
    pub bytes: u64,
    pub files: Vec<FileSummary>,
    /// Schema version (or `unknown` for files rewritten without metadata) → number of files.
    pub schema_versions: BTreeMap<String, u64>,
    pub time_range: Option<TimeRange>,
    /// Agent → rows.
    pub agents: BTreeMap<String, u64>,
    /// `measured` / `recorded` → number of files.
    pub baseline_origin: BTreeMap<String, u64>,
    pub methods: BTreeMap<String, u64>,
    /// Paths with their row counts, most frequent first.
    pub paths: Vec<PathCount>,
    pub distinct_paths: u64,
    /// Rows whose path was not tracked individually (more than [`MAX_DISTINCT_PATHS`] paths).
    pub untracked_path_rows: u64,
    /// Side → status code (or `none`) → rows.
    pub status: BTreeMap<String, BTreeMap<String, u64>>,
    /// Side → error kind → rows.
    pub errors: BTreeMap<String, BTreeMap<String, u64>>,
    /// `request` or side → rows whose body was truncated.
    pub truncated: BTreeMap<String, u64>,
    /// Per run, the counters from its newest file.
    pub runs: Vec<RunCounters>,
    /// Sum of every run's counters.
    pub counters: BTreeMap<String, u64>,
}

const COLUMNS: [&str; 14] = [
    schema::CAPTURED_AT,
    schema::AGENT,
    schema::METHOD,
    schema::PATH,
    schema::REQUEST_BODY_TRUNCATED,
    schema::BASELINE.status,
    schema::BASELINE.error,
    schema::BASELINE.body_truncated,
    schema::CANARY.status,
    schema::CANARY.error,
    schema::CANARY.body_truncated,
    schema::SECONDARY.status,
    schema::SECONDARY.error,
    schema::SECONDARY.body_truncated,
];

#[derive(Default)]
struct Acc {
    rows: u64,
    first: Option<i64>,
    last: Option<i64>,
    agents: BTreeMap<String, u64>,
    methods: BTreeMap<String, u64>,
    paths: HashMap<String, u64>,
    untracked: u64,
    status: BTreeMap<String, BTreeMap<String, u64>>,
    errors: BTreeMap<String, BTreeMap<String, u64>>,
    truncated: BTreeMap<String, u64>,
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str, path: &std::path::Path) -> Result<&'a T> {
    b.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<T>()).ok_or_else(|| Error::BadValue {
        path: path.to_owned(),
        column: name.to_owned(),
        row: 0,
        message: "unexpected column type".into(),
    })
}

impl Acc {
    fn add(&mut self, b: &RecordBatch, path: &std::path::Path) -> Result<()> {
        let at: &TimestampMicrosecondArray = col(b, schema::CAPTURED_AT, path)?;
        let agent: &StringArray = col(b, schema::AGENT, path)?;
        let method: &StringArray = col(b, schema::METHOD, path)?;
        let p: &StringArray = col(b, schema::PATH, path)?;
        let req_trunc: &BooleanArray = col(b, schema::REQUEST_BODY_TRUNCATED, path)?;
        for i in 0..b.num_rows() {
            self.rows += 1;
            if at.is_valid(i) {
                let t = at.value(i);
                self.first = Some(self.first.map_or(t, |f| f.min(t)));
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
            }
            bump(&mut self.agents, agent.value(i));
            bump(&mut self.methods, method.value(i));
            let path_value = p.value(i);
            if let Some(n) = self.paths.get_mut(path_value) {
                *n += 1;
            } else if self.paths.len() < MAX_DISTINCT_PATHS {
                self.paths.insert(path_value.to_owned(), 1);
            } else {
                self.untracked += 1;
            }
            if req_trunc.is_valid(i) && req_trunc.value(i) {
                bump(&mut self.truncated, "request");
            }
        }
        for side in Side::ALL {
            let c = side.columns();
            let status: &UInt16Array = col(b, c.status, path)?;
            let error: &StringArray = col(b, c.error, path)?;
            let trunc: &BooleanArray = col(b, c.body_truncated, path)?;
            let statuses = self.status.entry(side.name().to_owned()).or_default();
            let errors = self.errors.entry(side.name().to_owned()).or_default();
            for i in 0..b.num_rows() {
                if status.is_valid(i) {
                    bump(statuses, &status.value(i).to_string());
                } else {
                    bump(statuses, "none");
                }
                if error.is_valid(i) {
                    bump(errors, error.value(i));
                }
                if trunc.is_valid(i) && trunc.value(i) {
                    bump(&mut self.truncated, side.name());
                }
            }
        }
        Ok(())
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else {
        map.insert(key.to_owned(), 1);
    }
}

/// Summarise pair files. Every file is checked first, so a bad file fails before any reading.
pub fn summarize(paths: &[PathBuf]) -> Result<Summary> {
    let infos: Vec<std::sync::Arc<FileInfo>> =
        paths.iter().map(|p| PairFile::open(p).map(|f| f.info)).collect::<Result<_>>()?;
    let mut acc = Acc::default();
    for path in paths {
        let batches = PairFile::open(path)?.batches(8192, Some(&COLUMNS))?;
        for batch in batches {
            acc.add(&batch?, path)?;
        }
    }

    let mut schema_versions = BTreeMap::new();
    let mut origin = BTreeMap::new();
    // Per run: agent, files, the newest file's (sequence, closed at), and that file's counters.
    type Run = (Option<String>, usize, (u64, Option<DateTime<Utc>>), BTreeMap<String, u64>);
    let mut runs: BTreeMap<String, Run> = BTreeMap::new();
    for info in &infos {
        let v = info.schema_version.map_or_else(|| "unknown".to_owned(), |v| v.to_string());
        *schema_versions.entry(v).or_insert(0) += 1;
        *origin.entry(info.baseline_origin.clone()).or_insert(0) += 1;
        let run = info.run_id.clone().unwrap_or_else(|| info.path.display().to_string());
        let order = (info.file_seq.unwrap_or(0), info.closed_at);
        let entry = runs.entry(run).or_insert_with(|| (info.agent.clone(), 0, order, info.counters.clone()));
        entry.1 += 1;
        // Counters are cumulative, so the newest file of a run holds its totals.
        if order >= entry.2 {
            entry.2 = order;
            entry.3 = info.counters.clone();
        }
    }
    let runs: Vec<RunCounters> = runs
        .into_iter()
        .map(|(run_id, (agent, files, _, counters))| RunCounters { run_id, agent, files, counters })
        .collect();
    let mut counters = BTreeMap::new();
    for r in &runs {
        for (k, v) in &r.counters {
            *counters.entry(k.clone()).or_insert(0) += v;
        }
    }
    let distinct_paths = acc.paths.len() as u64;
    let mut top: Vec<PathCount> = acc.paths.into_iter().map(|(path, rows)| PathCount { path, rows }).collect();
    top.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.path.cmp(&b.path)));
    let micros = |t: i64| DateTime::<Utc>::from_timestamp_micros(t).unwrap_or_default();
    Ok(Summary {
        rows: acc.rows,
        bytes: infos.iter().map(|i| i.size_bytes).sum(),
        files: infos
            .iter()
            .map(|i| FileSummary {
                path: i.path.clone(),
                rows: i.rows,
                bytes: i.size_bytes,
                row_groups: i.row_groups,
                schema_version: i.schema_version,
                agent: i.agent.clone(),
                run_id: i.run_id.clone(),
                partitions: i.partitions.clone(),
            })
            .collect(),
        schema_versions,
        time_range: acc.first.zip(acc.last).map(|(f, l)| TimeRange { first: micros(f), last: micros(l) }),
        agents: acc.agents,
        baseline_origin: origin,
        methods: acc.methods,
        paths: top,
        distinct_paths,
        untracked_path_rows: acc.untracked,
        status: acc.status,
        errors: acc.errors,
        truncated: acc.truncated,
        runs,
        counters,
    })
}
