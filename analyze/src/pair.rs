//! Comparing two recorded sides of a pair: status, headers and body in one call. The only part
//! of the diff engine that takes the pair format's types; everything under it takes plain values.

use serde::Serialize;
use shadowdiff_format::SideRecord;

use crate::body::BodyComparison;
use crate::headers::HeaderDifference;
use crate::json::Severity;
use crate::rules::Rules;

/// A status code that differs, with its severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatusDifference {
    pub baseline: Option<u16>,
    pub canary: Option<u16>,
    pub severity: Severity,
}

/// Compares two status codes (`None`: no response). A change of class (2xx to 5xx, or a response
/// against none) is breaking; a change within a class (200 to 201) is a change.
pub fn compare_status(baseline: Option<u16>, canary: Option<u16>) -> Option<StatusDifference> {
    if baseline == canary {
        return None;
    }
    let class = |s: Option<u16>| s.map(|s| s / 100);
    let severity = if class(baseline) == class(canary) { Severity::Changed } else { Severity::Breaking };
    Some(StatusDifference { baseline, canary, severity })
}

/// Everything that differs between two sides of one pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideComparison {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusDifference>,
    pub headers: Vec<HeaderDifference>,
    pub body: BodyComparison,
}

impl SideComparison {
    /// The worst severity found, ignoring explained differences; `None` when nothing differs.
    pub fn worst(&self) -> Option<Severity> {
        let body = match self.body.compared_as {
            _ if self.body.undecodable.is_some() => self.body.undecodable.as_ref().map(|u| u.severity),
            crate::body::ComparedAs::Json => {
                self.body.differences.iter().filter(|d| d.explained.is_none()).map(|d| d.severity).max()
            }
            _ => (!self.body.equal).then_some(Severity::Changed),
        };
        [self.status.map(|s| s.severity), self.headers.iter().map(|h| h.severity).max(), body]
            .into_iter()
            .flatten()
            .max()
    }
}

/// Compares `canary` (or a secondary) against `baseline`, each body decoded by its own
/// Content-Encoding. `route` is the pair's route template.
pub fn compare_sides(baseline: &SideRecord, canary: &SideRecord, rules: &Rules, route: Option<&str>) -> SideComparison {
    crate::evaluate::compare_records(baseline, canary, rules, route)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use shadowdiff_format::Header;

    use super::*;

    fn side(status: u16, body: &str) -> SideRecord {
        SideRecord {
            status: Some(status),
            headers: vec![Header::new("content-type", "application/json"), Header::new("date", "x")],
            body: Some(Bytes::from(body.to_owned())),
            ..SideRecord::default()
        }
    }

    #[test]
    fn status_severity() {
        assert_eq!(compare_status(Some(200), Some(200)), None);
        assert_eq!(compare_status(Some(200), Some(201)).map(|s| s.severity), Some(Severity::Changed));
        assert_eq!(compare_status(Some(200), Some(500)).map(|s| s.severity), Some(Severity::Breaking));
        assert_eq!(compare_status(Some(200), None).map(|s| s.severity), Some(Severity::Breaking));
    }

    #[test]
    fn compares_whole_sides() {
        let a = side(200, r#"{"a":1,"b":2}"#);
        let mut b = side(200, r#"{"a":1,"b":3}"#);
        b.headers[1] = Header::new("date", "y");
        let c = compare_sides(&a, &b, &Rules::default(), None);
        assert_eq!(c.status, None);
        assert!(c.headers.is_empty());
        assert_eq!(c.body.differences.len(), 1);
        assert_eq!(c.worst(), Some(Severity::Changed));
        assert_eq!(compare_sides(&a, &a, &Rules::default(), None).worst(), None);
    }
}
