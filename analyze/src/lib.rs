//! shadowdiff-analyze judges a canary against its baseline. This first part is the diff engine:
//! pure functions over plain values that compare two responses — structural JSON diffs keyed by
//! RFC 6901 pointers with severities and an RFC 6902 patch ([`json`]), text and binary bodies
//! ([`body`]), headers ([`headers`]) — under per-path rules read from a TOML file ([`rules`]),
//! plus route templates ([`route`]) and Diffy-style noise detection ([`noise`]). Loading pair
//! files, statistics, aggregation and the policy verdict build on it.
//!
//! The judge is built on it: [`pipeline`] runs named passes — pass 1 streams pair files through
//! [`evaluate`] in parallel and counts, the noise verdicts classify every field, pass 2 writes
//! [`outputs`] (`pairs.parquet`, `diffs.parquet`), and [`aggregate`] groups them by endpoint with
//! polars — and [`judge`], a pure function, applies the [`policy`]'s checks with the [`stats`]
//! through one skeleton to produce the typed verdict ([`verdict`] writes `verdict.json`; the
//! reports crate renders the rest).
//!
//! It reads pair files through `shadowdiff-format` and does not depend on the capture agent; the
//! types of its outputs (verdict.json, examples.json, the vocabulary) live in that crate too, so
//! the report reads them typed.
//!
//! [`aggregate`], [`pipeline`] and [`judge`] need the default feature `aggregate` (polars); without
//! it the crate is the diff engine and the parsers alone, which is what the fuzz targets build.
//!
//! Nothing here panics or recurses on input: documents are walked with an explicit stack, arrays
//! are aligned only up to a size cap, and pathological bodies are reported, not crashed on.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::type_complexity))]

#[cfg(feature = "aggregate")]
pub mod aggregate;
pub mod body;
pub mod error;
pub mod evaluate;
pub mod examples;
pub mod grpc;
pub mod headers;
pub mod json;
#[cfg(feature = "aggregate")]
pub mod judge;
pub mod noise;
pub mod outputs;
pub mod pair;
pub mod path;
#[cfg(feature = "aggregate")]
pub mod pipeline;
pub mod policy;
pub mod route;
pub mod route_key;
pub mod rules;
pub mod stats;
pub mod stream;
pub mod verdict;

pub use body::{BodyComparison, ComparedAs, compare_bodies, parse_body, parse_json};
pub use error::{Error, Result};
pub use headers::{HeaderDifference, HeaderRules, diff_headers};
pub use json::{DiffKind, Difference, Severity, Summary, diff_json, diff_json_with_patch, json_patch};
pub use noise::{NoiseCounter, Thresholds, Verdict};
pub use pair::{SideComparison, compare_sides, compare_status};
pub use path::PathPattern;
pub use policy::{FailOn, Policy};
pub use route::{RouteRecorder, template_path};
pub use rules::{ArrayMode, Rules, Tolerance};
