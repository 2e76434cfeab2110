//! The values of capture's settings other than durations and sizes ([`super::units`]), each read
//! by one function that its flag and its key share ([`super::setting`]).

use std::net::SocketAddr;

use http::{HeaderName, Method};

use super::setting::Parse;
use crate::redact::JsonPath;
use crate::select::PathPattern;

/// A setting that `none` (or an empty value) turns off: `--admin-listen none`,
/// `--marker-header none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrNone<T>(pub Option<T>);

fn or_none<T>(text: &str, parse: Parse<T>) -> Result<OrNone<T>, String> {
    match text.trim() {
        "" | "none" => Ok(OrNone(None)),
        _ => parse(text).map(|v| OrNone(Some(v))),
    }
}

/// `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`, or `:8080` for every interface.
pub fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    let s = text.trim();
    let full = if s.starts_with(':') { format!("0.0.0.0{s}") } else { s.to_owned() };
    let full = full.replacen("localhost:", "127.0.0.1:", 1);
    full.parse().map_err(|_| format!("must be an address such as 127.0.0.1:8080 or :8080, not {s}"))
}

/// As [`listen_addr`], or `none`.
pub fn admin_addr(text: &str) -> Result<OrNone<SocketAddr>, String> {
    or_none(text, listen_addr)
}

/// The agent's name, written into every pair and file name.
pub fn agent_name(text: &str) -> Result<String, String> {
    if text.trim().is_empty() { Err("must not be empty".into()) } else { Ok(text.to_owned()) }
}

pub fn header_name(text: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(text.trim().as_bytes()).map_err(|_| format!("is not a valid header name: {text}"))
}

/// As [`header_name`], or `none`.
pub fn marker_header(text: &str) -> Result<OrNone<HeaderName>, String> {
    or_none(text, header_name)
}

/// Comma-separated methods (`GET,HEAD,OPTIONS`); a key's list is read joined by commas.
pub fn methods(text: &str) -> Result<Vec<Method>, String> {
    let mut out = Vec::new();
    for m in text.split(',') {
        let m = m.trim().to_ascii_uppercase();
        if m.is_empty() {
            continue;
        }
        let method =
            Method::from_bytes(m.as_bytes()).map_err(|_| format!("lists `{m}`, which is not an HTTP method"))?;
        if method == Method::CONNECT {
            return Err("cannot list CONNECT: the capture agent is not a forward proxy".into());
        }
        if !out.contains(&method) {
            out.push(method);
        }
    }
    if out.is_empty() {
        return Err("must list at least one method, such as GET,HEAD,OPTIONS".into());
    }
    Ok(out)
}

/// The share of requests captured.
pub fn sample_rate(text: &str) -> Result<f64, String> {
    let x: f64 = text.trim().parse().map_err(|_| format!("must be a number between 0 and 1, not {text}"))?;
    if !(0.0..=1.0).contains(&x) {
        return Err(format!("must be between 0 and 1, not {text}"));
    }
    Ok(x)
}

/// Where the consistent-sampling key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleKey {
    Header(HeaderName),
    Query(String),
}

impl SampleKey {
    /// `header:NAME` or `query:NAME`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("header", name)) => HeaderName::from_bytes(name.trim().as_bytes())
                .map(SampleKey::Header)
                .map_err(|_| format!("names an invalid header: {name}")),
            Some(("query", name)) if !name.is_empty() => Ok(SampleKey::Query(name.to_owned())),
            _ => Err(format!("must be header:NAME or query:NAME, not {s}")),
        }
    }
}

impl std::fmt::Display for SampleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SampleKey::Header(h) => write!(f, "header:{h}"),
            SampleKey::Query(q) => write!(f, "query:{q}"),
        }
    }
}

/// A path glob, checked; kept as written, for the summary in every file.
pub fn path_pattern(text: &str) -> Result<String, String> {
    PathPattern::new(text).map(|_| text.to_owned())
}

/// A name that must not be empty (a JSON-RPC method, a persisted query's name or hash).
pub fn nonempty(text: &str) -> Result<String, String> {
    if text.trim().is_empty() { Err("must not be empty".into()) } else { Ok(text.trim().to_owned()) }
}

pub fn query_param(text: &str) -> Result<String, String> {
    if text.is_empty() { Err("must name a query parameter, not be empty".into()) } else { Ok(text.to_owned()) }
}

/// A JSON Pointer, checked; kept as written.
pub fn json_path(text: &str) -> Result<String, String> {
    JsonPath::parse(text).map(|_| text.to_owned())
}

/// How redacted values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedactMode {
    /// `REDACTED`.
    Mask,
    /// A keyed-hash token; needs a key.
    Hash,
}

impl RedactMode {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "mask" => Ok(Self::Mask),
            "hash" => Ok(Self::Hash),
            other => Err(format!("must be `mask` or `hash`, not `{other}`")),
        }
    }
}

/// The Parquet writer's zstd level.
pub fn zstd_level(text: &str) -> Result<i32, String> {
    match super::units::parse_size(text)? {
        n @ 1..=22 => Ok(n as i32),
        n => Err(format!("must be between 1 and 22, not {n}")),
    }
}
