//! `shadowdiff diff A B`: compare two documents with the analyze diff engine.

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;
use shadowdiff_analyze::body::{self, BodyComparison, ComparedAs, ParsedBody};
use shadowdiff_analyze::{ArrayMode, DiffKind, Difference, Rules, Severity, Summary, Tolerance};

use crate::exit::Exit;

/// Compare two JSON (or text, or binary) files: baseline A against canary B.
///
/// JSON is compared structurally: paths are RFC 6901 pointers, arrays are aligned, and every
/// difference has a severity (breaking, changed, additive). Other files are compared line by
/// line, or by hash when binary. Exit 0 when equal (or only explained differences remain), 1
/// when different, 2 on error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The baseline document.
    #[arg(value_name = "A")]
    baseline: PathBuf,
    /// The canary document.
    #[arg(value_name = "B")]
    canary: PathBuf,
    /// Output: `text` for people (coloured on a terminal), `json` for the list of differences,
    /// `json-patch` for an RFC 6902 patch that turns A into B.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Ignore this path and everything below it: a JSON pointer in which `*` matches one segment
    /// and `**` any number (`/meta/**`, `/items/*/updated_at`). Repeatable.
    #[arg(long = "ignore", value_name = "PATH")]
    ignore: Vec<String>,
    /// Numbers this close are equal: an absolute difference (`0.01`), or relative with a `%`
    /// suffix (`0.5%`).
    #[arg(long, value_name = "F", value_parser = parse_tolerance)]
    tolerance: Option<Tolerance>,
    /// A rules file (TOML; see docs/policy.md): ignores, tolerances, array modes, explained
    /// differences. The flags above add to it.
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// How arrays are compared where no rule says otherwise.
    #[arg(long, value_enum, value_name = "MODE")]
    array_mode: Option<ArrayModeArg>,
    /// The route template the documents answer (`/users/{id}`), for route-scoped rules.
    #[arg(long, value_name = "TEMPLATE")]
    route: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    JsonPatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ArrayModeArg {
    /// Order matters; elements are aligned, so one insertion is one difference.
    List,
    /// Order and repetition do not matter.
    Set,
    /// Order does not matter; repetition does.
    Multiset,
}

fn parse_tolerance(s: &str) -> Result<Tolerance, String> {
    let (number, relative) = match s.strip_suffix('%') {
        Some(n) => (n, true),
        None => (s, false),
    };
    let v: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("`{s}` is not a number >= 0 (write 0.01, or 1% for a relative tolerance)"))?;
    Ok(if relative { Tolerance::relative(v / 100.0) } else { Tolerance::absolute(v) })
}

/// What `run` works from once the flags are checked.
struct Settings {
    baseline: PathBuf,
    canary: PathBuf,
    format: Format,
    rules: Rules,
    route: Option<String>,
}

impl Settings {
    fn resolve(args: Args) -> anyhow::Result<Self> {
        let mut rules = match &args.rules {
            Some(path) => Rules::from_file(path)?,
            None => Rules::default(),
        };
        if let Some(mode) = args.array_mode {
            rules.array_mode = match mode {
                ArrayModeArg::List => ArrayMode::List,
                ArrayModeArg::Set => ArrayMode::Set,
                ArrayModeArg::Multiset => ArrayMode::Multiset,
            };
        }
        if let Some(t) = args.tolerance {
            rules.tolerance = Some(t);
        }
        for pattern in &args.ignore {
            rules.ignore(pattern).with_context(|| format!("--ignore `{pattern}` is not a valid path"))?;
        }
        Ok(Self { baseline: args.baseline, canary: args.canary, format: args.format, rules, route: args.route })
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let s = Settings::resolve(args)?;
    let a = read(&s.baseline)?;
    let b = read(&s.canary)?;
    let pa = body::parse_body(&a, content_type(&s.baseline));
    let pb = body::parse_body(&b, content_type(&s.canary));
    for (path, parsed) in [(&s.baseline, &pa), (&s.canary, &pb)] {
        if let Some(problem) = &parsed.unparseable {
            let how = if matches!(parsed.body, ParsedBody::Binary(_)) { "binary" } else { "text" };
            eprintln!("shadowdiff: warning: {} is not valid JSON ({problem}); compared as {how}.", path.display());
        }
    }
    if s.format == Format::JsonPatch {
        for (path, parsed) in [(&s.baseline, &pa), (&s.canary, &pb)] {
            if !matches!(parsed.body, ParsedBody::Json { .. }) {
                bail!("--format json-patch needs two JSON documents, and {} is not JSON", path.display());
            }
        }
    }
    let cmp = body::compare_parsed(&pa, &pb, &s.rules, s.route.as_deref(), s.format == Format::JsonPatch);
    let mut out = std::io::stdout().lock();
    match s.format {
        Format::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            render_text(&mut out, &cmp, &s, color)?;
        }
        Format::Json => {
            let mut v = serde_json::to_value(&cmp)?;
            if let Value::Object(m) = &mut v {
                m.insert("summary".into(), serde_json::to_value(Summary::of(&cmp.differences))?);
            }
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        Format::JsonPatch => {
            serde_json::to_writer_pretty(&mut out, cmp.patch.as_deref().unwrap_or_default())?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if cmp.has_unexplained() { Exit::Fail } else { Exit::Pass })
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Files have no content type; the extension stands in for one. Anything else is sniffed.
fn content_type(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "json" => Some("application/json"),
        "txt" | "text" | "log" | "md" | "csv" | "html" | "htm" | "xml" | "yaml" | "yml" => Some("text/plain"),
        _ => None,
    }
}

struct Paint {
    on: bool,
}

impl Paint {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() }
    }
}

fn render_text(out: &mut impl Write, cmp: &BodyComparison, s: &Settings, color: bool) -> anyhow::Result<()> {
    let p = Paint { on: color };
    match cmp.compared_as {
        ComparedAs::Empty => writeln!(out, "no differences (both empty)")?,
        ComparedAs::Json => {
            for d in &cmp.differences {
                writeln!(out, "{}", difference_line(d, &p))?;
            }
            let sum = Summary::of(&cmp.differences);
            if cmp.differences.is_empty() {
                writeln!(out, "no differences")?;
            } else {
                let mut parts = vec![
                    format!("{} breaking", sum.breaking),
                    format!("{} changed", sum.changed),
                    format!("{} additive", sum.additive),
                ];
                if sum.explained > 0 {
                    parts.push(format!("{} explained", sum.explained));
                }
                let n = cmp.differences.len();
                writeln!(out, "{n} difference{}: {}", if n == 1 { "" } else { "s" }, parts.join(", "))?;
            }
        }
        ComparedAs::Text => match &cmp.text {
            None => writeln!(out, "no differences")?,
            Some(t) => {
                for line in t.unified.lines() {
                    let painted = match line.as_bytes().first() {
                        _ if line.starts_with("---") || line.starts_with("+++") => p.paint("1", line),
                        Some(b'-') => p.paint("31", line),
                        Some(b'+') => p.paint("32", line),
                        Some(b'@') => p.paint("36", line),
                        _ => line.to_owned(),
                    };
                    writeln!(out, "{painted}")?;
                }
                if t.unified_truncated {
                    writeln!(out, "… (diff cut at {} KiB)", body::MAX_UNIFIED_BYTES / 1024)?;
                }
                writeln!(out, "text differs: {} line(s) removed, {} added", t.removed_lines, t.added_lines)?;
            }
        },
        ComparedAs::Binary => match &cmp.binary {
            None => writeln!(out, "no differences (binary, identical)")?,
            Some(b) => writeln!(
                out,
                "binary files differ: {} is {} bytes (xxh3 {}), {} is {} bytes (xxh3 {})",
                s.baseline.display(),
                b.baseline_len,
                b.baseline_xxh3,
                s.canary.display(),
                b.canary_len,
                b.canary_xxh3
            )?,
        },
    }
    Ok(())
}

fn difference_line(d: &Difference, p: &Paint) -> String {
    let path = if d.path.is_empty() { "(root)" } else { d.path.as_str() };
    let v = |v: &Option<Value>| v.as_ref().map(short).unwrap_or_default();
    let (mark, body) = match d.kind {
        DiffKind::Added => ("+", format!("{path}: {}", v(&d.canary))),
        DiffKind::Removed => ("-", format!("{path}: {}", v(&d.baseline))),
        DiffKind::ValueChanged => ("~", format!("{path}: {} → {}", v(&d.baseline), v(&d.canary))),
        DiffKind::TypeChanged => {
            let ty = |x: &Option<Value>| x.as_ref().map(shadowdiff_analyze::json::type_name).unwrap_or("?");
            ("!", format!("{path}: {} → {} ({} → {})", v(&d.baseline), v(&d.canary), ty(&d.baseline), ty(&d.canary)))
        }
        DiffKind::ArrayLength => (
            "#",
            format!("{path}: length {} → {} (too long to align; compared by index)", v(&d.baseline), v(&d.canary)),
        ),
    };
    let tag = match (&d.explained, d.severity) {
        (Some(reason), _) => p.paint("2", &format!("[explained: {reason}]")),
        (None, Severity::Breaking) => p.paint("1;31", "[breaking]"),
        (None, Severity::Changed) => p.paint("33", "[changed]"),
        (None, Severity::Additive) => p.paint("32", "[additive]"),
    };
    let line = format!("{mark} {body}");
    let line = match (&d.explained, d.kind) {
        (Some(_), _) => p.paint("2", &line),
        (None, DiffKind::Added) => p.paint("32", &line),
        (None, DiffKind::Removed) => p.paint("31", &line),
        _ => line,
    };
    format!("{line}  {tag}")
}

/// A value on one line, cut to a readable length.
fn short(v: &Value) -> String {
    const MAX: usize = 80;
    let s = v.to_string();
    if s.chars().count() <= MAX {
        return s;
    }
    let cut: String = s.chars().take(MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_flag() {
        assert_eq!(parse_tolerance("0.01"), Ok(Tolerance::absolute(0.01)));
        assert_eq!(parse_tolerance("5%"), Ok(Tolerance::relative(0.05)));
        assert!(parse_tolerance("-1").is_err());
        assert!(parse_tolerance("abc").is_err());
        assert!(parse_tolerance("inf").is_err());
    }

    #[test]
    fn short_values() {
        assert_eq!(short(&Value::from("x")), "\"x\"");
        let long = Value::from("y".repeat(200));
        assert!(short(&long).ends_with('…'));
        assert_eq!(short(&long).chars().count(), 81);
    }
}
