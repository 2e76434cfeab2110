//! Inputs that may name an object store (`s3://BUCKET/PREFIX`, with Hive partitions and globs):
//! their pair files are listed, pruned by the time window, and downloaded into a scratch
//! directory that lives as long as the command; the file-based readers then read them as local
//! files. Local inputs pass through unchanged.

use shadowdiff_format::TimeWindow;
use shadowdiff_format::store::fetch_inputs;

/// Inputs ready for the file-based readers, and the scratch directory holding what was fetched.
#[derive(Debug)]
pub struct Fetched {
    pub paths: Vec<String>,
    _scratch: Option<tempfile::TempDir>,
}

/// Fetch every object-store input (only the partitions `window` may hold) into a scratch
/// directory under the system's temporary directory, removed when the result is dropped.
pub fn fetch(inputs: &[String], window: &TimeWindow) -> anyhow::Result<Fetched> {
    let remote = inputs.iter().any(|i| i.contains("://"));
    if !remote {
        return Ok(Fetched { paths: inputs.to_vec(), _scratch: None });
    }
    let scratch = scratch()?;
    let paths = fetch_inputs(inputs, window, scratch.path())?;
    Ok(Fetched { paths, _scratch: Some(scratch) })
}

/// Local copies of the pair files at `locations` (each one file, as a plan names them): local
/// paths as they are, object-store files downloaded into the scratch directory.
pub fn fetch_files(locations: &[String]) -> anyhow::Result<Fetched> {
    if !locations.iter().any(|l| l.contains("://")) {
        return Ok(Fetched { paths: locations.to_vec(), _scratch: None });
    }
    let scratch = scratch()?;
    let mut downloads = Vec::new();
    let paths = locations
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if !l.contains("://") {
                return l.clone();
            }
            let name = l.rsplit('/').next().unwrap_or("pairs.parquet");
            let to = scratch.path().join(format!("{i:06}-{name}"));
            let local = to.to_string_lossy().into_owned();
            downloads.push((l.clone(), to));
            local
        })
        .collect();
    shadowdiff_format::store::files::get_all(&downloads)?;
    Ok(Fetched { paths, _scratch: Some(scratch) })
}

fn scratch() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("shadowdiff-fetch-")
        .tempdir()
        .map_err(|e| anyhow::anyhow!("cannot create a scratch directory for the fetched pair files: {e}"))
}

impl Fetched {
    /// The paths, as paths.
    pub fn local_paths(&self) -> Vec<std::path::PathBuf> {
        self.paths.iter().map(std::path::PathBuf::from).collect()
    }
}
