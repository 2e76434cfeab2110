//! `shadowdiff capture` as a real process in front of fixture services on loopback: load then
//! SIGTERM (files valid, every served response recorded or counted dropped), SIGKILL (earlier
//! rotated files stay readable), and bad flags or configuration (exit 2, the setting named).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use shadowdiff_fixtures::FaultKind;
use shadowdiff_fixtures::service::upstream;
use shadowdiff_format::reader::PairFile;
use shadowdiff_format::{PairReader, resolve_inputs};

use crate::support::{run, shadowdiff, signal, stderr, wait_with_deadline};

/// A running `shadowdiff capture` and the addresses it printed.
struct Running {
    child: Child,
    addr: String,
    admin: String,
}

fn start(args: &[&str]) -> Running {
    let mut child = shadowdiff()
        .arg("capture")
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "warn"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("shadowdiff capture starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || lines.next().and_then(Result::ok).unwrap_or_default();
    let addr = next().strip_prefix("listening on ").map(str::to_owned).expect("the proxy address on stdout");
    let admin = next().strip_prefix("admin on ").map(str::to_owned).expect("the admin address on stdout");
    Running { child, addr, admin }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn pair_files(dir: &Path) -> Vec<std::path::PathBuf> {
    resolve_inputs(&[dir.to_str().expect("utf-8")]).unwrap_or_default()
}

/// Under load, SIGTERM: the process drains and exits 0, every file is whole, and every response
/// the clients received is a row on disk or counted as dropped in the files' metadata.
#[test]
// A synchronous test around a child process (OS clock) that reads the proxy's whole answers.
#[allow(clippy::disallowed_methods)]
fn sigterm_under_load_drains_and_accounts_for_every_response() {
    let rt = runtime();
    let (base, canary) = rt.block_on(async {
        let base = upstream().route("/users/1", json!({"id": 1, "name": "Ada"})).run().await.expect("baseline");
        let canary = upstream()
            .route("/users/1", json!({"id": 1, "name": "Ada"}))
            .fault(FaultKind::Reset, 0.05)
            .run()
            .await
            .expect("canary");
        (base, canary)
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf-8").to_owned();
    let mut proxy =
        start(&["--baseline", &base.url(), "--canary", &canary.url(), "--out", &out, "--rotate-rows", "300"]);

    let served = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/users/1", proxy.addr);
    let load = {
        let (served, stop) = (Arc::clone(&served), Arc::clone(&stop));
        rt.spawn(async move {
            let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..8 {
                let (client, served, stop, url) = (client.clone(), Arc::clone(&served), Arc::clone(&stop), url.clone());
                tasks.spawn(async move {
                    // Bounded: at most 2,000 requests per task, and stop on the first refusal.
                    for _ in 0..2_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let Ok(resp) = client.get(url.parse().expect("uri")).await else { break };
                        let ok = resp.status() == 200;
                        if resp.into_body().collect().await.is_ok() && ok {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        })
    };
    // Let load build up, then SIGTERM while requests are in flight.
    let t = Instant::now();
    while served.load(Ordering::Relaxed) < 600 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&proxy.child, "-TERM");
    let status = wait_with_deadline(&mut proxy.child, Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    rt.block_on(load).expect("load task");
    assert!(status.success(), "{status:?}");
    let served = served.load(Ordering::Relaxed);
    assert!(served >= 600, "{served}");

    let files = pair_files(dir.path());
    assert!(files.len() >= 2, "rotation by rows: {files:?}");
    let infos: Vec<_> = files.iter().map(|f| PairFile::open(f).expect("every file is whole").info).collect();
    let rows: u64 = infos.iter().map(|i| i.rows).sum();
    let last = infos.iter().max_by_key(|i| i.file_seq).expect("a file");
    let dropped = last.counters["dropped"];
    assert_eq!(rows + dropped, served, "recorded {rows} + dropped {dropped} = served; counters {:?}", last.counters);
    assert_eq!(last.counters["recorded"], rows);
    assert_eq!(last.counters["seen"], rows + dropped + last.counters["skipped"]);
    assert_eq!(last.config["canary"], canary.url());
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "no temporaries after a clean stop: {leftovers:?}");
    let _ = PairReader::read_all_records(&[&out]).expect("readable");
    drop((base, canary));
}

/// SIGKILL mid-run: files closed by rotation before the kill are whole and readable.
#[test]
// A synchronous test around a child process (OS clock) that reads the proxy's whole answers.
#[allow(clippy::disallowed_methods)]
fn sigkill_leaves_earlier_rotated_files_readable() {
    let rt = runtime();
    let base = rt.block_on(async { upstream().route("/users/1", json!({"id": 1})).run().await.expect("baseline") });
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf-8").to_owned();
    let mut proxy = start(&["--baseline", &base.url(), "--canary", &base.url(), "--out", &out, "--rotate-rows", "50"]);
    let url = format!("{}/users/1", proxy.addr);
    rt.block_on(async {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        for _ in 0..180 {
            let resp = client.get(url.parse().expect("uri")).await.expect("answer");
            resp.into_body().collect().await.expect("body");
        }
    });
    // Three files of 50 close as the 150th pair is written; wait for them.
    let t = Instant::now();
    while pair_files(dir.path()).len() < 3 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&proxy.child, "-KILL");
    let _ = wait_with_deadline(&mut proxy.child, Duration::from_secs(10));
    let files = pair_files(dir.path());
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert_eq!(PairFile::open(f).expect("whole").info.rows, 50);
    }
    let o = run(&["inspect", "--json", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(j["rows"], 150);
}

/// The admin listener of the real process answers while it runs.
#[test]
// Reads whole answers from the admin listener under test.
#[allow(clippy::disallowed_methods)]
fn admin_endpoints_answer() {
    let rt = runtime();
    let base = rt.block_on(async { upstream().run().await.expect("baseline") });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut proxy =
        start(&["--baseline", &base.url(), "--canary", &base.url(), "--out", dir.path().to_str().expect("utf-8")]);
    let (health, metrics) = rt.block_on(async {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let get = |p: &str| {
            let c = client.clone();
            let u = format!("{}{p}", proxy.admin);
            async move {
                c.get(u.parse().expect("uri"))
                    .await
                    .expect("answer")
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes()
            }
        };
        (get("/healthz").await, get("/metrics").await)
    });
    assert_eq!(&health[..], b"ok\n");
    assert!(String::from_utf8_lossy(&metrics).contains("# TYPE shadowdiff_requests_total counter"));
    signal(&proxy.child, "-INT");
    assert!(wait_with_deadline(&mut proxy.child, Duration::from_secs(10)).success());
}

/// Bad flags and configuration: exit 2 and one sentence naming the flag or key.
#[test]
fn bad_settings_exit_2_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let out = out.to_str().expect("utf-8");
    let config = dir.path().join("capture.toml");
    let base = ["capture", "--baseline", "http://127.0.0.1:9", "--canary", "http://127.0.0.1:9", "--out", out];
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["capture", "--canary", "http://x", "--out", out], "", "--baseline is required"),
        ([&base[..], &["--sample-rate", "1.5"]].concat(), "", "--sample-rate must be between 0 and 1"),
        ([&base[..], &["--mirror-timeout", "soon"]].concat(), "", "--mirror-timeout must be a duration"),
        ([&base[..], &["--listen", "nowhere"]].concat(), "", "--listen must be an address"),
        ([&base[..], &["--tls-cert", "/nonexistent/cert.pem"]].concat(), "", "--tls-key is required"),
        (
            [&base[..], &["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"]].concat(),
            "",
            "--tls-cert names /nonexistent/c.pem",
        ),
        ([&base[..], &["--hash-key-env", "SHADOWDIFF_SURELY_UNSET_VAR"]].concat(), "", "--hash-key-env names"),
        (
            [&base[..], &["--config", config.to_str().expect("utf-8")]].concat(),
            "[sampling]\nrate = 0.5\nmirror_methods = [\"GET\"]\n",
            "line 3: unknown field `mirror_methods`",
        ),
        (
            [&base[..], &["--config", config.to_str().expect("utf-8")]].concat(),
            "[recorder]\nrotate_age = \"0s\"\n",
            "recorder.rotate_age",
        ),
        (
            vec!["capture", "--baseline", "http://x", "--canary", "http://y", "--out", "/proc/no/such"],
            "",
            "--out names /proc/no/such",
        ),
    ];
    for (args, toml, expected) in cases {
        std::fs::write(&config, toml).expect("write config");
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(expected), "{args:?}: expected {expected:?} in {err:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    }
    assert!(!Path::new(out).exists(), "nothing is created when the settings are bad");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}
