//! shadowdiff-capture holds the capture agent and, in [`record`], the pair format every other
//! part of shadowdiff reads and writes: the Arrow schema, the Parquet writer (row groups, zstd,
//! rotation, Hive-partitioned paths, write-then-rename) and the streaming reader (files,
//! directories, globs; column projection; typed errors on foreign or damaged files).
//!
//! The agent ([`Agent`], configured by [`config::Config`]) is a reverse proxy that serves every
//! client from the baseline, mirrors captured requests to the canary (and a secondary) in
//! spawned tasks that can never delay or change the client's response, redacts each finished
//! pair ([`redact`]) and hands it to the writer through a bounded queue ([`recorder`]) that drops
//! and counts rather than block. `docs/capture.md` is the user's guide.
#![forbid(unsafe_code)]

pub mod agent;
pub mod body;
pub mod config;
pub mod counters;
pub mod error;
pub mod metrics;
pub mod proxy;
pub mod record;
pub mod recorder;
pub mod redact;
pub mod select;
pub mod server;
pub mod signal;
pub mod upstream;

pub use agent::{Agent, Report};
pub use config::Config;
pub use error::{Error, Result};
