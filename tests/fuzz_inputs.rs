//! The fuzz targets' bodies (fuzz/src/lib.rs, docs/fuzzing.md) on stable, in the suite: every
//! committed seed (fuzz/seeds/<target>/) and every input of a crash found by fuzzing
//! (fuzz/regressions/<target>/) through its target, with the target's properties checked. The
//! fuzzers themselves need nightly and cargo-fuzz (scripts/fuzz); this keeps what they found
//! fixed in every run of the suite, at no extra build cost.

#[path = "../fuzz/src/lib.rs"]
mod targets;
