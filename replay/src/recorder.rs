//! The hand-off from the driver's workers to the pair writer, in batches.
//!
//! The writer runs on its own thread. Handing it one pair at a time costs a channel operation and,
//! whenever the writer has caught up and parked, a futex wake-up per pair; at tens of thousands of
//! pairs a second that was a visible share of replay's time. Workers instead add finished pairs to
//! one shared batch, and whoever fills it (or finds it older than [`MAX_AGE`], so a slow paced
//! run still publishes steadily) sends it on. The driver flushes the remainder at the end.
//!
//! Backpressure still blocks: a worker whose batch does not fit in the channel waits, and with it
//! the requests it would have sent next.

use std::sync::Mutex;
use std::time::Duration;

use shadowdiff_format::PairRecord;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Pairs per hand-off: big enough that channel and wake-up costs vanish per pair, small next to
/// a row group (4096) so the writer is never starved while a batch fills.
pub const BATCH: usize = 256;

/// The longest a pair waits in a part-filled batch when another pair arrives after it.
pub const MAX_AGE: Duration = Duration::from_millis(200);

/// Collects finished pairs and passes them to the writer in batches.
#[derive(Debug)]
pub struct Recorder {
    pending: Mutex<Pending>,
    sink: mpsc::Sender<Vec<PairRecord>>,
    batch: usize,
}

#[derive(Debug, Default)]
struct Pending {
    pairs: Vec<PairRecord>,
    since: Option<Instant>,
}

impl Pending {
    fn take(&mut self) -> Vec<PairRecord> {
        self.since = None;
        std::mem::take(&mut self.pairs)
    }
}

impl Recorder {
    pub fn new(sink: mpsc::Sender<Vec<PairRecord>>, batch: usize) -> Self {
        Self { pending: Mutex::new(Pending::default()), sink, batch: batch.max(1) }
    }

    /// Add one pair; send the batch on when it is full or old. Waits while the writer is behind.
    pub async fn push(&self, pair: PairRecord) {
        let full = {
            let mut p = self.lock();
            if p.pairs.is_empty() {
                p.pairs.reserve(self.batch);
                p.since = Some(Instant::now());
            }
            p.pairs.push(pair);
            let old = p.since.is_some_and(|t| t.elapsed() >= MAX_AGE);
            (p.pairs.len() >= self.batch || old).then(|| p.take())
        };
        if let Some(batch) = full {
            self.send(batch).await;
        }
    }

    /// Send whatever is pending.
    pub async fn flush(&self) {
        let rest = self.lock().take();
        if !rest.is_empty() {
            self.send(rest).await;
        }
    }

    async fn send(&self, batch: Vec<PairRecord>) {
        // A closed writer (it failed) ends recording quietly; its error surfaces from the writer.
        let _ = self.sink.send(batch).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Nothing panics while holding the lock; if something did, the pairs are still whole.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(i: usize) -> PairRecord {
        PairRecord::new("t", chrono::Utc::now(), "GET", format!("/{i}"), None)
    }

    #[tokio::test(start_paused = true)]
    async fn batches_by_size_and_age_and_flushes_the_rest() {
        let (tx, mut rx) = mpsc::channel(16);
        let r = Recorder::new(tx, 3);
        for i in 0..4 {
            r.push(pair(i)).await;
        }
        assert_eq!(rx.try_recv().map(|b| b.len()), Ok(3));
        assert!(rx.try_recv().is_err(), "the fourth waits for company");
        tokio::time::advance(MAX_AGE).await;
        r.push(pair(4)).await;
        assert_eq!(rx.try_recv().map(|b| b.len()), Ok(2), "an old batch goes when the next pair comes");
        r.push(pair(5)).await;
        r.flush().await;
        let last = rx.try_recv().expect("flushed");
        assert_eq!(last.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["/5"]);
        r.flush().await;
        assert!(rx.try_recv().is_err(), "nothing to flush, nothing sent");
    }
}
