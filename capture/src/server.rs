//! The accept loop, after hyper-util's `examples/server_graceful.rs`: the auto builder (HTTP/1.1
//! and HTTP/2, over TLS with ALPN or in clear text), accept raced against the stop signal, every
//! connection watched for a graceful shutdown, and a deadline on the drain.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::counters::{ConnClose, ListenerStats};
use crate::error::{Error, Result};
use crate::penalty::Penalties;

/// How long a TLS client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 streams a client may reset before the server has accepted them, before the connection
/// is closed with GOAWAY (ENHANCE_YOUR_CALM): the rapid-reset bound (CVE-2023-44487). h2's own
/// default, pinned here so an upgrade cannot loosen it unnoticed.
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// HTTP/2 streams the server may reset for the client's errors (a bad frame on a stream, a
/// refused stream) before the connection is closed with GOAWAY: the bound on "MadeYouReset"
/// (CVE-2025-8671), where a client provokes the resets instead of sending them. hyper's default,
/// pinned.
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// How long a connection closed for idleness may take to finish closing (an HTTP/2 GOAWAY
/// waits for the client's PING acknowledgement) before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The listener logs abusive clients at WARN at most this often, with the running counts, so
/// that a flood of them cannot flood the log.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Bounds on what clients may hold of the listener: connections, header bytes and time, HTTP/2
/// streams. A client past a bound is refused or cut; every other client goes on being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Client connections open at once; a connection past it is closed as soon as it is
    /// accepted (before anything is read from it).
    pub max_connections: usize,
    /// The most bytes of request headers (HTTP/1.1: the read buffer; HTTP/2: the header list).
    pub max_header_size: usize,
    /// How long a client may take to send a request's headers (slowloris) and, on a kept-alive
    /// HTTP/1.1 connection, to start the next request.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight: one that never sends a
    /// byte (hyper's header timer starts only at the first byte), a kept-alive HTTP/1.1
    /// connection between requests, an HTTP/2 connection with no open stream (PINGs and
    /// SETTINGS do not count as activity).
    pub idle_timeout: Duration,
    /// HTTP/2 streams open at once on one connection.
    pub max_concurrent_streams: u32,
    /// How long new connections from an address (an IPv6 /64) wait, unread, after one of its
    /// connections was closed for HTTP/2 abuse (zero: not at all). See [`crate::penalty`].
    pub abuse_penalty: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_header_size: 64 * 1024,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_concurrent_streams: 256,
            abuse_penalty: Duration::from_secs(1),
        }
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The connection came in over TLS.
    pub tls: bool,
}

/// Load the listener's certificate chain and key (PEM) into an acceptor offering h2 and http/1.1.
pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    let bad = |flag: &str, path: &Path, why: String| Error::BadConfig {
        setting: flag.to_owned(),
        message: format!("names {}, which is not usable: {why}", path.display()),
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad("--tls-cert", &files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("--tls-cert", &files.cert, "it holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad("--tls-key", &files.key, e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::BadConfig { setting: "TLS".into(), message: e.to_string() })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("--tls-key", &files.key, e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serve `handler` on `listener` until `stop` turns true; then stop accepting and give open
/// connections until `grace` to finish their requests before they are cut. Returns whether every
/// connection finished in time.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    stop: watch::Receiver<bool>,
    grace: Duration,
) -> bool
where
    H: Fn(Request<Incoming>, Peer) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = std::result::Result<Response<B>, Infallible>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let stats = Arc::new(ListenerStats::default());
    serve_with_limits(listener, tls, handler, stop, grace, ListenerLimits::default(), stats).await
}

/// [`serve`] within `limits` (capture's client listener; the admin listener and `serve` use the
/// defaults), counting its connections into `stats`.
pub async fn serve_with_limits<H, F, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    limits: ListenerLimits,
    stats: Arc<ListenerStats>,
) -> bool
where
    H: Fn(Request<Incoming>, Peer) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = std::result::Result<Response<B>, Infallible>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No `Date` of the proxy's own: the client gets the baseline's headers as they are (a gRPC
    // server sends none, and a client comparing metadata would see one appear).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper's floor for the read buffer is 8 KiB.
        .max_buf_size(limits.max_header_size.max(8192))
        .auto_date_header(false);
    // The HTTP/2 abuse bounds are h2's (each closes the connection with GOAWAY
    // ENHANCE_YOUR_CALM): streams reset by the client before they are accepted (rapid reset),
    // streams reset for the client's errors (MadeYouReset), CONTINUATION frames past what the
    // header list allows (CONTINUATION flood), and one pending PING answer at a time.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        .auto_date_header(false);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let builder = Arc::new(builder);
    let warn = Arc::new(Warner::new(Arc::clone(&stats)));
    let penalties = Arc::new(Penalties::new(limits.abuse_penalty));
    let mut connections = JoinSet::new();

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        // Out of file descriptors, or a connection aborted before accept: back
                        // off briefly rather than spin.
                        tracing::warn!(side = "client", %error, "Accepting a connection failed.");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    // At --max-connections: closed unread, so a flood cannot hold more.
                    drop(stream);
                    stats.closed(ConnClose::Refused);
                    warn.abuse(ConnClose::Refused, &addr, "--max-connections reached");
                    continue;
                };
                stats.open.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let builder = Arc::clone(&builder);
                let (stats, warn, mut stop) = (Arc::clone(&stats), Arc::clone(&warn), stop.clone());
                let penalties = Arc::clone(&penalties);
                let tls = tls.clone();
                let idle_timeout = limits.idle_timeout;
                // The TLS handshake runs in the connection's task, so a slow client cannot hold
                // up the accept loop. A connection still shaking hands at shutdown is cut.
                connections.spawn(async move {
                    // An address that just abused HTTP/2 waits, unread, in its slot; a stop
                    // signal meanwhile closes it unread.
                    let stopped_while_held = match penalties.wait_until(addr.ip(), Instant::now()) {
                        Some(until) => {
                            stats.held.fetch_add(1, Ordering::Relaxed);
                            tokio::select! {
                                () = tokio::time::sleep_until(until) => false,
                                _ = stop.wait_for(|s| *s) => true,
                            }
                        }
                        None => false,
                    };
                    let activity = Arc::new(Activity::new());
                    // Each request is counted in flight on `activity` from the handler's call
                    // until its response body ends.
                    let service = {
                        let activity = Arc::clone(&activity);
                        move |peer: Peer| {
                            service_fn(move |req| {
                                let in_flight = activity.begin();
                                let answer = handler(req, peer);
                                async move {
                                    let response = answer.await?;
                                    Ok::<_, Infallible>(response.map(|body| Tracked { inner: Box::pin(body), _in_flight: in_flight }))
                                }
                            })
                        }
                    };
                    let served = match tls {
                        _ if stopped_while_held => Ended::Closed,
                        None => {
                            let service = service(Peer { addr, tls: false });
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                            drive(conn, &activity, idle_timeout, stop).await
                        }
                        Some(acceptor) => {
                            let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                            let stream = tokio::select! {
                                shaken = shake => match shaken {
                                    Ok(Ok(s)) => Some(s),
                                    Ok(Err(error)) => {
                                        tracing::debug!(side = "client", %addr, %error, "TLS handshake failed.");
                                        None
                                    }
                                    Err(_) => None,
                                },
                                _ = stop.wait_for(|s| *s) => None,
                            };
                            match stream {
                                Some(stream) => {
                                    let service = service(Peer { addr, tls: true });
                                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                                    drive(conn, &activity, idle_timeout, stop).await
                                }
                                None => Ended::Failed(ConnClose::TlsHandshake, None),
                            }
                        }
                    };
                    let reason = match served {
                        Ended::Closed => ConnClose::Client,
                        Ended::Idle => ConnClose::Idle,
                        Ended::Failed(reason, error) => {
                            if let Some(error) = error {
                                tracing::debug!(side = "client", %addr, reason = reason.as_str(), error = %Chain(&*error), "Client connection failed.");
                            }
                            reason
                        }
                    };
                    stats.closed(reason);
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                    if matches!(reason, ConnClose::HeaderTimeout | ConnClose::HeaderTooLarge | ConnClose::Http2Abuse) {
                        warn.abuse(reason, &addr, reason.as_str());
                    }
                    if reason == ConnClose::Http2Abuse {
                        penalties.abused(addr.ip(), Instant::now());
                    }
                    drop(slot);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    // Every connection saw the stop signal and is closing gracefully (HTTP/1.1: after its
    // response; HTTP/2: GOAWAY, then its open streams finish).
    let clean = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await.is_ok();
    let cut = connections.len();
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    // Aborted tasks did not reach their own bookkeeping.
    stats.open.fetch_sub(i64::try_from(cut).unwrap_or(i64::MAX), Ordering::Relaxed);
    clean
}

/// How a connection's task ended.
enum Ended {
    /// The connection finished without error (the client closed it, or it was closed after the
    /// stop signal).
    Closed,
    /// Closed for having no request in flight for the idle timeout.
    Idle,
    /// Closed for an error, classified.
    Failed(ConnClose, Option<Box<dyn StdError + Send + Sync>>),
}

/// Serve one connection until it ends: closed gracefully when it has been idle for
/// `idle_timeout` (then dropped if it has not finished closing after [`IDLE_CLOSE_GRACE`]), and
/// closed gracefully when `stop` turns true (the accept loop bounds that drain).
async fn drive<C>(conn: C, activity: &Activity, idle_timeout: Duration, mut stop: watch::Receiver<bool>) -> Ended
where
    C: GracefulConnection,
    C::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    let mut idle = false;
    let mut cut_at: Option<Instant> = None;
    loop {
        let idle_at = activity.idle_deadline(idle_timeout);
        tokio::select! {
            done = conn.as_mut() => {
                return match done {
                    // Closing a connection that is still waiting for its first bytes ends it
                    // with an error ("Cancelled"): it is closed as asked all the same.
                    _ if idle => Ended::Idle,
                    _ if closing => Ended::Closed,
                    Ok(()) => Ended::Closed,
                    Err(error) => {
                        let error = error.into();
                        match classify(&*error) {
                            // HTTP/1.1 between requests: hyper's header timer runs while a
                            // kept-alive connection waits for its next request.
                            ConnClose::HeaderTimeout if activity.between_requests() => Ended::Idle,
                            reason => Ended::Failed(reason, Some(error)),
                        }
                    }
                };
            }
            _ = tokio::time::sleep_until(idle_at), if !closing => {
                if activity.is_idle(idle_timeout) {
                    conn.as_mut().graceful_shutdown();
                    (closing, idle) = (true, true);
                    cut_at = Some(Instant::now() + IDLE_CLOSE_GRACE);
                }
            }
            _ = tokio::time::sleep_until(cut_at.unwrap_or_else(Instant::now)), if cut_at.is_some() => return Ended::Idle,
            _ = stop.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Which [`ConnClose`] reason a connection's error is: hyper's kinds, and h2's GOAWAY with
/// ENHANCE_YOUR_CALM (every one of its abuse bounds ends so).
fn classify(error: &(dyn StdError + 'static)) -> ConnClose {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return ConnClose::HeaderTimeout;
            }
            if h.is_parse_too_large() {
                return ConnClose::HeaderTooLarge;
            }
        }
        if let Some(h2) = e.downcast_ref::<h2::Error>()
            && h2.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
        {
            return ConnClose::Http2Abuse;
        }
        next = e.source();
    }
    ConnClose::Error
}

/// Requests in flight on one connection and when the last one ended: what the idle timeout
/// reads. Bytes are not activity: an HTTP/2 client holding a connection with PINGs alone is idle.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last request (0: none yet).
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self { opened: Instant::now(), in_flight: AtomicUsize::new(0), last_ms: AtomicU64::new(0) }
    }

    /// A request started; the guard ends it when the response body is done or dropped.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    fn idle_deadline(&self, timeout: Duration) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Acquire)) + timeout
    }

    /// At least one request has been answered and none is in flight.
    fn between_requests(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.last_ms.load(Ordering::Acquire) > 0
    }

    fn is_idle(&self, timeout: Duration) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= self.idle_deadline(timeout)
    }
}

/// One request in flight on a connection, from the handler's call until its response body is
/// finished (or dropped: the client reset the stream).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.opened.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
        a.last_ms.fetch_max(ms, Ordering::AcqRel);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted in flight until it is finished or dropped
/// (hyper drops it once it is sent, or when the client resets the stream). Boxed so that it is
/// `Unpin` whatever the handler's body is.
struct Tracked<B> {
    inner: std::pin::Pin<Box<B>>,
    _in_flight: InFlight,
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<hyper::body::Frame<B::Data>, B::Error>>> {
        self.inner.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// An error and its causes on one line, for the DEBUG log of a failed connection.
struct Chain<'a>(&'a (dyn StdError + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// Logs abusive clients at WARN at most once per [`WARN_EVERY`], with the running counts; every
/// one is counted in [`ListenerStats`] whether logged or not.
struct Warner {
    stats: Arc<ListenerStats>,
    started: Instant,
    /// Milliseconds from `started` of the last WARN (u64::MAX: none yet).
    last_ms: AtomicU64,
}

impl Warner {
    fn new(stats: Arc<ListenerStats>) -> Self {
        Self { stats, started: Instant::now(), last_ms: AtomicU64::new(u64::MAX) }
    }

    fn abuse(&self, reason: ConnClose, addr: &SocketAddr, what: &str) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_ms.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        if last != u64::MAX && now.saturating_sub(last) < every {
            return;
        }
        if self.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        let s = &self.stats;
        tracing::warn!(
            side = "client",
            %addr,
            reason = reason.as_str(),
            refused = s.closed_count(ConnClose::Refused),
            header_timeout = s.closed_count(ConnClose::HeaderTimeout),
            header_too_large = s.closed_count(ConnClose::HeaderTooLarge),
            http2_abuse = s.closed_count(ConnClose::Http2Abuse),
            "Client connection closed ({what}); further ones are counted in shadowdiff_client_connections_closed_total and logged at most once a minute."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Silent connections are left alone until the idle timeout, then all closed as idle.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_connections_wait_for_the_idle_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = watch::channel(false);
        let stats = Arc::new(ListenerStats::default());
        let limits = ListenerLimits { idle_timeout: Duration::from_millis(1500), ..ListenerLimits::default() };
        let handler = |_req: Request<Incoming>, _peer: Peer| async {
            Ok::<_, Infallible>(Response::new(http_body_util::Empty::<Bytes>::new()))
        };
        let server = tokio::spawn(serve_with_limits(
            listener,
            None,
            handler,
            stop_rx,
            Duration::from_secs(1),
            limits,
            Arc::clone(&stats),
        ));
        // Each silent connection waits for the server to close it; how long it stayed open is
        // measured from its own connect, so a slow machine (connecting 500 takes a while under
        // load) cannot make the test see a close before the timeout that was not one.
        let mut silent = Vec::new();
        for _ in 0..500 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let connected = tokio::time::Instant::now();
            silent.push(tokio::spawn(async move {
                let mut buf = [0u8; 16];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
                connected.elapsed()
            }));
        }
        let mut open_for = Vec::new();
        for s in silent {
            let waited = tokio::time::timeout(Duration::from_secs(30), s).await.expect("closed within 30 s");
            open_for.push(waited.expect("reader task"));
        }
        let shortest = open_for.iter().min().copied().unwrap_or_default();
        assert!(
            shortest >= Duration::from_millis(1490),
            "a connection closed after {shortest:?}, before the idle timeout"
        );
        // The server counts a close just after the client sees it.
        for _ in 0..100 {
            if stats.closed_count(ConnClose::Idle) == 500 && stats.open.load(Ordering::Relaxed) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let closed: Vec<_> = ConnClose::ALL.iter().map(|r| (r.as_str(), stats.closed_count(*r))).collect();
        assert_eq!(stats.closed_count(ConnClose::Idle), 500, "{closed:?}");
        assert_eq!(stats.open.load(Ordering::Relaxed), 0);
        stop_tx.send(true).expect("stop");
        assert!(server.await.expect("serve"));
    }
}
