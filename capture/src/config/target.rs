//! An upstream's URL, checked once: http or https (or a scheme naming the protocol: `h2c://`,
//! `h2://`, `http1+https://` …), no credentials, no query.

use http::Uri;

/// The HTTP version spoken to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// HTTP/2 when TLS negotiates it by ALPN (`h2`), else HTTP/1.1; HTTP/1.1 on cleartext.
    #[default]
    Auto,
    /// HTTP/1.1 only (over TLS, ALPN offers only `http/1.1`).
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (h2c): gRPC servers without TLS.
    H2c,
    /// HTTP/2 over TLS, ALPN offering only `h2`.
    H2,
}

impl Protocol {
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::Http1 => "http1",
            Protocol::H2c => "h2c",
            Protocol::H2 => "h2",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Protocol::Auto),
            "http1" => Some(Protocol::Http1),
            "h2c" => Some(Protocol::H2c),
            "h2" => Some(Protocol::H2),
            _ => None,
        }
    }
}

/// An upstream: scheme, authority and an optional base path that request paths are appended to,
/// and the HTTP version spoken to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The transport: `http` (cleartext) or `https` (TLS).
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// The base path without a trailing slash (empty for none).
    pub base_path: String,
    pub protocol: Protocol,
}

/// What the schemes mean: `h2c://` and `h2://` are short for `h2c+http://` and `h2+https://`.
const SCHEMES: &str = "http://, https://, h2c:// (HTTP/2 cleartext), h2:// (HTTP/2 over TLS) or \
                       PROTOCOL+http(s):// with PROTOCOL one of auto, http1, h2c, h2";

impl Target {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        let (protocol, rest) = split_protocol(s)?;
        let uri: Uri = rest.parse().map_err(|e| format!("is not a URL ({e}): {s}"))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| format!("needs a scheme, {SCHEMES}: {s}"))?;
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(format!(
                "must be an http:// or https:// URL (or h2c://, h2://, PROTOCOL+http(s)://), not {scheme}://"
            ));
        }
        let tls = scheme == http::uri::Scheme::HTTPS;
        match protocol {
            Protocol::H2c if tls => {
                return Err(format!(
                    "asks for h2c, HTTP/2 without TLS, over https: use h2:// for HTTP/2 over TLS: {s}"
                ));
            }
            Protocol::H2 if !tls => {
                return Err(format!("asks for h2, HTTP/2 over TLS, over http: use h2c:// for HTTP/2 without TLS: {s}"));
            }
            _ => {}
        }
        let authority = uri.authority().cloned().ok_or_else(|| format!("has no host: {s}"))?;
        if authority.as_str().contains('@') {
            return Err("must not carry credentials (user:password@): they would be logged and stored".into());
        }
        if uri.query().is_some() {
            return Err(format!("must not have a query string: {s}"));
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self { scheme, authority, base_path, protocol })
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

/// The protocol a URL names before its transport (`h2c://`, `http1+https://`) and the URL with
/// the plain `http://` or `https://` scheme.
fn split_protocol(s: &str) -> std::result::Result<(Protocol, String), String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Ok((Protocol::Auto, s.to_owned()));
    };
    let lower = scheme.to_ascii_lowercase();
    let (protocol, transport) = match lower.as_str() {
        "h2c" => (Protocol::H2c, "http"),
        "h2" => (Protocol::H2, "https"),
        other => match other.split_once('+') {
            None => (Protocol::Auto, other),
            Some((p, t)) => {
                let p = Protocol::parse(p)
                    .ok_or_else(|| format!("names an unknown protocol `{p}` in `{scheme}://`; use {SCHEMES}"))?;
                (p, t)
            }
        },
    };
    Ok((protocol, format!("{transport}://{rest}")))
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.protocol, self.is_https()) {
            (Protocol::H2c, _) => f.write_str("h2c")?,
            (Protocol::H2, _) => f.write_str("h2")?,
            (Protocol::Http1, _) => write!(f, "http1+{}", self.scheme)?,
            (Protocol::Auto, _) => write!(f, "{}", self.scheme)?,
        }
        write!(f, "://{}{}", self.authority, self.base_path)
    }
}
