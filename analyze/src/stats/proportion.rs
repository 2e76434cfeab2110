//! Rates: Wilson intervals, McNemar's test on paired outcomes, and Holm's correction for the
//! number of endpoints tested.

use serde::Serialize;
use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, DiscreteCDF};

use super::z_quantile;

/// A proportion k/n with its confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub k: u64,
    pub n: u64,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
}

/// The Wilson score interval for k successes in n trials (SciPy:
/// `binomtest(k, n).proportion_ci(confidence, method="wilson")`). With n = 0 the interval is
/// the whole of [0, 1]: no evidence either way.
pub fn wilson(k: u64, n: u64, confidence: f64) -> Interval {
    if n == 0 {
        return Interval { k, n, estimate: f64::NAN, low: 0.0, high: 1.0, confidence };
    }
    let nf = n as f64;
    let p = k as f64 / nf;
    let z = z_quantile(1.0 - (1.0 - confidence) / 2.0);
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z / denom * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    // At k = 0 and k = n the bounds are exactly 0 and 1; the formula only rounds to them.
    let low = if k == 0 { 0.0 } else { (center - half).max(0.0) };
    let high = if k >= n { 1.0 } else { (center + half).min(1.0) };
    Interval { k, n, estimate: p, low, high, confidence }
}

/// McNemar's test on paired binary outcomes (error / no error on each side of a pair).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct McNemar {
    /// Pairs where only the canary failed.
    pub canary_only: u64,
    /// Pairs where only the baseline failed.
    pub baseline_only: u64,
    /// The χ² statistic with continuity correction, or the smaller discordant count when exact.
    pub statistic: f64,
    pub p_value: f64,
    /// True when the exact binomial test was used (fewer than 25 discordant pairs).
    pub exact: bool,
    /// The exact one-sided p-value for "the canary fails more often": P(X ≥ canary_only) for X
    /// binomial over the discordant pairs with p = ½ (SciPy: `binomtest(b, b + c, 0.5,
    /// alternative="greater")`). A regression gate asks this question, not the two-sided one.
    pub greater_p_value: f64,
}

/// Two-sided McNemar test. Only discordant pairs carry information. With fewer than 25 of them
/// the exact binomial test is used (SciPy: `binomtest(min(b, c), b + c, 0.5)`); otherwise
/// χ² = (|b − c| − 1)² / (b + c) on one degree of freedom (SciPy: `chi2.sf(stat, 1)`).
pub fn mcnemar(canary_only: u64, baseline_only: u64) -> McNemar {
    let (b, c) = (canary_only, baseline_only);
    let total = b + c;
    if total == 0 {
        return McNemar {
            canary_only: b,
            baseline_only: c,
            statistic: 0.0,
            p_value: 1.0,
            exact: true,
            greater_p_value: 1.0,
        };
    }
    let greater = if b == 0 { 1.0 } else { Binomial::new(0.5, total).map(|d| d.sf(b - 1)).unwrap_or(1.0) };
    if total < 25 {
        let k = b.min(c);
        let p = Binomial::new(0.5, total).map(|d| d.cdf(k)).unwrap_or(1.0);
        return McNemar {
            canary_only: b,
            baseline_only: c,
            statistic: k as f64,
            p_value: (2.0 * p).min(1.0),
            exact: true,
            greater_p_value: greater,
        };
    }
    let diff = (b as f64 - c as f64).abs() - 1.0;
    let stat = diff.max(0.0).powi(2) / total as f64;
    let p = ChiSquared::new(1.0).map(|d| d.sf(stat)).unwrap_or(1.0);
    McNemar { canary_only: b, baseline_only: c, statistic: stat, p_value: p, exact: false, greater_p_value: greater }
}

/// Holm–Bonferroni adjusted p-values, in the input order: control the family-wise error when one
/// check is run per endpoint, so many small endpoints cannot fail an identical build by chance.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![1.0; m];
    let mut running = 0f64;
    for (rank, &i) in order.iter().enumerate() {
        let p = p_values[i];
        let adj = if p.is_nan() { 1.0 } else { ((m - rank) as f64 * p).min(1.0) };
        running = running.max(adj);
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_known_values() {
        // 0 of 10: the interval still has a positive upper bound.
        let w = wilson(0, 10, 0.95);
        assert_eq!(w.low, 0.0);
        assert!((w.high - 0.2775).abs() < 1e-3, "{w:?}");
        let w = wilson(50, 100, 0.95);
        assert!((w.low - 0.4038).abs() < 1e-3 && (w.high - 0.5962).abs() < 1e-3, "{w:?}");
        assert_eq!((wilson(0, 0, 0.95).low, wilson(0, 0, 0.95).high), (0.0, 1.0));
    }

    #[test]
    fn mcnemar_exact_and_asymptotic() {
        let m = mcnemar(0, 0);
        assert_eq!(m.p_value, 1.0);
        let m = mcnemar(10, 0);
        assert!(m.exact && (m.p_value - 2.0 / 1024.0).abs() < 1e-12, "{m:?}");
        let m = mcnemar(60, 40);
        assert!(!m.exact && (m.statistic - 3.61).abs() < 1e-9, "{m:?}");
    }

    #[test]
    fn holm_adjusts_in_input_order() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        for (a, b) in adj.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!((a - b).abs() < 1e-12, "{adj:?}");
        }
    }
}
