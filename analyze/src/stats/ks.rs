//! The two-sample Kolmogorov–Smirnov test: catches a change of spread or shape that leaves the
//! median where it was (the regression Kayenta's Mann–Whitney judge passes).

pub use shadowdiff_format::verdict::KsResult;

/// Two-sided two-sample KS test. Non-finite values are ignored. The p-value uses the asymptotic
/// (Kolmogorov) distribution, which is what analyze's sample sizes call for; it equals SciPy's
/// `kstwobign.sf(sqrt(en) * D)`.
pub fn ks_two_sample(baseline: &[f64], canary: &[f64]) -> KsResult {
    let mut a: Vec<f64> = baseline.iter().copied().filter(|x| x.is_finite()).collect();
    let mut b: Vec<f64> = canary.iter().copied().filter(|x| x.is_finite()).collect();
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return KsResult { n_baseline: n, n_canary: m, statistic: 0.0, p_value: 1.0, slower: 0.0, slower_p_value: 1.0 };
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d, mut slower) = (0usize, 0usize, 0f64, 0f64);
    while i < n && j < m {
        let x = a[i].min(b[j]);
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        let gap = i as f64 / n as f64 - j as f64 / m as f64;
        d = d.max(gap.abs());
        slower = slower.max(gap);
    }
    let en = (n as f64 * m as f64) / (n + m) as f64;
    KsResult {
        n_baseline: n,
        n_canary: m,
        statistic: d,
        p_value: kolmogorov_sf(en.sqrt() * d),
        slower,
        slower_p_value: one_sided_sf(slower, n, m),
    }
}

/// The one-sided two-sample KS p-value of D⁺ = `d` by Hodges' approximation (his eq. 5.3), as
/// SciPy's `ks_2samp(…, alternative="greater", method="asymp")` computes it.
pub fn one_sided_sf(d: f64, n: usize, m: usize) -> f64 {
    if d <= 0.0 {
        return 1.0;
    }
    let (big, small) = (n.max(m) as f64, n.min(m) as f64);
    let en = big * small / (big + small);
    let z = en.sqrt() * d;
    let expt = -2.0 * z * z - 2.0 * z * (big + 2.0 * small) / (big * small * (big + small)).sqrt() / 3.0;
    expt.exp().min(1.0)
}

/// Survival function of the Kolmogorov distribution, P(K > x) = 2 Σ (−1)^(k−1) e^(−2k²x²), with
/// the small-x form 1 − √(2π)/x Σ e^(−(2k−1)²π²/(8x²)) where the alternating series is slow.
pub fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 1.0 {
        let s: f64 = (1..=20)
            .map(|k| {
                let t = (2 * k - 1) as f64;
                (-t * t * std::f64::consts::PI * std::f64::consts::PI / (8.0 * x * x)).exp()
            })
            .sum();
        return (1.0 - (2.0 * std::f64::consts::PI).sqrt() / x * s).clamp(0.0, 1.0);
    }
    let s: f64 = (1..=100)
        .map(|k| {
            let k = k as f64;
            let sign = if k as u64 % 2 == 1 { 1.0 } else { -1.0 };
            sign * (-2.0 * k * k * x * x).exp()
        })
        .sum();
    (2.0 * s).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_have_d_zero() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        let r = ks_two_sample(&a, &a);
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn disjoint_samples_have_d_one() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        let b: Vec<f64> = (200..300).map(f64::from).collect();
        let r = ks_two_sample(&a, &b);
        assert_eq!(r.statistic, 1.0);
        assert!(r.p_value < 1e-20);
    }

    #[test]
    fn kolmogorov_forms_agree_at_the_seam() {
        let below = kolmogorov_sf(1.0 - 1e-12);
        let above = kolmogorov_sf(1.0);
        assert!((below - above).abs() < 1e-9, "{below} vs {above}");
        // Known value: P(K > 1.36) ≈ 0.0494 (the 5% critical value).
        assert!((kolmogorov_sf(1.358) - 0.05).abs() < 1e-3);
    }
}
