//! shadowdiff-reports turns what analyze found into something a person can trust at a glance:
//! a self-contained HTML report (no script, no external fetch, every captured byte escaped by
//! the template engine) with PNG charts drawn in an embedded font. This crate knows nothing of
//! analyze's types: it renders plain view models ([`html`]) and plain numbers ([`charts`]), and
//! [`from_verdict`] maps an analyze output directory (`verdict.json`, read as the JSON schema
//! in docs/verdict.md, and `pairs.parquet`) onto them.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod charts;
mod error;
pub mod from_verdict;
pub mod html;

pub use error::{Error, Result};
