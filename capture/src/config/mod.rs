//! The capture agent's configuration in two stages: what the user gave ([`Flags`] from the
//! command line, [`FileConfig`] from a TOML file with unknown keys rejected) and the validated,
//! resolved [`Config`] that the rest of the agent sees. A flag wins over the same key in the file;
//! list settings for redaction add to the file's (more redaction is never less safe).
//!
//! A setting is spelled in three places: its typed field in [`Flags`] (with its flag), its key in
//! [`FileConfig`], and one line of the resolver. Flag and key share one value parser ([`units`] for
//! durations and sizes, [`value`] for the rest), so a value reads the same wherever it is written,
//! and every error is one sentence naming the flag (`--sample-rate`) or the key and file
//! (`` `sampling.rate` in capture.toml ``) at fault.

mod file;
mod flags;
mod resolve;
pub mod setting;
mod target;
pub mod units;
pub mod value;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, Method};
use serde_json::json;

pub use file::{
    FileConfig, LimitsSection, MirrorSection, RecorderSection, RedactSection, SamplingSection, ShutdownSection,
    TlsSection, UpstreamSection,
};
pub use flags::Flags;
pub use setting::Flag;
pub use target::{Protocol, Target};
pub use units::{parse_duration, parse_nonzero_duration, parse_nonzero_size, parse_size};
pub use value::{OrNone, RedactMode, SampleKey};

use crate::error::{Error, Result};
use crate::redact::RedactRules;

/// Where the flag's default listen address points.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The header added to mirrored requests, with the side's name as its value.
pub const DEFAULT_MARKER_HEADER: &str = "x-shadowdiff-mirror";
/// Methods mirrored by default: the idempotent reads.
pub const DEFAULT_MIRROR_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How the writer rotates files (see [`shadowdiff_format::WriterConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderSettings {
    /// Pairs waiting for the writer before new ones are dropped (and counted).
    pub queue: usize,
    /// Approximate bytes of pairs waiting for the writer before new ones are dropped: bounds
    /// memory when bodies are large.
    pub queue_bytes: u64,
    pub rotate_rows: u64,
    pub rotate_bytes: u64,
    pub rotate_age: Duration,
    pub row_group_rows: usize,
    pub zstd_level: i32,
}

impl Default for RecorderSettings {
    fn default() -> Self {
        Self {
            queue: 16_384,
            queue_bytes: 256 * 1024 * 1024,
            rotate_rows: 1_000_000,
            rotate_bytes: 256 * 1024 * 1024,
            rotate_age: Duration::from_secs(300),
            row_group_rows: 4096,
            zstd_level: 1,
        }
    }
}

/// How long a response body is recorded when nothing else is configured.
pub const DEFAULT_MAX_BODY_DURATION: Duration = Duration::from_secs(30);

/// POSTs mirrored because their body shows they only read (off unless paths are listed): the
/// GraphQL `query` operations and the JSON-RPC calls of listed methods on these paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOnlyPosts {
    /// Path globs where a POST is read as a GraphQL request.
    pub graphql_paths: Vec<String>,
    /// Persisted queries sent without their text, by operationName or sha256Hash, that are
    /// known to be queries.
    pub graphql_persisted: Vec<String>,
    /// Path globs where a POST is read as a JSON-RPC call or batch.
    pub jsonrpc_paths: Vec<String>,
    /// JSON-RPC methods that only read.
    pub jsonrpc_methods: Vec<String>,
    /// Path globs of gRPC methods (`/package.Service/Method`) that only read: their calls are
    /// mirrored.
    pub grpc_methods: Vec<String>,
}

impl ReadOnlyPosts {
    pub fn is_off(&self) -> bool {
        self.graphql_paths.is_empty() && self.jsonrpc_paths.is_empty() && self.grpc_methods.is_empty()
    }
}

/// The resolved configuration of one capture agent. Code past the CLI sees only this.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub baseline: Target,
    pub canary: Target,
    pub secondary: Option<Target>,
    /// The directory the writer writes to: `--out`, or the spool when `--out` is an object-store
    /// URL (then `upload` says where files go).
    pub out: PathBuf,
    /// Closed files are uploaded from the spool to an object store.
    pub upload: Option<shadowdiff_format::store::UploadSettings>,
    /// With a local `--out`: hour partitions older than this are deleted.
    pub retain: Option<Duration>,
    pub agent: String,
    pub tls: Option<TlsFiles>,
    /// Extra CA certificates (PEM) trusted for https upstreams, beside the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// On the first gRPC call, ask the baseline for its descriptors by server reflection and
    /// store them in the pair files' metadata.
    pub grpc_reflection: bool,
    /// How long the baseline may take to send its response head.
    pub baseline_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long a mirror (canary or secondary) may wait for its response head, and then for
    /// each piece of its body.
    pub mirror_timeout: Duration,
    pub max_in_flight_mirrors: usize,
    pub mirror_methods: Vec<Method>,
    pub read_only_posts: ReadOnlyPosts,
    pub marker_header: Option<HeaderName>,
    pub sample_rate: f64,
    pub sample_key: Option<SampleKey>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_request_body: usize,
    pub max_response_body: usize,
    /// How long any side's response body is recorded, from the request; past it the recorded
    /// body is cut and marked truncated (the client's stream is never cut).
    pub max_body_duration: Duration,
    pub recorder: RecorderSettings,
    pub redact: RedactRules,
    pub drain_timeout: Duration,
    pub listener: crate::server::ListenerLimits,
}

impl Config {
    /// A configuration with every default, for tests and embedding (`shadowdiff demo`).
    pub fn new(baseline: &str, canary: &str, out: impl Into<PathBuf>) -> Result<Self> {
        let target = |setting: &str, url: &str| {
            Target::parse(url).map_err(|message| Error::BadConfig { setting: setting.to_owned(), message })
        };
        let flags = Flags {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            baseline: Some(target("--baseline", baseline)?),
            canary: Some(target("--canary", canary)?),
            out: Some(out.into()),
            agent: Some("capture".into()),
            ..Flags::default()
        };
        Self::resolve(flags)
    }

    /// What goes into every pair file's metadata: targets, selection, limits and redaction rules.
    /// Never a secret: the hash key is described by where it came from, not by its value.
    pub fn summary(&self) -> serde_json::Value {
        json!({
            "agent": self.agent,
            "listen": self.listen.to_string(),
            "tls": self.tls.is_some(),
            "baseline": self.baseline.to_string(),
            "canary": self.canary.to_string(),
            "secondary": self.secondary.as_ref().map(ToString::to_string),
            "grpc_reflection": self.grpc_reflection,
            "sampling": {
                "rate": self.sample_rate,
                "key": self.sample_key.as_ref().map(ToString::to_string),
                "include": self.include,
                "exclude": self.exclude,
            },
            "mirror": {
                "methods": self.mirror_methods.iter().map(Method::as_str).collect::<Vec<_>>(),
                "timeout_ms": self.mirror_timeout.as_millis() as u64,
                "max_in_flight": self.max_in_flight_mirrors,
                "marker_header": self.marker_header.as_ref().map(HeaderName::as_str),
                "graphql_paths": self.read_only_posts.graphql_paths,
                "graphql_persisted": self.read_only_posts.graphql_persisted,
                "jsonrpc_paths": self.read_only_posts.jsonrpc_paths,
                "jsonrpc_methods": self.read_only_posts.jsonrpc_methods,
                "grpc_methods": self.read_only_posts.grpc_methods,
            },
            "limits": {
                "max_request_body": self.max_request_body,
                "max_response_body": self.max_response_body,
                "baseline_timeout_ms": self.baseline_timeout.as_millis() as u64,
                "max_body_duration_ms": self.max_body_duration.as_millis() as u64,
            },
            "redact": self.redact.summary(),
            "recorder": {
                "queue": self.recorder.queue,
                "queue_bytes": self.recorder.queue_bytes,
                "rotate_rows": self.recorder.rotate_rows,
                "rotate_bytes": self.recorder.rotate_bytes,
                "rotate_age_s": self.recorder.rotate_age.as_secs_f64(),
                "out": self.upload.as_ref().map_or_else(|| self.out.display().to_string(), |u| u.url.to_string()),
                "max_spool": self.upload.as_ref().and_then(|u| u.max_spool),
                "retain_s": self.retain.map(|d| d.as_secs()),
            },
        })
    }
}

#[cfg(test)]
mod tests;
