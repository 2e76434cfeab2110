//! The live targets a replay drives, and how a recorded request is rebuilt for them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Version, header};
use shadowdiff_capture::body::ProxyBody;
use shadowdiff_capture::config::Target;
use shadowdiff_capture::proxy::strip_hop_by_hop;
use shadowdiff_capture::record::schema::error_kind;
use shadowdiff_capture::record::{PairRecord, Side, SideRecord};
use shadowdiff_capture::upstream::{Upstream, client_tls};
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
        let (name, value) = spec
            .split_once(':')
            .ok_or_else(|| format!("--header `{spec}` must look like `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("--header `{spec}`: `{}` is not a header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| format!("--header `{spec}`: the value is not a valid header value"))?;
        Ok((name, value))
    }

    /// The headers to send for a recorded request.
    pub fn apply(&self, recorded: &PairRecord) -> HeaderMap {
        let mut h = HeaderMap::new();
        for r in &recorded.request_headers {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(r.name.as_bytes()), HeaderValue::from_bytes(&r.value)) {
                h.append(n, v);
            }
        }
        strip_hop_by_hop(&mut h);
        // The client sets these for the request it actually sends.
        h.remove(header::HOST);
        h.remove(header::CONTENT_LENGTH);
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

/// Sends one recorded request to one side and records the answer. The driver is generic over
/// this so pacing can be tested under paused time with a target that only sleeps.
pub trait Dispatch: Send + Sync + 'static {
    /// The sides this dispatcher calls, in order.
    fn sides(&self) -> &[Side];

    /// Send `recorded` to `side`; latency counts from `intended`.
    fn dispatch(&self, side: Side, recorded: &PairRecord, intended: Instant) -> impl Future<Output = SideRecord> + Send;
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
    pub fn new(targets: &[(Side, String)], rewrites: Rewrites, timeout: Duration, max_body: usize) -> Result<Self, String> {
        let tls = client_tls(None).map_err(|e| e.to_string())?;
        let mut upstreams = Vec::new();
        for (side, url) in targets {
            let target = Target::parse(url).map_err(|e| format!("--{side} {e}"))?;
            upstreams.push((*side, Upstream::new(target, Arc::clone(&tls), Duration::from_secs(5))));
        }
        Ok(Self { sides: targets.iter().map(|t| t.0).collect(), upstreams, rewrites: Arc::new(rewrites), timeout, max_body })
    }
}

impl Dispatch for HttpTargets {
    fn sides(&self) -> &[Side] {
        &self.sides
    }

    fn dispatch(&self, side: Side, recorded: &PairRecord, intended: Instant) -> impl Future<Output = SideRecord> + Send {
        let upstream = self.upstreams.iter().find(|(s, _)| *s == side).map(|(_, u)| u.clone());
        let headers = self.rewrites.apply(recorded);
        let method = Method::from_bytes(recorded.method.as_bytes());
        let pq = recorded.path_and_query();
        let body = recorded.request_body.clone().unwrap_or_else(Bytes::new);
        let (timeout, cap) = (self.timeout, self.max_body);
        async move {
            let (Some(upstream), Ok(method)) = (upstream, method) else {
                return SideRecord::failed(error_kind::OTHER);
            };
            let Ok(uri) = upstream.uri_for(&pq) else {
                return SideRecord::failed(error_kind::OTHER);
            };
            let req = Request::builder().method(method).uri(uri).version(Version::HTTP_11).body(ProxyBody::full(body));
            let Ok(mut req) = req else {
                return SideRecord::failed(error_kind::OTHER);
            };
            *req.headers_mut() = headers;
            upstream.exchange(req, timeout, cap, intended).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shadowdiff_capture::record::Header;

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
}
