//! shadowdiff-replay re-drives recorded traffic against live targets and records fresh pairs.
//! It reads three kinds of recorded traffic ([`source`]): pair files, HAR 1.2 files and GoReplay
//! `.gor` files, and [`import`] converts the latter two into pair files.
//!
//! The driver (pacing, targets, recording) is being built: see the replay issue.
#![forbid(unsafe_code)]

pub mod error;
pub mod import;
pub mod pacer;
pub mod source;

pub use error::{Error, Result};
