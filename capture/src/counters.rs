//! What the capture agent counts: every request it sees ends in exactly one of *recorded*,
//! *dropped* (by reason) or *skipped* (by reason), so the three add up to *seen* once nothing is
//! in flight. The same numbers feed `/metrics` and, through [`Counters::source`], the metadata of
//! every pair file the writer closes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use shadowdiff_format::CounterSource;
use shadowdiff_format::retain::RetainStats;
use shadowdiff_format::schema::{Side, error_kind};
use shadowdiff_format::store::UploadStats;

/// Why a captured pair never reached the writer. Each is counted under `dropped.<reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The writer's queue was full: the client path never waits on disk.
    QueueFull,
    /// The writer failed to write the pair, or the file holding it (permissions, I/O errors).
    WriterError,
    /// The output filesystem was full (or a quota exhausted) when the pair or its file was
    /// written: the file was removed and its pairs counted here.
    DiskFull,
    /// Still in flight when the drain deadline passed at shutdown.
    Shutdown,
    /// The client went away before the baseline's response reached it.
    ClientClosed,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::QueueFull,
        DropReason::WriterError,
        DropReason::Shutdown,
        DropReason::ClientClosed,
        DropReason::DiskFull,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::WriterError => "writer_error",
            DropReason::Shutdown => "shutdown",
            DropReason::ClientClosed => "client_closed",
            DropReason::DiskFull => "disk_full",
        }
    }
}

/// Why a request was served but deliberately not captured. Counted under `skipped.<reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Not in the sample (`--sample-rate`).
    Sample,
    /// Excluded by the include/exclude path patterns.
    Path,
    /// A protocol upgrade (WebSocket): passed to the baseline only.
    Upgrade,
    /// A request the agent refuses to proxy (CONNECT).
    NotProxied,
}

impl SkipReason {
    pub const ALL: [SkipReason; 4] =
        [SkipReason::Sample, SkipReason::Path, SkipReason::Upgrade, SkipReason::NotProxied];

    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::Sample => "sample",
            SkipReason::Path => "path",
            SkipReason::Upgrade => "upgrade",
            SkipReason::NotProxied => "not_proxied",
        }
    }
}

/// Why a captured pair was not mirrored: it is recorded with `canary_error = "skipped"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorSkip {
    /// The method is not in `--mirror-methods`.
    Method,
    /// The request body was larger than `--max-request-body`.
    BodyTooLarge,
    /// The bound on in-flight mirrors was reached.
    InFlight,
    /// A POST on a `--mirror-graphql` or `--mirror-jsonrpc` path whose body was not shown to only
    /// read (a mutation, an unlisted method, a body that cannot be read).
    NotReadOnly,
    /// A streamed request (gRPC) whose body failed, or was not read to its end by the baseline:
    /// there is no whole request to mirror.
    RequestIncomplete,
}

impl MirrorSkip {
    pub const ALL: [MirrorSkip; 5] = [
        MirrorSkip::Method,
        MirrorSkip::BodyTooLarge,
        MirrorSkip::InFlight,
        MirrorSkip::NotReadOnly,
        MirrorSkip::RequestIncomplete,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MirrorSkip::Method => "method",
            MirrorSkip::BodyTooLarge => "body_too_large",
            MirrorSkip::InFlight => "in_flight",
            MirrorSkip::NotReadOnly => "not_read_only",
            MirrorSkip::RequestIncomplete => "request_incomplete",
        }
    }
}

/// How a client connection of the listener ended. Each is counted under
/// `shadowdiff_client_connections_closed_total{reason}`, so that once none is open the reasons add
/// up to the connections accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnClose {
    /// Closed by the client, or after a response with `Connection: close`: nothing wrong.
    Client,
    /// Closed as soon as it was accepted, unread: `--max-connections` were open.
    Refused,
    /// No request in flight for `--idle-timeout` (including a client that never sent a byte).
    Idle,
    /// A request's headers took longer than `--header-read-timeout` (slowloris).
    HeaderTimeout,
    /// A request's headers were larger than `--max-header-size`.
    HeaderTooLarge,
    /// An HTTP/2 client past one of the abuse bounds (rapid reset, too many streams reset for
    /// its errors, a CONTINUATION flood): GOAWAY with ENHANCE_YOUR_CALM.
    Http2Abuse,
    /// The TLS handshake failed or took longer than its timeout.
    TlsHandshake,
    /// Any other error of the client's making (malformed requests or frames, a reset socket).
    Error,
}

impl ConnClose {
    pub const ALL: [ConnClose; 8] = [
        ConnClose::Client,
        ConnClose::Refused,
        ConnClose::Idle,
        ConnClose::HeaderTimeout,
        ConnClose::HeaderTooLarge,
        ConnClose::Http2Abuse,
        ConnClose::TlsHandshake,
        ConnClose::Error,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ConnClose::Client => "client",
            ConnClose::Refused => "refused",
            ConnClose::Idle => "idle",
            ConnClose::HeaderTimeout => "header_timeout",
            ConnClose::HeaderTooLarge => "header_too_large",
            ConnClose::Http2Abuse => "http2_abuse",
            ConnClose::TlsHandshake => "tls_handshake",
            ConnClose::Error => "error",
        }
    }
}

/// What the client listener counts: connections accepted, open, and closed by reason. Kept
/// apart from the pair counters (they describe sockets, not requests, and stay out of file
/// metadata).
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Connections accepted (refused ones included).
    pub accepted: AtomicU64,
    /// Connections open now (gauge).
    pub open: AtomicI64,
    /// Connections held unread for the abuse penalty before being served (their address had a
    /// connection closed for HTTP/2 abuse just before).
    pub held: AtomicU64,
    closed: [AtomicU64; ConnClose::ALL.len()],
}

impl ListenerStats {
    pub fn closed(&self, reason: ConnClose) {
        let i = ConnClose::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.closed[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn closed_count(&self, reason: ConnClose) -> u64 {
        let i = ConnClose::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.closed[i].load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency histogram buckets, in seconds (Prometheus `le`).
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Error kinds counted per side in `/metrics`; anything else is counted as `other`.
pub const ERROR_KINDS: [&str; 7] = [
    error_kind::TIMEOUT,
    error_kind::CONNECT,
    error_kind::RESET,
    error_kind::PROTOCOL,
    error_kind::BODY_TOO_LARGE,
    error_kind::SKIPPED,
    error_kind::OTHER,
];

/// A lock-free latency histogram with [`LATENCY_BUCKETS`] plus `+Inf`.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS.iter().position(|&b| secs <= b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(d.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket (the last is `+Inf`), the sum in seconds, and the count.
    pub fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        let mut acc = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        (cumulative, self.sum_us.load(Ordering::Relaxed) as f64 / 1e6, self.count.load(Ordering::Relaxed))
    }
}

/// Every counter and gauge of one capture agent.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests received.
    pub seen: AtomicU64,
    /// Captured pairs whose request was sent to the canary.
    pub mirrored: AtomicU64,
    /// Pairs in pair files whose footer is written and which are renamed to their final name.
    /// A pair the writer holds in an open file is not yet recorded; if that file fails, the
    /// pair is counted dropped instead (`disk_full` or `writer_error`).
    pub recorded: AtomicU64,
    /// Pairs the writer holds in its open file (gauge).
    pub writing: AtomicU64,
    /// The rows of the file the writer is closing, while it reads the counters for that file's
    /// metadata (zero otherwise): a file's counters include its own rows as recorded.
    pub closing: Arc<AtomicU64>,
    /// Rows in files that are closed and renamed.
    pub committed: AtomicU64,
    /// Pair files closed.
    pub files: AtomicU64,
    /// Protocol upgrades passed to the baseline.
    pub upgrades: AtomicU64,
    /// Writer failures (each logged at ERROR).
    pub writer_errors: AtomicU64,
    /// Pairs whose recorded bodies could not be parsed for JSON-path redaction and were left out.
    pub redaction_withheld: AtomicU64,
    /// Sides whose body was still coming when its recording ended (the duration cap, or an
    /// open-ended mirror body that went quiet): recorded truncated, not as errors.
    pub streams_cut: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    skipped: [AtomicU64; SkipReason::ALL.len()],
    mirror_skipped: [AtomicU64; MirrorSkip::ALL.len()],
    /// Requests between arrival and the end of their response head (gauge).
    pub requests_in_flight: AtomicI64,
    /// Captured pairs not yet handed to the writer (gauge).
    pub pairs_pending: AtomicI64,
    /// Pairs waiting in the writer's queue (gauge).
    pub queued: AtomicI64,
    latency: [Histogram; 3],
    side_errors: [[AtomicU64; ERROR_KINDS.len()]; 3],
    /// Uploads to an object store and the spool's budget (zero with a local --out).
    pub upload: Arc<UploadStats>,
    /// Partitions deleted by --retain (zero without it).
    pub retain: Arc<RetainStats>,
    /// Whether --out is an object store: its counters then go into file metadata too.
    pub uploading: AtomicBool,
    /// The client listener's connections.
    pub listener: Arc<ListenerStats>,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Baseline => 0,
        Side::Canary => 1,
        Side::Secondary => 2,
    }
}

impl Counters {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn dropped(&self, reason: DropReason) {
        self.dropped_n(reason, 1);
    }

    pub fn dropped_n(&self, reason: DropReason, n: u64) {
        let i = DropReason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.dropped[i].fetch_add(n, Ordering::Relaxed);
    }

    pub fn skipped(&self, reason: SkipReason) {
        let i = SkipReason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.skipped[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn mirror_skipped(&self, reason: MirrorSkip) {
        let i = MirrorSkip::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.mirror_skipped[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        let i = DropReason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.dropped[i].load(Ordering::Relaxed)
    }

    pub fn skipped_count(&self, reason: SkipReason) -> u64 {
        let i = SkipReason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.skipped[i].load(Ordering::Relaxed)
    }

    pub fn mirror_skipped_count(&self, reason: MirrorSkip) -> u64 {
        let i = MirrorSkip::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.mirror_skipped[i].load(Ordering::Relaxed)
    }

    /// Record what one side did: its latency (when it answered) and its error kind (when any).
    pub fn observe_side(&self, side: Side, latency: Option<Duration>, error: Option<&str>) {
        if let Some(d) = latency {
            self.latency[side_index(side)].observe(d);
        }
        if let Some(kind) = error {
            let i = ERROR_KINDS.iter().position(|k| *k == kind).unwrap_or(ERROR_KINDS.len() - 1);
            self.side_errors[side_index(side)][i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn latency(&self, side: Side) -> &Histogram {
        &self.latency[side_index(side)]
    }

    pub fn side_errors(&self, side: Side) -> Vec<(&'static str, u64)> {
        ERROR_KINDS
            .iter()
            .zip(&self.side_errors[side_index(side)])
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }

    /// The cumulative counters by name, as stored in file metadata (`seen`, `recorded`,
    /// `dropped.queue_full`, `skipped.sample`, `mirror_skipped.in_flight`, …). Gauges and
    /// histograms are left out.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut m = BTreeMap::new();
        m.insert("seen".to_owned(), load(&self.seen));
        m.insert("mirrored".to_owned(), load(&self.mirrored));
        m.insert("recorded".to_owned(), load(&self.recorded));
        m.insert("upgrades".to_owned(), load(&self.upgrades));
        m.insert("writer_errors".to_owned(), load(&self.writer_errors));
        m.insert("redaction_withheld".to_owned(), load(&self.redaction_withheld));
        m.insert("streams_cut".to_owned(), load(&self.streams_cut));
        m.insert("dropped".to_owned(), self.dropped_total());
        m.insert("skipped".to_owned(), self.skipped_total());
        for (r, n) in DropReason::ALL.iter().zip(&self.dropped) {
            m.insert(format!("dropped.{}", r.as_str()), load(n));
        }
        for (r, n) in SkipReason::ALL.iter().zip(&self.skipped) {
            m.insert(format!("skipped.{}", r.as_str()), load(n));
        }
        for (r, n) in MirrorSkip::ALL.iter().zip(&self.mirror_skipped) {
            m.insert(format!("mirror_skipped.{}", r.as_str()), load(n));
        }
        if self.uploading.load(Ordering::Relaxed) {
            m.extend(self.upload.snapshot());
        }
        if self.retain.files.load(Ordering::Relaxed) > 0 {
            m.extend(self.retain.snapshot());
        }
        m
    }

    /// The writer's view of these counters: read each time it closes a file.
    pub fn source(self: &Arc<Self>) -> CounterSource {
        let me = Arc::clone(self);
        Arc::new(move || {
            let mut m = me.snapshot();
            if let Some(r) = m.get_mut("recorded") {
                *r += me.closing.load(Ordering::Acquire);
            }
            m
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let (buckets, sum, count) = h.snapshot();
        assert_eq!(count, 3);
        assert_eq!(buckets[0], 1);
        assert_eq!(buckets[3], 2); // le 0.005
        assert_eq!(*buckets.last().expect("inf"), 3);
        assert!((sum - 60.0033).abs() < 1e-6);
    }

    #[test]
    fn snapshot_names_every_reason() {
        let c = Counters::new();
        c.seen.fetch_add(5, Ordering::Relaxed);
        c.dropped(DropReason::QueueFull);
        c.skipped(SkipReason::Sample);
        c.mirror_skipped(MirrorSkip::InFlight);
        let s = c.snapshot();
        assert_eq!(s["seen"], 5);
        assert_eq!(s["dropped.queue_full"], 1);
        assert_eq!(s["dropped"], 1);
        assert_eq!(s["skipped.sample"], 1);
        assert_eq!(s["mirror_skipped.in_flight"], 1);
        assert_eq!(s["dropped.shutdown"], 0);
    }
}
