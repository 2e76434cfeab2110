//! The crate's one error type.

use std::path::PathBuf;

/// What went wrong while rendering or writing a report.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// plotters failed to draw a chart (or panicked on input it could not handle).
    #[error("cannot draw the {chart} chart: {message}")]
    Chart {
        /// Which chart, as in its file name (`latency_cdf`).
        chart: &'static str,
        /// plotters' own description of the failure.
        message: String,
    },
    /// The embedded font was rejected by the glyph rasteriser; a build problem, not bad input.
    #[error("the embedded chart font cannot be loaded")]
    Font,
    /// The PNG encoder failed on a rendered chart.
    #[error("cannot encode the {chart} chart as PNG")]
    Encode {
        /// Which chart.
        chart: &'static str,
        /// The encoder's error.
        #[source]
        source: png::EncodingError,
    },
    /// The HTML template failed to render.
    #[error("cannot render the HTML report")]
    Template(#[source] askama::Error),
    /// `verdict.json` is missing or unreadable.
    #[error("cannot read {path}")]
    ReadVerdict {
        /// The verdict file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `verdict.json` is not JSON.
    #[error("{path} is not valid JSON")]
    VerdictJson {
        /// The verdict file.
        path: PathBuf,
        /// Where the JSON breaks.
        #[source]
        source: serde_json::Error,
    },
    /// `verdict.json` is JSON but not a verdict this version reads (a field missing or of
    /// another type).
    #[error("{path} is not a verdict of schema version {expected}")]
    VerdictShape {
        /// The verdict file.
        path: PathBuf,
        /// The schema version this version reads.
        expected: u32,
        /// Which field does not fit, by its path.
        #[source]
        source: serde_path_to_error::Error<serde_json::Error>,
    },
    /// `verdict.json` was written with another schema version.
    #[error("{path} has schema version {found}; this shadowdiff reads version {expected}")]
    VerdictVersion {
        /// The verdict file.
        path: PathBuf,
        /// Its `schema_version`.
        found: u32,
        /// The schema version this version reads.
        expected: u32,
    },
    /// The JUnit report could not be serialized.
    #[error("cannot serialize the JUnit report")]
    Junit(#[source] quick_junit::SerializeError),
    /// A report file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes `bytes` to `path` whole or not at all (shadowdiff-format's one atomic-write helper), so
/// a reader (a browser pointed at the report while analyze runs, a CI step uploading artefacts)
/// never sees half a file.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    shadowdiff_format::atomic::write_atomic(path, bytes)
        .map_err(|source| Error::Write { path: path.to_path_buf(), source })
}
