//! `junit.xml`: one test case per check, so a CI system shows the verdict where it shows tests.
//! Serialized by `quick-junit`, which owns JUnit's escaping and layout.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use shadowdiff_format::verdict::{CheckResult, Status, Verdict};

use crate::{Error, Result};

/// The JUnit XML of a verdict. A failed check fails its test case with the reason; a warning
/// passes with `warn: reason` in `system-out`; inconclusive, not comparable and disabled checks
/// are skipped with the reason; a passing check carries its reason in `system-out`. A report-only
/// check never fails its case: its failure passes with `fail (report only): reason`.
pub fn junit(v: &Verdict) -> Result<String> {
    report(&v.checks).to_string().map_err(Error::Junit)
}

fn report(checks: &[CheckResult]) -> Report {
    let mut suite = TestSuite::new("shadowdiff analyze");
    suite.add_test_cases(checks.iter().map(test_case));
    let mut report = Report::new("shadowdiff");
    report.add_test_suite(suite);
    report
}

fn test_case(c: &CheckResult) -> TestCase {
    let (status, out) = match c.status {
        Status::Fail if c.report_only => {
            (TestCaseStatus::success(), Some(format!("{} (report only): {}", c.status, c.reason)))
        }
        Status::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(c.reason.as_str()).set_type(c.id.as_str()).set_description(c.reason.as_str());
            (s, None)
        }
        Status::Inconclusive | Status::NotComparable | Status::Disabled => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("{}: {}", c.status, c.reason));
            (s, None)
        }
        Status::Warn => (TestCaseStatus::success(), Some(format!("{}: {}", c.status, c.reason))),
        Status::Pass => (TestCaseStatus::success(), Some(c.reason.clone())),
    };
    let mut case = TestCase::new(c.title.as_str(), status);
    case.set_classname(format!("shadowdiff.{}", c.id));
    if let Some(out) = out {
        case.set_system_out(out);
    }
    case
}

#[cfg(test)]
mod tests {
    use shadowdiff_format::verdict::{CheckId, Threshold, Unit};

    use super::*;

    fn check(id: CheckId, status: Status, reason: &str) -> CheckResult {
        CheckResult {
            id,
            title: format!("{id} <title>"),
            status,
            reason: reason.to_owned(),
            value: None,
            unit: Unit::Count,
            threshold: Threshold { pass: 0.0, warn: 0.0 },
            threshold_unit: Unit::Count,
            statistic: None,
            p_value: None,
            ci: None,
            n: 0,
            mde: None,
            more_pairs: None,
            report_only: false,
            endpoints: Vec::new(),
        }
    }

    #[test]
    fn one_case_per_check_failures_carry_the_reason_warnings_pass_the_rest_skip() {
        let checks = [
            check(CheckId::Breaking, Status::Fail, "3 pairs & <more>"),
            check(CheckId::LatencyP99, Status::Warn, "slower"),
            check(CheckId::LatencyShape, Status::NotComparable, "recorded baseline"),
            check(CheckId::DiffRate, Status::Inconclusive, "too few"),
            check(CheckId::ErrorRate, Status::Disabled, "off"),
            check(CheckId::CriticalErrors, Status::Pass, "none"),
        ];
        let xml = report(&checks).to_string().unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 6, "{xml}");
        assert!(xml.contains("tests=\"6\" skipped=\"3\" failures=\"1\" errors=\"0\""), "{xml}");
        assert!(xml.contains("classname=\"shadowdiff.breaking\""), "{xml}");
        assert!(xml.contains("<failure message=\"3 pairs &amp; &lt;more&gt;\" type=\"breaking\">"), "{xml}");
        assert!(xml.contains("<system-out>warn: slower</system-out>"), "{xml}");
        assert!(xml.contains("<skipped message=\"not_comparable: recorded baseline\"/>"), "{xml}");
        assert!(xml.contains("name=\"breaking &lt;title&gt;\""), "{xml}");
        assert!(!xml.contains("<title>"), "{xml}");
    }
}
