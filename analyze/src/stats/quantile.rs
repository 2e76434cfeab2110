//! Quantiles, and paired quantile deltas with seeded bootstrap confidence intervals.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The `q` quantile of sorted values, interpolating linearly between order statistics (numpy's
/// and SciPy's default, Hyndman–Fan type 7). NaN for an empty slice.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Several quantiles of `values`, by selection instead of a full sort (the bootstrap's hot path:
/// a few order statistics of each resample). `values` is reordered; the result is exactly
/// [`quantiles`]'.
pub fn select_quantiles(values: &mut [f64], qs: &[f64]) -> Vec<f64> {
    let n = values.len();
    let mut out = vec![f64::NAN; qs.len()];
    if n == 0 {
        return out;
    }
    let mut order: Vec<usize> = (0..qs.len()).collect();
    order.sort_by(|a, b| qs[*a].total_cmp(&qs[*b]));
    // Everything before `start` is in its final place.
    let mut start = 0;
    let place = |values: &mut [f64], k: usize, start: &mut usize| -> f64 {
        if k >= *start {
            values[*start..].select_nth_unstable_by(k - *start, f64::total_cmp);
            *start = k + 1;
        }
        values[k]
    };
    for i in order {
        let h = (n - 1) as f64 * qs[i].clamp(0.0, 1.0);
        let lo = h.floor() as usize;
        let hi = h.ceil() as usize;
        let a = place(values, lo, &mut start);
        let b = if hi == lo { a } else { place(values, hi, &mut start) };
        out[i] = a + (h - lo as f64) * (b - a);
    }
    out
}

/// Several quantiles of `values` (sorted in place).
pub fn quantiles(values: &mut [f64], qs: &[f64]) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    qs.iter().map(|&q| quantile_sorted(values, q)).collect()
}

pub use shadowdiff_format::verdict::QuantileDelta;

/// How the bootstrap runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    pub resamples: usize,
    pub confidence: f64,
    pub seed: u64,
    /// Largest resample. Above it the m-out-of-n bootstrap is used: deviations of resampled
    /// estimates are scaled by √(m/n), keeping the cost bounded for millions of pairs.
    pub max_resample: usize,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self { resamples: 500, confidence: 0.95, seed: 0x5eed, max_resample: 20_000 }
    }
}

/// Quantile deltas of paired samples (`baseline[i]` and `canary[i]` come from one request),
/// each with a bootstrap interval that resamples pairs, so the pairing is kept. Pairs with a
/// non-finite value on either side are dropped. Deterministic for a given seed.
pub fn quantile_deltas(baseline: &[f64], canary: &[f64], qs: &[f64], boot: Bootstrap) -> Vec<QuantileDelta> {
    let pairs: Vec<(f64, f64)> =
        baseline.iter().zip(canary).map(|(&b, &c)| (b, c)).filter(|(b, c)| b.is_finite() && c.is_finite()).collect();
    let n = pairs.len();
    let mut b: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let mut c: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let bq = quantiles(&mut b, qs);
    let cq = quantiles(&mut c, qs);
    let rel = |b: f64, c: f64| if b != 0.0 { (c - b) / b } else { f64::NAN };

    let m = n.min(boot.max_resample.max(1));
    let mut deltas: Vec<Vec<f64>> = vec![Vec::with_capacity(boot.resamples); qs.len()];
    let mut rels: Vec<Vec<f64>> = vec![Vec::with_capacity(boot.resamples); qs.len()];
    if n > 1 {
        let mut rng = SmallRng::seed_from_u64(boot.seed);
        let mut rb = vec![0.0; m];
        let mut rc = vec![0.0; m];
        let mut picks = vec![0usize; m];
        for _ in 0..boot.resamples {
            // The draws first, then the gather: a loop of independent loads keeps many cache
            // misses in flight (a million pairs are 16 MB), where one drawing between loads kept
            // few. The same draws in the same order as one loop, so the same resamples.
            for p in &mut picks {
                *p = rng.random_range(0..n);
            }
            for (k, &p) in picks.iter().enumerate() {
                (rb[k], rc[k]) = pairs[p];
            }
            let sb = select_quantiles(&mut rb, qs);
            let sc = select_quantiles(&mut rc, qs);
            for i in 0..qs.len() {
                deltas[i].push(sc[i] - sb[i]);
                rels[i].push(rel(sb[i], sc[i]));
            }
        }
    }
    let scale = if n > 0 { (m as f64 / n as f64).sqrt() } else { 1.0 };
    let alpha = 1.0 - boot.confidence;
    // Basic bootstrap interval: θ̂ − s·(θ* − θ̂) quantiles, s = √(m/n).
    let interval = |estimate: f64, reps: &mut Vec<f64>| -> (f64, f64) {
        reps.retain(|x| x.is_finite());
        if reps.is_empty() || !estimate.is_finite() {
            return (f64::NAN, f64::NAN);
        }
        reps.sort_by(f64::total_cmp);
        let lo = quantile_sorted(reps, alpha / 2.0) - estimate;
        let hi = quantile_sorted(reps, 1.0 - alpha / 2.0) - estimate;
        (estimate - scale * hi, estimate - scale * lo)
    };
    qs.iter()
        .enumerate()
        .map(|(i, &q)| {
            let delta = cq[i] - bq[i];
            let relative = rel(bq[i], cq[i]);
            let (low, high) = interval(delta, &mut deltas[i]);
            let (relative_low, relative_high) = interval(relative, &mut rels[i]);
            QuantileDelta {
                q,
                n,
                baseline: bq[i],
                canary: cq[i],
                delta,
                relative,
                low,
                high,
                relative_low,
                relative_high,
                confidence: boot.confidence,
                resamples: if n > 1 { boot.resamples } else { 0 },
                resample_size: m,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn selection_gives_the_sorted_quantiles() {
        let mut rng = SmallRng::seed_from_u64(7);
        for n in [1usize, 2, 3, 10, 101, 1000] {
            let v: Vec<f64> = (0..n).map(|_| (rng.random::<f64>() * 50.0).floor()).collect();
            let qs = [0.99, 0.5, 0.0, 0.9, 0.95, 1.0, 0.5];
            let mut sorted = v.clone();
            let mut selected = v.clone();
            assert_eq!(select_quantiles(&mut selected, &qs), quantiles(&mut sorted, &qs), "n={n}");
        }
        assert!(select_quantiles(&mut [], &[0.5])[0].is_nan());
    }

    use super::*;

    #[test]
    fn linear_interpolation_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
        assert!((quantile_sorted(&v, 0.9) - 3.7).abs() < 1e-12);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn intervals_cover_a_known_shift_and_are_deterministic() {
        let base: Vec<f64> = (0..5_000).map(|i| 1_000.0 + (i * 7919 % 997) as f64).collect();
        let canary: Vec<f64> = base.iter().map(|b| b * 1.2).collect();
        let boot = Bootstrap { resamples: 200, ..Bootstrap::default() };
        let d = quantile_deltas(&base, &canary, &[0.5, 0.99], boot);
        for q in &d {
            assert!((q.relative - 0.2).abs() < 1e-9, "{q:?}");
            assert!(q.relative_low <= 0.2 + 1e-9 && q.relative_high >= 0.2 - 1e-9, "{q:?}");
            assert!(q.low <= q.delta && q.delta <= q.high, "{q:?}");
        }
        assert_eq!(d, quantile_deltas(&base, &canary, &[0.5, 0.99], boot));
    }

    #[test]
    fn identical_sides_give_an_interval_around_zero() {
        let base: Vec<f64> = (0..50_000i64).map(|i| ((i * 104_729) % 10_007) as f64).collect();
        let d = quantile_deltas(&base, &base, &[0.99], Bootstrap::default());
        assert_eq!(d[0].delta, 0.0);
        assert_eq!((d[0].low, d[0].high), (0.0, 0.0));
        assert_eq!(d[0].resample_size, 20_000);
    }
}
