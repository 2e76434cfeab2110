//! `shadowdiff replay` as a process against fixture services on loopback.

use serde_json::Value;
use shadowdiff_fixtures::service::upstream;

use crate::support::{corpus, run, stderr, stdout};

#[test]
fn replays_a_corpus_and_records_fresh_pairs() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (baseline, canary) = rt.block_on(async {
        (upstream().run().await.expect("baseline"), upstream().record_requests().run().await.expect("canary"))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    corpus(&input, 150, |c| c.seed = 3);
    let out = dir.path().join("out");
    let o = run(&[
        "replay",
        input.to_str().expect("utf-8"),
        "--baseline",
        &baseline.url(),
        "--canary",
        &canary.url(),
        "--out",
        out.to_str().expect("utf-8"),
        "--rate",
        "300",
        "--limit",
        "100",
        "--agent",
        "e2e",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("sent 100 recorded 100"), "{err}");
    assert!(err.contains("schedule lag"), "{err}");
    let o = run(&["inspect", "--json", out.to_str().expect("utf-8")]);
    let j: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(j["rows"], 100);
    assert_eq!(j["agents"]["e2e"], 100);
    assert_eq!(rt.block_on(async { canary.requests_seen() }), 100);
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    corpus(&input, 10, |_| {});
    let i = input.to_str().expect("utf-8");
    let o = dir.path().join("o");
    let out = o.to_str().expect("utf-8");
    for (args, needle) in [
        (vec!["replay", i, "--canary", "http://127.0.0.1:9", "--out", out, "--rate", "0"], "--rate"),
        (vec!["replay", i, "--canary", "http://127.0.0.1:9", "--out", out, "--rate", "5", "--speed", "2"], "--speed"),
        (vec!["replay", i, "--canary", "localhost:80", "--out", out], "--canary"),
        (vec!["replay", i, "--canary", "http://127.0.0.1:9", "--out", out, "--header", "nocolon"], "--header"),
        (vec!["replay", i, "--canary", "http://127.0.0.1:9", "--out", out, "--status", "9xx"], "--status"),
        (vec!["replay", "/no/such/dir", "--canary", "http://127.0.0.1:9", "--out", out], "/no/such/dir"),
    ] {
        let r = run(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", stderr(&r));
        assert!(stderr(&r).contains(needle), "{args:?}: {}", stderr(&r));
    }
}

/// Ctrl-C (SIGINT) in the middle of a soak run against a slow canary: replay stops sending,
/// waits for the requests in flight, closes its files and exits 0; every pair it says it
/// recorded is on disk in whole files, and it recorded every request the canary answered.
#[test]
fn sigint_stops_cleanly_with_every_recorded_pair_on_disk() {
    use std::process::Stdio;
    use std::time::Duration;

    use shadowdiff_fixtures::Latency;

    use crate::support::{shadowdiff, signal, wait_with_deadline};

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let canary = rt.block_on(async {
        upstream().latency(Latency::Fixed(Duration::from_millis(150))).run().await.expect("canary")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    corpus(&input, 200, |c| c.seed = 5);
    let out = dir.path().join("out");
    let mut child = shadowdiff()
        .args(["replay", input.to_str().expect("utf-8"), "--canary", &canary.url(), "--out"])
        .arg(&out)
        .args(["--rate", "200", "--loop", "--duration", "60s", "--agent", "sigint"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("replay starts");
    // Long enough for requests to be in flight at the 150 ms canary; far short of 60 s.
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "-INT");
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).expect("stderr");
    assert_eq!(status.code(), Some(0), "{err}");
    // "replay: sent N recorded N …"
    let words: Vec<&str> = err.split_whitespace().collect();
    let after =
        |w: &str| words.iter().position(|x| *x == w).and_then(|i| words.get(i + 1)).and_then(|n| n.parse::<u64>().ok());
    let (sent, recorded) = (after("sent").expect(&err), after("recorded").expect(&err));
    assert!(sent > 50 && sent < 1000, "sent {sent}: stopped neither too early nor at the end\n{err}");
    assert_eq!(recorded, sent, "{err}");
    let o = run(&["inspect", "--json", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "the files are whole: {}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(j["rows"], recorded);
    let answered = rt.block_on(async { canary.requests_seen() });
    assert_eq!(answered, recorded, "every request the canary saw is recorded");
}
