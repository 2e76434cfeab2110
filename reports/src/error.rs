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

/// Writes `bytes` to `path` through a temporary sibling and a rename, so a reader (a browser
/// pointed at the report while analyze runs, a CI step uploading artefacts) never sees half a
/// file.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let write = |path: &std::path::Path| -> std::io::Result<()> {
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = path.with_file_name(tmp_name);
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    };
    write(path).map_err(|source| Error::Write { path: path.to_path_buf(), source })
}
