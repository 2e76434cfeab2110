//! The live targets a replay drives, and how a recorded request is rebuilt for them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version, header};
use shadowdiff_capture::body::ProxyBody;
use shadowdiff_capture::config::Target;
use shadowdiff_capture::proxy::{accepts_trailers, strip_hop_by_hop};
use shadowdiff_capture::upstream::{Upstream, client_tls};
use shadowdiff_format::schema::error_kind;
use shadowdiff_format::{PairRecord, Side, SideRecord};
use tokio::time::Instant;

/// Header edits applied to every replayed request, in order: remove, then set. Credentials that
/// capture redacted can be supplied again with a set.
#[derive(Debug, Clone, Default)]
pub struct Rewrites {
    pub remove: Vec<HeaderName>,
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Value for the `Host` header; by default each target's own authority.
    pub host: Option<HeaderValue>,
}

impl Rewrites {
    /// Parse `--header 'Name: value'`; the message names the flag.
    pub fn parse_set(spec: &str) -> Result<(HeaderName, HeaderValue), String> {
        let (name, value) =
            spec.split_once(':').ok_or_else(|| format!("--header `{spec}` must look like `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("--header `{spec}`: `{}` is not a header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("--header `{spec}`: the value is not a valid header value"))?;
        Ok((name, value))
    }

    /// The headers to send for a recorded request.
    ///
    /// This runs for every request, so it avoids what it can: values share the recorded bytes
    /// instead of being copied, the map is sized once, and `Host` and `Content-Length` are never
    /// inserted only to be removed.
    pub fn apply(&self, recorded: &PairRecord) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(recorded.request_headers.len() + self.set.len() + 1);
        for r in &recorded.request_headers {
            let Ok(n) = HeaderName::from_bytes(r.name.as_bytes()) else { continue };
            // The client sets these for the request it actually sends.
            if n == header::HOST || n == header::CONTENT_LENGTH {
                continue;
            }
            if let Ok(v) = HeaderValue::from_maybe_shared(r.value.clone()) {
                h.append(n, v);
            }
        }
        let te_trailers = accepts_trailers(&h);
        strip_hop_by_hop(&mut h);
        // The one TE that passes, as capture forwards it: gRPC servers refuse calls without it.
        if te_trailers {
            h.insert(header::TE, HeaderValue::from_static("trailers"));
        }
        for name in &self.remove {
            h.remove(name);
        }
        for (name, value) in &self.set {
            h.insert(name.clone(), value.clone());
        }
        if let Some(host) = &self.host {
            h.insert(header::HOST, host.clone());
        }
        h
    }
}

/// The request URI for `recorded` on `target`, built with one allocation (the path and query)
/// rather than the several of [`Target::uri_for`].
fn uri_for(target: &Target, recorded: &PairRecord) -> Result<Uri, http::Error> {
    let query = recorded.query.as_deref();
    let slash = !recorded.path.starts_with('/');
    let mut pq =
        String::with_capacity(target.base_path.len() + 1 + recorded.path.len() + query.map_or(0, |q| q.len() + 1));
    pq.push_str(&target.base_path);
    if slash {
        pq.push('/');
    }
    pq.push_str(&recorded.path);
    if let Some(q) = query {
        pq.push('?');
        pq.push_str(q);
    }
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(target.scheme.clone());
    parts.authority = Some(target.authority.clone());
    parts.path_and_query = Some(PathAndQuery::from_maybe_shared(Bytes::from(pq))?);
    Ok(Uri::from_parts(parts)?)
}

/// Sends one recorded request to one side and records the answer. The driver is generic over
/// this so pacing can be tested under paused time with a target that only sleeps.
pub trait Dispatch: Send + Sync + 'static {
    /// The sides this dispatcher calls, in order.
    fn sides(&self) -> &[Side];

    /// Send `recorded` to `side`; latency counts from `intended`.
    fn dispatch(&self, side: Side, recorded: &PairRecord, intended: Instant)
    -> impl Future<Output = SideRecord> + Send;
}

/// Real HTTP targets: pooled clients, one per target.
pub struct HttpTargets {
    sides: Vec<Side>,
    upstreams: Vec<(Side, Upstream)>,
    rewrites: Arc<Rewrites>,
    timeout: Duration,
    max_body: usize,
}

impl HttpTargets {
    /// `targets` pairs each side with its URL. The message of an error names the side's flag.
    pub fn new(
        targets: &[(Side, String)],
        rewrites: Rewrites,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Self, String> {
        let tls = client_tls(None).map_err(|e| e.to_string())?;
        let mut upstreams = Vec::new();
        for (side, url) in targets {
            let target = Target::parse(url).map_err(|e| format!("--{side} {e}"))?;
            upstreams.push((*side, Upstream::new(target, Arc::clone(&tls), Duration::from_secs(5))));
        }
        Ok(Self {
            sides: targets.iter().map(|t| t.0).collect(),
            upstreams,
            rewrites: Arc::new(rewrites),
            timeout,
            max_body,
        })
    }
}

impl Dispatch for HttpTargets {
    fn sides(&self) -> &[Side] {
        &self.sides
    }

    // The future borrows the targets and the record: nothing is cloned per request but the
    // request body handle.
    async fn dispatch(&self, side: Side, recorded: &PairRecord, intended: Instant) -> SideRecord {
        let Some((_, upstream)) = self.upstreams.iter().find(|(s, _)| *s == side) else {
            return SideRecord::failed(error_kind::OTHER);
        };
        let (Ok(method), Ok(uri)) =
            (Method::from_bytes(recorded.method.as_bytes()), uri_for(upstream.target(), recorded))
        else {
            return SideRecord::failed(error_kind::OTHER);
        };
        let mut req = Request::new(ProxyBody::full(recorded.request_body.clone().unwrap_or_default()));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = self.rewrites.apply(recorded);
        upstream.exchange(req, self.timeout, self.max_body, intended).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shadowdiff_format::Header;

    #[test]
    fn rewrites_remove_then_set_and_drop_hop_by_hop() {
        let mut r = PairRecord::new("t", chrono::Utc::now(), "GET", "/x", None);
        r.request_headers = vec![
            Header::new("Host", "prod.example.com"),
            Header::new("Authorization", "[redacted]"),
            Header::new("Connection", "keep-alive, x-hop"),
            Header::new("x-hop", "1"),
            Header::new("x-debug", "1"),
            Header::new("accept", "application/json"),
            Header::new("content-length", "3"),
        ];
        let rw = Rewrites {
            remove: vec![HeaderName::from_static("x-debug")],
            set: vec![Rewrites::parse_set("Authorization: Bearer local-token").expect("valid")],
            host: Some(HeaderValue::from_static("localhost:8080")),
        };
        let h = rw.apply(&r);
        assert_eq!(h.get("authorization").map(|v| v.as_bytes()), Some(&b"Bearer local-token"[..]));
        assert_eq!(h.get("host").map(|v| v.as_bytes()), Some(&b"localhost:8080"[..]));
        assert!(h.get("x-debug").is_none() && h.get("x-hop").is_none() && h.get("connection").is_none());
        assert!(h.get("content-length").is_none());
        assert_eq!(h.get("accept").map(|v| v.as_bytes()), Some(&b"application/json"[..]));
        assert!(Rewrites::parse_set("no colon").expect_err("bad").contains("--header"));
    }

    #[test]
    fn uris_match_the_targets_own() {
        for base in ["http://canary:8080", "https://canary.example.com/base/"] {
            let target = Target::parse(base).expect("url");
            for (path, query) in [
                ("/api/users/1", None),
                ("/search", Some("q=caf%C3%A9&n=2")),
                ("", Some("x=1")),
                ("", None),
                ("rel", None),
            ] {
                let r = PairRecord::new("t", chrono::Utc::now(), "GET", path, query.map(str::to_owned));
                let ours = uri_for(&target, &r).expect("uri");
                assert_eq!(ours, target.uri_for(&r.path_and_query()).expect("uri"), "{base} {path} {query:?}");
            }
        }
    }
}
