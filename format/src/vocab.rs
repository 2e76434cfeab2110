//! The words verdict.json, examples.json, pairs.parquet and diffs.parquet share, as enums that
//! serialize to their stable strings: a check's status and id, what fails the run, a
//! difference's severity and status, a pair's outcome, and the unit of a figure. Units are
//! formatted for people by one function, [`Unit::format`], wherever a person reads them.

use serde::{Deserialize, Serialize};

/// Implements `as_str`, `Display` and `FromStr` from one table of variants and their strings.
macro_rules! words {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable string, as serialized.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(format!(
                        "`{s}` is not one of {}",
                        [$($text),+].map(|t| format!("`{t}`")).join(", ")
                    )),
                }
            }
        }
    };
}

/// The field a non-JSON body difference counts toward (diffs.parquet's `field`).
pub const BODY_FIELD: &str = "(body)";

/// A check's (or the run's) outcome. Ordered by how much it matters to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

words!(Status {
    Disabled => "disabled",
    NotComparable => "not_comparable",
    Pass => "pass",
    Warn => "warn",
    Inconclusive => "inconclusive",
    Fail => "fail",
});

impl Status {
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

    /// For a person: `not comparable` rather than `not_comparable`.
    pub fn label(self) -> &'static str {
        match self {
            Status::NotComparable => "not comparable",
            s => s.as_str(),
        }
    }
}

/// When the exit code turns non-zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailOn {
    /// Only a failed check fails the run (warnings exit 0).
    #[default]
    Fail,
    /// A warning fails the run too.
    Warn,
}

words!(FailOn { Fail => "fail", Warn => "warn" });

/// Which side the canary's latency is measured against. `auto` (the policy's default) takes the
/// secondary when the pairs have one: capture serves the client from the baseline and reaches the
/// canary and the secondary alike, as mirrors, so only the secondary's latency was measured the
/// way the canary's was. verdict.json records the side that was used (`baseline` or `secondary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyReference {
    #[default]
    Auto,
    Baseline,
    Secondary,
}

words!(LatencyReference { Auto => "auto", Baseline => "baseline", Secondary => "secondary" });

impl LatencyReference {
    /// The side verdict.json names when it does not say (files written before the choice existed).
    pub fn baseline() -> Self {
        Self::Baseline
    }

    pub fn is_baseline(&self) -> bool {
        *self == Self::Baseline
    }
}

/// The checks, by the id they carry in `verdict.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    LatencyP99,
    LatencyShape,
    ErrorRate,
    CriticalErrors,
    DiffRate,
    Breaking,
    /// Absolute goals: the canary's latency ceilings and the routes that must have data.
    Goals,
}

words!(CheckId {
    LatencyP99 => "latency_p99",
    LatencyShape => "latency_shape",
    ErrorRate => "error_rate",
    CriticalErrors => "critical_errors",
    DiffRate => "diff_rate",
    Breaking => "breaking",
    Goals => "goals",
});

/// How much a difference matters to a client of the API. Ordered: `Additive < Changed <
/// Breaking`, so the worst of a set is its `max()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A field was added: old clients ignore it.
    Additive,
    /// A value changed (including array elements added or removed, and a `null` that became a
    /// value): the shape a client relies on is intact.
    Changed,
    /// A field was removed, a type changed, or a value became `null`: a client may break.
    Breaking,
}

words!(Severity { Additive => "additive", Changed => "changed", Breaking => "breaking" });

/// What a difference is, once the noise verdicts are in (diffs.parquet's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffStatus {
    /// Counts against the canary.
    Real,
    /// The secondary differs there as often: the field is noisy.
    Noise,
    /// No secondary; the values look unique per request.
    SuspectedNoise,
    /// A rule of the policy explains it.
    Explained,
}

words!(DiffStatus {
    Real => "real",
    Noise => "noise",
    SuspectedNoise => "suspected_noise",
    Explained => "explained",
});

/// What became of one pair (pairs.parquet's `outcome`), once the noise verdicts are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Compared, and no difference at all.
    Same,
    /// Compared; every difference was noise or explained.
    NoiseOnly,
    /// Compared, with at least one real difference.
    Different,
    /// The canary was not asked (the capture agent's mirror queue was full, or a replay skipped it).
    CanarySkipped,
    /// Both answered, with different statuses.
    StatusMismatch,
    /// The canary failed in transport (timeout, reset …) and the baseline did not.
    CanaryError,
    /// The baseline failed in transport and the canary did not.
    BaselineError,
    /// Both failed in transport.
    BothError,
}

words!(Outcome {
    Same => "same",
    NoiseOnly => "noise_only",
    Different => "different",
    CanarySkipped => "canary_skipped",
    StatusMismatch => "status_mismatch",
    CanaryError => "canary_error",
    BaselineError => "baseline_error",
    BothError => "both_error",
});

/// The unit of a check's figure or threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A relative change: 0.1 is +10%.
    Relative,
    /// A share of pairs: 0.001 is 0.10%.
    Share,
    /// A multiple of the baseline's figure: 1.1 is 1.10×.
    Ratio,
    /// The Kolmogorov–Smirnov statistic D.
    KsD,
    /// A count of pairs.
    Count,
}

words!(Unit { Relative => "relative", Share => "share", Ratio => "ratio", KsD => "ks_d", Count => "count" });

impl Unit {
    /// The one way a figure is written for a person: `+12.5%`, `0.42%`, `1.10×`, `D=0.081`, `3`.
    /// Not-a-number (no data) is `–`.
    pub fn format(self, v: f64) -> String {
        if v.is_nan() {
            return "–".to_owned();
        }
        match self {
            Unit::Relative => format!("{:+.1}%", v * 100.0),
            Unit::Share => format!("{:.2}%", v * 100.0),
            Unit::Ratio => format!("{v:.2}×"),
            Unit::KsD => format!("D={v:.3}"),
            Unit::Count => format!("{v}"),
        }
    }

    /// As [`Unit::format`], `–` for no figure.
    pub fn format_opt(self, v: Option<f64>) -> String {
        v.map_or_else(|| "–".to_owned(), |v| self.format(v))
    }
}

// Added for the report (shadowdiff-reports' page::fields): the person-facing word of a
// difference's status, as `Status::label` is for a check's.
impl DiffStatus {
    /// For a person: `suspected noise` rather than `suspected_noise`.
    pub fn label(self) -> &'static str {
        match self {
            DiffStatus::SuspectedNoise => "suspected noise",
            s => s.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_through_serde_and_from_str() {
        for s in Status::ALL {
            let json = serde_json::to_string(s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(s.as_str().parse::<Status>().ok(), Some(*s));
        }
        for d in DiffStatus::ALL {
            assert_eq!(serde_json::from_str::<DiffStatus>(&format!("\"{d}\"")).ok(), Some(*d));
        }
        assert!("nope".parse::<Outcome>().unwrap_err().contains("`noise_only`"));
    }

    #[test]
    fn units_format_one_way() {
        assert_eq!(Unit::Relative.format(0.125), "+12.5%");
        assert_eq!(Unit::Relative.format(-0.02), "-2.0%");
        assert_eq!(Unit::Share.format(0.0042), "0.42%");
        assert_eq!(Unit::Ratio.format(1.1), "1.10×");
        assert_eq!(Unit::KsD.format(0.0814), "D=0.081");
        assert_eq!(Unit::Count.format(3.0), "3");
        assert_eq!(Unit::Share.format(f64::NAN), "–");
        assert_eq!(Unit::Count.format_opt(None), "–");
    }
}
