//! The Hodges–Lehmann estimate of the paired shift and its confidence interval.

use super::z_quantile;

pub use shadowdiff_format::verdict::HodgesLehmann;

/// Hodges–Lehmann shift of paired differences with a `confidence` interval (e.g. 0.95).
///
/// There are n(n+1)/2 Walsh averages — 5·10¹¹ for a million pairs — so none is materialised: an
/// order statistic is found by narrowing a bracket on its value ([`narrow`]), counting the
/// averages below a value in O(n) with two pointers over the sorted differences. Returns `None`
/// with no finite values.
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
/// [`narrow`] brings (lo, hi] down to few averages (at most [`ENUMERATE`] + 4n), which are then
/// listed and the right one selected; listing instead of bisecting to the last float is what
/// took this from about sixty O(n) passes to a dozen at 20,000 differences. Ties can keep many
/// averages in an interval no float splits; then the answer is that tied value.
fn kth_walsh(d: &[f64], k: u64) -> f64 {
    let n = d.len();
    let (lo, hi) = (d[0], d[n - 1]);
    let (c_lo, smallest) = count_le(d, lo);
    if c_lo >= k {
        return smallest;
    }
    let total = (n as u64) * (n as u64 + 1) / 2;
    let (lo, c_lo, hi, c_hi) = match narrow(d, k, k, Bracket { lo, c_lo, hi, c_hi: total, top: hi }) {
        Narrowed::Bracket(b) => (b.lo, b.c_lo, b.hi, b.c_hi),
        Narrowed::Value(v) => return v,
        // The largest average ≤ hi, as the listing below would give.
        Narrowed::Ties(hi) => return count_le(d, hi).1,
        // With one rank no count falls between it and itself; kept total rather than panicking.
        Narrowed::Split => return count_le(d, hi).1,
    };
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

/// Averages listed at the end of [`kth_walsh`]'s narrowing, beyond 4 per difference.
const ENUMERATE: u64 = 1024;

/// Values lo < hi and the counts of Walsh averages at most each; `top` is the largest average
/// at most hi.
#[derive(Clone, Copy)]
struct Bracket {
    lo: f64,
    c_lo: u64,
    hi: f64,
    c_hi: u64,
    top: f64,
}

enum Narrowed {
    /// (lo, hi] holds ranks `first..=last` and at most [`ENUMERATE`] + 4n averages.
    Bracket(Bracket),
    /// No float lies strictly between lo and hi (this hi): ties the bisection cannot split.
    Ties(f64),
    /// A probe's count fell between `first` and `last`: the two ranks lie on either side of it.
    Split,
    /// Every rank from `first` to `last` is this value (one value held more than a few n).
    Value(f64),
}

/// Narrows `b` (count(lo) < `first`, `last` ≤ count(hi)) until it holds few averages.
///
/// Each round probes the two values that linear interpolation of the counts between lo and hi
/// puts a little below `first` and a little above `last`: the counts are a smooth function of the
/// value at this scale, so two probes usually leave a bracket of a few n averages. A round that
/// does not halve the averages in the bracket is usually one value holding many of them
/// (latencies in whole microseconds tie a lot): the bracket's top value is the answer when the
/// averages below it are fewer than `first`, else hi drops below it; and if that does not halve
/// them either, a bisection step follows. The bracket stays exact: only the passes are fewer.
/// For one estimate with its interval over a million differences, passes over them went from 279
/// to 56 (204 → 73 ms) with the differences in whole µs, where bisection alone ran down to the
/// last float at every tied rank, and from 60 to 33 with continuous ones.
fn narrow(d: &[f64], first: u64, last: u64, mut b: Bracket) -> Narrowed {
    let few = ENUMERATE + 4 * d.len() as u64;
    let margin = (few / 4) as f64;
    // Moves one end of the bracket to `x`, after counting there.
    let probe = |b: &mut Bracket, x: f64| -> Option<Narrowed> {
        if !(x > b.lo && x < b.hi) {
            return None;
        }
        let (c, top) = count_le(d, x);
        if c < first {
            (b.lo, b.c_lo) = (x, c);
        } else if c >= last {
            (b.hi, b.c_hi, b.top) = (x, c, top);
        } else {
            return Some(Narrowed::Split);
        }
        None
    };
    while b.c_hi - b.c_lo > few {
        let span = b.c_hi - b.c_lo;
        for target in [first as f64 - margin, last as f64 + margin] {
            let at = ((target - b.c_lo as f64) / span as f64).clamp(0.0, 1.0);
            let x = b.lo + (b.hi - b.lo) * at;
            if let Some(stop) = probe(&mut b, x) {
                return stop;
            }
        }
        if b.c_hi - b.c_lo > span / 2 {
            // Every average in (below, hi] is `top`.
            let below = b.top.next_down();
            if below <= b.lo {
                return Narrowed::Value(b.top);
            }
            let (c, top) = count_le(d, below);
            if c < first {
                return Narrowed::Value(b.top);
            } else if c >= last {
                (b.hi, b.c_hi, b.top) = (below, c, top);
            } else {
                return Narrowed::Split;
            }
        }
        if b.c_hi - b.c_lo > span / 2 {
            let mid = b.lo + (b.hi - b.lo) / 2.0;
            if mid <= b.lo || mid >= b.hi {
                return Narrowed::Ties(b.hi);
            }
            if let Some(stop) = probe(&mut b, mid) {
                return stop;
            }
        }
    }
    Narrowed::Bracket(b)
}

/// The k-th and (k+1)-th smallest (1-based) Walsh averages of sorted `d`, as two calls of
/// [`kth_walsh`] give them, in about the time of one: the bisection narrows (lo, hi] until it
/// holds few averages and both ranks, and the listing yields both (the median of an even count
/// of averages needs the two; this was a quarter of the Hodges–Lehmann estimate's time).
fn kth_walsh_pair(d: &[f64], k: u64) -> (f64, f64) {
    let n = d.len();
    let total = (n as u64) * (n as u64 + 1) / 2;
    let separately = || (kth_walsh(d, k), kth_walsh(d, k + 1));
    let (lo, hi) = (d[0], d[n - 1]);
    let (c_lo, _) = count_le(d, lo);
    if c_lo >= k || k >= total {
        return separately();
    }
    let (lo, c_lo, hi, c_hi) = match narrow(d, k, k + 1, Bracket { lo, c_lo, hi, c_hi: total, top: hi }) {
        Narrowed::Bracket(b) => (b.lo, b.c_lo, b.hi, b.c_hi),
        Narrowed::Value(v) => return (v, v),
        Narrowed::Ties(_) | Narrowed::Split => return separately(),
    };
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
