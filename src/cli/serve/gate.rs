//! The gate's analyses: one per set of parameters and state of the pairs directory, shared by
//! every request that asks for it while it runs (single flight) and kept until a file appears,
//! grows, shrinks or goes away (or, for a window relative to now, until it is older than the
//! refresh interval). Analyses run one at a time on the blocking pool, each in its own scratch
//! directory removed afterwards; at most [`CACHED`] answers are kept.
//!
//! Analyses are **incremental**: pass 1 over a pair file (the expensive half: decoding and
//! diffing every body) is kept per file ([`Partials`]) and reused while the file is unchanged,
//! so a new analysis maps only new or changed files and merges (docs/scale.md: one analysis is
//! a map and a merge, and the merge of per-file partials equals one pass over the files). A
//! window cuts through few files: a file wholly inside it is mapped once for every window that
//! holds it, a file wholly outside once for every window that misses it; only the files a
//! window's edge cuts are mapped for that window.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{SubsecRound as _, Utc};
use shadowdiff_analyze::pipeline::{self, MapState, MergeContext, Options, Partial, Selection};
use shadowdiff_analyze::policy::Policy;
use shadowdiff_format::TimeWindow;
use shadowdiff_format::verdict::{Outputs, Verdict};
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;

use super::super::analyze::{judge_inputs, parse_time};

/// Answers kept (one per distinct set of parameters); the oldest goes first.
pub const CACHED: usize = 16;

/// What a request asks to have judged, as typed (relative times stay relative).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Key {
    /// A policy file named by the request (resolved inside `--policy-dir`); `None` is the
    /// server's policy.
    pub policy: Option<PathBuf>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub window: Option<Duration>,
}

impl Key {
    /// The window moves with the clock (`-2h`, `now`), so an answer ages even when no file
    /// changes.
    fn relative(&self) -> bool {
        let moves = |t: &Option<String>| t.as_deref().is_some_and(|t| t.trim().starts_with('-') || t.trim() == "now");
        moves(&self.since) || moves(&self.until)
    }
}

/// Why an analysis gave no verdict: an HTTP status and one sentence.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: http::StatusCode,
    pub reason: String,
}

impl Failure {
    pub fn new(status: http::StatusCode, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }
}

/// A finished analysis.
#[derive(Debug)]
pub struct Judged {
    pub verdict: Verdict,
    /// The verdict as served, serialized once.
    pub json: Bytes,
    pub finished: Instant,
    pub took: Duration,
}

type Outcome = Result<Arc<Judged>, Failure>;

struct Slot {
    listing: u64,
    started: Instant,
    cell: Arc<OnceCell<Outcome>>,
}

/// The analyses of one pairs location.
pub struct Gate {
    inputs: Vec<String>,
    policy: Arc<Policy>,
    scratch: PathBuf,
    /// How long an answer for a window relative to now is reused.
    refresh: Duration,
    slots: Mutex<HashMap<Key, Slot>>,
    /// One analysis at a time: each already runs on every core, and memory stays one analysis.
    running: Semaphore,
    next_scratch: AtomicU64,
    /// The latest answer for the server's default parameters, for /metrics.
    pub latest: Mutex<Option<Arc<Judged>>>,
    pub analyses_ok: AtomicU64,
    pub analyses_failed: AtomicU64,
    partials: Mutex<Partials>,
}

impl Gate {
    pub fn new(inputs: Vec<String>, policy: Policy, scratch: PathBuf, refresh: Duration) -> Self {
        Self {
            inputs,
            policy: Arc::new(policy),
            scratch,
            refresh,
            slots: Mutex::new(HashMap::new()),
            running: Semaphore::new(1),
            next_scratch: AtomicU64::new(0),
            latest: Mutex::new(None),
            analyses_ok: AtomicU64::new(0),
            analyses_failed: AtomicU64::new(0),
            partials: Mutex::new(Partials::default()),
        }
    }

    /// The verdict for `key` judged under `policy` (the server's when `None`): the cached one if
    /// the directory has not changed, the running one if another request started it, else a new
    /// analysis.
    pub async fn verdict(self: &Arc<Self>, key: Key, policy: Option<Arc<Policy>>) -> Outcome {
        let listing = {
            let inputs = self.inputs.clone();
            let policy_file = key.policy.clone();
            tokio::task::spawn_blocking(move || fingerprint(&inputs, policy_file.as_deref())).await.map_err(|e| {
                Failure::new(http::StatusCode::INTERNAL_SERVER_ERROR, format!("listing the pairs failed: {e}"))
            })?
        };
        let cell = {
            let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let fresh = |s: &Slot| s.listing == listing && (!key.relative() || s.started.elapsed() < self.refresh);
            match slots.get(&key).filter(|s| fresh(s)) {
                Some(s) => Arc::clone(&s.cell),
                None => {
                    if slots.len() >= CACHED && !slots.contains_key(&key) {
                        let oldest = slots.iter().min_by_key(|(_, s)| s.started).map(|(k, _)| k.clone());
                        if let Some(k) = oldest {
                            slots.remove(&k);
                        }
                    }
                    let cell = Arc::new(OnceCell::new());
                    slots.insert(key.clone(), Slot { listing, started: Instant::now(), cell: Arc::clone(&cell) });
                    cell
                }
            }
        };
        // The analysis runs in its own task, so a client that hangs up does not cancel it for
        // the others waiting on it.
        let gate = Arc::clone(self);
        let task_cell = Arc::clone(&cell);
        tokio::spawn(async move {
            task_cell.get_or_init(|| gate.analyze(key.clone(), policy, Arc::clone(&task_cell))).await.clone()
        })
        .await
        .map_err(|e| Failure::new(http::StatusCode::INTERNAL_SERVER_ERROR, format!("the analysis task failed: {e}")))?
    }

    async fn analyze(self: Arc<Self>, key: Key, policy: Option<Arc<Policy>>, cell: Arc<OnceCell<Outcome>>) -> Outcome {
        let _permit = self
            .running
            .acquire()
            .await
            .map_err(|_| Failure::new(http::StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"))?;
        let default = key == Key::default();
        let gate = Arc::clone(&self);
        let k = key.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let policy = policy.unwrap_or_else(|| Arc::clone(&gate.policy));
            gate.judge_blocking(&k, &policy)
        })
        .await
        .unwrap_or_else(|e| {
            Err(Failure::new(http::StatusCode::INTERNAL_SERVER_ERROR, format!("the analysis failed: {e}")))
        });
        match &outcome {
            Ok(j) => {
                self.analyses_ok.fetch_add(1, Ordering::Relaxed);
                if default {
                    *self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(j));
                }
            }
            Err(f) => {
                self.analyses_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(status = %f.status, reason = %f.reason, "Analysis failed.");
                // A failure is not kept: the next request tries again (a file made readable
                // again changes neither its size nor its mtime).
                let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if slots.get(&key).is_some_and(|s| Arc::ptr_eq(&s.cell, &cell)) {
                    slots.remove(&key);
                }
            }
        }
        outcome
    }

    /// Analyzes and judges on this thread (the pipeline's rayon pool does the parallel work).
    fn judge_blocking(&self, key: &Key, policy: &Policy) -> Outcome {
        let started = Instant::now();
        let now = Utc::now().trunc_subsecs(0);
        let bad = |e: anyhow::Error| Failure::new(http::StatusCode::BAD_REQUEST, format!("{e:#}"));
        let window = TimeWindow {
            since: key.since.as_deref().map(|t| parse_time("since", t, now)).transpose().map_err(bad)?,
            until: key.until.as_deref().map(|t| parse_time("until", t, now)).transpose().map_err(bad)?,
        };
        let n = self.next_scratch.fetch_add(1, Ordering::Relaxed);
        let dir = self.scratch.join(format!("analysis-{n}"));
        let mut options = Options::new(&dir);
        options.window = window;
        let result = match key.window {
            // Each window of a trend is its own analysis, from the files.
            Some(_) => judge_inputs(&self.inputs, policy, &options, key.window, &pipeline::Quiet),
            None => self.judge_incrementally(policy, &options),
        };
        let _ = std::fs::remove_dir_all(&dir);
        let mut verdict = result.map_err(classify)?;
        // The files the pipeline wrote are gone with its scratch directory.
        verdict.outputs = Outputs::default();
        let json = serde_json::to_vec_pretty(&verdict).map_err(|e| {
            Failure::new(http::StatusCode::INTERNAL_SERVER_ERROR, format!("serializing the verdict: {e}"))
        })?;
        Ok(Arc::new(Judged { verdict, json: Bytes::from(json), finished: Instant::now(), took: started.elapsed() }))
    }
}

impl Gate {
    /// One analysis of the inputs: every file's pass 1 taken from [`Partials`] or run and kept,
    /// then one merge of them all in file order.
    fn judge_incrementally(&self, policy: &Policy, options: &Options) -> anyhow::Result<Verdict> {
        let files = shadowdiff_format::resolve_inputs(&self.inputs)?;
        let window = options.window;
        let (files, files_pruned) = window.prune(files);
        let empty = || shadowdiff_analyze::Error::Empty { input: self.inputs.join(" ") };
        let mut partials = self.partials.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        partials.generation += 1;
        let policy_id = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            format!("{policy:?}").hash(&mut h);
            h.finish()
        };
        let mut parts = Vec::with_capacity(files.len());
        for file in files {
            let part = partials.get_or_map(&self.scratch, &file, window, policy_id, policy, options)?;
            parts.push(Partial { state: part.state.clone(), pairs: part.pairs.clone(), diffs: part.diffs.clone() });
        }
        partials.evict();
        drop(partials);
        if parts.iter().all(|p| p.state.inputs.pairs_in_files == 0) {
            anyhow::bail!(empty());
        }
        if parts.iter().all(|p| p.state.pairs_analyzed == 0) {
            anyhow::bail!(empty());
        }
        let context = MergeContext { files_pruned, warmup_runs: 0 };
        let analysis = pipeline::merge(parts, policy, options, &context, &pipeline::Quiet)?;
        Ok(shadowdiff_analyze::judge::judge(&analysis, policy))
    }
}

/// What part of a file a window selects, as far as its pass 1 is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    /// Every row (the window holds the whole file, or there is no window).
    Whole,
    /// No row: every window that misses the file gives the same pass 1.
    Outside,
    /// The rows inside this window (microseconds since the epoch).
    Cut(Option<i64>, Option<i64>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PartKey {
    path: PathBuf,
    size: u64,
    modified: Option<std::time::SystemTime>,
    policy: u64,
    scope: Scope,
}

/// A file's pass 1, kept: its counts and its raw rows on disk (removed with the entry).
struct KeptPart {
    state: MapState,
    pairs: PathBuf,
    diffs: PathBuf,
    dir: PathBuf,
    used: u64,
}

impl Drop for KeptPart {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A file as it is now: its path, size and modification time.
type FileId = (PathBuf, u64, Option<std::time::SystemTime>);

/// Every file's pass 1 kept by the gate, and each file's span of `captured_at`.
#[derive(Default)]
struct Partials {
    parts: HashMap<PartKey, KeptPart>,
    spans: HashMap<FileId, Option<(i64, i64)>>,
    generation: u64,
    next: u64,
}

/// Kept parts unused for this many analyses are removed.
const KEEP_GENERATIONS: u64 = 8;

impl Partials {
    fn get_or_map(
        &mut self,
        scratch: &Path,
        file: &Path,
        window: TimeWindow,
        policy_id: u64,
        policy: &Policy,
        options: &Options,
    ) -> anyhow::Result<&KeptPart> {
        let meta =
            std::fs::metadata(file).map_err(|source| shadowdiff_format::Error::Io { path: file.to_owned(), source })?;
        let (size, modified) = (meta.len(), meta.modified().ok());
        let micros = |t: Option<shadowdiff_format::reader::Instant>| t.map(|t| t.timestamp_micros());
        let scope = if window.is_unbounded() {
            Scope::Whole
        } else {
            let span_key = (file.to_owned(), size, modified);
            let span = match self.spans.get(&span_key) {
                Some(s) => *s,
                None => {
                    let s = pipeline::file_span(file)?;
                    self.spans.insert(span_key, s);
                    s
                }
            };
            match span {
                None => Scope::Whole,
                Some((lo, hi)) if window.contains_micros(lo) && window.contains_micros(hi) => Scope::Whole,
                Some((lo, hi))
                    if window.until.is_some_and(|u| lo >= u.timestamp_micros())
                        || window.since.is_some_and(|s| hi < s.timestamp_micros()) =>
                {
                    Scope::Outside
                }
                Some(_) => Scope::Cut(micros(window.since), micros(window.until)),
            }
        };
        let key = PartKey { path: file.to_owned(), size, modified, policy: policy_id, scope: scope.clone() };
        if !self.parts.contains_key(&key) {
            let selection = Selection {
                window: if scope == Scope::Whole { TimeWindow::default() } else { window },
                warm_end: Default::default(),
            };
            self.next += 1;
            let dir = scratch.join(format!("part-{}", self.next));
            let part = pipeline::map(vec![file.to_owned()], selection, policy, options, &dir)?;
            let kept = KeptPart { state: part.state, pairs: part.pairs, diffs: part.diffs, dir, used: 0 };
            self.parts.insert(key.clone(), kept);
        }
        let generation = self.generation;
        let kept = self.parts.get_mut(&key).ok_or_else(|| anyhow::anyhow!("a kept partial went missing"))?;
        kept.used = generation;
        Ok(kept)
    }

    /// Removes the parts of files that changed or went away and those not used lately.
    fn evict(&mut self) {
        let generation = self.generation;
        self.parts.retain(|_, p| p.used + KEEP_GENERATIONS > generation);
        let live: std::collections::HashSet<_> =
            self.parts.keys().map(|k| (k.path.clone(), k.size, k.modified)).collect();
        self.spans.retain(|k, _| live.contains(k));
    }
}

/// The HTTP status of an analysis error: no pairs yet (no files, or none in the window) is 503
/// (try again later), anything else
/// the server's (500), each with the sentence analyze would print.
fn classify(e: anyhow::Error) -> Failure {
    use shadowdiff_analyze::Error as A;
    let no_pairs =
        matches!(e.downcast_ref::<A>(), Some(A::Empty { .. } | A::Input(shadowdiff_format::Error::NoPairFiles { .. })))
            || matches!(
                e.downcast_ref::<shadowdiff_format::Error>(),
                Some(shadowdiff_format::Error::NoPairFiles { .. })
            );
    let status = if no_pairs { http::StatusCode::SERVICE_UNAVAILABLE } else { http::StatusCode::INTERNAL_SERVER_ERROR };
    Failure::new(status, format!("{e:#}"))
}

/// A hash of every pair file's path, size and modification time (and the policy file's), so
/// any new, grown, shrunk, replaced or removed file changes it.
fn fingerprint(inputs: &[String], policy: Option<&Path>) -> u64 {
    let files = shadowdiff_format::resolve_inputs(inputs).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files.iter().map(PathBuf::as_path).chain(policy) {
        f.hash(&mut h);
        if let Ok(m) = std::fs::metadata(f) {
            m.len().hash(&mut h);
            m.modified().ok().hash(&mut h);
        }
    }
    h.finish()
}
