//! Flags and file into one [`Config`]: for each setting the flag, else its key, else the default;
//! then the checks that span settings (required upstreams, a TLS certificate with its key, one
//! hash key that agrees with the redaction mode), each naming the flag or the `key` in FILE that
//! the value came from. Single values were checked when they were parsed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, Method};

use super::file::{FileConfig, MirrorSection, RecorderSection, RedactSection};
use super::flags::Flags;
use super::value::{OrNone, RedactMode};
use super::{
    Config, DEFAULT_LISTEN, DEFAULT_MARKER_HEADER, DEFAULT_MIRROR_METHODS, ReadOnlyPosts, RecorderSettings, TlsFiles,
};
use crate::error::{Error, Result};
use crate::redact::{DEFAULT_HEADERS, HashKey, RedactRules};
use shadowdiff_format::store::{Location, UploadSettings};

impl Config {
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
        let origin = Origin { path: path.as_deref() };
        let mut redact = redaction(&origin, &flags, f.redact)?;
        if let Some(n) = flags.max_decoded_body.or(f.limits.max_decoded_body) {
            redact.max_decoded_body = n;
        }
        let read_only_posts = read_only_posts(&origin, &flags, &f.mirror)?;
        let agent = flags.agent.clone().or(f.agent).unwrap_or_else(default_agent);
        let (out, upload, retain) = output(&origin, &flags, f.out, &f.recorder, &agent)?;
        let recorder = recorder(&flags, f.recorder);
        if let Some(max) = upload.as_ref().and_then(|u| u.max_spool)
            && max < recorder.rotate_bytes
        {
            return Err(bad(
                "--max-spool".into(),
                &format!(
                    "must be at least --rotate-bytes ({} bytes): files are uploaded, or dropped, whole",
                    recorder.rotate_bytes
                ),
            ));
        }
        let tls = match (flags.tls_cert.or(f.tls.cert), flags.tls_key.or(f.tls.key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(missing("--tls-key", "tls.key", "the private key that goes with the TLS certificate"));
            }
            (None, Some(_)) => {
                return Err(missing("--tls-cert", "tls.cert", "the certificate that goes with the TLS key"));
            }
        };
        Ok(Config {
            listen: flags.listen.or(f.listen).unwrap_or_else(default_listen),
            admin_listen: flags.admin_listen.or(f.admin_listen).and_then(|a| a.0),
            baseline: flags
                .baseline
                .or(f.baseline)
                .ok_or_else(|| missing("--baseline", "baseline", "the URL of the service that answers clients"))?,
            canary: flags
                .canary
                .or(f.canary)
                .ok_or_else(|| missing("--canary", "canary", "the URL of the service to compare"))?,
            secondary: flags.secondary.or(f.secondary),
            out,
            upload,
            retain,
            agent,
            tls,
            ca_file: flags.ca_file.or(f.upstream.ca_file),
            grpc_reflection: !flags.no_grpc_reflection && f.upstream.grpc_reflection.unwrap_or(true),
            baseline_timeout: flags.baseline_timeout.or(f.upstream.timeout).unwrap_or(Duration::from_secs(30)),
            connect_timeout: flags.connect_timeout.or(f.upstream.connect_timeout).unwrap_or(Duration::from_secs(2)),
            mirror_timeout: flags.mirror_timeout.or(f.mirror.timeout).unwrap_or(Duration::from_secs(5)),
            max_in_flight_mirrors: flags.max_in_flight_mirrors.or(f.mirror.max_in_flight).unwrap_or(1024) as usize,
            mirror_methods: flags.mirror_methods.or(f.mirror.methods).unwrap_or_else(default_methods),
            read_only_posts,
            marker_header: flags
                .marker_header
                .or(f.mirror.marker_header)
                .unwrap_or(OrNone(Some(HeaderName::from_static(DEFAULT_MARKER_HEADER))))
                .0,
            sample_rate: flags.sample_rate.or(f.sampling.rate).unwrap_or(1.0),
            sample_key: flags.sample_key.or(f.sampling.key),
            include: if flags.include.is_empty() { f.sampling.include } else { flags.include },
            exclude: if flags.exclude.is_empty() { f.sampling.exclude } else { flags.exclude },
            max_request_body: flags.max_request_body.or(f.limits.max_request_body).unwrap_or(1 << 20) as usize,
            max_response_body: flags.max_response_body.or(f.limits.max_response_body).unwrap_or(1 << 20) as usize,
            max_body_duration: flags
                .max_body_duration
                .or(f.limits.max_body_duration)
                .unwrap_or(super::DEFAULT_MAX_BODY_DURATION),
            recorder,
            redact,
            drain_timeout: flags.drain_timeout.or(f.shutdown.drain_timeout).unwrap_or(Duration::from_secs(10)),
            listener: {
                let d = crate::server::ListenerLimits::default();
                crate::server::ListenerLimits {
                    max_connections: flags
                        .max_connections
                        .or(f.limits.max_connections)
                        .map_or(d.max_connections, |n| usize::try_from(n).unwrap_or(usize::MAX)),
                    max_header_size: flags
                        .max_header_size
                        .or(f.limits.max_header_size)
                        .map_or(d.max_header_size, |n| usize::try_from(n).unwrap_or(usize::MAX)),
                    header_read_timeout: flags
                        .header_read_timeout
                        .or(f.limits.header_read_timeout)
                        .unwrap_or(d.header_read_timeout),
                    idle_timeout: flags.idle_timeout.or(f.limits.idle_timeout).unwrap_or(d.idle_timeout),
                    max_concurrent_streams: flags
                        .max_concurrent_streams
                        .or(f.limits.max_concurrent_streams)
                        .map_or(d.max_concurrent_streams, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                    abuse_penalty: flags.abuse_penalty.or(f.limits.abuse_penalty).unwrap_or(d.abuse_penalty),
                }
            },
        })
    }
}

/// Where files go: a local directory (with its retention), or an object store uploaded to from a
/// spool (with its budget). The settings of one do not apply to the other, and saying so beats
/// ignoring them.
fn output(
    origin: &Origin<'_>,
    flags: &Flags,
    out: Option<PathBuf>,
    file: &RecorderSection,
    agent: &str,
) -> Result<(PathBuf, Option<UploadSettings>, Option<Duration>)> {
    let (out, out_name) = match origin.pick(flags.out.clone(), "--out", out, "out") {
        Some(v) => v,
        None => return Err(missing("--out", "out", "the directory or object-store URL pair files are written to")),
    };
    let spool = origin.pick(flags.spool.clone(), "--spool", file.spool.clone(), "recorder.spool");
    let max_spool = origin.pick(flags.max_spool, "--max-spool", file.max_spool, "recorder.max_spool");
    let drain = origin.pick(
        flags.upload_drain_timeout,
        "--upload-drain-timeout",
        file.upload_drain_timeout,
        "recorder.upload_drain_timeout",
    );
    let retain = origin.pick(flags.retain, "--retain", file.retain, "recorder.retain");
    let location = Location::parse(&out.to_string_lossy()).map_err(|e| match e {
        shadowdiff_format::Error::Store { message, .. } => bad(format!("{out_name} {}", out.display()), &message),
        e => Error::Pairs(e),
    })?;
    match location {
        Location::Local(dir) => {
            let store_only = [spool.map(|(_, n)| n), max_spool.map(|(_, n)| n), drain.map(|(_, n)| n)];
            if let Some(name) = store_only.into_iter().flatten().next() {
                return Err(bad(
                    name,
                    "applies when --out is an object-store URL (s3://, gs://, az://); a local --out is pruned with --retain",
                ));
            }
            if let Some((d, name)) = &retain
                && *d < MIN_RETAIN
            {
                return Err(bad(
                    name.clone(),
                    "must be at least 2h: an hour partition holds pairs from the hour before it too",
                ));
            }
            Ok((dir, None, retain.map(|(d, _)| d)))
        }
        Location::Store(url) => {
            if let Some((_, name)) = retain {
                return Err(bad(name, "applies to a local --out; expire objects with the bucket's lifecycle rules"));
            }
            let spool = spool.map_or_else(|| shadowdiff_format::store::default_spool(agent), |(p, _)| p);
            let settings = UploadSettings {
                url,
                spool: spool.clone(),
                max_spool: max_spool.map(|(n, _)| n),
                drain_timeout: drain.map_or(DEFAULT_UPLOAD_DRAIN, |(d, _)| d),
            };
            Ok((spool, Some(settings), None))
        }
    }
}

/// The shortest `--retain`: a partition holds pairs from the hour before its own.
const MIN_RETAIN: Duration = Duration::from_secs(2 * 3600);
/// How long shutdown keeps uploading by default.
pub const DEFAULT_UPLOAD_DRAIN: Duration = Duration::from_secs(30);

fn recorder(flags: &Flags, file: RecorderSection) -> RecorderSettings {
    let default = RecorderSettings::default();
    RecorderSettings {
        queue: flags.queue.or(file.queue).map_or(default.queue, |n| n as usize),
        queue_bytes: flags.queue_bytes.or(file.queue_bytes).unwrap_or(default.queue_bytes),
        rotate_rows: flags.rotate_rows.or(file.rotate_rows).unwrap_or(default.rotate_rows),
        rotate_bytes: flags.rotate_bytes.or(file.rotate_bytes).unwrap_or(default.rotate_bytes),
        rotate_age: flags.rotate_age.or(file.rotate_age).unwrap_or(default.rotate_age),
        row_group_rows: file.row_group_rows.map_or(default.row_group_rows, |n| n as usize),
        zstd_level: file.zstd_level.unwrap_or(default.zstd_level),
    }
}

/// Redaction lists from the flags and the file add up (more redaction is never less safe); the
/// hash key is given one way, and agrees with the mode.
fn redaction(origin: &Origin<'_>, flags: &Flags, file: RedactSection) -> Result<RedactRules> {
    let headers = union(
        flags
            .redact_headers
            .iter()
            .chain(&file.headers)
            .map(HeaderName::as_str)
            .filter(|h| !DEFAULT_HEADERS.contains(h)),
    );
    let query_params = union(flags.redact_query.iter().chain(&file.query_params).map(String::as_str));
    let json_paths = union(flags.redact_json.iter().chain(&file.json_paths).map(String::as_str));
    let key_file = origin.pick(flags.hash_key_file.clone(), "--hash-key-file", file.key_file, "redact.key_file");
    let key_env = origin.pick(flags.hash_key_env.clone(), "--hash-key-env", file.key_env, "redact.key_env");
    let key = match (key_file, key_env) {
        (Some(_), Some((_, who))) => {
            return Err(bad(who, "cannot be combined with a key file: give the hash key one way"));
        }
        (Some((path, who)), None) => Some(HashKey::from_file(&path).map_err(|m| bad(who, &m))?),
        (None, Some((var, who))) => Some(HashKey::from_env(&var).map_err(|m| bad(who, &m))?),
        (None, None) => None,
    };
    match (file.mode, &key) {
        (Some(RedactMode::Mask), Some(_)) => {
            Err(bad(origin.key("redact.mode"), "is `mask` but a hash key is given; use `hash` or drop the key"))
        }
        (Some(RedactMode::Hash), None) => Err(bad(
            origin.key("redact.mode"),
            "is `hash` but no key is given; set `redact.key_file`, `redact.key_env`, --hash-key-file or --hash-key-env",
        )),
        _ => Ok(RedactRules { headers, query_params, json_paths, key, ..RedactRules::default() }),
    }
}

/// The read-only POST settings: a flag's list replaces its key's. Each list needs its partner:
/// JSON-RPC paths are useless without read-only methods, and the other way round.
fn read_only_posts(origin: &Origin<'_>, flags: &Flags, file: &MirrorSection) -> Result<ReadOnlyPosts> {
    let pick = |flag: &Vec<String>, flag_name: &str, key: &Vec<String>, key_name: &str| {
        if flag.is_empty() { (key.clone(), origin.key(key_name)) } else { (flag.clone(), flag_name.to_owned()) }
    };
    let (graphql_paths, _) =
        pick(&flags.mirror_graphql, "--mirror-graphql", &file.graphql_paths, "mirror.graphql_paths");
    let (graphql_persisted, persisted_name) = pick(
        &flags.mirror_graphql_persisted,
        "--mirror-graphql-persisted",
        &file.graphql_persisted,
        "mirror.graphql_persisted",
    );
    let (jsonrpc_paths, paths_name) =
        pick(&flags.mirror_jsonrpc, "--mirror-jsonrpc", &file.jsonrpc_paths, "mirror.jsonrpc_paths");
    let (jsonrpc_methods, methods_name) =
        pick(&flags.mirror_jsonrpc_method, "--mirror-jsonrpc-method", &file.jsonrpc_methods, "mirror.jsonrpc_methods");
    if !graphql_persisted.is_empty() && graphql_paths.is_empty() {
        return Err(bad(
            persisted_name,
            "needs GraphQL paths to apply to (--mirror-graphql or `mirror.graphql_paths`)",
        ));
    }
    if !jsonrpc_paths.is_empty() && jsonrpc_methods.is_empty() {
        return Err(bad(
            paths_name,
            "needs the read-only JSON-RPC methods to mirror (--mirror-jsonrpc-method or `mirror.jsonrpc_methods`)",
        ));
    }
    if !jsonrpc_methods.is_empty() && jsonrpc_paths.is_empty() {
        return Err(bad(methods_name, "needs JSON-RPC paths to apply to (--mirror-jsonrpc or `mirror.jsonrpc_paths`)"));
    }
    let (grpc_methods, _) = pick(&flags.mirror_grpc, "--mirror-grpc", &file.grpc_methods, "mirror.grpc_methods");
    Ok(ReadOnlyPosts { graphql_paths, graphql_persisted, jsonrpc_paths, jsonrpc_methods, grpc_methods })
}

/// Each item once, in the order first given.
fn union<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

/// Names a setting the way the user wrote it: the flag, or the key and the file.
struct Origin<'a> {
    path: Option<&'a Path>,
}

impl Origin<'_> {
    fn key(&self, key: &str) -> String {
        match self.path {
            Some(p) => format!("`{key}` in {}", p.display()),
            None => format!("`{key}`"),
        }
    }

    /// The flag's value, else the key's, with the name of the one it came from.
    fn pick<T>(&self, flag: Option<T>, flag_name: &str, key: Option<T>, key_name: &str) -> Option<(T, String)> {
        match (flag, key) {
            (Some(v), _) => Some((v, flag_name.to_owned())),
            (None, Some(v)) => Some((v, self.key(key_name))),
            (None, None) => None,
        }
    }
}

fn missing(flag: &str, key: &str, what: &str) -> Error {
    bad(flag.to_owned(), &format!("is required ({what}); give it as a flag or as `{key}` in the --config file"))
}

fn bad(setting: String, message: &str) -> Error {
    Error::BadConfig { setting, message: message.to_owned() }
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("the default listen address is an address")
}

fn default_methods() -> Vec<Method> {
    DEFAULT_MIRROR_METHODS.iter().map(|m| Method::from_bytes(m.as_bytes()).expect("a static method")).collect()
}

fn default_agent() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .map_or_else(|| "capture".to_owned(), |h| format!("capture-{h}"))
}
