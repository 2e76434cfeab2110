//! JSON Pointer (RFC 6901) paths of a document being walked. The pattern language rules are
//! written in is shadowdiff's one JSON-pointer pattern language, `shadowdiff_format::pointer`.

use std::fmt::Write as _;

pub use shadowdiff_format::pointer::{PathPattern, PatternSeg, push_token, split_pointer};

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

/// Patterns matched against a path being walked, by the index each element is reported at.
pub(crate) trait MatchesWalk {
    fn matches(&self, path: &[Seg<'_>]) -> bool;
}

impl MatchesWalk for PathPattern {
    fn matches(&self, path: &[Seg<'_>]) -> bool {
        self.matches_with(path.len(), |i, seg| match (seg, &path[i]) {
            (PatternSeg::Literal { text, .. }, Seg::Key(k)) => text == k,
            (PatternSeg::Literal { index, .. }, Seg::Index { display, .. }) => *index == Some(*display),
            _ => true,
        })
    }
}

/// Compiles a rule's pattern; the error names it.
pub fn compile(pattern: &str) -> Result<PathPattern> {
    PathPattern::new(pattern).map_err(|reason| Error::Pattern { pattern: pattern.to_owned(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(p: &str) -> PathPattern {
        PathPattern::new(p).expect("valid pattern")
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
}
