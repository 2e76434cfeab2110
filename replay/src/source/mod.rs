//! Where recorded traffic comes from: pair files, HAR files, GoReplay `.gor` files. Every source
//! yields [`PairRecord`]s whose baseline side (and, for GoReplay's replayed responses, canary
//! side) holds what was recorded. Envoy tap traces ([`envoy`]) are read per sidecar and paired
//! by `x-request-id` before they become pairs.

pub mod envoy;
mod envoy_proto;
pub mod gor;
pub mod har;

use std::path::Path;

use shadowdiff_format::PairRecord;

use crate::error::Result;

/// A kind of recorded-traffic file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Har,
    Gor,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Har => "har",
            Format::Gor => "gor",
        }
    }
}

/// Read a HAR or GoReplay file into pairs.
pub fn read(format: Format, path: &Path, agent: &str) -> Result<Vec<PairRecord>> {
    match format {
        Format::Har => har::read(path, agent),
        Format::Gor => gor::read(path, agent),
    }
}

/// Split a request target — origin-form (`/a?b`) or absolute-form (`https://h/a?b`) — into path
/// and query. The path keeps its percent-encoding; an empty path is `/`.
pub(crate) fn split_url(target: &str) -> std::result::Result<(String, Option<String>), String> {
    if target.starts_with('/') {
        return Ok(match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        });
    }
    let uri: http::Uri = target.parse().map_err(|e| format!("`{}` is not a valid URL ({e})", shorten(target)))?;
    if uri.scheme().is_none() {
        return Err(format!("`{}` is neither a path nor an absolute URL", shorten(target)));
    }
    let path = if uri.path().is_empty() { "/".to_owned() } else { uri.path().to_owned() };
    Ok((path, uri.query().map(str::to_owned)))
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 { format!("{}…", s.chars().take(80).collect::<String>()) } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split() {
        assert_eq!(split_url("/a/b?x=1&y"), Ok(("/a/b".into(), Some("x=1&y".into()))));
        assert_eq!(split_url("/a"), Ok(("/a".into(), None)));
        assert_eq!(
            split_url("https://api.example.com/v1/users?id=%C3%A9"),
            Ok(("/v1/users".into(), Some("id=%C3%A9".into())))
        );
        assert_eq!(split_url("http://h"), Ok(("/".into(), None)));
        assert!(split_url("not a url").is_err());
        assert!(split_url("example.com/a").is_err());
    }
}
