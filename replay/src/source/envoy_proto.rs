//! The binary form of Envoy's HTTP tap traces: `envoy.data.tap.v3.TraceWrapper` and the messages
//! it holds, written by hand with prost's derive so that no protoc step is needed. Field numbers
//! are those of Envoy's `api/envoy/data/tap/v3/{wrapper,http,common}.proto` and
//! `api/envoy/config/core/v3/base.proto` (`HeaderValue`, `HeaderMap`); fields this importer does
//! not use (connection addresses, socket traces' contents) are left out, and prost skips them.
//!
//! Two `string` fields are declared `bytes` (the wire format is the same): a header value or an
//! `as_string` body that is not UTF-8 is then kept as it is instead of failing the whole record.

/// `envoy.data.tap.v3.TraceWrapper`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceWrapper {
    #[prost(oneof = "Trace", tags = "1, 2, 3, 4")]
    pub trace: Option<Trace>,
}

/// `TraceWrapper.trace`.
// The variants are named as the proto's fields are.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Trace {
    #[prost(message, tag = "1")]
    HttpBufferedTrace(HttpBufferedTrace),
    #[prost(message, tag = "2")]
    HttpStreamedTraceSegment(HttpStreamedTraceSegment),
    /// `SocketBufferedTrace`: recognised so it can be named, not read.
    #[prost(message, tag = "3")]
    SocketBufferedTrace(Opaque),
    /// `SocketStreamedTraceSegment`: recognised so it can be named, not read.
    #[prost(message, tag = "4")]
    SocketStreamedTraceSegment(Opaque),
}

/// A message whose fields are not read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Opaque {}

/// `envoy.data.tap.v3.HttpBufferedTrace` (`downstream_connection` = 3 and
/// `upstream_connection` = 4 are not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpBufferedTrace {
    #[prost(message, optional, tag = "1")]
    pub request: Option<Message>,
    #[prost(message, optional, tag = "2")]
    pub response: Option<Message>,
}

/// `envoy.data.tap.v3.HttpBufferedTrace.Message`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    #[prost(message, repeated, tag = "1")]
    pub headers: Vec<HeaderValue>,
    #[prost(message, optional, tag = "2")]
    pub body: Option<Body>,
    #[prost(message, repeated, tag = "3")]
    pub trailers: Vec<HeaderValue>,
    /// Set when the filter's `record_headers_received_time` is on.
    #[prost(message, optional, tag = "4")]
    pub headers_received_time: Option<Timestamp>,
}

/// `envoy.data.tap.v3.HttpStreamedTraceSegment`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpStreamedTraceSegment {
    #[prost(uint64, tag = "1")]
    pub trace_id: u64,
    #[prost(oneof = "MessagePiece", tags = "2, 3, 4, 5, 6, 7")]
    pub message_piece: Option<MessagePiece>,
}

/// `HttpStreamedTraceSegment.message_piece`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MessagePiece {
    #[prost(message, tag = "2")]
    RequestHeaders(HeaderMap),
    #[prost(message, tag = "3")]
    RequestBodyChunk(Body),
    #[prost(message, tag = "4")]
    RequestTrailers(HeaderMap),
    #[prost(message, tag = "5")]
    ResponseHeaders(HeaderMap),
    #[prost(message, tag = "6")]
    ResponseBodyChunk(Body),
    #[prost(message, tag = "7")]
    ResponseTrailers(HeaderMap),
}

/// `envoy.data.tap.v3.Body`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Body {
    #[prost(oneof = "BodyType", tags = "1, 2")]
    pub body_type: Option<BodyType>,
    #[prost(bool, tag = "3")]
    pub truncated: bool,
}

/// `Body.body_type`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum BodyType {
    #[prost(bytes = "vec", tag = "1")]
    AsBytes(Vec<u8>),
    /// `string as_string = 2`, read as bytes (see the module comment).
    #[prost(bytes = "vec", tag = "2")]
    AsString(Vec<u8>),
}

/// `envoy.config.core.v3.HeaderValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValue {
    #[prost(string, tag = "1")]
    pub key: String,
    /// `string value = 2`, read as bytes (see the module comment).
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// `bytes raw_value = 3`: newer Envoys put a value that is not UTF-8 here.
    #[prost(bytes = "vec", tag = "3")]
    pub raw_value: Vec<u8>,
}

/// `envoy.config.core.v3.HeaderMap`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderMap {
    #[prost(message, repeated, tag = "1")]
    pub headers: Vec<HeaderValue>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}
