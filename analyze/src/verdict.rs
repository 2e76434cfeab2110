//! The verdict and its machine outputs: `verdict.json` (fields documented in `docs/verdict.md`,
//! versioned by [`SCHEMA_VERSION`]), `junit.xml` (one test case per check) and `summary.md` (a
//! table for a pull-request comment or a CI step summary). All writers live here so the reports
//! crate can take them over as they are.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::aggregate::EndpointRow;
use crate::error::{Error, Result};
use crate::pipeline::{Drift, FieldRow, InputSummary};
use crate::policy::{CheckId, FailOn};
use crate::route::Overflow;
use crate::stats::{HodgesLehmann, KsResult, QuantileDelta, WilcoxonResult};

/// Bumped when a field of `verdict.json` changes meaning or goes away (additions do not bump).
pub const SCHEMA_VERSION: u32 = 1;

pub const VERDICT_FILE: &str = "verdict.json";
pub const JUNIT_FILE: &str = "junit.xml";
pub const SUMMARY_FILE: &str = "summary.md";

/// A check's (or the run's) outcome. Ordered by how much it matters to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Turned off in the policy.
    Disabled,
    /// Not judged: the baseline was recorded in another run (latency only).
    NotComparable,
    Pass,
    Warn,
    /// Too few samples to decide.
    Inconclusive,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Disabled => "disabled",
            Status::NotComparable => "not_comparable",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Inconclusive => "inconclusive",
            Status::Fail => "fail",
        }
    }

    /// The exit code for this overall verdict: 0 pass/warn (1 for warn under `fail_on = warn`),
    /// 1 fail, 3 inconclusive.
    pub fn exit_code(self, fail_on: FailOn) -> u8 {
        match self {
            Status::Fail => 1,
            Status::Warn if fail_on == FailOn::Warn => 1,
            Status::Inconclusive => 3,
            _ => 0,
        }
    }
}

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ci {
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
}

/// A test statistic by name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statistic {
    pub name: &'static str,
    pub value: f64,
}

/// A check's thresholds as the policy resolved them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Threshold {
    pub pass: f64,
    pub warn: f64,
}

/// A field that contributed to a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldCount {
    pub field: String,
    pub count: u64,
}

/// One endpoint's part in a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointCheck {
    pub route: String,
    pub status: Status,
    pub value: Option<f64>,
    pub ci: Option<Ci>,
    pub p_value: Option<f64>,
    /// Holm-adjusted over the endpoints judged by this check.
    pub p_adjusted: Option<f64>,
    pub n: u64,
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldCount>,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub id: CheckId,
    pub title: &'static str,
    pub status: Status,
    /// One sentence: why this status, naming the endpoints and fields that drove it.
    pub reason: String,
    /// The overall figure (see `unit`).
    pub value: Option<f64>,
    pub unit: &'static str,
    pub threshold: Threshold,
    /// The unit of `threshold`: the check's `unit`, except `ratio` (to the baseline's rate) for
    /// `error_rate`.
    pub threshold_unit: &'static str,
    pub statistic: Option<Statistic>,
    pub p_value: Option<f64>,
    pub ci: Option<Ci>,
    /// The sample size of the overall figure.
    pub n: u64,
    /// Every endpoint the check looked at, those that drove the status first.
    pub endpoints: Vec<EndpointCheck>,
}

/// Latency statistics of one scope (the whole run or one endpoint).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    pub route: String,
    /// Paired latencies the statistics used (a uniform sample when `seen` is larger).
    pub n: u64,
    pub seen: u64,
    pub quantiles: Vec<QuantileDelta>,
    pub wilcoxon: Option<WilcoxonResult>,
    pub hodges_lehmann: Option<HodgesLehmann>,
    pub ks: Option<KsResult>,
}

/// Critical errors: an error kind the baseline never showed on an endpoint, seen in the canary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriticalError {
    pub route: String,
    pub kind: String,
    pub canary: u64,
    pub p_value: f64,
    pub p_adjusted: f64,
    /// True when the evidence is enough to fail the check.
    pub confirmed: bool,
}

/// What analyze wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outputs {
    pub pairs: PathBuf,
    pub diffs: PathBuf,
    pub examples: PathBuf,
    pub verdict: PathBuf,
    pub junit: PathBuf,
    pub summary: PathBuf,
}

/// `verdict.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub schema_version: u32,
    pub tool: String,
    pub verdict: Status,
    pub exit_code: u8,
    pub fail_on: FailOn,
    pub reason: String,
    pub inputs: InputSummary,
    pub overall: EndpointRow,
    pub endpoints: Vec<EndpointRow>,
    pub checks: Vec<CheckResult>,
    pub latency: Vec<LatencySummary>,
    pub critical_errors: Vec<CriticalError>,
    /// Pairs where both sides answered with different statuses, by class change (`2xx→5xx`),
    /// per route and `(all)`.
    pub status_mismatches: BTreeMap<String, BTreeMap<String, u64>>,
    pub fields: Vec<FieldRow>,
    pub numeric_drift: Vec<Drift>,
    pub route_overflow: Overflow,
    pub outputs: Outputs,
}

impl Verdict {
    pub fn check(&self, id: CheckId) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// Writes `verdict.json`, `junit.xml` and `summary.md` into `dir`, recording their paths.
    pub fn write(&mut self, dir: &Path) -> Result<()> {
        self.outputs.verdict = dir.join(VERDICT_FILE);
        self.outputs.junit = dir.join(JUNIT_FILE);
        self.outputs.summary = dir.join(SUMMARY_FILE);
        let json = serde_json::to_string_pretty(&*self)
            .map_err(|e| Error::Internal { message: format!("serializing the verdict: {e}") })?;
        write_file(&self.outputs.verdict, &(json + "\n"))?;
        write_file(&self.outputs.junit, &self.junit())?;
        write_file(&self.outputs.summary, &self.markdown())?;
        Ok(())
    }

    /// JUnit XML: one test case per check. Failures carry the reason; warnings pass with the
    /// reason in `system-out`; inconclusive, not comparable and disabled checks are skipped.
    pub fn junit(&self) -> String {
        let failures = self.checks.iter().filter(|c| c.status == Status::Fail).count();
        let skipped = self
            .checks
            .iter()
            .filter(|c| matches!(c.status, Status::Inconclusive | Status::NotComparable | Status::Disabled))
            .count();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            x,
            "<testsuites name=\"shadowdiff\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
            self.checks.len()
        );
        let _ = writeln!(
            x,
            "  <testsuite name=\"shadowdiff analyze\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
            self.checks.len()
        );
        for c in &self.checks {
            let _ = write!(x, "    <testcase classname=\"shadowdiff.{}\" name=\"{}\"", c.id.as_str(), xml(c.title));
            let reason = xml(&c.reason);
            match c.status {
                Status::Fail => {
                    let _ = writeln!(
                        x,
                        ">\n      <failure message=\"{reason}\" type=\"{}\">{reason}</failure>\n    </testcase>",
                        c.id.as_str()
                    );
                }
                Status::Inconclusive | Status::NotComparable | Status::Disabled => {
                    let _ =
                        writeln!(x, ">\n      <skipped message=\"{}: {reason}\"/>\n    </testcase>", c.status.as_str());
                }
                Status::Warn => {
                    let _ = writeln!(x, ">\n      <system-out>warn: {reason}</system-out>\n    </testcase>");
                }
                Status::Pass => {
                    let _ = writeln!(x, ">\n      <system-out>{reason}</system-out>\n    </testcase>");
                }
            }
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        x
    }

    /// The Markdown summary.
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "## shadowdiff: **{}**\n", self.verdict.as_str().to_uppercase());
        let _ = writeln!(m, "{}\n", md(&self.reason));
        let _ = writeln!(
            m,
            "{} pairs analyzed from {} file(s); {} compared, {} canary skipped.\n",
            self.inputs.pairs_analyzed, self.inputs.files, self.overall.compared, self.overall.canary_skipped
        );
        m.push_str("| check | status | value | threshold (pass / warn) | n | reason |\n|---|---|---|---|---|---|\n");
        for c in &self.checks {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} / {} | {} | {} |",
                c.id.as_str(),
                badge(c.status),
                c.value.map_or("–".to_owned(), |v| format_value(v, c.unit)),
                format_value(c.threshold.pass, c.threshold_unit),
                format_value(c.threshold.warn, c.threshold_unit),
                c.n,
                md(&c.reason)
            );
        }
        let _ = writeln!(m, "\n<details><summary>Endpoints</summary>\n");
        m.push_str("| route | pairs | compared | errors (baseline / canary) | different | breaking | p99 ms (baseline / canary) |\n|---|---|---|---|---|---|---|\n");
        for e in &self.endpoints {
            let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
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
        m
    }

    /// A one-screen text summary for stdout.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let mut reason = self.reason.clone();
        if reason.chars().count() > 200 {
            reason = reason.chars().take(199).collect::<String>() + "…";
        }
        let _ = writeln!(t, "verdict  {}  — {reason}", self.verdict.as_str().to_uppercase());
        let _ = writeln!(
            t,
            "pairs    {} analyzed ({} in {} file(s)), {} compared, {} canary skipped",
            self.inputs.pairs_analyzed,
            self.inputs.pairs_in_files,
            self.inputs.files,
            self.overall.compared,
            self.overall.canary_skipped
        );
        for c in &self.checks {
            let value = c.value.map_or("–".to_owned(), |v| format_value(v, c.unit));
            let mut reason = c.reason.clone();
            if reason.chars().count() > 160 {
                reason = reason.chars().take(159).collect::<String>() + "…";
            }
            let _ = writeln!(t, "  {:<13} {:<15} {:>10}  {reason}", c.status.as_str(), c.id.as_str(), value);
        }
        let _ = writeln!(t, "outputs  {}", self.outputs.verdict.parent().unwrap_or(Path::new(".")).display());
        t
    }
}

fn badge(s: Status) -> &'static str {
    match s {
        Status::Pass => "✅ pass",
        Status::Warn => "⚠️ warn",
        Status::Fail => "❌ fail",
        Status::Inconclusive => "❔ inconclusive",
        Status::NotComparable => "➖ not comparable",
        Status::Disabled => "➖ disabled",
    }
}

/// Formats a figure in its unit.
pub fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "relative" => format!("{:+.1}%", v * 100.0),
        "share" => format!("{:.2}%", v * 100.0),
        "ratio" => format!("×{v:.2}"),
        "ks_d" => format!("D={v:.3}"),
        _ => format!("{v}"),
    }
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Output { path: path.to_owned(), source: source.into() })
}
