//! The header (facts about the run) and the verdict banner: the overall status, one line naming
//! the checks that decided it, a bullet per such check, and the headline numbers.

use shadowdiff_format::verdict::{CheckResult, Verdict};
use shadowdiff_format::vocab::Status as Word;

use super::figures::{ms, share};
use super::rank;
use crate::html::{Fact, KeyFigure, Status, VerdictBanner};
use crate::rows::Latencies;

/// What was analyzed, when, and how it was judged.
pub(super) fn facts(v: &Verdict, latencies: Option<&Latencies>) -> Vec<Fact> {
    let mut facts = Vec::new();
    if let Some((lo, hi)) = latencies.and_then(|l| l.window_us) {
        let t = |us: i64| {
            chrono::DateTime::from_timestamp_micros(us)
                .map_or_else(String::new, |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        };
        facts.push(Fact::new("captured", format!("{} → {}", t(lo), t(hi))));
    }
    facts.push(Fact::new("inputs", format!("{} pairs in {} file(s)", v.inputs.pairs_in_files, v.inputs.files)));
    let origins = v.inputs.baseline_origin.keys().cloned().collect::<Vec<_>>().join(", ");
    if !origins.is_empty() {
        facts.push(Fact::new("baseline", origins));
    }
    facts.push(Fact::new("fail on", v.fail_on.as_str()));
    facts.push(Fact::new("exit code", v.exit_code.to_string()));
    facts.push(Fact::new("tool", v.tool.clone()));
    facts
}

/// The verdict banner.
pub(super) fn banner(v: &Verdict) -> VerdictBanner {
    let status = Status::from(v.verdict);
    // Failures first, then inconclusive, then warnings; the policy's order within each.
    let mut decisive: Vec<&CheckResult> = v
        .checks
        .iter()
        .filter(|c| !c.report_only && matches!(c.status, Word::Fail | Word::Warn | Word::Inconclusive))
        .collect();
    decisive.sort_by_key(|c| std::cmp::Reverse(rank(Status::from(c.status))));
    let o = &v.overall;
    VerdictBanner {
        status,
        headline: headline(status, &v.checks),
        reasons: decisive.iter().map(|c| format!("{}: {}", c.id, c.reason)).collect(),
        figures: vec![
            KeyFigure { label: "pairs analysed".into(), value: o.pairs.to_string(), ..KeyFigure::default() },
            KeyFigure { label: "endpoints".into(), value: v.endpoints.len().to_string(), ..KeyFigure::default() },
            KeyFigure {
                label: "p99 latency".into(),
                value: format!("{} → {} ms", ms(o.baseline_p99_ms), ms(o.canary_p99_ms)),
                note: "baseline → canary".into(),
                status: None,
            },
            KeyFigure {
                label: "pairs with a difference".into(),
                value: share(o.different, o.compared),
                note: format!("{} breaking", o.breaking_pairs),
                status: None,
            },
        ],
    }
}

/// One line an on-call engineer reads first: the verdict and the checks that decided it.
fn headline(status: Status, checks: &[CheckResult]) -> String {
    let mut parts = Vec::new();
    for (verb, want) in [("failed", Word::Fail), ("inconclusive", Word::Inconclusive), ("warned", Word::Warn)] {
        let ids: Vec<&str> =
            checks.iter().filter(|c| c.status == want && !c.report_only).map(|c| c.id.as_str()).collect();
        if !ids.is_empty() {
            let noun = if ids.len() == 1 { "check" } else { "checks" };
            parts.push(format!("{} {noun} {verb}: {}", ids.len(), ids.join(", ")));
        }
    }
    if parts.is_empty() {
        parts.push(format!("all {} checks passed", checks.len()));
    }
    format!("Verdict: {} — {}", status.label(), parts.join("; "))
}
