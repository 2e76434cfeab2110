//! Golden files: everything `shadowdiff analyze` writes for a person or a CI system to read —
//! verdict.json, junit.xml, summary.md and report.html — on seeded corpora, compared byte for
//! byte with reviewed snapshots. Only what cannot be the same twice is masked: the temporary
//! directory, the render time and the embedded PNGs (the charts have their own tests). A change
//! here is a change users see: review the diff, then accept it with `cargo insta accept`.

use std::path::Path;

use crate::support::{corpus_with_effects, run, stderr};

/// Masks what differs between two runs on the same corpus.
fn mask(text: &str, dir: &Path) -> String {
    let mut out = text.replace(dir.to_str().expect("utf-8 path"), "[dir]");
    for (start, end) in [("data:image/png;base64,", "\""), ("<dd class=\"generated\">", "</dd>")] {
        let mut masked = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(start) {
            masked.push_str(&rest[..i + start.len()]);
            masked.push_str("[masked]");
            rest = &rest[i + start.len()..];
            rest = &rest[rest.find(end).unwrap_or(rest.len())..];
        }
        masked.push_str(rest);
        out = masked;
    }
    for attr in [" time=\"", " timestamp=\""] {
        let mut masked = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(attr) {
            masked.push_str(&rest[..i + attr.len()]);
            masked.push_str("[masked]");
            rest = &rest[i + attr.len()..];
            rest = &rest[rest.find('"').unwrap_or(rest.len())..];
        }
        masked.push_str(rest);
        out = masked;
    }
    out
}

/// Analyzes a seeded corpus and snapshots each output file under `name`.
fn golden(name: &str, pairs: u64, seed: u64, effects: &[&str], no_secondary: bool) {
    let d = tempfile::tempdir().expect("tempdir");
    let input = d.path().join("in");
    corpus_with_effects(&input, pairs, seed, effects, |c| {
        if no_secondary {
            c.secondary = None;
        }
    });
    let out = d.path().join("out");
    let o = run(&["analyze", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.code().is_some_and(|c| c != 2), "analyze failed: {}", stderr(&o));
    for file in ["verdict.json", "junit.xml", "summary.md", "report.html"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        insta::assert_snapshot!(format!("{name}__{file}"), mask(&text, d.path()));
    }
}

#[test]
fn canary_with_regressions() {
    golden(
        "regressions",
        3000,
        7,
        &[
            "field-removed:/legacy_code@/api/orders/{id}",
            "latency-shift:1.6@/api/search",
            "burst:500:40",
            "numeric-drift:/price:0.05@/api/products/{id}",
            "fault:reset:0.02@/api/search",
        ],
        false,
    );
}

#[test]
fn clean_canary_without_a_secondary() {
    golden("clean", 2000, 11, &[], true);
}

#[test]
fn too_few_pairs() {
    golden("few", 60, 22, &[], false);
}
