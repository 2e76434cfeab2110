//! The Hodges–Lehmann estimate of the paired shift and its confidence interval.

use super::z_quantile;

pub use shadowdiff_format::verdict::HodgesLehmann;

/// Hodges–Lehmann shift of paired differences with a `confidence` interval (e.g. 0.95).
///
/// There are n(n+1)/2 Walsh averages — 5·10¹¹ for a million pairs — so none is materialised: an
/// order statistic is found by bisection on its value, counting the averages below a value in
/// O(n) with two pointers over the sorted differences. Returns `None` with no finite values.
pub fn hodges_lehmann(diffs: &[f64], confidence: f64) -> Option<HodgesLehmann> {
    let mut d: Vec<f64> = diffs.iter().copied().filter(|x| x.is_finite()).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    let n = d.len();
    let total = (n as u64) * (n as u64 + 1) / 2;
    let estimate = if total % 2 == 1 {
        kth_walsh(&d, total.div_ceil(2))
    } else {
        (kth_walsh(&d, total / 2) + kth_walsh(&d, total / 2 + 1)) / 2.0
    };
    let nf = n as f64;
    let z = z_quantile(1.0 - (1.0 - confidence) / 2.0);
    let c = (nf * (nf + 1.0) / 4.0 - z * (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0).sqrt()).floor();
    let k = (c.max(1.0) as u64).min(total);
    let low = kth_walsh(&d, k);
    let high = kth_walsh(&d, total - k + 1);
    Some(HodgesLehmann { n, estimate, low, high, confidence })
}

/// Number of Walsh averages ≤ x, and the largest of them (−∞ if none).
fn count_le(d: &[f64], x: f64) -> (u64, f64) {
    let n = d.len();
    let mut count = 0u64;
    let mut best = f64::NEG_INFINITY;
    // For each i, the largest j ≥ i with d_i + d_j ≤ 2x; it only moves left as i grows.
    let mut j = n;
    for i in 0..n {
        while j > i && d[i] + d[j - 1] > 2.0 * x {
            j -= 1;
        }
        if j <= i {
            break;
        }
        count += (j - i) as u64;
        best = best.max((d[i] + d[j - 1]) / 2.0);
    }
    (count, best)
}

/// The k-th smallest (1-based) Walsh average of sorted `d`.
fn kth_walsh(d: &[f64], k: u64) -> f64 {
    let (mut lo, mut hi) = (d[0], d[d.len() - 1]);
    // Invariant: count(hi) ≥ k; narrow until hi is the smallest such float.
    for _ in 0..200 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        if count_le(d, mid).0 >= k {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let (c, best) = count_le(d, lo);
    if c >= k { best } else { count_le(d, hi).1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(d: &[f64]) -> Vec<f64> {
        let mut w = Vec::new();
        for i in 0..d.len() {
            for j in i..d.len() {
                w.push((d[i] + d[j]) / 2.0);
            }
        }
        w.sort_by(f64::total_cmp);
        w
    }

    #[test]
    fn matches_brute_force() {
        let d = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0];
        let mut sorted = d.to_vec();
        sorted.sort_by(f64::total_cmp);
        let w = brute(&d);
        for k in 1..=w.len() as u64 {
            assert_eq!(kth_walsh(&sorted, k), w[k as usize - 1], "k={k}");
        }
        let hl = hodges_lehmann(&d, 0.95).expect("values");
        let m = w.len();
        let median = if m % 2 == 1 { w[m / 2] } else { (w[m / 2 - 1] + w[m / 2]) / 2.0 };
        assert_eq!(hl.estimate, median);
        assert!(hl.low <= hl.estimate && hl.estimate <= hl.high);
    }

    #[test]
    fn recovers_a_shift_in_large_samples() {
        // 100,000 differences: symmetric noise around a 250 µs shift.
        let d: Vec<f64> = (0..100_000).map(|i| 250.0 + ((i * 7919 % 2001) as f64 - 1000.0)).collect();
        let hl = hodges_lehmann(&d, 0.95).expect("values");
        assert!((hl.estimate - 250.0).abs() < 5.0, "{hl:?}");
        assert!(hl.low < 250.0 && hl.high > 250.0 && hl.high - hl.low < 20.0, "{hl:?}");
    }
}
