//! One client request: serve it from the baseline, mirror it, and hand the finished pair to the
//! recorder.
//!
//! The client's path is the baseline's path and nothing else: mirrors run as spawned tasks with
//! their own timeout and an in-flight bound, the pair is completed in another task once the
//! baseline body has streamed to the client and the mirrors have answered or timed out, and the
//! hand-off to the writer never waits. A canary that is down, hangs, resets or answers garbage
//! changes only what is recorded.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::Either;
use hyper::body::Incoming;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::body::{self, BaselineDone, ProxyBody, RequestBody, RequestTee, TappedRequest, TeeBody, micros};
use crate::config::Config;
use crate::counters::{Counters, DropReason, MirrorSkip, SkipReason};
use crate::recorder::{Recorder, Ticket};
use crate::redact::Redactor;
use crate::reflection::Learnt;
use crate::select::Selector;
use crate::server::Peer;
use crate::upstream::{Upstream, classify};
use shadowdiff_format::schema::{Side, error_kind};
use shadowdiff_format::{Header, PairRecord, SideRecord};

/// What the client receives: the baseline's body as it streams, or a body the agent made.
pub type OutBody = Either<TeeBody, ProxyBody>;

/// Headers that describe one connection, not the message: never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Everything a request handler needs, shared by all of them.
pub struct Proxy {
    pub(crate) agent: String,
    pub(crate) baseline: Upstream,
    pub(crate) canary: Upstream,
    pub(crate) secondary: Option<Upstream>,
    pub(crate) selector: Selector,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) mirrors: Arc<Semaphore>,
    pub(crate) max_mirrors: usize,
    pub(crate) tracker: TaskTracker,
    pub(crate) marker: Option<HeaderName>,
    pub(crate) baseline_timeout: Duration,
    pub(crate) mirror_timeout: Duration,
    pub(crate) max_request_body: usize,
    pub(crate) max_response_body: usize,
    pub(crate) max_body_duration: Duration,
    /// Cancelled when the agent starts draining: recordings of bodies still coming end then.
    pub(crate) draining: CancellationToken,
    /// Asks the baseline for its gRPC descriptors on the first gRPC call (unless turned off).
    pub(crate) reflection: Option<Arc<Learnt>>,
}

/// Decrements the in-flight gauge when the handler ends, however it ends.
struct InFlight(Arc<Counters>);

impl InFlight {
    fn new(c: &Arc<Counters>) -> Self {
        c.requests_in_flight.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(c))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.requests_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The mirrors of one captured request: started with the request (its body was read first), or
/// a task that starts them once a streamed request has ended and returns what it kept of it.
enum Mirrors {
    Started(Box<(Mirror, Option<Mirror>)>),
    AfterRequest(JoinHandle<Mirrored>),
}

/// What a streamed request's mirror task returns: what was kept of the request (none when it did
/// not end whole) and each mirror's side.
struct Mirrored {
    request: Option<TappedRequest>,
    canary: SideRecord,
    secondary: Option<SideRecord>,
}

/// A mirror's outcome: known at once (skipped) or a task still running.
enum Mirror {
    Ready(SideRecord),
    Running(JoinHandle<SideRecord>),
}

impl Mirror {
    async fn outcome(self) -> SideRecord {
        match self {
            Mirror::Ready(s) => s,
            Mirror::Running(h) => h.await.unwrap_or_else(|_| SideRecord::failed(error_kind::OTHER)),
        }
    }
}

impl Proxy {
    pub(crate) fn new(
        config: &Config,
        recorder: Arc<Recorder>,
        counters: Arc<Counters>,
        reflection: Option<Arc<Learnt>>,
    ) -> crate::Result<Self> {
        let tls = crate::upstream::client_tls(config.ca_file.as_deref())?;
        let up = |t: &crate::config::Target| Upstream::new(t.clone(), Arc::clone(&tls), config.connect_timeout);
        Ok(Self {
            agent: config.agent.clone(),
            baseline: up(&config.baseline),
            canary: up(&config.canary),
            secondary: config.secondary.as_ref().map(up),
            selector: Selector::new(config),
            redactor: Arc::new(Redactor::new(&config.redact)),
            recorder,
            counters,
            mirrors: Arc::new(Semaphore::new(config.max_in_flight_mirrors)),
            max_mirrors: config.max_in_flight_mirrors,
            tracker: TaskTracker::new(),
            marker: config.marker_header.clone(),
            baseline_timeout: config.baseline_timeout,
            mirror_timeout: config.mirror_timeout,
            max_request_body: config.max_request_body,
            max_response_body: config.max_response_body,
            max_body_duration: config.max_body_duration,
            draining: CancellationToken::new(),
            reflection,
        })
    }

    /// Mirrors currently running.
    pub fn mirrors_in_flight(&self) -> usize {
        self.max_mirrors.saturating_sub(self.mirrors.available_permits())
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: Peer) -> Result<Response<OutBody>, Infallible> {
        let _in_flight = InFlight::new(&self.counters);
        self.counters.seen.fetch_add(1, Ordering::Relaxed);
        if req.method() == Method::CONNECT {
            self.counters.skipped(SkipReason::NotProxied);
            return Ok(plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "shadowdiff capture is a reverse proxy: CONNECT is not supported.\n",
            ));
        }
        if is_upgrade(&req) {
            self.counters.upgrades.fetch_add(1, Ordering::Relaxed);
            self.counters.skipped(SkipReason::Upgrade);
            return Ok(self.upgrade(req, peer).await);
        }
        let (parts, body) = req.into_parts();
        if let Err(reason) = self.selector.capture(&parts) {
            self.counters.skipped(reason);
            return Ok(self.pass_through(parts, body, peer).await);
        }
        let Some(ticket) = self.recorder.begin() else {
            // Shutting down: still serve the client, record nothing (counted as dropped).
            return Ok(self.pass_through(parts, body, peer).await);
        };
        if is_grpc(&parts.headers) {
            if let Some(r) = &self.reflection {
                r.ask_once(&self.baseline, self.baseline_timeout);
            }
            return Ok(self.capture_stream(parts, body, peer, ticket).await);
        }
        Ok(self.capture(parts, body, peer, ticket).await)
    }

    /// The pair a captured request starts: who, when, what was asked, with which headers.
    fn begin_pair(&self, parts: &http::request::Parts) -> PairRecord {
        let mut pair = PairRecord::new(
            self.agent.as_str(),
            Utc::now(),
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().map(str::to_owned),
        );
        pair.request_headers = record_headers(&parts.headers);
        pair
    }

    async fn capture(
        &self,
        parts: http::request::Parts,
        body: Incoming,
        peer: Peer,
        ticket: Ticket,
    ) -> Response<OutBody> {
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
        let mut pair = self.begin_pair(&parts);

        let body = match body::read_capped(body, self.max_request_body).await {
            Ok(b) => b,
            Err(error) => {
                tracing::debug!(side = "client", %error, "Reading the request body failed.");
                ticket.drop_as(DropReason::ClientClosed);
                return plain(StatusCode::BAD_REQUEST, "shadowdiff capture could not read the request body.\n");
            }
        };
        let headers = forward_headers(&parts.headers, peer, parts.uri.authority().map(|a| a.as_str()));
        let (upstream_body, mirror_body) = match body {
            RequestBody::Whole(b) => {
                pair.request_body = (!b.is_empty()).then(|| b.clone());
                (ProxyBody::full(b.clone()), Some(b))
            }
            RequestBody::TooLarge { prefix, rest } => {
                pair.request_body = Some(body::prefix_of(&prefix, self.max_request_body));
                pair.request_body_truncated = true;
                (ProxyBody::Prefixed { prefix, rest }, None)
            }
        };

        // Mirrors first, so they run alongside the baseline.
        let skip = match &mirror_body {
            None => Some(MirrorSkip::BodyTooLarge),
            Some(b) => self.selector.mirrors_request(&parts, b).err(),
        };
        let (canary, secondary) = self.start_mirrors(skip, &parts.method, &path_and_query, &headers, mirror_body);
        let (done_tx, done_rx) = oneshot::channel();
        self.complete_later(pair, done_rx, Mirrors::Started(Box::new((canary, secondary))), ticket);
        self.serve_from_baseline(&parts.method, &path_and_query, headers, upstream_body, done_tx, None).await
    }

    /// A gRPC call (any of the four kinds): the client's stream goes to the baseline as it
    /// arrives, never held back until it ends (a bidirectional call may wait on answers before it
    /// sends more); a capped copy is kept, and once the client's stream has ended the whole
    /// request is mirrored. Trailers pass through both ways.
    async fn capture_stream(
        self: &Arc<Self>,
        parts: http::request::Parts,
        body: Incoming,
        peer: Peer,
        ticket: Ticket,
    ) -> Response<OutBody> {
        let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
        let pair = self.begin_pair(&parts);
        let headers = forward_headers(&parts.headers, peer, parts.uri.authority().map(|a| a.as_str()));
        let (request_tx, request_rx) = oneshot::channel();
        let client_stream_ended = CancellationToken::new();
        let upstream_body =
            ProxyBody::Tapped(RequestTee::new(body, self.max_request_body, request_tx, client_stream_ended.clone()));
        let this = Arc::clone(self);
        let method = parts.method.clone();
        let (pq, mirror_headers) = (path_and_query.clone(), headers.clone());
        let mirrored = self.tracker.spawn(async move {
            let Ok(request) = request_rx.await else {
                this.counters.mirror_skipped(MirrorSkip::RequestIncomplete);
                let skipped = || SideRecord::failed(error_kind::SKIPPED);
                return Mirrored {
                    request: None,
                    canary: skipped(),
                    secondary: this.secondary.as_ref().map(|_| skipped()),
                };
            };
            let skip = if request.truncated {
                Some(MirrorSkip::BodyTooLarge)
            } else {
                this.selector.mirrors_request(&parts, &request.body).err()
            };
            let body = (!request.truncated).then(|| request.body.clone());
            let (canary, secondary) = this.start_mirrors(skip, &parts.method, &pq, &mirror_headers, body);
            let canary = canary.outcome().await;
            let secondary = match secondary {
                Some(s) => Some(s.outcome().await),
                None => None,
            };
            Mirrored { request: Some(request), canary, secondary }
        });
        let (done_tx, done_rx) = oneshot::channel();
        self.complete_later(pair, done_rx, Mirrors::AfterRequest(mirrored), ticket);
        self.serve_from_baseline(&method, &path_and_query, headers, upstream_body, done_tx, Some(client_stream_ended))
            .await
    }

    /// Start the canary's (and secondary's) mirror of a request, or record why they were skipped:
    /// `skip` says so, or there is no whole `body` to send.
    fn start_mirrors(
        &self,
        skip: Option<MirrorSkip>,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Option<Bytes>,
    ) -> (Mirror, Option<Mirror>) {
        match (skip, body) {
            (None, Some(b)) => {
                let canary = self.mirror(Side::Canary, &self.canary, method, path_and_query, headers, &b);
                if matches!(canary, Mirror::Running(_)) {
                    self.counters.mirrored.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.counters.mirror_skipped(MirrorSkip::InFlight);
                }
                let secondary = self
                    .secondary
                    .as_ref()
                    .map(|s| self.mirror(Side::Secondary, s, method, path_and_query, headers, &b));
                (canary, secondary)
            }
            (reason, _) => {
                self.counters.mirror_skipped(reason.unwrap_or(MirrorSkip::Method));
                let skipped = || Mirror::Ready(SideRecord::failed(error_kind::SKIPPED));
                (skipped(), self.secondary.as_ref().map(|_| skipped()))
            }
        }
    }

    /// Send the request to the baseline and answer the client with its response as it streams
    /// (trailers included), keeping a capped copy for the pair; `done` gets the baseline's side.
    /// The baseline has `--baseline-timeout` to send its response head, counted from now, or,
    /// for a streamed request, from when `client_stream_ended` is cancelled: a gRPC server may
    /// answer a client-streaming call only once the client's stream has ended, however long it
    /// ran.
    async fn serve_from_baseline(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: HeaderMap,
        upstream_body: ProxyBody,
        done_tx: oneshot::Sender<BaselineDone>,
        client_stream_ended: Option<CancellationToken>,
    ) -> Response<OutBody> {
        let req = match build_request(&self.baseline, method, path_and_query, headers, upstream_body) {
            Ok(r) => r,
            Err(e) => {
                let _ = done_tx.send(BaselineDone::Complete(SideRecord::failed(error_kind::OTHER)));
                return plain(
                    StatusCode::BAD_REQUEST,
                    &format!("shadowdiff capture cannot forward this request: {e}\n"),
                );
            }
        };
        let sent = Instant::now();
        let head_deadline = async {
            if let Some(ended) = &client_stream_ended {
                ended.cancelled().await;
            }
            tokio::time::sleep(self.baseline_timeout).await;
        };
        let result = tokio::select! {
            r = self.baseline.send(req) => Ok(r),
            () = head_deadline => Err(()),
        };
        match result {
            Ok(Ok(resp)) => {
                let ttfb = sent.elapsed();
                let (mut head, incoming) = resp.into_parts();
                let side = SideRecord {
                    status: Some(head.status.as_u16()),
                    headers: record_headers(&head.headers),
                    ttfb_us: Some(micros(ttfb)),
                    ..SideRecord::default()
                };
                strip_hop_by_hop(&mut head.headers);
                let tee = TeeBody::new(
                    incoming,
                    side,
                    self.max_response_body,
                    sent,
                    self.max_body_duration,
                    self.draining.clone(),
                    done_tx,
                );
                Response::from_parts(head, Either::Left(tee))
            }
            Ok(Err(error)) => {
                let kind = classify(&error);
                tracing::warn!(side = "baseline", kind, %error, "Baseline request failed.");
                let _ = done_tx.send(BaselineDone::Complete(SideRecord::failed(kind)));
                bad_gateway(kind, &self.baseline)
            }
            Err(_) => {
                tracing::warn!(
                    side = "baseline",
                    timeout_ms = self.baseline_timeout.as_millis() as u64,
                    "Baseline timed out."
                );
                let _ = done_tx.send(BaselineDone::Complete(SideRecord::failed(error_kind::TIMEOUT)));
                bad_gateway(error_kind::TIMEOUT, &self.baseline)
            }
        }
    }

    /// Spawn the task that waits for every side and hands the pair over.
    fn complete_later(
        &self,
        mut pair: PairRecord,
        baseline: oneshot::Receiver<BaselineDone>,
        mirrors: Mirrors,
        ticket: Ticket,
    ) {
        let counters = Arc::clone(&self.counters);
        let redact = Arc::clone(&self.redactor);
        self.tracker.spawn(async move {
            let baseline = match baseline.await {
                Ok(BaselineDone::Complete(side)) => side,
                Ok(BaselineDone::ClientClosed) | Err(_) => {
                    ticket.drop_as(DropReason::ClientClosed);
                    return;
                }
            };
            pair.baseline = baseline;
            match mirrors {
                Mirrors::Started(started) => {
                    let (canary, secondary) = *started;
                    pair.canary = canary.outcome().await;
                    if let Some(s) = secondary {
                        pair.secondary = s.outcome().await;
                    }
                }
                Mirrors::AfterRequest(task) => {
                    let m = task.await.unwrap_or_else(|_| Mirrored {
                        request: None,
                        canary: SideRecord::failed(error_kind::OTHER),
                        secondary: None,
                    });
                    if let Some(request) = m.request {
                        pair.request_body = (!request.body.is_empty()).then_some(request.body);
                        pair.request_body_truncated = request.truncated;
                    }
                    pair.canary = m.canary;
                    pair.secondary = m.secondary.unwrap_or_default();
                }
            }
            for side in Side::ALL {
                let s = pair.side(side);
                if !s.is_absent() {
                    counters.observe_side(side, s.latency_us.map(Duration::from_micros), s.error.as_deref());
                    if is_cut_stream(s) {
                        counters.streams_cut.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Decoding a compressed body (up to the decoded-size cap) and encoding it again is
            // CPU work of a size the proxy's event loop should not wait behind.
            let withheld = if redact.decodes(&pair) {
                let redact = Arc::clone(&redact);
                match tokio::task::spawn_blocking(move || {
                    let withheld = redact.apply(&mut pair);
                    (pair, withheld)
                })
                .await
                {
                    Ok((redacted, withheld)) => {
                        pair = redacted;
                        withheld
                    }
                    Err(_) => {
                        // The pair went with the failed task: nothing unredacted is left to write.
                        tracing::error!(side = "recorder", "Redacting a pair failed; the pair was dropped.");
                        ticket.drop_as(DropReason::WriterError);
                        return;
                    }
                }
            } else {
                redact.apply(&mut pair)
            };
            if withheld {
                counters.redaction_withheld.fetch_add(1, Ordering::Relaxed);
            }
            ticket.submit(pair);
        });
    }

    /// Start one mirror, or record it as skipped when the in-flight bound is reached.
    fn mirror(
        &self,
        side: Side,
        upstream: &Upstream,
        method: &Method,
        pq: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Mirror {
        let Ok(permit) = Arc::clone(&self.mirrors).try_acquire_owned() else {
            return Mirror::Ready(SideRecord::failed(error_kind::SKIPPED));
        };
        let mut headers = headers.clone();
        if let Some(marker) = &self.marker {
            headers.insert(marker.clone(), HeaderValue::from_static(side.name()));
        }
        let req = match build_request(upstream, method, pq, headers, ProxyBody::full(body.clone())) {
            Ok(r) => r,
            Err(_) => return Mirror::Ready(SideRecord::failed(error_kind::OTHER)),
        };
        let upstream = upstream.clone();
        let timeout = self.mirror_timeout;
        let max_duration = self.max_body_duration;
        let stop = self.draining.clone();
        let cap = self.max_response_body;
        Mirror::Running(tokio::spawn(async move {
            let _permit = permit;
            let out = upstream.exchange_streaming(req, timeout, max_duration, &stop, cap, Instant::now()).await;
            if let Some(kind) = &out.error {
                tracing::debug!(side = side.name(), kind = kind.as_str(), "Mirror request failed.");
            }
            out
        }))
    }

    /// Forward a request that is not captured: body and response stream straight through.
    async fn pass_through(&self, parts: http::request::Parts, body: Incoming, peer: Peer) -> Response<OutBody> {
        let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let headers = forward_headers(&parts.headers, peer, parts.uri.authority().map(|a| a.as_str()));
        let req = match build_request(&self.baseline, &parts.method, pq, headers, ProxyBody::Stream(body)) {
            Ok(r) => r,
            Err(e) => return cannot_forward(&e),
        };
        match tokio::time::timeout(self.baseline_timeout, self.baseline.send(req)).await {
            Ok(Ok(resp)) => {
                let (mut head, incoming) = resp.into_parts();
                strip_hop_by_hop(&mut head.headers);
                Response::from_parts(head, Either::Right(ProxyBody::Stream(incoming)))
            }
            Ok(Err(error)) => {
                let kind = classify(&error);
                tracing::warn!(side = "baseline", kind, %error, "Baseline request failed.");
                bad_gateway(kind, &self.baseline)
            }
            Err(_) => bad_gateway(error_kind::TIMEOUT, &self.baseline),
        }
    }

    /// A protocol upgrade (WebSocket): forwarded to the baseline only; on `101` the two
    /// connections are joined byte for byte.
    async fn upgrade(&self, mut req: Request<Incoming>, peer: Peer) -> Response<OutBody> {
        let client_upgrade = hyper::upgrade::on(&mut req);
        let (parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut headers = forward_headers(&parts.headers, peer, parts.uri.authority().map(|a| a.as_str()));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(u) = parts.headers.get(header::UPGRADE) {
            headers.insert(header::UPGRADE, u.clone());
        }
        let req = match build_request(&self.baseline, &parts.method, pq, headers, ProxyBody::Stream(body)) {
            Ok(r) => r,
            Err(e) => return cannot_forward(&e),
        };
        let mut resp = match tokio::time::timeout(self.baseline_timeout, self.baseline.send(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return bad_gateway(classify(&e), &self.baseline),
            Err(_) => return bad_gateway(error_kind::TIMEOUT, &self.baseline),
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (mut head, incoming) = resp.into_parts();
            strip_hop_by_hop(&mut head.headers);
            return Response::from_parts(head, Either::Right(ProxyBody::Stream(incoming)));
        }
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Ok(client), Ok(upstream)) = tokio::join!(client_upgrade, upstream_upgrade) else {
                return;
            };
            let mut client = hyper_util::rt::TokioIo::new(client);
            let mut upstream = hyper_util::rt::TokioIo::new(upstream);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
        let (head, _) = resp.into_parts();
        Response::from_parts(head, Either::Right(ProxyBody::empty()))
    }
}

/// A side whose body was still coming when its recording ended (the duration cap, or a quiet
/// open-ended body): an answer, truncated, with no error and no latency.
fn is_cut_stream(s: &SideRecord) -> bool {
    s.status.is_some() && s.body_truncated && s.error.is_none() && s.latency_us.is_none()
}

/// A gRPC call (`application/grpc`, `application/grpc+proto` …): its streams must flow.
pub(crate) fn is_grpc(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.get(..16).is_some_and(|p| p.eq_ignore_ascii_case("application/grpc")))
}

fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.version() <= Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Headers as the pair records them: every header as received, in order.
pub fn record_headers(h: &HeaderMap) -> Vec<Header> {
    h.iter().map(|(k, v)| Header { name: k.as_str().to_owned(), value: Bytes::copy_from_slice(v.as_bytes()) }).collect()
}

/// Remove hop-by-hop headers, including any the `Connection` header names.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        h.remove(name);
    }
    h.remove(header::UPGRADE);
}

/// The headers sent upstream: the client's, less hop-by-hop headers and `Host` (the upstream's
/// own authority is used), plus `X-Forwarded-For/-Host/-Proto` and `Forwarded`.
pub fn forward_headers(client: &HeaderMap, peer: Peer, authority: Option<&str>) -> HeaderMap {
    let mut h = client.clone();
    strip_hop_by_hop(&mut h);
    // `TE: trailers` is the one TE that passes: gRPC servers look for it, and HTTP/2 allows it.
    if accepts_trailers(client) {
        h.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    let host = h
        .remove(header::HOST)
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .or_else(|| authority.map(str::to_owned));
    let proto = if peer.tls { "https" } else { "http" };
    let ip = peer.addr.ip().to_string();
    let xff = match client.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    let for_ = if peer.addr.is_ipv6() { format!("\"[{ip}]\"") } else { ip };
    let mut fwd = format!("for={for_};proto={proto}");
    if let Some(host) = &host {
        if let Ok(v) = HeaderValue::from_str(host) {
            h.insert("x-forwarded-host", v);
        }
        if host.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
            fwd.push_str(&format!(";host=\"{host}\""));
        }
    }
    let fwd = match client.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {fwd}"),
        None => fwd,
    };
    if let Ok(v) = HeaderValue::from_str(&fwd) {
        h.insert(header::FORWARDED, v);
    }
    h
}

/// Whether the client's `TE` header lists `trailers` (then `TE: trailers` is forwarded: gRPC
/// servers refuse a call without it).
pub fn accepts_trailers(h: &HeaderMap) -> bool {
    h.get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("trailers")))
}

fn build_request(
    upstream: &Upstream,
    method: &Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: ProxyBody,
) -> Result<Request<ProxyBody>, http::Error> {
    let uri = upstream.uri_for(path_and_query)?;
    let mut req = Request::builder().method(method.clone()).uri(uri).version(Version::HTTP_11).body(body)?;
    *req.headers_mut() = headers;
    Ok(req)
}

/// What the client gets when its request cannot be turned into one for the baseline.
fn cannot_forward(error: &http::Error) -> Response<OutBody> {
    plain(StatusCode::BAD_REQUEST, &format!("shadowdiff capture cannot forward this request: {error}\n"))
}

fn plain(status: StatusCode, text: &str) -> Response<OutBody> {
    let mut r = Response::new(Either::Right(ProxyBody::full(Bytes::copy_from_slice(text.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// What the client gets when the baseline does not answer: 504 for a timeout, else 502.
fn bad_gateway(kind: &str, baseline: &Upstream) -> Response<OutBody> {
    let (status, what) = match kind {
        error_kind::TIMEOUT => (StatusCode::GATEWAY_TIMEOUT, "did not answer in time"),
        error_kind::CONNECT => (StatusCode::BAD_GATEWAY, "refused the connection or could not be reached"),
        error_kind::RESET => (StatusCode::BAD_GATEWAY, "closed the connection before answering"),
        error_kind::PROTOCOL => (StatusCode::BAD_GATEWAY, "answered with something that is not HTTP"),
        _ => (StatusCode::BAD_GATEWAY, "failed"),
    };
    let mut r = plain(
        status,
        &format!(
            "{} {}: the baseline {} {what} ({kind}).\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            baseline.target()
        ),
    );
    r.headers_mut().insert("x-shadowdiff-error", HeaderValue::from_static("baseline"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn te_trailers_is_the_one_te_forwarded() {
        let peer = Peer { addr: ([127, 0, 0, 1], 9).into(), tls: false };
        let forwarded = |h: &[(&str, &str)]| {
            forward_headers(&headers(h), peer, None).get(header::TE).map(|v| v.to_str().expect("ascii").to_owned())
        };
        assert_eq!(forwarded(&[("te", "trailers")]).as_deref(), Some("trailers"));
        assert_eq!(forwarded(&[("te", "gzip;q=0.5, Trailers")]).as_deref(), Some("trailers"));
        assert_eq!(forwarded(&[("te", "gzip")]), None);
        assert_eq!(forwarded(&[]), None);
    }

    #[test]
    fn grpc_is_told_by_its_content_type() {
        assert!(is_grpc(&headers(&[("content-type", "application/grpc")])));
        assert!(is_grpc(&headers(&[("content-type", "application/grpc+proto")])));
        assert!(is_grpc(&headers(&[("content-type", "Application/GRPC-web")])));
        assert!(!is_grpc(&headers(&[("content-type", "application/json")])));
        assert!(!is_grpc(&headers(&[])));
    }
}
