//! Pair files are read as they are, with no conversion, by pyarrow, DuckDB and Python polars.

use std::process::Command;

use serde_json::Value;
use shadowdiff_fixtures::Scoped;
use shadowdiff_format::PairReader;

use crate::support::{corpus, python, repo_root};

#[test]
fn pyarrow_duckdb_and_polars_read_pair_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    corpus(dir.path(), 4_000, |c| {
        c.seed = 11;
        c.rate = 1.5; // about 45 minutes of traffic from 08:00: one or two hourly partitions
        c.start = chrono::DateTime::parse_from_rfc3339("2026-11-24T08:30:00Z").expect("time").into();
        c.rotate_rows = 1_500;
        c.canary.effects.push(Scoped::parse("fault:hang:0.03").expect("spec"));
    });

    // What the project's own reader sees.
    let records = PairReader::read_all_records(&[dir.path().to_str().expect("utf-8")]).expect("read");
    let min = records.iter().min_by(|a, b| a.pair_id.cmp(&b.pair_id)).expect("rows");
    let expected = serde_json::json!({
        "rows": records.len(),
        "min_pair_id": min.pair_id,
        "canary_errors": records.iter().filter(|r| r.canary.error.is_some()).count(),
        "baseline_status_sum": records.iter().filter_map(|r| r.baseline.status).map(u64::from).sum::<u64>(),
        "first_header_of_min_pair": min.request_headers[0].name,
    });
    let mut hours: Vec<String> = records.iter().map(|r| r.captured_at.format("%H").to_string()).collect();
    hours.sort();
    hours.dedup();
    assert_eq!(hours, ["08", "09"], "the corpus spans two partitions");

    let script = repo_root().join("tests/interop/read_pairs.py");
    let o = Command::new(python()).arg(&script).arg(dir.path()).output().expect("python runs");
    assert!(o.status.success(), "read_pairs.py failed: {}", String::from_utf8_lossy(&o.stderr));
    let got: Value = serde_json::from_slice(&o.stdout).expect("read_pairs.py prints JSON");

    for lib in ["pyarrow", "duckdb", "polars"] {
        for (key, want) in expected.as_object().expect("object") {
            assert_eq!(&got[lib][key], want, "{lib}: {key}");
        }
    }
    assert_eq!(got["pyarrow"]["hours"], serde_json::json!(hours));
    assert_eq!(got["duckdb"]["hours"], serde_json::json!(hours));
    assert_eq!(got["pyarrow"]["captured_at_type"], "timestamp[us, tz=UTC]");
    assert_eq!(got["pyarrow"]["schema_version"], shadowdiff_format::schema::SCHEMA_VERSION.to_string());
}
