//! `shadowdiff report`: re-render report.html and charts/*.png from an analyze output directory.

use std::path::PathBuf;

use anyhow::bail;
use shadowdiff_reports::from_verdict::{self, FromVerdictError};

use crate::exit::Exit;

/// Re-render report.html and charts/*.png from an earlier `shadowdiff analyze --out DIR`.
///
/// Reads the directory's verdict.json, pairs.parquet, diffs.parquet and examples.json; nothing is
/// analyzed again. A part whose file is missing is left out of the report with the reason.
/// Exits 0 when the report was written (whatever the verdict), 2 on an error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The analyze output directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Print nothing on success.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let verdict = args.dir.join(shadowdiff_analyze::verdict::VERDICT_FILE);
    if !verdict.is_file() {
        bail!("{} does not exist: run `shadowdiff analyze --out {}` first", verdict.display(), args.dir.display());
    }
    let written = match from_verdict::write_report(&args.dir) {
        Ok(w) => w,
        Err(e @ (FromVerdictError::Read { .. } | FromVerdictError::Parse { .. })) => bail!("{e}"),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot write the report into {}", args.dir.display())));
        }
    };
    for part in &written.left_out {
        eprintln!("shadowdiff: left out of the report: {part}");
    }
    if !args.quiet {
        println!("report   {}", written.report.display());
        println!("charts   {}", written.charts.len());
    }
    Ok(Exit::Pass)
}
