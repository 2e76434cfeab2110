//! The pair format: one Parquet row per client request with every response it got.
//!
//! [`schema`] names every column; [`PairRecord`] is one row in memory; [`PairWriter`] is the one
//! writer and [`PairReader`] the one reader. `docs/schema.md` documents the format for users.

pub mod atomic;
pub mod batch;
pub mod pair;
pub mod reader;
pub mod schema;
pub mod summary;
pub mod writer;

#[cfg(test)]
mod tests;

pub use pair::{Header, PairRecord, SideRecord};
pub use reader::{FileInfo, PairBatch, PairFile, PairReader, ReadOptions, resolve_inputs};
pub use schema::{SCHEMA, SCHEMA_VERSION, Side};
pub use writer::{BaselineOrigin, CounterSource, PairWriter, WriterConfig, WriterStats};
