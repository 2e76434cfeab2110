//! The one JSON-pointer pattern language of shadowdiff: diff rules (ignore, tolerance, array
//! modes, explained differences), capture's body redaction and anything else that names places
//! in a JSON document write the same patterns.
//!
//! A pattern is a JSON Pointer (RFC 6901) whose segments may also be `*` (exactly one segment)
//! or `**` (any number of segments, including none). Patterns match segment by segment, so
//! `/items/*/id` matches `/items/3/id` and `/items/abc/id` but not `/items/3/meta/id`;
//! `/**/password` matches `password` at any depth. RFC 6901 has no escape for `*`, so a key that
//! is literally `*` or `**` is matched by the wildcard itself.

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

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum PatternSeg {
    /// A key, or an array index when it is one (`index`).
    Literal {
        text: String,
        index: Option<usize>,
    },
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
    /// Compiles `pattern`; the error says what is wrong with it.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let tokens = split_pointer(pattern)?;
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

    /// The compiled segments, for walking a document guided by the pattern.
    pub fn segments(&self) -> &[PatternSeg] {
        &self.segs
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
    pub fn matches_route(&self, route: &str) -> bool {
        let segs: Vec<&str> = route.strip_prefix('/').unwrap_or(route).split('/').collect();
        let segs: &[&str] = if route.is_empty() || route == "/" { &[] } else { &segs };
        self.matches_with(segs.len(), |i, seg| match seg {
            PatternSeg::Literal { text, .. } => text == segs[i],
            _ => true,
        })
    }

    /// True when the pattern matches the path of unescaped tokens `tokens` (a document being
    /// walked: keys, and array indices as decimal text).
    pub fn matches_tokens<T: AsRef<str>>(&self, tokens: &[T]) -> bool {
        self.matches_with(tokens.len(), |i, seg| match seg {
            PatternSeg::Literal { text, .. } => text == tokens[i].as_ref(),
            _ => true,
        })
    }

    /// Glob matching over segments with backtracking on the last `**` only, which is linear in
    /// practice and quadratic at worst (the classic wildcard algorithm). `eq(i, seg)` says
    /// whether path segment `i` satisfies a single-segment pattern element.
    pub fn matches_with(&self, len: usize, eq: impl Fn(usize, &PatternSeg) -> bool) -> bool {
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
    fn route_matching() {
        assert!(pat("/users/*").matches_route("/users/{id}"));
        assert!(pat("/users/{id}").matches_route("/users/{id}"));
        assert!(!pat("/users/*").matches_route("/users/{id}/orders"));
        assert!(pat("/**").matches_route("/"));
        assert!(pat("").matches_route("/"));
    }

    #[test]
    fn tokens_of_a_walked_document() {
        assert!(pat("/**/password").matches_tokens(&["user", "auth", "password"]));
        assert!(pat("/items/*/card").matches_tokens(&["items", "0", "card"]));
        assert!(!pat("/items/*/card").matches_tokens(&["items", "card"]));
    }
}
