//! Which requests are captured and which captured requests are mirrored.
//!
//! Capture is decided by path patterns (include, then exclude) and the sample rate. A consistent
//! sample hashes the value of a header or query parameter (a user or session id), so every agent
//! keeps or skips the same users' requests and a user's session stays whole; requests without
//! the key fall back to a per-request draw. Mirroring is then decided by method: by default only
//! the idempotent reads are sent to the canary, since a mirrored write would run twice. On paths
//! the user lists, a POST is mirrored too when its body shows it only reads (a GraphQL query, a
//! JSON-RPC call of a listed method: [`crate::read_only`]).

use std::sync::atomic::{AtomicU64, Ordering};

use http::Method;
use http::request::Parts;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::config::{Config, ReadOnlyPosts, SampleKey};
use crate::counters::{MirrorSkip, SkipReason};
use crate::read_only::{self, NotRead};
use shadowdiff_format::encoding::decode;
use shadowdiff_format::media::media_type;

/// A path glob: `*` matches within one segment, `**` any number of segments.
#[derive(Debug, Clone)]
pub struct PathPattern(glob::Pattern);

impl PathPattern {
    pub fn new(p: &str) -> Result<Self, String> {
        if !p.starts_with('/') {
            return Err(format!("patterns match request paths and must start with /: `{p}`"));
        }
        glob::Pattern::new(p).map(Self).map_err(|e| format!("has an invalid pattern `{p}`: {}", e.msg))
    }

    pub fn matches(&self, path: &str) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        self.0.matches_with(path, opts)
    }
}

#[derive(Debug)]
pub struct Selector {
    rate: f64,
    key: Option<SampleKey>,
    include: Vec<PathPattern>,
    exclude: Vec<PathPattern>,
    methods: Vec<Method>,
    read_only: ReadOnlyPosts,
    graphql_paths: Vec<PathPattern>,
    jsonrpc_paths: Vec<PathPattern>,
    grpc_methods: Vec<PathPattern>,
    max_decoded: u64,
    seq: AtomicU64,
    seed: u64,
}

impl Selector {
    pub fn new(config: &Config) -> Self {
        let patterns = |list: &[String]| list.iter().filter_map(|p| PathPattern::new(p).ok()).collect();
        Self {
            rate: config.sample_rate,
            key: config.sample_key.clone(),
            include: patterns(&config.include),
            exclude: patterns(&config.exclude),
            methods: config.mirror_methods.clone(),
            read_only: config.read_only_posts.clone(),
            graphql_paths: patterns(&config.read_only_posts.graphql_paths),
            jsonrpc_paths: patterns(&config.read_only_posts.jsonrpc_paths),
            grpc_methods: patterns(&config.read_only_posts.grpc_methods),
            max_decoded: config.redact.max_decoded_body,
            seq: AtomicU64::new(0),
            seed: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64),
        }
    }

    /// `Ok` when the request is captured, or the reason it is not.
    pub fn capture(&self, parts: &Parts) -> Result<(), SkipReason> {
        let path = parts.uri.path();
        if !self.include.is_empty() && !self.include.iter().any(|p| p.matches(path)) {
            return Err(SkipReason::Path);
        }
        if self.exclude.iter().any(|p| p.matches(path)) {
            return Err(SkipReason::Path);
        }
        if self.rate >= 1.0 {
            return Ok(());
        }
        if self.rate <= 0.0 {
            return Err(SkipReason::Sample);
        }
        let h = match self.key_value(parts) {
            Some(v) => xxh3_64(v.as_bytes()),
            None => xxh3_64_with_seed(&self.seq.fetch_add(1, Ordering::Relaxed).to_le_bytes(), self.seed),
        };
        if unit(h) < self.rate { Ok(()) } else { Err(SkipReason::Sample) }
    }

    /// Whether a captured request with this method is sent to the canary and secondary.
    pub fn mirrors(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }

    /// Whether a captured request whose whole body is `body` is sent to the canary and
    /// secondary: its method is mirrored, or it is a POST to a listed GraphQL or JSON-RPC path
    /// whose body provably only reads. Anything else is the reason it is not.
    pub fn mirrors_request(&self, parts: &Parts, body: &[u8]) -> Result<(), MirrorSkip> {
        if self.mirrors(&parts.method) {
            return Ok(());
        }
        if parts.method != Method::POST || self.read_only.is_off() {
            return Err(MirrorSkip::Method);
        }
        let path = parts.uri.path();
        if crate::proxy::is_grpc(&parts.headers) && self.grpc_methods.iter().any(|p| p.matches(path)) {
            return Ok(());
        }
        let graphql = self.graphql_paths.iter().any(|p| p.matches(path));
        let jsonrpc = !graphql && self.jsonrpc_paths.iter().any(|p| p.matches(path));
        if !graphql && !jsonrpc {
            return Err(MirrorSkip::Method);
        }
        let verdict = self.decoded(parts, body).ok_or(NotRead::Unreadable).and_then(|content| {
            if graphql {
                let media = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                read_only::graphql(&content, &media_type(media.unwrap_or("")), &self.read_only.graphql_persisted)
            } else {
                read_only::jsonrpc(&content, &self.read_only.jsonrpc_methods)
            }
        });
        verdict.map_err(|why| {
            tracing::debug!(path, reason = ?why, "A POST on a read-only path was not shown to only read; not mirrored.");
            MirrorSkip::NotReadOnly
        })
    }

    /// The request body as content: decoded by its `content-encoding` within the decoded-size
    /// cap, or `None` when it cannot be.
    fn decoded<'a>(&self, parts: &Parts, body: &'a [u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
        let codings: Vec<&str> =
            parts.headers.get_all(http::header::CONTENT_ENCODING).iter().filter_map(|v| v.to_str().ok()).collect();
        let coding = (!codings.is_empty()).then(|| codings.join(", "));
        decode(body, coding.as_deref(), self.max_decoded).ok().filter(|d| !d.truncated).map(|d| d.bytes)
    }

    fn key_value<'a>(&self, parts: &'a Parts) -> Option<std::borrow::Cow<'a, str>> {
        match self.key.as_ref()? {
            SampleKey::Header(name) => parts.headers.get(name).and_then(|v| v.to_str().ok()).map(Into::into),
            SampleKey::Query(name) => parts.uri.query()?.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == name).then(|| v.into())
            }),
        }
    }
}

/// A hash mapped onto [0, 1).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, header: Option<(&str, &str)>) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        if let Some((k, v)) = header {
            b = b.header(k, v);
        }
        b.body(()).expect("request").into_parts().0
    }

    fn selector(edit: impl FnOnce(&mut Config)) -> Selector {
        let mut c = Config::new("http://127.0.0.1:1", "http://127.0.0.1:2", "/tmp/x").expect("config");
        edit(&mut c);
        Selector::new(&c)
    }

    #[test]
    fn include_then_exclude() {
        let s = selector(|c| {
            c.include = vec!["/api/**".into()];
            c.exclude = vec!["/api/internal/*".into()];
        });
        assert_eq!(s.capture(&parts("/api/users/1", None)), Ok(()));
        assert_eq!(s.capture(&parts("/health", None)), Err(SkipReason::Path));
        assert_eq!(s.capture(&parts("/api/internal/x", None)), Err(SkipReason::Path));
        assert_eq!(s.capture(&parts("/api/internal/x/y", None)), Ok(()), "* stays within a segment");
    }

    #[test]
    fn consistent_sampling_keeps_or_skips_a_key_every_time() {
        let s = selector(|c| {
            c.sample_rate = 0.3;
            c.sample_key = Some(SampleKey::Header(http::HeaderName::from_static("x-user")));
        });
        let mut kept = 0;
        for user in 0..2000 {
            let u = user.to_string();
            let first = s.capture(&parts("/a", Some(("x-user", &u))));
            for _ in 0..3 {
                assert_eq!(s.capture(&parts("/b", Some(("x-user", &u)))), first);
            }
            kept += usize::from(first.is_ok());
        }
        assert!((500..700).contains(&kept), "{kept} of 2000 kept at 0.3");
        let q = selector(|c| {
            c.sample_rate = 0.5;
            c.sample_key = Some(SampleKey::Query("sid".into()));
        });
        let a = q.capture(&parts("/a?x=1&sid=42", None));
        assert_eq!(q.capture(&parts("/zzz?sid=42", None)), a);
    }

    #[test]
    fn unkeyed_sampling_is_near_the_rate() {
        let s = selector(|c| c.sample_rate = 0.1);
        let kept = (0..5000).filter(|_| s.capture(&parts("/", None)).is_ok()).count();
        assert!((350..650).contains(&kept), "{kept}");
        assert_eq!(selector(|c| c.sample_rate = 0.0).capture(&parts("/", None)), Err(SkipReason::Sample));
    }

    #[test]
    fn grpc_calls_to_listed_read_only_methods_are_mirrored_and_nothing_else() {
        let s = selector(|c| c.read_only_posts.grpc_methods = vec!["/shop.v1.Shop/Get*".into()]);
        let call = |path: &str, content_type: &str| {
            let mut p = parts(path, Some(("content-type", content_type)));
            p.method = Method::POST;
            s.mirrors_request(&p, b"\0\0\0\0\0")
        };
        assert_eq!(call("/shop.v1.Shop/GetItem", "application/grpc"), Ok(()));
        assert_eq!(call("/shop.v1.Shop/GetItem", "application/grpc+proto"), Ok(()));
        assert_eq!(call("/shop.v1.Shop/PlaceOrder", "application/grpc"), Err(MirrorSkip::Method), "not listed");
        assert_eq!(call("/shop.v1.Shop/GetItem", "application/json"), Err(MirrorSkip::Method), "not gRPC");
        // Off by default: gRPC calls are POSTs, and POSTs are not mirrored.
        let mut p = parts("/shop.v1.Shop/GetItem", Some(("content-type", "application/grpc")));
        p.method = Method::POST;
        assert_eq!(selector(|_| {}).mirrors_request(&p, b""), Err(MirrorSkip::Method));
    }

    #[test]
    fn default_methods_are_the_idempotent_reads() {
        let s = selector(|_| {});
        assert!(s.mirrors(&Method::GET) && s.mirrors(&Method::HEAD) && s.mirrors(&Method::OPTIONS));
        assert!(!s.mirrors(&Method::POST) && !s.mirrors(&Method::DELETE));
    }
}
