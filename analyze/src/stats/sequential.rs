//! Anytime-valid statistics, for a shadow period that is judged again and again (the live gate,
//! windows, a CI job re-run every hour). A fixed-sample interval or p-value is valid at one look;
//! checked at every look, it raises a false alarm far more often than its level says. These stay
//! valid over any number of looks, at the price of wider intervals:
//!
//! - [`cs_widening`]: how much a fixed-sample interval of an asymptotically normal estimate must
//!   widen to become an asymptotic confidence sequence (Waudby-Smith, Wu, Ramdas, Karampatziakis
//!   and Howard, "Time-uniform central limit theory and asymptotic confidence sequences", 2021:
//!   the normal-mixture boundary of Robbins, with its mixing variance tuned for `t_star` samples);
//! - [`mixture_p`]: an anytime-valid one-sided p-value for "the canary fails more often", from a
//!   mixture sequential probability ratio test over the discordant pairs (Robbins' mixture with a
//!   uniform prior on the share of discordant pairs that are the canary's, over [½, 1]; by Ville's
//!   inequality the likelihood ratio exceeds 1/α with probability at most α, ever);
//! - [`dkw_band`]: a time-uniform Dvoretzky–Kiefer–Wolfowitz band for an empirical distribution
//!   function (Howard and Ramdas, "Sequential estimation of quantiles with applications to
//!   A/B-testing and best-arm identification", 2022, Theorem 2's stitched bound).

use statrs::function::beta::{beta_reg, ln_beta};

use super::z_quantile;

/// The factor by which a two-sided fixed-sample interval at `confidence` over `n` samples widens to
/// an asymptotic confidence sequence at the same level, its boundary tightest near `t_star`
/// samples. Always ≥ 1 in practice; 1 for fewer than 2 samples.
pub fn cs_widening(n: u64, confidence: f64, t_star: f64) -> f64 {
    if n < 2 {
        return 1.0;
    }
    let alpha = (1.0 - confidence).clamp(1e-12, 1.0);
    let t = n as f64;
    // Half of alpha on each side; ρ² chosen so the boundary is tightest at t_star.
    let a = alpha / 2.0;
    let rho2 = (-2.0 * a.ln() + (-2.0 * a.ln() + 1.0).ln()) / t_star.max(1.0);
    let radius = ((2.0 * (t * rho2 + 1.0) / (t * t * rho2)) * ((t * rho2 + 1.0).sqrt() / a).ln()).sqrt();
    let fixed = z_quantile(1.0 - a) / t.sqrt();
    (radius / fixed).max(1.0)
}

/// The fixed-sample interval `(low, high)` around `estimate` over `n` samples at `confidence`,
/// widened on each side by [`cs_widening`] into a confidence sequence.
pub fn widened(estimate: f64, (low, high): (f64, f64), n: u64, confidence: f64, t_star: f64) -> (f64, f64) {
    let k = cs_widening(n, confidence, t_star);
    (estimate - (estimate - low) * k, estimate + (high - estimate) * k)
}

/// Anytime-valid one-sided p-value that the canary fails more often than the baseline, from
/// `canary_only` and `baseline_only` discordant pairs: 1 / L, where L is the mixture likelihood
/// ratio of the discordant pairs' split against an even one.
pub fn mixture_p(canary_only: u64, baseline_only: u64) -> f64 {
    let (c, b) = (canary_only as f64, baseline_only as f64);
    let d = c + b;
    if d == 0.0 {
        return 1.0;
    }
    // L = 2 · 2^d · ∫_{1/2}^{1} p^c (1 − p)^b dp = 2^(d+1) · B(c+1, b+1) · (1 − I_{1/2}(c+1, b+1)).
    let upper = 1.0 - beta_reg(c + 1.0, b + 1.0, 0.5);
    if upper <= 0.0 {
        return 1.0;
    }
    let ln_l = (d + 1.0) * std::f64::consts::LN_2 + ln_beta(c + 1.0, b + 1.0) + upper.ln();
    (-ln_l).exp().min(1.0)
}

/// The half-width of a time-uniform DKW band for an empirical CDF of `n` samples at level
/// `alpha`: with probability 1 − α, at every n at once, the empirical CDF stays within it of the
/// true one.
pub fn dkw_band(n: u64, alpha: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let t = n as f64;
    (0.85 * (((std::f64::consts::E * t).ln().ln() + 0.8 * (1612.0 / alpha).ln()) / t).sqrt()).min(1.0)
}

/// The anytime-valid p-value of a one-sided two-sample KS statistic `d` with `n` samples on each
/// side: the smallest level whose two time-uniform bands ([`dkw_band`] at half the level each)
/// no longer cover a gap of `d` between the empirical distributions.
pub fn dkw_p(d: f64, n: u64) -> f64 {
    if n == 0 || d <= 0.0 {
        return 1.0;
    }
    let t = n as f64;
    let half = d / 2.0;
    let a = 1612.0 * (-((half * half * t / (0.85 * 0.85) - (std::f64::consts::E * t).ln().ln()) / 0.8)).exp();
    (2.0 * a).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confidence_sequence_is_wider_than_one_interval_and_grows_slowly() {
        let w1000 = cs_widening(1000, 0.95, 1000.0);
        assert!(w1000 > 1.0 && w1000 < 2.0, "{w1000}");
        // Far from t_star it widens more, but the radius still shrinks with n.
        let w = |n: u64| cs_widening(n, 0.95, 1000.0) / (n as f64).sqrt();
        assert!(w(100_000) < w(10_000) && w(10_000) < w(1_000));
        assert_eq!(cs_widening(1, 0.95, 1000.0), 1.0);
    }

    #[test]
    fn the_mixture_p_value_is_conservative_and_falls_with_evidence() {
        // Even splits give no evidence.
        assert!(mixture_p(10, 10) > 0.5);
        assert_eq!(mixture_p(0, 0), 1.0);
        // A lopsided split does, but less than the fixed-sample binomial test says.
        let p = mixture_p(40, 10);
        let fixed = crate::stats::mcnemar(40, 10).greater_p_value;
        assert!(p < 0.01 && p > fixed, "mixture {p}, fixed {fixed}");
        assert!(mixture_p(80, 20) < p);
    }

    #[test]
    fn the_dkw_p_value_inverts_the_band() {
        let d = 2.0 * dkw_band(5_000, 0.005);
        assert!((dkw_p(d, 5_000) - 0.01).abs() < 1e-9, "{}", dkw_p(d, 5_000));
        assert_eq!(dkw_p(0.0, 5_000), 1.0);
    }

    #[test]
    fn the_dkw_band_shrinks_like_root_log_log_n_over_n() {
        let (a, b) = (dkw_band(1_000, 0.01), dkw_band(100_000, 0.01));
        assert!(a > b && b > 0.0 && a < 0.2, "{a} {b}");
        // Wider than the fixed-sample DKW band √(ln(2/α)/2n).
        assert!(b > ((2.0f64 / 0.01).ln() / 200_000.0).sqrt());
    }
}
