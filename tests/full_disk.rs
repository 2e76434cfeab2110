//! A full disk under `shadowdiff capture`: --out on a 3 MB tmpfs while 4,500 requests go
//! through, the disk filled with a ballast file midway and emptied again. Every client gets the
//! baseline's exact bytes; pairs that could not be written are counted as dropped (`disk_full`),
//! never as recorded; no half-written file is visible; recording resumes by itself; and the
//! counters add up to the pairs in the files read back.
//!
//! Mounting needs root (CI runs as root): elsewhere the test prints why it is skipped; with
//! CI=true it fails instead.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use shadowdiff_fixtures::service::upstream;
use shadowdiff_format::reader::PairFile;
use shadowdiff_format::{PairReader, resolve_inputs};

use crate::support::{shadowdiff, signal, wait_with_deadline};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// The mount, or `None` (with the reason printed) where mounting is not possible; in CI
    /// (CI=true) that is a failure, not a skip.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let reason = if !is_root() {
            Some("it needs root to mount a tmpfs".to_owned())
        } else {
            let out = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .output();
            match out {
                Ok(o) if o.status.success() => None,
                Ok(o) => Some(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
                Err(e) => Some(format!("mount cannot run: {e}")),
            }
        };
        match reason {
            None => Some(Self { dir }),
            Some(r) if std::env::var("CI").as_deref() == Ok("true") => panic!("full-disk test cannot run in CI: {r}"),
            Some(r) => {
                eprintln!("skipped: {r}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Append to `path` until the filesystem is full; returns the bytes added.
fn fill(path: &Path) -> u64 {
    let mut f = fs::OpenOptions::new().create(true).append(true).open(path).expect("ballast");
    let chunk = vec![0x5a_u8; 16 * 1024];
    let mut added = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => added += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "the ballast stops at ENOSPC: {e}");
                break;
            }
        }
    }
    let _ = f.flush();
    added
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

struct Capture {
    child: Child,
    addr: String,
    log: PathBuf,
}

fn start_capture(base: &str, canary: &str, out: &Path, log: PathBuf) -> Capture {
    let mut child = shadowdiff()
        .arg("capture")
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "info"])
        .args(["--baseline", base, "--canary", canary, "--out", out.to_str().expect("utf-8")])
        .args(["--rotate-rows", "100", "--rotate-age", "1s"])
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("shadowdiff capture starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = lines
        .next()
        .and_then(Result::ok)
        .and_then(|l| l.strip_prefix("listening on ").map(str::to_owned))
        .expect("the proxy address on stdout");
    // Read the admin line too: the pipe closes with this reader.
    let _admin = lines.next().and_then(Result::ok).expect("the admin address on stdout");
    Capture { child, addr, log }
}

/// `n` GETs of `url` on 4 connections; returns how many answers were not `expected` exactly.
// Reads the fixture's whole answer (1.5 KB) to compare it byte for byte.
#[allow(clippy::disallowed_methods)]
async fn send(url: &str, n: usize, expected: &(u16, Bytes)) -> usize {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..4 {
        let (client, url, expected) = (client.clone(), url.to_owned(), expected.clone());
        tasks.spawn(async move {
            let mut wrong = 0;
            for i in (t..n).step_by(4) {
                let uri = format!("{url}&i={i}").parse().expect("uri");
                let got = match client.get(uri).await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        r.into_body().collect().await.ok().map(|b| (status, b.to_bytes()))
                    }
                    Err(_) => None,
                };
                if got.as_ref() != Some(&expected) {
                    wrong += 1;
                }
            }
            wrong
        });
    }
    let mut wrong = 0;
    while let Some(w) = tasks.join_next().await {
        wrong += w.expect("client task");
    }
    wrong
}

/// 1,500 requests while there is room, 1,500 while the disk is full, 1,500 after the ballast is
/// deleted; then SIGTERM, and everything read back.
#[test]
// A synchronous test around a child process (OS clock).
#[allow(clippy::disallowed_methods)]
fn capture_on_a_full_disk_serves_everyone_counts_every_lost_pair_and_resumes() {
    let Some(disk) = Tmpfs::mount("3m") else { return };
    let out = disk.path().join("pairs");
    let ballast = disk.path().join("ballast");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // A body of some weight (about 1.5 KB) so a file is a few tens of kilobytes.
    let doc = json!({"id": 1, "items": (0..40).map(|i| json!({"n": i, "name": format!("item number {i}")})).collect::<Vec<_>>()});
    let (base, canary) = rt.block_on(async {
        let base = upstream().route("/users/1", doc.clone()).noise(false).run().await.expect("baseline");
        let canary = upstream().route("/users/1", doc.clone()).noise(false).run().await.expect("canary");
        (base, canary)
    });
    let expected = rt.block_on(async {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let r = client.get(format!("{}/users/1", base.url()).parse().expect("uri")).await.expect("baseline answers");
        let status = r.status().as_u16();
        (status, r.into_body().collect().await.expect("body").to_bytes())
    });
    assert_eq!(expected.0, 200);
    let log_dir = tempfile::tempdir().expect("tempdir");
    let mut proxy = start_capture(&base.url(), &canary.url(), &out, log_dir.path().join("capture.log"));
    let url = |phase: &str| format!("{}/users/1?phase={phase}", proxy.addr);

    // Room: recorded.
    assert_eq!(rt.block_on(send(&url("room"), 1_500, &expected)), 0, "every client served while there is room");
    std::thread::sleep(Duration::from_millis(1_500)); // the age rotation publishes the last pairs
    let before_full: u64 = resolve_inputs(&[out.to_str().expect("utf-8")])
        .expect("files")
        .iter()
        .map(|f| PairFile::open(f).expect("whole").info.rows)
        .sum();

    // Full: the ballast takes every free block, and takes back what a removed file frees.
    let ballast_bytes = fill(&ballast);
    for _ in 0..5 {
        assert_eq!(rt.block_on(send(&url("full"), 300, &expected)), 0, "every client served on a full disk");
        fill(&ballast);
    }
    std::thread::sleep(Duration::from_millis(1_500));
    fill(&ballast);
    for f in walk(&out).iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")) {
        PairFile::open(f).unwrap_or_else(|e| panic!("a visible file on a full disk is whole: {e}"));
    }

    // Room again: recording resumes by itself.
    fs::remove_file(&ballast).expect("delete the ballast");
    assert_eq!(rt.block_on(send(&url("again"), 1_500, &expected)), 0, "every client served after");
    signal(&proxy.child, "-TERM");
    let status = wait_with_deadline(&mut proxy.child, Duration::from_secs(30));
    assert!(status.success(), "capture exits 0: {status:?}");

    let leftovers: Vec<_> = walk(&out).into_iter().filter(|p| p.extension().is_none_or(|e| e != "parquet")).collect();
    assert!(leftovers.is_empty(), "no temporaries or half-written files: {leftovers:?}");
    let files = resolve_inputs(&[out.to_str().expect("utf-8")]).expect("files");
    let infos: Vec<_> = files.iter().map(|f| PairFile::open(f).expect("every file is whole").info).collect();
    let rows: u64 = infos.iter().map(|i| i.rows).sum();
    let pairs = PairReader::read_all_records(&[out.to_str().expect("utf-8")]).expect("readable");
    assert_eq!(pairs.len() as u64, rows);
    let c = &infos.iter().max_by_key(|i| i.file_seq).expect("a file").counters;
    let phase = |p: &str| pairs.iter().filter(|r| r.query.as_deref().is_some_and(|q| q.contains(p))).count();
    let (room, full, again) = (phase("phase=room"), phase("phase=full"), phase("phase=again"));
    eprintln!(
        "full disk: served 4500, seen {}, recorded {} (room {room}, full {full}, again {again}), dropped {} (disk_full {}, writer_error {}, queue_full {}, shutdown {}, client_closed {}), skipped {}; ballast {ballast_bytes} bytes; {} files",
        c["seen"],
        c["recorded"],
        c["dropped"],
        c["dropped.disk_full"],
        c["dropped.writer_error"],
        c["dropped.queue_full"],
        c["dropped.shutdown"],
        c["dropped.client_closed"],
        c["skipped"],
        files.len()
    );
    assert_eq!(c["seen"], 4_500);
    assert_eq!(c["seen"], c["recorded"] + c["dropped"] + c["skipped"], "{c:?}");
    assert_eq!(c["recorded"], rows, "recorded is exactly the pairs in valid files: {c:?}");
    assert!(c["dropped.disk_full"] > 0, "the full disk dropped pairs, counted as disk_full: {c:?}");
    assert_eq!(room as u64, before_full, "every pair recorded while there was room is still there");
    assert!(again > 1_000, "recording resumed by itself once space returned: {again} of 1,500");

    let log = fs::read_to_string(&proxy.log).expect("log");
    let failed = log.lines().filter(|l| l.contains("ERROR") && l.contains("Pair writer failed")).count();
    let recovered = log.lines().filter(|l| l.contains("Pair writer recovered")).count();
    eprintln!("full disk: {failed} ERROR line(s) for the episode, {recovered} recovery line(s)");
    assert!(failed >= 1, "the failure is logged at ERROR:\n{log}");
    assert!(failed <= recovered + 1, "once per episode, not per pair ({failed} errors, {recovered} recoveries)");
    assert!((failed as u64) < c["dropped.disk_full"], "not once per pair");
    drop((base, canary));
}

/// Replay and analyze writing to a full disk: exit 2 with one sentence naming the path; what an
/// earlier run wrote on the same disk stays valid, and no half-written file is visible.
#[test]
fn replay_and_analyze_on_a_full_disk_exit_2_naming_the_path() {
    let Some(disk) = Tmpfs::mount("6m") else { return };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (baseline, canary) =
        rt.block_on(async { (upstream().run().await.expect("baseline"), upstream().run().await.expect("canary")) });
    let scratch = tempfile::tempdir().expect("tempdir");
    let input = scratch.path().join("in");
    crate::support::corpus(&input, 1_000, |c| c.seed = 7);
    let input = input.to_str().expect("utf-8");
    let replay = |out: &Path| {
        crate::support::run(&[
            "replay",
            input,
            "--baseline",
            &baseline.url(),
            "--canary",
            &canary.url(),
            "--out",
            out.to_str().expect("utf-8"),
            "--rate",
            "2000",
            "--limit",
            "300",
        ])
    };
    let analyze = |out: &Path| crate::support::run(&["analyze", input, "--out", out.to_str().expect("utf-8")]);

    // With room: both succeed.
    let (r1, a1) = (disk.path().join("replay-1"), disk.path().join("analyze-1"));
    let o = replay(&r1);
    assert!(o.status.success(), "{}", crate::support::stderr(&o));
    let o = analyze(&a1);
    assert!(o.status.code().is_some_and(|c| c < 2), "{}", crate::support::stderr(&o));

    // Full: exit 2 and one sentence naming the path under the full disk.
    fill(&disk.path().join("ballast"));
    let (r2, a2) = (disk.path().join("replay-2"), disk.path().join("analyze-2"));
    for (what, o, out) in [("replay", replay(&r2), &r2), ("analyze", analyze(&a2), &a2)] {
        let err = crate::support::stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what} on a full disk: {err}");
        let line = err.lines().rfind(|l| l.starts_with("shadowdiff:")).unwrap_or_default();
        assert!(line.contains(out.to_str().expect("utf-8")), "{what} names the path: {err}");
        assert!(line.contains("No space left on device"), "{what} says why: {err}");
        eprintln!("{what} on a full disk: {line}");
        for f in walk(out).iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")) {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            // Hidden names are temporaries; a visible pair file (replay) must open, and analyze's
            // outputs become visible only whole, by rename.
            let whole = name.starts_with('.') || (what == "replay" && PairFile::open(f).is_ok());
            assert!(whole, "{what} left a visible half-written file: {}", f.display());
        }
    }
    // A pair file replay could not finish is removed, not left half-written; so are analyze's
    // temporaries (its scratch files and the outputs it could not finish).
    assert!(walk(&r2).iter().all(|p| !p.to_string_lossy().ends_with(".tmp")), "{:?}", walk(&r2));
    let left: Vec<_> = walk(&a2)
        .into_iter()
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') || n.ends_with(".partial"))
        })
        .collect();
    assert!(left.is_empty(), "analyze left temporaries on the full disk: {left:?}");

    // What the runs with room wrote is still valid.
    let rows: u64 = resolve_inputs(&[r1.to_str().expect("utf-8")])
        .expect("files")
        .iter()
        .map(|f| PairFile::open(f).expect("whole").info.rows)
        .sum();
    assert_eq!(rows, 300);
    let verdict: serde_json::Value =
        serde_json::from_slice(&fs::read(a1.join("verdict.json")).expect("verdict.json")).expect("valid JSON");
    assert!(verdict.is_object(), "{verdict}");
    for f in ["pairs.parquet", "diffs.parquet"] {
        // Whole: the PAR1 magic at both ends (the footer was written before the rename).
        let bytes = fs::read(a1.join(f)).expect(f);
        assert!(bytes.len() > 8 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"), "{f} is whole");
    }
    drop((baseline, canary));
}
