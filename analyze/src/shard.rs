//! The files of a sharded analysis (docs/scale.md, "Analysis in shards"): the plan that splits
//! the inputs into shards, and each shard's partial. The computing halves are
//! [`super::map`] and [`super::merge`]; this is what travels between the processes that run
//! them, and the checks that keep a merge from mixing files that do not belong together.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use shadowdiff_format::reader::Instant;

use super::{MapState, Selection};

/// `format` of a plan.json.
pub const PLAN_FORMAT: &str = "shadowdiff-plan";
/// `format` of a partial.json.
pub const PARTIAL_FORMAT: &str = "shadowdiff-partial";
/// The version of both files this build writes and reads.
pub const VERSION: u32 = 1;
/// The file that completes a partial; written last.
pub const PARTIAL_FILE: &str = "partial.json";

/// A partial's directory under the partials location: `shard-00003`.
pub fn shard_dir(index: usize) -> String {
    format!("shard-{index:05}")
}

/// How the inputs are split, and everything each shard and the merge must agree on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: String,
    pub version: u32,
    /// A digest of everything below: a partial carries it, so merge can tell a partial of
    /// another plan.
    pub id: String,
    pub created_at: Instant,
    /// What the user typed as inputs (for messages).
    pub input_names: Vec<String>,
    pub policy: PlanPolicy,
    pub seed: u64,
    pub selection: Selection,
    /// `--warmup`, in seconds, and the runs it found.
    pub warmup_seconds: Option<f64>,
    pub warmup_runs: usize,
    /// Files the window pruned by their partitions, unopened.
    pub files_pruned: usize,
    /// Every pair file, in input order.
    pub inputs: Vec<PlanInput>,
    /// Each shard's files: a contiguous range of `inputs`.
    pub shards: Vec<Range<usize>>,
}

/// A pair file of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInput {
    /// A local path or an object-store URL.
    pub location: String,
    pub size: u64,
}

/// The policy every shard and the merge judge by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPolicy {
    /// The policy file as given to `plan`, for messages; `None` for the built-in defaults.
    pub file: Option<String>,
    /// `xxh3-128:HEX` of the policy file's bytes (of nothing for the built-in defaults).
    pub digest: String,
    /// The command-line overrides `plan` was given.
    pub fail_on: Option<String>,
    pub max_decoded_body: Option<u64>,
    pub sequential: bool,
}

/// The digest a plan records for a policy file's bytes.
pub fn policy_digest(bytes: &[u8]) -> String {
    format!("xxh3-128:{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

impl Plan {
    /// Sets `id` from the plan's content.
    pub fn seal(mut self) -> Self {
        self.id = String::new();
        let text = serde_json::to_vec(&self).unwrap_or_default();
        self.id = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&text));
        self
    }

    /// Reads a plan.json, checking its format and version; errors are one sentence naming
    /// `location`.
    pub fn parse(bytes: &[u8], location: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
            version: Option<u32>,
        }
        let head: Head = serde_json::from_slice(bytes)
            .map_err(|e| format!("the plan {location} is not JSON ({e}); make one with `shadowdiff plan`"))?;
        if head.format.as_deref() != Some(PLAN_FORMAT) {
            return Err(format!("{location} is not a shadowdiff plan (no \"format\": \"{PLAN_FORMAT}\")"));
        }
        if head.version != Some(VERSION) {
            return Err(format!(
                "the plan {location} has version {}, and this build reads version {VERSION}: make it again with this build",
                head.version.map_or("none".to_owned(), |v| v.to_string())
            ));
        }
        let plan: Plan =
            serde_json::from_slice(bytes).map_err(|e| format!("the plan {location} cannot be read: {e}"))?;
        if plan.shards.iter().any(|r| r.start > r.end || r.end > plan.inputs.len()) {
            return Err(format!("the plan {location} assigns files it does not list"));
        }
        Ok(plan)
    }

    /// The locations of shard `index`'s files.
    pub fn shard_inputs(&self, index: usize) -> Vec<String> {
        self.shards
            .get(index)
            .map_or_else(Vec::new, |r| self.inputs[r.clone()].iter().map(|i| i.location.clone()).collect())
    }
}

/// One shard's result: what its pass 1 counted, and which plan and files it belongs to.
#[derive(Debug, Serialize, Deserialize)]
pub struct PartialFile {
    pub format: String,
    pub version: u32,
    pub plan_id: String,
    pub shard: usize,
    pub shards: usize,
    /// The files it read, as the plan named them.
    pub inputs: Vec<String>,
    pub state: MapState,
}

/// Contiguous ranges of `sizes` for `n` shards, balanced by size: shard `k` starts at the first
/// file at or past `k/n` of the bytes. With at least as many files as shards, no shard is empty;
/// with more shards than files, the extra shards are.
pub fn split(sizes: &[u64], n: usize) -> Vec<Range<usize>> {
    let files = sizes.len();
    let total: u128 = sizes.iter().map(|&s| u128::from(s.max(1))).sum();
    let mut prefix = Vec::with_capacity(files + 1);
    let mut acc = 0u128;
    prefix.push(0u128);
    for &s in sizes {
        acc += u128::from(s.max(1));
        prefix.push(acc);
    }
    let mut bounds = vec![0usize];
    for k in 1..n {
        let goal = total * k as u128 / n as u128;
        let mut b = prefix.partition_point(|&p| p < goal).min(files);
        let prev = *bounds.last().unwrap_or(&0);
        if n <= files {
            b = b.max(prev + 1).min(files - (n - k));
        } else {
            b = b.max(prev);
        }
        bounds.push(b);
    }
    bounds.push(files);
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_contiguous_cover_every_file_and_are_balanced() {
        for (sizes, n) in [
            (vec![10u64; 8], 1usize),
            (vec![10; 8], 2),
            (vec![10; 8], 3),
            (vec![10; 8], 7),
            (vec![10; 8], 8),
            (vec![10; 8], 9),
            (vec![1000, 1, 1, 1, 1], 3),
            (vec![1, 1, 1, 1, 1000], 3),
            (vec![], 4),
            (vec![0, 0, 0], 2),
        ] {
            let shards = split(&sizes, n);
            assert_eq!(shards.len(), n, "{sizes:?} / {n}");
            assert_eq!(shards.first().map(|r| r.start), Some(0));
            assert_eq!(shards.last().map(|r| r.end), Some(sizes.len()));
            assert!(shards.windows(2).all(|w| w[0].end == w[1].start), "{shards:?}");
            if n <= sizes.len() {
                assert!(shards.iter().all(|r| !r.is_empty()), "{sizes:?} / {n}: {shards:?}");
            } else {
                assert_eq!(shards.iter().filter(|r| r.is_empty()).count(), n - sizes.len(), "{shards:?}");
            }
        }
        assert_eq!(split(&[10; 8], 2), vec![0..4, 4..8]);
        assert_eq!(split(&[10; 8], 8), (0..8).map(|i| i..i + 1).collect::<Vec<_>>(), "one per file");
    }

    #[test]
    fn a_plan_says_what_is_wrong_with_it() {
        let bad = |text: &str| Plan::parse(text.as_bytes(), "p.json").expect_err(text);
        assert!(bad("{").contains("is not JSON"));
        assert!(bad(r#"{"format":"x"}"#).contains("is not a shadowdiff plan"));
        assert!(bad(r#"{"format":"shadowdiff-plan","version":9}"#).contains("has version 9"));
    }
}
