//! Errors of the replay crate: each message is one sentence naming the file and, for HAR and
//! GoReplay input, the entry at fault.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a valid HAR file: {message}", path.display())]
    Har { path: PathBuf, message: String },

    #[error("{}: HAR entry {index} ({field}): {message}", path.display())]
    HarEntry { path: PathBuf, index: usize, field: &'static str, message: String },

    #[error("{}: GoReplay payload {index} at byte {offset}: {message}", path.display())]
    Gor { path: PathBuf, index: usize, offset: usize, message: String },

    #[error("{}: Envoy tap record {index} at byte {offset}: {message}", path.display())]
    EnvoyTap { path: PathBuf, index: usize, offset: usize, message: String },

    #[error("{}: {message}", path.display())]
    EnvoyTapFile { path: PathBuf, message: String },

    #[error(transparent)]
    Pairs(#[from] shadowdiff_format::Error),

    #[error("{0}")]
    Setting(String),
}
