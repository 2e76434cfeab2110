//! The one driver loop: take recorded requests in order, filter them, wait for the pacer's
//! intended send time, send each to every target concurrently, and hand the fresh pair to the
//! writer. Pacing is a parameter ([`Pacing`]); nothing else varies between modes.
//!
//! Backpressure blocks: when the writer falls behind, sending waits rather than dropping pairs
//! (capture drops because a client is waiting; replay has no client, only a schedule, and the
//! schedule lag is reported).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use shadowdiff_capture::record::{PairRecord, Side, SideRecord};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::error::Result;
use crate::filter::Filters;
use crate::pacer::{Pacer, Pacing};
use crate::target::Dispatch;

/// One item from a source: recorded requests in order (sent in batches, so the reader thread and
/// the driver do not wake each other for every request), or the end of one pass over the input.
#[derive(Debug)]
pub enum SourceItem {
    Records(Vec<PairRecord>),
    PassEnd,
}

#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub pacing: Pacing,
    /// Requests in flight at most (all targets of one request count once).
    pub concurrency: usize,
    pub filters: Filters,
    /// Stop after sending this many requests.
    pub limit: Option<u64>,
    /// Stop issuing requests after this long (with `--loop`, a soak run).
    pub duration: Option<Duration>,
    /// Agent name written into every fresh pair.
    pub agent: String,
    /// Canary-only mode: copy the recorded baseline side into each fresh pair.
    pub keep_recorded_baseline: bool,
}

/// Live counters, for a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub read: AtomicU64,
    pub sent: AtomicU64,
    pub done: AtomicU64,
    pub skipped: AtomicU64,
}

/// How far behind schedule sends were (paced modes only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lag {
    pub mean_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub read: u64,
    pub sent: u64,
    /// Pairs handed to the writer.
    pub recorded: u64,
    /// Skipped requests by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Errors by target and kind.
    pub errors: BTreeMap<(String, String), u64>,
    pub elapsed: Duration,
    /// Requests sent per second over the run.
    pub achieved_rate: f64,
    pub lag: Option<Lag>,
    /// True when a stop signal ended the run early.
    pub interrupted: bool,
}

/// Keeps lag statistics in bounded memory: running mean and max, and a reservoir for p99.
struct LagStats {
    n: u64,
    sum: f64,
    max: f64,
    reservoir: Vec<f64>,
    state: u64,
}

const RESERVOIR: usize = 20_000;

impl LagStats {
    fn new() -> Self {
        Self { n: 0, sum: 0.0, max: 0.0, reservoir: Vec::new(), state: 0x9E37_79B9_7F4A_7C15 }
    }

    fn add(&mut self, ms: f64) {
        self.n += 1;
        self.sum += ms;
        self.max = self.max.max(ms);
        if self.reservoir.len() < RESERVOIR {
            self.reservoir.push(ms);
        } else {
            // xorshift: a deterministic reservoir replacement index in 0..n.
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let j = (self.state % self.n) as usize;
            if j < RESERVOIR {
                self.reservoir[j] = ms;
            }
        }
    }

    fn finish(mut self) -> Option<Lag> {
        if self.n == 0 {
            return None;
        }
        self.reservoir.sort_by(f64::total_cmp);
        let idx = ((self.reservoir.len() - 1) as f64 * 0.99).round() as usize;
        Some(Lag { mean_ms: self.sum / self.n as f64, p99_ms: self.reservoir[idx], max_ms: self.max })
    }
}

/// Run the replay: read `source` until it ends (or the limit, duration or `stop` does), send,
/// and pass every fresh pair to `sink`. Returns when every sent request has been recorded.
pub async fn drive<D: Dispatch>(
    mut source: mpsc::Receiver<Result<SourceItem>>,
    dispatch: Arc<D>,
    config: DriverConfig,
    sink: mpsc::Sender<PairRecord>,
    progress: Arc<Progress>,
    stop: impl Future<Output = ()>,
) -> Result<Summary> {
    tokio::pin!(stop);
    let start = Instant::now();
    let mut pacer = Pacer::new(config.pacing, start);
    let deadline = config.duration.map(|d| start + d);
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks: JoinSet<Vec<(Side, Option<String>)>> = JoinSet::new();
    let mut summary = Summary::default();
    let mut lag = LagStats::new();
    let paced = !matches!(config.pacing, Pacing::Unpaced);
    let mut failure = None;

    let mut pending = std::collections::VecDeque::new();
    'requests: loop {
        let record = match pending.pop_front() {
            Some(r) => r,
            None => {
                let item = tokio::select! {
                    biased;
                    () = &mut stop => { summary.interrupted = true; break }
                    item = source.recv() => item,
                };
                match item {
                    None => break,
                    Some(Err(e)) => {
                        failure = Some(e);
                        break;
                    }
                    Some(Ok(SourceItem::PassEnd)) => {
                        pacer.restart(Instant::now());
                        continue;
                    }
                    Some(Ok(SourceItem::Records(batch))) => {
                        pending.extend(batch);
                        continue;
                    }
                }
            }
        };
        summary.read += 1;
        progress.read.fetch_add(1, Ordering::Relaxed);
        if let Err(skip) = config.filters.check(&record) {
            *summary.skipped.entry(skip.name()).or_default() += 1;
            progress.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if config.limit.is_some_and(|l| summary.sent >= l) {
            break;
        }
        let intended = pacer.next(record.captured_at);
        if let Some(due) = intended {
            if deadline.is_some_and(|d| due >= d) {
                break;
            }
            tokio::select! {
                biased;
                () = &mut stop => { summary.interrupted = true; break 'requests }
                () = tokio::time::sleep_until(due) => {}
            }
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let permit = tokio::select! {
            biased;
            () = &mut stop => { summary.interrupted = true; break }
            p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let now = Instant::now();
        let intended = intended.unwrap_or(now);
        if paced {
            lag.add(now.saturating_duration_since(intended).as_secs_f64() * 1e3);
        }
        summary.sent += 1;
        progress.sent.fetch_add(1, Ordering::Relaxed);

        let dispatch = Arc::clone(&dispatch);
        let sink = sink.clone();
        let progress = Arc::clone(&progress);
        let config_agent = config.agent.clone();
        let keep_baseline = config.keep_recorded_baseline;
        tasks.spawn(async move {
            let _permit = permit;
            let sent_at = Utc::now();
            let record = Arc::new(record);
            // One target: call it in this task. Several: one task each, so they run concurrently
            // and a slow target does not delay the others' timing.
            let mut answers = Vec::with_capacity(dispatch.sides().len());
            let mut calls = JoinSet::new();
            if let [side] = dispatch.sides() {
                answers.push((*side, dispatch.dispatch(*side, &record, intended).await));
            } else {
                for &side in dispatch.sides() {
                    let (d, r) = (Arc::clone(&dispatch), Arc::clone(&record));
                    calls.spawn(async move { (side, d.dispatch(side, &r, intended).await) });
                }
            }
            let mut out = PairRecord::new(config_agent, sent_at, record.method.clone(), record.path.clone(), record.query.clone());
            out.request_headers = record.request_headers.clone();
            out.request_body = record.request_body.clone();
            out.request_body_truncated = record.request_body_truncated;
            if keep_baseline {
                out.baseline = record.baseline.clone();
            }
            while let Some(joined) = calls.join_next().await {
                answers.push(joined.unwrap_or((Side::Canary, SideRecord::failed("other"))));
            }
            let mut errors = Vec::with_capacity(answers.len());
            for (side, answer) in answers {
                errors.push((side, answer.error.clone()));
                *out.side_mut(side) = answer;
            }
            // The writer blocks when full; a closed writer (it failed) ends recording quietly,
            // and the error surfaces from the writer itself.
            let _ = sink.send(out).await;
            progress.done.fetch_add(1, Ordering::Relaxed);
            errors
        });
    }
    drop(source);
    while let Some(joined) = tasks.join_next().await {
        if let Ok(errors) = joined {
            summary.recorded += 1;
            for (side, error) in errors {
                if let Some(kind) = error {
                    *summary.errors.entry((side.name().to_owned(), kind)).or_default() += 1;
                }
            }
        }
    }
    summary.elapsed = start.elapsed();
    summary.achieved_rate = summary.sent as f64 / summary.elapsed.as_secs_f64().max(1e-9);
    summary.lag = lag.finish();
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}
