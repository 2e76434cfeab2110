//! Pair files in object storage, against a real S3-compatible server on loopback: `moto_server`
//! (PyPI `moto[server]`, installed into .venv by scripts/test), started by each test on a free
//! port. capture uploads to `s3://` under load and drains on SIGTERM (every recorded pair in a
//! whole object); SIGKILL leaves no partial object; analyze, replay and inspect read only
//! `s3://`; refused credentials, a missing bucket and an unknown scheme are exit 2 with a
//! sentence; the store going away and coming back, with a spool budget, leaves counters that add
//! up; --retain prunes old local partitions. Credentials reach the binary through its environment
//! only, as in production.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use shadowdiff_fixtures::service::upstream;

use crate::support::{python, repo_root, shadowdiff, signal, stderr, wait_with_deadline};

/// `moto_server` from the test virtualenv (or beside $SHADOWDIFF_PYTHON, or on PATH). Missing:
/// the test is skipped with the reason, or fails under CI=true.
pub(crate) fn moto_binary() -> Option<PathBuf> {
    let candidates = [
        repo_root().join(".venv/bin/moto_server"),
        python().parent().map(|d| d.join("moto_server")).unwrap_or_default(),
    ];
    let found = candidates.into_iter().find(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("moto_server")).find(|p| p.is_file()))
    });
    if found.is_none() {
        let msg = "moto_server is not installed (scripts/test installs moto[server] from tests/requirements.txt)";
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{msg}");
        eprintln!("skipped: {msg}");
    }
    found
}

/// A running moto_server on 127.0.0.1; killed when dropped.
pub(crate) struct Moto {
    bin: PathBuf,
    pub(crate) port: u16,
    auth: bool,
    child: Child,
}

impl Moto {
    /// Start on a free port (found by binding port 0). With `auth`, every request must be signed
    /// by a key moto knows (none exist), so any credential is refused.
    pub(crate) fn start(bin: &Path, auth: bool) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let child = Self::spawn(bin, port, auth);
        let moto = Moto { bin: bin.to_owned(), port, auth, child };
        moto.wait_ready();
        moto
    }

    fn spawn(bin: &Path, port: u16, auth: bool) -> Child {
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
        if auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        cmd.spawn().expect("moto_server starts")
    }

    // Polls a child process from a plain thread: the OS clock.
    #[allow(clippy::disallowed_methods)]
    fn wait_ready(&self) {
        let t = Instant::now();
        while http(self.port, "GET", "/").is_none() {
            assert!(t.elapsed() < Duration::from_secs(60), "moto_server did not answer on port {}", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The store goes away: the process is killed (moto keeps its buckets in memory, so they go too).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The store comes back on the same port, empty.
    fn restart(&mut self) {
        self.child = Self::spawn(&self.bin, self.port, self.auth);
        self.wait_ready();
    }

    pub(crate) fn create_bucket(&self, bucket: &str) {
        let (status, body) = http(self.port, "PUT", &format!("/{bucket}")).expect("moto answers");
        assert_eq!(status, 200, "create bucket {bucket}: {body}");
    }

    /// Every key under `prefix`, from the store's own listing (not ours).
    pub(crate) fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (status, body) =
            http(self.port, "GET", &format!("/{bucket}?list-type=2&prefix={prefix}")).expect("moto answers");
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("<IsTruncated>true"), "more than one page of keys");
        body.split("<Key>").skip(1).filter_map(|k| k.split_once("</Key>")).map(|(k, _)| k.to_owned()).collect()
    }

    /// The environment a shadowdiff process gets: credentials and endpoint, as in production.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "shadowdiff-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "shadowdiff-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// Run `shadowdiff ARGS...` with this store's environment.
    pub(crate) fn run(&self, args: &[&str]) -> std::process::Output {
        shadowdiff().args(args).envs(self.env()).output().expect("the shadowdiff binary runs")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One plain HTTP/1.1 request (unsigned: moto accepts those unless `auth`); the status and body.
pub(crate) fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    http_with_body(port, method, path, b"")
}

pub(crate) fn http_with_body(port: u16, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let n = body.len();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n")
        .ok()?;
    s.write_all(body).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// Puts every file under `dir` into the store at `url` (s3://BUCKET/PREFIX), keeping its path
/// below `dir` as the rest of its key (so Hive partitions stay partitions).
pub(crate) fn upload_dir(moto: &Moto, url: &str, dir: &Path) {
    let (bucket, prefix) = url.strip_prefix("s3://").and_then(|r| r.split_once('/')).expect("s3://BUCKET/PREFIX");
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read the corpus") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
            let body = std::fs::read(&path).expect("read a pair file");
            let (status, answer) =
                http_with_body(moto.port, "PUT", &format!("/{bucket}/{prefix}/{key}"), &body).expect("moto answers");
            assert_eq!(status, 200, "put {key}: {answer}");
        }
    }
}

/// Download an object with boto3 (moto's own dependency), a client other than ours.
pub(crate) fn download(moto: &Moto, bucket: &str, key: &str, to: &Path) {
    let script = "import sys, boto3\n\
                  s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                  aws_access_key_id='x', aws_secret_access_key='x')\n\
                  s3.download_file(sys.argv[2], sys.argv[3], sys.argv[4])\n";
    let o = Command::new(python())
        .args(["-c", script, &format!("http://127.0.0.1:{}", moto.port), bucket, key])
        .arg(to)
        .output()
        .expect("python runs");
    assert!(o.status.success(), "boto3 download: {}", String::from_utf8_lossy(&o.stderr));
}

/// A running `shadowdiff capture` with its addresses; its stderr is collected by a thread.
struct Capture {
    child: Child,
    addr: String,
    admin: String,
    log: std::thread::JoinHandle<String>,
}

fn capture(moto: &Moto, args: &[&str]) -> Capture {
    let mut child = shadowdiff()
        .arg("capture")
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "warn"])
        .args(args)
        .envs(moto.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shadowdiff capture starts");
    let mut err = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || lines.next().and_then(Result::ok).unwrap_or_default();
    let Some(addr) = next().strip_prefix("listening on ").map(str::to_owned) else {
        let _ = child.wait();
        panic!("capture did not start: {}", log.join().unwrap_or_default());
    };
    let admin = next().strip_prefix("admin on ").map(str::to_owned).expect("the admin address on stdout");
    Capture { child, addr, admin, log }
}

impl Capture {
    /// The admin /metrics samples without labels, by name.
    fn metrics(&self) -> BTreeMap<String, u64> {
        let port: u16 = self.admin.rsplit(':').next().and_then(|p| p.parse().ok()).expect("admin port");
        let (_, body) = http(port, "GET", "/metrics").expect("metrics answer");
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.contains('{'))
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
            .collect()
    }

    // Polls the admin listener from a plain thread: the OS clock.
    #[allow(clippy::disallowed_methods)]
    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&BTreeMap<String, u64>) -> bool) {
        let t = Instant::now();
        loop {
            let m = self.metrics();
            if ok(&m) {
                return;
            }
            assert!(t.elapsed() < limit, "waited {limit:?} for {what}: {m:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, wait, and return the exit status and everything it logged.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        signal(&self.child, "-TERM");
        let status = wait_with_deadline(&mut self.child, Duration::from_secs(60));
        (status, self.log.join().unwrap_or_default())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// `n` GET requests from `conns` clients at once; the count answered 200 in full.
// Reads whole answers of the fixture baseline (small JSON) through the proxy under test.
#[allow(clippy::disallowed_methods)]
fn load(rt: &tokio::runtime::Runtime, url: &str, conns: usize, n: u64, stop: &Arc<AtomicBool>) -> u64 {
    let served = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..conns {
            let (client, served, sent, stop, url) =
                (client.clone(), Arc::clone(&served), Arc::clone(&sent), Arc::clone(stop), url.to_owned());
            tasks.spawn(async move {
                while sent.fetch_add(1, Ordering::Relaxed) < n && !stop.load(Ordering::Relaxed) {
                    let Ok(resp) = client.get(url.parse().expect("uri")).await else { break };
                    let ok = resp.status() == 200;
                    if resp.into_body().collect().await.is_ok() && ok {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    served.load(Ordering::Relaxed)
}

fn inspect(moto: &Moto, url: &str) -> Value {
    let o = moto.run(&["inspect", "--json", url]);
    assert!(o.status.success(), "inspect {url}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("inspect prints JSON")
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    walkdir(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect()
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Under load then SIGTERM: every recorded pair is in a whole object under its Hive key, the
/// spool is empty, the counters match; then analyze, replay and inspect work from s3:// alone.
#[test]
fn capture_to_s3_under_load_then_sigterm_uploads_every_pair_and_s3_is_readable() {
    let Some(bin) = moto_binary() else { return };
    let moto = Moto::start(&bin, false);
    moto.create_bucket("pairs");
    let rt = runtime();
    let base = rt.block_on(async {
        upstream().route("/users/1", json!({"id": 1, "name": "Ada"})).run().await.expect("baseline")
    });
    let spool = tempfile::tempdir().expect("spool");
    let proxy = capture(
        &moto,
        &[
            "--baseline",
            &base.url(),
            "--canary",
            &base.url(),
            "--out",
            "s3://pairs/shadow/run1",
            "--spool",
            spool.path().to_str().expect("utf-8"),
            "--rotate-rows",
            "250",
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let served = load(&rt, &format!("{}/users/1", proxy.addr), 8, 1_500, &stop);
    assert!(served >= 1_400, "{served}");
    let (status, log) = proxy.stop();
    assert!(status.success(), "{status:?}: {log}");
    assert!(parquet_files(spool.path()).is_empty(), "the spool drained: {:?}", walkdir(spool.path()));

    let keys = moto.keys("pairs", "shadow/run1/");
    assert!(keys.len() >= 6, "rotation by rows: {keys:?}");
    for k in &keys {
        let name = k.rsplit('/').next().unwrap_or_default();
        let parts: Vec<&str> = k.split('/').collect();
        assert!(parts[2].starts_with("dt=") && parts[3].starts_with("hour="), "Hive layout: {k}");
        assert!(name.starts_with("capture") && name.ends_with(".parquet") && name.len() > 50, "run id in {k}");
    }
    let j = inspect(&moto, "s3://pairs/shadow/run1");
    let rows = j["rows"].as_u64().expect("rows");
    let c = &j["counters"];
    assert_eq!(j["files"].as_array().map(Vec::len), Some(keys.len()), "every object is a whole pair file");
    assert_eq!(c["recorded"].as_u64(), Some(rows), "{c}");
    assert_eq!(rows + c["dropped"].as_u64().expect("dropped"), served, "{c}");
    // The last file's counters were taken as it closed, before its own upload.
    assert!(c["upload.files"].as_u64().is_some_and(|n| n < keys.len() as u64), "{c}");
    assert_eq!(c["spool.dropped_pairs"].as_u64(), Some(0), "{c}");
    assert!(log.contains(&format!("uploaded {} file(s) ({rows} pairs)", keys.len())), "{log}");
    assert!(log.contains("left in the spool 0 file(s) (0 pairs)"), "{log}");
    assert!(!log.contains("shadowdiff-test-secret"), "credentials never printed");

    // A glob and the partitions: the same pairs.
    let g = inspect(&moto, "s3://pairs/shadow/*/dt=*/hour=*/*.parquet");
    assert_eq!(g["rows"].as_u64(), Some(rows));
    // A window in the future prunes every partition: nothing is listed, nothing is read.
    let o = moto.run(&["analyze", "s3://pairs/shadow/run1", "--since", "2999-01-01T00:00:00Z", "--out", "/dev/null/x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("s3://pairs/shadow/run1 contains no pair files"), "{}", stderr(&o));

    // analyze reads s3:// only.
    let out = tempfile::tempdir().expect("out");
    let analysis = out.path().join("analysis");
    let o = moto.run(&["analyze", "s3://pairs/shadow/run1", "--out", analysis.to_str().expect("utf-8"), "-q"]);
    assert_ne!(o.status.code(), Some(2), "{}", stderr(&o));
    let verdict: Value =
        serde_json::from_slice(&std::fs::read(analysis.join("verdict.json")).expect("verdict.json")).expect("json");
    assert_eq!(verdict["inputs"]["pairs_in_files"].as_u64(), Some(rows), "{}", verdict["inputs"]);

    // replay from s3:// to s3://, canary only: every recorded GET is sent and its pair uploaded.
    let replay_spool = tempfile::tempdir().expect("spool");
    let o = moto.run(&[
        "replay",
        "s3://pairs/shadow/run1",
        "--canary",
        &base.url(),
        "--out",
        "s3://pairs/replayed",
        "--spool",
        replay_spool.path().to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("left in the spool: 0 file(s) (0 pairs)"), "{}", stderr(&o));
    let r = inspect(&moto, "s3://pairs/replayed");
    assert_eq!(r["rows"].as_u64(), Some(rows));
    // The files' metadata names the input as given, not the scratch copy it was read from.
    let key = moto.keys("pairs", "replayed/").pop().expect("a replayed object");
    let local = out.path().join("replayed.parquet");
    download(&moto, "pairs", &key, &local);
    let info = shadowdiff_format::reader::PairFile::open(&local).expect("a whole pair file").info;
    assert_eq!(info.config["inputs"], json!(["s3://pairs/shadow/run1"]), "{}", info.config);
    assert_eq!(r["counters"]["upload.files"].as_u64(), Some(0), "one file, counted before its own upload");
    drop(base);
}

/// SIGKILL while files are being closed and uploaded: every object the store lists is a whole
/// pair file (an object exists only once its upload completed).
#[test]
// Polls the store from a plain thread: the OS clock.
#[allow(clippy::disallowed_methods)]
fn sigkill_mid_run_leaves_no_partial_object() {
    let Some(bin) = moto_binary() else { return };
    let moto = Moto::start(&bin, false);
    moto.create_bucket("pairs");
    let rt = runtime();
    let base = rt.block_on(async { upstream().route("/users/1", json!({"id": 1})).run().await.expect("baseline") });
    let spool = tempfile::tempdir().expect("spool");
    let mut proxy = capture(
        &moto,
        &[
            "--baseline",
            &base.url(),
            "--canary",
            &base.url(),
            "--out",
            "s3://pairs/killed",
            "--spool",
            spool.path().to_str().expect("utf-8"),
            "--rotate-rows",
            "40",
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/users/1", proxy.addr);
    let driver = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || load(&runtime(), &url, 4, 20_000, &stop))
    };
    let t = Instant::now();
    while moto.keys("pairs", "killed/").len() < 5 {
        assert!(t.elapsed() < Duration::from_secs(60), "no uploads");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&proxy.child, "-KILL");
    let _ = wait_with_deadline(&mut proxy.child, Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    let _ = driver.join();
    let keys = moto.keys("pairs", "killed/");
    let j = inspect(&moto, "s3://pairs/killed");
    assert_eq!(j["files"].as_array().map(Vec::len), Some(keys.len()), "every listed object is a whole pair file");
    assert_eq!(j["rows"].as_u64(), Some(40 * keys.len() as u64), "rotation by 40 rows");
    drop(proxy.log);
    drop(base);
}

/// Refused credentials, a missing bucket, an unknown scheme: exit 2 with one sentence, from
/// capture, replay, analyze and inspect alike.
#[test]
fn refused_credentials_missing_bucket_and_unknown_schemes_are_exit_2() {
    let Some(bin) = moto_binary() else { return };
    let strict = Moto::start(&bin, true);
    let moto = Moto::start(&bin, false);
    let dir = tempfile::tempdir().expect("dir");
    let local = dir.path().join("out");
    let local = local.to_str().expect("utf-8");
    let capture_args = |out: &str| {
        vec![
            "capture".to_owned(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--baseline".into(),
            "http://127.0.0.1:9".into(),
            "--canary".into(),
            "http://127.0.0.1:9".into(),
            "--out".into(),
            out.to_owned(),
            "--spool".into(),
            dir.path().join("spool").to_string_lossy().into_owned(),
        ]
    };
    let refused = "refused the credentials from the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
    let cases: Vec<(&Moto, Vec<String>, &str)> = vec![
        (&strict, capture_args("s3://pairs/x"), refused),
        (&strict, vec!["inspect".into(), "s3://pairs/x".into()], refused),
        (&strict, vec!["analyze".into(), "s3://pairs/x".into(), "--out".into(), local.into()], refused),
        (
            &moto,
            capture_args("s3://nobucket/x"),
            "s3://nobucket/x cannot be listed: the bucket `nobucket` does not exist",
        ),
        (&moto, vec!["inspect".into(), "s3://nobucket".into()], "the bucket `nobucket` does not exist"),
        (
            &moto,
            vec![
                "replay".into(),
                "s3://nobucket/p".into(),
                "--canary".into(),
                "http://127.0.0.1:9".into(),
                "--out".into(),
                local.into(),
            ],
            "the bucket `nobucket` does not exist",
        ),
        (
            &moto,
            vec![
                "replay".into(),
                local.into(),
                "--canary".into(),
                "http://127.0.0.1:9".into(),
                "--out".into(),
                "s3://nobucket/p".into(),
            ],
            "the bucket `nobucket` does not exist",
        ),
        (
            &moto,
            capture_args("ftp://host/pairs"),
            "--out ftp://host/pairs uses the `ftp` scheme, which shadowdiff cannot read or write",
        ),
        (
            &moto,
            vec!["analyze".into(), local.into(), "--out".into(), "s3://pairs/report".into()],
            "--out s3://pairs/report is an object-store URL",
        ),
        (&moto, vec!["inspect".into(), "gopher://x/y".into()], "gopher://x/y uses the `gopher` scheme"),
    ];
    // A damaged object (no footer: what a writer killed mid-file would leave, had it been put)
    // is named by its URL, not by where it was fetched to.
    moto.create_bucket("pairs");
    let (status, body) =
        http_with_body(moto.port, "PUT", "/pairs/broken/dt=2026-11-30/hour=09/x.parquet", b"PAR1 not a whole file")
            .expect("moto answers");
    assert_eq!(status, 200, "{body}");
    let o = moto.run(&["inspect", "s3://pairs/broken"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("s3://pairs/broken/dt=2026-11-30/hour=09/x.parquet is truncated: it has no Parquet footer"),
        "{}",
        stderr(&o)
    );
    // The replay from a local directory needs one pair file to get as far as the store.
    crate::support::corpus(&dir.path().join("out"), 20, |_| {});
    for (store, args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = store.run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
        assert!(!err.contains("shadowdiff-test-secret"), "{err}");
    }
    assert!(!dir.path().join("s3:").exists() && !Path::new("s3:").exists(), "no local `s3:` directory");
}

/// The store goes away mid-run and comes back, with a spool budget: uploads fail and are
/// retried (counted), the spool drops its oldest files past --max-spool (counted with their
/// pairs), the rest is uploaded once the store is back, and recorded pairs = pairs in objects +
/// pairs dropped from the spool.
#[test]
fn store_outage_and_spool_budget_counters_add_up() {
    let Some(bin) = moto_binary() else { return };
    let mut moto = Moto::start(&bin, false);
    moto.create_bucket("pairs");
    let rt = runtime();
    let base = rt.block_on(async {
        upstream()
            .route("/users/1", json!({"id": 1, "name": "Ada", "bio": "x".repeat(400)}))
            .run()
            .await
            .expect("baseline")
    });
    let spool = tempfile::tempdir().expect("spool");
    let proxy = capture(
        &moto,
        &[
            "--baseline",
            &base.url(),
            "--canary",
            &base.url(),
            "--out",
            "s3://pairs/outage",
            "--spool",
            spool.path().to_str().expect("utf-8"),
            "--rotate-rows",
            "100",
            "--rotate-bytes",
            "16KiB",
            "--max-spool",
            "48KiB",
        ],
    );
    let url = format!("{}/users/1", proxy.addr);
    let stop = Arc::new(AtomicBool::new(false));

    // Before the outage: three files, uploaded.
    let mut served = load(&rt, &url, 2, 300, &stop);
    proxy.wait_for("three uploads", Duration::from_secs(30), |m| m["shadowdiff_files_uploaded_total"] >= 3);
    let before = inspect(&moto, "s3://pairs/outage")["rows"].as_u64().expect("rows");

    // The store goes away: files pile up in the spool, uploads fail, the budget drops the oldest.
    moto.kill();
    served += load(&rt, &url, 2, 1_500, &stop);
    proxy.wait_for("failures and drops", Duration::from_secs(60), |m| {
        m["shadowdiff_upload_failures_total"] >= 2 && m["shadowdiff_spool_dropped_files_total"] >= 1
    });
    let m = proxy.metrics();
    assert!(m["shadowdiff_spool_bytes"] <= 48 * 1024 + 32 * 1024, "within the budget (plus the file uploading): {m:?}");

    // It comes back (empty, as moto keeps buckets in memory): the spool drains.
    moto.restart();
    moto.create_bucket("pairs");
    proxy.wait_for("the spool to drain", Duration::from_secs(60), |m| m["shadowdiff_spool_files"] == 0);
    let m = proxy.metrics();
    let (status, log) = proxy.stop();
    assert!(status.success(), "{status:?}: {log}");

    let after = inspect(&moto, "s3://pairs/outage");
    let after_rows = after["rows"].as_u64().expect("rows");
    let recorded = m["shadowdiff_pairs_recorded_total"];
    let dropped_pairs = m["shadowdiff_spool_dropped_pairs_total"];
    // Pairs recorded after the scrape went into the last file, uploaded at shutdown.
    let c = &after["counters"];
    let final_recorded = c["recorded"].as_u64().expect("recorded");
    assert!(final_recorded >= recorded);
    assert_eq!(before + after_rows + dropped_pairs, final_recorded, "objects + dropped = recorded; {m:?} {c}");
    assert_eq!(final_recorded + c["dropped"].as_u64().expect("dropped"), served, "{c}");
    assert!(m["shadowdiff_upload_failures_total"] >= 2);
    // A drop made when file N was queued is in the counters of files closed after N (the last
    // ones may come after every file), and always in the log and the summary.
    assert!(
        c["spool.dropped_pairs"].as_u64().is_some_and(|n| n > 0 && n <= dropped_pairs),
        "the drops are in a later file's counters: {c}"
    );
    assert!(log.contains("The spool is over --max-spool"), "the drop was logged: {log}");
    assert!(
        log.contains(&format!(
            "dropped from the spool {} file(s) ({dropped_pairs} pairs)",
            m["shadowdiff_spool_dropped_files_total"]
        )),
        "{log}"
    );
    assert!(log.contains("left in the spool 0 file(s)"), "{log}");
    assert!(parquet_files(spool.path()).is_empty());
    drop(base);
}

/// The disk budget of a local --out: --retain deletes the hour partitions older than it at
/// start (counted in /metrics and in the next file's counters) and keeps recent ones; settings
/// of one kind of --out given to the other are exit 2.
#[test]
fn retain_prunes_old_local_partitions_and_settings_stay_with_their_out() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("pairs");
    // A week-old corpus (2026-11-24, 08:00) in its hour partitions, and one file of today.
    let old = crate::support::corpus(&out, 300, |c| c.rotate_rows = 100);
    let old_files = parquet_files(&out);
    assert!(old_files.len() >= 3, "{old_files:?}");
    let rt = runtime();
    let base = rt.block_on(async { upstream().route("/users/1", json!({"id": 1})).run().await.expect("baseline") });
    let out_s = out.to_str().expect("utf-8");
    let mut proxy = shadowdiff()
        .args(["capture", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "warn"])
        .args(["--baseline", &base.url(), "--canary", &base.url(), "--out", out_s, "--retain", "2h"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("capture starts");
    let mut lines = BufReader::new(proxy.stdout.take().expect("stdout")).lines();
    let addr = lines.next().and_then(Result::ok).unwrap_or_default().replace("listening on ", "");
    let admin = lines.next().and_then(Result::ok).unwrap_or_default().replace("admin on ", "");
    let port: u16 = admin.rsplit(':').next().and_then(|p| p.parse().ok()).expect("admin port");
    let (_, metrics) = http(port, "GET", "/metrics").expect("metrics");
    assert!(metrics.contains(&format!("shadowdiff_retain_files_total {}\n", old_files.len())), "{metrics}");
    assert!(metrics.contains(&format!("shadowdiff_retain_pairs_total {}\n", old.pairs)), "{metrics}");
    assert!(old_files.iter().all(|f| !f.exists()), "the week-old files are gone");
    assert!(!out.join("dt=2026-11-24").exists(), "and their empty partitions");
    let served = load(&rt, &format!("{addr}/users/1"), 2, 50, &Arc::new(AtomicBool::new(false)));
    signal(&proxy, "-TERM");
    assert!(wait_with_deadline(&mut proxy, Duration::from_secs(30)).success());
    let o = crate::support::run(&["inspect", "--json", out_s]);
    let j: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(j["rows"].as_u64(), Some(served), "today's pairs stay");
    assert_eq!(j["counters"]["retain.pairs"].as_u64(), Some(old.pairs), "{}", j["counters"]);

    let flags = |out: &str, extra: &[&str]| {
        let mut a = vec!["capture", "--baseline", "http://127.0.0.1:9", "--canary", "http://127.0.0.1:9", "--out"];
        a.push(out);
        a.extend_from_slice(extra);
        a.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>()
    };
    let cases = [
        (
            flags("s3://b/p", &["--retain", "24h"]),
            "--retain applies to a local --out; expire objects with the bucket's lifecycle rules",
        ),
        (flags(out_s, &["--max-spool", "1GiB"]), "--max-spool applies when --out is an object-store URL"),
        (flags(out_s, &["--retain", "30m"]), "--retain must be at least 2h"),
        (flags("s3://b/p", &["--max-spool", "1MiB"]), "--max-spool must be at least --rotate-bytes (268435456 bytes)"),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = crate::support::run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
    drop(base);
}
