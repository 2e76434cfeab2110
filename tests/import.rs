//! `shadowdiff import har|gor`: realistic samples into pair files that inspect reads; bad files
//! exit 2 naming the file and the entry.

use serde_json::Value;

use crate::support::{repo_root, run, stderr, stdout};

#[test]
fn har_and_gor_samples_import_and_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (format, file, rows) in [("har", "sample.har", 7), ("gor", "sample.gor", 4)] {
        let out = dir.path().join(format);
        let sample = repo_root().join("fixtures/data").join(file);
        let o = run(&["import", format, sample.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains(&format!("imported {rows} pairs")), "{}", stdout(&o));
        let o = run(&["inspect", "--json", out.to_str().expect("utf-8")]);
        let j: Value = serde_json::from_str(&stdout(&o)).expect("json");
        assert_eq!(j["rows"], rows);
        assert_eq!(j["agents"][format!("import-{format}")], rows);
    }
}

#[test]
fn bad_files_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("broken.har");
    std::fs::write(
        &bad,
        r#"{"log":{"entries":[{"startedDateTime":"yesterday","request":{"method":"GET","url":"/x"}}]}}"#,
    )
    .expect("write");
    let out = dir.path().join("out");
    let o = run(&["import", "har", bad.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("broken.har") && err.contains("entry 0") && err.contains("startedDateTime"), "{err}");
    assert!(!out.exists(), "nothing is written for a file that fails to parse");

    let o = run(&[
        "import",
        "gor",
        dir.path().join("missing.gor").to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.gor"), "{}", stderr(&o));
    assert_eq!(run(&["import", "pcap", "x", "--out", "y"]).status.code(), Some(2));
}
