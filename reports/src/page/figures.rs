//! How the page writes what has no [`Unit`]: milliseconds, p-values and test statistics. Every
//! figure with a unit (relative changes, shares, ratios, D, counts) goes through
//! [`Unit::format`], the one formatter the summary, the terminal and the report share.

use shadowdiff_format::vocab::Unit;

/// `a / b`, 0 when `b` is 0.
pub(super) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// `a` as a share of `b`: `0.42%`.
pub(super) fn share(a: u64, b: u64) -> String {
    Unit::Share.format(ratio(a, b))
}

/// An optional figure in `unit`, empty (shown as a dash) when there is none.
pub(super) fn value(v: Option<f64>, unit: Unit) -> String {
    v.map(|x| unit.format(x)).unwrap_or_default()
}

/// Milliseconds, two decimals, no unit: `12.34`.
pub(super) fn ms(v: Option<f64>) -> String {
    format!("{:.2}", v.unwrap_or(f64::NAN))
}

/// A pair of latencies, baseline → canary: `8.01 → 8.42`.
pub(super) fn ms_pair(baseline: Option<f64>, canary: Option<f64>) -> String {
    format!("{} → {}", ms(baseline), ms(canary))
}

/// Milliseconds with the unit, empty when not a number: `12.34 ms`.
pub(super) fn ms_unit(v: f64) -> String {
    if v.is_nan() { String::new() } else { format!("{v:.2} ms") }
}

/// A p-value: `< 0.001` below it, three decimals otherwise, empty when there is none.
pub(super) fn p_value(p: Option<f64>) -> String {
    match p {
        None => String::new(),
        Some(p) if p < 0.001 => "< 0.001".to_owned(),
        Some(p) => format!("{p:.3}"),
    }
}

/// A test statistic as people write them: whole numbers whole, small and huge ones in e-notation.
pub(super) fn statistic(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if (1e-3..1e6).contains(&x.abs()) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_without_a_unit() {
        assert_eq!(share(1, 3), "33.33%");
        assert_eq!(share(1, 0), "0.00%");
        assert_eq!(value(None, Unit::Ratio), "");
        assert_eq!(value(Some(1.1), Unit::Ratio), "1.10×");
        assert_eq!(ms_pair(Some(8.004), None), "8.00 → NaN");
        assert_eq!(ms_unit(f64::NAN), "");
        assert_eq!(p_value(Some(0.0004)), "< 0.001");
        assert_eq!(p_value(Some(0.0123)), "0.012");
        assert_eq!(statistic(1234.0), "1234");
        assert_eq!(statistic(0.5), "0.5000");
        assert_eq!(statistic(2.5e-7), "2.500e-7");
    }
}
