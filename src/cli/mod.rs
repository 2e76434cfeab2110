//! Command-line definitions, one module per subcommand. Each module turns what the user typed
//! (clap structs) into resolved settings before any work starts, and returns an [`Exit`].

use clap::{Parser, Subcommand};

use crate::exit::Exit;

mod analyze;
mod capture;
mod demo;
mod diff;
mod import;
mod inputs;
mod inspect;
mod replay;
mod report;
mod serve;
mod shard;

/// Compare a canary with its baseline on real traffic, and decide from evidence whether to ship.
///
/// Exit codes: 0 pass (or no difference), 1 fail (or different), 2 usage or input error,
/// 3 inconclusive (too few samples).
#[derive(Debug, Parser)]
#[command(name = "shadowdiff", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands. The two with many flags are boxed so the enum stays small.
#[derive(Debug, Subcommand)]
enum Command {
    Analyze(analyze::Args),
    Capture(Box<capture::Args>),
    Demo(demo::Args),
    Diff(diff::Args),
    Import(import::Args),
    Inspect(inspect::Args),
    Merge(shard::MergeArgs),
    Plan(shard::PlanArgs),
    Replay(Box<replay::Args>),
    Report(report::Args),
    Serve(serve::Args),
}

/// Parse the command line and run the chosen subcommand.
pub fn run() -> anyhow::Result<Exit> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let code = if e.use_stderr() { Exit::Error } else { Exit::Pass };
            e.print()?;
            return Ok(code);
        }
    };
    match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Capture(args) => capture::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Import(args) => import::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Merge(args) => shard::merge(args),
        Command::Plan(args) => shard::plan(args),
        Command::Replay(args) => replay::run(*args),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
    }
}

/// Logs to stderr at `level` (`error`, `warn`, `info`, `debug` or `trace`, as `--log-level`
/// takes it), coloured on a terminal. A second call keeps the first setting.
fn init_logging(level: &str) -> anyhow::Result<()> {
    let filter: tracing_subscriber::filter::LevelFilter = level
        .parse()
        .map_err(|_| anyhow::anyhow!("--log-level must be error, warn, info, debug or trace, not {level}"))?;
    // h2 warns once per abusive HTTP/2 connection (rapid reset, too many resets): capture counts
    // those and logs them at most once a minute, so a flood of such clients cannot flood the log.
    let targets = tracing_subscriber::filter::Targets::new()
        .with_default(filter)
        .with_target("h2", tracing_subscriber::filter::LevelFilter::ERROR);
    let _ = tracing_subscriber::util::SubscriberInitExt::try_init(tracing_subscriber::layer::SubscriberExt::with(
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(filter)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .finish(),
        targets,
    ));
    Ok(())
}
