//! `shadowdiff import`: HAR and GoReplay files into pair files.

use std::path::PathBuf;

use shadowdiff_replay::import;
use shadowdiff_replay::source::Format;

use crate::exit::Exit;

/// Convert a HAR 1.2 or GoReplay `.gor` file into pair files.
///
/// Recorded responses become the baseline side, with their latency where the file has it; for
/// `.gor`, responses replayed by GoReplay (payload type 3) become the canary side. The output is
/// Hive-partitioned pair files that analyze, inspect and replay read like captured traffic.
///
/// A HAR file may start with a UTF-8 byte order mark. In a `.gor` file, chunked bodies may end
/// their lines in CRLF or a bare LF, and a response payload that cannot be read is skipped with a
/// warning naming it and counted (`skipped.unreadable_response`), its pair kept without it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The kind of file.
    #[arg(value_enum)]
    format: FormatArg,
    /// The file to convert.
    file: PathBuf,
    /// Output directory for pair files.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Agent name recorded in every row (default: import-har or import-gor).
    #[arg(long)]
    agent: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    /// HTTP Archive 1.2 (browser dev tools, proxies, mitmproxy).
    Har,
    /// GoReplay `.gor` (payloads 1 request, 2 original response, 3 replayed response).
    Gor,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let format = match args.format {
        FormatArg::Har => Format::Har,
        FormatArg::Gor => Format::Gor,
    };
    let agent = args.agent.unwrap_or_else(|| format!("import-{}", format.name()));
    let s = import::import(format, &args.file, &args.out, &agent)?;
    for skipped in &s.skipped {
        eprintln!("shadowdiff: warning: {skipped}; that payload is skipped.");
    }
    let skipped = match s.skipped.len() {
        0 => String::new(),
        n => format!("; {n} unreadable response payload(s) skipped"),
    };
    println!(
        "imported {} pairs ({} with a recorded response{skipped}) from {} into {} file(s) under {}",
        s.pairs,
        s.with_response,
        args.file.display(),
        s.files.len(),
        args.out.display()
    );
    Ok(Exit::Pass)
}
