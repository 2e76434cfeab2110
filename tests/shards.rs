//! Analysis in shards (docs/scale.md): `shadowdiff plan`, `analyze --plan --shard --partial-out`
//! and `merge`, run as separate processes, must give what one `analyze` of the same inputs gives
//! — verdict.json identical but for paths and timings, the same rows in pairs.parquet and
//! diffs.parquet, the same examples — however the input is split: 1, 2, 3 and 7 shards, one per
//! file, and one more than files (an empty shard). Corpora with and without a secondary, with
//! planted regressions, more routes than the route cap, sparse transport faults and numeric
//! drift. And merge refuses, naming it, a missing, moved, duplicated or foreign partial and a
//! policy that is not the plan's.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{corpus_with_effects, python, run, stderr};

/// verdict.json without what legitimately differs between two runs: where the outputs went and
/// how long it took.
fn verdict(dir: &Path) -> Value {
    let mut v: Value = serde_json::from_slice(&std::fs::read(dir.join("verdict.json")).expect("verdict.json"))
        .expect("verdict.json is JSON");
    let obj = v.as_object_mut().expect("an object");
    for key in ["outputs", "generated_at", "analysis_seconds", "duration_s"] {
        obj.remove(key);
    }
    v
}

/// Whether two Parquet files hold the same table (same columns, same rows in the same order),
/// read by pyarrow.
fn same_table(a: &Path, b: &Path) -> bool {
    let script = "import sys, pyarrow.parquet as pq\nsys.exit(0 if pq.read_table(sys.argv[1]).equals(pq.read_table(sys.argv[2])) else 1)";
    let o = std::process::Command::new(python()).args(["-c", script]).arg(a).arg(b).output().expect("python runs");
    assert!(matches!(o.status.code(), Some(0 | 1)), "pyarrow: {}", String::from_utf8_lossy(&o.stderr));
    o.status.success()
}

fn ok(args: &[&str]) -> std::process::Output {
    let o = run(args);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{args:?}: {:?}\n{}", o.status, stderr(&o));
    o
}

/// plan + N shards + merge into `work/mN`, returning the merge's exit code.
fn sharded(inputs: &Path, policy: Option<&Path>, n: usize, work: &Path) -> (PathBuf, Option<i32>) {
    let plan = work.join(format!("plan{n}.json"));
    let parts = work.join(format!("p{n}"));
    let out = work.join(format!("m{n}"));
    let mut policy_args = Vec::new();
    if let Some(p) = policy {
        policy_args = vec!["--policy".to_owned(), p.display().to_string()];
    }
    let s = |p: &Path| p.display().to_string();
    let n_text = n.to_string();
    let mut args = vec!["plan", inputs.to_str().unwrap(), "--shards", &n_text, "--out"];
    let plan_s = s(&plan);
    args.push(&plan_s);
    args.push("-q");
    args.extend(policy_args.iter().map(String::as_str));
    ok(&args);
    let parts_s = s(&parts);
    // Shards in reverse order: the order they run in must not matter.
    for i in (0..n).rev() {
        let index = i.to_string();
        let mut a = vec!["analyze", "--plan", &plan_s, "--shard", &index, "--partial-out", &parts_s, "-q"];
        a.extend(policy_args.iter().map(String::as_str));
        ok(&a);
    }
    let out_s = s(&out);
    let mut a = vec!["merge", "--plan", &plan_s, "--partials", &parts_s, "--out", &out_s, "-q"];
    a.extend(policy_args.iter().map(String::as_str));
    let o = ok(&a);
    (out, o.status.code())
}

fn files_in(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
    }
    n
}

fn equivalence(name: &str, secondary: bool, policy_text: Option<&str>, effects: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let inputs = work.path().join("pairs");
    corpus_with_effects(&inputs, 6_000, 31, effects, |c| {
        c.rotate_rows = 700;
        if !secondary {
            c.secondary = None;
        }
    });
    let policy = policy_text.map(|t| {
        let p = work.path().join("policy.toml");
        std::fs::write(&p, t).unwrap();
        p
    });
    let single = work.path().join("single");
    let mut a = vec!["analyze".to_owned(), inputs.display().to_string(), "--out".into(), single.display().to_string()];
    a.push("-q".into());
    if let Some(p) = &policy {
        a.extend(["--policy".into(), p.display().to_string()]);
    }
    let one = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let want = verdict(&single);
    let files = files_in(&inputs);
    assert!(files >= 8, "{name}: {files} files");
    for n in [1, 2, 3, 7, files, files + 1] {
        let (out, code) = sharded(&inputs, policy.as_deref(), n, work.path());
        assert_eq!(code, one.status.code(), "{name}, {n} shards: exit code");
        assert_eq!(verdict(&out), want, "{name}, {n} shards: verdict.json");
        for file in ["pairs.parquet", "diffs.parquet"] {
            assert!(same_table(&out.join(file), &single.join(file)), "{name}, {n} shards: {file} rows differ");
        }
        let examples = |d: &Path| std::fs::read_to_string(d.join("examples.json")).unwrap();
        assert_eq!(examples(&out), examples(&single), "{name}, {n} shards: examples.json");
    }
}

#[test]
fn shards_merge_into_one_analyze_with_a_secondary_planted_regressions_and_a_route_cap() {
    equivalence(
        "secondary, regressions, 4 routes kept",
        true,
        Some("[routes]\nmax_routes = 4\n"),
        &[
            "latency-shift:1.5@/api/search",
            "error-rate:0.04@/api/orders/{id}",
            "field-removed:/legacy_code@/api/orders/{id}",
            "numeric-drift:/price:0.05@/api/products/{id}",
            "fault:reset:0.003",
            "any-value-changed:0.01",
        ],
    );
}

#[test]
fn shards_merge_into_one_analyze_without_a_secondary() {
    equivalence(
        "no secondary",
        false,
        None,
        &["latency-spread:1.4@/api/users/{id}", "type-changed:/id@/api/products/{id}", "fault:hang:0.002"],
    );
}

#[test]
fn merge_refuses_missing_moved_duplicated_and_foreign_partials_and_another_policy() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let inputs = w.join("pairs");
    corpus_with_effects(&inputs, 1_500, 5, &[], |c| c.rotate_rows = 500);
    let s = |p: PathBuf| p.display().to_string();
    let (plan, parts) = (s(w.join("plan.json")), s(w.join("parts")));
    ok(&["plan", inputs.to_str().unwrap(), "--shards", "3", "--out", &plan, "-q"]);
    for i in ["0", "1", "2"] {
        ok(&["analyze", "--plan", &plan, "--shard", i, "--partial-out", &parts, "-q"]);
    }
    let out = s(w.join("out"));
    let merge = |extra: &[&str]| {
        let mut a = vec!["merge", "--plan", &plan, "--partials", &parts, "--out", &out, "-q"];
        a.extend_from_slice(extra);
        let o = run(&a);
        (o.status.code(), stderr(&o))
    };
    let refused = |(code, err): (Option<i32>, String), says: &str| {
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(says), "wanted `{says}` in: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    };
    assert!(matches!(merge(&[]).0, Some(0 | 1)), "complete: merges");

    // Another policy than the plan's.
    let policy = w.join("policy.toml");
    std::fs::write(&policy, "fail_on = \"warn\"\n").unwrap();
    refused(merge(&["--policy", policy.to_str().unwrap()]), "was made with the built-in policy");

    // A shard missing.
    let shard1 = w.join("parts/shard-00001");
    let aside = w.join("aside");
    std::fs::rename(&shard1, &aside).unwrap();
    refused(merge(&[]), "1 of 3 shards have no partial under");
    // Back, and a copy of it elsewhere under the partials: moved or copied.
    std::fs::rename(&aside, &shard1).unwrap();
    let copy = w.join("parts/old/shard-00001");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["partial.json", "pairs.raw.parquet", "diffs.raw.parquet"] {
        std::fs::copy(shard1.join(f), copy.join(f)).unwrap();
    }
    refused(merge(&[]), "says it is shard 1 but sits in old/shard-00001/");
    std::fs::remove_dir_all(w.join("parts/old")).unwrap();

    // A partial of another plan (two shards instead of three) put in shard 1's place.
    let (plan2, parts2) = (s(w.join("plan2.json")), s(w.join("parts2")));
    ok(&["plan", inputs.to_str().unwrap(), "--shards", "2", "--out", &plan2, "-q"]);
    ok(&["analyze", "--plan", &plan2, "--shard", "1", "--partial-out", &parts2, "-q"]);
    std::fs::copy(w.join("parts2/shard-00001/partial.json"), shard1.join("partial.json")).unwrap();
    refused(merge(&[]), "is a partial of another plan");

    // Re-running the shard repairs it, and re-running gives the same partial, byte for byte.
    ok(&["analyze", "--plan", &plan, "--shard", "1", "--partial-out", &parts, "-q"]);
    let first = std::fs::read(shard1.join("partial.json")).unwrap();
    ok(&["analyze", "--plan", &plan, "--shard", "1", "--partial-out", &parts, "-q"]);
    assert_eq!(std::fs::read(shard1.join("partial.json")).unwrap(), first, "a re-run writes the same partial");
    assert!(matches!(merge(&[]).0, Some(0 | 1)));

    // Bad plans and shards.
    let o = run(&["analyze", "--plan", &plan, "--shard", "3", "--partial-out", &parts]);
    refused((o.status.code(), stderr(&o)), "--shard 3 is past the plan's 3 shards");
    let o = run(&["merge", "--plan", &s(w.join("none.json")), "--partials", &parts, "--out", &out]);
    refused((o.status.code(), stderr(&o)), "there is no plan at");
    std::fs::write(w.join("junk.json"), "{\"format\": \"x\"}").unwrap();
    let o = run(&["merge", "--plan", &s(w.join("junk.json")), "--partials", &parts, "--out", &out]);
    refused((o.status.code(), stderr(&o)), "is not a shadowdiff plan");
    let o = run(&["plan", inputs.to_str().unwrap(), "--shards", "0", "--out", &plan]);
    refused((o.status.code(), stderr(&o)), "--shards must be at least 1");
    let o = run(&["plan", inputs.to_str().unwrap(), "--shards", "2", "--out", &plan, "--sample", "10"]);
    refused((o.status.code(), stderr(&o)), "--sample cannot be sharded");
}
