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
