//! shadowdiff-replay re-drives recorded traffic against live targets and records fresh pairs.
//! It reads three kinds of recorded traffic ([`source`]): pair files, HAR 1.2 files and GoReplay
//! `.gor` files, and [`import`] converts the latter two into pair files.
//!
//! [`run::replay`] drives recorded requests to live targets ([`target`]) through one loop
//! ([`driver`]) paced by a [`pacer::Pacer`], after [`filter`]s, and records fresh pairs.
//!
//! Pair files are read and written through `shadowdiff-format`; the capture crate is a
//! dependency only for what replay really shares with it: the pooled upstream client.
#![forbid(unsafe_code)]

pub mod driver;
pub mod error;
pub mod filter;
pub mod import;
pub mod pacer;
pub mod recorder;
pub mod run;
pub mod target;
pub mod source;

pub use error::{Error, Result};
