//! `shadowdiff capture`: the capture agent, from flags (and a TOML file) to a running proxy that
//! stops cleanly on SIGTERM or SIGINT.

use std::io::Write as _;
use std::path::PathBuf;

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
    /// The service that answers clients (http:// or https:// URL, optional base path).
    #[arg(long, value_name = "URL")]
    baseline: Option<String>,
    /// The service to compare with the baseline; it gets a copy of each captured request.
    #[arg(long, value_name = "URL")]
    canary: Option<String>,
    /// A second instance of the baseline, mirrored too, so analyze can tell noise from change.
    #[arg(long, value_name = "URL")]
    secondary: Option<String>,
    /// Where clients connect [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Where /metrics and /healthz are served [default: none].
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<String>,
    /// Directory for pair files (Hive-partitioned by date and hour).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// TOML file with settings beyond the flags (unknown keys are rejected).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This agent's name in every pair and file name [default: capture-HOSTNAME].
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// PEM certificate chain: serve clients over TLS (needs --tls-key).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificates trusted for https upstreams, beside the built-in roots.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Share of requests captured, 0 to 1 [default: 1].
    #[arg(long, value_name = "RATE")]
    sample_rate: Option<String>,
    /// Sample consistently by this key's value: header:NAME or query:NAME.
    #[arg(long, value_name = "KEY")]
    sample_key: Option<String>,
    /// Capture only paths matching this glob (`*` one segment, `**` any); repeatable.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Never capture paths matching this glob; repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Methods mirrored to the canary, comma-separated [default: GET,HEAD,OPTIONS].
    #[arg(long, value_name = "METHODS")]
    mirror_methods: Option<String>,
    /// Header added to mirrored requests, valued `canary` or `secondary`; `none` disables
    /// [default: x-shadowdiff-mirror].
    #[arg(long, value_name = "NAME")]
    marker_header: Option<String>,
    /// How long a mirror may take, head and body [default: 5s].
    #[arg(long, value_name = "DURATION")]
    mirror_timeout: Option<String>,
    /// Mirrors running at once; past it, pairs are recorded with canary_error=skipped
    /// [default: 1024].
    #[arg(long, value_name = "N")]
    max_in_flight_mirrors: Option<String>,
    /// How long the baseline may take to send its response head [default: 30s].
    #[arg(long, value_name = "DURATION")]
    baseline_timeout: Option<String>,
    /// Connect timeout for every upstream [default: 2s].
    #[arg(long, value_name = "DURATION")]
    connect_timeout: Option<String>,
    /// Request bodies up to this size are read, recorded and mirrored; larger ones go to the
    /// baseline only [default: 1MiB].
    #[arg(long, value_name = "SIZE")]
    max_request_body: Option<String>,
    /// Response bytes recorded per side; the rest is streamed but not kept [default: 1MiB].
    #[arg(long, value_name = "SIZE")]
    max_response_body: Option<String>,
    /// Pairs waiting for the writer before new ones are dropped and counted [default: 16384].
    #[arg(long, value_name = "N")]
    queue: Option<String>,
    /// Approximate memory held by pairs waiting for the writer before new ones are dropped and
    /// counted [default: 256MiB].
    #[arg(long, value_name = "SIZE")]
    queue_bytes: Option<String>,
    /// Close a pair file after this many rows [default: 1000000].
    #[arg(long, value_name = "N")]
    rotate_rows: Option<String>,
    /// Close a pair file at this size [default: 256MiB].
    #[arg(long, value_name = "SIZE")]
    rotate_bytes: Option<String>,
    /// Close a pair file this long after it was opened [default: 5m].
    #[arg(long, value_name = "DURATION")]
    rotate_age: Option<String>,
    /// Also redact this header (authorization, cookie, set-cookie, proxy-authorization and
    /// x-api-key always are); repeatable.
    #[arg(long, value_name = "NAME")]
    redact_header: Vec<String>,
    /// Redact this query parameter's value; repeatable.
    #[arg(long, value_name = "NAME")]
    redact_query: Vec<String>,
    /// Redact this JSON body field (a JSON Pointer; `*` matches any key or index); repeatable.
    #[arg(long, value_name = "POINTER")]
    redact_json: Vec<String>,
    /// Replace redacted values with an HMAC-SHA256 token keyed by this file's content, so equal
    /// secrets stay comparable.
    #[arg(long, value_name = "FILE")]
    hash_key_file: Option<PathBuf>,
    /// As --hash-key-file, with the key in this environment variable.
    #[arg(long, value_name = "VAR")]
    hash_key_env: Option<String>,
    /// How long shutdown waits for in-flight requests and mirrors [default: 10s].
    #[arg(long, value_name = "DURATION")]
    drain_timeout: Option<String>,
    /// Worker threads [default: one per core].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Log level on stderr: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: String,
}

impl Args {
    fn flags(self) -> Flags {
        Flags {
            config: self.config,
            listen: self.listen,
            admin_listen: self.admin_listen,
            baseline: self.baseline,
            canary: self.canary,
            secondary: self.secondary,
            out: self.out,
            agent: self.agent,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            ca_file: self.ca_file,
            baseline_timeout: self.baseline_timeout,
            connect_timeout: self.connect_timeout,
            mirror_timeout: self.mirror_timeout,
            max_in_flight_mirrors: self.max_in_flight_mirrors,
            mirror_methods: self.mirror_methods,
            marker_header: self.marker_header,
            sample_rate: self.sample_rate,
            sample_key: self.sample_key,
            include: self.include,
            exclude: self.exclude,
            max_request_body: self.max_request_body,
            max_response_body: self.max_response_body,
            queue: self.queue,
            queue_bytes: self.queue_bytes,
            rotate_rows: self.rotate_rows,
            rotate_bytes: self.rotate_bytes,
            rotate_age: self.rotate_age,
            redact_headers: self.redact_header,
            redact_query: self.redact_query,
            redact_json: self.redact_json,
            hash_key_file: self.hash_key_file,
            hash_key_env: self.hash_key_env,
            drain_timeout: self.drain_timeout,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let level: tracing_subscriber::filter::LevelFilter = args.log_level.parse().map_err(|_| {
        anyhow::anyhow!("--log-level must be error, warn, info, debug or trace, not {}", args.log_level)
    })?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let threads = args.threads;
    if threads == Some(0) {
        anyhow::bail!("--threads must be at least 1");
    }
    let config = Config::resolve(args.flags())?;
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
    let (baseline, canary, out) = (config.baseline.to_string(), config.canary.to_string(), config.out.clone());
    let agent = Agent::start(config).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}", agent.addr())?;
        if let Some(a) = agent.admin_addr() {
            writeln!(stdout, "admin on http://{a}")?;
        }
        stdout.flush()?;
    }
    tracing::info!(listen = %agent.addr(), %baseline, %canary, out = %out.display(), "Capturing.");
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
    Ok(())
}
