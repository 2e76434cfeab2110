//! Structural JSON diff: differences keyed by RFC 6901 pointers, each with a kind and a
//! severity, and the same comparison as an RFC 6902 JSON Patch.
//!
//! The walk uses an explicit stack, so depth never touches the call stack; arrays in list mode
//! are aligned with an LCS (Myers, from `similar`) over element hashes, and fall back to index
//! order past [`crate::rules::Rules::max_lcs_len`] so the cost stays linear.

mod value;
mod walk;

use serde::Serialize;
use serde_json::Value;

pub use value::{json_eq, type_name};

use crate::rules::Rules;

/// What kind of difference was found at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// Present in the canary only.
    Added,
    /// Present in the baseline only.
    Removed,
    /// Same JSON type, different value.
    ValueChanged,
    /// Different JSON types (`number` against `string`, `null` against anything).
    TypeChanged,
    /// An array too long to align (over `max_lcs_len`) changed length; its elements were compared
    /// by index and the length change is this one difference. `baseline` and `canary` hold the
    /// lengths.
    ArrayLength,
}

impl DiffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Added => "added",
            DiffKind::Removed => "removed",
            DiffKind::ValueChanged => "value_changed",
            DiffKind::TypeChanged => "type_changed",
            DiffKind::ArrayLength => "array_length",
        }
    }
}

pub use shadowdiff_format::vocab::Severity;

/// One difference between a baseline document and a canary document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// RFC 6901 pointer. Removed and changed elements are at their baseline index, added elements
    /// at their canary index.
    pub path: String,
    /// The path with every array index replaced by `*`: the field this difference counts toward
    /// when differences are aggregated over many pairs.
    pub field: String,
    pub kind: DiffKind,
    /// The baseline value; absent for `added`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Value>,
    /// The canary value; absent for `removed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<Value>,
    pub severity: Severity,
    /// The reason from a matching `[[explained]]` rule: a known, accepted difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained: Option<String>,
}

/// Counts by severity; explained differences are counted apart, not by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub breaking: usize,
    pub changed: usize,
    pub additive: usize,
    pub explained: usize,
}

impl Summary {
    pub fn of(differences: &[Difference]) -> Self {
        let mut s = Summary::default();
        for d in differences {
            match (&d.explained, d.severity) {
                (Some(_), _) => s.explained += 1,
                (None, Severity::Breaking) => s.breaking += 1,
                (None, Severity::Changed) => s.changed += 1,
                (None, Severity::Additive) => s.additive += 1,
            }
        }
        s
    }

    /// Differences that are not explained.
    pub fn unexplained(&self) -> usize {
        self.breaking + self.changed + self.additive
    }
}

/// The differences between `baseline` and `canary` under `rules`, in document order.
/// `route` is the request's route template; rules scoped to other routes do not apply.
pub fn diff_json(baseline: &Value, canary: &Value, rules: &Rules, route: Option<&str>) -> Vec<Difference> {
    walk::Walker::new(rules, route, false).run(baseline, canary).0
}

/// An RFC 6902 JSON Patch (a list of operation objects) that turns `baseline` into `canary`.
///
/// With default rules, applying it yields exactly `canary`. Parts the rules ignore or tolerate
/// get no operations; arrays compared as set, multiset or keyed are patched to be equal in that
/// mode (elements removed by index, new ones appended), not reordered.
pub fn json_patch(baseline: &Value, canary: &Value, rules: &Rules, route: Option<&str>) -> Vec<Value> {
    walk::Walker::new(rules, route, true).run(baseline, canary).1
}

/// [`diff_json`] and [`json_patch`] from one walk.
pub fn diff_json_with_patch(
    baseline: &Value,
    canary: &Value,
    rules: &Rules,
    route: Option<&str>,
) -> (Vec<Difference>, Vec<Value>) {
    walk::Walker::new(rules, route, true).run(baseline, canary)
}

#[cfg(test)]
mod tests;
