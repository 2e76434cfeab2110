//! The rollout-controller files under deploy/ (argo-rollouts/, flagger/, prometheus/, grafana/),
//! checked against what their controllers read and against a real `shadowdiff serve`: the Argo
//! Rollouts web AnalysisTemplate's URL is requested from serve and its `jsonPath` evaluated on
//! the answer, with its success and failure conditions; the job AnalysisTemplate's container runs
//! as `shadowdiff analyze` with its own flags; the Flagger Canary's webhook URLs are posted to
//! serve with Flagger's payload; every metric the alert rules and the dashboard query is one
//! serve exposes; deploy/serve's Deployment and Service validate (kubernetes-validate), run as
//! written, and are what the templates call. No Kubernetes schema covers these CRDs (kubernetes-validate knows only the
//! built-in kinds), so their fields are checked by hand.

use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::serve::Serve;
use crate::support::{corpus_with_effects, repo_root, run, stderr};

fn deploy(rel: &str) -> PathBuf {
    repo_root().join("deploy").join(rel)
}

/// Every document of a YAML file, as JSON values.
fn yaml(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{rel} does not parse: {e}")))
        .collect()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer}"))
}

/// The JSONPath subset Argo Rollouts' web provider templates use here: `{$.a.b}` or `{$.a[0].b}`
/// (Argo wraps the expression in braces, as kubectl's JSONPath does). Anything else is refused,
/// so a template using more than this subset fails the test instead of passing unchecked.
fn json_path<'a>(doc: &'a Value, expr: &str) -> Option<&'a Value> {
    let inner = expr.strip_prefix("{$").and_then(|e| e.strip_suffix('}')).expect("a {$...} expression");
    let mut at = doc;
    for step in inner.split('.').skip(1) {
        let (name, index) = match step.split_once('[') {
            Some((n, i)) => (n, Some(i.strip_suffix(']').and_then(|i| i.parse::<usize>().ok()).expect("an index"))),
            None => (step, None),
        };
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "unsupported step {step}"
        );
        at = at.get(name)?;
        if let Some(i) = index {
            at = at.get(i)?;
        }
    }
    Some(at)
}

/// Argo's conditions here are `result == "WORD"`: evaluated on a measured result.
fn condition(expr: &str, result: &Value) -> bool {
    let word = expr
        .trim()
        .strip_prefix("result == \"")
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or_else(|| panic!("condition `{expr}` is not of the form result == \"WORD\""));
    result.as_str() == Some(word)
}

/// `{{args.NAME}}` replaced by each argument's default value.
fn substitute(text: &str, args: &[Value]) -> String {
    args.iter()
        .fold(text.to_owned(), |t, a| t.replace(&format!("{{{{args.{}}}}}", str_at(a, "/name")), str_at(a, "/value")))
}

/// The path and query of an in-cluster URL.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").expect("a URL").1;
    rest.find('/').map_or("/".to_owned(), |i| rest[i..].to_owned())
}

/// Pairs captured over the last ~10 minutes, so a relative `since` of the templates holds them.
fn recent_corpus(dir: &Path, effects: &[&str]) {
    corpus_with_effects(dir, 2000, 11, effects, |c| {
        c.start = Utc::now() - Duration::minutes(10);
        c.rate = 4.0;
    });
}

#[test]
fn argo_web_template_reads_a_real_serve_verdict() {
    let docs = yaml("argo-rollouts/analysistemplate-web.yaml");
    let [t] = docs.as_slice() else { panic!("one document") };
    assert_eq!((str_at(t, "/apiVersion"), str_at(t, "/kind")), ("argoproj.io/v1alpha1", "AnalysisTemplate"));
    let args = t["spec"]["args"].as_array().expect("spec.args");
    let [m] = t["spec"]["metrics"].as_array().expect("spec.metrics").as_slice() else { panic!("one metric") };
    for key in ["name", "interval", "successCondition", "failureCondition"] {
        assert!(m[key].is_string(), "metric.{key}");
    }
    for key in ["count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"] {
        assert!(m[key].is_u64(), "metric.{key}");
    }
    let web = &m["provider"]["web"];
    let url = substitute(str_at(web, "/url"), args);
    assert!(!url.contains("{{"), "every argument has a value: {url}");
    assert!(web["timeoutSeconds"].as_u64().is_some_and(|s| s >= 30), "time for an analysis");
    let path = path_of(&url);
    assert!(path.starts_with("/v1/verdict?"), "{path}");

    // A passing canary: the measurement is Successful.
    let dir = tempfile::tempdir().expect("tempdir");
    recent_corpus(&dir.path().join("pass"), &[]);
    let serve = Serve::start(&dir.path().join("pass"), &["--refresh", "1h"]);
    let (status, body) = serve.get(&path);
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).expect("JSON");
    let result = json_path(&doc, str_at(m, "/provider/web/jsonPath")).expect("the jsonPath finds a value");
    assert_eq!(result, "pass", "{}", doc["reason"]);
    assert!(condition(str_at(m, "/successCondition"), result));
    assert!(!condition(str_at(m, "/failureCondition"), result));
    drop(serve);

    // A canary that removed a field on one route: Failed.
    recent_corpus(&dir.path().join("fail"), &["field-removed:/name@/api/users/{id}"]);
    let serve = Serve::start(&dir.path().join("fail"), &["--refresh", "1h"]);
    let (status, body) = serve.get(&path);
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).expect("JSON");
    let result = json_path(&doc, str_at(m, "/provider/web/jsonPath")).expect("a value");
    assert_eq!(result, "fail", "{}", doc["reason"]);
    assert!(condition(str_at(m, "/failureCondition"), result));
    assert!(!condition(str_at(m, "/successCondition"), result));
}

#[test]
fn argo_job_template_runs_shadowdiff_analyze_with_its_flags() {
    let docs = yaml("argo-rollouts/analysistemplate-job.yaml");
    let [t] = docs.as_slice() else { panic!("one document") };
    assert_eq!((str_at(t, "/apiVersion"), str_at(t, "/kind")), ("argoproj.io/v1alpha1", "AnalysisTemplate"));
    let args = t["spec"]["args"].as_array().expect("spec.args");
    let [m] = t["spec"]["metrics"].as_array().expect("metrics").as_slice() else { panic!("one metric") };
    let job = &m["provider"]["job"]["spec"];
    assert_eq!(job["backoffLimit"], 0, "a failed analysis is not retried into a pass");
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let [c] = pod["containers"].as_array().expect("containers").as_slice() else { panic!("one container") };
    // The volumes are the base's: the pairs claim capture writes and the policy ConfigMap.
    let volumes = pod["volumes"].as_array().expect("volumes");
    let claim = volumes.iter().find_map(|v| v["persistentVolumeClaim"]["claimName"].as_str()).expect("a claim");
    let config = volumes.iter().find_map(|v| v["configMap"]["name"].as_str()).expect("a ConfigMap");
    let base = |rel: &str| yaml(&format!("kubernetes/base/{rel}")).remove(0);
    assert_eq!(claim, str_at(&base("pairs-pvc.yaml"), "/metadata/name"));
    let policy_map = base("policy.yaml");
    assert_eq!(config, str_at(&policy_map, "/metadata/name"));

    // The container's command, run here with the paths mapped onto a real corpus and policy.
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs");
    recent_corpus(&pairs, &[]);
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, str_at(&policy_map, "/data/policy.toml")).expect("policy");
    let out = dir.path().join("out");
    let argv: Vec<String> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| {
            substitute(a.as_str().expect("string args"), args)
                .replace("/data/pairs", pairs.to_str().expect("utf-8"))
                .replace("/etc/shadowdiff/policy.toml", policy.to_str().expect("utf-8"))
                .replace("/tmp/analysis", out.to_str().expect("utf-8"))
        })
        .collect();
    assert_eq!(argv[0], "analyze");
    assert!(argv.iter().any(|a| a == "--sequential"), "repeated looks are anytime-valid");
    let o = run(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "the Job's exit code is the measurement: {}", stderr(&o));
    let v: Value =
        serde_json::from_slice(&std::fs::read(out.join("verdict.json")).expect("verdict.json")).expect("JSON");
    assert_eq!(v["sequential"], true);
    assert!(v["inputs"]["window"].is_object(), "--since applied: {}", v["inputs"]);
}

#[test]
fn flagger_canary_webhooks_are_answered_by_serve() {
    let docs = yaml("flagger/canary.yaml");
    let [c] = docs.as_slice() else { panic!("one document") };
    assert_eq!((str_at(c, "/apiVersion"), str_at(c, "/kind")), ("flagger.app/v1beta1", "Canary"));
    assert!(c["spec"]["targetRef"]["name"].is_string());
    let analysis = &c["spec"]["analysis"];
    let interval = shadowdiff_capture::config::parse_duration(str_at(analysis, "/interval")).expect("interval");
    let hooks = analysis["webhooks"].as_array().expect("webhooks");
    let types: Vec<&str> = hooks.iter().map(|h| str_at(h, "/type")).collect();
    assert_eq!(types, ["confirm-rollout", "pre-rollout", "rollout", "confirm-promotion"]);

    let dir = tempfile::tempdir().expect("tempdir");
    recent_corpus(&dir.path().join("pairs"), &[]);
    let serve = Serve::start(&dir.path().join("pairs"), &["--refresh", "1h"]);
    for h in hooks {
        let timeout = shadowdiff_capture::config::parse_duration(str_at(h, "/timeout")).expect("timeout");
        if str_at(h, "/type") == "rollout" {
            assert!(timeout < interval, "Flagger: rollout hooks' timeouts below the interval");
        }
        let metadata = h["metadata"].as_object().expect("metadata of strings");
        assert!(metadata.values().all(Value::is_string), "Flagger's metadata is a map of strings");
        // Flagger's payload (docs/gitbook/usage/webhooks.md), with the hook's metadata.
        let payload = json!({"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "6d8f8", "metadata": metadata});
        let path = path_of(str_at(h, "/url"));
        let (status, body) = serve.post(&path, &payload.to_string());
        assert_eq!(status, 200, "{path}: {body}");
        let b: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!((&b["advance"], &b["verdict"]), (&json!(true), &json!("pass")), "{body}");
    }
}

/// The metric names an expression refers to (`shadowdiff_…`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("shadowdiff_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn alert_rules_and_dashboard_query_what_serve_exposes() {
    let dir = tempfile::tempdir().expect("tempdir");
    recent_corpus(&dir.path().join("pairs"), &[]);
    let serve = Serve::start(&dir.path().join("pairs"), &["--refresh", "1h"]);
    assert_eq!(serve.get("/v1/verdict").0, 200);
    let (_, text) = serve.get("/metrics");
    let exposed: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect();
    let known = |name: &str| exposed.iter().any(|e| e == name);

    let docs = yaml("prometheus/shadowdiff-serve-rules.yaml");
    let [r] = docs.as_slice() else { panic!("one document") };
    let mut alerts = 0;
    for group in r["groups"].as_array().expect("groups") {
        assert!(group["name"].is_string());
        for rule in group["rules"].as_array().expect("rules") {
            let alert = str_at(rule, "/alert");
            let expr = str_at(rule, "/expr");
            shadowdiff_capture::config::parse_duration(str_at(rule, "/for")).expect("for");
            assert!(rule["annotations"]["summary"].is_string(), "{alert}: a summary");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{alert}");
            for n in names {
                assert!(known(&n), "{alert} queries {n}, which serve does not expose");
            }
            alerts += 1;
        }
    }
    assert!(alerts >= 4);

    let text = std::fs::read_to_string(deploy("grafana/shadowdiff-serve.json")).expect("dashboard");
    let d: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(d["uid"].is_string() && d["title"].is_string() && d["schemaVersion"].is_u64());
    let panels = d["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    for p in panels {
        assert!(p["gridPos"]["w"].is_u64() && p["gridPos"]["h"].is_u64(), "{}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            for n in metric_names(str_at(t, "/expr")) {
                assert!(known(&n), "panel {} queries {n}, which serve does not expose", p["title"]);
            }
        }
    }
}

/// kubernetes-validate from the test virtualenv; missing, the check is skipped with the reason
/// (it fails under CI=true), as tests/deploy.rs does.
fn kubernetes_validate() -> Option<PathBuf> {
    let p = repo_root().join(".venv/bin/kubernetes-validate");
    if p.is_file() {
        return Some(p);
    }
    let msg = "kubernetes-validate is not installed (scripts/test installs it)";
    assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{msg}");
    eprintln!("skipped: {msg}");
    None
}

#[test]
fn serve_deployment_validates_runs_and_is_what_the_templates_call() {
    let docs = yaml("serve/serve.yaml");
    let [deployment, service] = docs.as_slice() else { panic!("a Deployment and a Service") };
    assert_eq!((str_at(deployment, "/kind"), str_at(service, "/kind")), ("Deployment", "Service"));
    if let Some(validator) = kubernetes_validate() {
        let o = std::process::Command::new(validator)
            .args(["--kubernetes-version", "1.30.0", "--strict", "--quiet"])
            .arg(deploy("serve/serve.yaml"))
            .output()
            .expect("kubernetes-validate runs");
        let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success() && !out.contains("ERROR"), "deploy/serve/serve.yaml: {out}");
    }

    // The address the Argo template and the Flagger Canary call is this Service's.
    let name = str_at(service, "/metadata/name");
    let port = service["spec"]["ports"][0]["port"].as_u64().expect("port");
    let host = format!("http://{name}.shadowdiff.svc.cluster.local:{port}/");
    let web = yaml("argo-rollouts/analysistemplate-web.yaml").remove(0);
    let args = web["spec"]["args"].as_array().expect("args");
    assert!(substitute(str_at(&web, "/spec/metrics/0/provider/web/url"), args).starts_with(&host));
    let canary = yaml("flagger/canary.yaml").remove(0);
    for h in canary["spec"]["analysis"]["webhooks"].as_array().expect("webhooks") {
        assert!(str_at(h, "/url").starts_with(&host), "{}", h["url"]);
    }
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"]);
    let [c] = pod["containers"].as_array().expect("containers").as_slice() else { panic!("one container") };
    let target = str_at(service, "/spec/ports/0/targetPort");
    assert!(c["ports"].as_array().expect("ports").iter().any(|p| p["name"] == target));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            (str_at(c, &format!("/{probe}/httpGet/path")), str_at(c, &format!("/{probe}/httpGet/port"))),
            ("/healthz", target)
        );
    }
    let volumes = pod["volumes"].as_array().expect("volumes");
    let base = |rel: &str| yaml(&format!("kubernetes/base/{rel}")).remove(0);
    let claim = volumes.iter().find_map(|v| v["persistentVolumeClaim"]["claimName"].as_str()).expect("a claim");
    assert_eq!(claim, str_at(&base("pairs-pvc.yaml"), "/metadata/name"));
    let policy_map = base("policy.yaml");
    assert_eq!(volumes.iter().find_map(|v| v["configMap"]["name"].as_str()), policy_map["metadata"]["name"].as_str());

    // The container's command, run: paths mapped onto a corpus, the policy ConfigMap's file and
    // a scratch directory; the address onto loopback (Serve adds it).
    let argv: Vec<&str> = c["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("string")).collect();
    assert_eq!(argv[..2], ["serve", "/data/pairs"]);
    let dir = tempfile::tempdir().expect("tempdir");
    recent_corpus(&dir.path().join("pairs"), &[]);
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, str_at(&policy_map, "/data/policy.toml")).expect("policy");
    let work = dir.path().join("scratch");
    let extra: Vec<String> = argv[2..]
        .iter()
        .filter(|a| !a.starts_with("--listen="))
        .map(|a| {
            a.replace("/etc/shadowdiff/policy.toml", policy.to_str().expect("utf-8"))
                .replace("/tmp/serve", work.to_str().expect("utf-8"))
        })
        .collect();
    let serve = Serve::start(&dir.path().join("pairs"), &extra.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(serve.get("/healthz").0, 200);
    let (status, body) = serve.get("/v1/verdict?since=-1h");
    assert_eq!(status, 200, "{body}");
    assert!(serve.stop().success(), "exits 0 on SIGTERM, as the kubelet stops it");
}
