//! Envoy HTTP tap traces (`envoy.data.tap.v3.TraceWrapper`), as Envoy's tap filter writes them
//! with a `file_per_tap` sink or streams them from the admin `/tap` endpoint: JSON
//! (`JSON_BODY_AS_BYTES`, bodies base64 in `as_bytes`; `JSON_BODY_AS_STRING`, bodies in
//! `as_string`) or binary protobuf (`PROTO_BINARY`, `PROTO_BINARY_LENGTH_DELIMITED`), fully
//! buffered traces (`http_buffered_trace`) or streamed segments (`http_streamed_trace_segment`,
//! stitched back together per `trace_id`).
//!
//! Each trace becomes one [`Exchange`]: the request as the sidecar received it and the response
//! it sent back. [`pair`] then matches the baseline sidecar's exchanges with the canary
//! sidecar's by `x-request-id`, which Envoy copies onto the mirrored (shadow) request.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use prost::Message as _;
use serde::{Deserialize, Deserializer};
use shadowdiff_format::schema::error_kind;
use shadowdiff_format::{Header, PairRecord, SideRecord};

use super::envoy_proto as pb;
use super::split_url;
use crate::error::{Error, Result};

/// The header Envoy generates (or keeps) on every request and copies onto the shadow request.
pub const REQUEST_ID: &str = "x-request-id";

/// How a tap file is encoded. Envoy's `file_per_tap` sink names each file
/// `<path_prefix>_<trace id>` plus an extension that says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `.json`: `JSON_BODY_AS_BYTES` or `JSON_BODY_AS_STRING`; one object per buffered trace, one
    /// object after another for streamed segments (and for a saved admin `/tap` stream).
    Json,
    /// `.pb`: `PROTO_BINARY`, messages written back to back.
    ProtoBinary,
    /// `.pb_length_delimited`: `PROTO_BINARY_LENGTH_DELIMITED`, each message after its varint length.
    ProtoLengthDelimited,
}

impl Encoding {
    /// The encoding Envoy's file sink means by the file's extension, if it is one of its own.
    /// `.pb_text` (`PROTO_TEXT`) is refused by [`resolve`] with advice instead.
    pub fn from_extension(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "json" => Some(Encoding::Json),
            "pb" => Some(Encoding::ProtoBinary),
            "pb_length_delimited" => Some(Encoding::ProtoLengthDelimited),
            _ => None,
        }
    }
}

/// One HTTP exchange as one sidecar's tap saw it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The `x-request-id` header, when the request had one.
    pub request_id: Option<String>,
    /// When the request headers reached the sidecar (`headers_received_time`), or else when the
    /// tap file was last written.
    pub captured_at: DateTime<Utc>,
    /// True when `captured_at` is the trace's own time, not the file's.
    pub timed: bool,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `:authority` as `host` (a shadow's `-shadow` suffix removed), then the request's regular
    /// headers in order; pseudo-headers are not kept.
    pub request_headers: Vec<Header>,
    pub request_body: Option<Bytes>,
    pub request_body_truncated: bool,
    pub response: SideRecord,
    /// Where the trace was read: the file and the record's number in it.
    pub origin: String,
}

impl Exchange {
    fn request(&self) -> (&str, &str, Option<&str>) {
        (&self.method, &self.path, self.query.as_deref())
    }

    /// A pair holding this exchange's request and no response yet.
    fn into_pair(self, agent: &str) -> (PairRecord, SideRecord) {
        let mut r = PairRecord::new(agent, self.captured_at, self.method, self.path, self.query);
        r.request_headers = self.request_headers;
        r.request_body = self.request_body;
        r.request_body_truncated = self.request_body_truncated;
        (r, self.response)
    }
}

/// Tap files read for one side.
#[derive(Debug, Default)]
pub struct SideTraces {
    pub exchanges: Vec<Exchange>,
    /// Records that were read but cannot be a request: a socket trace, a streamed trace without
    /// its request headers, a request without `:method` or `:path`, a body that does not decode.
    /// Each names the file, the record and why.
    pub unreadable: Vec<Error>,
    /// Tap files read.
    pub files: usize,
    /// Files inside the given directories whose names are not tap files' (left alone).
    pub ignored: Vec<PathBuf>,
}

impl SideTraces {
    /// Every trace read: exchanges and unreadable records.
    pub fn traces(&self) -> usize {
        self.exchanges.len() + self.unreadable.len()
    }
}

/// The files of one side.
#[derive(Debug, Default)]
pub struct Resolved {
    pub files: Vec<(PathBuf, Encoding)>,
    /// Files inside the given directories whose names are not tap files'.
    pub ignored: Vec<PathBuf>,
}

/// The files to read for one side: files as given, directories searched recursively for the
/// names Envoy's file sink writes. Sorted, so the result does not depend on the file system.
pub fn resolve(inputs: &[PathBuf]) -> Result<Resolved> {
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|source| Error::Read { path: input.clone(), source })?;
        if !meta.is_dir() {
            files.push((input.clone(), encoding_of(input)?));
            continue;
        }
        let mut found = Vec::new();
        for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
            let entry = entry.map_err(|e| Error::Read {
                path: e.path().map_or_else(|| input.clone(), Path::to_owned),
                source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("a directory loop")),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.into_path();
            if path.extension().is_some_and(|e| e == "pb_text") {
                return Err(proto_text(&path));
            }
            match Encoding::from_extension(&path) {
                Some(encoding) => found.push((path, encoding)),
                None => ignored.push(path),
            }
        }
        files.extend(found);
    }
    Ok(Resolved { files, ignored })
}

fn proto_text(path: &Path) -> Error {
    Error::EnvoyTapFile {
        path: path.to_owned(),
        message: "PROTO_TEXT tap files cannot be read; set the sink's format to JSON_BODY_AS_BYTES, \
                  JSON_BODY_AS_STRING or PROTO_BINARY_LENGTH_DELIMITED"
            .into(),
    }
}

/// A file named on the command line: by its extension, or JSON when its first character is `{`
/// (a saved admin `/tap` stream has whatever name it was given).
fn encoding_of(path: &Path) -> Result<Encoding> {
    if path.extension().is_some_and(|e| e == "pb_text") {
        return Err(proto_text(path));
    }
    if let Some(e) = Encoding::from_extension(path) {
        return Ok(e);
    }
    // The start is enough: a saved admin stream can be large.
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .map_err(|source| Error::Read { path: path.to_owned(), source })?;
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(Encoding::Json);
    }
    Err(Error::EnvoyTapFile {
        path: path.to_owned(),
        message: "cannot tell how this tap file is encoded: Envoy names them .json, .pb or .pb_length_delimited".into(),
    })
}

/// Read every tap file of one side.
pub fn read_side(inputs: &[PathBuf], shadow: bool) -> Result<SideTraces> {
    let Resolved { files, ignored } = resolve(inputs)?;
    let mut side = SideTraces { files: files.len(), ignored, ..SideTraces::default() };
    for (path, encoding) in &files {
        let f = read_file(path, *encoding, shadow)?;
        side.exchanges.extend(f.exchanges);
        side.unreadable.extend(f.unreadable);
    }
    Ok(side)
}

/// One tap file read: its exchanges, in record order, and the records that cannot be requests.
#[derive(Debug, Default)]
pub struct TapFile {
    pub exchanges: Vec<Exchange>,
    pub unreadable: Vec<Error>,
}

/// Read one tap file. A file that is cut short or is not a tap file is an error; a record that
/// decodes but cannot be a request is listed in [`TapFile::unreadable`]. `shadow` says the
/// file is from the canary's sidecar, whose `:authority` carries Envoy's `-shadow` suffix.
pub fn read_file(path: &Path, encoding: Encoding, shadow: bool) -> Result<TapFile> {
    let data = std::fs::read(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    // A file without its own trace times takes the file's: Envoy writes a buffered trace when the
    // stream ends, and a streamed one as it goes.
    let modified =
        std::fs::metadata(path).and_then(|m| m.modified()).map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now());
    read_bytes(path, &data, encoding, shadow, modified)
}

/// [`read_file`] over a file's content already in memory: `path` only names it in errors and
/// `modified` stands in for the file's time.
pub fn read_bytes(
    path: &Path,
    data: &[u8],
    encoding: Encoding,
    shadow: bool,
    modified: DateTime<Utc>,
) -> Result<TapFile> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::EnvoyTapFile {
            path: path.to_owned(),
            message: "the file is empty, but Envoy writes a trace into every tap file it opens, so it was cut short"
                .into(),
        });
    }
    let records = match encoding {
        Encoding::Json => json_records(data),
        Encoding::ProtoBinary => binary_records(data, false),
        Encoding::ProtoLengthDelimited => binary_records(data, true),
    }
    .map_err(|(index, offset, message)| Error::EnvoyTap { path: path.to_owned(), index, offset, message })?;
    let mut out = TapFile::default();
    for (index, offset, trace) in assemble(records) {
        let err = |message: String| Error::EnvoyTap { path: path.to_owned(), index, offset, message };
        let origin = format!("{} record {index}", path.display());
        match trace.and_then(|t| exchange(t, shadow, modified, origin)) {
            Ok(x) => out.exchanges.push(x),
            Err(message) => out.unreadable.push(err(message)),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The common form both encodings are read into.

/// A header as the tap wrote it.
type Hdr = (String, Bytes);

#[derive(Debug, Default)]
struct Part {
    headers: Vec<Hdr>,
    body: Option<Vec<u8>>,
    body_truncated: bool,
    trailers: Vec<Hdr>,
    at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct Chunk {
    data: Vec<u8>,
    truncated: bool,
}

#[derive(Debug)]
enum Piece {
    RequestHeaders(Vec<Hdr>),
    RequestBody(Chunk),
    RequestTrailers(Vec<Hdr>),
    ResponseHeaders(Vec<Hdr>),
    ResponseBody(Chunk),
    ResponseTrailers(Vec<Hdr>),
    Empty,
}

#[derive(Debug)]
enum Record {
    Buffered {
        request: Option<Part>,
        response: Option<Part>,
    },
    Segment {
        trace_id: u64,
        piece: Piece,
    },
    /// A record that is not an HTTP trace, and why.
    NotHttp(&'static str),
}

/// A whole trace: one buffered trace, or the segments of one streamed trace put together.
#[derive(Debug, Default)]
struct Trace {
    request: Option<Part>,
    response: Option<Part>,
}

/// A record read: its number, byte offset, and the record or why it cannot be used.
type Read = (usize, usize, std::result::Result<Record, String>);

/// Put streamed segments back together per `trace_id` (in the order each trace first appears);
/// a buffered trace is whole already.
fn assemble(records: Vec<Read>) -> Vec<(usize, usize, std::result::Result<Trace, String>)> {
    let mut out: Vec<(usize, usize, std::result::Result<Trace, String>)> = Vec::new();
    let mut streams: HashMap<u64, usize> = HashMap::new();
    for (index, offset, record) in records {
        let record = match record {
            Ok(r) => r,
            Err(message) => {
                out.push((index, offset, Err(message)));
                continue;
            }
        };
        match record {
            Record::Buffered { request, response } => out.push((index, offset, Ok(Trace { request, response }))),
            Record::NotHttp(why) => out.push((index, offset, Err(why.to_owned()))),
            Record::Segment { trace_id, piece } => {
                let slot = *streams.entry(trace_id).or_insert_with(|| {
                    out.push((index, offset, Ok(Trace::default())));
                    out.len() - 1
                });
                // A streamed trace whose earlier segment was unreadable stays unreadable.
                let Ok(trace) = &mut out[slot].2 else { continue };
                let request = trace.request.get_or_insert_with(Part::default);
                match piece {
                    Piece::RequestHeaders(h) => request.headers.extend(h),
                    Piece::RequestBody(c) => append(request, c),
                    Piece::RequestTrailers(t) => request.trailers.extend(t),
                    Piece::ResponseHeaders(h) => trace.response.get_or_insert_with(Part::default).headers.extend(h),
                    Piece::ResponseBody(c) => append(trace.response.get_or_insert_with(Part::default), c),
                    Piece::ResponseTrailers(t) => trace.response.get_or_insert_with(Part::default).trailers.extend(t),
                    Piece::Empty => {}
                }
            }
        }
    }
    out
}

fn append(part: &mut Part, chunk: Chunk) {
    part.body.get_or_insert_with(Vec::new).extend_from_slice(&chunk.data);
    part.body_truncated |= chunk.truncated;
}

fn find<'a>(headers: &'a [Hdr], name: &str) -> Option<&'a Bytes> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn text(v: &Bytes) -> std::result::Result<&str, String> {
    std::str::from_utf8(v).map_err(|_| format!("`{}` is not text", String::from_utf8_lossy(v)))
}

/// Envoy names a shadow request's authority `host-shadow` (`host-shadow:port` with a port).
fn unshadow(authority: &str) -> String {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (authority, None),
    };
    let host = host.strip_suffix("-shadow").unwrap_or(host);
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

fn regular(headers: Vec<Hdr>) -> impl Iterator<Item = Header> {
    headers.into_iter().filter(|(k, _)| !k.starts_with(':')).map(|(k, v)| Header::new(k, v))
}

fn micros_between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<u64> {
    let d = to? - from?;
    d.num_microseconds().and_then(|us| u64::try_from(us).ok())
}

/// A trace as an exchange, or why it cannot be one.
fn exchange(
    trace: Trace,
    shadow: bool,
    modified: DateTime<Utc>,
    origin: String,
) -> std::result::Result<Exchange, String> {
    let request = trace.request.filter(|r| !r.headers.is_empty()).ok_or("the trace has no request headers")?;
    let method = find(&request.headers, ":method").ok_or("the request has no :method header")?;
    let method = text(method).map_err(|e| format!(":method {e}"))?.to_owned();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
        return Err(format!("`{method}` is not an HTTP method"));
    }
    let target = find(&request.headers, ":path").ok_or("the request has no :path header")?;
    let (path, query) = split_url(text(target).map_err(|e| format!(":path {e}"))?)?;
    let request_id = find(&request.headers, REQUEST_ID)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let mut request_headers = Vec::with_capacity(request.headers.len());
    if let Some(authority) = find(&request.headers, ":authority") {
        let authority = String::from_utf8_lossy(authority);
        let host = if shadow { unshadow(&authority) } else { authority.into_owned() };
        request_headers.push(Header::new("host", host));
    }
    request_headers.extend(regular(request.headers));
    let response = match trace.response.filter(|r| !r.headers.is_empty()) {
        // The stream ended before a response head went back through the sidecar: the client
        // went away, or the stream was reset. (Envoy's own error replies, 503 and the like, are
        // responses and are tapped.)
        None => SideRecord::failed(error_kind::RESET),
        Some(r) => {
            let status = find(&r.headers, ":status").ok_or("the response has no :status header")?;
            let status = text(status)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
                .filter(|s| (100..=999).contains(s))
                .ok_or_else(|| {
                    format!("the response :status `{}` is not an HTTP status", String::from_utf8_lossy(status))
                })?;
            let elapsed = micros_between(request.at, r.at);
            let mut headers: Vec<Header> = regular(r.headers).collect();
            // The pair format has no trailer columns; trailers (gRPC's grpc-status) follow the
            // headers, as on the wire.
            headers.extend(regular(r.trailers));
            SideRecord {
                status: Some(status),
                headers,
                body: r.body.map(Bytes::from),
                body_truncated: r.body_truncated,
                latency_us: elapsed,
                ttfb_us: elapsed,
                error: None,
                trailers: Vec::new(),
            }
        }
    };
    Ok(Exchange {
        request_id,
        captured_at: request.at.unwrap_or(modified),
        timed: request.at.is_some(),
        method,
        path,
        query,
        request_headers,
        request_body: request.body.map(Bytes::from),
        request_body_truncated: request.body_truncated,
        response,
        origin,
    })
}

// ---------------------------------------------------------------------------------------------
// Binary protobuf.

/// Split a binary tap file into records. Length-delimited files are a varint length before
/// each message. Plain `PROTO_BINARY` files are messages back to back, which protobuf cannot
/// tell apart in general; but every `TraceWrapper` Envoy writes has exactly one field (its
/// `trace`), so each top-level field is one record. A record cut short is an error
/// `(record, offset, message)`.
fn binary_records(data: &[u8], delimited: bool) -> std::result::Result<Vec<Read>, (usize, usize, String)> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let index = out.len();
        let offset = data.len() - rest.len();
        let cut = |needed: usize, have: usize| {
            (
                index,
                offset,
                format!(
                    "the record is cut short: it needs {needed} bytes and the file ends {have} bytes after it starts"
                ),
            )
        };
        let message: &[u8] = if delimited {
            let mut cursor = rest;
            let len =
                prost::decode_length_delimiter(&mut cursor).map_err(|_| cut(10.min(rest.len() + 1), rest.len()))?;
            let head = rest.len() - cursor.len();
            if cursor.len() < len {
                return Err(cut(head.saturating_add(len), rest.len()));
            }
            let m = &cursor[..len];
            rest = &cursor[len..];
            m
        } else {
            let mut cursor = rest;
            let (tag, wire) = prost::encoding::decode_key(&mut cursor).map_err(|e| {
                (
                    index,
                    offset,
                    format!("this is not an Envoy TraceWrapper protobuf ({e}); is the file .pb_length_delimited?"),
                )
            })?;
            if !(1..=4).contains(&tag) || wire != prost::encoding::WireType::LengthDelimited {
                return Err((
                    index,
                    offset,
                    format!(
                        "field {tag} ({wire:?}) is not a TraceWrapper trace; this is not a PROTO_BINARY tap file \
                         (a PROTO_BINARY_LENGTH_DELIMITED one is named .pb_length_delimited)"
                    ),
                ));
            }
            let len = prost::encoding::decode_varint(&mut cursor).map_err(|_| cut(rest.len() + 1, rest.len()))?;
            let head = rest.len() - cursor.len();
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if cursor.len() < len {
                return Err(cut(head.saturating_add(len), rest.len()));
            }
            let m = &rest[..head + len];
            rest = &cursor[len..];
            m
        };
        let record = pb::TraceWrapper::decode(message)
            .map_err(|e| (index, offset, format!("the record is not a TraceWrapper protobuf ({e})")))?;
        out.push((index, offset, Ok(from_proto(record))));
    }
    Ok(out)
}

fn proto_headers(list: Vec<pb::HeaderValue>) -> Vec<Hdr> {
    list.into_iter()
        .map(|h| {
            let value = if h.raw_value.is_empty() { h.value } else { h.raw_value };
            (h.key, Bytes::from(value))
        })
        .collect()
}

fn proto_time(t: Option<pb::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

fn proto_chunk(b: pb::Body) -> Chunk {
    let data = match b.body_type {
        Some(pb::BodyType::AsBytes(d) | pb::BodyType::AsString(d)) => d,
        None => Vec::new(),
    };
    Chunk { data, truncated: b.truncated }
}

fn proto_part(m: pb::Message) -> Part {
    let (body, body_truncated) = match m.body.map(proto_chunk) {
        Some(c) => (Some(c.data), c.truncated),
        None => (None, false),
    };
    Part {
        headers: proto_headers(m.headers),
        body,
        body_truncated,
        trailers: proto_headers(m.trailers),
        at: proto_time(m.headers_received_time),
    }
}

fn from_proto(w: pb::TraceWrapper) -> Record {
    match w.trace {
        Some(pb::Trace::HttpBufferedTrace(t)) => {
            Record::Buffered { request: t.request.map(proto_part), response: t.response.map(proto_part) }
        }
        Some(pb::Trace::HttpStreamedTraceSegment(s)) => {
            let piece = match s.message_piece {
                Some(pb::MessagePiece::RequestHeaders(h)) => Piece::RequestHeaders(proto_headers(h.headers)),
                Some(pb::MessagePiece::RequestBodyChunk(b)) => Piece::RequestBody(proto_chunk(b)),
                Some(pb::MessagePiece::RequestTrailers(h)) => Piece::RequestTrailers(proto_headers(h.headers)),
                Some(pb::MessagePiece::ResponseHeaders(h)) => Piece::ResponseHeaders(proto_headers(h.headers)),
                Some(pb::MessagePiece::ResponseBodyChunk(b)) => Piece::ResponseBody(proto_chunk(b)),
                Some(pb::MessagePiece::ResponseTrailers(h)) => Piece::ResponseTrailers(proto_headers(h.headers)),
                None => Piece::Empty,
            };
            Record::Segment { trace_id: s.trace_id, piece }
        }
        Some(pb::Trace::SocketBufferedTrace(_) | pb::Trace::SocketStreamedTraceSegment(_)) => {
            Record::NotHttp(NOT_HTTP_SOCKET)
        }
        None => Record::NotHttp(NOT_HTTP_EMPTY),
    }
}

const NOT_HTTP_SOCKET: &str = "it is a socket (transport tap) trace, not an HTTP trace";
const NOT_HTTP_EMPTY: &str = "the record holds no trace";

// ---------------------------------------------------------------------------------------------
// JSON: Envoy prints the messages with their proto field names (`http_buffered_trace`,
// `as_bytes`); the proto3 JSON mapping's lowerCamelCase names are accepted too.

#[derive(Deserialize)]
struct JWrapper {
    #[serde(default, alias = "httpBufferedTrace")]
    http_buffered_trace: Option<JBuffered>,
    #[serde(default, alias = "httpStreamedTraceSegment")]
    http_streamed_trace_segment: Option<JSegment>,
    #[serde(default, alias = "socketBufferedTrace")]
    socket_buffered_trace: Option<serde::de::IgnoredAny>,
    #[serde(default, alias = "socketStreamedTraceSegment")]
    socket_streamed_trace_segment: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct JBuffered {
    #[serde(default)]
    request: Option<JMessage>,
    #[serde(default)]
    response: Option<JMessage>,
}

#[derive(Deserialize)]
struct JMessage {
    #[serde(default, deserialize_with = "null_default")]
    headers: Vec<JHeader>,
    #[serde(default)]
    body: Option<JBody>,
    #[serde(default, deserialize_with = "null_default")]
    trailers: Vec<JHeader>,
    #[serde(default, alias = "headersReceivedTime")]
    headers_received_time: Option<String>,
}

#[derive(Deserialize)]
struct JHeader {
    key: String,
    #[serde(default, deserialize_with = "null_default")]
    value: String,
    #[serde(default, alias = "rawValue")]
    raw_value: Option<String>,
}

#[derive(Deserialize)]
struct JHeaderMap {
    #[serde(default, deserialize_with = "null_default")]
    headers: Vec<JHeader>,
}

#[derive(Deserialize)]
struct JBody {
    #[serde(default, alias = "asBytes")]
    as_bytes: Option<String>,
    #[serde(default, alias = "asString")]
    as_string: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    truncated: bool,
}

#[derive(Deserialize)]
struct JSegment {
    /// A uint64, which the proto3 JSON mapping prints as a string.
    #[serde(default, alias = "traceId", deserialize_with = "uint64")]
    trace_id: u64,
    #[serde(default, alias = "requestHeaders")]
    request_headers: Option<JHeaderMap>,
    #[serde(default, alias = "requestBodyChunk")]
    request_body_chunk: Option<JBody>,
    #[serde(default, alias = "requestTrailers")]
    request_trailers: Option<JHeaderMap>,
    #[serde(default, alias = "responseHeaders")]
    response_headers: Option<JHeaderMap>,
    #[serde(default, alias = "responseBodyChunk")]
    response_body_chunk: Option<JBody>,
    #[serde(default, alias = "responseTrailers")]
    response_trailers: Option<JHeaderMap>,
}

/// proto3 JSON lets any field be `null`, meaning its default.
fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> std::result::Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn uint64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Number(u64),
        Text(String),
    }
    match Option::<N>::deserialize(d)? {
        None => Ok(0),
        Some(N::Number(n)) => Ok(n),
        Some(N::Text(s)) => {
            s.parse().map_err(|_| serde::de::Error::custom(format!("trace_id `{s}` is not an unsigned integer")))
        }
    }
}

/// proto3 JSON `bytes`: base64, standard or URL-safe alphabet, padded or not.
fn base64(text: &str) -> std::result::Result<Vec<u8>, String> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let standard: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT.decode(standard).map_err(|e| format!("it is not base64 ({e})"))
}

fn json_headers(list: Vec<JHeader>) -> std::result::Result<Vec<Hdr>, String> {
    list.into_iter()
        .map(|h| {
            let value = match h.raw_value.filter(|r| !r.is_empty()) {
                Some(raw) => base64(&raw).map_err(|e| format!("header `{}` raw_value: {e}", h.key))?,
                None => h.value.into_bytes(),
            };
            Ok((h.key, Bytes::from(value)))
        })
        .collect()
}

fn json_chunk(b: JBody, field: &str) -> std::result::Result<Chunk, String> {
    let data = match (b.as_bytes, b.as_string) {
        (Some(bytes), _) => base64(&bytes).map_err(|e| format!("{field}.as_bytes: {e}"))?,
        (None, Some(s)) => s.into_bytes(),
        (None, None) => Vec::new(),
    };
    Ok(Chunk { data, truncated: b.truncated })
}

fn json_part(m: JMessage, field: &str) -> std::result::Result<Part, String> {
    let (body, body_truncated) = match m.body {
        Some(b) => {
            let c = json_chunk(b, &format!("{field}.body"))?;
            (Some(c.data), c.truncated)
        }
        None => (None, false),
    };
    let at = match m.headers_received_time {
        Some(t) => Some(
            DateTime::parse_from_rfc3339(&t)
                .map_err(|e| format!("{field}.headers_received_time `{t}` is not an RFC 3339 time ({e})"))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    Ok(Part { headers: json_headers(m.headers)?, body, body_truncated, trailers: json_headers(m.trailers)?, at })
}

fn from_json(w: JWrapper) -> std::result::Result<Record, String> {
    if let Some(t) = w.http_buffered_trace {
        return Ok(Record::Buffered {
            request: t.request.map(|m| json_part(m, "request")).transpose()?,
            response: t.response.map(|m| json_part(m, "response")).transpose()?,
        });
    }
    if let Some(s) = w.http_streamed_trace_segment {
        let headers = |h: JHeaderMap| json_headers(h.headers);
        let piece = if let Some(h) = s.request_headers {
            Piece::RequestHeaders(headers(h)?)
        } else if let Some(b) = s.request_body_chunk {
            Piece::RequestBody(json_chunk(b, "request_body_chunk")?)
        } else if let Some(h) = s.request_trailers {
            Piece::RequestTrailers(headers(h)?)
        } else if let Some(h) = s.response_headers {
            Piece::ResponseHeaders(headers(h)?)
        } else if let Some(b) = s.response_body_chunk {
            Piece::ResponseBody(json_chunk(b, "response_body_chunk")?)
        } else if let Some(h) = s.response_trailers {
            Piece::ResponseTrailers(headers(h)?)
        } else {
            Piece::Empty
        };
        return Ok(Record::Segment { trace_id: s.trace_id, piece });
    }
    if w.socket_buffered_trace.is_some() || w.socket_streamed_trace_segment.is_some() {
        return Ok(Record::NotHttp(NOT_HTTP_SOCKET));
    }
    Ok(Record::NotHttp(NOT_HTTP_EMPTY))
}

/// JSON objects one after another (Envoy writes streamed segments, and the admin endpoint
/// streams traces, with nothing between them but whitespace).
fn json_records(data: &[u8]) -> std::result::Result<Vec<Read>, (usize, usize, String)> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<JWrapper>();
    loop {
        let at = stream.byte_offset();
        let offset = at + data[at..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        let index = out.len();
        match stream.next() {
            None => return Ok(out),
            Some(Ok(w)) => out.push((index, offset, from_json(w))),
            Some(Err(e)) if e.is_eof() => {
                return Err((
                    index,
                    offset,
                    "the file ends in the middle of this record (cut short, or copied while Envoy was writing it)"
                        .into(),
                ));
            }
            Some(Err(e)) if e.is_syntax() => return Err((index, offset, format!("it is not JSON ({e})"))),
            Some(Err(e)) => return Err((index, offset, format!("it is not an Envoy tap trace ({e})"))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pairing.

/// What became of one side's traces; `traces = paired + only + no_request_id + unreadable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideCounts {
    pub files: u64,
    pub traces: u64,
    pub paired: u64,
    /// Seen on this side only (or, under the same `x-request-id`, a different request).
    pub only: u64,
    pub no_request_id: u64,
    pub unreadable: u64,
}

impl SideCounts {
    /// The counters as `prefix.name`, for the pair files' metadata.
    pub fn counters(&self, prefix: &str) -> BTreeMap<String, u64> {
        [
            ("files", self.files),
            ("traces", self.traces),
            ("paired", self.paired),
            ("only", self.only),
            ("no_request_id", self.no_request_id),
            ("unreadable", self.unreadable),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{prefix}.{k}"), v))
        .collect()
    }
}

/// The pairs made, in time order, and what was left over.
#[derive(Debug, Default)]
pub struct Paired {
    /// Both sides seen: request and baseline response from the baseline's sidecar, canary
    /// response from the canary's.
    pub pairs: Vec<PairRecord>,
    /// Seen by the baseline's sidecar only: the canary side is empty, for `replay --canary`.
    pub baseline_only: Vec<PairRecord>,
    /// Seen by the canary's sidecar only: the request and the canary side.
    pub canary_only: Vec<PairRecord>,
    pub baseline: SideCounts,
    pub canary: SideCounts,
    /// Pairs whose latency both taps timed (`record_headers_received_time`).
    pub timed: u64,
    /// Requests under one `x-request-id` that differ between the sides, each in a sentence.
    pub mismatched: Vec<String>,
    /// The records of both sides that cannot be requests (baseline's first), each naming its
    /// file, record and why.
    pub unreadable: Vec<Error>,
    /// Where each trace without an `x-request-id` was read (`baseline FILE record N`).
    pub without_request_id: Vec<String>,
}

/// Match the two sides' exchanges by `x-request-id`. Under one id, exchanges pair in time order
/// (an id a client reused is seen more than once); a pair whose method, path or query differ
/// between the sides is not a pair of one request, and both stay side-only.
pub fn pair(baseline: SideTraces, canary: SideTraces, agent: &str) -> Paired {
    let counts = |side: &SideTraces| SideCounts {
        files: side.files as u64,
        traces: side.traces() as u64,
        unreadable: side.unreadable.len() as u64,
        ..SideCounts::default()
    };
    let mut p = Paired { baseline: counts(&baseline), canary: counts(&canary), ..Paired::default() };
    p.unreadable = baseline.unreadable.into_iter().chain(canary.unreadable).collect();
    let by_time = |x: &Vec<Exchange>| {
        let mut order: Vec<usize> = (0..x.len()).collect();
        order.sort_by_key(|&i| x[i].captured_at);
        order
    };
    let mut canary_x: Vec<Option<Exchange>> = {
        let order = by_time(&canary.exchanges);
        let mut all: Vec<Option<Exchange>> = canary.exchanges.into_iter().map(Some).collect();
        order.into_iter().map(|i| all[i].take()).collect()
    };
    let mut waiting: HashMap<String, VecDeque<usize>> = HashMap::new();
    for (i, x) in canary_x.iter().enumerate() {
        let Some(x) = x else { continue };
        match &x.request_id {
            Some(id) => waiting.entry(id.clone()).or_default().push_back(i),
            None => {
                p.canary.no_request_id += 1;
                p.without_request_id.push(format!("canary {}", x.origin));
            }
        }
    }
    let order = by_time(&baseline.exchanges);
    let mut baseline_x: Vec<Option<Exchange>> = baseline.exchanges.into_iter().map(Some).collect();
    for i in order {
        let Some(b) = baseline_x[i].take() else { continue };
        let Some(id) = b.request_id.clone() else {
            p.baseline.no_request_id += 1;
            p.without_request_id.push(format!("baseline {}", b.origin));
            continue;
        };
        let partner = waiting.get_mut(&id).and_then(VecDeque::pop_front);
        let Some(c) = partner.and_then(|j| canary_x[j].take()) else {
            p.baseline.only += 1;
            let (r, side) = b.into_pair(agent);
            p.baseline_only.push(PairRecord { baseline: side, ..r });
            continue;
        };
        if b.request() != c.request() {
            let (bm, bp, bq) = b.request();
            let (cm, cp, cq) = c.request();
            p.mismatched.push(format!(
                "x-request-id {id} is {bm} {bp}{} in {} but {cm} {cp}{} in {}, so they are not paired",
                bq.map(|q| format!("?{q}")).unwrap_or_default(),
                b.origin,
                cq.map(|q| format!("?{q}")).unwrap_or_default(),
                c.origin
            ));
            p.baseline.only += 1;
            let (r, side) = b.into_pair(agent);
            p.baseline_only.push(PairRecord { baseline: side, ..r });
            // Back in line: it may still be the canary-only request it looks like.
            canary_x.push(Some(c));
            continue;
        }
        p.baseline.paired += 1;
        p.canary.paired += 1;
        let canary_side = c.response;
        let (mut r, side) = b.into_pair(agent);
        r.baseline = side;
        p.timed += u64::from(r.baseline.latency_us.is_some() && canary_side.latency_us.is_some());
        r.canary = canary_side;
        p.pairs.push(r);
    }
    for c in canary_x.into_iter().flatten().filter(|c| c.request_id.is_some()) {
        p.canary.only += 1;
        let (r, side) = c.into_pair(agent);
        p.canary_only.push(PairRecord { canary: side, ..r });
    }
    p.canary_only.sort_by_key(|r| r.captured_at);
    p.baseline_only.sort_by_key(|r| r.captured_at);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffered trace printed in Envoy's sandbox documentation of the tap filter
    /// (JSON_BODY_AS_BYTES: proto field names, headers as key/value, base64 body in `as_bytes`,
    /// `trailers: []` printed because Envoy prints default values), with
    /// `headers_received_time` (api/envoy/data/tap/v3/http.proto, field 4) added.
    const BUFFERED: &str = r#"{
 "http_buffered_trace": {
  "request": {
   "headers": [
    {"key": ":authority", "value": "localhost:10000"},
    {"key": ":path", "value": "/users/1?full=1"},
    {"key": ":method", "value": "GET"},
    {"key": ":scheme", "value": "http"},
    {"key": "user-agent", "value": "curl/7.64.0"},
    {"key": "x-request-id", "value": "67e3e8ac-429a-42fb-945b-ec25927fdcc1"}
   ],
   "trailers": [],
   "headers_received_time": "2026-11-30T10:00:00.000100Z"
  },
  "response": {
   "headers": [
    {"key": ":status", "value": "200"},
    {"key": "content-length", "value": "8"},
    {"key": "content-type", "value": "application/json"}
   ],
   "body": {"truncated": false, "as_bytes": "eyJpZCI6MX0="},
   "trailers": [],
   "headers_received_time": "2026-11-30T10:00:00.004100Z"
  }
 }
}"#;

    fn one(json: &str, shadow: bool) -> std::result::Result<Exchange, String> {
        let records = json_records(json.as_bytes()).map_err(|e| e.2)?;
        let (_, _, trace) = assemble(records).into_iter().next().ok_or("no trace")?;
        exchange(trace?, shadow, Utc::now(), "test".into())
    }

    #[test]
    fn a_buffered_json_trace_reads() {
        let x = one(BUFFERED, false).expect("reads");
        assert_eq!((x.method.as_str(), x.path.as_str(), x.query.as_deref()), ("GET", "/users/1", Some("full=1")));
        assert_eq!(x.request_id.as_deref(), Some("67e3e8ac-429a-42fb-945b-ec25927fdcc1"));
        assert_eq!(x.request_headers[0], Header::new("host", "localhost:10000"));
        assert!(x.request_headers.iter().all(|h| !h.name.starts_with(':')));
        assert_eq!(x.response.status, Some(200));
        assert_eq!(x.response.body.as_deref(), Some(&br#"{"id":1}"#[..]));
        assert_eq!((x.response.latency_us, x.response.ttfb_us), (Some(4000), Some(4000)));
        assert!(x.timed);
        assert_eq!(x.captured_at.timestamp_micros() % 1_000_000, 100);
    }

    #[test]
    fn camel_case_names_numbers_for_ids_and_url_safe_base64_are_accepted() {
        let camel = r#"{"httpStreamedTraceSegment": {"traceId": 7, "requestHeaders": {"headers": [
            {"key": ":method", "value": "POST"}, {"key": ":path", "value": "/a"},
            {"key": ":authority", "value": "api-shadow:8080"}]}}}
            {"http_streamed_trace_segment": {"trace_id": "7", "request_body_chunk": {"asBytes": "-_8"}}}"#;
        let x = one(camel, true).expect("reads");
        assert_eq!(x.request_body.as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(x.request_headers[0], Header::new("host", "api:8080"));
        // No response segment: the stream ended before a response head.
        assert_eq!(x.response.error.as_deref(), Some(error_kind::RESET));
    }

    #[test]
    fn the_shadow_suffix_is_removed_from_the_host_only() {
        assert_eq!(unshadow("api.internal-shadow"), "api.internal");
        assert_eq!(unshadow("api-shadow:8080"), "api:8080");
        assert_eq!(unshadow("[::1]-shadow:80"), "[::1]:80");
        assert_eq!(unshadow("api"), "api");
    }

    #[test]
    fn a_cut_json_file_names_the_record_and_its_offset() {
        let two = format!("{BUFFERED}\n{BUFFERED}");
        let cut = &two[..BUFFERED.len() + 1 + 200];
        let e = json_records(cut.as_bytes()).expect_err("cut");
        assert_eq!((e.0, e.1), (1, BUFFERED.len() + 1));
        assert!(e.2.contains("ends in the middle of this record"), "{}", e.2);
        let e = json_records(b"{\"http_buffered_trace\": 3}").expect_err("shape");
        assert!(e.2.starts_with("it is not an Envoy tap trace"), "{}", e.2);
    }

    #[test]
    fn records_that_cannot_be_requests_are_named() {
        let no_path = r#"{"http_buffered_trace": {"request": {"headers": [{"key": ":method", "value": "GET"}]}}}"#;
        assert_eq!(one(no_path, false).expect_err("no path"), "the request has no :path header");
        let socket = r#"{"socket_buffered_trace": {"trace_id": "1", "events": []}}"#;
        assert_eq!(one(socket, false).expect_err("socket"), NOT_HTTP_SOCKET);
        let bad = r#"{"http_buffered_trace": {"request": {"headers": [], "body": {"as_bytes": "!!"}}}}"#;
        assert!(one(bad, false).expect_err("base64").starts_with("request.body.as_bytes: it is not base64"));
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field(tag: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(tag << 3 | 2, &mut out);
        varint(body.len() as u64, &mut out);
        out.extend_from_slice(body);
        out
    }

    fn header(k: &str, v: &str) -> Vec<u8> {
        [field(1, k.as_bytes()), field(2, v.as_bytes())].concat()
    }

    /// A streamed segment (http.proto: trace_id = 1, request_headers = 2, response_headers = 5,
    /// response_body_chunk = 6) inside a TraceWrapper (wrapper.proto: http_streamed_trace_segment = 2).
    fn segment(trace_id: u64, piece_tag: u64, piece: &[u8]) -> Vec<u8> {
        let mut s = vec![0x08];
        varint(trace_id, &mut s);
        s.extend(field(piece_tag, piece));
        field(2, &s)
    }

    fn streamed() -> Vec<Vec<u8>> {
        let req = [field(1, &header(":method", "GET")), field(1, &header(":path", "/s"))].concat();
        let resp = field(1, &header(":status", "503"));
        let chunk = |s: &str, truncated: bool| {
            let mut b = field(1, s.as_bytes());
            if truncated {
                b.extend([0x18, 1]);
            }
            b
        };
        vec![
            segment(9, 2, &req),
            segment(9, 5, &resp),
            segment(9, 6, &chunk("hel", false)),
            segment(9, 6, &chunk("lo", true)),
        ]
    }

    #[test]
    fn binary_records_back_to_back_and_length_delimited_read_alike() {
        let plain = streamed().concat();
        let delimited: Vec<u8> = streamed()
            .into_iter()
            .flat_map(|m| {
                let mut out = Vec::new();
                varint(m.len() as u64, &mut out);
                out.extend(m);
                out
            })
            .collect();
        for (data, delimited) in [(plain, false), (delimited, true)] {
            let records = binary_records(&data, delimited).expect("reads");
            assert_eq!(records.len(), 4);
            let traces = assemble(records);
            assert_eq!(traces.len(), 1);
            let (_, _, t) = traces.into_iter().next().expect("one");
            let x = exchange(t.expect("whole"), false, Utc::now(), "t".into()).expect("exchange");
            assert_eq!((x.method.as_str(), x.response.status), ("GET", Some(503)));
            assert_eq!(x.response.body.as_deref(), Some(&b"hello"[..]));
            assert!(x.response.body_truncated);
            assert!(!x.timed && x.response.latency_us.is_none());
        }
    }

    #[test]
    fn a_cut_binary_file_names_the_record_and_its_offset() {
        let data = streamed().concat();
        let second = streamed()[0].len();
        let e = binary_records(&data[..second + 5], false).expect_err("cut");
        assert_eq!((e.0, e.1), (1, second));
        assert!(e.2.contains("cut short"), "{}", e.2);
        let mut delimited = Vec::new();
        varint(200, &mut delimited);
        delimited.extend([0x12, 0x05]);
        let e = binary_records(&delimited, true).expect_err("cut");
        assert_eq!((e.0, e.1), (0, 0));
        assert!(e.2.contains("needs 202 bytes and the file ends 4 bytes"), "{}", e.2);
        let e = binary_records(b"{\"http", false).expect_err("json in a .pb");
        assert!(e.2.contains("not a TraceWrapper"), "{}", e.2);
    }

    /// Found by fuzzing (fuzz/regressions/envoy_tap/): a length prefix near 2^64 overflowed
    /// `head + len` (a panic with overflow checks, a wrong length without).
    #[test]
    fn a_huge_length_prefix_is_cut_short_not_an_overflow() {
        let data = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0, 0, 0, 0x2b];
        let e = binary_records(&data, true).expect_err("cut");
        assert_eq!((e.0, e.1), (0, 0));
        assert!(e.2.contains(&format!("needs {} bytes and the file ends 17 bytes", usize::MAX)), "{}", e.2);
    }

    #[test]
    fn directories_take_envoy_names_and_named_files_are_sniffed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub")).expect("mkdir");
        for (name, data) in [
            ("tap_1.json", BUFFERED.as_bytes()),
            ("sub/tap_2.pb", b"\x0a\x00"),
            ("sub/tap_3.pb_length_delimited", b"\x00"),
            ("notes.txt", b"hello"),
        ] {
            std::fs::write(d.join(name), data).expect("write");
        }
        let r = resolve(&[d.to_owned()]).expect("resolves");
        let names: Vec<_> = r.files.iter().map(|(p, e)| (p.strip_prefix(d).expect("inside").to_owned(), *e)).collect();
        assert_eq!(
            names,
            [
                (PathBuf::from("sub/tap_2.pb"), Encoding::ProtoBinary),
                (PathBuf::from("sub/tap_3.pb_length_delimited"), Encoding::ProtoLengthDelimited),
                (PathBuf::from("tap_1.json"), Encoding::Json),
            ]
        );
        assert_eq!(r.ignored, [d.join("notes.txt")]);
        // A saved admin stream has any name: JSON when it starts with `{`.
        std::fs::write(d.join("admin.out"), format!("  {BUFFERED}")).expect("write");
        assert_eq!(resolve(&[d.join("admin.out")]).expect("json").files[0].1, Encoding::Json);
        let e = resolve(&[d.join("notes.txt")]).expect_err("unknown").to_string();
        assert!(e.contains("notes.txt") && e.contains(".pb_length_delimited"), "{e}");
        std::fs::write(d.join("sub/tap_4.pb_text"), "http_buffered_trace {}").expect("write");
        let e = resolve(&[d.to_owned()]).expect_err("PROTO_TEXT").to_string();
        assert!(e.contains("tap_4.pb_text") && e.contains("PROTO_BINARY_LENGTH_DELIMITED"), "{e}");
    }

    #[test]
    fn an_empty_tap_file_is_cut_short() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tap_9.json");
        std::fs::write(&path, "\n").expect("write");
        let e = read_file(&path, Encoding::Json, false).expect_err("empty").to_string();
        assert!(e.contains("tap_9.json: the file is empty") && e.contains("cut short"), "{e}");
    }

    fn ex(id: Option<&str>, path: &str, secs: i64) -> Exchange {
        Exchange {
            request_id: id.map(str::to_owned),
            captured_at: DateTime::from_timestamp(secs, 0).expect("time"),
            timed: true,
            method: "GET".into(),
            path: path.into(),
            query: None,
            request_headers: Vec::new(),
            request_body: None,
            request_body_truncated: false,
            response: SideRecord { status: Some(200), ..SideRecord::default() },
            origin: format!("{path}@{secs}"),
        }
    }

    #[test]
    fn pairing_counts_add_up() {
        let side = |x: Vec<Exchange>| SideTraces { files: x.len(), exchanges: x, ..SideTraces::default() };
        let b = side(vec![
            ex(Some("a"), "/a", 3),
            ex(Some("b"), "/b", 1),
            ex(None, "/n", 2),
            ex(Some("d"), "/d", 4),
            ex(Some("d"), "/d", 5),
            ex(Some("m"), "/m", 6),
        ]);
        let c = side(vec![
            ex(Some("b"), "/b", 1),
            ex(Some("a"), "/a", 3),
            ex(Some("d"), "/d", 4),
            ex(Some("m"), "/x", 6),
            ex(Some("z"), "/z", 7),
        ]);
        let p = pair(b, c, "t");
        assert_eq!(p.pairs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/b", "/a", "/d"]);
        assert_eq!(p.baseline_only.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/d", "/m"]);
        assert_eq!(p.canary_only.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/x", "/z"]);
        assert!(p.baseline_only.iter().all(|r| r.canary.is_absent() && r.baseline.status == Some(200)));
        assert!(p.canary_only.iter().all(|r| r.baseline.is_absent() && r.canary.status == Some(200)));
        assert_eq!(p.mismatched.len(), 1);
        assert!(p.mismatched[0].contains("x-request-id m is GET /m"), "{}", p.mismatched[0]);
        for s in [p.baseline, p.canary] {
            assert_eq!(s.traces, s.paired + s.only + s.no_request_id + s.unreadable, "{s:?}");
        }
        assert_eq!((p.baseline.paired, p.baseline.only, p.baseline.no_request_id), (3, 2, 1));
        assert_eq!((p.canary.paired, p.canary.only), (3, 2));
    }
}
