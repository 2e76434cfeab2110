//! `shadowdiff inspect` on real pair files, and its errors on bad inputs.

use std::fs;

use serde_json::Value;
use shadowdiff_fixtures::Scoped;

use crate::support::{corpus, run, stderr, stdout};

#[test]
fn text_and_json_describe_a_corpus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = corpus(dir.path(), 5_000, |c| {
        c.rotate_rows = 2_000;
        c.rate = 1.0; // 5,000 s of traffic: spans two hours
        c.canary.effects.push(Scoped::parse("fault:reset:0.02").expect("spec"));
    });
    let root = dir.path().to_str().expect("utf-8");

    let o = run(&["inspect", root]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("rows         5000"), "{text}");
    assert!(text.contains("canary") && text.contains("reset"), "{text}");
    assert!(text.contains("/api/products"), "{text}");
    assert!(text.contains("generated=5000"), "{text}");

    let o = run(&["inspect", "--json", root]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).expect("one JSON object");
    assert_eq!(j["rows"], 5_000);
    assert_eq!(j["files"].as_array().map(Vec::len), Some(summary.files.len()));
    assert!(summary.files.len() >= 3, "rotation by rows and hour");
    assert_eq!(j["schema_versions"][shadowdiff_format::schema::SCHEMA_VERSION.to_string()], summary.files.len());
    let resets = j["errors"]["canary"]["reset"].as_u64().expect("reset count");
    assert!((40..160).contains(&resets), "{resets}");
    assert_eq!(j["errors"]["baseline"].as_object().map(|m| m.len()), Some(0));
    let methods: u64 = j["methods"].as_object().expect("methods").values().filter_map(Value::as_u64).sum();
    assert_eq!(methods, 5_000);
    assert_eq!(j["counters"]["generated"], 5_000);
    assert!(j["time_range"]["first"].as_str().is_some_and(|t| t.starts_with("2026-11-24T08:00")));
    assert!(j["time_range"]["last"].as_str().is_some_and(|t| t.starts_with("2026-11-24T09:2")));
    // Globs and single files work as inputs too.
    let o = run(&["inspect", "--json", &format!("{root}/dt=*/hour=09/*.parquet")]);
    let j: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert!(j["rows"].as_u64().is_some_and(|n| n > 0 && n < 5_000));
}

/// Each bad input: exit 2, one line on stderr naming the file and the problem, no panic.
#[test]
fn bad_inputs_exit_2_with_a_named_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let good = d.join("good");
    let s = corpus(&good, 200, |_| {});
    let good_file = s.files[0].clone();

    let text = d.join("notes.parquet");
    fs::write(&text, "this is not parquet").expect("write");
    let bytes = fs::read(&good_file).expect("read");
    let cut = d.join("cut.parquet");
    fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let empty_dir = d.join("empty");
    fs::create_dir(&empty_dir).expect("mkdir");
    let foreign = d.join("foreign.parquet");
    write_foreign(&foreign);
    let newer = d.join("newer.parquet");
    rewrite_with_version(&good_file, &newer, "99");

    let cases: Vec<(String, &str)> = vec![
        (text.display().to_string(), "is not a Parquet file"),
        (cut.display().to_string(), "is truncated"),
        (empty_dir.display().to_string(), "contains no pair files"),
        (d.join("missing").display().to_string(), "does not exist"),
        (foreign.display().to_string(), "is not a shadowdiff pair file"),
        (newer.display().to_string(), "newer than the version"),
        (format!("{}/*.nothing", d.display()), "contains no pair files"),
    ];
    for (input, needle) in cases {
        let o = run(&["inspect", &input]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{input}: {err}");
        assert!(err.contains(needle), "{input}: expected `{needle}` in {err}");
        let name = std::path::Path::new(&input).file_name().and_then(|n| n.to_str()).unwrap_or(&input);
        assert!(err.contains(name), "{input}: the message must name the input: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }

    // A bad file among good ones still fails the whole run, naming the bad one.
    let o = run(&["inspect", good.to_str().expect("utf-8"), cut.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cut.parquet"));

    // Usage errors are exit 2 too.
    assert_eq!(run(&["inspect"]).status.code(), Some(2));
    assert_eq!(run(&["inspect", "--bogus", "x"]).status.code(), Some(2));
}

fn write_foreign(path: &std::path::Path) {
    // A Parquet file with someone else's columns, written by the same library users would use.
    let py = format!(
        "import pyarrow as pa, pyarrow.parquet as pq; pq.write_table(pa.table({{'order_id': [1, 2], 'total': [9.5, 3.0]}}), r'{}')",
        path.display()
    );
    let o = std::process::Command::new(crate::support::python()).args(["-c", &py]).output().expect("python runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn rewrite_with_version(src: &std::path::Path, dst: &std::path::Path, version: &str) {
    let py = format!(
        "import pyarrow.parquet as pq\n\
         t = pq.read_table(r'{src}')\n\
         md = dict(t.schema.metadata or {{}})\n\
         md[b'shadowdiff.schema_version'] = b'{version}'\n\
         pq.write_table(t.replace_schema_metadata(md), r'{dst}')\n",
        src = src.display(),
        dst = dst.display()
    );
    let o = std::process::Command::new(crate::support::python()).args(["-c", &py]).output().expect("python runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
