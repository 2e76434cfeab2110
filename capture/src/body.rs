//! Bodies on the proxy path: the request body read once with a cap, the body sent upstream, and
//! the baseline's response body streamed to the client while a capped copy is kept for the pair.
//!
//! A response body may never end (server-sent events, NDJSON feeds, long polls), so what is
//! recorded of it is bounded in time as well as in bytes: past the duration cap the recorded copy
//! is cut and marked truncated, with no latency (the body had not ended), while the client's
//! stream from the baseline goes on untouched.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::upstream::{classify, response_headers};
use shadowdiff_format::SideRecord;

/// A request body sent upstream, or a response body the agent writes itself.
#[derive(Debug)]
pub enum ProxyBody {
    /// A body already in memory (the captured request, an error page); `None` once sent.
    Full(Option<Bytes>),
    /// The client's body passed through as it arrives.
    Stream(Incoming),
    /// What was read before the cap, then the rest as it arrives.
    Prefixed { prefix: VecDeque<Bytes>, rest: Incoming },
    /// The client's body passed through as it arrives, a capped copy kept for the pair (gRPC
    /// streams, which must not wait for the client's stream to end).
    Tapped(RequestTee),
}

impl ProxyBody {
    pub fn empty() -> Self {
        ProxyBody::Full(None)
    }

    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        ProxyBody::Full(if b.is_empty() { None } else { Some(b) })
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Stream(inner) => Pin::new(inner).poll_frame(cx),
            ProxyBody::Prefixed { prefix, rest } => match prefix.pop_front() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => Pin::new(rest).poll_frame(cx),
            },
            ProxyBody::Tapped(tee) => Pin::new(tee).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Stream(inner) => inner.is_end_stream(),
            ProxyBody::Prefixed { prefix, rest } => prefix.is_empty() && rest.is_end_stream(),
            ProxyBody::Tapped(tee) => tee.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ProxyBody::Stream(inner) => inner.size_hint(),
            ProxyBody::Prefixed { prefix, rest } => {
                let n: u64 = prefix.iter().map(|b| b.len() as u64).sum();
                let h = rest.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(h.lower() + n);
                if let Some(u) = h.upper() {
                    out.set_upper(u + n);
                }
                out
            }
            ProxyBody::Tapped(tee) => tee.inner.size_hint(),
        }
    }
}

/// What a [`RequestTee`] kept of the client's body once it ended: its first bytes (up to the cap)
/// and whether there was more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TappedRequest {
    pub body: Bytes,
    pub truncated: bool,
}

/// The client's request body on its way upstream: every frame passes through at once, unchanged
/// (trailers too); the first `cap` bytes are kept, and when the body ends the copy goes to
/// `done`. A body that fails or is dropped before its end sends nothing. `ended` is cancelled
/// once the client's stream is over, however it ended (the baseline's head timeout starts then).
#[derive(Debug)]
pub struct RequestTee {
    inner: Incoming,
    kept: Kept,
    done: Option<oneshot::Sender<TappedRequest>>,
    ended: CancellationToken,
}

impl RequestTee {
    pub fn new(inner: Incoming, cap: usize, done: oneshot::Sender<TappedRequest>, ended: CancellationToken) -> Self {
        Self { inner, kept: Kept::new(cap), done: Some(done), ended }
    }

    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            let body = std::mem::take(&mut self.kept.buf).freeze();
            let _ = done.send(TappedRequest { body, truncated: self.kept.truncated });
        }
        self.ended.cancel();
    }
}

impl Drop for RequestTee {
    fn drop(&mut self) {
        self.ended.cancel();
    }
}

impl Body for RequestTee {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.as_mut().get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    this.kept.keep(data);
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Some(Err(_)) => {
                this.done = None;
                this.ended.cancel();
            }
            None => this.finish(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body after the capped read.
#[derive(Debug)]
pub enum RequestBody {
    /// The whole body, within the cap.
    Whole(Bytes),
    /// Larger than the cap: the part read so far and the rest still to come.
    TooLarge { prefix: VecDeque<Bytes>, rest: Incoming },
}

/// Read a request body up to `cap` bytes. Past the cap, reading stops: what was read and the
/// rest go to the baseline as one stream, and the pair keeps the first `cap` bytes.
pub async fn read_capped(mut body: Incoming, cap: usize) -> Result<RequestBody, hyper::Error> {
    let mut chunks = VecDeque::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        // Trailers on a request are rare and carry nothing the pair keeps.
        if let Ok(data) = frame?.into_data() {
            total += data.len();
            chunks.push_back(data);
            if total > cap {
                return Ok(RequestBody::TooLarge { prefix: chunks, rest: body });
            }
        }
    }
    let whole = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop_front().unwrap_or_default(),
        _ => {
            let mut buf = BytesMut::with_capacity(total);
            for c in chunks {
                buf.extend_from_slice(&c);
            }
            buf.freeze()
        }
    };
    Ok(RequestBody::Whole(whole))
}

/// The first `cap` bytes of a list of chunks.
pub fn prefix_of(chunks: &VecDeque<Bytes>, cap: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(cap.min(chunks.iter().map(Bytes::len).sum()));
    for c in chunks {
        let room = cap - buf.len();
        if room == 0 {
            break;
        }
        buf.extend_from_slice(&c[..c.len().min(room)]);
    }
    buf.freeze()
}

/// How the baseline's side of a pair ended.
#[derive(Debug)]
pub enum BaselineDone {
    /// The response (or the error instead of one) reached the client.
    Complete(SideRecord),
    /// The client went away before the whole response reached it.
    ClientClosed,
}

/// Keeps a capped copy of a body as it streams past.
#[derive(Debug)]
struct Tap {
    side: SideRecord,
    buf: BytesMut,
    cap: usize,
    sent: Instant,
    /// When the recorded copy is cut if the body has not ended (the duration cap).
    deadline: Pin<Box<Sleep>>,
    /// Completes when the agent starts draining: an open-ended body still coming is cut then,
    /// so its pair is written before the drain deadline instead of being counted as dropped.
    draining: Pin<Box<WaitForCancellationFutureOwned>>,
    /// No `content-length`: a stream (SSE, NDJSON, a long poll) whose client may leave at any
    /// point, which ends its recording rather than losing it.
    open_ended: bool,
    done: oneshot::Sender<BaselineDone>,
}

/// The baseline's response body on its way to the client: every frame passes through unchanged
/// and at once; the first `cap` bytes are kept, and when the body ends (or fails, or the client
/// leaves) the finished [`SideRecord`] goes to the pair.
#[derive(Debug)]
pub struct TeeBody {
    inner: Incoming,
    tap: Option<Tap>,
}

impl TeeBody {
    /// `side` carries the status, headers and time to first byte already; `sent` is when the
    /// request went upstream; the recorded copy ends `max_duration` after it at the latest.
    pub fn new(
        inner: Incoming,
        side: SideRecord,
        cap: usize,
        sent: Instant,
        max_duration: Duration,
        draining: CancellationToken,
        done: oneshot::Sender<BaselineDone>,
    ) -> Self {
        let deadline = Box::pin(tokio::time::sleep_until(sent + max_duration));
        let draining = Box::pin(draining.cancelled_owned());
        let open_ended = !side.headers.iter().any(|h| h.name.eq_ignore_ascii_case("content-length"));
        let tap = Tap { side, buf: BytesMut::new(), cap, sent, deadline, draining, open_ended, done };
        Self { inner, tap: Some(tap) }
    }

    fn finish(&mut self, error: Option<&'static str>) {
        if let Some(tap) = self.tap.take() {
            let mut side = tap.side;
            side.latency_us = Some(micros(tap.sent.elapsed()));
            side.body = if tap.buf.is_empty() && !side.body_truncated { None } else { Some(tap.buf.freeze()) };
            side.error = error.map(str::to_owned);
            let _ = tap.done.send(BaselineDone::Complete(side));
        }
    }

    /// The duration cap passed before the body ended (or the client left an open-ended one): the
    /// record ends here, truncated and without a latency; the body keeps streaming to the client
    /// if it is still there.
    fn cut(&mut self) {
        if let Some(tap) = self.tap.take() {
            let mut side = tap.side;
            side.body_truncated = true;
            side.latency_us = None;
            side.body = Some(tap.buf.freeze());
            let _ = tap.done.send(BaselineDone::Complete(side));
        }
    }
}

impl Body for TeeBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.as_mut().get_mut();
        // Polled first, so its timer wakes this body even while the upstream sends nothing.
        if this.tap.as_mut().is_some_and(|tap| {
            tap.deadline.as_mut().poll(cx).is_ready() || (tap.open_ended && tap.draining.as_mut().poll(cx).is_ready())
        }) {
            this.cut();
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(tap), Some(data)) = (this.tap.as_mut(), f.data_ref()) {
                    let room = tap.cap.saturating_sub(tap.buf.len());
                    if data.len() > room {
                        tap.side.body_truncated = true;
                    }
                    tap.buf.extend_from_slice(&data[..data.len().min(room)]);
                }
                if let (Some(tap), Some(trailers)) = (this.tap.as_mut(), f.trailers_ref()) {
                    tap.side.trailers = response_headers(trailers);
                }
                if this.inner.is_end_stream() {
                    this.finish(None);
                }
            }
            Some(Err(e)) => this.finish(Some(classify(e))),
            None => this.finish(None),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TeeBody {
    fn drop(&mut self) {
        if self.tap.is_some() {
            if self.inner.is_end_stream() {
                // HEAD, 204 and 304: nothing to stream, so the server never polled the body.
                self.finish(None);
            } else if self.tap.as_ref().is_some_and(|t| t.open_ended) {
                // A stream's client leaving is how a stream usually ends: what it received is
                // recorded, cut there.
                self.cut();
            } else if let Some(tap) = self.tap.take() {
                let _ = tap.done.send(BaselineDone::ClientClosed);
            }
        }
    }
}

/// Read a mirror's response body: keep the first `cap` bytes and the trailers, read (and
/// discard) the rest so latency covers the whole body and the connection can be reused.
pub async fn collect_capped(body: Incoming, cap: usize) -> (Kept, Option<&'static str>) {
    let mut kept = Kept::new(cap);
    let end = kept.read(body, None).await;
    let error = match end {
        BodyEnd::Failed(kind) => Some(kind),
        _ => None,
    };
    (kept, error)
}

/// How reading a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// The body ended.
    Complete,
    /// The body failed (its error kind).
    Failed(&'static str),
    /// Nothing arrived for the idle timeout.
    Idle,
    /// The duration cap passed first, or the agent began to drain.
    Deadline,
}

/// The first `cap` bytes of a body, whether there was more, and its trailers.
#[derive(Debug)]
pub struct Kept {
    pub buf: BytesMut,
    pub truncated: bool,
    pub trailers: Vec<shadowdiff_format::Header>,
    cap: usize,
}

impl Kept {
    pub fn new(cap: usize) -> Self {
        Self { buf: BytesMut::new(), truncated: false, trailers: Vec::new(), cap }
    }

    fn keep(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.buf.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Read `body` to its end, keeping its first bytes; with `limits` (the idle timeout and the
    /// deadline, and what ends recording early), stop when a piece takes longer than the idle
    /// timeout, the deadline passes or `stop` is cancelled (the agent drains).
    pub async fn read(
        &mut self,
        mut body: Incoming,
        limits: Option<(Duration, Instant, &CancellationToken)>,
    ) -> BodyEnd {
        loop {
            let frame = match limits {
                None => body.frame().await,
                Some((idle, deadline, stop)) => tokio::select! {
                    next = tokio::time::timeout(idle, body.frame()) => match next {
                        Ok(frame) => frame,
                        Err(_) => return BodyEnd::Idle,
                    },
                    () = tokio::time::sleep_until(deadline) => return BodyEnd::Deadline,
                    () = stop.cancelled() => return BodyEnd::Deadline,
                },
            };
            match frame {
                None => return BodyEnd::Complete,
                Some(Ok(f)) => {
                    if let Some(data) = f.data_ref() {
                        self.keep(data);
                    } else if let Some(trailers) = f.trailers_ref() {
                        self.trailers = response_headers(trailers);
                    }
                }
                Some(Err(e)) => return BodyEnd::Failed(classify(&e)),
            }
        }
    }
}

pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_respects_the_cap() {
        let chunks: VecDeque<Bytes> = [&b"abc"[..], b"defg", b"h"].into_iter().map(Bytes::from_static).collect();
        assert_eq!(prefix_of(&chunks, 5), "abcde");
        assert_eq!(prefix_of(&chunks, 100), "abcdefgh");
        assert_eq!(prefix_of(&chunks, 0), "");
    }
}
