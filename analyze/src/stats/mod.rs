//! Statistics for paired samples: the figures analyze's verdict rests on.
//!
//! Every function is pure, takes plain slices, and returns its sample size with its result, so a
//! report can always say how much evidence a figure carries. Distributions come from statrs. The
//! conventions follow SciPy where SciPy has the test (tie and continuity corrections, when the
//! exact distribution is used), and the suite checks the figures against SciPy to 1e-6.

mod ks;
mod location;
mod proportion;
mod quantile;
mod sequential;
mod wilcoxon;

pub use ks::{KsResult, kolmogorov_sf, ks_two_sample};
pub use location::{HodgesLehmann, hodges_lehmann};
pub use proportion::{Interval, McNemar, holm, mcnemar, wilson};
pub use quantile::{Bootstrap, QuantileDelta, quantile_deltas, quantile_sorted, quantiles};
pub use sequential::{cs_widening, dkw_band, dkw_p, mixture_p, widened};
pub use wilcoxon::{Method, WilcoxonResult, wilcoxon_signed_rank};

use statrs::distribution::{ContinuousCDF, Normal};

/// The standard normal quantile for `p`.
pub(crate) fn z_quantile(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p)
}

/// The standard normal survival function, accurate in the tail.
pub(crate) fn norm_sf(z: f64) -> f64 {
    Normal::standard().sf(z)
}

/// Average ranks (1-based) of `values`, ties sharing the mean of their ranks, as SciPy's
/// `rankdata(method="average")`. Also returns the sizes of tie groups larger than one.
pub(crate) fn average_ranks(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        if j - i > 1 {
            ties.push(j - i);
        }
        i = j;
    }
    (ranks, ties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        let (r, t) = average_ranks(&[3.0, 1.0, 3.0, 2.0, 3.0]);
        assert_eq!(r, vec![4.0, 1.0, 4.0, 2.0, 4.0]);
        assert_eq!(t, vec![3]);
    }
}
