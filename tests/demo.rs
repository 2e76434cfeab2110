//! `shadowdiff demo` end to end: real fixture services, a real capture agent, real traffic, and
//! every output analyze and the report write; a second run replaces the first; a directory the
//! demo did not write is refused.

use std::path::Path;

use serde_json::Value;
use shadowdiff_format::resolve_inputs;

use crate::support::{run, stderr, stdout};

const CHARTS: [&str; 5] = ["latency_cdf", "latency_delta", "error_rates", "diff_rates", "numeric_drift"];

fn verdict(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("analysis/verdict.json")).expect("verdict.json"))
        .expect("JSON")
}

fn check<'a>(v: &'a Value, id: &str) -> &'a str {
    v["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no check {id}"))["status"]
        .as_str()
        .unwrap()
}

#[test]
fn demo_runs_the_whole_flow_and_writes_every_output() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("demo");
    let o = run(&["demo", "--out", out.to_str().unwrap(), "--requests", "2000"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}\n{}", stderr(&o));
    // What it says: the services, the capture, the verdict and where the report is.
    for want in ["baseline ", "secondary ", "canary ", "capture ", "sent       2000 requests", "verdict  FAIL", "open "]
    {
        assert!(text.contains(want), "stdout lacks {want:?}:\n{text}");
    }
    let report = out.join("analysis/report.html");
    assert!(text.contains(&report.display().to_string()), "{text}");

    // Every output, non-empty.
    let pair_files = resolve_inputs(&[out.join("pairs").to_str().unwrap()]).unwrap_or_default();
    assert!(!pair_files.is_empty(), "capture wrote no pair files");
    for f in
        ["pairs.parquet", "diffs.parquet", "verdict.json", "junit.xml", "summary.md", "examples.json", "report.html"]
    {
        let len = std::fs::metadata(out.join("analysis").join(f)).unwrap_or_else(|e| panic!("{f}: {e}")).len();
        assert!(len > 0, "{f} is empty");
    }
    for c in CHARTS {
        let bytes = std::fs::read(out.join("analysis/charts").join(format!("{c}.png"))).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{c}.png is not a PNG");
    }

    // The planted regressions are found: every order lost /legacy_code (breaking), bodies differ.
    let v = verdict(&out);
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["inputs"]["pairs_analyzed"], 2000);
    assert_eq!(check(&v, "breaking"), "fail");
    assert_eq!(check(&v, "diff_rate"), "fail");
    let fields: Vec<(&str, &str)> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"]["verdict"] == "difference")
        .map(|f| (f["route"].as_str().unwrap(), f["field"].as_str().unwrap()))
        .collect();
    for want in
        [("/api/orders/{id}", "/legacy_code"), ("/api/products/{id}", "/price"), ("/api/users/{id}", "/loyalty_points")]
    {
        assert!(fields.contains(&want), "{want:?} not among the real differences {fields:?}");
    }
    // Noise fields are not counted as differences.
    assert!(!fields.iter().any(|(_, f)| *f == "/request_id" || *f == "/generated_at"), "{fields:?}");
    // POSTs were recorded but not mirrored, and the counters say so.
    assert!(v["inputs"]["counters"]["mirror_skipped.method"].as_u64().unwrap() > 0);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Verdict: FAIL"));
    assert!(html.contains("/legacy_code"));
}

#[test]
fn demo_without_regressions_finds_no_difference_and_replaces_its_earlier_run() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("demo");
    for _ in 0..2 {
        let o = run(&["demo", "--out", out.to_str().unwrap(), "--requests", "600", "--no-regressions", "--quiet"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), out.join("analysis/report.html").display().to_string());
    }
    let v = verdict(&out);
    // Only the second run's pairs are there.
    assert_eq!(v["inputs"]["pairs_analyzed"], 600);
    // No difference at all; with 600 pairs the interval of a 0% rate still reaches past 0.5%,
    // so the diff rate may warn but never fail.
    assert_ne!(check(&v, "diff_rate"), "fail");
    assert_eq!(check(&v, "breaking"), "pass");
    assert_eq!(v["overall"]["different"], 0, "a copy of the baseline differs only in noise");
}

#[test]
fn demo_refuses_a_directory_it_did_not_write() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("precious.txt"), "keep me").unwrap();
    let o = run(&["demo", "--out", d.path().to_str().unwrap(), "--requests", "10"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("--out") && e.contains("not empty"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert_eq!(std::fs::read_to_string(d.path().join("precious.txt")).unwrap(), "keep me");

    let o = run(&["demo", "--requests", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--requests"));
}
