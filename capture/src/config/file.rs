//! The TOML configuration file, typed: each key is read by the same parser as its flag, unknown
//! keys are rejected, and every error is one sentence naming the key (a bad value) or the line (a
//! syntax error or an unknown key). `docs/capture.md` documents each key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, Method};
use serde::{Deserialize, Deserializer};

use super::setting::{key, keys};
use super::target::Target;
use super::units::{parse_duration, parse_nonzero_duration, parse_nonzero_size, parse_size};
use super::value::{self, OrNone, RedactMode, SampleKey};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default, deserialize_with = "listen_addr")]
    pub listen: Option<SocketAddr>,
    #[serde(default, deserialize_with = "admin_addr")]
    pub admin_listen: Option<OrNone<SocketAddr>>,
    #[serde(default, deserialize_with = "target")]
    pub baseline: Option<Target>,
    #[serde(default, deserialize_with = "target")]
    pub canary: Option<Target>,
    #[serde(default, deserialize_with = "target")]
    pub secondary: Option<Target>,
    pub out: Option<PathBuf>,
    #[serde(default, deserialize_with = "agent_name")]
    pub agent: Option<String>,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub upstream: UpstreamSection,
    #[serde(default)]
    pub mirror: MirrorSection,
    #[serde(default)]
    pub sampling: SamplingSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub recorder: RecorderSection,
    #[serde(default)]
    pub redact: RedactSection,
    #[serde(default)]
    pub shutdown: ShutdownSection,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub connect_timeout: Option<Duration>,
    pub ca_file: Option<PathBuf>,
    /// Ask the baseline for its gRPC descriptors by server reflection (default true).
    pub grpc_reflection: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSection {
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub max_in_flight: Option<u64>,
    #[serde(default, deserialize_with = "methods")]
    pub methods: Option<Vec<Method>>,
    #[serde(default, deserialize_with = "marker_header")]
    pub marker_header: Option<OrNone<HeaderName>>,
    #[serde(default, deserialize_with = "path_patterns")]
    pub graphql_paths: Vec<String>,
    #[serde(default, deserialize_with = "nonempty_list")]
    pub graphql_persisted: Vec<String>,
    #[serde(default, deserialize_with = "path_patterns")]
    pub jsonrpc_paths: Vec<String>,
    #[serde(default, deserialize_with = "nonempty_list")]
    pub jsonrpc_methods: Vec<String>,
    #[serde(default, deserialize_with = "path_patterns")]
    pub grpc_methods: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSection {
    #[serde(default, deserialize_with = "sample_rate")]
    pub rate: Option<f64>,
    #[serde(default, deserialize_with = "sample_key")]
    pub key: Option<SampleKey>,
    #[serde(default, deserialize_with = "path_patterns")]
    pub include: Vec<String>,
    #[serde(default, deserialize_with = "path_patterns")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    #[serde(default, deserialize_with = "size")]
    pub max_request_body: Option<u64>,
    #[serde(default, deserialize_with = "size")]
    pub max_response_body: Option<u64>,
    #[serde(default, deserialize_with = "nonzero_duration")]
    pub max_body_duration: Option<Duration>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub max_decoded_body: Option<u64>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub max_connections: Option<u64>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub max_header_size: Option<u64>,
    #[serde(default, deserialize_with = "nonzero_duration")]
    pub header_read_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "nonzero_duration")]
    pub idle_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub max_concurrent_streams: Option<u64>,
    #[serde(default, deserialize_with = "duration")]
    pub abuse_penalty: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderSection {
    #[serde(default, deserialize_with = "nonzero_size")]
    pub queue: Option<u64>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub queue_bytes: Option<u64>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub rotate_rows: Option<u64>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub rotate_bytes: Option<u64>,
    #[serde(default, deserialize_with = "nonzero_duration")]
    pub rotate_age: Option<Duration>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub row_group_rows: Option<u64>,
    #[serde(default, deserialize_with = "zstd_level")]
    pub zstd_level: Option<i32>,
    pub spool: Option<PathBuf>,
    #[serde(default, deserialize_with = "nonzero_size")]
    pub max_spool: Option<u64>,
    #[serde(default, deserialize_with = "duration")]
    pub upload_drain_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "nonzero_duration")]
    pub retain: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactSection {
    #[serde(default, deserialize_with = "header_names")]
    pub headers: Vec<HeaderName>,
    #[serde(default, deserialize_with = "query_params")]
    pub query_params: Vec<String>,
    #[serde(default, deserialize_with = "json_paths")]
    pub json_paths: Vec<String>,
    /// `mask` (default) or `hash`.
    #[serde(default, deserialize_with = "redact_mode")]
    pub mode: Option<RedactMode>,
    pub key_file: Option<PathBuf>,
    pub key_env: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSection {
    #[serde(default, deserialize_with = "duration")]
    pub drain_timeout: Option<Duration>,
}

impl FileConfig {
    /// Read and parse a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::BadConfig {
            setting: format!("--config {}", path.display()),
            message: format!("cannot be read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parse the text of the file at `path`. A bad value names its key (`` `mirror.timeout` in
    /// capture.toml must be a duration… ``); syntax errors, unknown keys and wrong types name the
    /// line (`capture.toml line 2: unknown field `rat`…`).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let document = toml::Deserializer::parse(text).map_err(|e| at_line(text, path, &e))?;
        serde_path_to_error::deserialize(document).map_err(|e| {
            let key = e.path().to_string();
            let e = e.into_inner();
            if is_about_the_value(&key, e.message()) {
                Error::BadConfig { setting: format!("`{key}` in {}", path.display()), message: e.message().to_owned() }
            } else {
                at_line(text, path, &e)
            }
        })
    }
}

/// True when the message is one of the value parsers' predicates, which read after the key's
/// name. Serde's own messages (`unknown field…`, `invalid type…`, `missing field…`, `duplicate
/// field…`, `unknown variant…`) describe the document and read after the file and line.
fn is_about_the_value(key: &str, message: &str) -> bool {
    let serde_own = ["unknown ", "invalid ", "missing ", "duplicate "];
    !key.is_empty() && key != "." && !serde_own.iter().any(|p| message.starts_with(p))
}

fn at_line(text: &str, path: &Path, e: &toml::de::Error) -> Error {
    let line = e.span().map(|s| text.as_bytes()[..s.start.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1);
    Error::BadConfig {
        setting: match line {
            Some(l) => format!("{} line {l}:", path.display()),
            None => format!("{}:", path.display()),
        },
        message: e.message().trim().trim_end_matches('.').replace('\n', " "),
    }
}

// `deserialize_with` takes a function's path, not an expression: one function per value parser.

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    key(d, parse_duration)
}

fn nonzero_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    key(d, parse_nonzero_duration)
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    key(d, parse_size)
}

fn nonzero_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    key(d, parse_nonzero_size)
}

fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    key(d, value::listen_addr)
}

fn admin_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OrNone<SocketAddr>>, D::Error> {
    key(d, value::admin_addr)
}

fn target<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Target>, D::Error> {
    key(d, Target::parse)
}

fn agent_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    key(d, value::agent_name)
}

fn methods<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Method>>, D::Error> {
    // The same parser as the flag's comma-separated list.
    keys(d, |t| Ok(t.to_owned()))
        .and_then(|list: Vec<String>| value::methods(&list.join(",")).map_err(serde::de::Error::custom))
        .map(Some)
}

fn marker_header<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OrNone<HeaderName>>, D::Error> {
    key(d, value::marker_header)
}

fn sample_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    key(d, value::sample_rate)
}

fn sample_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SampleKey>, D::Error> {
    key(d, SampleKey::parse)
}

fn path_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    keys(d, value::path_pattern)
}

fn nonempty_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    keys(d, value::nonempty)
}

fn zstd_level<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    key(d, value::zstd_level)
}

fn header_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HeaderName>, D::Error> {
    keys(d, value::header_name)
}

fn query_params<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    keys(d, value::query_param)
}

fn json_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    keys(d, value::json_path)
}

fn redact_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RedactMode>, D::Error> {
    key(d, RedactMode::parse)
}
