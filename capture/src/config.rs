//! The capture agent's configuration in two stages: what the user gave ([`Flags`] from the
//! command line, [`FileConfig`] from a TOML file with unknown keys rejected) and the validated,
//! resolved [`Config`] that the rest of the agent sees. A flag wins over the same key in the file;
//! list settings for redaction add to the file's (more redaction is never less safe).
//!
//! Every error is one sentence naming the flag (`--sample-rate`) or the key and file
//! (`sampling.rate in capture.toml`) at fault.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, Method, Uri};
use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::redact::{DEFAULT_HEADERS, HashKey, RedactRules};

/// Where the flag's default listen address points.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The header added to mirrored requests, with the side's name as its value.
pub const DEFAULT_MARKER_HEADER: &str = "x-shadowdiff-mirror";
/// Methods mirrored by default: the idempotent reads.
pub const DEFAULT_MIRROR_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

/// What the user typed on the command line: every value still a string, so that parsing and
/// its errors are the same whether a value came from a flag or from the file.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub baseline: Option<String>,
    pub canary: Option<String>,
    pub secondary: Option<String>,
    pub out: Option<PathBuf>,
    pub agent: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub baseline_timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub mirror_timeout: Option<String>,
    pub max_in_flight_mirrors: Option<String>,
    pub mirror_methods: Option<String>,
    pub marker_header: Option<String>,
    pub sample_rate: Option<String>,
    pub sample_key: Option<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_request_body: Option<String>,
    pub max_response_body: Option<String>,
    pub queue: Option<String>,
    pub queue_bytes: Option<String>,
    pub rotate_rows: Option<String>,
    pub rotate_bytes: Option<String>,
    pub rotate_age: Option<String>,
    pub redact_headers: Vec<String>,
    pub redact_query: Vec<String>,
    pub redact_json: Vec<String>,
    pub hash_key_file: Option<PathBuf>,
    pub hash_key_env: Option<String>,
    pub drain_timeout: Option<String>,
}

/// A number or a string with a unit (`"5s"`, `"1MiB"`), as TOML allows both.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(u64),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// The TOML configuration file. Every key is optional; `docs/capture.md` documents each.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub baseline: Option<String>,
    pub canary: Option<String>,
    pub secondary: Option<String>,
    pub out: Option<PathBuf>,
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
    pub timeout: Option<Scalar>,
    pub connect_timeout: Option<Scalar>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSection {
    pub timeout: Option<Scalar>,
    pub max_in_flight: Option<Scalar>,
    pub methods: Option<Vec<String>>,
    pub marker_header: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSection {
    pub rate: Option<Scalar>,
    pub key: Option<String>,
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_request_body: Option<Scalar>,
    pub max_response_body: Option<Scalar>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderSection {
    pub queue: Option<Scalar>,
    pub queue_bytes: Option<Scalar>,
    pub rotate_rows: Option<Scalar>,
    pub rotate_bytes: Option<Scalar>,
    pub rotate_age: Option<Scalar>,
    pub row_group_rows: Option<Scalar>,
    pub zstd_level: Option<Scalar>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactSection {
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub query_params: Vec<String>,
    #[serde(default)]
    pub json_paths: Vec<String>,
    /// `mask` (default) or `hash`.
    pub mode: Option<String>,
    pub key_file: Option<PathBuf>,
    pub key_env: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSection {
    pub drain_timeout: Option<Scalar>,
}

impl FileConfig {
    /// Read and parse a TOML file. Unknown keys, wrong types and syntax errors name the key
    /// and the line.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::BadConfig {
            setting: format!("--config {}", path.display()),
            message: format!("cannot be read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text.as_bytes()[..s.start.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1);
            let message = e.message().trim().trim_end_matches('.').replace('\n', " ");
            Error::BadConfig {
                setting: match line {
                    Some(l) => format!("{} line {l}:", path.display()),
                    None => format!("{}:", path.display()),
                },
                message,
            }
        })
    }
}

/// An upstream: scheme, authority and an optional base path that request paths are appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// The base path without a trailing slash (empty for none).
    pub base_path: String,
}

impl Target {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let uri: Uri = s.trim().parse().map_err(|e| format!("is not a URL ({e}): {s}"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| format!("needs a scheme, http:// or https://: {s}"))?;
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(format!("must be an http:// or https:// URL, not {scheme}://"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| format!("has no host: {s}"))?;
        if authority.as_str().contains('@') {
            return Err("must not carry credentials (user:password@): they would be logged and stored".into());
        }
        if uri.query().is_some() {
            return Err(format!("must not have a query string: {s}"));
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self { scheme, authority, base_path })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == http::uri::Scheme::HTTPS
    }

    /// The upstream URI for a client's `path?query`: only the configured scheme and authority
    /// are ever used, whatever the client's Host header or absolute-form URI said.
    pub fn uri_for(&self, path_and_query: &str) -> std::result::Result<Uri, http::Error> {
        let pq = if path_and_query.starts_with('/') { path_and_query.to_owned() } else { format!("/{path_and_query}") };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{pq}", self.base_path))
            .build()
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

/// Where the consistent-sampling key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleKey {
    Header(HeaderName),
    Query(String),
}

impl std::fmt::Display for SampleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SampleKey::Header(h) => write!(f, "header:{h}"),
            SampleKey::Query(q) => write!(f, "query:{q}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How the writer rotates files (see [`crate::record::WriterConfig`]).
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

/// The resolved configuration of one capture agent. Code past the CLI sees only this.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub baseline: Target,
    pub canary: Target,
    pub secondary: Option<Target>,
    pub out: PathBuf,
    pub agent: String,
    pub tls: Option<TlsFiles>,
    /// Extra CA certificates (PEM) trusted for https upstreams, beside the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// How long the baseline may take to send its response head.
    pub baseline_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long a mirror (canary or secondary) may take, head and body.
    pub mirror_timeout: Duration,
    pub max_in_flight_mirrors: usize,
    pub mirror_methods: Vec<Method>,
    pub marker_header: Option<HeaderName>,
    pub sample_rate: f64,
    pub sample_key: Option<SampleKey>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_request_body: usize,
    pub max_response_body: usize,
    pub recorder: RecorderSettings,
    pub redact: RedactRules,
    pub drain_timeout: Duration,
}

impl Config {
    /// A configuration with every default, for tests and embedding (`shadowdiff demo`).
    pub fn new(baseline: &str, canary: &str, out: impl Into<PathBuf>) -> Result<Self> {
        let flags = Flags {
            listen: Some("127.0.0.1:0".into()),
            baseline: Some(baseline.into()),
            canary: Some(canary.into()),
            out: Some(out.into()),
            agent: Some("capture".into()),
            ..Flags::default()
        };
        Self::resolve(flags)
    }

    /// Validate flags (and the file they name) into a configuration.
    pub fn resolve(flags: Flags) -> Result<Self> {
        let file = match &flags.config {
            Some(path) => Some((path.clone(), FileConfig::load(path)?)),
            None => None,
        };
        Self::resolve_with(flags, file)
    }

    /// As [`resolve`](Self::resolve), with the file already parsed.
    pub fn resolve_with(flags: Flags, file: Option<(PathBuf, FileConfig)>) -> Result<Self> {
        let (path, f) = match file {
            Some((p, f)) => (Some(p), f),
            None => (None, FileConfig::default()),
        };
        let r = Resolver { path: path.as_deref() };

        let redact = resolve_redaction(&r, &flags, f.redact)?;
        let listen = r.pick(flags.listen, "--listen", f.listen, "listen");
        let listen = match listen {
            Some((v, who)) => parse_addr(&v).map_err(|m| bad(who, m))?,
            None => parse_addr(DEFAULT_LISTEN).map_err(|m| bad("--listen".into(), m))?,
        };
        let admin_listen = match r.pick(flags.admin_listen, "--admin-listen", f.admin_listen, "admin_listen") {
            Some((v, who)) if !v.is_empty() && v != "none" => Some(parse_addr(&v).map_err(|m| bad(who, m))?),
            _ => None,
        };
        let target = |flag: Option<String>, fname: &'static str, key: Option<String>, kname: &'static str| {
            r.pick(flag, fname, key, kname).map(|(v, who)| Target::parse(&v).map_err(|m| bad(who, m))).transpose()
        };
        let baseline = target(flags.baseline, "--baseline", f.baseline, "baseline")?
            .ok_or_else(|| r.missing("--baseline", "baseline", "the URL of the service that answers clients"))?;
        let canary = target(flags.canary, "--canary", f.canary, "canary")?
            .ok_or_else(|| r.missing("--canary", "canary", "the URL of the service to compare"))?;
        let secondary = target(flags.secondary, "--secondary", f.secondary, "secondary")?;
        let out = r
            .pick(flags.out, "--out", f.out, "out")
            .map(|(p, _)| p)
            .ok_or_else(|| r.missing("--out", "out", "the directory pair files are written to"))?;
        let agent = match r.pick(flags.agent, "--agent", f.agent, "agent") {
            Some((a, who)) => {
                if a.trim().is_empty() {
                    return Err(bad(who, "must not be empty".into()));
                }
                a
            }
            None => default_agent(),
        };

        let tls_cert = r.pick(flags.tls_cert, "--tls-cert", f.tls.cert, "tls.cert");
        let tls_key = r.pick(flags.tls_key, "--tls-key", f.tls.key, "tls.key");
        let tls = match (tls_cert, tls_key) {
            (Some((cert, _)), Some((key, _))) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(r.missing("--tls-key", "tls.key", "the private key that goes with the TLS certificate"));
            }
            (None, Some(_)) => {
                return Err(r.missing("--tls-cert", "tls.cert", "the certificate that goes with the TLS key"));
            }
        };
        let ca_file = r.pick(flags.ca_file, "--ca-file", f.upstream.ca_file, "upstream.ca_file").map(|(p, _)| p);

        let dur = |flag: Option<String>, fname, key: Option<Scalar>, kname, default: Duration| -> Result<Duration> {
            match r.pick(flag, fname, key.map(|k| k.text()), kname) {
                Some((v, who)) => parse_duration(&v).map_err(|m| bad(who, m)),
                None => Ok(default),
            }
        };
        let baseline_timeout = dur(
            flags.baseline_timeout,
            "--baseline-timeout",
            f.upstream.timeout,
            "upstream.timeout",
            Duration::from_secs(30),
        )?;
        let connect_timeout = dur(
            flags.connect_timeout,
            "--connect-timeout",
            f.upstream.connect_timeout,
            "upstream.connect_timeout",
            Duration::from_secs(2),
        )?;
        let mirror_timeout =
            dur(flags.mirror_timeout, "--mirror-timeout", f.mirror.timeout, "mirror.timeout", Duration::from_secs(5))?;
        let drain_timeout = dur(
            flags.drain_timeout,
            "--drain-timeout",
            f.shutdown.drain_timeout,
            "shutdown.drain_timeout",
            Duration::from_secs(10),
        )?;

        let int = |flag: Option<String>, fname, key: Option<Scalar>, kname, min: u64, default: u64| -> Result<u64> {
            match r.pick(flag, fname, key.map(|k| k.text()), kname) {
                Some((v, who)) => {
                    let n = parse_size(&v).map_err(|m| bad(who.clone(), m))?;
                    if n < min {
                        return Err(bad(who, format!("must be at least {min}, not {n}")));
                    }
                    Ok(n)
                }
                None => Ok(default),
            }
        };
        let max_in_flight_mirrors = int(
            flags.max_in_flight_mirrors,
            "--max-in-flight-mirrors",
            f.mirror.max_in_flight,
            "mirror.max_in_flight",
            1,
            1024,
        )? as usize;
        let max_request_body = int(
            flags.max_request_body,
            "--max-request-body",
            f.limits.max_request_body,
            "limits.max_request_body",
            0,
            1 << 20,
        )? as usize;
        let max_response_body = int(
            flags.max_response_body,
            "--max-response-body",
            f.limits.max_response_body,
            "limits.max_response_body",
            0,
            1 << 20,
        )? as usize;
        let defaults = RecorderSettings::default();
        let recorder = RecorderSettings {
            queue: int(flags.queue, "--queue", f.recorder.queue, "recorder.queue", 1, defaults.queue as u64)? as usize,
            queue_bytes: int(
                flags.queue_bytes,
                "--queue-bytes",
                f.recorder.queue_bytes,
                "recorder.queue_bytes",
                1,
                defaults.queue_bytes,
            )?,
            rotate_rows: int(
                flags.rotate_rows,
                "--rotate-rows",
                f.recorder.rotate_rows,
                "recorder.rotate_rows",
                1,
                defaults.rotate_rows,
            )?,
            rotate_bytes: int(
                flags.rotate_bytes,
                "--rotate-bytes",
                f.recorder.rotate_bytes,
                "recorder.rotate_bytes",
                1,
                defaults.rotate_bytes,
            )?,
            rotate_age: match r.pick(
                flags.rotate_age,
                "--rotate-age",
                f.recorder.rotate_age.map(|k| k.text()),
                "recorder.rotate_age",
            ) {
                Some((v, who)) => match parse_duration(&v).map_err(|m| bad(who.clone(), m))? {
                    d if d.is_zero() => return Err(bad(who, "must be longer than zero".into())),
                    d => d,
                },
                None => defaults.rotate_age,
            },
            row_group_rows: int(
                None,
                "",
                f.recorder.row_group_rows,
                "recorder.row_group_rows",
                1,
                defaults.row_group_rows as u64,
            )? as usize,
            zstd_level: int(None, "", f.recorder.zstd_level, "recorder.zstd_level", 1, defaults.zstd_level as u64)?
                as i32,
        };
        if recorder.zstd_level > 22 {
            return Err(bad(
                r.key("recorder.zstd_level"),
                format!("must be between 1 and 22, not {}", recorder.zstd_level),
            ));
        }

        let mirror_methods = match r.pick(
            flags.mirror_methods.map(|s| s.split(',').map(str::to_owned).collect::<Vec<_>>()),
            "--mirror-methods",
            f.mirror.methods,
            "mirror.methods",
        ) {
            Some((list, who)) => parse_methods(&list).map_err(|m| bad(who, m))?,
            None => DEFAULT_MIRROR_METHODS
                .iter()
                .map(|m| Method::from_bytes(m.as_bytes()).expect("static method"))
                .collect(),
        };
        let marker_header =
            match r.pick(flags.marker_header, "--marker-header", f.mirror.marker_header, "mirror.marker_header") {
                Some((v, _)) if v.is_empty() || v == "none" => None,
                Some((v, who)) => Some(
                    HeaderName::from_bytes(v.trim().as_bytes())
                        .map_err(|_| bad(who, format!("is not a valid header name: {v}")))?,
                ),
                None => Some(HeaderName::from_static(DEFAULT_MARKER_HEADER)),
            };

        let sample_rate =
            match r.pick(flags.sample_rate, "--sample-rate", f.sampling.rate.map(|k| k.text()), "sampling.rate") {
                Some((v, who)) => {
                    let x: f64 = v
                        .trim()
                        .parse()
                        .map_err(|_| bad(who.clone(), format!("must be a number between 0 and 1, not {v}")))?;
                    if !(0.0..=1.0).contains(&x) {
                        return Err(bad(who, format!("must be between 0 and 1, not {v}")));
                    }
                    x
                }
                None => 1.0,
            };
        let sample_key = r
            .pick(flags.sample_key, "--sample-key", f.sampling.key, "sampling.key")
            .map(|(v, who)| parse_sample_key(&v).map_err(|m| bad(who, m)))
            .transpose()?;
        let include = pick_list(&r, flags.include, "--include", f.sampling.include, "sampling.include")?;
        let exclude = pick_list(&r, flags.exclude, "--exclude", f.sampling.exclude, "sampling.exclude")?;
        for (list, fname, kname) in
            [(&include, "--include", "sampling.include"), (&exclude, "--exclude", "sampling.exclude")]
        {
            for p in list {
                crate::select::PathPattern::new(p).map_err(|m| bad(r.name(fname, kname), m))?;
            }
        }

        Ok(Config {
            listen,
            admin_listen,
            baseline,
            canary,
            secondary,
            out,
            agent,
            tls,
            ca_file,
            baseline_timeout,
            connect_timeout,
            mirror_timeout,
            max_in_flight_mirrors,
            mirror_methods,
            marker_header,
            sample_rate,
            sample_key,
            include,
            exclude,
            max_request_body,
            max_response_body,
            recorder,
            redact,
            drain_timeout,
        })
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
            },
            "limits": {
                "max_request_body": self.max_request_body,
                "max_response_body": self.max_response_body,
                "baseline_timeout_ms": self.baseline_timeout.as_millis() as u64,
            },
            "redact": self.redact.summary(),
            "recorder": {
                "queue": self.recorder.queue,
                "queue_bytes": self.recorder.queue_bytes,
                "rotate_rows": self.recorder.rotate_rows,
                "rotate_bytes": self.recorder.rotate_bytes,
                "rotate_age_s": self.recorder.rotate_age.as_secs_f64(),
            },
        })
    }
}

/// Picks values flag-first and names them the way the user wrote them.
struct Resolver<'a> {
    path: Option<&'a Path>,
}

impl Resolver<'_> {
    fn key(&self, key: &str) -> String {
        match self.path {
            Some(p) => format!("`{key}` in {}", p.display()),
            None => format!("`{key}`"),
        }
    }

    fn name(&self, flag: &str, key: &str) -> String {
        if flag.is_empty() { self.key(key) } else { flag.to_owned() }
    }

    fn pick<T>(&self, flag: Option<T>, flag_name: &str, key: Option<T>, key_name: &str) -> Option<(T, String)> {
        match (flag, key) {
            (Some(v), _) => Some((v, flag_name.to_owned())),
            (None, Some(v)) => Some((v, self.key(key_name))),
            (None, None) => None,
        }
    }

    fn missing(&self, flag: &str, key: &str, what: &str) -> Error {
        Error::BadConfig {
            setting: flag.to_owned(),
            message: format!("is required ({what}); give it as a flag or as `{key}` in the --config file"),
        }
    }
}

fn bad(setting: String, message: String) -> Error {
    Error::BadConfig { setting, message }
}

fn pick_list(
    r: &Resolver<'_>,
    flag: Vec<String>,
    fname: &str,
    key: Option<Vec<String>>,
    kname: &str,
) -> Result<Vec<String>> {
    let flag = if flag.is_empty() { None } else { Some(flag) };
    Ok(r.pick(flag, fname, key, kname).map(|(v, _)| v).unwrap_or_default())
}

fn resolve_redaction(r: &Resolver<'_>, flags: &Flags, file: RedactSection) -> Result<RedactRules> {
    let mut headers = Vec::new();
    for (h, who) in flags
        .redact_headers
        .iter()
        .map(|h| (h, "--redact-header".to_owned()))
        .chain(file.headers.iter().map(|h| (h, r.key("redact.headers"))))
    {
        let name = HeaderName::from_bytes(h.trim().as_bytes())
            .map_err(|_| bad(who, format!("is not a valid header name: {h}")))?;
        if !headers.contains(&name.as_str().to_owned()) && !DEFAULT_HEADERS.contains(&name.as_str()) {
            headers.push(name.as_str().to_owned());
        }
    }
    let mut query_params = Vec::new();
    for (q, who) in flags
        .redact_query
        .iter()
        .map(|q| (q, "--redact-query".to_owned()))
        .chain(file.query_params.iter().map(|q| (q, r.key("redact.query_params"))))
    {
        if q.is_empty() {
            return Err(bad(who, "must name a query parameter, not be empty".into()));
        }
        if !query_params.contains(q) {
            query_params.push(q.clone());
        }
    }
    let mut json_paths = Vec::new();
    for (p, who) in flags
        .redact_json
        .iter()
        .map(|p| (p, "--redact-json".to_owned()))
        .chain(file.json_paths.iter().map(|p| (p, r.key("redact.json_paths"))))
    {
        crate::redact::JsonPath::parse(p).map_err(|m| bad(who, m))?;
        if !json_paths.contains(p) {
            json_paths.push(p.clone());
        }
    }
    let key_file = flags
        .hash_key_file
        .clone()
        .map(|p| (p, "--hash-key-file".to_owned()))
        .or_else(|| file.key_file.map(|p| (p, r.key("redact.key_file"))));
    let key_env = flags
        .hash_key_env
        .clone()
        .map(|v| (v, "--hash-key-env".to_owned()))
        .or_else(|| file.key_env.map(|v| (v, r.key("redact.key_env"))));
    let key = match (key_file, key_env) {
        (Some(_), Some((_, who))) => {
            return Err(bad(who, "cannot be combined with a key file: give the hash key one way".into()));
        }
        (Some((path, who)), None) => Some(HashKey::from_file(&path).map_err(|m| bad(who, m))?),
        (None, Some((var, who))) => Some(HashKey::from_env(&var).map_err(|m| bad(who, m))?),
        (None, None) => None,
    };
    match file.mode.as_deref() {
        None | Some("hash") => {}
        Some("mask") if key.is_none() => {}
        Some("mask") => {
            return Err(bad(
                r.key("redact.mode"),
                "is `mask` but a hash key is given; use `hash` or drop the key".into(),
            ));
        }
        Some(other) => return Err(bad(r.key("redact.mode"), format!("must be `mask` or `hash`, not `{other}`"))),
    }
    if file.mode.as_deref() == Some("hash") && key.is_none() {
        return Err(bad(
            r.key("redact.mode"),
            "is `hash` but no key is given; set `redact.key_file`, `redact.key_env`, --hash-key-file or --hash-key-env"
                .into(),
        ));
    }
    Ok(RedactRules { headers, query_params, json_paths, key })
}

fn parse_addr(s: &str) -> std::result::Result<SocketAddr, String> {
    let s = s.trim();
    let full = if s.starts_with(':') { format!("0.0.0.0{s}") } else { s.to_owned() };
    let full = full.replacen("localhost:", "127.0.0.1:", 1);
    full.parse().map_err(|_| format!("must be an address such as 127.0.0.1:8080 or :8080, not {s}"))
}

fn parse_methods(list: &[String]) -> std::result::Result<Vec<Method>, String> {
    let mut out = Vec::new();
    for m in list {
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

fn parse_sample_key(s: &str) -> std::result::Result<SampleKey, String> {
    match s.split_once(':') {
        Some(("header", name)) => HeaderName::from_bytes(name.trim().as_bytes())
            .map(SampleKey::Header)
            .map_err(|_| format!("names an invalid header: {name}")),
        Some(("query", name)) if !name.is_empty() => Ok(SampleKey::Query(name.to_owned())),
        _ => Err(format!("must be header:NAME or query:NAME, not {s}")),
    }
}

/// `250ms`, `5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("must be a duration such as 500ms, 5s or 2m, not {s}"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("must be a duration such as 500ms, 5s or 2m, not {s}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("must be a duration such as 500ms, 5s or 2m, not {s}"))
}

/// A count or size: `4096`, `64KiB`, `1MiB`, `2GB`, `10k`.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim().replace('_', "");
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("must be a whole number or a size such as 64KiB or 1MiB, not {s}"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("must be a whole number or a size such as 64KiB or 1MiB, not {s}")),
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v.fract() != 0.0 || v > u64::MAX as f64 {
        return Err(format!("must be a whole number or a size such as 64KiB or 1MiB, not {s}"));
    }
    Ok(v as u64)
}

fn default_agent() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .map_or_else(|| "capture".to_owned(), |h| format!("capture-{h}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags {
            baseline: Some("http://127.0.0.1:1".into()),
            canary: Some("http://127.0.0.1:2".into()),
            out: Some("/tmp/out".into()),
            ..Flags::default()
        }
    }

    fn err(flags: Flags, toml: Option<&str>) -> String {
        let file =
            toml.map(|t| FileConfig::parse(t, Path::new("capture.toml")).map(|f| (PathBuf::from("capture.toml"), f)));
        let r = match file {
            Some(Err(e)) => Err(e),
            Some(Ok(f)) => Config::resolve_with(flags, Some(f)),
            None => Config::resolve_with(flags, None),
        };
        r.expect_err("rejected").to_string()
    }

    #[test]
    fn defaults_resolve() {
        let c = Config::resolve_with(flags(), None).expect("valid");
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.sample_rate, 1.0);
        assert_eq!(c.mirror_methods, [Method::GET, Method::HEAD, Method::OPTIONS]);
        assert_eq!(c.marker_header.as_ref().map(HeaderName::as_str), Some(DEFAULT_MARKER_HEADER));
        assert_eq!(c.mirror_timeout, Duration::from_secs(5));
        assert!(c.summary()["redact"]["headers"].as_array().is_some_and(|h| h.len() == 5));
    }

    #[test]
    fn flags_win_over_the_file() {
        let toml = "canary = \"http://10.0.0.1:80\"\n[sampling]\nrate = 0.5\n[mirror]\nmethods = [\"GET\", \"POST\"]\n";
        let f = FileConfig::parse(toml, Path::new("c.toml")).expect("parses");
        let mut fl = flags();
        fl.sample_rate = Some("0.25".into());
        let c = Config::resolve_with(fl, Some(("c.toml".into(), f))).expect("valid");
        assert_eq!(c.sample_rate, 0.25);
        assert_eq!(c.canary.to_string(), "http://127.0.0.1:2");
        assert_eq!(c.mirror_methods, [Method::GET, Method::POST]);
    }

    #[test]
    fn errors_name_the_flag_or_key() {
        let mut f = flags();
        f.sample_rate = Some("1.5".into());
        assert!(err(f, None).starts_with("--sample-rate must be between 0 and 1"));
        let e = err(flags(), Some("[sampling]\nrat = 1\n"));
        assert!(e.contains("capture.toml line 2") && e.contains("unknown field `rat`"), "{e}");
        let e = err(flags(), Some("[mirror]\ntimeout = \"5 parsecs\"\n"));
        assert!(e.starts_with("`mirror.timeout` in capture.toml must be a duration"), "{e}");
        let mut f = flags();
        f.baseline = None;
        assert!(err(f, None).starts_with("--baseline is required"));
        let mut f = flags();
        f.canary = Some("ftp://x".into());
        assert!(err(f, None).starts_with("--canary must be an http:// or https:// URL"));
        let mut f = flags();
        f.mirror_methods = Some("GET,FETCH THIS".into());
        assert!(err(f, None).starts_with("--mirror-methods lists"));
        let mut f = flags();
        f.tls_cert = Some("c.pem".into());
        assert!(err(f, None).starts_with("--tls-key is required"));
        let mut f = flags();
        f.hash_key_env = Some("SHADOWDIFF_TEST_SURELY_UNSET".into());
        assert!(err(f, None).starts_with("--hash-key-env"));
        let mut f = flags();
        f.include = vec!["api/**".into()];
        assert!(err(f, None).starts_with("--include"));
    }

    /// The documented example names every key, and every key it names exists.
    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../docs/capture.md");
        let start = doc.find("```toml\n").expect("a TOML block") + 8;
        let text = &doc[start..start + doc[start..].find("```").expect("closed")];
        let f = FileConfig::parse(text, Path::new("docs/capture.md")).expect("the example parses");
        assert_eq!(f.recorder.zstd_level.as_ref().map(Scalar::text), Some("1".into()));
        assert_eq!(f.redact.json_paths.len(), 2);
        // Resolve it, minus the key file that only exists in production.
        let mut f = f;
        f.redact.key_file = None;
        f.redact.mode = None;
        f.tls = TlsSection::default();
        f.upstream.ca_file = None;
        let c = Config::resolve_with(Flags::default(), Some(("capture.toml".into(), f))).expect("resolves");
        assert_eq!(c.recorder.queue_bytes, 256 * 1024 * 1024);
        assert_eq!(c.sample_key, Some(SampleKey::Header(HeaderName::from_static("x-user-id"))));
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("10_000"), Ok(10_000));
        assert!(parse_size("1.5").is_err());
    }

    #[test]
    fn targets_never_take_credentials_or_queries() {
        assert!(Target::parse("http://u:p@host").is_err());
        assert!(Target::parse("http://host/?a=1").is_err());
        let t = Target::parse("https://host:8443/base/").expect("valid");
        assert_eq!(t.uri_for("/x?y=1").expect("uri").to_string(), "https://host:8443/base/x?y=1");
    }
}
