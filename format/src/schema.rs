//! The pair format's Arrow schema: every column name, the schema itself, and the Parquet
//! key-value metadata keys. Nothing outside this module spells a column name.
//!
//! One row is one client request with every response it got. Columns are flat and prefixed by
//! side so that DuckDB, polars and pandas read them without unnesting. `docs/schema.md` documents
//! each column; keep the two in step.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Version of the pair format written into every file's metadata. Bump it when a column is added,
/// removed or changes meaning; readers refuse files with a newer version.
///
/// History: 1 — the first format; 2 — `{side}_trailers` (HTTP trailers, gRPC's `grpc-status`).
/// Files of version 1 still read: their trailers columns read as empty lists.
pub const SCHEMA_VERSION: u32 = 2;

pub const PAIR_ID: &str = "pair_id";
pub const CAPTURED_AT: &str = "captured_at";
pub const AGENT: &str = "agent";
pub const METHOD: &str = "method";
pub const PATH: &str = "path";
pub const QUERY: &str = "query";
pub const REQUEST_HEADERS: &str = "request_headers";
pub const REQUEST_BODY: &str = "request_body";
pub const REQUEST_BODY_TRUNCATED: &str = "request_body_truncated";

/// Field names inside a header list entry.
pub const HEADER_NAME: &str = "name";
pub const HEADER_VALUE: &str = "value";

/// The time zone of `captured_at`.
pub const TIMEZONE: &str = "UTC";

/// Column names of one response side. The three sides share a shape and differ only in prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideColumns {
    pub status: &'static str,
    pub headers: &'static str,
    pub body: &'static str,
    pub body_truncated: &'static str,
    pub latency_us: &'static str,
    pub ttfb_us: &'static str,
    pub error: &'static str,
    /// HTTP trailers (gRPC's `grpc-status` and `grpc-message`), in order; since version 2.
    pub trailers: &'static str,
}

pub const BASELINE: SideColumns = SideColumns {
    status: "baseline_status",
    headers: "baseline_headers",
    body: "baseline_body",
    body_truncated: "baseline_body_truncated",
    latency_us: "baseline_latency_us",
    ttfb_us: "baseline_ttfb_us",
    error: "baseline_error",
    trailers: "baseline_trailers",
};

pub const CANARY: SideColumns = SideColumns {
    status: "canary_status",
    headers: "canary_headers",
    body: "canary_body",
    body_truncated: "canary_body_truncated",
    latency_us: "canary_latency_us",
    ttfb_us: "canary_ttfb_us",
    error: "canary_error",
    trailers: "canary_trailers",
};

pub const SECONDARY: SideColumns = SideColumns {
    status: "secondary_status",
    headers: "secondary_headers",
    body: "secondary_body",
    body_truncated: "secondary_body_truncated",
    latency_us: "secondary_latency_us",
    ttfb_us: "secondary_ttfb_us",
    error: "secondary_error",
    trailers: "secondary_trailers",
};

/// A response side of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Baseline,
    Canary,
    Secondary,
}

impl Side {
    pub const ALL: [Side; 3] = [Side::Baseline, Side::Canary, Side::Secondary];

    pub const fn columns(self) -> &'static SideColumns {
        match self {
            Side::Baseline => &BASELINE,
            Side::Canary => &CANARY,
            Side::Secondary => &SECONDARY,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Side::Baseline => "baseline",
            Side::Canary => "canary",
            Side::Secondary => "secondary",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Values of the `{side}_error` columns. Free text is allowed (a newer agent may add kinds);
/// these are the kinds shadowdiff itself writes.
pub mod error_kind {
    /// The side did not answer within its timeout.
    pub const TIMEOUT: &str = "timeout";
    /// No connection could be made.
    pub const CONNECT: &str = "connect";
    /// The connection was closed or reset before the response was complete.
    pub const RESET: &str = "reset";
    /// The side answered with something that is not valid HTTP.
    pub const PROTOCOL: &str = "protocol";
    /// The response body exceeded a hard limit and was abandoned.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// The side was deliberately not called (sampling bound, body cap, method filter).
    pub const SKIPPED: &str = "skipped";
    /// Anything else; the agent's log has the detail.
    pub const OTHER: &str = "other";
}

/// Parquet key-value metadata keys.
pub mod meta {
    /// The pair format version, a decimal integer.
    pub const SCHEMA_VERSION: &str = "shadowdiff.schema_version";
    /// The agent (capture agent or replay run) that wrote the file.
    pub const AGENT: &str = "shadowdiff.agent";
    /// A ULID naming one writer instance; files of one run share it.
    pub const RUN_ID: &str = "shadowdiff.run_id";
    /// The sequence number of the file within its run, from 0.
    pub const FILE_SEQ: &str = "shadowdiff.file_seq";
    /// RFC 3339 time the file was opened and closed.
    pub const OPENED_AT: &str = "shadowdiff.opened_at";
    pub const CLOSED_AT: &str = "shadowdiff.closed_at";
    /// JSON object: the writer's configuration summary (targets, sample rate, redaction rules).
    /// Never secrets.
    pub const CONFIG: &str = "shadowdiff.config";
    /// JSON object of cumulative counters (name → integer) at the time the file was closed.
    pub const COUNTERS: &str = "shadowdiff.counters";
    /// `measured` when every side was called by the writing run, `recorded` when the baseline
    /// side was copied from earlier pair files (replay's canary-only mode).
    pub const BASELINE_ORIGIN: &str = "shadowdiff.baseline_origin";
    /// The version of shadowdiff that wrote the file.
    pub const WRITER_VERSION: &str = "shadowdiff.writer_version";
    /// The baseline's gRPC descriptors, as capture learnt them by server reflection: a protobuf
    /// `FileDescriptorSet` in standard base64. Absent when no gRPC call was seen, or the baseline
    /// offers no reflection. analyze decodes the file's gRPC messages by it when it is given no
    /// descriptor set.
    pub const GRPC_DESCRIPTORS: &str = "shadowdiff.grpc.descriptor_set";
    /// Where [`GRPC_DESCRIPTORS`] came from (`reflection of the baseline http://…`).
    pub const GRPC_DESCRIPTORS_FROM: &str = "shadowdiff.grpc.descriptor_set_from";
}

/// The type of a header list: `list<struct<name: utf8, value: binary>>`. Values are binary
/// because HTTP header values need not be UTF-8.
pub fn headers_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Struct(header_fields()), false)))
}

pub fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new(HEADER_NAME, DataType::Utf8, false),
        Field::new(HEADER_VALUE, DataType::Binary, false),
    ])
}

fn side_fields(c: &SideColumns) -> [Field; 8] {
    [
        Field::new(c.status, DataType::UInt16, true),
        Field::new(c.headers, headers_type(), false),
        Field::new(c.body, DataType::Binary, true),
        Field::new(c.body_truncated, DataType::Boolean, false),
        Field::new(c.latency_us, DataType::UInt64, true),
        Field::new(c.ttfb_us, DataType::UInt64, true),
        Field::new(c.error, DataType::Utf8, true),
        Field::new(c.trailers, headers_type(), false),
    ]
}

/// The pair schema, in column order.
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new(PAIR_ID, DataType::Utf8, false),
        Field::new(CAPTURED_AT, DataType::Timestamp(TimeUnit::Microsecond, Some(TIMEZONE.into())), false),
        Field::new(AGENT, DataType::Utf8, false),
        Field::new(METHOD, DataType::Utf8, false),
        Field::new(PATH, DataType::Utf8, false),
        Field::new(QUERY, DataType::Utf8, true),
        Field::new(REQUEST_HEADERS, headers_type(), false),
        Field::new(REQUEST_BODY, DataType::Binary, true),
        Field::new(REQUEST_BODY_TRUNCATED, DataType::Boolean, false),
    ];
    for side in Side::ALL {
        fields.extend(side_fields(side.columns()));
    }
    Arc::new(Schema::new(fields))
});

/// Columns added after version 1: a file written before them lacks them, and they read as empty
/// lists (no trailers).
pub fn added_columns() -> [&'static str; 3] {
    [BASELINE.trailers, CANARY.trailers, SECONDARY.trailers]
}

/// Columns holding bodies: large, unique per row, so the writer disables dictionaries and
/// statistics for them.
pub fn body_columns() -> [&'static str; 4] {
    [REQUEST_BODY, BASELINE.body, CANARY.body, SECONDARY.body]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_unique_and_prefixed() {
        let names: Vec<&str> = SCHEMA.fields().iter().map(|f| f.name().as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len());
        assert_eq!(names.len(), 9 + 3 * 8);
        for side in Side::ALL {
            let c = side.columns();
            for col in [c.status, c.headers, c.body, c.body_truncated, c.latency_us, c.ttfb_us, c.error, c.trailers] {
                assert!(col.starts_with(side.name()), "{col} lacks the {side} prefix");
                assert!(SCHEMA.field_with_name(col).is_ok());
            }
        }
    }
}
