//! Errors of the capture agent: its settings and its listener. Errors of the pair files it
//! writes are the format crate's, carried whole. Each message is one sentence that names the
//! setting or address at fault, so the binary can print it as it is.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A capture flag or configuration key with a bad value; `setting` names it as the user
    /// wrote it (`--sample-rate`, or `sampling.rate in capture.toml`).
    #[error("{setting} {message}")]
    BadConfig { setting: String, message: String },

    #[error("cannot listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// Opening, writing or closing the pair files.
    #[error(transparent)]
    Pairs(#[from] shadowdiff_format::Error),
}

impl Error {
    /// True for errors caused by what the user gave (a bad setting, a bad file) rather than by
    /// the machine (disk full, address in use).
    pub fn is_input_error(&self) -> bool {
        match self {
            Error::BadConfig { .. } => true,
            Error::Listen { .. } => false,
            Error::Pairs(e) => e.is_input_error(),
        }
    }
}
