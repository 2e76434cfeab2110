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
