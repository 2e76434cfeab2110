//! shadowdiff-capture holds the capture agent and, in [`record`], the pair format every other
//! part of shadowdiff reads and writes: the Arrow schema, the Parquet writer (row groups, zstd,
//! rotation, Hive-partitioned paths, write-then-rename) and the streaming reader (files,
//! directories, globs; column projection; typed errors on foreign or damaged files).
#![forbid(unsafe_code)]

pub mod error;
pub mod record;

pub use error::{Error, Result};
