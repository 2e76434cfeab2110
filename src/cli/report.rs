//! `shadowdiff report`: re-write junit.xml, summary.md, report.html and charts/*.png from an
//! analyze output directory.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::exit::Exit;

/// Re-write junit.xml, summary.md, report.html and charts/*.png from an earlier `shadowdiff
/// analyze --out DIR`.
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
    let path = args.dir.join(shadowdiff_format::verdict::VERDICT_FILE);
    if !path.is_file() {
        bail!("{} does not exist: run `shadowdiff analyze --out {}` first", path.display(), args.dir.display());
    }
    // A verdict that cannot be read names its file, and says why, on one line.
    let verdict = shadowdiff_reports::read_verdict(&args.dir)?;
    let written = shadowdiff_reports::write_outputs(&args.dir, &verdict)
        .with_context(|| format!("cannot write the report into {}", args.dir.display()))?;
    for part in &written.left_out {
        eprintln!("shadowdiff: left out of the report: {part}");
    }
    if !args.quiet {
        println!("junit    {}", written.junit.display());
        println!("summary  {}", written.summary.display());
        println!("report   {}", written.report.display());
        println!("charts   {}", written.charts.len());
    }
    Ok(Exit::Pass)
}
