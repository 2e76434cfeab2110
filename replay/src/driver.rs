//! The one driver loop: take recorded requests in order, filter them, wait for the pacer's
//! intended send time, give each to a free worker that sends it to every target concurrently,
//! and hand the fresh pair to the writer. Pacing is a parameter ([`Pacing`]); nothing else varies
//! between modes.
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
use shadowdiff_format::PairRecord;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::error::Result;
use crate::filter::Filters;
use crate::pacer::{Pacer, Pacing};
use crate::recorder::{BATCH, Recorder};
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
    /// With an object-store out: what the spool still holds after the upload drain.
    pub upload: Option<shadowdiff_format::store::DrainReport>,
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

/// One request handed to a worker: the recorded pair and when it was meant to go out.
struct Job {
    record: PairRecord,
    intended: Instant,
}

/// What the driver shares with its workers.
struct Shared<D> {
    dispatch: Arc<D>,
    recorder: Recorder,
    progress: Arc<Progress>,
    agent: String,
    keep_baseline: bool,
}

/// What one worker counted.
#[derive(Default)]
struct Tally {
    recorded: u64,
    errors: BTreeMap<(&'static str, String), u64>,
}

/// The driver's pool of workers: up to `concurrency` long-lived tasks, each sending one request
/// at a time, started as they are first needed. An idle worker is the permit to send; its number
/// comes back on `idle` when it is free again.
///
/// Fixed workers rather than a task per request: no task allocation, semaphore or join-set
/// bookkeeping per request, and each worker tends to reuse the same pooled connection (oha's
/// shape: N workers, each looping).
struct Workers<D> {
    shared: Arc<Shared<D>>,
    slots: Vec<mpsc::Sender<Job>>,
    /// Dropped once the pool is full, so that if every worker ended (only a bug could do that)
    /// waiting for an idle one ends too instead of hanging.
    idle_tx: Option<mpsc::Sender<usize>>,
    idle_rx: mpsc::Receiver<usize>,
    tasks: JoinSet<Tally>,
    max: usize,
}

impl<D: Dispatch> Workers<D> {
    fn new(shared: Shared<D>, max: usize) -> Self {
        let max = max.max(1);
        // Room for every worker's number, so announcing idleness never waits.
        let (idle_tx, idle_rx) = mpsc::channel(max);
        Self {
            shared: Arc::new(shared),
            slots: Vec::new(),
            idle_tx: Some(idle_tx),
            idle_rx,
            tasks: JoinSet::new(),
            max,
        }
    }

    /// A worker ready to take a job now, if there is one (starting one if the pool is not full).
    fn try_idle(&mut self) -> Option<usize> {
        if let Ok(w) = self.idle_rx.try_recv() {
            return Some(w);
        }
        self.start()
    }

    /// Wait until a worker is free.
    async fn idle(&mut self) -> Option<usize> {
        match self.try_idle() {
            Some(w) => Some(w),
            None => self.idle_rx.recv().await,
        }
    }

    /// Start another worker, unless the pool is full.
    fn start(&mut self) -> Option<usize> {
        let idle = self.idle_tx.clone()?;
        let id = self.slots.len();
        let (tx, mut jobs) = mpsc::channel::<Job>(1);
        self.slots.push(tx);
        if self.slots.len() >= self.max {
            self.idle_tx = None;
        }
        let shared = Arc::clone(&self.shared);
        self.tasks.spawn(async move {
            let mut tally = Tally::default();
            while let Some(job) = jobs.recv().await {
                let pair = run_job(&shared, job).await;
                for side in shared.dispatch.sides() {
                    if let Some(kind) = &pair.side(*side).error {
                        *tally.errors.entry((side.name(), kind.clone())).or_default() += 1;
                    }
                }
                shared.recorder.push(pair).await;
                tally.recorded += 1;
                shared.progress.done.fetch_add(1, Ordering::Relaxed);
                if idle.send(id).await.is_err() {
                    break;
                }
            }
            tally
        });
        Some(id)
    }

    /// Give `job` to worker `w`, which [`Self::idle`] returned and so is waiting for it.
    fn give(&self, w: usize, job: Job) {
        // An idle worker's slot is empty and its receiver alive, so this cannot fail; if it
        // somehow did, the request was not sent and the sent count would say so.
        let _ = self.slots[w].try_send(job);
    }

    /// Let every worker finish what it is sending, flush the last batch, and merge their counts.
    async fn finish(mut self, summary: &mut Summary) {
        self.slots.clear();
        while let Some(joined) = self.tasks.join_next().await {
            if let Ok(t) = joined {
                summary.recorded += t.recorded;
                for ((side, kind), n) in t.errors {
                    *summary.errors.entry((side.to_owned(), kind)).or_default() += n;
                }
            }
        }
        self.shared.recorder.flush().await;
    }
}

/// Send one recorded request to every target and build the fresh pair from the answers.
async fn run_job<D: Dispatch>(shared: &Shared<D>, job: Job) -> PairRecord {
    let Job { mut record, intended } = job;
    let sent_at = Utc::now();
    let d = &*shared.dispatch;
    let answers = match d.sides() {
        [side] => vec![(*side, d.dispatch(*side, &record, intended).await)],
        sides => {
            let r = &record;
            join_all(sides.iter().map(|&s| Box::pin(async move { (s, d.dispatch(s, r, intended).await) }))).await
        }
    };
    // The recorded request moves into the fresh pair; nothing is copied.
    let mut out = PairRecord::new(
        shared.agent.clone(),
        sent_at,
        std::mem::take(&mut record.method),
        std::mem::take(&mut record.path),
        record.query.take(),
    );
    out.request_headers = std::mem::take(&mut record.request_headers);
    out.request_body = record.request_body.take();
    out.request_body_truncated = record.request_body_truncated;
    if shared.keep_baseline {
        out.baseline = std::mem::take(&mut record.baseline);
    }
    for (side, answer) in answers {
        *out.side_mut(side) = answer;
    }
    out
}

/// Poll every future to completion, concurrently, in one task; the results keep their order.
async fn join_all<F: Future + Unpin>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut slots: Vec<(F, Option<F::Output>)> = futures.into_iter().map(|f| (f, None)).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in slots.iter_mut().filter(|(_, out)| out.is_none()) {
            match std::pin::Pin::new(f).poll(cx) {
                std::task::Poll::Ready(v) => *out = Some(v),
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    slots.into_iter().filter_map(|(_, out)| out).collect()
}

/// Run the replay: read `source` until it ends (or the limit, duration or `stop` does), send,
/// and pass every fresh pair to `sink` (in batches). Returns when every sent request has been
/// handed to `sink`.
pub async fn drive<D: Dispatch>(
    mut source: mpsc::Receiver<Result<SourceItem>>,
    dispatch: Arc<D>,
    config: DriverConfig,
    sink: mpsc::Sender<Vec<PairRecord>>,
    progress: Arc<Progress>,
    stop: impl Future<Output = ()>,
) -> Result<Summary> {
    tokio::pin!(stop);
    let start = Instant::now();
    let mut pacer = Pacer::new(config.pacing, start);
    let deadline = config.duration.map(|d| start + d);
    let shared = Shared {
        dispatch,
        recorder: Recorder::new(sink, BATCH),
        progress: Arc::clone(&progress),
        agent: config.agent.clone(),
        keep_baseline: config.keep_recorded_baseline,
    };
    let mut workers = Workers::new(shared, config.concurrency);
    let mut summary = Summary::default();
    let mut lag = LagStats::new();
    let paced = !matches!(config.pacing, Pacing::Unpaced);
    let mut failure = None;

    // The current batch from the source, consumed in place.
    let mut pending = Vec::new().into_iter();
    'requests: loop {
        let record = match pending.next() {
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
                        pending = batch.into_iter();
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
        let worker = match workers.try_idle() {
            Some(w) => w,
            None => tokio::select! {
                biased;
                () = &mut stop => { summary.interrupted = true; break }
                w = workers.idle() => match w { Some(w) => w, None => break },
            },
        };
        let now = Instant::now();
        let intended = intended.unwrap_or(now);
        if paced {
            lag.add(now.saturating_duration_since(intended).as_secs_f64() * 1e3);
        }
        summary.sent += 1;
        progress.sent.fetch_add(1, Ordering::Relaxed);
        workers.give(worker, Job { record, intended });
    }
    drop(source);
    workers.finish(&mut summary).await;
    summary.elapsed = start.elapsed();
    summary.achieved_rate = summary.sent as f64 / summary.elapsed.as_secs_f64().max(1e-9);
    summary.lag = lag.finish();
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}
