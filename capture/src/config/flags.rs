//! What the user typed on the command line, already typed: each flag is read by the same parser as
//! its key in the file, so a bad value fails while the command line is parsed, naming the flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, Method};

use super::setting::Flag;
use super::target::Target;
use super::units::{parse_duration, parse_nonzero_duration, parse_nonzero_size, parse_size};
use super::value::{self, OrNone, SampleKey};

/// The capture agent's flags; every one has a key in the `--config` file, and a flag wins over
/// its key.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Flags {
    /// The service that answers clients (http:// or https:// URL, optional base path).
    #[arg(long, value_name = "URL", value_parser = Flag(Target::parse))]
    pub baseline: Option<Target>,
    /// The service to compare with the baseline; it gets a copy of each captured request.
    #[arg(long, value_name = "URL", value_parser = Flag(Target::parse))]
    pub canary: Option<Target>,
    /// A second instance of the baseline, mirrored too, so analyze can tell noise from change.
    #[arg(long, value_name = "URL", value_parser = Flag(Target::parse))]
    pub secondary: Option<Target>,
    /// Where clients connect [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", value_parser = Flag(value::listen_addr))]
    pub listen: Option<SocketAddr>,
    /// Where /metrics and /healthz are served [default: none].
    #[arg(long, value_name = "ADDR", value_parser = Flag(value::admin_addr))]
    pub admin_listen: Option<OrNone<SocketAddr>>,
    /// Where pair files go (Hive-partitioned by date and hour): a directory, or an object-store
    /// URL (s3://BUCKET/PREFIX, gs://, az://) that closed files are uploaded to from --spool.
    #[arg(long, value_name = "DIR_OR_URL")]
    pub out: Option<PathBuf>,
    /// With an object-store --out: the local directory files wait in until uploaded
    /// [default: <system temp>/shadowdiff-spool/<agent>].
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// With an object-store --out: the most bytes of closed files the spool holds; past it the
    /// oldest not yet uploaded are deleted and counted [default: no limit].
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_nonzero_size))]
    pub max_spool: Option<u64>,
    /// With an object-store --out: how long shutdown keeps uploading before leaving the rest in
    /// the spool [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    pub upload_drain_timeout: Option<Duration>,
    /// With a local --out: delete hour partitions whose pairs are all older than this, e.g. 24h
    /// or 7d (at least 2h) [default: keep everything].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_nonzero_duration))]
    pub retain: Option<Duration>,
    /// TOML file with settings beyond the flags (unknown keys are rejected).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This agent's name in every pair and file name [default: capture-HOSTNAME].
    #[arg(long, value_name = "NAME", value_parser = Flag(value::agent_name))]
    pub agent: Option<String>,
    /// PEM certificate chain: serve clients over TLS (needs --tls-key).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates trusted for https upstreams, beside the built-in roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Share of requests captured, 0 to 1 [default: 1].
    #[arg(long, value_name = "RATE", value_parser = Flag(value::sample_rate))]
    pub sample_rate: Option<f64>,
    /// Sample consistently by this key's value: header:NAME or query:NAME.
    #[arg(long, value_name = "KEY", value_parser = Flag(SampleKey::parse))]
    pub sample_key: Option<SampleKey>,
    /// Capture only paths matching this glob (`*` one segment, `**` any); repeatable.
    #[arg(long, value_name = "GLOB", value_parser = Flag(value::path_pattern))]
    pub include: Vec<String>,
    /// Never capture paths matching this glob; repeatable.
    #[arg(long, value_name = "GLOB", value_parser = Flag(value::path_pattern))]
    pub exclude: Vec<String>,
    /// Methods mirrored to the canary, comma-separated [default: GET,HEAD,OPTIONS].
    // The list is one value: a full path keeps clap from reading `Option<Vec<_>>` as repeatable.
    #[arg(long, value_name = "METHODS", value_parser = Flag(value::methods))]
    pub mirror_methods: Option<std::vec::Vec<Method>>,
    /// Also mirror POSTs to paths matching this glob when they are GraphQL queries (not
    /// mutations or subscriptions); repeatable [default: none]. A misread write runs twice.
    #[arg(long, value_name = "GLOB", value_parser = Flag(value::path_pattern))]
    pub mirror_graphql: Vec<String>,
    /// A persisted GraphQL query sent without its text (by operationName or sha256Hash) that is
    /// known to be read-only, so it is mirrored too; repeatable.
    #[arg(long, value_name = "NAME_OR_HASH", value_parser = Flag(value::nonempty))]
    pub mirror_graphql_persisted: Vec<String>,
    /// Also mirror POSTs to paths matching this glob when they are JSON-RPC calls of read-only
    /// methods (--mirror-jsonrpc-method); repeatable [default: none].
    #[arg(long, value_name = "GLOB", value_parser = Flag(value::path_pattern))]
    pub mirror_jsonrpc: Vec<String>,
    /// A JSON-RPC method that only reads; a call (or every call of a batch) to listed methods is
    /// mirrored on --mirror-jsonrpc paths; repeatable.
    #[arg(long, value_name = "METHOD", value_parser = Flag(value::nonempty))]
    pub mirror_jsonrpc_method: Vec<String>,
    /// Also mirror gRPC calls (POSTs with content-type application/grpc…) to methods whose path
    /// matches this glob, e.g. `/shop.v1.Shop/Get*`; repeatable [default: none]. List only methods
    /// that only read: a mirrored write runs twice.
    #[arg(long, value_name = "GLOB", value_parser = Flag(value::path_pattern))]
    pub mirror_grpc: Vec<String>,
    /// Header added to mirrored requests, valued `canary` or `secondary`; `none` disables
    /// [default: x-shadowdiff-mirror].
    #[arg(long, value_name = "NAME", value_parser = Flag(value::marker_header))]
    pub marker_header: Option<OrNone<HeaderName>>,
    /// How long a mirror may wait for its response head, and then between two pieces of its
    /// body [default: 5s]. A whole body may take longer, up to --max-body-duration.
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    pub mirror_timeout: Option<Duration>,
    /// Mirrors running at once; past it, pairs are recorded with canary_error=skipped
    /// [default: 1024].
    #[arg(long, value_name = "N", value_parser = Flag(parse_nonzero_size))]
    pub max_in_flight_mirrors: Option<u64>,
    /// How long the baseline may take to send its response head [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    pub baseline_timeout: Option<Duration>,
    /// Connect timeout for every upstream [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    pub connect_timeout: Option<Duration>,
    /// Do not ask the baseline for its gRPC descriptors. By default, on the first gRPC call,
    /// capture asks the baseline's server reflection once and stores the descriptors in every
    /// pair file it closes after, so analyze diffs messages by field name without a descriptor
    /// set (a baseline without reflection changes nothing).
    #[arg(long)]
    pub no_grpc_reflection: bool,
    /// Request bodies up to this size are read, recorded and mirrored; larger ones go to the
    /// baseline only [default: 1MiB].
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_size))]
    pub max_request_body: Option<u64>,
    /// Response bytes recorded per side; the rest is streamed but not kept [default: 1MiB].
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_size))]
    pub max_response_body: Option<u64>,
    /// How long a response body is recorded, from the request; a longer one (an event stream,
    /// a long poll) is cut there and recorded truncated, while the client's stream from the
    /// baseline goes on [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_nonzero_duration))]
    pub max_body_duration: Option<Duration>,
    /// The most content decoded from one compressed (gzip, deflate, br, zstd) body to apply
    /// --redact-json to it (a larger one is withheld) or to read a POST on a --mirror-graphql or
    /// --mirror-jsonrpc path (a larger one is not mirrored) [default: 8MiB].
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_nonzero_size))]
    pub max_decoded_body: Option<u64>,
    /// Client connections open at once; one past it is closed unread [default: 10000].
    #[arg(long, value_name = "N", value_parser = Flag(parse_nonzero_size))]
    pub max_connections: Option<u64>,
    /// The most bytes of a request's headers (HTTP/1.1 and HTTP/2); larger ones are refused
    /// [default: 64KiB].
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_nonzero_size))]
    pub max_header_size: Option<u64>,
    /// How long a client may take to send a request's headers, or to start its next request
    /// on a kept-alive connection, before the connection is closed [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_nonzero_duration))]
    pub header_read_timeout: Option<Duration>,
    /// How long a client connection may stay open with no request in flight (one that never
    /// sends a byte, a kept-alive connection between requests, an HTTP/2 connection with no
    /// open stream) before it is closed [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_nonzero_duration))]
    pub idle_timeout: Option<Duration>,
    /// HTTP/2 streams open at once on one client connection [default: 256].
    #[arg(long, value_name = "N", value_parser = Flag(parse_nonzero_size))]
    pub max_concurrent_streams: Option<u64>,
    /// How long new connections from an address (an IPv6 /64) wait, unread, after one of its
    /// HTTP/2 connections was closed for abuse (rapid reset, a CONTINUATION flood): a flood of
    /// such connections slows to one per penalty, while the address's open connections are
    /// served as before. 0 turns it off [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    pub abuse_penalty: Option<Duration>,
    /// Pairs waiting for the writer before new ones are dropped and counted [default: 16384].
    #[arg(long, value_name = "N", value_parser = Flag(parse_nonzero_size))]
    pub queue: Option<u64>,
    /// Approximate memory held by pairs waiting for the writer before new ones are dropped and
    /// counted [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_nonzero_size))]
    pub queue_bytes: Option<u64>,
    /// Close a pair file after this many rows [default: 1000000].
    #[arg(long, value_name = "N", value_parser = Flag(parse_nonzero_size))]
    pub rotate_rows: Option<u64>,
    /// Close a pair file at this size [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_nonzero_size))]
    pub rotate_bytes: Option<u64>,
    /// Close a pair file this long after it was opened [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_nonzero_duration))]
    pub rotate_age: Option<Duration>,
    /// Also redact this header (authorization, cookie, set-cookie, proxy-authorization and
    /// x-api-key always are); repeatable.
    #[arg(long = "redact-header", value_name = "NAME", value_parser = Flag(value::header_name))]
    pub redact_headers: Vec<HeaderName>,
    /// Redact this query parameter's value; repeatable.
    #[arg(long, value_name = "NAME", value_parser = Flag(value::query_param))]
    pub redact_query: Vec<String>,
    /// Redact this JSON body field (a JSON Pointer; `*` matches any key or index); repeatable.
    #[arg(long, value_name = "POINTER", value_parser = Flag(value::json_path))]
    pub redact_json: Vec<String>,
    /// Replace redacted values with an HMAC-SHA256 token keyed by this file's content, so equal
    /// secrets stay comparable.
    #[arg(long, value_name = "FILE")]
    pub hash_key_file: Option<PathBuf>,
    /// As --hash-key-file, with the key in this environment variable.
    #[arg(long, value_name = "VAR")]
    pub hash_key_env: Option<String>,
    /// How long shutdown waits for in-flight requests and mirrors [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    pub drain_timeout: Option<Duration>,
}
