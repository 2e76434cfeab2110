//! Errors of the pair format: reading, resolving and writing pair files. Each message is one
//! sentence that names the file, column or setting at fault, so the binary can print it as it is.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{} does not exist", path.display())]
    NotFound { path: PathBuf },

    #[error("{pattern} is not a valid glob pattern: {message}")]
    BadGlob { pattern: String, message: String },

    #[error("{input} contains no pair files (*.parquet)")]
    NoPairFiles { input: String },

    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is empty, not a Parquet file", path.display())]
    EmptyFile { path: PathBuf },

    #[error("{} is not a Parquet file (it does not start with the PAR1 magic bytes)", path.display())]
    NotParquet { path: PathBuf },

    #[error(
        "{} is truncated: it has no Parquet footer, so it was not closed (a writer still has it open, or was killed)",
        path.display()
    )]
    Truncated { path: PathBuf },

    #[error("{} is a damaged Parquet file", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },

    #[error(
        "{} is not a shadowdiff pair file: column `{column}` should be {expected} but is {found}",
        path.display()
    )]
    SchemaMismatch { path: PathBuf, column: String, expected: String, found: String },

    #[error(
        "{} was written with pair format version {found}, newer than the version {supported} this shadowdiff reads; upgrade shadowdiff",
        path.display()
    )]
    NewerSchemaVersion { path: PathBuf, found: u32, supported: u32 },

    #[error("{} has an invalid value in metadata key `{key}`: {message}", path.display())]
    BadMetadata { path: PathBuf, key: String, message: String },

    #[error("{} has an invalid value in column `{column}`, row {row}: {message}", path.display())]
    BadValue { path: PathBuf, column: String, row: usize, message: String },

    #[error("cannot write pair file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: WriteError,
    },

    #[error("the pair writer is already closed")]
    WriterClosed,

    #[error("invalid writer setting `{setting}`: {message}")]
    BadSetting { setting: &'static str, message: String },

    /// An object-store location that cannot be used: a scheme shadowdiff does not know, a
    /// missing bucket, refused credentials, an unreachable endpoint. `location` is the URL as
    /// given (never with credentials: those come from the environment only).
    #[error("{location} {message}")]
    Store { location: String, message: String },
}

/// The underlying cause of a write failure.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
}

impl Error {
    /// True for errors caused by the input the user gave (bad file, bad path) rather than by
    /// the machine (disk full). The binary maps both to exit code 2; callers that retry use this.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Error::Write { .. } | Error::Io { .. })
    }

    /// True when the cause is a full filesystem or an exhausted quota (ENOSPC, EDQUOT), however
    /// deep in the chain of sources it sits: capture counts those pairs as `dropped.disk_full`.
    pub fn is_disk_full(&self) -> bool {
        let full = |io: &std::io::Error| {
            matches!(io.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
                || matches!(io.raw_os_error(), Some(28 | 122))
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            // `WriteError::Io` is transparent: its `source` skips the io::Error it holds.
            let io = e.downcast_ref::<std::io::Error>().or(match e.downcast_ref::<WriteError>() {
                Some(WriteError::Io(io)) => Some(io),
                _ => None,
            });
            if io.is_some_and(full) {
                return true;
            }
            cause = e.source();
        }
        false
    }
}
