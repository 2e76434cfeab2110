//! The bounded hand-off from request handlers to the one pair writer.
//!
//! Handlers never wait on disk: a finished pair is offered to a bounded queue and, when the queue
//! is full, dropped and counted. The writer runs on its own thread, so Parquet encoding and zstd
//! never share a core's time slice with the proxy's event loop more than the OS decides; it
//! also closes files that reach their age while traffic is quiet.
//!
//! Every captured request holds a [`Ticket`] from the moment it is captured until its pair is
//! handed over. At shutdown the recorder closes: pairs still holding tickets are counted as
//! dropped (`shutdown`) in one step, under the same lock that stops new hand-offs, so no pair is
//! both written and counted dropped, and none is neither.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::counters::{Counters, DropReason};
use crate::error::{Error, Result};
use shadowdiff_format::{PairRecord, PairWriter, WriterConfig, WriterStats};

/// How often the writer thread checks for files past their rotation age.
const TICK: Duration = Duration::from_millis(250);

enum Msg {
    /// A pair and its approximate size, counted against the byte budget until written.
    Pair(Box<PairRecord>, u64),
    Close,
}

/// The recorder: a queue, a writer thread, and the open/closed state.
pub struct Recorder {
    tx: SyncSender<Msg>,
    /// `true` while pairs are accepted. Hand-offs hold the read lock; closing takes the write lock.
    open: RwLock<bool>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<Result<WriterStats>>>>,
    dir: PathBuf,
    /// Approximate bytes queued now, and the most allowed.
    queued_bytes: Arc<AtomicU64>,
    max_bytes: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Create the output directory, start the writer thread, and return the recorder.
    pub fn start(config: WriterConfig, queue: usize, max_bytes: u64, counters: Arc<Counters>) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.dir).map_err(|e| Error::BadConfig {
            setting: "--out".into(),
            message: format!("names {}, which cannot be created: {e}", config.dir.display()),
        })?;
        let dir = config.dir.clone();
        let mut config = config;
        config.closing_rows = Some(Arc::clone(&counters.closing));
        let writer = PairWriter::new(config)?;
        let (tx, rx) = mpsc::sync_channel(queue.max(1));
        let c = Arc::clone(&counters);
        let queued_bytes = Arc::new(AtomicU64::new(0));
        let qb = Arc::clone(&queued_bytes);
        let thread = std::thread::Builder::new()
            .name("shadowdiff-writer".into())
            .spawn(move || write_loop(writer, rx, c, qb))
            .map_err(|source| shadowdiff_format::Error::Io { path: dir.clone(), source })?;
        Ok(Arc::new(Self {
            tx,
            open: RwLock::new(true),
            counters,
            thread: Mutex::new(Some(thread)),
            dir,
            queued_bytes,
            max_bytes: max_bytes.max(1),
        }))
    }

    /// Start accounting for one captured request. `None` once the recorder is closed; the
    /// request is then counted as dropped (`shutdown`) here.
    pub fn begin(self: &Arc<Self>) -> Option<Ticket> {
        // Counted pending under the read lock, so `close` (under the write lock) sees it.
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        if !*open {
            self.counters.dropped(DropReason::Shutdown);
            return None;
        }
        self.counters.pairs_pending.fetch_add(1, Ordering::AcqRel);
        Some(Ticket { recorder: Arc::clone(self), done: false })
    }

    /// Stop accepting pairs, count those still in flight as dropped, let the writer drain its
    /// queue and close its file, and return what it wrote. Blocks: call from a blocking context.
    pub fn close(&self) -> Result<WriterStats> {
        {
            let mut open = self.open.write().unwrap_or_else(|e| e.into_inner());
            if *open {
                *open = false;
                let stuck = self.counters.pairs_pending.swap(0, Ordering::AcqRel).max(0) as u64;
                if stuck > 0 {
                    tracing::error!(pairs = stuck, "Pairs still in flight at the drain deadline were dropped.");
                    self.counters.dropped_n(DropReason::Shutdown, stuck);
                }
            }
        }
        // The writer drains everything queued before this message, then closes.
        let _ = self.tx.send(Msg::Close);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        match handle {
            Some(h) => h.join().unwrap_or_else(|_| Err(shadowdiff_format::Error::WriterClosed.into())),
            None => Err(shadowdiff_format::Error::WriterClosed.into()),
        }
    }

    fn hand_over(&self, pair: PairRecord) {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        if !*open {
            // Already counted as dropped by `close`.
            return;
        }
        self.counters.pairs_pending.fetch_sub(1, Ordering::AcqRel);
        let size = pair.approx_size() as u64;
        if self.queued_bytes.fetch_add(size, Ordering::AcqRel) + size > self.max_bytes {
            self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            self.counters.dropped(DropReason::QueueFull);
            return;
        }
        self.counters.queued.fetch_add(1, Ordering::AcqRel);
        let refused = match self.tx.try_send(Msg::Pair(Box::new(pair), size)) {
            Ok(()) => None,
            Err(TrySendError::Full(_)) => Some(DropReason::QueueFull),
            Err(TrySendError::Disconnected(_)) => Some(DropReason::WriterError),
        };
        if let Some(reason) = refused {
            self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            self.counters.queued.fetch_sub(1, Ordering::AcqRel);
            self.counters.dropped(reason);
        }
    }

    fn give_up(&self, reason: DropReason) {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        if *open {
            self.counters.pairs_pending.fetch_sub(1, Ordering::AcqRel);
            self.counters.dropped(reason);
        }
    }
}

/// One captured request's claim on the recorder: it ends as a pair handed over or a counted drop.
/// A ticket dropped without either (its task ended early) counts as `client_closed`.
#[must_use = "a ticket must be submitted or dropped with a reason"]
pub struct Ticket {
    recorder: Arc<Recorder>,
    done: bool,
}

impl Ticket {
    /// Hand the finished pair to the writer, or count it dropped when the queue is full.
    pub fn submit(mut self, pair: PairRecord) {
        self.done = true;
        self.recorder.hand_over(pair);
    }

    /// Give up on the pair and count why.
    pub fn drop_as(mut self, reason: DropReason) {
        self.done = true;
        self.recorder.give_up(reason);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.recorder.give_up(DropReason::ClientClosed);
        }
    }
}

/// What the writer thread knows between calls: the writer's counts already published, and
/// whether a failure episode is under way (logged once at its start, once at its end).
#[derive(Default)]
struct Ledger {
    committed: u64,
    lost: u64,
    /// Pairs dropped since the current failure episode began; `None` while writing succeeds.
    episode: Option<u64>,
}

impl Ledger {
    /// Publish what the writer did in its last call: rows committed become `recorded`, rows lost
    /// with a failed file become `dropped` (why: `disk_full` or `writer_error`).
    fn settle(&mut self, w: &PairWriter, c: &Counters, outcome: std::result::Result<(), &shadowdiff_format::Error>) {
        let stats = w.stats();
        let committed = stats.rows_committed - self.committed;
        let lost = stats.rows_lost - self.lost;
        (self.committed, self.lost) = (stats.rows_committed, stats.rows_lost);
        c.recorded.fetch_add(committed, Ordering::AcqRel);
        c.writing.store(stats.rows_pending, Ordering::Relaxed);
        c.committed.store(stats.rows_committed, Ordering::Relaxed);
        c.files.store(stats.files.len() as u64, Ordering::Relaxed);
        if let Err(error) = outcome {
            let reason = if error.is_disk_full() { DropReason::DiskFull } else { DropReason::WriterError };
            c.dropped_n(reason, lost);
            c.writer_errors.fetch_add(1, Ordering::Relaxed);
            match &mut self.episode {
                Some(n) => *n += lost,
                None => {
                    // Once per episode, not per pair: a full disk fails every write until it ends.
                    tracing::error!(
                        side = "recorder",
                        reason = reason.as_str(),
                        pairs = lost,
                        error = error as &dyn std::error::Error,
                        "Pair writer failed; its file was removed and its pairs, and every pair until writing succeeds again, are counted as dropped."
                    );
                    self.episode = Some(lost);
                }
            }
        } else if committed > 0
            && let Some(dropped) = self.episode.take()
        {
            tracing::info!(side = "recorder", dropped, "Pair writer recovered; recording resumed.");
        }
    }
}

// The writer is a plain thread blocked on its queue, not a task: tokio's clock does not run here.
#[allow(clippy::disallowed_methods)]
fn write_loop(
    mut writer: PairWriter,
    rx: mpsc::Receiver<Msg>,
    counters: Arc<Counters>,
    queued_bytes: Arc<AtomicU64>,
) -> Result<WriterStats> {
    let mut last_check = std::time::Instant::now();
    let mut ledger = Ledger::default();
    let write = |w: &mut PairWriter, ledger: &mut Ledger, pair: PairRecord, size: u64| {
        counters.queued.fetch_sub(1, Ordering::AcqRel);
        queued_bytes.fetch_sub(size, Ordering::AcqRel);
        let outcome = w.write(pair);
        ledger.settle(w, &counters, outcome.as_ref().map(|_| ()));
    };
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Msg::Pair(pair, size)) => write(&mut writer, &mut ledger, *pair, size),
            Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => {
                while let Ok(msg) = rx.try_recv() {
                    if let Msg::Pair(pair, size) = msg {
                        write(&mut writer, &mut ledger, *pair, size);
                    }
                }
                break;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if last_check.elapsed() >= TICK {
            last_check = std::time::Instant::now();
            let outcome = writer.maybe_rotate();
            ledger.settle(&writer, &counters, outcome.as_ref().map(|_| ()));
        }
    }
    let outcome = writer.finish();
    ledger.settle(&writer, &counters, outcome.as_ref().map(|_| ()));
    outcome?;
    Ok(writer.stats().clone())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn pair() -> PairRecord {
        PairRecord::new("t", Utc::now(), "GET", "/", None)
    }

    #[test]
    fn every_ticket_ends_recorded_or_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = Counters::new();
        let mut cfg = WriterConfig::new(dir.path(), "t");
        cfg.counters = Some(counters.source());
        let rec = Recorder::start(cfg, 4, 1 << 20, Arc::clone(&counters)).expect("start");
        for _ in 0..3 {
            rec.begin().expect("open").submit(pair());
        }
        rec.begin().expect("open").drop_as(DropReason::ClientClosed);
        drop(rec.begin().expect("open")); // forgotten: counted as client_closed too
        let stuck = rec.begin().expect("open");
        let stats = rec.close().expect("close");
        drop(stuck); // after close: already counted as shutdown
        assert!(rec.begin().is_none());
        let s = counters.snapshot();
        assert_eq!(stats.rows_committed, 3);
        assert_eq!(s["recorded"], 3);
        assert_eq!(s["dropped.client_closed"], 2);
        assert_eq!(s["dropped.shutdown"], 2, "the stuck ticket and the one refused after close");
        assert_eq!(counters.pairs_pending.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = Counters::new();
        let rec =
            Recorder::start(WriterConfig::new(dir.path(), "t"), 1, 1 << 20, Arc::clone(&counters)).expect("start");
        let n = 5_000;
        for _ in 0..n {
            rec.begin().expect("open").submit(pair());
        }
        rec.close().expect("close");
        let s = counters.snapshot();
        assert_eq!(s["recorded"] + s["dropped.queue_full"], n);
        assert!(s["dropped.queue_full"] > 0, "a queue of one overflows under a burst: {s:?}");
    }

    #[test]
    fn the_byte_budget_drops_large_pairs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = Counters::new();
        let rec =
            Recorder::start(WriterConfig::new(dir.path(), "t"), 1000, 10_000, Arc::clone(&counters)).expect("start");
        let mut big = pair();
        big.baseline.body = Some(bytes::Bytes::from(vec![b'x'; 20_000]));
        rec.begin().expect("open").submit(big);
        rec.begin().expect("open").submit(pair());
        rec.close().expect("close");
        let s = counters.snapshot();
        assert_eq!((s["recorded"], s["dropped.queue_full"]), (1, 1));
    }
}
