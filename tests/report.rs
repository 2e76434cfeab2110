//! junit.xml, summary.md, report.html and charts/*.png: written by `shadowdiff analyze`,
//! re-written by `shadowdiff report DIR` from the typed verdict, and a clear exit 2 on a
//! directory without a verdict.json it can read.

use std::path::Path;

use shadowdiff_fixtures::Scoped;

use crate::support::{corpus, run, stderr, stdout};

const CHARTS: [&str; 5] = ["latency_cdf", "latency_delta", "error_rates", "diff_rates", "numeric_drift"];

/// Decodes a PNG and asserts it has more than one colour.
fn assert_png_not_blank(path: &Path) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let bytes = &buf[..info.buffer_size()];
    let px = info.color_type.samples();
    let first = &bytes[..px];
    assert!(bytes.chunks(px).any(|p| p != first), "{} is blank", path.display());
}

#[test]
fn analyze_writes_the_report_and_report_re_renders_it() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    corpus(&input, 2000, |c| {
        c.seed = 21;
        c.canary.effects.push(Scoped::parse("latency-shift:1.6@/api/users/{id}").expect("effect"));
    });
    let out = d.path().join("out");
    let o = run(&["analyze", input.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(matches!(o.status.code(), Some(0 | 1 | 3)), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("report.html"), "{}", stdout(&o));
    let report = out.join("report.html");
    let html = std::fs::read_to_string(&report).expect("report.html");
    let verdict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("verdict.json")).unwrap()).unwrap();
    let word = verdict["verdict"].as_str().unwrap().to_uppercase();
    assert!(html.contains(&format!("Verdict: {word}")), "verdict {word} missing");
    assert!(html.contains("http-equiv=\"Content-Security-Policy\""), "CSP meta missing");
    assert!(html.contains("latency_p99"));
    for c in CHARTS {
        assert_png_not_blank(&out.join("charts").join(format!("{c}.png")));
    }
    // The example pairs come from examples.json, which keeps their bodies.
    let examples: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("examples.json")).unwrap()).unwrap();
    let first = &examples["examples"][0];
    assert!(html.contains(first["pair_id"].as_str().expect("an example")), "the first example is not in the report");

    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    std::fs::remove_file(&report).unwrap();
    std::fs::remove_file(out.join("junit.xml")).unwrap();
    std::fs::remove_file(out.join("summary.md")).unwrap();
    std::fs::remove_dir_all(out.join("charts")).unwrap();
    let o = run(&["report", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(report.is_file(), "report.html was not re-rendered");
    // Read back typed from verdict.json, the verdict writes the same junit.xml and summary.md.
    assert_eq!(std::fs::read_to_string(out.join("junit.xml")).unwrap(), junit);
    assert_eq!(std::fs::read_to_string(out.join("summary.md")).unwrap(), summary);
    let again = std::fs::read_to_string(&report).unwrap();
    assert!(again.contains(&format!("Verdict: {word}")));
    assert!(again.contains(first["pair_id"].as_str().unwrap()), "examples are re-rendered from examples.json");
    for c in CHARTS {
        assert_png_not_blank(&out.join("charts").join(format!("{c}.png")));
    }
}

#[test]
fn report_without_verdict_exits_2() {
    let o = run(&["report", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("verdict.json"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

#[test]
fn report_with_a_damaged_verdict_exits_2_naming_it() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("verdict.json"), "{\"verdict\": ").unwrap();
    let o = run(&["report", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("verdict.json") && e.contains("not valid JSON"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

/// Valid JSON that is not a verdict (a field missing, or of another type) names the file and
/// the field, on one line.
#[test]
fn report_with_a_verdict_of_another_shape_exits_2_naming_it() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("verdict.json"), "{\"schema_version\": 1, \"tool\": 7}").unwrap();
    let o = run(&["report", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("verdict.json") && e.contains("is not a verdict") && e.contains("tool"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(!d.path().join("report.html").exists(), "a report was written from a foreign file");
}

/// A damaged or missing row-level file leaves its part of the report out, says why, and takes
/// that part's stale charts away; the rest is still rendered.
#[test]
fn report_leaves_out_what_it_cannot_read_and_says_why() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    corpus(&input, 600, |c| c.seed = 4);
    let out = d.path().join("out");
    let o = run(&["analyze", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(matches!(o.status.code(), Some(0 | 1 | 3)), "{}", stderr(&o));
    assert!(out.join("charts/latency_cdf.png").is_file());
    std::fs::write(out.join("pairs.parquet"), b"junk").unwrap();
    std::fs::write(out.join("examples.json"), b"{").unwrap();
    std::fs::remove_file(out.join("diffs.parquet")).unwrap();
    let o = run(&["report", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Said on stderr too, one line per part.
    let e = stderr(&o);
    assert_eq!(e.lines().filter(|l| l.starts_with("shadowdiff: left out of the report: ")).count(), 3, "{e}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("Latency charts are left out") && html.contains("pairs.parquet"),
        "no reason for the latency charts"
    );
    assert!(html.contains("No example pairs") && html.contains("examples.json"), "no reason for the examples");
    assert!(html.contains("diffs.parquet"), "no reason for the drift values");
    assert!(!out.join("charts/latency_cdf.png").exists(), "a stale latency chart was left beside the report");
    assert!(!out.join("charts/latency_delta.png").exists());
    assert_png_not_blank(&out.join("charts/error_rates.png"));
}
