//! An upstream's URL, checked once: only http or https, no credentials, no query.

use http::Uri;

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
