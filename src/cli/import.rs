//! `shadowdiff import`: HAR, GoReplay and Envoy tap files into pair files.

use std::path::PathBuf;

use shadowdiff_capture::redact::{HashKey, JsonPath, RedactRules};
use shadowdiff_replay::import;
use shadowdiff_replay::source::Format;

use crate::exit::Exit;

/// Convert recorded traffic into pair files: a HAR 1.2 file, a GoReplay `.gor` file, or the
/// Envoy tap traces of a baseline's and a canary's sidecars.
///
/// The output is Hive-partitioned pair files that analyze, inspect and replay read like
/// captured traffic.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Debug, clap::Subcommand)]
enum Kind {
    /// A HAR 1.2 file (browser dev tools, proxies, mitmproxy) into pair files.
    ///
    /// Each entry becomes a pair whose baseline side is the recorded response, with its latency
    /// where the file has it. The file may start with a UTF-8 byte order mark.
    Har(FileArgs),
    /// A GoReplay `.gor` file into pair files.
    ///
    /// Payload type 1 is a request, 2 the original response (the baseline side, with its
    /// latency), 3 a response replayed by GoReplay (the canary side). Chunked bodies may end their
    /// lines in CRLF or a bare LF; a response payload that cannot be read is skipped with a warning
    /// naming it and counted (`skipped.unreadable_response`), its pair kept without it.
    Gor(FileArgs),
    EnvoyTap(EnvoyTapArgs),
}

/// One recorded file (HAR or `.gor`).
#[derive(Debug, clap::Args)]
struct FileArgs {
    /// The file to convert.
    file: PathBuf,
    /// Output directory for pair files.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Agent name recorded in every row (default: import-har or import-gor).
    #[arg(long)]
    agent: Option<String>,
}

/// Envoy HTTP tap traces from the baseline's and the canary's sidecars, paired by x-request-id.
///
/// Reads the files Envoy's tap filter writes (`file_per_tap` sink, or a saved admin /tap
/// stream): JSON (`JSON_BODY_AS_BYTES`, `JSON_BODY_AS_STRING`; `.json`) or binary protobuf
/// (`PROTO_BINARY`, `.pb`; `PROTO_BINARY_LENGTH_DELIMITED`, `.pb_length_delimited`), fully
/// buffered traces or streamed segments. A directory is searched recursively for those names.
///
/// A baseline trace and a canary trace with the same `x-request-id` (Envoy copies it onto the
/// mirrored request) become one pair, written under DIR/paired for analyze. Requests seen by one
/// sidecar only go to DIR/baseline-only (complete them with `shadowdiff replay
/// DIR/baseline-only --canary URL`) or DIR/canary-only. Traces without an `x-request-id`, and
/// records that are not HTTP requests, are counted and reported. Without --canary every request
/// is baseline-only.
///
/// Pairs are redacted as capture redacts them (authorization, cookie, set-cookie,
/// proxy-authorization and x-api-key always; more with the --redact flags) before anything is
/// written. Latency is measured by each sidecar from the request head to the response head, when
/// the tap filter records `headers_received_time`. A file that is cut short exits 2 naming the file,
/// the record and its byte offset. See docs/envoy-tap.md.
#[derive(Debug, clap::Args)]
struct EnvoyTapArgs {
    /// Tap files or directories from the baseline's sidecar.
    #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
    baseline: Vec<PathBuf>,
    /// Tap files or directories from the canary's sidecar (which receives the mirrored requests).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    canary: Vec<PathBuf>,
    /// Output directory: pairs go to DIR/paired, DIR/baseline-only and DIR/canary-only.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Agent name recorded in every row.
    #[arg(long, default_value = "import-envoy-tap")]
    agent: String,
    /// Also redact this header (authorization, cookie, set-cookie, proxy-authorization and
    /// x-api-key always are, as in capture); repeatable.
    #[arg(long = "redact-header", value_name = "NAME", value_parser = header_name)]
    redact_headers: Vec<String>,
    /// Redact this query parameter's value; repeatable.
    #[arg(long, value_name = "NAME", value_parser = nonempty)]
    redact_query: Vec<String>,
    /// Redact this JSON body field (a JSON Pointer; `*` matches any key or index); repeatable.
    #[arg(long, value_name = "POINTER", value_parser = json_path)]
    redact_json: Vec<String>,
    /// Replace redacted values with an HMAC-SHA256 token keyed by this file's content, so equal
    /// secrets stay comparable (capture's key gives capture's tokens).
    #[arg(long, value_name = "FILE")]
    hash_key_file: Option<PathBuf>,
}

fn header_name(text: &str) -> Result<String, String> {
    http::HeaderName::from_bytes(text.trim().as_bytes())
        .map(|h| h.as_str().to_owned())
        .map_err(|_| format!("`{text}` is not a header name"))
}

fn nonempty(text: &str) -> Result<String, String> {
    if text.trim().is_empty() { Err("it is empty".into()) } else { Ok(text.trim().to_owned()) }
}

fn json_path(text: &str) -> Result<String, String> {
    JsonPath::parse(text).map(|_| text.to_owned())
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.kind {
        Kind::Har(a) => file(Format::Har, a),
        Kind::Gor(a) => file(Format::Gor, a),
        Kind::EnvoyTap(a) => envoy_tap(a),
    }
}

fn file(format: Format, args: FileArgs) -> anyhow::Result<Exit> {
    let agent = args.agent.unwrap_or_else(|| format!("import-{}", format.name()));
    shadowdiff_format::store::Location::local_only("--out", &args.out.to_string_lossy(), "import's output")?;
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

fn envoy_tap(args: EnvoyTapArgs) -> anyhow::Result<Exit> {
    let key = match &args.hash_key_file {
        Some(path) => Some(HashKey::from_file(path).map_err(|e| anyhow::anyhow!("--hash-key-file {e}"))?),
        None => None,
    };
    let redact = RedactRules {
        headers: args.redact_headers,
        query_params: args.redact_query,
        json_paths: args.redact_json,
        key,
        ..RedactRules::default()
    };
    shadowdiff_format::store::Location::local_only("--out", &args.out.to_string_lossy(), "import's output")?;
    let s = import::import_envoy_tap(&args.baseline, &args.canary, &args.out, &args.agent, &redact)?;
    for e in &s.unreadable {
        eprintln!("shadowdiff: warning: {e}; that trace is counted as unreadable.");
    }
    for m in &s.mismatched {
        eprintln!("shadowdiff: warning: {m}.");
    }
    if s.withheld > 0 {
        eprintln!(
            "shadowdiff: warning: {} body(ies) withheld: redaction rules apply to them and they could not be \
             parsed (counted as {})",
            s.withheld,
            import::WITHHELD_BODIES
        );
    }
    if let Some(first) = s.without_request_id.first() {
        eprintln!(
            "shadowdiff: warning: {} trace(s) have no x-request-id and cannot be paired (the first: {first}); \
             does every Envoy on the path keep the id (docs/envoy-tap.md)?",
            s.without_request_id.len()
        );
    }
    let (b, c) = (&s.baseline, &s.canary);
    let count = |part: &str| s.outputs.iter().find(|o| o.part == part).map_or(0, |o| o.pairs);
    println!(
        "imported {} pairs, {} baseline-only, {} canary-only from {} baseline and {} canary tap file(s) into {}",
        count(import::ENVOY_PAIRED),
        count(import::ENVOY_BASELINE_ONLY),
        count(import::ENVOY_CANARY_ONLY),
        b.files,
        c.files,
        args.out.display()
    );
    for (name, side) in [("baseline", b), ("canary", c)] {
        println!(
            "  {name} traces: {} = {} paired + {} {name}-only + {} without x-request-id + {} unreadable",
            side.traces, side.paired, side.only, side.no_request_id, side.unreadable
        );
    }
    println!("  latency timed on both sides for {} of {} pairs", s.timed, count(import::ENVOY_PAIRED));
    if s.ignored > 0 {
        println!("  {} file(s) in the given directories are not tap files and were left alone", s.ignored);
    }
    for o in &s.outputs {
        println!("  {}: {} pairs in {} file(s) under {}", o.part, o.pairs, o.files.len(), o.dir.display());
    }
    if let Some(o) = s.outputs.iter().find(|o| o.part == import::ENVOY_PAIRED) {
        println!("  judge them: shadowdiff analyze {} --out REPORT_DIR", o.dir.display());
    }
    if let Some(o) = s.outputs.iter().find(|o| o.part == import::ENVOY_BASELINE_ONLY) {
        println!("  complete the baseline-only ones: shadowdiff replay {} --canary URL --out DIR", o.dir.display());
    }
    if !args.canary.is_empty() && c.paired == 0 {
        eprintln!(
            "shadowdiff: warning: no baseline trace shared an x-request-id with a canary trace; is the mirror \
             sending to the tapped canary, and does Envoy generate x-request-id (docs/envoy-tap.md)?"
        );
    }
    Ok(Exit::Pass)
}
