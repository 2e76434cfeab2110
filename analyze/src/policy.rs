//! The policy: the rules file's comparison rules plus the checks that turn an analysis into a
//! verdict. One TOML file holds both (`docs/policy.md`); the check sections are split off here and
//! every other key goes to [`Rules`], so each part keeps `deny_unknown_fields` and an unknown key
//! anywhere is an error that names it.
//!
//! Thresholds are resolved once, per endpoint: an `[[endpoint]]` override replaces single fields of
//! a check for the routes it names and leaves the rest at the file's (or the built-in) defaults.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::noise::Thresholds;
use crate::path::PathPattern;
use crate::rules::Rules;
use crate::rules::file::RulesFile;

/// The top-level keys that belong to the policy rather than to the comparison rules.
const POLICY_KEYS: &[&str] = &[
    "min_samples",
    "fail_on",
    "alpha",
    "confidence",
    "judge_recorded_latency",
    "bootstrap_resamples",
    "sequential",
    "latency_reference",
    "latency_floor_ms",
    "seed",
    "noise",
    "checks",
    "endpoint",
    "goal",
];

pub use shadowdiff_format::vocab::{CheckId, FailOn, LatencyReference};

/// Built-in thresholds. `pass`/`warn` mean, per check: relative p99 delta, and relative shift of
/// the whole distribution (latency_p99); minimum one-sided KS statistic D⁺ that counts as a shift
/// towards slow (latency_shape, warn only); canary
/// error rate as a multiple of the baseline's (error_rate); share of compared pairs with a real
/// difference (diff_rate); pairs with a real breaking difference (breaking).
pub fn defaults(id: CheckId) -> Check {
    let (pass, warn) = match id {
        CheckId::LatencyP99 => (0.10, 0.20),
        CheckId::LatencyShape => (0.10, 0.10),
        CheckId::ErrorRate => (1.1, 1.1),
        CheckId::CriticalErrors => (0.0, 0.0),
        CheckId::DiffRate => (0.005, 0.005),
        CheckId::Breaking => (0.0, 0.0),
        CheckId::Goals => (0.0, 0.0),
    };
    Check { enabled: true, pass, warn, report_only: false }
}

/// One check's resolved settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Check {
    pub enabled: bool,
    pub pass: f64,
    pub warn: f64,
    /// Evaluated and reported, but never changes the verdict or the exit code (a check being
    /// calibrated before it gates).
    pub report_only: bool,
}

/// The resolved settings of every check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checks {
    pub latency_p99: Check,
    pub latency_shape: Check,
    pub error_rate: Check,
    pub critical_errors: Check,
    pub diff_rate: Check,
    pub breaking: Check,
    pub goals: Check,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            latency_p99: defaults(CheckId::LatencyP99),
            latency_shape: defaults(CheckId::LatencyShape),
            error_rate: defaults(CheckId::ErrorRate),
            critical_errors: defaults(CheckId::CriticalErrors),
            diff_rate: defaults(CheckId::DiffRate),
            breaking: defaults(CheckId::Breaking),
            goals: defaults(CheckId::Goals),
        }
    }
}

impl Checks {
    pub fn get(&self, id: CheckId) -> Check {
        match id {
            CheckId::LatencyP99 => self.latency_p99,
            CheckId::LatencyShape => self.latency_shape,
            CheckId::ErrorRate => self.error_rate,
            CheckId::CriticalErrors => self.critical_errors,
            CheckId::DiffRate => self.diff_rate,
            CheckId::Breaking => self.breaking,
            CheckId::Goals => self.goals,
        }
    }

    fn get_mut(&mut self, id: CheckId) -> &mut Check {
        match id {
            CheckId::LatencyP99 => &mut self.latency_p99,
            CheckId::LatencyShape => &mut self.latency_shape,
            CheckId::ErrorRate => &mut self.error_rate,
            CheckId::CriticalErrors => &mut self.critical_errors,
            CheckId::DiffRate => &mut self.diff_rate,
            CheckId::Breaking => &mut self.breaking,
            CheckId::Goals => &mut self.goals,
        }
    }
}

/// Absolute goals for the routes a `[[goal]]` entry matches: ceilings on the canary's latency
/// quantiles, and a minimum of compared pairs (together, over every route it matches).
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub route: PathPattern,
    pub source: String,
    /// (quantile, most milliseconds), e.g. (0.95, 300.0) for `p95_ms = 300`.
    pub ceilings: Vec<(f64, f64)>,
    pub min_pairs: Option<u64>,
}

impl Goal {
    /// True when the goal is about `route` (a template it names or a pattern matching it).
    pub fn matches(&self, route: &str) -> bool {
        self.source == route || crate::route::route_matches(&self.route, route)
    }

    fn resolve(g: &GoalEntry, key: &str, path: &Path) -> Result<Self> {
        let route = PathPattern::new(&g.route)
            .map_err(|err| invalid(path, &format!("{key}.route"), format!("is not a valid route pattern: {err}")))?;
        let mut ceilings = Vec::new();
        for (q, name, v) in [
            (0.5, "p50_ms", g.p50_ms),
            (0.9, "p90_ms", g.p90_ms),
            (0.95, "p95_ms", g.p95_ms),
            (0.99, "p99_ms", g.p99_ms),
        ] {
            let Some(v) = v else { continue };
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(
                    path,
                    &format!("{key}.{name}"),
                    format!("must be a number of milliseconds above 0, not {v}"),
                ));
            }
            ceilings.push((q, v));
        }
        let min_pairs = match g.min_pairs {
            Some(n) => {
                Some(u64::try_from(n).map_err(|_| invalid(path, &format!("{key}.min_pairs"), "must not be negative"))?)
            }
            None => None,
        };
        if ceilings.is_empty() && min_pairs.is_none() {
            return Err(invalid(
                path,
                key,
                "sets no goal: give a ceiling (p50_ms, p90_ms, p95_ms, p99_ms) or min_pairs",
            ));
        }
        Ok(Self { route, source: g.route.clone(), ceilings, min_pairs })
    }
}

/// Settings for the routes an `[[endpoint]]` entry matches.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointOverride {
    /// A route template (`/api/users/{id}`) or a pattern over templates (`/api/**`).
    pub route: PathPattern,
    pub source: String,
    pub min_samples: Option<u64>,
    pub checks: Checks,
}

/// Everything analyze needs to judge: the comparison rules and the resolved checks.
#[derive(Debug, Clone)]
pub struct Policy {
    pub rules: Rules,
    pub checks: Checks,
    pub endpoints: Vec<EndpointOverride>,
    /// Absolute goals (`[[goal]]`), judged by the `goals` check.
    pub goals: Vec<Goal>,
    /// Below this many samples a figure is inconclusive, overall and per endpoint.
    pub min_samples: u64,
    pub fail_on: FailOn,
    /// Significance level of the tests (McNemar, KS, critical errors), family-wise over endpoints.
    pub alpha: f64,
    /// Confidence of the intervals that latency and rate decisions rest on, family-wise over
    /// endpoints (each endpoint's interval is at `1 - (1 - confidence) / m`).
    pub confidence: f64,
    /// Judge latency even when the baseline side was recorded in another run.
    pub judge_recorded_latency: bool,
    pub bootstrap_resamples: usize,
    /// Anytime-valid decisions: intervals become confidence sequences and p-values stay valid
    /// over any number of looks at a growing shadow period (see `stats::sequential`).
    pub sequential: bool,
    /// The side the canary's latency is judged against (`auto`: the secondary when there is one).
    pub latency_reference: LatencyReference,
    /// The smallest latency change, in milliseconds at the scope's typical latency, that counts
    /// as a regression: below it no relative change warns or fails.
    pub latency_floor_ms: f64,
    pub seed: u64,
    pub noise: Thresholds,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rules: Rules::default(),
            checks: Checks::default(),
            endpoints: Vec::new(),
            goals: Vec::new(),
            min_samples: 200,
            fail_on: FailOn::Fail,
            alpha: 0.01,
            confidence: 0.95,
            judge_recorded_latency: false,
            bootstrap_resamples: 1000,
            sequential: false,
            latency_reference: LatencyReference::Auto,
            latency_floor_ms: 0.25,
            seed: 0x5eed,
            noise: Thresholds::default(),
        }
    }
}

// ---- the file as written ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    min_samples: Option<i64>,
    fail_on: Option<FailOn>,
    alpha: Option<f64>,
    confidence: Option<f64>,
    judge_recorded_latency: Option<bool>,
    bootstrap_resamples: Option<i64>,
    sequential: Option<bool>,
    latency_reference: Option<LatencyReference>,
    latency_floor_ms: Option<f64>,
    seed: Option<u64>,
    noise: Option<NoiseEntry>,
    #[serde(default)]
    checks: ChecksEntry,
    #[serde(default)]
    endpoint: Vec<EndpointEntry>,
    #[serde(default)]
    goal: Vec<GoalEntry>,
}

/// `[[goal]]`: absolute goals for the routes `route` matches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoalEntry {
    route: String,
    p50_ms: Option<f64>,
    p90_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    min_pairs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoiseEntry {
    relative: Option<f64>,
    absolute: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksEntry {
    latency_p99: Option<CheckEntry>,
    latency_shape: Option<CheckEntry>,
    error_rate: Option<CheckEntry>,
    critical_errors: Option<CheckEntry>,
    diff_rate: Option<CheckEntry>,
    breaking: Option<CheckEntry>,
    goals: Option<CheckEntry>,
}

impl ChecksEntry {
    fn get(&self, id: CheckId) -> Option<&CheckEntry> {
        match id {
            CheckId::LatencyP99 => self.latency_p99.as_ref(),
            CheckId::LatencyShape => self.latency_shape.as_ref(),
            CheckId::ErrorRate => self.error_rate.as_ref(),
            CheckId::CriticalErrors => self.critical_errors.as_ref(),
            CheckId::DiffRate => self.diff_rate.as_ref(),
            CheckId::Breaking => self.breaking.as_ref(),
            CheckId::Goals => self.goals.as_ref(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckEntry {
    enabled: Option<bool>,
    report_only: Option<bool>,
    pass: Option<f64>,
    warn: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointEntry {
    route: String,
    min_samples: Option<i64>,
    #[serde(default)]
    checks: ChecksEntry,
}

fn invalid(path: &Path, key: &str, reason: impl std::fmt::Display) -> Error {
    Error::ParseRules { path: path.to_owned(), message: format!("`{key}` {reason}") }
}

impl Policy {
    /// Reads a policy file: comparison rules and checks. Errors name the file and the key.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::ReadRules { path: path.to_owned(), source })?;
        Self::from_toml(&text, path)
    }

    /// Parses a policy from TOML text; `path` is used in error messages only.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let parse_err = |e: toml::de::Error| Error::ParseRules {
            path: path.to_owned(),
            message: crate::rules::toml_message(text, &e),
        };
        let mut table: toml::Table = toml::from_str(text).map_err(parse_err)?;
        let mut policy_table = toml::Table::new();
        for key in POLICY_KEYS {
            if let Some(v) = table.remove(*key) {
                policy_table.insert((*key).to_owned(), v);
            }
        }
        let section: PolicySection = PolicySection::deserialize(toml::Value::Table(policy_table))
            .map_err(|e| Error::ParseRules { path: path.to_owned(), message: one_line(&e.to_string()) })?;
        let rules_file: RulesFile = RulesFile::deserialize(toml::Value::Table(table))
            .map_err(|e| Error::ParseRules { path: path.to_owned(), message: one_line(&e.to_string()) })?;
        let rules = Rules::compile_in(&rules_file, path.parent())?;
        Self::resolve(section, rules, path)
    }

    fn resolve(s: PolicySection, rules: Rules, path: &Path) -> Result<Self> {
        let mut p = Policy { rules, ..Policy::default() };
        if let Some(n) = s.min_samples {
            p.min_samples = u64::try_from(n).map_err(|_| invalid(path, "min_samples", "must not be negative"))?;
        }
        if let Some(f) = s.fail_on {
            p.fail_on = f;
        }
        if let Some(a) = s.alpha {
            if !(a > 0.0 && a < 1.0) {
                return Err(invalid(path, "alpha", format!("must be between 0 and 1 (exclusive), not {a}")));
            }
            p.alpha = a;
        }
        if let Some(c) = s.confidence {
            if !(c > 0.0 && c < 1.0) {
                return Err(invalid(path, "confidence", format!("must be between 0 and 1 (exclusive), not {c}")));
            }
            p.confidence = c;
        }
        if let Some(j) = s.judge_recorded_latency {
            p.judge_recorded_latency = j;
        }
        if let Some(r) = s.bootstrap_resamples {
            if !(100..=100_000).contains(&r) {
                return Err(invalid(path, "bootstrap_resamples", format!("must be between 100 and 100000, not {r}")));
            }
            p.bootstrap_resamples = r as usize;
        }
        if let Some(seq) = s.sequential {
            p.sequential = seq;
        }
        if let Some(r) = s.latency_reference {
            p.latency_reference = r;
        }
        if let Some(f) = s.latency_floor_ms {
            if !(f.is_finite() && f >= 0.0) {
                return Err(invalid(path, "latency_floor_ms", format!("must be a finite number ≥ 0, not {f}")));
            }
            p.latency_floor_ms = f;
        }
        if let Some(seed) = s.seed {
            p.seed = seed;
        }
        if let Some(n) = s.noise {
            for (key, v) in [("noise.relative", n.relative), ("noise.absolute", n.absolute)] {
                if let Some(v) = v
                    && !(v.is_finite() && (0.0..=100.0).contains(&v))
                {
                    return Err(invalid(path, key, format!("must be a percentage between 0 and 100, not {v}")));
                }
            }
            p.noise = Thresholds {
                relative: n.relative.unwrap_or(p.noise.relative),
                absolute: n.absolute.unwrap_or(p.noise.absolute),
            };
        }
        p.checks = apply(Checks::default(), &s.checks, "checks", path)?;
        for (i, e) in s.endpoint.iter().enumerate() {
            let key = format!("endpoint[{i}]");
            let route = PathPattern::new(&e.route).map_err(|err| {
                invalid(path, &format!("{key}.route"), format!("is not a valid route pattern: {err}"))
            })?;
            let min_samples = match e.min_samples {
                Some(n) => Some(
                    u64::try_from(n)
                        .map_err(|_| invalid(path, &format!("{key}.min_samples"), "must not be negative"))?,
                ),
                None => None,
            };
            let checks = apply(p.checks.clone(), &e.checks, &format!("{key}.checks"), path)?;
            p.endpoints.push(EndpointOverride { route, source: e.route.clone(), min_samples, checks });
        }
        for (i, g) in s.goal.iter().enumerate() {
            p.goals.push(Goal::resolve(g, &format!("goal[{i}]"), path)?);
        }
        Ok(p)
    }

    /// The first `[[endpoint]]` override that matches `route`.
    fn endpoint(&self, route: &str) -> Option<&EndpointOverride> {
        // A keyed route (`/graphql#GetUser`) takes the overrides of its path (`/graphql`) too, as
        // rules do; the first matching entry wins, so an entry for the operation goes first.
        self.endpoints.iter().find(|e| e.source == route || crate::route::route_matches(&e.route, route))
    }

    /// The checks that apply to `route`.
    pub fn checks_for(&self, route: &str) -> &Checks {
        self.endpoint(route).map_or(&self.checks, |e| &e.checks)
    }

    /// The minimum sample size for `route`.
    pub fn min_samples_for(&self, route: &str) -> u64 {
        self.endpoint(route).and_then(|e| e.min_samples).unwrap_or(self.min_samples)
    }
}

fn apply(mut checks: Checks, entry: &ChecksEntry, prefix: &str, path: &Path) -> Result<Checks> {
    for &id in CheckId::ALL {
        let Some(e) = entry.get(id) else { continue };
        let key = |field: &str| format!("{prefix}.{}.{field}", id.as_str());
        let c = checks.get_mut(id);
        if let Some(en) = e.enabled {
            c.enabled = en;
        }
        if id == CheckId::Goals && (e.pass.is_some() || e.warn.is_some()) {
            return Err(invalid(
                path,
                &key(if e.pass.is_some() { "pass" } else { "warn" }),
                "does not apply: the goals check's limits are the [[goal]] entries",
            ));
        }
        if let Some(r) = e.report_only {
            if prefix != "checks" {
                return Err(invalid(
                    path,
                    &key("report_only"),
                    format!("applies to a whole check: set it under [checks.{}]", id.as_str()),
                ));
            }
            c.report_only = r;
        }
        for (field, v) in [("pass", e.pass), ("warn", e.warn)] {
            let Some(v) = v else { continue };
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(path, &key(field), format!("must be a finite number ≥ 0, not {v}")));
            }
            if matches!(id, CheckId::DiffRate | CheckId::LatencyShape) && v > 1.0 {
                return Err(invalid(path, &key(field), format!("is a share and must be at most 1, not {v}")));
            }
            if field == "pass" {
                c.pass = v;
                // A pass threshold above the built-in warn one moves warn along unless set too.
                if e.warn.is_none() && c.warn < v {
                    c.warn = v;
                }
            } else {
                c.warn = v;
            }
        }
        if c.warn < c.pass {
            return Err(invalid(
                path,
                &key("warn"),
                format!("({}) must be at least `{}` ({}): the range is impossible", c.warn, key("pass"), c.pass),
            ));
        }
    }
    Ok(checks)
}

fn one_line(s: &str) -> String {
    s.trim_end_matches('.').replace('\n', " ").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy> {
        Policy::from_toml(text, Path::new("policy.toml"))
    }

    #[test]
    fn defaults_and_rules_together() {
        let p = parse(
            r#"
min_samples = 50
fail_on = "warn"
[[ignore]]
path = "/meta/**"
[checks.latency_p99]
pass = 0.05
[[endpoint]]
route = "/api/search"
min_samples = 10
[endpoint.checks.latency_p99]
pass = 0.5
warn = 1.0
"#,
        )
        .unwrap();
        assert_eq!(p.min_samples, 50);
        assert_eq!(p.fail_on, FailOn::Warn);
        assert_eq!(p.rules.path_rules().len(), 1);
        assert_eq!((p.checks.latency_p99.pass, p.checks.latency_p99.warn), (0.05, 0.20));
        assert_eq!(p.checks_for("/api/search").latency_p99.warn, 1.0);
        assert_eq!(p.min_samples_for("/api/search"), 10);
        assert_eq!(p.min_samples_for("/api/users/{id}"), 50);
        assert_eq!(p.checks_for("/api/users/{id}").latency_p99.pass, 0.05);
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../docs/policy.md");
        let start = doc.find("```toml\n").expect("a toml block") + 8;
        let end = start + doc[start..].find("```").expect("its end");
        let p = parse(&doc[start..end]).unwrap();
        assert_eq!(p.min_samples, 200);
        assert_eq!(p.checks_for("/api/search").latency_p99.warn, 1.0);
        assert!(!p.rules.explained().is_empty());
    }

    #[test]
    fn endpoint_overrides_reach_keyed_routes_and_sequential_parses() {
        let p = parse(
            "sequential = true\n[[endpoint]]\nroute = \"/graphql#Slow\"\n[endpoint.checks.latency_p99]\nwarn = 2.0\n\
             [[endpoint]]\nroute = \"/graphql\"\n[endpoint.checks.latency_p99]\nwarn = 1.0\n",
        )
        .unwrap();
        assert!(p.sequential);
        assert_eq!(p.checks_for("/graphql#Slow").latency_p99.warn, 2.0, "the operation's own entry first");
        assert_eq!(p.checks_for("/graphql#GetUser").latency_p99.warn, 1.0, "the path's entry reaches its operations");
        assert_eq!(p.checks_for("/graphqlx").latency_p99.warn, 0.2);
        assert!(!Policy::default().sequential);
    }

    #[test]
    fn the_latency_reference_and_floor_parse_and_refuse_nonsense() {
        let p = parse("latency_reference = \"baseline\"\nlatency_floor_ms = 0\n").unwrap();
        assert_eq!((p.latency_reference, p.latency_floor_ms), (LatencyReference::Baseline, 0.0));
        let d = Policy::default();
        assert_eq!((d.latency_reference, d.latency_floor_ms), (LatencyReference::Auto, 0.25));
        let e = parse("latency_reference = \"primary\"\n").unwrap_err().to_string();
        assert!(e.contains("primary") && e.contains("secondary"), "{e}");
        let e = parse("latency_floor_ms = -1.0\n").unwrap_err().to_string();
        assert!(e.contains("latency_floor_ms"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("[checks.latency_p99]\npas = 0.1\n").unwrap_err().to_string();
        assert!(e.contains("pas"), "{e}");
        let e = parse("[checks.latency_p99]\npass = 0.3\nwarn = 0.2\n").unwrap_err().to_string();
        assert!(e.contains("checks.latency_p99.warn") && e.contains("impossible"), "{e}");
        let e = parse("[checks.latency_p99]\npass = -1\n").unwrap_err().to_string();
        assert!(e.contains("checks.latency_p99.pass"), "{e}");
        let e = parse("[checks.nope]\npass = 1\n").unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        let e = parse("[[ignroe]]\npath = \"/a\"\n").unwrap_err().to_string();
        assert!(e.contains("ignroe"), "{e}");
        let e = parse("alpha = 2\n").unwrap_err().to_string();
        assert!(e.contains("alpha"), "{e}");
        let e = parse("fail_on = \"sometimes\"\n").unwrap_err().to_string();
        assert!(e.contains("sometimes") || e.contains("fail_on"), "{e}");
    }
}
