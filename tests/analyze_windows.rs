//! `shadowdiff analyze --since/--until` end to end: pair files written by the project's writer
//! across several hours, judged in a window. The window selects exactly the pairs captured in
//! it, files in hour partitions outside it are never opened (a corrupt one there does not
//! matter), and verdict.json's `inputs.window` counts what was left out. `--warmup` leaves out
//! each agent run's first minutes, run by run.

use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use shadowdiff_format::pair::{Header, PairRecord, SideRecord};
use shadowdiff_format::verdict::{InputWarmup, InputWindow, Verdict};
use shadowdiff_format::writer::{PairWriter, WriterConfig};

use crate::support::{run, stderr};

/// Pairs written in each of the hours 08 to 11 of the day, one a minute from `HH:00:30`.
const PER_HOUR: i64 = 40;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn side(ms: u64) -> SideRecord {
    SideRecord {
        status: Some(200),
        headers: vec![Header::new("content-type", "application/json")],
        body: Some(Bytes::from_static(br#"{"ok":true}"#)),
        latency_us: Some(ms * 1000),
        ttfb_us: Some(ms * 500),
        ..SideRecord::default()
    }
}

/// Writes hours 08–11 of 2026-11-30 under `dir` (one file per hour partition) and returns
/// every pair's capture time.
fn write_hours(dir: &Path) -> Vec<DateTime<Utc>> {
    let mut w = PairWriter::new(WriterConfig::new(dir, "windows")).unwrap();
    let mut times = Vec::new();
    for hour in 8..12 {
        for i in 0..PER_HOUR {
            let t = at(&format!("2026-11-30T{hour:02}:00:30Z")) + Duration::minutes(i);
            let mut r = PairRecord::new("windows", t, "GET", format!("/items/{}", hour * 100 + i), None);
            r.baseline = side(20 + (i as u64 % 7));
            r.canary = side(20 + (i as u64 % 5));
            w.write(r).unwrap();
            times.push(t);
        }
    }
    w.close().unwrap();
    times
}

struct Analyzed {
    code: Option<i32>,
    stderr: String,
    verdict: Option<Verdict>,
}

fn analyze(input: &Path, out: &Path, extra: &[&str]) -> Analyzed {
    let mut args = vec!["analyze", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let o = run(&args);
    let verdict = std::fs::read(out.join("verdict.json")).ok().map(|b| serde_json::from_slice(&b).unwrap());
    Analyzed { code: o.status.code(), stderr: stderr(&o), verdict }
}

#[test]
fn since_until_select_the_window_and_prune_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs");
    let times = write_hours(&pairs);
    let files = |hour: &str| std::fs::read_dir(pairs.join("dt=2026-11-30").join(hour)).unwrap().count();
    assert_eq!([files("hour=08"), files("hour=09"), files("hour=10"), files("hour=11")], [1, 1, 1, 1]);

    let (since, until) = ("2026-11-30T09:20:00Z", "2026-11-30T11:00:00Z");
    let expected = times.iter().filter(|t| **t >= at(since) && **t < at(until)).count() as u64;
    assert_eq!(expected, 20 + 40);
    let window = ["--since", since, "--until", until];

    // Hour 08 ends before the window: pruned. Hours 09 and 10 hold it. Hour 11 may hold late
    // pairs of hour 10, so it is read and its 40 pairs counted outside, with 09's first 20.
    let a = analyze(&pairs, &dir.path().join("a"), &window);
    assert_ne!(a.code, Some(2), "{}", a.stderr);
    let v = a.verdict.unwrap();
    assert_eq!(v.inputs.pairs_analyzed, expected);
    assert_eq!(v.inputs.files, 3);
    assert_eq!(v.inputs.pairs_in_files, 3 * PER_HOUR as u64);
    let w = v.inputs.window.clone().unwrap();
    assert_eq!(w, InputWindow { since: Some(at(since)), until: Some(at(until)), files_pruned: 1, pairs_outside: 60 });

    // A corrupt file in a partition the window prunes is never opened ...
    let early = pairs.join("dt=2026-11-30").join("hour=06");
    std::fs::create_dir_all(&early).unwrap();
    std::fs::write(early.join("broken.parquet"), b"PAR1 this is not a parquet file").unwrap();
    let b = analyze(&pairs, &dir.path().join("b"), &window);
    assert_ne!(b.code, Some(2), "{}", b.stderr);
    let v = b.verdict.unwrap();
    assert_eq!(v.inputs.pairs_analyzed, expected);
    assert_eq!(v.inputs.window.unwrap().files_pruned, 2);
    // ... while a window that reaches its hour opens it and fails on it, naming it.
    let c = analyze(&pairs, &dir.path().join("c"), &["--until", until]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(c.stderr.contains("broken.parquet"), "{}", c.stderr);
    std::fs::remove_dir_all(&early).unwrap();

    // Only --since: hours 08 and 09 hold nothing from 10:10 on and are pruned; hour 10's first
    // ten pairs are outside.
    let d = analyze(&pairs, &dir.path().join("d"), &["--since", "2026-11-30T10:10:00Z"]);
    let v = d.verdict.unwrap();
    assert_eq!(v.inputs.pairs_analyzed, 30 + PER_HOUR as u64);
    let w = v.inputs.window.unwrap();
    assert_eq!((w.files_pruned, w.pairs_outside, w.until), (2, 10, None));

    // A sample is drawn from the window's pairs: all 30 asked for are in it.
    let e = analyze(&pairs, &dir.path().join("e"), &[&window[..], &["--sample", "30"]].concat());
    let v = e.verdict.unwrap();
    assert_eq!((v.inputs.pairs_analyzed, v.inputs.sample), (30, Some(30)));

    // Relative times count back from now: a century back holds every pair, and no window at
    // all leaves `inputs.window` out.
    let f = analyze(&pairs, &dir.path().join("f"), &["--since=-36500d"]);
    assert_eq!(f.verdict.unwrap().inputs.pairs_analyzed, times.len() as u64);
    let g = analyze(&pairs, &dir.path().join("g"), &[]);
    let v = g.verdict.unwrap();
    assert_eq!((v.inputs.pairs_analyzed, v.inputs.window), (times.len() as u64, None));
}

#[test]
fn bad_windows_are_usage_errors_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs");
    write_hours(&pairs);
    let one_line = |a: &Analyzed, flag: &str| {
        assert_eq!(a.code, Some(2), "{}", a.stderr);
        assert!(a.stderr.contains(flag), "{}", a.stderr);
        assert_eq!(a.stderr.trim().lines().count(), 1, "{}", a.stderr);
        assert!(a.verdict.is_none());
    };
    let out = dir.path().join("out");
    one_line(&analyze(&pairs, &out, &["--since", "yesterday"]), "--since `yesterday`");
    one_line(&analyze(&pairs, &out, &["--until", "-2 fortnights"]), "--until `-2 fortnights`");
    let reversed = ["--since", "2026-11-30T11:00:00Z", "--until", "2026-11-30T10:00:00Z"];
    one_line(&analyze(&pairs, &out, &reversed), "--since 2026-11-30T11:00:00Z is not before --until");
    // A window that holds no pairs is an input error, and says which window.
    let empty = analyze(&pairs, &out, &["--since", "2026-12-01T00:00:00Z"]);
    one_line(&empty, "the window --since 2026-12-01T00:00:00Z of");
}

/// One agent run writing `n` pairs under `dir`, one a minute from `start`.
fn write_run(dir: &Path, agent: &str, start: &str, n: i64) {
    let mut w = PairWriter::new(WriterConfig::new(dir, agent)).unwrap();
    for i in 0..n {
        let mut r = PairRecord::new(agent, at(start) + Duration::minutes(i), "GET", format!("/items/{i}"), None);
        r.baseline = side(20 + (i as u64 % 7));
        r.canary = side(20 + (i as u64 % 5));
        w.write(r).unwrap();
    }
    w.close().unwrap();
}

#[test]
fn warmup_leaves_out_each_runs_first_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs");
    // Run a from 08:00:30 (40 pairs), run b from 08:20:00 (20 pairs), both in hour 08.
    write_run(&pairs, "agent-a", "2026-11-30T08:00:30Z", 40);
    write_run(&pairs, "agent-b", "2026-11-30T08:20:00Z", 20);
    let warmup = |a: &Analyzed| a.verdict.as_ref().unwrap().inputs.warmup.clone().unwrap();

    // Five minutes: a's pairs at 08:00:30 … 08:04:30 and b's at 08:20 … 08:24, five each.
    let a = analyze(&pairs, &dir.path().join("a"), &["--warmup", "5m"]);
    assert_ne!(a.code, Some(2), "{}", a.stderr);
    assert_eq!(warmup(&a), InputWarmup { seconds: 300.0, runs: 2, pairs_left_out: 10 });
    assert_eq!(a.verdict.unwrap().inputs.pairs_analyzed, 60 - 10);

    // With a window, a run's start is still its earliest pair read: a's first three pairs are
    // outside, the next two (08:03:30, 08:04:30) its warm-up.
    let b = analyze(&pairs, &dir.path().join("b"), &["--warmup", "5m", "--since", "2026-11-30T08:03:00Z"]);
    assert_eq!(warmup(&b).pairs_left_out, 2 + 5);
    let v = b.verdict.unwrap();
    assert_eq!(v.inputs.window.unwrap().pairs_outside, 3);
    assert_eq!(v.inputs.pairs_analyzed, 60 - 3 - 7);

    // A sample is drawn from the pairs past the warm-up; zero is no warm-up.
    let c = analyze(&pairs, &dir.path().join("c"), &["--warmup", "5m", "--sample", "45", "--seed", "7"]);
    assert_eq!(c.verdict.unwrap().inputs.pairs_analyzed, 45);
    let d = analyze(&pairs, &dir.path().join("d"), &["--warmup", "0s"]);
    let v = d.verdict.unwrap();
    assert_eq!((v.inputs.pairs_analyzed, v.inputs.warmup), (60, None));

    let e = analyze(&pairs, &dir.path().join("e"), &["--warmup", "five minutes"]);
    assert_eq!(e.code, Some(2), "{}", e.stderr);
    assert!(e.stderr.contains("--warmup"), "{}", e.stderr);
}

/// Hours 08–11 with 300 pairs each; from 10:00 the canary is twice as slow.
fn write_regression_from_ten(dir: &Path) {
    let mut w = PairWriter::new(WriterConfig::new(dir, "windows")).unwrap();
    for hour in 8..12u64 {
        for i in 0..300u64 {
            let t = at(&format!("2026-11-30T{hour:02}:00:00Z")) + Duration::seconds(i as i64 * 12);
            let mut r = PairRecord::new("windows", t, "GET", format!("/items/{}", hour * 1000 + i), None);
            let ms = 20 + (i * 7919 % 23);
            r.baseline = side(ms);
            r.canary = side(if hour >= 10 { 2 * ms + (i % 3) } else { ms + (i % 3) });
            w.write(r).unwrap();
        }
    }
    w.close().unwrap();
}

#[test]
fn window_judges_each_hour_and_shows_when_the_regression_started() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs");
    write_regression_from_ten(&pairs);
    let out = dir.path().join("out");
    let a = analyze(&pairs, &out, &["--window", "1h"]);
    assert_eq!(a.code, Some(1), "{}", a.stderr);
    let v = a.verdict.unwrap();
    let rows: Vec<(String, u64, String)> =
        v.windows.iter().map(|w| (w.start.format("%H:%M").to_string(), w.pairs, w.verdict.to_string())).collect();
    assert_eq!(
        rows,
        [
            ("08:00".to_owned(), 300, "pass".to_owned()),
            ("09:00".to_owned(), 300, "pass".to_owned()),
            ("10:00".to_owned(), 300, "fail".to_owned()),
            ("11:00".to_owned(), 300, "fail".to_owned()),
        ]
    );
    // Every window has every check, the latency check failing from 10:00 on.
    assert!(v.windows.iter().all(|w| w.checks.len() == v.checks.len()));
    let latency = |i: usize| v.windows[i].checks.iter().find(|c| c.id.as_str() == "latency_p99").unwrap().status;
    assert_eq!(latency(2).to_string(), "fail");
    // The scratch analyses are gone; the run's own outputs stay.
    assert!(!out.join(".windows-scratch").exists());
    assert!(out.join("pairs.parquet").exists());

    // A window inside --since/--until is cut to it; a bad duration is a usage error.
    let b = analyze(&pairs, &dir.path().join("b"), &["--window", "1h", "--since", "2026-11-30T09:30:00Z"]);
    let v = b.verdict.unwrap();
    assert_eq!(v.windows.iter().map(|w| w.pairs).collect::<Vec<_>>(), [150, 300, 300], "{}", b.stderr);
    let c = analyze(&pairs, &dir.path().join("c"), &["--window", "soon"]);
    assert_eq!(c.code, Some(2));
    assert!(c.stderr.contains("--window"), "{}", c.stderr);
    // Without --window there is no windows[] at all.
    analyze(&pairs, &dir.path().join("d"), &[]);
    let plain: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("d/verdict.json")).unwrap()).unwrap();
    assert!(plain.get("windows").is_none());
}
