//! The accept loop, after hyper-util's `examples/server_graceful.rs`: the auto builder (HTTP/1.1
//! and HTTP/2, over TLS with ALPN or in clear text), accept raced against the stop signal, every
//! connection watched for a graceful shutdown, and a deadline on the drain.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::error::{Error, Result};

/// How long a TLS client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// HTTP/2 streams open at once on one connection.
    pub max_concurrent_streams: u32,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_header_size: 64 * 1024,
            header_read_timeout: Duration::from_secs(30),
            max_concurrent_streams: 256,
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
    serve_with_limits(listener, tls, handler, stop, grace, ListenerLimits::default()).await
}

/// [`serve`] within `limits` (capture's client listener; the admin listener and `serve` use the
/// defaults).
pub async fn serve_with_limits<H, F, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    limits: ListenerLimits,
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
    // Rapid reset (CVE-2023-44487) is bounded by h2 itself: streams reset before they are
    // answered count against a small budget (hyper's default, 20 pending), past which the
    // connection is closed with GOAWAY.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX))
        .auto_date_header(false);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
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
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    // At --max-connections: closed unread, so a flood cannot hold more.
                    tracing::debug!(side = "client", %addr, "Connection refused: --max-connections reached.");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let builder = Arc::clone(&builder);
                match &tls {
                    None => {
                        let peer = Peer { addr, tls: false };
                        let service = service_fn(move |req| handler(req, peer));
                        let conn = graceful.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned());
                        connections.spawn(async move {
                            // Errors are the client's doing (reset, bad request); nothing to report.
                            let _ = conn.await;
                            drop(slot);
                        });
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        let watcher = graceful.watcher();
                        let peer = Peer { addr, tls: true };
                        // The handshake runs in the connection's task, so a slow client cannot
                        // hold up the accept loop. Connections still shaking hands at shutdown
                        // are simply cut.
                        connections.spawn(async move {
                            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(s)) => s,
                                Ok(Err(error)) => {
                                    tracing::debug!(side = "client", %error, "TLS handshake failed.");
                                    return;
                                }
                                Err(_) => return,
                            };
                            let service = service_fn(move |req| handler(req, peer));
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                            let _ = watcher.watch(conn).await;
                            drop(slot);
                        });
                    }
                }
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
    let clean = tokio::time::timeout(grace, async {
        graceful.shutdown().await;
        // Connections still shaking hands are not watched yet; they are cut below.
    })
    .await
    .is_ok();
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    clean
}
