//! The analyze crate's error type. Bad input *data* (an unparseable body, a document nested too
//! deep) is never an error: it is reported in the comparison. Errors are for bad configuration.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read rules file {path}")]
    ReadRules {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The rules file is not valid TOML or has an unknown or mistyped key; `message` names it.
    #[error("invalid rules file {path}: {message}")]
    ParseRules { path: PathBuf, message: String },
    #[error("cannot read descriptor set {}", path.display())]
    ReadDescriptorSet {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A descriptor set (`[grpc] descriptor_set`, `--descriptor-set`) that is not one; `message` says why.
    #[error("invalid descriptor set {}: {message}", path.display())]
    DescriptorSet { path: PathBuf, message: String },
    #[error("invalid path pattern `{pattern}`: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("invalid route template `{template}`: {reason}")]
    RouteTemplate { template: String, reason: String },
    /// A rule that parsed but makes no sense, e.g. a negative tolerance. `rule` names it as
    /// `section[index]` (`tolerance[2]`).
    #[error("invalid rule {rule}: {reason}")]
    Rule { rule: String, reason: String },
    /// Reading the pair files failed; the capture error names the file and the reason.
    #[error(transparent)]
    Input(#[from] shadowdiff_format::Error),
    /// The input holds no pairs at all (after sampling).
    #[error("{input} holds no pairs to analyze")]
    Empty { input: String },
    /// Writing an output file (or reading back one this run wrote) failed.
    #[error("cannot write {}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The polars aggregation over the output files failed.
    #[error("cannot aggregate {}: {message}", path.display())]
    Aggregate { path: PathBuf, message: String },
    /// A bug: an invariant of analyze's own outputs did not hold.
    #[error("internal error: {message}")]
    Internal { message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
