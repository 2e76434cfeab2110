//! The one media-type classifier: what a `Content-Type` value says about a body. The diff engine,
//! capture's redaction, the report and the CLI all ask it, so "is this JSON?" has one answer.

use serde::{Deserialize, Serialize};

/// The media type of a `Content-Type` value: its type and subtype, lower-cased, without
/// parameters (`application/json; charset=utf-8` → `application/json`).
pub fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// What a content type says about a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    Json,
    Text,
    Binary,
    /// No content type, or one that does not tell (the body is sniffed).
    Unknown,
}

/// Classifies a `Content-Type` value.
pub fn claim(content_type: Option<&str>) -> Claim {
    let Some(ct) = content_type else { return Claim::Unknown };
    let media = media_type(ct);
    let (kind, sub) = media.split_once('/').unwrap_or((media.as_str(), ""));
    match (kind, sub) {
        ("application" | "text", "json") | (_, "json-seq") => Claim::Json,
        (_, s) if s.ends_with("+json") => Claim::Json,
        ("text", _) => Claim::Text,
        (_, s) if s.ends_with("+xml") => Claim::Text,
        (
            "application",
            "xml"
            | "javascript"
            | "ecmascript"
            | "x-www-form-urlencoded"
            | "graphql"
            | "yaml"
            | "x-yaml"
            | "csv"
            | "x-ndjson"
            | "ndjson"
            | "jsonl"
            | "x-jsonl"
            | "json-lines"
            | "jsonlines"
            | "x-jsonlines"
            | "sql"
            | "toml",
        ) => Claim::Text,
        ("image" | "audio" | "video" | "font", _) => Claim::Binary,
        (
            "application",
            "octet-stream"
            | "pdf"
            | "zip"
            | "gzip"
            | "x-gzip"
            | "protobuf"
            | "x-protobuf"
            | "grpc"
            | "msgpack"
            | "x-msgpack"
            | "cbor"
            | "wasm"
            | "x-tar"
            | "vnd.apache.parquet"
            | "vnd.apache.arrow.stream",
        ) => Claim::Binary,
        _ => Claim::Unknown,
    }
}

/// A body that is a sequence of records rather than one document: compared record by record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// `text/event-stream`: server-sent events (WHATWG HTML, "Server-sent events").
    EventStream,
    /// Newline-delimited JSON: `application/x-ndjson`, `application/jsonl`, `application/json-lines` …
    JsonLines,
    /// RFC 7464 JSON text sequences (`application/json-seq`): records that start with RS (0x1E).
    JsonSeq,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::EventStream => "event_stream",
            Stream::JsonLines => "json_lines",
            Stream::JsonSeq => "json_seq",
        }
    }
}

/// The kind of record stream a `Content-Type` value names, if it names one.
pub fn stream(content_type: Option<&str>) -> Option<Stream> {
    let media = media_type(content_type?);
    let (kind, sub) = media.split_once('/').unwrap_or((media.as_str(), ""));
    match (kind, sub) {
        ("text", "event-stream") => Some(Stream::EventStream),
        (
            "application" | "text",
            "x-ndjson" | "ndjson" | "jsonl" | "x-jsonl" | "json-lines" | "jsonlines" | "x-jsonlines",
        ) => Some(Stream::JsonLines),
        (_, "json-seq") => Some(Stream::JsonSeq),
        (_, s) if s.ends_with("+json-seq") => Some(Stream::JsonSeq),
        _ => None,
    }
}

/// True when `content_type` says JSON, or says nothing telling and the body starts like a JSON
/// object or array — the cheap test for code that must not parse what is not JSON.
pub fn looks_json(content_type: Option<&str>, body: &[u8]) -> bool {
    match claim(content_type) {
        Claim::Json => true,
        Claim::Unknown => body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'{' || *b == b'['),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_answer_to_is_this_json() {
        assert_eq!(claim(Some("application/json; charset=utf-8")), Claim::Json);
        assert_eq!(claim(Some("application/problem+json")), Claim::Json);
        assert_eq!(claim(Some("text/html")), Claim::Text);
        assert_eq!(claim(Some("application/atom+xml")), Claim::Text);
        assert_eq!(claim(Some("image/png")), Claim::Binary);
        assert_eq!(claim(Some("application/octet-stream")), Claim::Binary);
        assert_eq!(claim(Some("application/x-unknown")), Claim::Unknown);
        assert_eq!(claim(None), Claim::Unknown);

        assert_eq!(claim(Some("Application/Problem+JSON")), Claim::Json);
        assert!(looks_json(Some("application/vnd.api+json"), b"not json at all"));
        assert!(looks_json(None, b"  [1, 2]"));
        assert!(!looks_json(Some("text/plain"), b"{}"));
        assert_eq!(media_type(" Text/HTML ; charset=x"), "text/html");

        assert_eq!(stream(Some("text/event-stream; charset=utf-8")), Some(Stream::EventStream));
        assert_eq!(stream(Some("application/x-ndjson")), Some(Stream::JsonLines));
        assert_eq!(stream(Some("application/jsonl")), Some(Stream::JsonLines));
        assert_eq!(stream(Some("application/json-lines")), Some(Stream::JsonLines));
        assert_eq!(stream(Some("application/json-seq")), Some(Stream::JsonSeq));
        assert_eq!(stream(Some("application/geo+json-seq")), Some(Stream::JsonSeq));
        assert_eq!(stream(Some("application/json")), None);
        assert_eq!(stream(None), None);
        assert_eq!(claim(Some("application/jsonl")), Claim::Text);
    }
}
