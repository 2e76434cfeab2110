//! The sharded analysis as deploy/ runs it (issue 14, item 4): the Kubernetes overlay
//! `deploy/kubernetes/overlays/sharded` (a plan Job, an Indexed Job with one shard per completion
//! index, a merge Job) and the Argo WorkflowTemplate `deploy/argo-workflows/sharded-analysis.yaml`
//! (plan, a fan-out over `withSequence`, merge). Their exact commands — args as the manifests
//! write them, `$(VAR)` expanded from the ConfigMaps they read, `JOB_COMPLETION_INDEX` (or Argo's
//! `{{item}}`) set to 0 … N-1 — run against a real S3 server (moto_server on loopback), then
//! merge, and the merged verdict.json must equal a single `analyze` of the same bucket, paths
//! aside; re-running one index rewrites the same partial. The Job manifests are validated with
//! kubernetes-validate --strict (every overlay is, in tests/deploy.rs); the WorkflowTemplate has
//! no schema there, so its structure, parameter names and commands are checked here by hand.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{
    Render, container_env, containers, deploy_dir, expand, flag, help_flags, pod_spec, renders, strings, tool,
    validate, yaml_file,
};
use crate::object_store::{Moto, download, moto_binary, upload_dir};
use crate::support::{corpus_with_effects, shadowdiff, stderr};

/// Stands for the shard index in a command until it is run.
const INDEX: &str = "{index}";

/// The three commands of a sharded analysis, as one manifest writes them (variables expanded,
/// the shard's index left as INDEX), and the environment its containers get from the cluster.
struct Sharded {
    source: &'static str,
    plan: Vec<String>,
    shard: Vec<String>,
    merge: Vec<String>,
    shards: u64,
    env: Vec<(String, String)>,
}

fn sharded_render() -> Option<&'static Render> {
    Some(renders()?.iter().find(|r| r.name == "sharded").expect("overlays/sharded"))
}

fn job<'a>(render: &'a Render, name: &str) -> &'a Value {
    render.find("Job", name).unwrap_or_else(|| panic!("overlays/sharded has no Job {name}"))
}

/// The one shadowdiff container of a Job, with its args expanded as Kubernetes expands them.
fn job_command(render: &Render, job: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let spec = pod_spec(job).expect("a Pod template");
    let mut shadowdiff: Vec<&Value> = containers(spec).collect();
    assert_eq!(shadowdiff.len(), 1, "{}: one container", job["metadata"]["name"]);
    let c = shadowdiff.remove(0);
    let env = container_env(render, c, &[("JOB_COMPLETION_INDEX", INDEX.to_owned())]);
    (strings(&c["args"]).iter().map(|a| expand(a, &env)).collect(), env)
}

/// The overlay's Jobs, checked for what makes them a sharded run, and their commands.
fn kubernetes_commands(render: &Render) -> Sharded {
    let (plan_job, shards_job, merge_job) =
        (job(render, "shadowdiff-plan"), job(render, "shadowdiff-shards"), job(render, "shadowdiff-merge"));
    let (plan, env) = job_command(render, plan_job);
    let (shard, _) = job_command(render, shards_job);
    let (merge, _) = job_command(render, merge_job);

    // One Pod per shard: an Indexed Job with as many completions as the plan has shards, each
    // Pod told its index by the annotation Kubernetes sets on it.
    let spec = &shards_job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let shards = spec["completions"].as_u64().expect("completions");
    assert_eq!(flag(&plan, "shards"), Some(shards.to_string().as_str()), "plan's --shards = completions");
    assert!(spec["parallelism"].as_u64().is_some_and(|p| (1..=shards).contains(&p)), "parallelism");
    assert_eq!(flag(&shard, "shard"), Some(INDEX), "the shard is the completion index");
    let index_env = containers(pod_spec(shards_job).expect("pod"))
        .flat_map(|c| c["env"].as_array().into_iter().flatten())
        .find(|e| e["name"] == "JOB_COMPLETION_INDEX")
        .expect("JOB_COMPLETION_INDEX declared");
    assert_eq!(
        index_env["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    // No ordering between Jobs: the shards and the merge wait, suspended, for their turn.
    assert!(plan_job["spec"]["suspend"].is_null() || plan_job["spec"]["suspend"] == false, "plan runs at once");
    assert_eq!(spec["suspend"], true, "the shards wait for the plan");
    assert_eq!(merge_job["spec"]["suspend"], true, "merge waits for the shards");
    // A verdict (merge's 1 or 3) or a bad input (2) is an answer: never retried.
    let codes = |job: &Value| -> Vec<u64> {
        job["spec"]["podFailurePolicy"]["rules"]
            .as_array()
            .expect("podFailurePolicy")
            .iter()
            .filter(|r| r["action"] == "FailJob")
            .flat_map(|r| r["onExitCodes"]["values"].as_array().expect("values").iter().filter_map(Value::as_u64))
            .collect()
    };
    assert_eq!(codes(merge_job), [1, 2, 3]);
    assert_eq!(codes(shards_job), [2]);
    assert_eq!(codes(plan_job), [2]);
    Sharded { source: "deploy/kubernetes/overlays/sharded", plan, shard, merge, shards, env }
}

/// Runs the plan, every shard (and shard 0 a second time: the same partial), then merge, with
/// the store's endpoint added to the manifests' environment; local paths (the policy, merge's
/// --out) under `work`. Returns merge's exit code and verdict.json.
fn run_sharded(moto: &Moto, s: &Sharded, policy: &str, work: &Path) -> (i32, Value) {
    std::fs::create_dir_all(work).expect("work dir");
    let policy_file = work.join("policy.toml");
    std::fs::write(&policy_file, policy).expect("write the policy");
    let out = work.join("merged");
    let local = |args: &[String], index: u64| -> Vec<String> {
        args.iter()
            .map(|a| match a.split_once('=') {
                Some(("--policy", _)) => format!("--policy={}", policy_file.display()),
                Some(("--out", v)) if v.starts_with('/') => format!("--out={}", out.display()),
                _ => a.replace(INDEX, &index.to_string()),
            })
            .collect()
    };
    let run = |args: Vec<String>, index: u64| {
        let mut env = s.env.clone();
        env.push(("JOB_COMPLETION_INDEX".into(), index.to_string()));
        env.extend(moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)));
        shadowdiff().args(&args).envs(env).output().expect("shadowdiff runs")
    };
    let o = run(local(&s.plan, 0), 0);
    assert!(o.status.success(), "{}: plan: {}", s.source, stderr(&o));

    let partials = flag(&s.shard, "partial-out").expect("--partial-out");
    let (bucket, prefix) = partials.strip_prefix("s3://").and_then(|r| r.split_once('/')).expect("s3 URL");
    for index in 0..s.shards {
        let o = run(local(&s.shard, index), index);
        assert!(o.status.success(), "{}: shard {index}: {}", s.source, stderr(&o));
    }
    let fetch = |tag: &str| -> Vec<(String, Vec<u8>)> {
        let keys = moto.keys(bucket, &format!("{prefix}/shard-00000/"));
        assert!(keys.iter().any(|k| k.ends_with("/partial.json")), "{}: shard 0's partial: {keys:?}", s.source);
        keys.iter()
            .map(|k| {
                let file = work.join(format!("{tag}-{}", k.rsplit('/').next().expect("name")));
                download(moto, bucket, k, &file);
                (k.clone(), std::fs::read(&file).expect("downloaded"))
            })
            .collect()
    };
    let first = fetch("first");
    let o = run(local(&s.shard, 0), 0);
    assert!(o.status.success(), "{}: shard 0 again: {}", s.source, stderr(&o));
    assert!(first == fetch("again"), "{}: re-running index 0 rewrote a different partial", s.source);

    let o = run(local(&s.merge, 0), 0);
    let code = o.status.code().expect("merge exits");
    assert!(matches!(code, 0 | 1 | 3), "{}: merge exited {code}: {}", s.source, stderr(&o));
    let verdict = std::fs::read_to_string(out.join("verdict.json")).expect("merge writes verdict.json");
    (code, serde_json::from_str(&verdict).expect("verdict.json"))
}

/// verdict.json without what names where it was written.
fn comparable(mut verdict: Value) -> Value {
    verdict.as_object_mut().expect("an object").remove("outputs");
    verdict
}

/// A bucket holding a corpus with a secondary, planted regressions and more files than shards,
/// where the manifests' PAIRS_URL points; and the single-process analyze of it, with the same
/// environment and policy.
struct Bucket {
    moto: Moto,
    single: (i32, Value),
    dir: tempfile::TempDir,
}

fn bucket(env: &[(String, String)], policy: &str) -> Option<Bucket> {
    let moto = Moto::start(&moto_binary()?, false);
    let pairs_url = &env.iter().find(|(k, _)| k == "PAIRS_URL").expect("PAIRS_URL in the ConfigMap").1;
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs");
    let effects = ["field-removed:/legacy_code@/api/orders/{id}", "latency-shift:1.6@/api/search"];
    let summary = corpus_with_effects(&pairs, 3_000, 7, &effects, |c| c.rotate_rows = 400);
    assert!(summary.files.len() >= 6, "more files than shards");
    let bucket = pairs_url.strip_prefix("s3://").and_then(|r| r.split('/').next()).expect("an s3:// PAIRS_URL");
    moto.create_bucket(bucket);
    upload_dir(&moto, pairs_url, &pairs);

    let policy_file = dir.path().join("policy.toml");
    std::fs::write(&policy_file, policy).expect("write the policy");
    let out = dir.path().join("single");
    let mut all = env.to_vec();
    all.extend(moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)));
    let o = shadowdiff()
        .args(["analyze", pairs_url, "--quiet", "--policy"])
        .arg(&policy_file)
        .arg("--out")
        .arg(&out)
        .envs(all)
        .output()
        .expect("analyze runs");
    let code = o.status.code().expect("analyze exits");
    assert_eq!(code, 1, "the planted regressions fail the single analyze: {}", stderr(&o));
    let verdict = std::fs::read_to_string(out.join("verdict.json")).expect("verdict.json");
    Some(Bucket { moto, single: (code, serde_json::from_str(&verdict).expect("JSON")), dir })
}

fn policy(render: &Render) -> String {
    let map = render.find("ConfigMap", "shadowdiff-policy").expect("the policy ConfigMap");
    map["data"]["policy.toml"].as_str().expect("policy.toml").to_owned()
}

/// Every flag of a command is one its subcommand lists in --help.
fn flags_exist(source: &str, args: &[String]) {
    let sub = args[0].as_str();
    let known = help_flags(sub);
    for name in args[1..].iter().filter_map(|a| a.strip_prefix("--")).map(|a| a.split('=').next().expect("name")) {
        assert!(known.contains(name), "{source}: `shadowdiff {sub}` has no flag --{name}");
    }
}

#[test]
fn the_indexed_job_analyzes_a_bucket_shard_by_shard_and_merges_to_one_analyze() {
    let Some(render) = sharded_render() else { return };
    let s = kubernetes_commands(render);
    for args in [&s.plan, &s.shard, &s.merge] {
        flags_exist(s.source, args);
    }
    let policy = policy(render);
    let Some(b) = bucket(&s.env, &policy) else { return };
    let (code, verdict) = run_sharded(&b.moto, &s, &policy, &b.dir.path().join("kubernetes"));
    assert_eq!(code, b.single.0, "merge's exit code is analyze's");
    assert_eq!(comparable(verdict), comparable(b.single.1.clone()), "merged verdict.json = one analyze's");

    // The validator reads Job fields strictly: a misspelt one in the Indexed Job is refused.
    let Some(validator) = tool("kubernetes-validate") else { return };
    let mut broken = job(render, "shadowdiff-shards").clone();
    broken["spec"]["completionsMode"] = Value::from("Indexed");
    let err = validate(&validator, &[&broken], b.dir.path()).expect_err("a misspelt field fails");
    assert!(err.contains("completionsMode"), "{err}");
}

/// `{{workflow.parameters.NAME}}`, `{{inputs.parameters.NAME}}`, `{{item}}`, `{{workflow.name}}`:
/// every Argo expression in `text`.
fn expressions(text: &str) -> Vec<String> {
    text.split("{{").skip(1).filter_map(|r| r.split_once("}}")).map(|(e, _)| e.trim().to_owned()).collect()
}

/// The template's args with Argo's expressions replaced: workflow parameters by their defaults,
/// the workflow's name by `name`, the template's input `index` by INDEX.
fn argo_args(template: &Value, parameters: &[(String, String)], name: &str) -> Vec<String> {
    strings(&template["container"]["args"])
        .iter()
        .map(|a| {
            let mut a = a.replace("{{workflow.name}}", name).replace("{{inputs.parameters.index}}", INDEX);
            for (k, v) in parameters {
                a = a.replace(&format!("{{{{workflow.parameters.{k}}}}}"), v);
            }
            assert!(!a.contains("{{"), "an expression left in {a}");
            a
        })
        .collect()
}

#[test]
fn the_argo_workflow_runs_the_same_commands_and_merges_to_one_analyze() {
    let Some(render) = sharded_render() else { return };
    let file = deploy_dir().join("argo-workflows/sharded-analysis.yaml");
    let docs = yaml_file(&file);
    assert_eq!(docs.len(), 1, "one WorkflowTemplate");
    let wf = &docs[0];
    assert_eq!(wf["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(wf["kind"], "WorkflowTemplate");
    let spec = &wf["spec"];
    let templates = spec["templates"].as_array().expect("templates");
    let template =
        |name: &str| templates.iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("no template {name}"));
    let parameters: Vec<(String, String)> = spec["arguments"]["parameters"]
        .as_array()
        .expect("arguments.parameters")
        .iter()
        .map(|p| (p["name"].as_str().expect("name").to_owned(), p["value"].as_str().expect("a default").to_owned()))
        .collect();
    let declared: BTreeSet<&str> = parameters.iter().map(|(k, _)| k.as_str()).collect();

    // The entrypoint: plan, then one shard step per index (withSequence counts from 0), then merge.
    let main = template(spec["entrypoint"].as_str().expect("entrypoint"));
    let steps = main["steps"].as_array().expect("steps: a list of parallel groups");
    let group = |i: usize| -> &Value {
        let g = steps[i].as_array().expect("a group");
        assert_eq!(g.len(), 1, "one step in group {i}");
        &g[0]
    };
    assert_eq!(steps.len(), 3, "plan, shards, merge, in that order");
    assert_eq!(group(0)["template"], "plan");
    assert_eq!(group(2)["template"], "merge");
    let fan = group(1);
    assert_eq!(fan["template"], "shard");
    assert_eq!(fan["withSequence"]["count"], "{{workflow.parameters.shards}}");
    assert!(fan["withSequence"]["start"].is_null(), "indexes from 0");
    let passed = fan["arguments"]["parameters"].as_array().expect("the shard's parameters");
    assert_eq!(passed.len(), 1);
    assert_eq!(passed[0]["value"], "{{item}}");

    // Every expression names something that exists; the index reaches the shard as its input.
    let shard = template("shard");
    let inputs: BTreeSet<&str> = shard["inputs"]["parameters"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(inputs, BTreeSet::from([passed[0]["name"].as_str().expect("name")]));
    let text = serde_json::to_string(wf).expect("JSON");
    for e in expressions(&text) {
        let ok = match e.split_once('.') {
            Some(("workflow", "name")) => true,
            Some(("workflow", rest)) => rest.strip_prefix("parameters.").is_some_and(|p| declared.contains(p)),
            Some(("inputs", rest)) => rest.strip_prefix("parameters.").is_some_and(|p| inputs.contains(p)),
            None => e == "item",
            _ => false,
        };
        assert!(ok, "{}: {{{{{e}}}}} names nothing declared", file.display());
    }

    // Pods: volumes that exist, the ConfigMaps the sharded overlay deploys, the executor's own
    // ServiceAccount (the steps' has no token), and retries only for lost Pods, never exit codes.
    let volumes = |t: &Value| -> BTreeSet<String> {
        [&spec["volumes"], &t["volumes"]]
            .iter()
            .flat_map(|v| v.as_array().into_iter().flatten())
            .map(|v| v["name"].as_str().expect("name").to_owned())
            .collect()
    };
    for name in ["plan", "shard", "merge"] {
        let t = template(name);
        let c = &t["container"];
        for m in c["volumeMounts"].as_array().expect("volumeMounts") {
            assert!(volumes(t).contains(m["name"].as_str().expect("name")), "{name}: no volume {}", m["name"]);
        }
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(t["retryStrategy"]["retryPolicy"], "OnError", "{name}: a verdict is never retried");
        assert_eq!(c["image"], "registry.example.com/shadowdiff:0.1.0", "{name}");
    }
    for v in spec["volumes"].as_array().expect("volumes") {
        if let Some(map) = v["configMap"]["name"].as_str() {
            assert!(render.find("ConfigMap", map).is_some(), "no ConfigMap {map}");
        }
        if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
            assert!(render.find("PersistentVolumeClaim", claim).is_some(), "no PVC {claim}");
        }
    }
    assert_eq!(spec["serviceAccountName"], "shadowdiff");
    assert_eq!(spec["automountServiceAccountToken"], false);
    let rbac = yaml_file(&deploy_dir().join("argo-workflows/executor-rbac.yaml"));
    let executor = spec["executor"]["serviceAccountName"].as_str().expect("executor.serviceAccountName");
    assert!(rbac.iter().any(|o| o["kind"] == "ServiceAccount" && o["metadata"]["name"] == executor));
    let role = rbac.iter().find(|o| o["kind"] == "Role").expect("a Role");
    let rule = &role["rules"][0];
    assert_eq!(
        (&rule["apiGroups"][0], &rule["resources"][0]),
        (&Value::from("argoproj.io"), &Value::from("workflowtaskresults"))
    );
    assert_eq!(strings(&rule["verbs"]), ["create", "patch"]);
    if let Some(validator) = tool("kubernetes-validate") {
        let objects: Vec<&Value> = rbac.iter().collect();
        let dir = tempfile::tempdir().expect("tempdir");
        validate(&validator, &objects, dir.path()).unwrap_or_else(|e| panic!("executor-rbac.yaml: {e}"));
    }

    // The commands: as the Kubernetes Jobs', flag for flag, and they run to the same verdict.
    // Kubernetes expands $(VAR) in the args from the containers' envFrom, as for the Jobs.
    let name = "shadowdiff-sharded-analysis-x7k2p";
    let k8s = kubernetes_commands(render);
    let env = k8s.env.clone();
    let expanded = |t: &str| -> Vec<String> {
        argo_args(template(t), &parameters, name).iter().map(|a| expand(a, &env)).collect()
    };
    let shards: u64 = parameters.iter().find(|(k, _)| k == "shards").expect("shards").1.parse().expect("a number");
    let argo = Sharded {
        source: "deploy/argo-workflows/sharded-analysis.yaml",
        plan: expanded("plan"),
        shard: expanded("shard"),
        merge: expanded("merge"),
        shards,
        env: env.clone(),
    };
    let flag_names = |args: &[String]| -> Vec<String> {
        args.iter().map(|a| a.split('=').next().expect("name").to_owned()).filter(|a| a.starts_with("--")).collect()
    };
    for (a, k) in [(&argo.plan, &k8s.plan), (&argo.shard, &k8s.shard), (&argo.merge, &k8s.merge)] {
        assert_eq!(a[0], k[0], "the same subcommand");
        assert_eq!(flag_names(a), flag_names(k), "`{}`: the same flags as the Job's", a[0]);
        flags_exist(argo.source, a);
    }
    assert_eq!(flag(&argo.plan, "shards"), Some(shards.to_string().as_str()));
    assert!(
        flag(&argo.shard, "plan").is_some_and(|p| p.contains(name)),
        "each Workflow writes under its own name: {:?}",
        argo.shard
    );

    let policy = policy(render);
    let Some(b) = bucket(&env, &policy) else { return };
    let (code, verdict) = run_sharded(&b.moto, &argo, &policy, &b.dir.path().join("argo"));
    assert_eq!(code, b.single.0, "the Workflow's merge exits as analyze does");
    assert_eq!(comparable(verdict), comparable(b.single.1.clone()), "merged verdict.json = one analyze's");
}
