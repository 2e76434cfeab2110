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
        let (a, b) = kth_walsh_pair(&d, total / 2);
        (a + b) / 2.0
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
///
/// Bisection on the value narrows (lo, hi] until it holds few averages (at most
/// [`ENUMERATE`] + 4n), which are then listed and the right one selected: a dozen O(n) passes
/// at 20,000 differences where bisecting to the last float took about sixty (perf put this at
/// 8 % of an analysis). Ties can keep many averages in an interval no float splits; then the
/// answer is the largest average ≤ hi, as before.
fn kth_walsh(d: &[f64], k: u64) -> f64 {
    let n = d.len();
    let (mut lo, mut hi) = (d[0], d[n - 1]);
    let (mut c_lo, smallest) = count_le(d, lo);
    if c_lo >= k {
        return smallest;
    }
    // Invariant: count(lo) = c_lo < k ≤ count(hi) = c_hi.
    let mut c_hi = (n as u64) * (n as u64 + 1) / 2;
    let few = ENUMERATE + 4 * n as u64;
    while c_hi - c_lo > few {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            return count_le(d, hi).1;
        }
        let (c, _) = count_le(d, mid);
        if c >= k {
            (hi, c_hi) = (mid, c);
        } else {
            (lo, c_lo) = (mid, c);
        }
    }
    let mut within = walsh_within(d, lo, hi, (c_hi - c_lo) as usize);
    let rank = (k - c_lo - 1) as usize;
    if rank >= within.len() {
        return count_le(d, hi).1;
    }
    *within.select_nth_unstable_by(rank, f64::total_cmp).1
}

/// Every Walsh average in (lo, hi], by the same sums count_le compares: for each i, the j ≥ i
/// with 2·lo < d_i + d_j ≤ 2·hi, a range whose ends only move left as i grows.
fn walsh_within(d: &[f64], lo: f64, hi: f64, expected: usize) -> Vec<f64> {
    let n = d.len();
    let mut within = Vec::with_capacity(expected);
    let (mut above_lo, mut above_hi) = (n, n);
    for i in 0..n {
        while above_hi > i && d[i] + d[above_hi - 1] > 2.0 * hi {
            above_hi -= 1;
        }
        while above_lo > i && d[i] + d[above_lo - 1] > 2.0 * lo {
            above_lo -= 1;
        }
        if above_hi <= i {
            break;
        }
        for j in above_lo.max(i)..above_hi {
            within.push((d[i] + d[j]) / 2.0);
        }
    }
    within
}

/// Averages listed at the end of [`kth_walsh`]'s bisection, beyond 4 per difference.
const ENUMERATE: u64 = 1024;

/// The k-th and (k+1)-th smallest (1-based) Walsh averages of sorted `d`, as two calls of
/// [`kth_walsh`] give them, in about the time of one: the bisection narrows (lo, hi] until it
/// holds few averages and both ranks, and the listing yields both (the median of an even count
/// of averages needs the two; this was a quarter of the Hodges–Lehmann estimate's time).
fn kth_walsh_pair(d: &[f64], k: u64) -> (f64, f64) {
    let n = d.len();
    let total = (n as u64) * (n as u64 + 1) / 2;
    let separately = || (kth_walsh(d, k), kth_walsh(d, k + 1));
    let (mut lo, mut hi) = (d[0], d[n - 1]);
    let (mut c_lo, _) = count_le(d, lo);
    if c_lo >= k || k >= total {
        return separately();
    }
    // Invariant: count(lo) = c_lo < k < k + 1 ≤ count(hi) = c_hi.
    let mut c_hi = total;
    let few = ENUMERATE + 4 * n as u64;
    while c_hi - c_lo > few {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            return separately();
        }
        let (c, _) = count_le(d, mid);
        if c > k {
            (hi, c_hi) = (mid, c);
        } else if c < k {
            (lo, c_lo) = (mid, c);
        } else {
            // The two ranks fall on either side of `mid`.
            return separately();
        }
    }
    let mut within = walsh_within(d, lo, hi, (c_hi - c_lo) as usize);
    let rank = (k - c_lo - 1) as usize;
    if rank + 1 >= within.len() {
        return separately();
    }
    let (_, kth, above) = within.select_nth_unstable_by(rank, f64::total_cmp);
    let next = above.iter().copied().min_by(f64::total_cmp).unwrap_or(*kth);
    (*kth, next)
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
        for k in 1..w.len() as u64 {
            assert_eq!(kth_walsh_pair(&sorted, k), (w[k as usize - 1], w[k as usize]), "pair at k={k}");
        }
        let hl = hodges_lehmann(&d, 0.95).expect("values");
        let m = w.len();
        let median = if m % 2 == 1 { w[m / 2] } else { (w[m / 2 - 1] + w[m / 2]) / 2.0 };
        assert_eq!(hl.estimate, median);
        assert!(hl.low <= hl.estimate && hl.estimate <= hl.high);
    }

    #[test]
    fn matches_brute_force_past_the_enumeration_bound_and_with_ties() {
        // 400 values: 80,200 averages, so the bisection runs before the listing; then the same
        // with values in a small integer range (many ties), and a constant sample.
        let spread: Vec<f64> = (0..400).map(|i| ((i * 7919 % 1009) as f64 - 500.0) * 1.37).collect();
        let ties: Vec<f64> = (0..400).map(|i| (i * 31 % 7) as f64).collect();
        let constant = vec![3.5; 300];
        for d in [spread, ties, constant] {
            let mut sorted = d.clone();
            sorted.sort_by(f64::total_cmp);
            let w = brute(&d);
            for k in (1..=w.len() as u64).step_by(97).chain([1, w.len() as u64 / 2, w.len() as u64]) {
                assert_eq!(kth_walsh(&sorted, k), w[k as usize - 1], "k={k}");
            }
            for k in (1..w.len() as u64).step_by(89).chain([1, w.len() as u64 / 2, w.len() as u64 - 1]) {
                assert_eq!(kth_walsh_pair(&sorted, k), (w[k as usize - 1], w[k as usize]), "pair at k={k}");
            }
        }
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
