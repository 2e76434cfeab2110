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

#[test]
fn a_har_with_a_bom_imports_and_one_bad_gor_response_is_skipped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = std::fs::read(repo_root().join("fixtures/data/sample.har")).expect("sample.har");
    let bom = dir.path().join("bom.har");
    std::fs::write(&bom, [&b"\xEF\xBB\xBF"[..], &sample].concat()).expect("write");
    let out = dir.path().join("har");
    let o = run(&["import", "har", bom.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("imported 7 pairs"), "{}", stdout(&o));

    // Two requests; the first one's response has a chunk-size line that is not a size, the
    // second's chunked body ends its lines in a bare LF.
    let payloads = [
        "1 a 1763633730000000000 0\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n",
        "2 a 1763633730001000000 1000\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnope\r\nhello\r\n0\r\n\r\n",
        "1 b 1763633731000000000 0\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        "2 b 1763633731001000000 1000\nHTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n7\n{\"b\":1}\n0\n",
    ];
    let gor = dir.path().join("one-bad.gor");
    std::fs::write(&gor, payloads.join("\n🐵🙈🙉\n")).expect("write");
    let out = dir.path().join("gor");
    let o = run(&["import", "gor", gor.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let offset = payloads[0].len() + "\n🐵🙈🙉\n".len();
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("one-bad.gor: GoReplay payload 1 at byte {offset}:")) && err.contains("skipped"),
        "{err}"
    );
    assert!(
        stdout(&o).contains("imported 2 pairs (1 with a recorded response; 1 unreadable response payload(s) skipped)"),
        "{}",
        stdout(&o)
    );
    let o = run(&["inspect", "--json", out.to_str().expect("utf-8")]);
    let j: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(j["rows"], 2);
    assert_eq!(j["counters"]["skipped.unreadable_response"], 1, "{j}");
    assert_eq!(j["counters"]["imported"], 2, "{j}");
}
