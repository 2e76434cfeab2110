//! The shared real-world corpus (`../shared/corpus/real`, described in its PROVENANCE.md): files
//! nobody on the project wrote. Every HAR and GoReplay file imports with one pair per entry or
//! request, the malformed one exits 2 with one sentence naming it, and for every JSON pair the
//! `--format json-patch` output turns A into B and `--format json` reports every expected path.
//! The files are read where they are, never copied; without `../shared` the tests say so on
//! stderr and pass.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::support::{repo_root, run, stderr, stdout};

/// The files of the corpus that are malformed on purpose, and the words their one-sentence
/// error must contain. Read and decided by hand: `{"log": [2,1,3] "request:"}` is not JSON (a
/// value follows `[2,1,3]` without a comma). Every other file must import.
const MALFORMED: &[(&str, &str)] = &[("mitmproxy-corrupted-brokenfile.har", "is not a valid HAR file: it is not JSON")];

/// The corpus directory, or `None` (with the reason on stderr) when `../shared` is not there.
fn corpus(sub: &str) -> Option<PathBuf> {
    let dir = repo_root().join("../shared/corpus/real");
    if !dir.is_dir() {
        eprintln!("skipped: the shared real-world corpus {} is absent", dir.display());
        return None;
    }
    Some(dir.join(sub))
}

/// The files in `dir` whose name ends in `.ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name")
}

/// `log.entries` of a HAR file, counted here with serde_json alone (after the byte order mark
/// RFC 8259 allows); `None` when the file is not JSON.
fn har_entries(data: &[u8]) -> Option<usize> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let har: Value = serde_json::from_slice(data).ok()?;
    Some(har["log"]["entries"].as_array().expect("log.entries is an array").len())
}

/// The request payloads of a `.gor` file (type 1; responses, types 2 and 3, join their request's
/// pair), counted here: payloads separated by `\n🐵🙈🙉\n`, each starting with its meta line.
fn gor_requests(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    text.split("\n🐵🙈🙉\n").filter(|p| p.trim_start().split_ascii_whitespace().next() == Some("1")).count()
}

/// Import `file`, expecting success and `pairs` pairs in the summary line, in `inspect --json`
/// and in the `imported` counter.
fn imports(format: &str, file: &Path, pairs: usize, out: &Path) {
    let o = run(&["import", format, file.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{} does not import: {}", name(file), stderr(&o));
    assert!(stderr(&o).is_empty(), "{}: {}", name(file), stderr(&o));
    assert!(stdout(&o).starts_with(&format!("imported {pairs} pairs ")), "{}: {}", name(file), stdout(&o));
    let o = run(&["inspect", "--json", out.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).expect("inspect --json");
    assert_eq!(j["rows"], pairs, "{}", name(file));
    assert_eq!(j["agents"][format!("import-{format}")], pairs, "{}", name(file));
    assert_eq!(j["counters"]["imported"], pairs, "{}", name(file));
}

#[test]
fn every_har_file_imports_one_pair_per_entry_and_the_malformed_one_exits_2() {
    let Some(dir) = corpus("har") else { return };
    let dir_out = tempfile::tempdir().expect("tempdir");
    let files = files(&dir, "har");
    assert!(files.len() >= 15, "PROVENANCE.md lists 15 HAR files; found {}", files.len());
    let mut malformed = Vec::new();
    for file in &files {
        let out = dir_out.path().join(name(file));
        let data = std::fs::read(file).expect("read");
        match (har_entries(&data), MALFORMED.iter().find(|(n, _)| *n == name(file))) {
            (Some(entries), None) => imports("har", file, entries, &out),
            (None, Some((_, words))) => {
                let o = run(&["import", "har", file.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
                assert_eq!(o.status.code(), Some(2), "{}", name(file));
                let err = stderr(&o);
                assert_eq!(err.lines().count(), 1, "one sentence: {err}");
                assert!(err.contains(name(file)) && err.contains(words), "{err}");
                assert!(!out.exists(), "nothing is written for {}", name(file));
                malformed.push(name(file).to_owned());
            }
            (Some(_), Some(_)) => panic!("{} is listed as malformed but is a HAR file", name(file)),
            (None, None) => panic!("{} is not JSON and not listed as malformed", name(file)),
        }
    }
    assert_eq!(malformed, ["mitmproxy-corrupted-brokenfile.har"]);
}

#[test]
fn every_gor_file_imports_one_pair_per_request() {
    let Some(dir) = corpus("gor") else { return };
    let dir_out = tempfile::tempdir().expect("tempdir");
    let files = files(&dir, "gor");
    assert!(files.len() >= 2, "PROVENANCE.md lists 2 GoReplay files; found {}", files.len());
    for file in &files {
        let requests = gor_requests(&std::fs::read(file).expect("read"));
        assert!(requests > 0, "{} has no request payload", name(file));
        imports("gor", file, requests, &dir_out.path().join(name(file)));
    }
}

/// One JSON pair of `json/cases.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    a: String,
    b: String,
    #[serde(rename = "source")]
    _source: String,
    /// Pointers the source states as changed: `[]` for equal documents, `null` where the
    /// source's expectation does not apply to an ordered comparison (round trip only).
    expected_paths: Option<Vec<String>>,
    #[serde(rename = "note")]
    _note: String,
    /// jd's own verdict and output, kept for reference: jd calls `0` and `0.0` (and `0` and
    /// `-0`) equal, shadowdiff reports the representation change (docs/policy.md), and the
    /// case's `expected_paths` say so.
    #[serde(default, rename = "expect_equal")]
    _expect_equal: Option<bool>,
    #[serde(default, rename = "jd_expected_output")]
    _jd_expected_output: Option<String>,
    /// jsondiffpatch's own delta, kept for reference.
    #[serde(default, rename = "jsondiffpatch_delta")]
    _jsondiffpatch_delta: Option<Value>,
}

/// The part of `shadowdiff diff --format json` this test reads.
#[derive(Deserialize)]
struct DiffOutput {
    compared_as: String,
    equal: bool,
    differences: Vec<DiffEntry>,
}

#[derive(Deserialize)]
struct DiffEntry {
    path: String,
}

/// `path` is `expected` or below it.
fn at_or_below(path: &str, expected: &str) -> bool {
    path == expected || path.strip_prefix(expected).is_some_and(|rest| rest.starts_with('/'))
}

#[test]
fn every_json_pair_round_trips_through_json_patch_and_reports_its_expected_paths() {
    let Some(dir) = corpus("json") else { return };
    let cases: Vec<Case> =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).expect("cases.json")).expect("cases.json parses");
    assert!(cases.len() >= 29, "PROVENANCE.md lists 29 pairs; found {}", cases.len());
    for case in &cases {
        let (a, b) = (dir.join(&case.a), dir.join(&case.b));
        let (a, b) = (a.to_str().expect("utf-8"), b.to_str().expect("utf-8"));
        let doc = |p: &str| -> Value { serde_json::from_slice(&std::fs::read(p).expect("read")).expect("JSON") };

        let o = run(&["diff", a, b, "--format", "json-patch"]);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}: {}", case.name, stderr(&o));
        let patch: json_patch::Patch = serde_json::from_str(&stdout(&o)).expect("an RFC 6902 patch");
        let mut patched = doc(a);
        json_patch::patch(&mut patched, &patch)
            .unwrap_or_else(|e| panic!("{}: the patch does not apply: {e}", case.name));
        assert_eq!(patched, doc(b), "{}: the patch does not turn A into B", case.name);

        let o = run(&["diff", a, b, "--format", "json"]);
        let diff: DiffOutput = serde_json::from_str(&stdout(&o)).expect("diff --format json");
        assert_eq!(diff.compared_as, "json", "{}", case.name);
        assert_eq!(o.status.code(), Some(if diff.equal { 0 } else { 1 }), "{}", case.name);
        match &case.expected_paths {
            None => {}
            Some(expected) if expected.is_empty() => {
                assert!(diff.equal, "{}: the source says equal; reported {:?}", case.name, paths(&diff));
            }
            Some(expected) => {
                for e in expected {
                    assert!(
                        diff.differences.iter().any(|d| at_or_below(&d.path, e)),
                        "{}: {e} is not reported; reported {:?}",
                        case.name,
                        paths(&diff)
                    );
                }
            }
        }
    }
}

fn paths(diff: &DiffOutput) -> Vec<&str> {
    diff.differences.iter().map(|d| d.path.as_str()).collect()
}
