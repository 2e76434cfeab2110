//! JSON Pointer (RFC 6901) paths and the path patterns rules are written in.
//!
//! A pattern is a JSON Pointer whose segments may also be `*` (exactly one segment) or `**`
//! (any number of segments, including none). Patterns match segment by segment, so `/items/*/id`
//! matches `/items/3/id` and `/items/abc/id` but not `/items/3/meta/id`; `/**/updated_at` matches
//! `updated_at` at any depth. RFC 6901 has no escape for `*`, so a key that is literally `*` or
//! `**` is matched by the wildcard itself.

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// One step of a path inside a document being walked: an object key or an array index.
///
/// Array elements carry two indices: where the element sits in the document the difference is
/// reported against (`display`), and where it sits while an RFC 6902 patch is being applied
/// (`patch`, [`Seg::APPEND`] for `-`). They differ once earlier elements were inserted or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg<'v> {
    Key(&'v str),
    Index { display: usize, patch: usize },
}

impl Seg<'_> {
    /// The patch index that means "append" (`-` in RFC 6902).
    pub(crate) const APPEND: usize = usize::MAX;

    pub(crate) fn index(display: usize, patch: usize) -> Self {
        Seg::Index { display, patch }
    }
}

/// Appends `/token` to `out`, escaping `~` as `~0` and `/` as `~1` (RFC 6901 §3).
pub fn push_token(out: &mut String, token: &str) {
    out.push('/');
    if !token.contains(['~', '/']) {
        out.push_str(token);
        return;
    }
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// Splits a JSON Pointer into unescaped tokens. `""` is the whole document (no tokens).
pub fn split_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err("a JSON pointer must be empty or start with `/`".to_owned());
    };
    rest.split('/')
        .map(|raw| {
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    token.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => token.push('~'),
                    Some('1') => token.push('/'),
                    _ => return Err(format!("`~` must be followed by `0` or `1` in `{raw}`")),
                }
            }
            Ok(token)
        })
        .collect()
}

/// Builds the display pointer of `path` (array elements at their reported index).
pub(crate) fn display_pointer(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => push_token(&mut out, k),
            Seg::Index { display, .. } => {
                let _ = write!(out, "/{display}");
            }
        }
    }
    out
}

/// Builds the pointer of `path` as seen while a patch is applied.
pub(crate) fn patch_pointer(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => push_token(&mut out, k),
            Seg::Index { patch: Seg::APPEND, .. } => out.push_str("/-"),
            Seg::Index { patch, .. } => {
                let _ = write!(out, "/{patch}");
            }
        }
    }
    out
}

/// The field a difference belongs to: its pointer with every array index replaced by `*`, so
/// that `/items/0/price` and `/items/7/price` are counted as one field across pairs.
pub(crate) fn field_pointer(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => push_token(&mut out, k),
            Seg::Index { .. } => out.push_str("/*"),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum PatternSeg {
    Literal { text: String, index: Option<usize> },
    One,
    AnyDepth,
}

/// A compiled path pattern: a JSON Pointer whose segments may be `*` or `**`.
#[derive(Debug, Clone, PartialEq)]
pub struct PathPattern {
    source: String,
    segs: Vec<PatternSeg>,
}

impl PathPattern {
    /// Compiles `pattern`; errors say what is wrong with it.
    pub fn new(pattern: &str) -> Result<Self> {
        let tokens = split_pointer(pattern).map_err(|reason| Error::Pattern { pattern: pattern.to_owned(), reason })?;
        let segs = tokens
            .into_iter()
            .map(|t| match t.as_str() {
                "*" => PatternSeg::One,
                "**" => PatternSeg::AnyDepth,
                _ => PatternSeg::Literal { index: index_token(&t), text: t },
            })
            .collect();
        Ok(Self { source: pattern.to_owned(), segs })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern matches the JSON Pointer `pointer` (which must be well formed).
    pub fn matches_pointer(&self, pointer: &str) -> bool {
        match split_pointer(pointer) {
            Ok(tokens) => self.matches_with(tokens.len(), |i, seg| match seg {
                PatternSeg::Literal { text, .. } => *text == tokens[i],
                _ => true,
            }),
            Err(_) => false,
        }
    }

    /// True when the pattern matches the path of `/`-separated route segments (`/users/{id}`).
    pub(crate) fn matches_route(&self, route: &str) -> bool {
        let segs: Vec<&str> = route.strip_prefix('/').unwrap_or(route).split('/').collect();
        let segs: &[&str] = if route.is_empty() || route == "/" { &[] } else { &segs };
        self.matches_with(segs.len(), |i, seg| match seg {
            PatternSeg::Literal { text, .. } => text == segs[i],
            _ => true,
        })
    }

    pub(crate) fn matches(&self, path: &[Seg<'_>]) -> bool {
        self.matches_with(path.len(), |i, seg| match (seg, &path[i]) {
            (PatternSeg::Literal { text, .. }, Seg::Key(k)) => text == k,
            (PatternSeg::Literal { index, .. }, Seg::Index { display, .. }) => *index == Some(*display),
            _ => true,
        })
    }

    /// Glob matching over segments with backtracking on the last `**` only, which is linear in
    /// practice and quadratic at worst (the classic wildcard algorithm). `eq(i, seg)` says
    /// whether path segment `i` satisfies a single-segment pattern element.
    fn matches_with(&self, len: usize, eq: impl Fn(usize, &PatternSeg) -> bool) -> bool {
        let pat = &self.segs;
        let (mut p, mut s) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while s < len {
            if p < pat.len() && pat[p] == PatternSeg::AnyDepth {
                star = Some((p, s));
                p += 1;
            } else if p < pat.len() && eq(s, &pat[p]) {
                p += 1;
                s += 1;
            } else if let Some((sp, ss)) = star {
                p = sp + 1;
                s = ss + 1;
                star = Some((sp, ss + 1));
            } else {
                return false;
            }
        }
        pat[p..].iter().all(|seg| *seg == PatternSeg::AnyDepth)
    }
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// An RFC 6901 array index: `0` or digits without a leading zero.
fn index_token(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(p: &str) -> PathPattern {
        PathPattern::new(p).expect("valid pattern")
    }

    #[test]
    fn escapes_tokens() {
        let mut s = String::new();
        push_token(&mut s, "a/b~c");
        assert_eq!(s, "/a~1b~0c");
        assert_eq!(split_pointer("/a~1b~0c/x").unwrap(), vec!["a/b~c", "x"]);
        assert_eq!(split_pointer("").unwrap(), Vec::<String>::new());
        assert_eq!(split_pointer("/").unwrap(), vec![""]);
        assert!(split_pointer("a").is_err());
        assert!(split_pointer("/a~2").is_err());
    }

    #[test]
    fn pattern_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("/a", "/a", true),
            ("/a", "/a/b", false),
            ("/a", "/b", false),
            ("/a/*", "/a/b", true),
            ("/a/*", "/a", false),
            ("/a/*", "/a/b/c", false),
            ("/a/*/c", "/a/0/c", true),
            ("/a/**", "/a", true),
            ("/a/**", "/a/b/c/d", true),
            ("/**/id", "/id", true),
            ("/**/id", "/x/y/id", true),
            ("/**/id", "/x/y/idx", false),
            ("/**", "", true),
            ("/**", "/anything/at/all", true),
            ("", "", true),
            ("", "/a", false),
            ("/a/**/z", "/a/z", true),
            ("/a/**/z", "/a/b/c/z", true),
            ("/a/**/z", "/a/b/c/y", false),
            ("/a~1b", "/a~1b", true),
            ("/items/0", "/items/0", true),
            ("/**/*/x", "/x", false),
            ("/**/*/x", "/q/x", true),
        ];
        for (p, ptr, want) in cases {
            assert_eq!(pat(p).matches_pointer(ptr), *want, "{p} vs {ptr}");
        }
    }

    #[test]
    fn pattern_matches_walk_segments() {
        let path = [Seg::Key("items"), Seg::index(3, 1), Seg::Key("id")];
        assert!(pat("/items/*/id").matches(&path));
        assert!(pat("/items/3/id").matches(&path));
        assert!(!pat("/items/1/id").matches(&path), "rules see the reported index");
        assert!(!pat("/items/03/id").matches(&path));
        assert_eq!(display_pointer(&path), "/items/3/id");
        assert_eq!(patch_pointer(&path), "/items/1/id");
        assert_eq!(field_pointer(&path), "/items/*/id");
    }

    #[test]
    fn route_matching() {
        assert!(pat("/users/*").matches_route("/users/{id}"));
        assert!(pat("/users/{id}").matches_route("/users/{id}"));
        assert!(!pat("/users/*").matches_route("/users/{id}/orders"));
        assert!(pat("/**").matches_route("/"));
        assert!(pat("").matches_route("/"));
    }
}
