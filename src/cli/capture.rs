//! `shadowdiff capture`: the capture agent, from flags (and a TOML file) to a running proxy that
//! stops cleanly on SIGTERM or SIGINT.

use std::io::Write as _;

use anyhow::Context;
use shadowdiff_capture::Agent;
use shadowdiff_capture::config::{Config, Flags};
use shadowdiff_capture::signal::stop_signal;

use crate::exit::Exit;

/// Proxy clients to the baseline, mirror to the canary, and record every pair as Parquet.
///
/// Clients always get the baseline's response; each captured request is also sent to the canary
/// (and a secondary), and the request with its responses is written under --out. Stops on
/// SIGTERM or SIGINT: stops accepting, drains in-flight requests, closes every file. See
/// docs/capture.md for every setting.
#[derive(Debug, clap::Args)]
#[command(after_help = "Every flag has a key in the --config TOML file; a flag wins over its key.")]
pub struct Args {
    #[command(flatten)]
    flags: Flags,
    /// Worker threads [default: one per core].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Log level on stderr: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: String,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    super::init_logging(&args.log_level)?;
    let threads = args.threads;
    if threads == Some(0) {
        anyhow::bail!("--threads must be at least 1");
    }
    let config = Config::resolve(args.flags)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("shadowdiff-capture");
    if let Some(n) = threads {
        rt.worker_threads(n);
    }
    let rt = rt.build().context("cannot start the async runtime")?;
    rt.block_on(serve(config))?;
    Ok(Exit::Pass)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Handlers first, so a signal that arrives as soon as the address is printed is not lost.
    let stop = stop_signal().context("cannot install the SIGTERM/SIGINT handlers")?;
    let (baseline, canary) = (config.baseline.to_string(), config.canary.to_string());
    let out = config.upload.as_ref().map_or_else(|| config.out.display().to_string(), |u| u.url.to_string());
    let agent = Agent::start(config).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}", agent.addr())?;
        if let Some(a) = agent.admin_addr() {
            writeln!(stdout, "admin on http://{a}")?;
        }
        stdout.flush()?;
    }
    tracing::info!(listen = %agent.addr(), %baseline, %canary, %out, "Capturing.");
    stop.await;
    tracing::info!("Stopping: draining in-flight requests.");
    let report = agent.shutdown().await?;
    let c = &report.counters;
    eprintln!(
        "capture: seen {} recorded {} dropped {} skipped {} in {} file(s){}",
        c.get("seen").copied().unwrap_or(0),
        c.get("recorded").copied().unwrap_or(0),
        c.get("dropped").copied().unwrap_or(0),
        c.get("skipped").copied().unwrap_or(0),
        report.writer.files.len(),
        if report.drained { "" } else { " (drain deadline reached)" }
    );
    if let Some(u) = &report.upload {
        eprintln!(
            "capture: uploaded {} file(s) ({} pairs) to {out}; upload failures {}; dropped from the spool {} file(s) ({} pairs); left in the spool {} file(s) ({} pairs){}",
            c.get("upload.files").copied().unwrap_or(0),
            c.get("upload.pairs").copied().unwrap_or(0),
            c.get("upload.failures").copied().unwrap_or(0),
            c.get("spool.dropped_files").copied().unwrap_or(0),
            c.get("spool.dropped_pairs").copied().unwrap_or(0),
            u.left.len(),
            u.left_pairs(),
            if u.left.is_empty() { String::new() } else { format!(" under {}", u.spool.display()) },
        );
    }
    Ok(())
}
