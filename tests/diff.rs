//! `shadowdiff diff A B`: output formats, rules and flags, exit codes, and hostile input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write test file");
        p
    }

    fn json(&self, name: &str, v: &Value) -> PathBuf {
        self.file(name, serde_json::to_vec_pretty(v).expect("serialise"))
    }

    /// `shadowdiff diff ARGS...`, run in the case's directory.
    fn diff(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_shadowdiff"))
            .arg("diff")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("the shadowdiff binary runs");
        Out(out)
    }
}

struct Out(Output);

impl Out {
    fn code(&self) -> i32 {
        self.0.status.code().expect("exited normally")
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.0.stdout).unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", self.stdout()))
    }
    /// An error exit: code 2 and one line on stderr that mentions every `needles`.
    fn assert_error(&self, needles: &[&str]) {
        let err = self.stderr();
        assert_eq!(self.code(), 2, "stderr: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        for n in needles {
            assert!(err.contains(n), "{n:?} in {err}");
        }
    }
}

fn baseline() -> Value {
    json!({"id": 7, "name": "Ada", "email": "ada@example.com", "price": 10.0,
           "tags": ["a", "b", "c"], "meta": {"ts": "2024-05-01T12:00:00Z", "host": "b1"}})
}

fn canary() -> Value {
    json!({"id": 7, "name": "Ada L.", "price": 10.004, "tags": ["a", "x", "b", "c"],
           "meta": {"ts": "2024-05-01T12:00:07Z", "host": "c1"}, "nickname": "ada"})
}

fn pair(c: &Case) -> (PathBuf, PathBuf) {
    (c.json("a.json", &baseline()), c.json("b.json", &canary()))
}

#[test]
fn equal_documents_exit_0() {
    let c = Case::new();
    c.json("a.json", &baseline());
    c.file("b.json", serde_json::to_vec(&baseline()).expect("serialise")); // same value, other formatting
    let out = c.diff(&["a.json", "b.json"]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(out.stdout(), "no differences\n");
}

#[test]
fn text_output_lists_every_difference_without_colour_off_a_terminal() {
    let c = Case::new();
    pair(&c);
    let out = c.diff(&["a.json", "b.json"]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    let text = out.stdout();
    assert!(!text.contains('\x1b'), "no escape codes when stdout is not a terminal: {text:?}");
    for line in [
        "~ /name: \"Ada\" → \"Ada L.\"  [changed]",
        "- /email: \"ada@example.com\"  [breaking]",
        "~ /price: 10.0 → 10.004  [changed]",
        "+ /tags/1: \"x\"  [changed]",
        "~ /meta/ts: ",
        "+ /nickname: \"ada\"  [additive]",
        "7 differences: 1 breaking, 5 changed, 1 additive",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}

#[test]
fn json_output_is_the_difference_list() {
    let c = Case::new();
    pair(&c);
    let v = c.diff(&["a.json", "b.json", "--format", "json"]).json();
    assert_eq!(v["compared_as"], "json");
    assert_eq!(v["equal"], false);
    assert_eq!(v["summary"], json!({"breaking": 1, "changed": 5, "additive": 1, "explained": 0}));
    let diffs = v["differences"].as_array().expect("differences");
    assert_eq!(diffs.len(), 7);
    assert!(diffs.contains(&json!({"path": "/email", "field": "/email", "kind": "removed",
        "baseline": "ada@example.com", "severity": "breaking"})));
    assert!(diffs.contains(&json!({"path": "/tags/1", "field": "/tags/*", "kind": "added",
        "canary": "x", "severity": "changed"})));
}

#[test]
fn json_patch_output_turns_a_into_b() {
    let c = Case::new();
    pair(&c);
    let out = c.diff(&["a.json", "b.json", "--format", "json-patch"]);
    assert_eq!(out.code(), 1);
    let patch = out.json();
    let mut doc = baseline();
    apply(&mut doc, &patch);
    assert_eq!(doc, canary());
    let same = c.diff(&["a.json", "a.json", "--format", "json-patch"]);
    assert_eq!((same.code(), same.json()), (0, json!([])));
}

/// Enough of RFC 6902 (add, remove, replace) to check the binary's output end to end; the
/// analyze crate's property tests check patches against an independent implementation.
fn apply(doc: &mut Value, patch: &Value) {
    for op in patch.as_array().expect("a patch is an array") {
        let path = op["path"].as_str().expect("path");
        let (parent, last) = path.rsplit_once('/').expect("not the root");
        let last = last.replace("~1", "/").replace("~0", "~");
        let target = doc.pointer_mut(parent).expect("parent exists");
        match (op["op"].as_str().expect("op"), target) {
            ("add", Value::Array(a)) if last == "-" => a.push(op["value"].clone()),
            ("add", Value::Array(a)) => a.insert(last.parse().expect("index"), op["value"].clone()),
            ("add" | "replace", Value::Object(m)) => {
                m.insert(last, op["value"].clone());
            }
            ("replace", Value::Array(a)) => a[last.parse::<usize>().expect("index")] = op["value"].clone(),
            ("remove", Value::Array(a)) => {
                a.remove(last.parse().expect("index"));
            }
            ("remove", Value::Object(m)) => {
                m.shift_remove(&last).expect("member exists");
            }
            (op, t) => panic!("unexpected {op} on {t}"),
        }
    }
}

#[test]
fn ignore_and_tolerance_flags() {
    let c = Case::new();
    pair(&c);
    let v = c
        .diff(&[
            "a.json",
            "b.json",
            "--format",
            "json",
            "--ignore",
            "/meta/**",
            "--ignore",
            "/tags/*",
            "--tolerance",
            "0.01",
        ])
        .json();
    let paths: Vec<&str> =
        v["differences"].as_array().expect("list").iter().map(|d| d["path"].as_str().expect("path")).collect();
    assert_eq!(paths, ["/name", "/email", "/nickname"]);
    // 10.0 → 10.004 is 0.04 %: inside 0.05 %, outside 0.03 %.
    let rel = |t: &str| {
        c.diff(&["a.json", "b.json", "--format", "json", "--tolerance", t]).json()["summary"]["changed"].clone()
    };
    assert_eq!(rel("0.05%"), 4);
    assert_eq!(rel("0.03%"), 5);
}

#[test]
fn array_mode_flag() {
    let c = Case::new();
    c.json("a.json", &json!({"tags": ["a", "b", "c"]}));
    c.json("b.json", &json!({"tags": ["c", "a", "b", "a"]}));
    assert_eq!(c.diff(&["a.json", "b.json"]).code(), 1);
    assert_eq!(c.diff(&["a.json", "b.json", "--array-mode", "set"]).code(), 0);
    let v = c.diff(&["a.json", "b.json", "--array-mode", "multiset", "--format", "json"]).json();
    assert_eq!(
        v["differences"],
        json!([{"path": "/tags/3", "field": "/tags/*", "kind": "added", "canary": "a", "severity": "changed"}])
    );
}

#[test]
fn rules_file_with_explained_differences_and_route_scope() {
    let c = Case::new();
    pair(&c);
    c.file(
        "rules.toml",
        r#"
[defaults]
array_mode = "multiset"

[[ignore]]
path = "/meta/**"

[[tolerance]]
path = "/price"
absolute = 0.01

[[presence_only]]
path = "/name"
route = "/users/*"

[[explained]]
path = "/email"
reason = "email moved to /contact in v2"

[[explained]]
path = "/nickname"
reason = "new field, announced"

[[explained]]
path = "/tags/*"
reason = "tag x is expected"
"#,
    );
    let out = c.diff(&["a.json", "b.json", "--rules", "rules.toml", "--route", "/users/{id}"]);
    assert_eq!(out.code(), 0, "only explained differences remain: {}", out.stdout());
    assert!(out.stdout().contains("[explained: email moved to /contact in v2]"), "{}", out.stdout());
    assert!(out.stdout().contains("0 breaking, 0 changed, 0 additive, 3 explained"), "{}", out.stdout());
    // Without the route, the presence-only rule on /name does not apply.
    let out = c.diff(&["a.json", "b.json", "--rules", "rules.toml", "--format", "json"]);
    assert_eq!(out.code(), 1);
    assert_eq!(out.json()["summary"], json!({"breaking": 0, "changed": 1, "additive": 0, "explained": 3}));
}

#[test]
fn errors_exit_2_with_one_sentence() {
    let c = Case::new();
    pair(&c);
    c.diff(&["a.json", "missing.json"]).assert_error(&["missing.json"]);
    c.diff(&["missing.json", "b.json"]).assert_error(&["missing.json"]);
    c.diff(&["a.json", "b.json", "--rules", "nope.toml"]).assert_error(&["nope.toml"]);
    c.file("bad.toml", "[[ignore]]\npath = \"/a\"\nwhere = \"x\"\n");
    c.diff(&["a.json", "b.json", "--rules", "bad.toml"]).assert_error(&["bad.toml", "line 3", "unknown field `where`"]);
    c.file("neg.toml", "[[tolerance]]\npath = \"/a\"\nabsolute = -1\n");
    c.diff(&["a.json", "b.json", "--rules", "neg.toml"]).assert_error(&["tolerance[0]", "absolute"]);
    c.diff(&["a.json", "b.json", "--ignore", "meta"]).assert_error(&["--ignore", "meta"]);
    // Flag values clap checks: its first line names the flag and the value; hints follow.
    for (flag, value) in [("--tolerance", "lots"), ("--array-mode", "bag"), ("--format", "yaml")] {
        let out = c.diff(&["a.json", "b.json", flag, value]);
        assert_eq!(out.code(), 2);
        let first = out.stderr().lines().next().unwrap_or_default().to_owned();
        assert!(first.contains(flag) && first.contains(value), "{first}");
    }
    assert_eq!(c.diff(&["a.json"]).code(), 2, "a missing operand is a usage error");
}

#[test]
fn text_files_get_a_unified_line_diff() {
    let c = Case::new();
    c.file("a.txt", "one\ntwo\nthree\n");
    c.file("b.txt", "one\n2\nthree\nfour\n");
    let out = c.diff(&["a.txt", "b.txt"]);
    assert_eq!(out.code(), 1);
    let text = out.stdout();
    assert!(text.contains("--- baseline\n+++ canary\n@@"), "{text}");
    assert!(text.contains("-two\n+2\n") && text.contains("+four\n"), "{text}");
    assert!(text.ends_with("text differs: 1 line(s) removed, 2 added\n"), "{text}");
    let v = c.diff(&["a.txt", "b.txt", "--format", "json"]).json();
    assert_eq!(
        (v["compared_as"].clone(), v["text"]["removed_lines"].clone(), v["text"]["added_lines"].clone()),
        (json!("text"), json!(1), json!(2))
    );
    assert_eq!(c.diff(&["a.txt", "a.txt"]).code(), 0);
    c.diff(&["a.txt", "b.txt", "--format", "json-patch"]).assert_error(&["json-patch", "a.txt", "not JSON"]);
}

#[test]
fn unparseable_json_is_compared_as_text_and_flagged() {
    let c = Case::new();
    c.file("a.json", "{\"a\": 1}\n");
    c.file("b.json", "{\"a\": 1,}\n");
    let out = c.diff(&["a.json", "b.json", "--format", "json"]);
    assert_eq!(out.code(), 1);
    assert!(out.stderr().contains("b.json is not valid JSON"), "{}", out.stderr());
    let v = out.json();
    assert_eq!(v["compared_as"], "text");
    assert_eq!(v["canary_unparseable"]["reason"], "syntax");
    assert!(v.get("baseline_unparseable").is_none());
}

#[test]
fn pathological_input_is_reported_not_crashed_on() {
    let c = Case::new();
    let depth = 100_000;
    c.file("deep.json", format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
    c.file("deep2.json", format!("{}1{}", "[".repeat(depth), "]".repeat(depth)));
    let out = c.diff(&["deep.json", "deep2.json", "--format", "json"]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    assert!(out.stderr().contains("nested 128 or more levels deep"), "{}", out.stderr());
    assert_eq!(out.json()["baseline_unparseable"]["reason"], "too_deep");
    assert_eq!(c.diff(&["deep.json", "deep.json"]).code(), 0);

    c.file("bin1", b"\x00\x01\x02\xff");
    c.file("bin2", b"\x00\x01\x03\xff\xfe");
    let out = c.diff(&["bin1", "bin2"]);
    assert_eq!(out.code(), 1);
    assert!(out.stdout().starts_with("binary files differ: bin1 is 4 bytes (xxh3 "), "{}", out.stdout());

    c.file("bad-utf8.json", b"{\"a\": \"\xff\"}");
    let out = c.diff(&["bad-utf8.json", "bin1"]);
    assert_eq!(out.code(), 1);
    assert!(out.stderr().contains("compared as binary"), "{}", out.stderr());
}

#[test]
// Times a synchronous child process: the OS clock.
#[allow(clippy::disallowed_methods)]
fn large_documents_finish() {
    let c = Case::new();
    let elems = |n: i64| (0..n).map(|i| json!({"i": i, "s": "some text to pad the element out"})).collect::<Vec<_>>();
    let (aligned, long, blob) = (elems(9_000), elems(20_000), elems(150_000));
    let mut aligned2 = aligned.clone();
    aligned2.insert(100, json!({"i": -1}));
    let mut long2 = long.clone();
    long2.insert(19_990, json!({"i": -1}));
    c.json("big-a.json", &json!({"aligned": aligned, "long": long, "blob": blob}));
    c.json("big-b.json", &json!({"aligned": aligned2, "long": long2, "blob": blob}));
    let start = std::time::Instant::now();
    let v = c.diff(&["big-a.json", "big-b.json", "--format", "json"]).json();
    assert!(start.elapsed().as_secs() < 60, "took {:?}", start.elapsed());
    let d = v["differences"].as_array().expect("list");
    // Under the alignment cap one insertion is one difference; over it, elements are compared
    // by index and the length change is one difference of its own.
    assert_eq!(d[0]["path"], "/aligned/100");
    assert_eq!(d[0]["kind"], "added");
    assert_eq!((d[1]["path"].clone(), d[1]["kind"].clone()), (json!("/long"), json!("array_length")));
    // Past the insertion at 19,990 the shifted elements differ by index: `i` in all ten, and the
    // first also lost `s`.
    assert_eq!(d.len(), 2 + 11, "{:#?}", &d[..4]);
}

#[test]
fn paths_outside_the_working_directory() {
    let c = Case::new();
    let (a, b) = pair(&c);
    let out = Command::new(env!("CARGO_BIN_EXE_shadowdiff"))
        .args(["diff", path(&a), path(&b), "--format", "json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}
