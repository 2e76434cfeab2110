//! The verdict summarised for people: `summary.md` (a table for a pull-request comment or a CI
//! step summary) and the few lines `shadowdiff analyze` prints on the terminal. Figures go
//! through [`Unit::format`](shadowdiff_format::vocab::Unit::format), status words through
//! [`Status::label`].

use std::fmt::Write as _;
use std::path::Path;

use shadowdiff_format::verdict::{CheckResult, LatencyReference, Status, Verdict};

/// `summary.md`: the verdict, its reason, the checks and a collapsed endpoints table.
pub fn markdown(v: &Verdict) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "## shadowdiff: **{}**\n", v.verdict.label().to_uppercase());
    let _ = writeln!(m, "{}\n", md(&v.reason));
    let _ = writeln!(
        m,
        "{} pairs analyzed from {} file(s); {} compared, {} canary skipped.\n",
        v.inputs.pairs_analyzed, v.inputs.files, v.overall.compared, v.overall.canary_skipped
    );
    if v.latency_reference == LatencyReference::Secondary {
        m.push_str("Latency is judged against the secondary, which was reached the way the canary was.\n\n");
    }
    m.push_str(
        "| check | status | value | threshold (pass / warn) | detectable | n | reason |\n|---|---|---|---|---|---|---|\n",
    );
    for c in &v.checks {
        let _ = writeln!(
            m,
            "| {} | {} {} | {} | {} / {} | {} | {} | {} |",
            c.id,
            badge(c.status),
            if c.report_only { format!("{} (report only)", c.status.label()) } else { c.status.label().to_owned() },
            value(c),
            c.threshold_unit.format(c.threshold.pass),
            c.threshold_unit.format(c.threshold.warn),
            c.mde.map_or("–".to_owned(), |m| format!("≥ {}", c.threshold_unit.format(m))),
            c.n,
            md(&c.reason)
        );
    }
    let _ = writeln!(m, "\n<details><summary>Endpoints</summary>\n");
    m.push_str("| route | pairs | compared | errors (baseline / canary) | different | breaking | p99 ms (baseline / canary) |\n|---|---|---|---|---|---|---|\n");
    let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
    for e in &v.endpoints {
        let _ = writeln!(
            m,
            "| `{}` | {} | {} | {} / {} | {} | {} | {} / {} |",
            md(&e.route),
            e.pairs,
            e.compared,
            e.baseline_errors,
            e.canary_errors,
            e.different,
            e.breaking_pairs,
            ms(e.baseline_p99_ms),
            ms(e.canary_p99_ms)
        );
    }
    m.push_str("\n</details>\n");
    windows(&mut m, v);
    m
}

/// With `--window`: a collapsed table of the windows, each with the checks that warned or
/// failed in it.
fn windows(m: &mut String, v: &Verdict) {
    if v.windows.is_empty() {
        return;
    }
    let _ = writeln!(m, "\n<details><summary>Windows</summary>\n");
    m.push_str("| window (UTC) | pairs | verdict | warned or failed |\n|---|---|---|---|\n");
    for w in &v.windows {
        let flagged: Vec<String> = w
            .checks
            .iter()
            .filter(|c| matches!(c.status, Status::Warn | Status::Fail))
            .map(|c| {
                let figure = v.check(c.id).map_or_else(|| "–".to_owned(), |r| r.unit.format_opt(c.value));
                format!("{} {} {figure}", badge(c.status), c.id)
            })
            .collect();
        let _ = writeln!(
            m,
            "| {} | {} | {} {} | {} |",
            crate::page::window_span(w),
            w.pairs,
            badge(w.verdict),
            w.verdict.label(),
            if flagged.is_empty() { "–".to_owned() } else { flagged.join(", ") }
        );
    }
    m.push_str("\n</details>\n");
}

/// A one-screen text summary for the terminal.
pub fn text(v: &Verdict) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "verdict  {}  — {}", v.verdict.label().to_uppercase(), clip(&v.reason, 200));
    let _ = writeln!(
        t,
        "pairs    {} analyzed ({} in {} file(s)), {} compared, {} canary skipped",
        v.inputs.pairs_analyzed, v.inputs.pairs_in_files, v.inputs.files, v.overall.compared, v.overall.canary_skipped
    );
    for c in &v.checks {
        let _ = writeln!(t, "  {:<14} {:<15} {:>10}  {}", c.status.label(), c.id, value(c), clip(&c.reason, 160));
    }
    let _ = writeln!(t, "outputs  {}", v.outputs.verdict.parent().unwrap_or(Path::new(".")).display());
    t
}

/// The check's overall figure in its unit, `–` when there is none.
fn value(c: &CheckResult) -> String {
    c.unit.format_opt(c.value)
}

/// `s`, cut to at most `max` characters with an ellipsis.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() > max { s.chars().take(max - 1).collect::<String>() + "…" } else { s.to_owned() }
}

/// The symbol before a status word, so the table reads at a glance.
fn badge(s: Status) -> &'static str {
    match s {
        Status::Pass => "✅",
        Status::Warn => "⚠️",
        Status::Fail => "❌",
        Status::Inconclusive => "❔",
        Status::NotComparable | Status::Disabled => "➖",
    }
}

/// Text for a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_at_characters_not_bytes() {
        assert_eq!(clip("ééé", 3), "ééé");
        assert_eq!(clip("éééé", 3), "éé…");
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        assert_eq!(md("a|b\nc"), "a\\|b c");
        assert_eq!(format!("{} {}", badge(Status::NotComparable), Status::NotComparable.label()), "➖ not comparable");
    }
}
