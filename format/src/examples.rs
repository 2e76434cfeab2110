//! `examples.json`, typed: the example pairs analyze picked for the report, with both responses
//! as captured and their differences. Written by analyze, read by the report.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::pair::SideRecord;
use crate::vocab::{DiffStatus, Outcome, Severity};

/// The file the chosen examples are written to.
pub const EXAMPLES_FILE: &str = "examples.json";
/// Bumped when a field of `examples.json` changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;
/// Bytes of each body kept.
pub const BODY_CAP: usize = 64 * 1024;

/// `examples.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExamplesFile {
    pub schema_version: u32,
    pub examples: Vec<Example>,
}

/// One pair, shown because of what differed in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub route: String,
    pub pair_id: String,
    /// Position in the input, as in `pairs.parquet`.
    pub pair_index: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The pair's outcome as in `pairs.parquet`.
    pub outcome: Outcome,
    /// One line: why this pair is shown.
    pub why: String,
    pub baseline: ExampleSide,
    pub canary: ExampleSide,
    /// Differences between baseline and canary with their final status.
    pub differences: Vec<ExampleDifference>,
}

/// One side's response as captured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExampleSide {
    pub status: Option<u16>,
    /// Transport error kind (`timeout`, `reset` …).
    pub error: Option<String>,
    pub content_type: Option<String>,
    pub latency_ms: Option<f64>,
    /// The body when it is UTF-8 text.
    pub body: Option<String>,
    /// The body in base64 when it is not UTF-8.
    pub body_base64: Option<String>,
    /// Cut by the capture agent's cap or by [`BODY_CAP`].
    pub truncated: bool,
    /// A streamed body (`text/event-stream`, NDJSON, JSON text sequences) as the JSON array of
    /// its complete records, as analyze compared it: events as `{"event", "id", "data"}` with the
    /// data parsed as JSON when it parses. Difference paths (`/3/data/price`) point into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<serde_json::Value>,
    /// A gRPC answer's `grpc-status` by name (`OK`, `NOT_FOUND`, `UNAVAILABLE` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<String>,
    /// A gRPC body's messages as analyze compared them: one message of a unary call, or the array
    /// of a stream's messages, each in its proto3 JSON mapping (or by field number without a
    /// descriptor set). Difference paths (`/price/units`, `/2/name`) point into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<serde_json::Value>,
    /// How `messages` were decoded: by the descriptor set, as a message type (`shop.v1.Item`), or
    /// `wire format` (fields by number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded_as: Option<String>,
}

impl ExampleSide {
    /// One side of a pair, its body decoded by its `Content-Encoding` (as received when it cannot
    /// be decoded) and cut at [`BODY_CAP`]; also the bytes of body kept.
    pub fn of(side: &SideRecord) -> (Self, usize) {
        let decoded = crate::encoding::decode_side(side, BODY_CAP as u64).ok();
        let cut_at_cap = decoded.as_ref().is_some_and(|d| d.truncated);
        let raw: &[u8] = match &decoded {
            Some(d) => &d.bytes,
            None => side.body.as_deref().unwrap_or_default(),
        };
        let kept = &raw[..raw.len().min(BODY_CAP)];
        let (body, body_base64) = match std::str::from_utf8(kept) {
            Ok(text) => (Some(text.to_owned()), None),
            // A cut in the middle of a character is still text.
            Err(e) if (cut_at_cap || kept.len() < raw.len()) && e.error_len().is_none() => {
                (Some(String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned()), None)
            }
            Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(kept))),
        };
        let side_out = Self {
            status: side.status,
            error: side.error.clone(),
            content_type: side.header("content-type").map(|h| h.value_lossy().into_owned()),
            latency_ms: side.latency_us.map(|us| us as f64 / 1000.0),
            body: side.body.as_ref().and(body),
            body_base64: side.body.as_ref().and(body_base64),
            truncated: side.body_truncated || cut_at_cap || kept.len() < raw.len(),
            events: None,
            grpc_status: None,
            messages: None,
            decoded_as: None,
        };
        (side_out, kept.len())
    }

    /// The body bytes (decoded from base64 when needed).
    pub fn body_bytes(&self) -> Vec<u8> {
        match (&self.body, &self.body_base64) {
            (Some(t), _) => t.as_bytes().to_vec(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// A difference as shown beside an example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExampleDifference {
    /// `body` or `header`.
    pub location: String,
    /// RFC 6901 pointer, or `header:NAME`.
    pub path: String,
    pub field: String,
    pub kind: String,
    pub severity: Severity,
    pub status: DiffStatus,
}
