//! `shadowdiff analyze` end to end, on fixture corpora with known injected effects: a clean
//! canary passes, each regression fails the right check naming the endpoint and field, noise
//! does not fail, too few samples is inconclusive, and the shapes behind Kayenta's false passes
//! (variance-only increase, zero-inflated errors, a side with no data) do not pass.

use std::path::Path;

use serde_json::Value;
use shadowdiff_fixtures::Scoped;
use shadowdiff_fixtures::corpus::{CorpusConfig, Gzip};

use crate::support::{corpus, corpus_with_effects, run, stderr, stdout};

const PAIRS: u64 = 3000;

struct Run {
    code: Option<i32>,
    verdict: Value,
    stdout: String,
    stderr: String,
}

impl Run {
    fn check(&self, id: &str) -> &Value {
        self.verdict["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .unwrap_or_else(|| panic!("no check {id}: {}", self.stdout))
    }

    fn status(&self, id: &str) -> String {
        self.check(id)["status"].as_str().unwrap_or_default().to_owned()
    }

    /// The check's status, and the route of its first (worst) endpoint.
    fn driver(&self, id: &str) -> (String, String) {
        let c = self.check(id);
        (
            c["status"].as_str().unwrap_or_default().to_owned(),
            c["endpoints"][0]["route"].as_str().unwrap_or_default().to_owned(),
        )
    }

    fn explain(&self) -> String {
        format!("exit {:?}\n{}\n{}", self.code, self.stdout, self.stderr)
    }
}

fn analyze(input: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args =
        vec!["analyze", input.to_str().expect("utf-8 path"), "--out", out.to_str().expect("utf-8 path"), "--quiet"];
    args.extend_from_slice(extra);
    let o = run(&args);
    let verdict = std::fs::read_to_string(out.join("verdict.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    Run { code: o.status.code(), verdict, stdout: stdout(&o), stderr: stderr(&o) }
}

/// A corpus with the given canary effects (and a secondary unless `no_secondary`), analyzed.
fn scenario(pairs: u64, seed: u64, effects: &[&str], edit: impl FnOnce(&mut CorpusConfig), extra: &[&str]) -> Run {
    let d = tempfile::tempdir().expect("tempdir");
    let input = d.path().join("in");
    corpus_with_effects(&input, pairs, seed, effects, edit);
    analyze(&input, &d.path().join("out"), extra)
}

fn failing(r: &Run) -> Vec<String> {
    r.verdict["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn clean_canary_passes_and_writes_every_output() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    corpus(&input, PAIRS, |c| c.seed = 11);
    let out = d.path().join("out");
    let r = analyze(&input, &out, &[]);
    assert_eq!(r.code, Some(0), "{}", r.explain());
    assert!(failing(&r).is_empty(), "{}", r.explain());
    assert_eq!(r.verdict["schema_version"], 1);
    assert_eq!(r.verdict["overall"]["pairs"], PAIRS);
    for f in ["pairs.parquet", "diffs.parquet", "verdict.json", "junit.xml", "summary.md"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(!out.join(".pairs.raw.parquet").exists());
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 7, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| latency_p99 |"), "{md}");
    // The noise fields differ between baseline and secondary as often as against the canary.
    let noise: Vec<&Value> = r.verdict["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["field"] == "/request_id" || f["field"] == "/generated_at")
        .collect();
    assert!(!noise.is_empty());
    // (A pair whose secondary failed leaves its raw difference unjudged: then suspected noise.)
    assert!(
        noise.iter().all(|f| f["verdict"]["verdict"] == "noise" || f["verdict"]["verdict"] == "suspected_noise"),
        "{noise:?}"
    );
    assert!(noise.iter().any(|f| f["verdict"]["verdict"] == "noise"), "{noise:?}");
    // The endpoints table comes from polars over pairs.parquet.
    let routes: Vec<&str> =
        r.verdict["endpoints"].as_array().unwrap().iter().filter_map(|e| e["route"].as_str()).collect();
    assert!(routes.contains(&"/api/users/{id}") && routes.contains(&"/api/orders/{id}"), "{routes:?}");
    assert!(r.stdout.is_empty(), "--quiet prints nothing");
}

#[test]
fn without_a_secondary_unique_values_are_suspected_noise_not_failures() {
    let r = scenario(PAIRS, 12, &[], |c| c.secondary = None, &[]);
    assert_eq!(r.code, Some(0), "{}", r.explain());
    let f: Vec<&Value> =
        r.verdict["fields"].as_array().unwrap().iter().filter(|f| f["field"] == "/request_id").collect();
    assert!(!f.is_empty() && f.iter().all(|f| f["verdict"]["verdict"] == "suspected_noise"), "{f:?}");
    assert_eq!(r.status("diff_rate"), "pass", "{}", r.explain());
}

#[test]
fn latency_shift_on_one_endpoint_fails_latency_naming_it() {
    let r = scenario(8000, 13, &["latency-shift:1.6@/api/users/{id}"], |_| {}, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.driver("latency_p99"), ("fail".into(), "/api/users/{id}".into()), "{}", r.explain());
    assert_eq!(r.status("error_rate"), "pass");
    assert_eq!(r.status("diff_rate"), "pass");
}

#[test]
fn sequential_decisions_are_wider_and_still_fail_a_real_regression() {
    let d = tempfile::tempdir().expect("tempdir");
    let input = d.path().join("in");
    corpus_with_effects(&input, 6000, 13, &["latency-shift:1.6@/api/users/{id}"], |_| {});
    let fixed = analyze(&input, &d.path().join("fixed"), &[]);
    let seq = analyze(&input, &d.path().join("seq"), &["--sequential"]);
    assert_eq!(seq.verdict["sequential"], true, "{}", seq.explain());
    assert!(fixed.verdict.get("sequential").is_none(), "absent when false");
    // A confidence sequence is wider than the one-look interval of the same figure.
    let width = |r: &Run| {
        let lat = &r.verdict["latency"][0]["log_ratio"];
        lat["high"].as_f64().unwrap() - lat["low"].as_f64().unwrap()
    };
    assert!(width(&seq) > 1.2 * width(&fixed), "{} vs {}", width(&seq), width(&fixed));
    // A +60 % regression still fails, on the same endpoint.
    assert_eq!(seq.code, Some(1), "{}", seq.explain());
    assert_eq!(seq.driver("latency_p99"), ("fail".into(), "/api/users/{id}".into()), "{}", seq.explain());
    // The policy key does the same as the flag.
    let policy = d.path().join("policy.toml");
    std::fs::write(&policy, "sequential = true\n").unwrap();
    let keyed = analyze(&input, &d.path().join("keyed"), &["--policy", policy.to_str().unwrap()]);
    assert_eq!(keyed.verdict["sequential"], true, "{}", keyed.explain());
}

#[test]
fn spread_only_change_with_the_median_unchanged_fails() {
    // Kayenta's Mann-Whitney judge passes this: the median does not move.
    let r = scenario(PAIRS, 14, &["latency-spread:2.5"], |_| {}, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.status("latency_p99"), "fail", "{}", r.explain());
    assert_eq!(r.status("latency_shape"), "warn", "{}", r.explain());
    let p50 = &r.verdict["latency"][0]["quantiles"][0];
    assert!(p50["relative"].as_f64().unwrap().abs() < 0.1, "median moved: {p50}");
}

#[test]
fn error_burst_fails_an_error_check_naming_the_status() {
    let r = scenario(PAIRS, 15, &["burst:500:40"], |_| {}, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.status("error_rate"), "fail", "{}", r.explain());
    assert_eq!(r.status("critical_errors"), "fail", "{}", r.explain());
    assert!(r.check("critical_errors")["reason"].as_str().unwrap().contains("status 503"), "{}", r.explain());
    assert!(
        r.verdict["status_mismatches"]["(all)"]["2xx→5xx"].as_u64().unwrap() > 100,
        "{}",
        r.verdict["status_mismatches"]
    );
}

#[test]
fn sparse_canary_only_resets_fail_critical_errors() {
    let r = scenario(PAIRS, 16, &["fault:reset:0.01"], |_| {}, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.status("critical_errors"), "fail", "{}", r.explain());
    assert!(r.check("critical_errors")["reason"].as_str().unwrap().contains("`reset`"), "{}", r.explain());
}

#[test]
fn zero_inflated_errors_on_a_clean_baseline_fail() {
    // Kayenta's false pass: the baseline has no errors at all, the canary a few per hundred.
    let r = scenario(
        PAIRS,
        17,
        &["error-rate:0.02@/api/orders/{id}"],
        |c| {
            c.baseline.error_rate = 0.0;
            c.canary.error_rate = 0.0;
            if let Some(s) = c.secondary.as_mut() {
                s.error_rate = 0.0;
            }
        },
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.status("critical_errors"), "fail", "{}", r.explain());
    let eps = r.check("critical_errors")["endpoints"].as_array().unwrap();
    assert!(eps.iter().any(|e| e["route"] == "/api/orders/{id}" && e["status"] == "fail"), "{}", r.explain());
}

#[test]
fn a_canary_with_no_data_does_not_pass() {
    // Kayenta's false pass: one side has no data. Every canary request timed out.
    let r = scenario(PAIRS, 18, &["fault:hang:1.0"], |_| {}, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.status("latency_p99"), "inconclusive", "{}", r.explain());
    assert_eq!(r.status("critical_errors"), "fail", "{}", r.explain());
}

#[test]
fn field_removal_fails_breaking_naming_endpoint_and_field() {
    let r = scenario(PAIRS, 19, &["field-removed:/legacy_code@/api/orders/{id}"], |_| {}, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.driver("breaking"), ("fail".into(), "/api/orders/{id}".into()), "{}", r.explain());
    assert_eq!(r.check("breaking")["endpoints"][0]["fields"][0]["field"], "/legacy_code", "{}", r.explain());
    assert_eq!(r.driver("diff_rate"), ("fail".into(), "/api/orders/{id}".into()));
}

#[test]
fn one_percent_value_change_fails_diff_rate() {
    let r = scenario(4000, 20, &["any-value-changed:0.012"], |_| {}, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.status("diff_rate"), "fail", "{}", r.explain());
    assert_eq!(r.status("breaking"), "pass", "{}", r.explain());
}

#[test]
fn a_report_only_check_is_judged_and_shown_but_does_not_decide() {
    let d = tempfile::tempdir().unwrap();
    let policy = d.path().join("policy.toml");
    std::fs::write(&policy, "[checks.diff_rate]\nreport_only = true\n").unwrap();
    let out = d.path().join("out");
    let input = d.path().join("in");
    corpus_with_effects(&input, 4000, 20, &["any-value-changed:0.012"], |_| {});
    let r = analyze(&input, &out, &["--policy", policy.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "the only failing check is report-only: {}", r.explain());
    assert_eq!(r.verdict["verdict"], "pass", "{}", r.explain());
    assert_eq!(r.status("diff_rate"), "fail", "still judged: {}", r.explain());
    assert_eq!(r.check("diff_rate")["report_only"], true);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(!junit.contains("<failure"), "a report-only failure does not fail CI: {junit}");
    assert!(junit.contains("fail (report only)"), "{junit}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("fail (report only)"), "{summary}");
    // Only under [checks]: an endpoint cannot make part of a check report-only.
    std::fs::write(&policy, "[[endpoint]]\nroute = \"/api/**\"\n[endpoint.checks.diff_rate]\nreport_only = true\n")
        .unwrap();
    let r = analyze(&input, &d.path().join("out2"), &["--policy", policy.to_str().unwrap()]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stderr.contains("report_only") && r.stderr.contains("[checks.diff_rate]"), "{}", r.stderr);
}

#[test]
fn absolute_goals_ceilings_and_required_routes() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    corpus(&input, PAIRS, |c| c.seed = 31);
    let policy = d.path().join("policy.toml");
    let judge = |text: &str, out: &str| {
        std::fs::write(&policy, text).unwrap();
        analyze(&input, &d.path().join(out), &["--policy", policy.to_str().unwrap()])
    };
    // The clean corpus answers in a few ms: a 10 s ceiling and a route with data are met.
    let r = judge(
        "[[goal]]\nroute = \"/api/**\"\np99_ms = 10000\n\n[[goal]]\nroute = \"/api/search\"\nmin_pairs = 50\n",
        "met",
    );
    assert_eq!(r.code, Some(0), "{}", r.explain());
    assert_eq!(r.status("goals"), "pass", "{}", r.explain());
    // A 1 ms p95 ceiling is broken beyond doubt; the route is named with its figure.
    let r = judge("[[goal]]\nroute = \"/api/search\"\np95_ms = 1\n", "ceiling");
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.status("goals"), "fail", "{}", r.explain());
    let reason = r.check("goals")["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("/api/search canary p95") && reason.contains("1 ms ceiling"), "{reason}");
    // A required route that never showed up makes the run inconclusive (exit 3), naming it.
    let r = judge("[[goal]]\nroute = \"/api/checkout\"\nmin_pairs = 500\n", "required");
    assert_eq!(r.code, Some(3), "{}", r.explain());
    assert_eq!(r.status("goals"), "inconclusive", "{}", r.explain());
    assert_eq!(r.check("goals")["more_pairs"], 500, "{}", r.explain());
    let reason = r.check("goals")["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("/api/checkout: 0 compared pairs (no route matched)"), "{reason}");
    // Without goals the check is disabled, and it says why.
    let r = judge("", "none");
    assert_eq!(r.status("goals"), "disabled", "{}", r.explain());
    // Nonsense is refused with the key named.
    for (text, key) in [
        ("[[goal]]\nroute = \"/api/search\"\n", "goal[0]"),
        ("[[goal]]\nroute = \"/api/search\"\np95_ms = -3\n", "goal[0].p95_ms"),
        ("[[goal]]\nroute = \"/api/search\"\np97_ms = 3\n", "p97_ms"),
        ("[checks.goals]\npass = 1\n", "checks.goals.pass"),
    ] {
        let r = judge(text, "bad");
        assert_eq!(r.code, Some(2), "{text}: {}", r.explain());
        assert!(r.stderr.contains(key), "{text}: {}", r.stderr);
    }
}

#[test]
fn numeric_drift_beyond_tolerance_fails_naming_the_field() {
    let r = scenario(PAIRS, 21, &["numeric-drift:/price:0.05@/api/products/{id}"], |_| {}, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    let c = r.check("diff_rate");
    assert_eq!(c["status"], "fail");
    assert_eq!(c["endpoints"][0]["route"], "/api/products/{id}");
    assert_eq!(c["endpoints"][0]["fields"][0]["field"], "/price", "{c}");
    let drift = r.verdict["numeric_drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == "/price")
        .expect("drift for /price");
    assert!((drift["mean"].as_f64().unwrap() - 0.05).abs() < 0.005, "{drift}");
    assert!(!drift["outliers"].as_array().unwrap().is_empty());

    // Declared as tolerated, the same drift passes.
    let d = tempfile::tempdir().unwrap();
    let policy = d.path().join("policy.toml");
    std::fs::write(&policy, "[[tolerance]]\npath = \"/price\"\nrelative = 0.06\n").unwrap();
    let r = scenario(
        PAIRS,
        21,
        &["numeric-drift:/price:0.05@/api/products/{id}"],
        |_| {},
        &["--policy", policy.to_str().unwrap()],
    );
    assert_eq!(r.status("diff_rate"), "pass", "{}", r.explain());
}

#[test]
fn too_few_samples_is_inconclusive() {
    let r = scenario(60, 22, &[], |_| {}, &[]);
    assert_eq!(r.code, Some(3), "{}", r.explain());
    assert_eq!(r.verdict["verdict"], "inconclusive");
    assert!(r.check("latency_p99")["reason"].as_str().unwrap().contains("min_samples"), "{}", r.explain());
}

#[test]
fn policy_overrides_and_fail_on_warn() {
    let d = tempfile::tempdir().unwrap();
    let policy = d.path().join("policy.toml");
    // A warning only: a +40 % regression is beyond the pass threshold (+20 %) but the policy
    // fails only beyond +300 %.
    std::fs::write(&policy, "[checks.latency_p99]\npass = 0.2\nwarn = 3.0\n").unwrap();
    let p = policy.to_str().unwrap();
    let r = scenario(PAIRS, 23, &["latency-shift:1.4"], |_| {}, &["--policy", p]);
    assert_eq!(r.code, Some(0), "{}", r.explain());
    assert_eq!(r.verdict["verdict"], "warn", "{}", r.explain());
    let r = scenario(PAIRS, 23, &["latency-shift:1.4"], |_| {}, &["--policy", p, "--fail-on", "warn"]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
}

#[test]
fn sample_is_reproducible() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    corpus(&input, 1000, |c| c.seed = 24);
    let a = analyze(&input, &d.path().join("a"), &["--sample", "300", "--seed", "5", "--policy", "/dev/null"]);
    let b = analyze(&input, &d.path().join("b"), &["--sample", "300", "--seed", "5", "--policy", "/dev/null"]);
    assert_eq!(a.verdict["inputs"]["pairs_analyzed"], 300, "{}", a.explain());
    assert_eq!(a.verdict["checks"], b.verdict["checks"]);
    assert_eq!(a.verdict["endpoints"], b.verdict["endpoints"]);
}

#[test]
fn bad_inputs_exit_2_with_the_reason() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = analyze(&empty, &out, &[]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stderr.contains("no pair files"), "{}", r.stderr);

    let foreign = d.path().join("foreign.parquet");
    let py = format!(
        "import pyarrow as pa, pyarrow.parquet as pq; pq.write_table(pa.table({{'order_id': [1, 2]}}), r'{}')",
        foreign.display()
    );
    let o = std::process::Command::new(crate::support::python()).args(["-c", &py]).output().expect("python runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = analyze(&foreign, &out, &[]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
    assert!(r.stderr.contains("foreign.parquet"), "{}", r.stderr);

    let input = d.path().join("in");
    corpus(&input, 50, |_| {});
    for (text, needle) in [
        ("[checks.latency_p99]\npas = 0.1\n", "pas"),
        ("[checks.latency_p99]\npass = 0.3\nwarn = 0.1\n", "checks.latency_p99.warn"),
        ("[checks.diff_rate]\npass = 5\n", "checks.diff_rate.pass"),
        ("min_samples = -1\n", "min_samples"),
        ("[[ignroe]]\npath = \"/a\"\n", "ignroe"),
    ] {
        let policy = d.path().join("bad.toml");
        std::fs::write(&policy, text).unwrap();
        let r = analyze(&input, &out, &["--policy", policy.to_str().unwrap()]);
        assert_eq!(r.code, Some(2), "{text}: {}", r.explain());
        assert!(r.stderr.contains(needle) && r.stderr.contains("bad.toml"), "{text}: {}", r.stderr);
    }
    let r = analyze(&input, &out, &["--policy", d.path().join("missing.toml").to_str().unwrap()]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
}

#[test]
fn a_recorded_baseline_makes_latency_not_comparable() {
    use shadowdiff_format::{BaselineOrigin, PairReader, PairWriter, WriterConfig};
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    corpus(&input, 1000, |c| {
        c.seed = 25;
        c.canary.effects.push(Scoped::parse("latency-shift:3").unwrap());
    });
    // Rewrite the pairs as replay's canary-only mode would: the baseline side recorded elsewhere.
    let recorded = d.path().join("recorded");
    let mut cfg = WriterConfig::new(&recorded, "replay");
    cfg.baseline_origin = BaselineOrigin::Recorded;
    let mut w = PairWriter::new(cfg).unwrap();
    for r in PairReader::read_all_records(&[input.to_str().unwrap()]).unwrap() {
        w.write(r).unwrap();
    }
    w.close().unwrap();
    let r = analyze(&recorded, &d.path().join("out"), &[]);
    assert_eq!(r.code, Some(0), "{}", r.explain());
    assert_eq!(r.status("latency_p99"), "not_comparable", "{}", r.explain());
    assert_eq!(r.status("latency_shape"), "not_comparable");
    assert_eq!(r.verdict["inputs"]["baseline_origin"]["recorded"], 1);
    // Unless the policy asks for it.
    let policy = d.path().join("policy.toml");
    std::fs::write(&policy, "judge_recorded_latency = true\n").unwrap();
    let r = analyze(&recorded, &d.path().join("out2"), &["--policy", policy.to_str().unwrap()]);
    assert_eq!(r.status("latency_p99"), "fail", "{}", r.explain());
}

#[test]
fn stdout_has_a_one_screen_summary() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    corpus(&input, 400, |c| c.seed = 26);
    let out = d.path().join("out");
    let o = run(&["analyze", input.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(text.starts_with("verdict  "), "{text}");
    assert!(text.lines().count() < 25, "{text}");
    for id in ["latency_p99", "latency_shape", "error_rate", "critical_errors", "diff_rate", "breaking"] {
        assert!(text.contains(id), "{id}: {text}");
    }
}

#[test]
fn a_baseline_that_gzips_against_a_canary_that_does_not_is_one_changed_header() {
    // Bodies are compared decoded: the only difference left is the coding, reported as a
    // `changed` header difference, explained, so neither diff_rate nor breaking counts it.
    let gzip = |c: &mut CorpusConfig| c.gzip = Gzip::BASELINES;
    let r = scenario(PAIRS, 11, &[], gzip, &[]);
    assert_eq!(r.code, Some(0), "{}", r.explain());
    assert_eq!(r.status("diff_rate"), "pass", "{}", r.explain());
    assert_eq!(r.status("breaking"), "pass", "{}", r.explain());
    let fields: Vec<(&str, &str)> = r.verdict["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap_or_default(), f["severity"].as_str().unwrap_or_default()))
        .collect();
    assert!(fields.contains(&("header:content-encoding", "changed")), "{fields:?}");
    let coding = r.verdict["fields"].as_array().unwrap().iter().find(|f| f["field"] == "header:content-encoding");
    assert_eq!(coding.map(|f| &f["verdict"]["verdict"]), Some(&Value::from("explained")), "{coding:?}");
    assert!(!fields.iter().any(|(f, _)| *f == "(body)"), "{fields:?}");
    assert!(r.verdict["inputs"].get("undecodable").is_none(), "{}", r.verdict["inputs"]);
}

#[test]
fn a_removed_field_inside_gzip_bodies_fails_breaking_as_it_does_uncompressed() {
    let effects = ["field-removed:/legacy_code@/api/orders/{id}"];
    let plain = scenario(PAIRS, 19, &effects, |_| {}, &[]);
    let gzipped = scenario(PAIRS, 19, &effects, |c| c.gzip = Gzip::BASELINES, &[]);
    assert_eq!(gzipped.code, Some(1), "{}", gzipped.explain());
    assert_eq!(gzipped.driver("breaking"), ("fail".into(), "/api/orders/{id}".into()), "{}", gzipped.explain());
    assert_eq!(gzipped.check("breaking")["endpoints"][0]["fields"][0]["field"], "/legacy_code");
    assert_eq!(gzipped.check("breaking"), plain.check("breaking"), "the same finding, compressed or not");
    assert_eq!(gzipped.check("diff_rate"), plain.check("diff_rate"));
    // Every side gzips: nothing differs but the removed field, and no coding header either.
    let every = scenario(PAIRS, 19, &effects, |c| c.gzip = Gzip::EVERY, &[]);
    assert_eq!(every.check("breaking"), plain.check("breaking"));
    let coded = every.verdict["fields"].as_array().unwrap().iter().any(|f| f["field"] == "header:content-encoding");
    assert!(!coded, "{}", every.explain());
}

#[test]
fn undecodable_canary_bodies_are_counted_and_named_not_crashed_on() {
    use shadowdiff_format::{PairReader, PairWriter, WriterConfig};
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    corpus(&input, 1000, |c| {
        c.seed = 27;
        c.gzip = Gzip::EVERY;
    });
    // Every tenth answered canary body gets its compressed stream damaged in the middle.
    let damaged = d.path().join("damaged");
    let mut w = PairWriter::new(WriterConfig::new(&damaged, "corpus")).unwrap();
    let mut broken = 0u64;
    for (i, mut r) in PairReader::read_all_records(&[input.to_str().unwrap()]).unwrap().into_iter().enumerate() {
        let compared = r.baseline.error.is_none() && r.canary.error.is_none() && r.baseline.status == r.canary.status;
        if let Some(body) = r.canary.body.as_ref().filter(|_| i % 10 == 0 && compared) {
            let mut b = body.to_vec();
            let mid = b.len() / 2;
            b[mid..mid + 4].iter_mut().for_each(|x| *x ^= 0x5a);
            r.canary.body = Some(b.into());
            broken += 1;
        }
        w.write(r).unwrap();
    }
    w.close().unwrap();
    let out = d.path().join("out");
    let r = analyze(&damaged, &out, &[]);
    assert_eq!(r.code, Some(1), "{}", r.explain());
    assert_eq!(r.verdict["inputs"]["undecodable"]["canary"], broken, "{}", r.verdict["inputs"]);
    assert_eq!(r.verdict["inputs"]["undecodable"]["baseline"], 0);
    assert_eq!(r.status("breaking"), "fail", "{}", r.explain());
    let body_field = r.check("breaking")["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["fields"].as_array().cloned().unwrap_or_default())
        .any(|f| f["field"] == "(body)");
    assert!(body_field, "{}", r.check("breaking"));
    let examples = std::fs::read_to_string(out.join("examples.json")).unwrap();
    assert!(examples.contains("undecodable: gzip stream"), "the example says why");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("could not be decoded by their Content-Encoding"), "capture completeness says so");

    // The decoded-size cap from the command line: every body cut, counted as truncated.
    let r = analyze(&input, &d.path().join("capped"), &["--max-decoded-body", "16"]);
    assert_ne!(r.code, Some(2), "{}", r.explain());
    let truncated = &r.verdict["inputs"]["truncated"];
    assert!(truncated["baseline"].as_u64().unwrap_or(0) > 500, "{truncated}");
    assert!(truncated["canary"].as_u64().unwrap_or(0) > 500, "{truncated}");
    let r = analyze(&input, &d.path().join("bad"), &["--max-decoded-body", "0"]);
    assert_eq!(r.code, Some(2), "{}", r.explain());
}
