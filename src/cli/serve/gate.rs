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
//!
//! A `window=` trend is one analysis per window, each merged from the same kept passes.
//!
//! An object-store location (`s3://BUCKET/PREFIX`) is listed on every request; an object is
//! known by its URL and size (shadowdiff's objects are written once, whole, under names that
//! never repeat). An object whose pass 1 is not kept yet is downloaded into the scratch
//! directory (eight at a time), mapped, and its copy removed, so the disk holds the kept
//! partials, not a mirror of the bucket; only copies that windows cut are kept a while, since
//! the next window is likely to cut them again.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{SubsecRound as _, Utc};
use shadowdiff_analyze::pipeline::{self, Analysis, MapState, MergeContext, Options, Partial, Selection};
use shadowdiff_analyze::policy::Policy;
use shadowdiff_format::TimeWindow;
use shadowdiff_format::store::{Location, files};
use shadowdiff_format::verdict::{Outputs, Verdict};
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;

use super::super::analyze::{parse_time, windows};

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
        let (listing, listed) = {
            let gate = Arc::clone(self);
            let policy_file = key.policy.clone();
            tokio::task::spawn_blocking(move || gate.fingerprint(policy_file.as_deref())).await.map_err(|e| {
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
            task_cell.get_or_init(|| gate.analyze(key.clone(), policy, listed, Arc::clone(&task_cell))).await.clone()
        })
        .await
        .map_err(|e| Failure::new(http::StatusCode::INTERNAL_SERVER_ERROR, format!("the analysis task failed: {e}")))?
    }

    async fn analyze(
        self: Arc<Self>,
        key: Key,
        policy: Option<Arc<Policy>>,
        listed: Option<Vec<Source>>,
        cell: Arc<OnceCell<Outcome>>,
    ) -> Outcome {
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
            gate.judge_blocking(&k, &policy, listed)
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

    /// Analyzes and judges on this thread (the pipeline's rayon pool does the parallel work):
    /// the pair files as `listed` when the request's fingerprint was taken (listed again only
    /// when that listing failed, so the analysis reports why).
    fn judge_blocking(&self, key: &Key, policy: &Policy, listed: Option<Vec<Source>>) -> Outcome {
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
        let result = match listed {
            Some(listed) => Ok(listed),
            None => self.sources(),
        }
        .and_then(|listed| self.judge_incrementally(policy, &options, key.window, &listed));
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
    /// The judgement of the inputs in `options.window` and, with `trend`, of each window of that
    /// width, every one of them an incremental analysis.
    ///
    /// One judgement is one generation of the kept passes, however many windows it merges, and
    /// evicts once, at its end: a trend of a hundred windows must not age out the passes the
    /// next request needs.
    fn judge_incrementally(
        &self,
        policy: &Policy,
        options: &Options,
        trend: Option<Duration>,
        listed: &[Source],
    ) -> anyhow::Result<Verdict> {
        self.partials.lock().unwrap_or_else(std::sync::PoisonError::into_inner).generation += 1;
        let judged = self.judge_windows(policy, options, trend, listed);
        self.partials.lock().unwrap_or_else(std::sync::PoisonError::into_inner).evict(listed);
        judged
    }

    fn judge_windows(
        &self,
        policy: &Policy,
        options: &Options,
        trend: Option<Duration>,
        listed: &[Source],
    ) -> anyhow::Result<Verdict> {
        let analysis = self.analyze_incrementally(policy, options, listed)?;
        let mut verdict = shadowdiff_analyze::judge::judge(&analysis, policy);
        if let Some(width) = trend {
            let mut run = |options: &Options, policy: &Policy| match self.analyze_incrementally(policy, options, listed)
            {
                Ok(a) => Ok(Some(a)),
                Err(e) if matches!(e.downcast_ref(), Some(shadowdiff_analyze::Error::Empty { .. })) => Ok(None),
                Err(e) => Err(e),
            };
            verdict.windows = windows(policy, options, width, &verdict.outputs.pairs, &mut run)?;
        }
        Ok(verdict)
    }

    /// One analysis of the inputs: every file's pass 1 taken from [`Partials`] or run and kept,
    /// then one merge of them all in file order.
    fn analyze_incrementally(&self, policy: &Policy, options: &Options, listed: &[Source]) -> anyhow::Result<Analysis> {
        let window = options.window;
        let files: Vec<&Source> = listed.iter().filter(|s| window.may_hold(&s.path)).collect();
        let files_pruned = listed.len() - files.len();
        let empty = || shadowdiff_analyze::Error::Empty { input: self.inputs.join(" ") };
        let mut partials = self.partials.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let policy_id = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            format!("{policy:?}").hash(&mut h);
            h.finish()
        };
        // The objects this analysis must read, downloaded together rather than one by one.
        let (mut downloads, mut bytes) = (Vec::new(), 0u64);
        for s in &files {
            if let Some(url) = &s.remote
                && !s.path.exists()
                && partials.needs_file(s, window, policy_id)
            {
                downloads.push((url.clone(), s.path.clone()));
                bytes += s.size;
            }
        }
        if !downloads.is_empty() {
            files::get_pair_files(&downloads)?;
            tracing::info!(files = downloads.len(), bytes, "Fetched new pair files.");
        }
        let mut parts = Vec::with_capacity(files.len());
        for file in files {
            let part = partials.get_or_map(&self.scratch, file, window, policy_id, policy, options)?;
            parts.push(Partial {
                state: part.state.clone(),
                pairs: part.pairs.clone(),
                diffs: part.diffs.clone(),
                examples: Some(part.examples.clone()),
            });
        }
        drop(partials);
        if parts.iter().all(|p| p.state.inputs.pairs_in_files == 0) {
            anyhow::bail!(empty());
        }
        if parts.iter().all(|p| p.state.pairs_analyzed == 0) {
            anyhow::bail!(empty());
        }
        let context = MergeContext { files_pruned, warmup_runs: 0 };
        Ok(pipeline::merge(parts, policy, options, &context, &pipeline::Quiet)?)
    }
}

impl Gate {
    /// Every pair file of the inputs as it is now: local files with their size and modification
    /// time, objects with their size and the path of their local copy.
    fn sources(&self) -> anyhow::Result<Vec<Source>> {
        let mut out = Vec::new();
        for input in &self.inputs {
            match Location::parse(input)? {
                Location::Local(_) => {
                    for path in shadowdiff_format::resolve_inputs(std::slice::from_ref(input))? {
                        let meta = std::fs::metadata(&path)
                            .map_err(|source| shadowdiff_format::Error::Io { path: path.clone(), source })?;
                        out.push(Source { size: meta.len(), modified: meta.modified().ok(), path, remote: None });
                    }
                }
                Location::Store(_) => {
                    for (url, size) in files::pair_files(std::slice::from_ref(input), &TimeWindow::default())? {
                        let path = self.scratch.join("objects").join(copy_path(&url));
                        out.push(Source { path, size, modified: None, remote: Some(url) });
                    }
                }
            }
        }
        Ok(out)
    }

    /// A hash of every pair file's identity (and the policy file's), so any new, grown, shrunk,
    /// replaced or removed file or object changes it; and the listing, which the analysis then
    /// reads instead of listing again. A listing that fails hashes as empty and is `None`: the
    /// analysis lists again and reports why.
    fn fingerprint(&self, policy: Option<&Path>) -> (u64, Option<Vec<Source>>) {
        let listed = self.sources().ok();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for s in listed.iter().flatten() {
            (s.remote.as_ref().map_or(s.path.as_path(), Path::new), s.size, s.modified).hash(&mut h);
        }
        if let Some(p) = policy {
            p.hash(&mut h);
            if let Ok(m) = std::fs::metadata(p) {
                (m.len(), m.modified().ok()).hash(&mut h);
            }
        }
        (h.finish(), listed)
    }
}

/// Where the local copy of the object at `url` goes, relative to the copies' directory: its
/// scheme, bucket and key as directories (so Hive partitions stay in the path), with any
/// segment a path must not hold (empty, `.`, `..`) replaced by `_`.
fn copy_path(url: &str) -> PathBuf {
    url.replacen("://", "/", 1)
        .split('/')
        .map(|seg| if seg.is_empty() || seg == "." || seg == ".." { "_" } else { seg })
        .collect()
}

/// A pair file as the gate sees it: where it is read, and what identifies its content.
#[derive(Debug, Clone)]
struct Source {
    /// The file, or for an object the path of its local copy (which may not exist yet).
    path: PathBuf,
    size: u64,
    /// `None` for an object: its URL and size identify it.
    modified: Option<std::time::SystemTime>,
    /// The object's URL.
    remote: Option<String>,
}

impl Source {
    fn id(&self) -> FileId {
        (self.path.clone(), self.size, self.modified)
    }

    /// Makes sure the file is on local disk (an object not yet copied is downloaded).
    fn ensure_local(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.remote
            && !self.path.exists()
        {
            files::get_pair_files(&[(url.clone(), self.path.clone())])?;
        }
        Ok(())
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

/// A file's pass 1, kept: its counts in memory; its raw rows and example candidates on disk
/// (removed with the entry).
struct KeptPart {
    /// Without its example candidates, which are in `examples` (most of a state's size).
    state: MapState,
    pairs: PathBuf,
    diffs: PathBuf,
    examples: PathBuf,
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
    /// Local copies of objects kept for the windows that cut them: the generation last used.
    copies: HashMap<PathBuf, u64>,
    generation: u64,
    next: u64,
}

fn part_key(file: &Source, policy: u64, scope: Scope) -> PartKey {
    PartKey { path: file.path.clone(), size: file.size, modified: file.modified, policy, scope }
}

/// The scope `window` gives a file whose pairs span `span` (`None`: a file without pairs).
fn scope(span: Option<(i64, i64)>, window: TimeWindow) -> Scope {
    let micros = |t: Option<shadowdiff_format::reader::Instant>| t.map(|t| t.timestamp_micros());
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
}

/// Kept parts unused for this many analyses are removed.
const KEEP_GENERATIONS: u64 = 8;

impl Partials {
    /// The scope `window` gives the file, if it is known without reading the file.
    fn known_scope(&self, file: &Source, window: TimeWindow) -> Option<Scope> {
        if window.is_unbounded() {
            return Some(Scope::Whole);
        }
        self.spans.get(&file.id()).map(|span| scope(*span, window))
    }

    /// Whether analyzing `file` under `window` needs the file itself (its span or its pass 1
    /// is not kept).
    fn needs_file(&self, file: &Source, window: TimeWindow, policy: u64) -> bool {
        match self.known_scope(file, window) {
            None => true,
            Some(scope) => !self.parts.contains_key(&part_key(file, policy, scope)),
        }
    }

    fn get_or_map(
        &mut self,
        scratch: &Path,
        file: &Source,
        window: TimeWindow,
        policy_id: u64,
        policy: &Policy,
        options: &Options,
    ) -> anyhow::Result<&KeptPart> {
        let scope = match self.known_scope(file, window) {
            Some(s) => s,
            None => {
                file.ensure_local()?;
                let span = pipeline::file_span(&file.path)?;
                self.spans.insert(file.id(), span);
                scope(span, window)
            }
        };
        let key = part_key(file, policy_id, scope.clone());
        if !self.parts.contains_key(&key) {
            file.ensure_local()?;
            let selection = Selection {
                window: if scope == Scope::Whole { TimeWindow::default() } else { window },
                warm_end: Default::default(),
            };
            self.next += 1;
            let dir = scratch.join(format!("part-{}", self.next));
            let mut part = pipeline::map(vec![file.path.clone()], selection, policy, options, &dir)?;
            let examples = dir.join("examples.json");
            part.state.examples_apart(&examples)?;
            let kept = KeptPart { state: part.state, pairs: part.pairs, diffs: part.diffs, examples, dir, used: 0 };
            self.parts.insert(key.clone(), kept);
        }
        let generation = self.generation;
        if file.remote.is_some() && matches!(scope, Scope::Cut(..)) {
            self.copies.insert(file.path.clone(), generation);
        }
        let kept = self.parts.get_mut(&key).ok_or_else(|| anyhow::anyhow!("a kept partial went missing"))?;
        kept.used = generation;
        Ok(kept)
    }

    /// Removes the parts of files that changed or went away and those not used lately.
    /// Local copies of objects go too, except those a window cut lately.
    fn evict(&mut self, listed: &[Source]) {
        let generation = self.generation;
        self.parts.retain(|_, p| p.used + KEEP_GENERATIONS > generation);
        let live: std::collections::HashSet<_> =
            self.parts.keys().map(|k| (k.path.clone(), k.size, k.modified)).collect();
        self.spans.retain(|k, _| live.contains(k));
        let live_paths: std::collections::HashSet<&PathBuf> = live.iter().map(|k| &k.0).collect();
        self.copies.retain(|path, used| *used + KEEP_GENERATIONS > generation && live_paths.contains(path));
        for copy in listed.iter().filter(|s| s.remote.is_some() && !self.copies.contains_key(&s.path)) {
            let _ = std::fs::remove_file(&copy.path);
        }
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
