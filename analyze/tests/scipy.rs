//! analyze's statistics agree with SciPy's to 1e-6 relative, on the same samples: the signed-rank
//! test (exact, and the normal approximation with tie and continuity corrections), the KS
//! statistic and its asymptotic p-value, Wilson intervals, McNemar's test and quantiles.

use std::path::PathBuf;
use std::process::Command;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use serde_json::{Value, json};
use shadowdiff_analyze::stats;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SHADOWDIFF_PYTHON") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test (it installs SciPy into .venv) or set SHADOWDIFF_PYTHON",
        p.display()
    );
    p
}

fn close(ours: f64, theirs: f64, what: &str) {
    let tol = 1e-6 * theirs.abs();
    assert!((ours - theirs).abs() <= tol, "{what}: ours {ours:e}, SciPy {theirs:e}");
}

fn latencies(rng: &mut SmallRng, n: usize, median: f64, sigma: f64) -> Vec<f64> {
    let d = LogNormal::new(median.ln(), sigma).expect("valid");
    (0..n).map(|_| d.sample(rng)).collect()
}

#[test]
fn statistics_agree_with_scipy() {
    let mut rng = SmallRng::seed_from_u64(2026);
    let mut cases = serde_json::Map::new();

    // Signed-rank: small exact, tied and zero-laden (rounded latencies), large continuous.
    let exact: Vec<f64> = (0..30).map(|_| rng.random_range(-50.0..80.0)).collect();
    let base = latencies(&mut rng, 400, 2_000.0, 0.3);
    let tied: Vec<f64> = base
        .iter()
        .map(|b| ((b * 1.03 + rng.random_range(-300.0..300.0)) / 100.0).round() * 100.0 - (b / 100.0).round() * 100.0)
        .collect();
    let b2 = latencies(&mut rng, 20_000, 4_000.0, 0.4);
    let large: Vec<f64> = b2.iter().map(|b| b * rng.random_range(0.9..1.12) - b).collect();
    let wilcoxon_cases = [("w_exact", &exact, "exact"), ("w_tied", &tied, "approx"), ("w_large", &large, "approx")];
    for (name, d, method) in wilcoxon_cases {
        cases.insert(name.into(), json!({"kind": "wilcoxon", "diffs": d, "method": method}));
    }

    // KS: a spread-only change (same median), and two samples of one distribution.
    let a = latencies(&mut rng, 3_000, 5_000.0, 0.3);
    let wide = latencies(&mut rng, 2_500, 5_000.0, 0.6);
    let same = latencies(&mut rng, 2_000, 5_000.0, 0.3);
    cases.insert("ks_spread".into(), json!({"kind": "ks", "a": a, "b": wide}));
    cases.insert("ks_same".into(), json!({"kind": "ks", "a": a, "b": same}));

    let props = [(0u64, 50u64), (3, 1_000), (57, 10_000), (999, 1_000), (1, 1)];
    for (k, n) in props {
        cases.insert(format!("wilson_{k}_{n}"), json!({"kind": "wilson", "k": k, "n": n}));
    }
    let discordant = [(0u64, 0u64), (7, 2), (12, 12), (40, 22), (300, 260)];
    for (b, c) in discordant {
        cases.insert(format!("mcnemar_{b}_{c}"), json!({"kind": "mcnemar", "b": b, "c": c}));
    }
    let qs = [0.5, 0.9, 0.95, 0.99];
    cases.insert("quantiles".into(), json!({"kind": "quantiles", "values": b2, "qs": qs}));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).expect("json")).expect("write cases");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scipy_check.py");
    let o = Command::new(python()).arg(&script).arg(&file).output().expect("python runs");
    assert!(o.status.success(), "scipy_check.py failed: {}", String::from_utf8_lossy(&o.stderr));
    let scipy: Value = serde_json::from_slice(&o.stdout).expect("JSON from scipy_check.py");
    let num = |name: &str, key: &str| scipy[name][key].as_f64().unwrap_or_else(|| panic!("{name}.{key} missing"));

    for (name, d, method) in wilcoxon_cases {
        let r = stats::wilcoxon_signed_rank(d);
        let want = if method == "exact" { stats::Method::Exact } else { stats::Method::Normal };
        assert_eq!(r.method, want, "{name}");
        close(r.statistic, num(name, "statistic"), &format!("{name} statistic"));
        close(r.p_value, num(name, "p_value"), &format!("{name} p"));
    }
    assert!(stats::wilcoxon_signed_rank(&tied).zeros > 0, "the tied case has zero differences");

    for (name, x, y) in [("ks_spread", &a, &wide), ("ks_same", &a, &same)] {
        let r = stats::ks_two_sample(x, y);
        close(r.statistic, num(name, "statistic"), &format!("{name} D"));
        close(r.p_value, num(name, "p_value"), &format!("{name} p"));
        close(r.slower, num(name, "slower"), &format!("{name} D+"));
        close(r.slower_p_value, num(name, "slower_p_value"), &format!("{name} p(D+)"));
    }
    // The spread-only change is slower in its upper half: the one-sided test sees it too.
    assert!(stats::ks_two_sample(&a, &wide).slower_p_value < 1e-6);
    // A canary faster everywhere is nowhere slower.
    let faster: Vec<f64> = a.iter().map(|x| x * 0.5).collect();
    let f = stats::ks_two_sample(&a, &faster);
    assert!(f.statistic > 0.5 && f.slower == 0.0 && f.slower_p_value == 1.0, "{f:?}");
    assert!(stats::ks_two_sample(&a, &wide).p_value < 1e-6, "a spread-only change is detected");

    for (k, n) in props {
        let name = format!("wilson_{k}_{n}");
        let w = stats::wilson(k, n, 0.95);
        close(w.low, num(&name, "low"), &format!("{name} low"));
        close(w.high, num(&name, "high"), &format!("{name} high"));
    }
    for (b, c) in discordant {
        let name = format!("mcnemar_{b}_{c}");
        let m = stats::mcnemar(b, c);
        close(m.statistic, num(&name, "statistic"), &format!("{name} statistic"));
        close(m.p_value, num(&name, "p_value"), &format!("{name} p"));
        close(m.greater_p_value, num(&name, "greater_p_value"), &format!("{name} one-sided p"));
    }
    let mut v = b2.clone();
    let ours = stats::quantiles(&mut v, &qs);
    for (i, q) in ours.iter().enumerate() {
        close(*q, scipy["quantiles"]["quantiles"][i].as_f64().expect("number"), &format!("quantile {}", qs[i]));
    }
}
