//! shadowdiff-capture is the capture agent. It writes pairs through `shadowdiff-format`, the crate
//! that owns the pair format; nothing that only reads pair files depends on this one.
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
pub mod framing;
pub mod metrics;
pub mod penalty;
pub mod proxy;
pub mod read_only;
pub mod recorder;
pub mod reflection;
pub mod redact;
pub mod select;
pub mod server;
pub mod signal;
pub mod upstream;

pub use agent::{Agent, Report};
pub use config::Config;
pub use error::{Error, Result};
