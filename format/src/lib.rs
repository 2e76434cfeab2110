//! shadowdiff-format is the bottom floor of shadowdiff: the pair format every other crate reads
//! and writes, and nothing of the proxy. One Parquet row per client request with every response
//! it got: [`schema`] names every column and the file metadata keys; [`PairRecord`] is one row in
//! memory; [`PairWriter`] is the one writer (row groups, zstd, rotation, Hive-partitioned paths,
//! write-then-rename) and [`PairReader`] the one reader (files, directories, globs; column
//! projection; typed [`Error`]s on foreign or damaged files). [`summary`] reads the metadata and
//! counts `shadowdiff inspect` shows. capture, replay, analyze, reports and fixtures all build on
//! this crate; it depends on Arrow and Parquet only, so reading a pair file never pulls in hyper
//! or rustls. `docs/schema.md` documents the format for users.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod atomic;
pub mod batch;
pub mod encoding;
pub mod error;
pub mod examples;
pub mod media;
pub mod pair;
pub mod pointer;
pub mod reader;
pub mod retain;
pub mod schema;
pub mod store;
pub mod summary;
pub mod verdict;
pub mod vocab;
pub mod writer;

#[cfg(test)]
mod tests;

pub use error::{Error, Result, WriteError};
pub use pair::{Header, PairRecord, SideRecord};
pub use reader::{FileInfo, PairBatch, PairFile, PairReader, ReadOptions, TimeWindow, resolve_inputs};
pub use schema::{SCHEMA, SCHEMA_VERSION, Side};
pub use writer::{
    BaselineOrigin, CloseHook, ClosedFile, CounterSource, MetadataSource, PairWriter, WriterConfig, WriterStats,
};
