//! Pooled clients, one per upstream, and what a failed upstream call is called in a pair.
//!
//! Each upstream gets its own hyper-util legacy client (its own connection pool), so a canary
//! that hangs or resets cannot starve the baseline of connections or HTTP/2 streams. https
//! upstreams use rustls with the bundled web PKI roots plus, optionally, a private CA file.
//!
//! The HTTP version is the target's [`Protocol`]: HTTP/1.1; HTTP/2 with prior knowledge over
//! cleartext (h2c, what gRPC servers without TLS speak); HTTP/2 over TLS with ALPN offering only
//! `h2`; or automatic — ALPN offering `h2` and `http/1.1` over TLS, HTTP/1.1 over cleartext. The
//! client's own version does not matter: an HTTP/2 client may reach an HTTP/1.1 upstream and the
//! reverse.

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderMap, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::body::{BodyEnd, Kept, ProxyBody, collect_capped, micros};
use crate::config::{Protocol, Target};
use crate::error::{Error, Result};
use shadowdiff_format::schema::error_kind;
use shadowdiff_format::{Header, SideRecord};

/// One upstream: where it is and a pooled client for it.
#[derive(Clone, Debug)]
pub struct Upstream {
    target: Target,
    client: Client<HttpsConnector<HttpConnector>, ProxyBody>,
}

/// The TLS settings shared by every upstream client.
pub fn client_tls(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| bad_tls("--ca-file", path, &e.to_string()))?;
        if certs.is_empty() {
            return Err(bad_tls("--ca-file", path, "it holds no PEM certificate"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad_tls("--ca-file", path, &e.to_string()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::BadConfig { setting: "TLS".into(), message: e.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn bad_tls(flag: &str, path: &Path, why: &str) -> Error {
    Error::BadConfig {
        setting: flag.to_owned(),
        message: format!("names {}, which is not usable: {why}", path.display()),
    }
}

impl Upstream {
    pub fn new(target: Target, tls: Arc<rustls::ClientConfig>, connect_timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let builder = HttpsConnectorBuilder::new().with_tls_config((*tls).clone()).https_or_http();
        // ALPN offers what the protocol allows; on cleartext it is not used.
        let connector = match target.protocol {
            Protocol::Http1 => builder.enable_http1().wrap_connector(http),
            Protocol::H2 => builder.enable_http2().wrap_connector(http),
            Protocol::Auto | Protocol::H2c => builder.enable_all_versions().wrap_connector(http),
        };
        let mut client = Client::builder(TokioExecutor::new());
        client.pool_idle_timeout(Duration::from_secs(30)).pool_timer(TokioTimer::new()).timer(TokioTimer::new());
        if matches!(target.protocol, Protocol::H2c | Protocol::H2) {
            // Prior knowledge on cleartext; over TLS, a server that does not agree to h2 by ALPN
            // fails the connection rather than being spoken to in HTTP/1.1.
            client.http2_only(true);
        }
        // HTTP/2 connections: keep-alive pings notice a dead upstream between requests.
        client
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_timeout(Duration::from_secs(10))
            .http2_keep_alive_while_idle(false);
        let client = client.build(connector);
        Self { target, client }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn uri_for(&self, path_and_query: &str) -> std::result::Result<Uri, http::Error> {
        self.target.uri_for(path_and_query)
    }

    pub async fn send(
        &self,
        req: Request<ProxyBody>,
    ) -> std::result::Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(req).await
    }

    /// Send `req` and record the answer as one side of a pair: the head's arrival (ttfb), status,
    /// headers, the body up to `cap` bytes (read to the end so latency covers all of it), and the
    /// total latency. Latencies count from `started`: the send time, or the intended send time
    /// under open-loop pacing. A failure or `timeout` becomes the side's error kind, never an
    /// error of the caller.
    pub async fn exchange(
        &self,
        req: Request<ProxyBody>,
        timeout: Duration,
        cap: usize,
        started: Instant,
    ) -> SideRecord {
        let mut out = SideRecord::default();
        let call = async {
            let resp = match self.send(req).await {
                Ok(r) => r,
                Err(e) => {
                    out.error = Some(classify(&e).to_owned());
                    return;
                }
            };
            out.ttfb_us = Some(micros(started.elapsed()));
            out.status = Some(resp.status().as_u16());
            out.headers = response_headers(resp.headers());
            let (kept, error) = collect_capped(resp.into_body(), cap).await;
            out.body = (!kept.buf.is_empty() || kept.truncated).then(|| kept.buf.freeze());
            out.body_truncated = kept.truncated;
            out.trailers = kept.trailers;
            out.error = error.map(str::to_owned);
            out.latency_us = Some(micros(started.elapsed()));
        };
        if tokio::time::timeout(timeout, call).await.is_err() {
            out.error = Some(error_kind::TIMEOUT.to_owned());
            out.latency_us = None;
        }
        out
    }
}

impl Upstream {
    /// As [`exchange`](Self::exchange), for a side whose body may be long-lived (a mirror behind
    /// the capture proxy): `timeout` bounds the wait for the response head and then each wait for
    /// a piece of the body, not the whole body, and the body is recorded until `max_duration`
    /// after `started` at most; a body without an announced length is also cut once `stop` is
    /// cancelled (the agent drains). A body cut so, or one without an announced length
    /// (`content-length`) that goes quiet for `timeout` after its head, is recorded truncated,
    /// without an error and without a latency: an event stream or a long poll that has not
    /// ended is not a failure. A body of announced length that stops short is a `timeout`.
    pub async fn exchange_streaming(
        &self,
        req: Request<ProxyBody>,
        timeout: Duration,
        max_duration: Duration,
        stop: &CancellationToken,
        cap: usize,
        started: Instant,
    ) -> SideRecord {
        let mut out = SideRecord::default();
        let resp = match tokio::time::timeout(timeout, self.send(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                out.error = Some(classify(&e).to_owned());
                return out;
            }
            Err(_) => {
                out.error = Some(error_kind::TIMEOUT.to_owned());
                return out;
            }
        };
        out.ttfb_us = Some(micros(started.elapsed()));
        out.status = Some(resp.status().as_u16());
        out.headers = response_headers(resp.headers());
        let open_ended = !resp.headers().contains_key(http::header::CONTENT_LENGTH);
        let mut kept = Kept::new(cap);
        // Draining ends only streams early; a body of announced length gets the drain deadline.
        let never = CancellationToken::new();
        let stop = if open_ended { stop } else { &never };
        let end = kept.read(resp.into_body(), Some((timeout, started + max_duration, stop))).await;
        out.body_truncated = kept.truncated;
        out.trailers = std::mem::take(&mut kept.trailers);
        match end {
            BodyEnd::Complete => out.latency_us = Some(micros(started.elapsed())),
            BodyEnd::Failed(kind) => {
                out.error = Some(kind.to_owned());
                out.latency_us = Some(micros(started.elapsed()));
            }
            BodyEnd::Deadline => out.body_truncated = true,
            BodyEnd::Idle if open_ended => out.body_truncated = true,
            BodyEnd::Idle => {
                // A body of announced length that stopped short: a failure, and what was kept
                // of it is only its start.
                out.error = Some(error_kind::TIMEOUT.to_owned());
                out.body_truncated |= !kept.buf.is_empty();
            }
        }
        out.body = (!kept.buf.is_empty() || out.body_truncated).then(|| kept.buf.freeze());
        out
    }
}

/// A response's headers as recorded, in order. Every value is a slice of one buffer: one
/// allocation for all values instead of one each, on a path that runs for every mirrored or
/// replayed response.
pub(crate) fn response_headers(h: &HeaderMap) -> Vec<Header> {
    let mut values = BytesMut::with_capacity(h.iter().map(|(_, v)| v.len()).sum());
    for (_, v) in h {
        values.extend_from_slice(v.as_bytes());
    }
    let mut values = values.freeze();
    h.iter().map(|(k, v)| Header { name: k.as_str().to_owned(), value: values.split_to(v.len()) }).collect()
}

/// The `{side}_error` kind for a failed upstream call or body read.
pub fn classify(err: &(dyn StdError + 'static)) -> &'static str {
    if let Some(e) = err.downcast_ref::<hyper_util::client::legacy::Error>()
        && e.is_connect()
    {
        return error_kind::CONNECT;
    }
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return error_kind::TIMEOUT;
            }
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                return error_kind::PROTOCOL;
            }
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return error_kind::RESET;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return match io.kind() {
                TimedOut => error_kind::TIMEOUT,
                ConnectionRefused | NotFound | AddrNotAvailable | HostUnreachable | NetworkUnreachable => {
                    error_kind::CONNECT
                }
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => error_kind::RESET,
                InvalidData => error_kind::PROTOCOL,
                _ => error_kind::OTHER,
            };
        }
        if e.downcast_ref::<rustls::Error>().is_some() {
            return error_kind::PROTOCOL;
        }
        cur = e.source();
    }
    error_kind::OTHER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_headers_keep_order_and_repeats() {
        let mut h = HeaderMap::new();
        h.append("content-type", "application/json".parse().expect("value"));
        h.append("set-cookie", "a=1".parse().expect("value"));
        h.append("x-empty", "".parse().expect("value"));
        h.append("set-cookie", "b=2".parse().expect("value"));
        let got: Vec<(String, Vec<u8>)> =
            response_headers(&h).into_iter().map(|h| (h.name, h.value.to_vec())).collect();
        let want: Vec<(String, Vec<u8>)> =
            h.iter().map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec())).collect();
        assert_eq!(got, want);
        assert_eq!(got.len(), 4);
    }
}
