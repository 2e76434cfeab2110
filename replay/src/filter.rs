//! Which recorded requests a replay sends: path patterns, methods, recorded status, a time
//! window, deterministic sampling, and the mutation guard.

use chrono::{DateTime, Utc};
use shadowdiff_capture::select::PathPattern;
use shadowdiff_format::PairRecord;

/// Why a recorded request was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// A non-idempotent method without `--allow-mutations`.
    Mutation,
    Path,
    Method,
    Status,
    Window,
    Sample,
}

impl Skip {
    pub fn name(self) -> &'static str {
        match self {
            Skip::Mutation => "mutation",
            Skip::Path => "path",
            Skip::Method => "method",
            Skip::Status => "status",
            Skip::Window => "time_window",
            Skip::Sample => "sample",
        }
    }
}

/// Methods that change nothing on the server by HTTP's definition, so replaying them is safe.
pub fn is_idempotent_safe(method: &str) -> bool {
    // Compared in place: this runs for every recorded request.
    ["GET", "HEAD", "OPTIONS", "TRACE"].iter().any(|m| m.eq_ignore_ascii_case(method))
}

#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub include: Vec<PathPattern>,
    pub exclude: Vec<PathPattern>,
    /// Upper-case methods to send; empty = any.
    pub methods: Vec<String>,
    /// Recorded baseline statuses to send: exact codes (`200`) or classes (`2xx`); empty = any.
    pub statuses: Vec<StatusMatch>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Share of requests to send, chosen by a hash of the pair id: the same pairs every run.
    pub sample: Option<f64>,
    pub allow_mutations: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    Code(u16),
    Class(u16),
}

impl StatusMatch {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(c) = s.strip_suffix("xx").and_then(|c| c.parse::<u16>().ok()).filter(|c| (1..=5).contains(c)) {
            return Ok(StatusMatch::Class(c));
        }
        s.parse::<u16>()
            .ok()
            .filter(|c| (100..=999).contains(c))
            .map(StatusMatch::Code)
            .ok_or_else(|| format!("--status `{s}` must be a status code (404) or a class (5xx)"))
    }

    fn matches(self, status: Option<u16>) -> bool {
        match (self, status) {
            (StatusMatch::Code(c), Some(s)) => c == s,
            (StatusMatch::Class(c), Some(s)) => s / 100 == c,
            (_, None) => false,
        }
    }
}

impl Filters {
    /// `Ok` to send, or why not. The mutation guard is checked last, so a request filtered out
    /// for another reason is not counted as a skipped mutation.
    pub fn check(&self, r: &PairRecord) -> Result<(), Skip> {
        if !self.include.is_empty() && !self.include.iter().any(|p| p.matches(&r.path)) {
            return Err(Skip::Path);
        }
        if self.exclude.iter().any(|p| p.matches(&r.path)) {
            return Err(Skip::Path);
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m.eq_ignore_ascii_case(&r.method)) {
            return Err(Skip::Method);
        }
        if !self.statuses.is_empty() && !self.statuses.iter().any(|s| s.matches(r.baseline.status)) {
            return Err(Skip::Status);
        }
        if self.since.is_some_and(|t| r.captured_at < t) || self.until.is_some_and(|t| r.captured_at >= t) {
            return Err(Skip::Window);
        }
        if let Some(rate) = self.sample
            && sample_point(&r.pair_id) >= rate
        {
            return Err(Skip::Sample);
        }
        if !self.allow_mutations && !is_idempotent_safe(&r.method) {
            return Err(Skip::Mutation);
        }
        Ok(())
    }
}

/// A stable point in [0, 1) for a pair id (FNV-1a), so sampling picks the same pairs every run.
fn sample_point(id: &str) -> f64 {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(method: &str, path: &str, status: u16) -> PairRecord {
        let mut r = PairRecord::new("t", Utc::now(), method, path, None);
        r.baseline.status = Some(status);
        r
    }

    #[test]
    fn filters_say_why() {
        let f = Filters {
            include: vec![PathPattern::new("/api/**").expect("glob")],
            statuses: vec![StatusMatch::parse("2xx").expect("class")],
            ..Filters::default()
        };
        assert_eq!(f.check(&rec("GET", "/api/users/1", 200)), Ok(()));
        assert_eq!(f.check(&rec("GET", "/healthz", 200)), Err(Skip::Path));
        assert_eq!(f.check(&rec("GET", "/api/x", 500)), Err(Skip::Status));
        assert_eq!(f.check(&rec("POST", "/api/cart", 201)), Err(Skip::Mutation));
        let f = Filters { allow_mutations: true, ..f };
        assert_eq!(f.check(&rec("POST", "/api/cart", 201)), Ok(()));
        assert!(StatusMatch::parse("7xx").is_err() && StatusMatch::parse("abc").is_err());
    }

    #[test]
    fn sampling_is_deterministic_and_near_its_rate() {
        let f = Filters { sample: Some(0.25), ..Filters::default() };
        let records: Vec<PairRecord> = (0..4000).map(|_| rec("GET", "/x", 200)).collect();
        let kept = records.iter().filter(|r| f.check(r).is_ok()).count();
        assert!((800..1200).contains(&kept), "{kept}");
        assert!(records.iter().all(|r| f.check(r) == f.check(r)));
    }
}
