//! The gate's analyses: one per set of parameters and state of the pairs directory, shared by
//! every request that asks for it while it runs (single flight) and kept until a file appears,
//! grows, shrinks or goes away (or, for a window relative to now, until it is older than the
//! refresh interval). Analyses run one at a time on the blocking pool, each in its own scratch
//! directory removed afterwards; at most [`CACHED`] answers are kept.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{SubsecRound as _, Utc};
use shadowdiff_analyze::pipeline::{self, Options};
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
        let result = judge_inputs(&self.inputs, policy, &options, key.window, &pipeline::Quiet);
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

/// The HTTP status of an analysis error: no pairs yet (no files, or none in the window) is 503
/// (try again later), anything else
/// the server's (500), each with the sentence analyze would print.
fn classify(e: anyhow::Error) -> Failure {
    use shadowdiff_analyze::Error as A;
    let status = match e.downcast_ref::<A>() {
        Some(A::Empty { .. } | A::Input(shadowdiff_format::Error::NoPairFiles { .. })) => {
            http::StatusCode::SERVICE_UNAVAILABLE
        }
        _ => http::StatusCode::INTERNAL_SERVER_ERROR,
    };
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
