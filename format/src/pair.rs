//! The in-memory form of one row of the pair format.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::schema::Side;

/// One HTTP header. The value is bytes because HTTP allows non-UTF-8 header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Bytes,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self { name: name.into(), value: value.into() }
    }

    /// The value as text, with invalid UTF-8 replaced.
    pub fn value_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }
}

/// What one side (baseline, canary or secondary) answered, or why it did not.
///
/// `status` is `None` when no response head arrived; `error` then says why. A side can have both
/// a status and an error (the head arrived, then the body was reset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideRecord {
    pub status: Option<u16>,
    pub headers: Vec<Header>,
    pub body: Option<Bytes>,
    pub body_truncated: bool,
    /// Request sent → last body byte, in microseconds.
    pub latency_us: Option<u64>,
    /// Request sent → response head, in microseconds.
    pub ttfb_us: Option<u64>,
    /// An error kind from [`super::schema::error_kind`], or `None` when the side answered fully.
    pub error: Option<String>,
    /// Trailers sent after the body (gRPC's `grpc-status`, `grpc-message`), in order.
    pub trailers: Vec<Header>,
}

impl SideRecord {
    /// A side that was not called at all (no secondary configured): every column null.
    pub fn absent() -> Self {
        Self::default()
    }

    /// A side that failed with `kind` before any response head.
    pub fn failed(kind: impl Into<String>) -> Self {
        Self { error: Some(kind.into()), ..Self::default() }
    }

    /// True when the side neither answered nor recorded an error: it did not take part.
    pub fn is_absent(&self) -> bool {
        self.status.is_none() && self.error.is_none()
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Header> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// The value of the first trailer named `name` (ASCII case-insensitive).
    pub fn trailer(&self, name: &str) -> Option<&Header> {
        self.trailers.iter().find(|h| h.name.eq_ignore_ascii_case(name))
    }
}

/// One client request and every response it got: one row of a pair file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRecord {
    /// Unique across agents: a ULID.
    pub pair_id: String,
    /// When the client request arrived (microsecond precision is kept on disk).
    pub captured_at: DateTime<Utc>,
    /// The capture agent or replay run that recorded the pair.
    pub agent: String,
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The raw query string without the leading `?`, or `None` when the URI had none.
    pub query: Option<String>,
    /// Request headers after redaction, in the order received.
    pub request_headers: Vec<Header>,
    /// The request body after redaction, capped; `None` when the request had none.
    pub request_body: Option<Bytes>,
    pub request_body_truncated: bool,
    pub baseline: SideRecord,
    pub canary: SideRecord,
    pub secondary: SideRecord,
}

impl PairRecord {
    /// A new record with a fresh ULID and no responses yet.
    pub fn new(
        agent: impl Into<String>,
        captured_at: DateTime<Utc>,
        method: impl Into<String>,
        path: impl Into<String>,
        query: Option<String>,
    ) -> Self {
        Self {
            pair_id: ulid::Ulid::new().to_string(),
            captured_at,
            agent: agent.into(),
            method: method.into(),
            path: path.into(),
            query,
            request_headers: Vec::new(),
            request_body: None,
            request_body_truncated: false,
            baseline: SideRecord::absent(),
            canary: SideRecord::absent(),
            secondary: SideRecord::absent(),
        }
    }

    pub fn side(&self, side: Side) -> &SideRecord {
        match side {
            Side::Baseline => &self.baseline,
            Side::Canary => &self.canary,
            Side::Secondary => &self.secondary,
        }
    }

    pub fn side_mut(&mut self, side: Side) -> &mut SideRecord {
        match side {
            Side::Baseline => &mut self.baseline,
            Side::Canary => &mut self.canary,
            Side::Secondary => &mut self.secondary,
        }
    }

    /// `path?query`, as it appeared on the request line.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }

    /// Approximate in-memory size, used by the writer to bound its buffer and rotate by bytes.
    pub fn approx_size(&self) -> usize {
        fn headers(h: &[Header]) -> usize {
            h.iter().map(|h| h.name.len() + h.value.len() + 8).sum()
        }
        fn side(s: &SideRecord) -> usize {
            headers(&s.headers) + headers(&s.trailers) + s.body.as_ref().map_or(0, Bytes::len) + 40
        }
        self.pair_id.len()
            + self.agent.len()
            + self.method.len()
            + self.path.len()
            + self.query.as_ref().map_or(0, String::len)
            + headers(&self.request_headers)
            + self.request_body.as_ref().map_or(0, Bytes::len)
            + side(&self.baseline)
            + side(&self.canary)
            + side(&self.secondary)
            + 16
    }
}
