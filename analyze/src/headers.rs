//! Response header diff over a configured set, with a default ignore list of headers that differ
//! on every response (dates, server names, request and trace ids).

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::Serialize;

use crate::json::{DiffKind, Severity};
use crate::rules::HeadersSection;

/// Headers that differ between any two responses without meaning anything: ignored unless
/// `default_ignore = false`. `content-length` is ignored only when bodies are compared (the body
/// diff already says everything a length change would); `set-cookie` is compared by cookie name
/// only, never by value. `content-encoding` is compared, and a difference in it is only ever
/// `changed`: bodies are compared by their decoded content.
pub const DEFAULT_IGNORED: &[&str] = &[
    "age",
    "b3",
    "cf-ray",
    "date",
    "expires",
    "last-modified",
    "request-id",
    "server",
    "server-timing",
    "traceparent",
    "tracestate",
    "uber-trace-id",
    "via",
    "x-amz-cf-id",
    "x-amz-id-2",
    "x-amz-request-id",
    "x-amzn-requestid",
    "x-amzn-trace-id",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-spanid",
    "x-b3-traceid",
    "x-cache",
    "x-cache-hits",
    "x-cloud-trace-context",
    "x-correlation-id",
    "x-datadog-parent-id",
    "x-datadog-trace-id",
    "x-envoy-upstream-service-time",
    "x-request-id",
    "x-response-time",
    "x-runtime",
    "x-served-by",
    "x-timer",
    "x-trace-id",
];

/// Which headers are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRules {
    /// When set, only these (lowercase) headers are compared.
    pub compare: Option<BTreeSet<String>>,
    /// Lowercase names never compared, on top of [`DEFAULT_IGNORED`].
    pub ignore: BTreeSet<String>,
    pub default_ignore: bool,
}

impl Default for HeaderRules {
    fn default() -> Self {
        Self { compare: None, ignore: BTreeSet::new(), default_ignore: true }
    }
}

impl HeaderRules {
    pub(crate) fn from_section(s: &HeadersSection) -> Self {
        let lower = |v: &[String]| v.iter().map(|h| h.to_ascii_lowercase()).collect::<BTreeSet<_>>();
        Self {
            compare: s.compare.as_deref().map(lower),
            ignore: lower(&s.ignore),
            default_ignore: s.default_ignore.unwrap_or(true),
        }
    }

    /// Whether the lowercase header `name` is compared.
    pub fn compares(&self, name: &str, bodies_compared: bool) -> bool {
        if let Some(only) = &self.compare {
            return only.contains(name);
        }
        if self.ignore.contains(name) {
            return false;
        }
        if self.default_ignore && (DEFAULT_IGNORED.contains(&name) || (bodies_compared && name == "content-length")) {
            return false;
        }
        true
    }
}

/// One header that differs. Values of a repeated header are joined with `, ` in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderDifference {
    /// Lowercase header name.
    pub name: String,
    pub kind: DiffKind,
    pub baseline: Option<String>,
    pub canary: Option<String>,
    pub severity: Severity,
}

/// Compares two header lists given as `(name, value)` pairs (values as bytes; invalid UTF-8 is
/// replaced). `bodies_compared` says whether the body diff covers the body, in which case
/// `content-length` is ignored by default. Output is sorted by header name.
pub fn diff_headers<'a>(
    baseline: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    canary: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    rules: &HeaderRules,
    bodies_compared: bool,
) -> Vec<HeaderDifference> {
    // Each side as (name, values joined) sorted by name: lowercased names and trimmed values are
    // borrowed where they need no change, so a pair whose headers agree allocates little (this
    // ran on every pair: 3.5 % of an analysis' CPU as maps of owned strings).
    let collect = |headers: &mut dyn Iterator<Item = (&'a str, &'a [u8])>| {
        let mut kept: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        for (name, value) in headers {
            let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            };
            if !rules.compares(&name, bodies_compared) {
                continue;
            }
            let value = match String::from_utf8_lossy(value) {
                Cow::Borrowed(v) => Cow::Borrowed(if name == "set-cookie" { cookie_name(v) } else { v.trim() }),
                Cow::Owned(v) => Cow::Owned(if name == "set-cookie" { cookie_name(&v) } else { v.trim() }.to_owned()),
            };
            kept.push((name, value));
        }
        // Stable: a repeated header's values stay in the order they came.
        kept.sort_by(|x, y| x.0.cmp(&y.0));
        let mut joined: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(kept.len());
        let mut rest = kept.into_iter().peekable();
        while let Some((name, first)) = rest.next() {
            let mut values = vec![first];
            while rest.peek().is_some_and(|(next, _)| *next == name) {
                values.extend(rest.next().map(|(_, v)| v));
            }
            if name == "set-cookie" {
                values.sort();
            }
            let value = if values.len() == 1 { values.swap_remove(0) } else { Cow::Owned(values.join(", ")) };
            joined.push((name, value));
        }
        joined
    };
    let a = collect(&mut baseline.into_iter());
    let b = collect(&mut canary.into_iter());
    let difference = |name: &str, va: Option<&Cow<'_, str>>, vb: Option<&Cow<'_, str>>| {
        let (kind, severity) = match (va, vb) {
            (Some(x), Some(y)) if x == y => return None,
            (Some(x), Some(y)) => {
                let breaking = name == "content-type"
                    && shadowdiff_format::media::media_type(x) != shadowdiff_format::media::media_type(y);
                (DiffKind::ValueChanged, if breaking { Severity::Breaking } else { Severity::Changed })
            }
            (Some(_), None) => (DiffKind::Removed, Severity::Breaking),
            (None, Some(_)) => (DiffKind::Added, Severity::Additive),
            (None, None) => return None,
        };
        // Bodies are compared decoded, and every client that sent Accept-Encoding decodes
        // whichever coding it gets: a different coding is a change, never a break.
        let severity = if name == "content-encoding" { Severity::Changed } else { severity };
        let owned = |v: Option<&Cow<'_, str>>| v.map(|v| v.to_string());
        Some(HeaderDifference { name: name.to_owned(), kind, baseline: owned(va), canary: owned(vb), severity })
    };
    // Both sides are sorted by name: walk them together.
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.0.cmp(&y.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let found = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                difference(&a[i - 1].0, Some(&a[i - 1].1), None)
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                difference(&b[j - 1].0, None, Some(&b[j - 1].1))
            }
            std::cmp::Ordering::Equal => {
                (i, j) = (i + 1, j + 1);
                difference(&a[i - 1].0, Some(&a[i - 1].1), Some(&b[j - 1].1))
            }
        };
        out.extend(found);
    }
    out
}

/// Compares the headers of two recorded sides.
pub fn diff_header_records(
    baseline: &[shadowdiff_format::Header],
    canary: &[shadowdiff_format::Header],
    rules: &HeaderRules,
    bodies_compared: bool,
) -> Vec<HeaderDifference> {
    fn pairs(h: &[shadowdiff_format::Header]) -> impl Iterator<Item = (&str, &[u8])> {
        h.iter().map(|h| (h.name.as_str(), h.value.as_ref()))
    }
    diff_headers(pairs(baseline), pairs(canary), rules, bodies_compared)
}

fn cookie_name(set_cookie: &str) -> &str {
    set_cookie.split(['=', ';']).next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
        pairs.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
    }

    #[test]
    fn default_ignore_list() {
        let a = h(&[
            ("Date", "Mon"),
            ("Server", "a"),
            ("X-Request-Id", "1"),
            ("traceparent", "00-1"),
            ("Content-Type", "application/json"),
        ]);
        let b = h(&[
            ("date", "Tue"),
            ("server", "b"),
            ("x-request-id", "2"),
            ("traceparent", "00-2"),
            ("content-type", "application/json"),
        ]);
        assert!(diff_headers(a, b, &HeaderRules::default(), true).is_empty());
    }

    #[test]
    fn content_length_only_ignored_when_bodies_compared() {
        let a = h(&[("content-length", "10")]);
        let b = h(&[("content-length", "12")]);
        assert!(diff_headers(a.clone(), b.clone(), &HeaderRules::default(), true).is_empty());
        let d = diff_headers(a, b, &HeaderRules::default(), false);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].severity, Severity::Changed);
    }

    #[test]
    fn repeated_headers_join_in_order_whatever_their_case_and_encoding() {
        let rules = HeaderRules::default();
        let a: Vec<(&str, &[u8])> =
            vec![("Vary", b"Accept"), ("x-b", b"  one "), ("VARY", b"Origin"), ("X-Raw", b"caf\xe9"), ("x-a", b"same")];
        let b: Vec<(&str, &[u8])> = vec![("x-a", b"same"), ("vary", b"Origin"), ("vary", b"Accept"), ("X-New", b"1")];
        let d = diff_headers(a, b, &rules, true);
        let seen: Vec<(&str, DiffKind, Option<&str>, Option<&str>)> =
            d.iter().map(|d| (d.name.as_str(), d.kind, d.baseline.as_deref(), d.canary.as_deref())).collect();
        assert_eq!(
            seen,
            [
                ("vary", DiffKind::ValueChanged, Some("Accept, Origin"), Some("Origin, Accept")),
                ("x-b", DiffKind::Removed, Some("one"), None),
                ("x-new", DiffKind::Added, None, Some("1")),
                ("x-raw", DiffKind::Removed, Some("caf\u{fffd}"), None),
            ]
        );
    }

    #[test]
    fn set_cookie_compared_by_name() {
        let a = h(&[("set-cookie", "sid=abc; Path=/"), ("set-cookie", "theme=dark")]);
        let b = h(&[("set-cookie", "theme=light"), ("set-cookie", "sid=xyz; HttpOnly")]);
        assert!(diff_headers(a.clone(), b, &HeaderRules::default(), true).is_empty());
        let c = h(&[("set-cookie", "sid=xyz")]);
        let d = diff_headers(a, c, &HeaderRules::default(), true);
        assert_eq!(d[0].baseline.as_deref(), Some("sid, theme"));
        assert_eq!(d[0].canary.as_deref(), Some("sid"));
    }

    #[test]
    fn severities() {
        let a = h(&[("content-type", "application/json; charset=utf-8"), ("cache-control", "no-store"), ("etag", "1")]);
        let b = h(&[("content-type", "text/html"), ("cache-control", "max-age=60"), ("x-new", "1")]);
        let d = diff_headers(a, b, &HeaderRules::default(), true);
        let got: Vec<_> = d.iter().map(|d| (d.name.as_str(), d.kind, d.severity)).collect();
        assert_eq!(
            got,
            vec![
                ("cache-control", DiffKind::ValueChanged, Severity::Changed),
                ("content-type", DiffKind::ValueChanged, Severity::Breaking),
                ("etag", DiffKind::Removed, Severity::Breaking),
                ("x-new", DiffKind::Added, Severity::Additive),
            ]
        );
    }

    #[test]
    fn content_encoding_is_only_a_change() {
        let gzip = h(&[("content-encoding", "gzip")]);
        let br = h(&[("content-encoding", "br")]);
        let none = h(&[]);
        for (a, b, kind) in [
            (gzip.clone(), none.clone(), DiffKind::Removed),
            (none, gzip.clone(), DiffKind::Added),
            (gzip, br, DiffKind::ValueChanged),
        ] {
            let d = diff_headers(a, b, &HeaderRules::default(), true);
            assert_eq!(d.len(), 1);
            assert_eq!((d[0].name.as_str(), d[0].kind, d[0].severity), ("content-encoding", kind, Severity::Changed));
        }
    }

    #[test]
    fn configured_sets() {
        let rules = HeaderRules::from_section(&HeadersSection {
            compare: Some(vec!["Cache-Control".into()]),
            ignore: vec![],
            default_ignore: None,
        });
        let a = h(&[("cache-control", "a"), ("etag", "1")]);
        let b = h(&[("cache-control", "b"), ("etag", "2")]);
        let d = diff_headers(a.clone(), b.clone(), &rules, true);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "cache-control");
        let rules = HeaderRules::from_section(&HeadersSection {
            compare: None,
            ignore: vec!["ETag".into()],
            default_ignore: Some(false),
        });
        let a = h(&[("date", "x"), ("etag", "1")]);
        let b = h(&[("date", "y"), ("etag", "2")]);
        let d = diff_headers(a, b, &rules, true);
        assert_eq!(d.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), vec!["date"]);
    }
}
