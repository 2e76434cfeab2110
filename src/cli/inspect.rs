//! `shadowdiff inspect`: what is in a set of pair files.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context;
use shadowdiff_format::{resolve_inputs, summary};

use crate::exit::Exit;

/// Describe pair files: rows, time range, agents, methods, paths, statuses and errors per side,
/// truncated bodies, and the counters the writers recorded.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pair files, directories (searched recursively) or globs.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    inputs: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// How many of the most frequent paths to list (text output).
    #[arg(long, default_value_t = 15, value_name = "N")]
    top: usize,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let fetched = super::inputs::fetch(&args.inputs, &shadowdiff_format::TimeWindow::default())?;
    let files = resolve_inputs(&fetched.paths)?;
    let s = summary::summarize(&files)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &s).context("cannot write JSON to stdout")?;
        writeln!(out)?;
    } else {
        out.write_all(render(&s, args.top).as_bytes())?;
    }
    out.flush()?;
    Ok(Exit::Pass)
}

fn pct(n: u64, total: u64) -> String {
    if total == 0 { "-".into() } else { format!("{:.1}%", n as f64 * 100.0 / total as f64) }
}

fn counts(map: &std::collections::BTreeMap<String, u64>, total: u64) -> String {
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.iter().map(|(k, n)| format!("{k} {n} ({})", pct(**n, total))).collect::<Vec<_>>().join(", ")
}

fn render(s: &summary::Summary, top: usize) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "files        {} ({:.1} MB)", s.files.len(), s.bytes as f64 / 1e6);
    let _ = writeln!(o, "rows         {}", s.rows);
    let versions: Vec<String> = s.schema_versions.iter().map(|(v, n)| format!("v{v} ×{n}")).collect();
    let _ = writeln!(o, "schema       {}", versions.join(", "));
    match &s.time_range {
        Some(t) => {
            let span = t.last - t.first;
            let _ = writeln!(
                o,
                "time range   {} → {} ({})",
                t.first.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
                t.last.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
                human(span)
            );
        }
        None => {
            let _ = writeln!(o, "time range   (no rows)");
        }
    }
    let _ = writeln!(o, "agents       {}", counts(&s.agents, s.rows));
    if s.baseline_origin.keys().any(|k| k != "measured") {
        let _ = writeln!(
            o,
            "baseline     {} (files; `recorded` = copied from earlier pair files)",
            counts(&s.baseline_origin, s.files.len() as u64)
        );
    }
    let _ = writeln!(o, "methods      {}", counts(&s.methods, s.rows));
    let _ = writeln!(
        o,
        "paths        {} distinct{}",
        s.distinct_paths,
        if s.untracked_path_rows > 0 {
            format!(" (+{} rows beyond the tracking cap)", s.untracked_path_rows)
        } else {
            String::new()
        }
    );
    for p in s.paths.iter().take(top) {
        let _ = writeln!(o, "  {:>9}  {:>6}  {}", p.rows, pct(p.rows, s.rows), p.path);
    }
    if s.paths.len() > top {
        let _ = writeln!(o, "  … {} more (use --top N or --json)", s.paths.len() - top);
    }
    let _ = writeln!(o, "status");
    for (side, m) in &s.status {
        let _ = writeln!(o, "  {side:<10} {}", counts(m, s.rows));
    }
    let _ = writeln!(o, "errors");
    for (side, m) in &s.errors {
        let text = if m.is_empty() { "none".to_owned() } else { counts(m, s.rows) };
        let _ = writeln!(o, "  {side:<10} {text}");
    }
    let truncated = if s.truncated.is_empty() { "none".to_owned() } else { counts(&s.truncated, s.rows) };
    let _ = writeln!(o, "truncated    {truncated}");
    if s.counters.is_empty() {
        let _ = writeln!(o, "counters     (none recorded)");
    } else {
        let c: Vec<String> = s.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(o, "counters     {} (sum of {} run(s), each from its newest file)", c.join(" "), s.runs.len());
    }
    o
}

fn human(d: chrono::TimeDelta) -> String {
    let secs = d.num_milliseconds() as f64 / 1000.0;
    if secs < 120.0 {
        format!("{secs:.1} s")
    } else if secs < 7200.0 {
        format!("{:.1} min", secs / 60.0)
    } else if secs < 172_800.0 {
        format!("{:.1} h", secs / 3600.0)
    } else {
        format!("{:.1} days", secs / 86_400.0)
    }
}
