//! Replay against real fixture services on loopback, and the open-loop schedule under paused
//! time with a slow target.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use http::{HeaderName, HeaderValue};
use shadowdiff_fixtures::Scoped;
use shadowdiff_fixtures::corpus::{CorpusConfig, generate};
use shadowdiff_fixtures::service::upstream;
use shadowdiff_format::{PairFile, PairReader, PairRecord, Side, SideRecord};
use shadowdiff_replay::driver::{DriverConfig, Progress, SourceItem, drive};
use shadowdiff_replay::filter::Filters;
use shadowdiff_replay::pacer::Pacing;
use shadowdiff_replay::run::{Plan, replay};
use shadowdiff_replay::target::{Dispatch, Rewrites};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn read(dir: &std::path::Path) -> Vec<PairRecord> {
    PairReader::read_all_records(&[dir.to_str().expect("utf-8")]).expect("read pairs")
}

fn plan(input: &std::path::Path, out: &std::path::Path, targets: Vec<(Side, String)>) -> Plan {
    Plan {
        inputs: vec![input.to_str().expect("utf-8").to_owned()],
        targets,
        out: out.to_owned(),
        upload: None,
        input_names: Vec::new(),
        driver: DriverConfig {
            pacing: Pacing::Unpaced,
            concurrency: 16,
            filters: Filters::default(),
            limit: None,
            duration: None,
            agent: "replay-test".into(),
            keep_recorded_baseline: false,
        },
        repeat: false,
        timeout: Duration::from_secs(5),
        max_body: 1 << 20,
        rewrites: Rewrites::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_arrives_at_every_target_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    let mut cfg = CorpusConfig::new(300, &input);
    cfg.seed = 5;
    generate(&cfg).expect("corpus");
    let recorded = read(&input);

    let baseline = upstream().record_requests().run().await.expect("baseline");
    let canary = upstream()
        .record_requests()
        .effect(Scoped::parse("error-rate:1@/api/search").expect("spec"))
        .run()
        .await
        .expect("canary");
    let out = dir.path().join("out");
    let mut p = plan(&input, &out, vec![(Side::Baseline, baseline.url()), (Side::Canary, canary.url())]);
    p.rewrites = Rewrites {
        remove: vec![HeaderName::from_static("user-agent")],
        set: vec![(HeaderName::from_static("authorization"), HeaderValue::from_static("Bearer replay"))],
        host: None,
    };
    let (summary, stats) = replay(p, Arc::new(Progress::default()), std::future::pending()).await.expect("replay");

    let posts = recorded.iter().filter(|r| r.method == "POST").count() as u64;
    assert!(posts > 0, "the corpus has mutations to skip");
    assert_eq!(summary.skipped.get("mutation"), Some(&posts), "POSTs are skipped by default");
    assert_eq!(summary.sent, 300 - posts);
    assert_eq!(summary.recorded, summary.sent);
    assert_eq!(stats.rows_committed, summary.sent);

    // What each target saw, in any order, is exactly what was recorded (after rewrites).
    for target in [&baseline, &canary] {
        let mut seen = Vec::new();
        while let Some(r) = target.try_next_request().await {
            seen.push(r);
        }
        assert_eq!(seen.len() as u64, summary.sent);
        for want in recorded.iter().filter(|r| r.method == "GET") {
            let got = seen
                .iter()
                .find(|s| s.path() == want.path && s.query().map(str::to_owned) == want.query)
                .unwrap_or_else(|| panic!("{} never arrived", want.path_and_query()));
            assert_eq!(got.method.as_str(), want.method);
            assert_eq!(got.header("accept"), Some("application/json"));
            assert_eq!(got.header("authorization"), Some("Bearer replay"), "credentials supplied again");
            assert_eq!(got.header("user-agent"), None, "removed header");
        }
    }

    let fresh = read(&out);
    assert_eq!(fresh.len() as u64, summary.sent);
    assert!(fresh.iter().all(|r| r.agent == "replay-test" && r.baseline.status.is_some() && r.canary.status.is_some()));
    let search_500 = fresh
        .iter()
        .filter(|r| r.path == "/api/search")
        .all(|r| r.canary.status == Some(500) && r.baseline.status == Some(200));
    assert!(search_500, "the canary's own answers are recorded");
    let info = PairFile::open(&stats.files[0]).expect("open").info;
    assert_eq!(info.baseline_origin, "measured");
    assert_eq!(info.counters.get("sent"), Some(&summary.sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_only_keeps_the_recorded_baseline_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    let mut cfg = CorpusConfig::new(120, &input);
    cfg.seed = 9;
    generate(&cfg).expect("corpus");
    let recorded = read(&input);
    let canary = upstream().record_requests().run().await.expect("canary");
    let out = dir.path().join("out");
    let mut p = plan(&input, &out, vec![(Side::Canary, canary.url())]);
    p.driver.keep_recorded_baseline = true;
    p.driver.filters.allow_mutations = true;
    let (summary, stats) = replay(p, Arc::new(Progress::default()), std::future::pending()).await.expect("replay");
    assert_eq!(summary.sent, 120, "mutations allowed");

    let mut saw_post_body = false;
    while let Some(r) = canary.try_next_request().await {
        if r.method == "POST" {
            let want = recorded.iter().find(|x| x.method == "POST" && x.request_body.as_deref() == Some(&r.body[..]));
            saw_post_body |= want.is_some();
        }
    }
    assert!(saw_post_body, "POST bodies are sent as recorded");
    let fresh = read(&out);
    for f in &fresh {
        assert!(
            recorded.iter().any(|r| r.path_and_query() == f.path_and_query()
                && r.request_body == f.request_body
                && r.baseline == f.baseline),
            "the recorded baseline of {} is kept",
            f.path_and_query()
        );
        assert!(f.canary.status.is_some());
    }
    assert_eq!(PairFile::open(&stats.files[0]).expect("open").info.baseline_origin, "recorded");
}

#[tokio::test]
async fn bad_inputs_fail_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.parquet");
    std::fs::write(&junk, "not parquet").expect("write");
    let out = dir.path().join("out");
    let p = plan(&junk, &out, vec![(Side::Canary, "http://127.0.0.1:9".into())]);
    let e = replay(p, Arc::new(Progress::default()), std::future::pending()).await.expect_err("bad input");
    assert!(e.to_string().contains("junk.parquet") && e.to_string().contains("not a Parquet file"), "{e}");
    let p = plan(dir.path(), &out, vec![(Side::Canary, "ftp://h".into())]);
    let e = replay(p, Arc::new(Progress::default()), std::future::pending()).await.expect_err("bad url");
    assert!(e.to_string().contains("--canary"), "{e}");
}

/// A target that takes 300 ms to answer and notes when each request was dispatched.
struct Slow {
    sides: Vec<Side>,
    dispatched: Mutex<Vec<Instant>>,
}

impl Dispatch for Slow {
    fn sides(&self) -> &[Side] {
        &self.sides
    }

    fn dispatch(
        &self,
        _side: Side,
        _recorded: &PairRecord,
        intended: Instant,
    ) -> impl std::future::Future<Output = SideRecord> + Send {
        self.dispatched.lock().expect("lock").push(Instant::now());
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            SideRecord {
                status: Some(200),
                latency_us: Some(intended.elapsed().as_micros() as u64),
                ..SideRecord::default()
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn rate_holds_its_schedule_while_the_target_is_slow() {
    let (tx, rx) = mpsc::channel(4096);
    let t0 = Utc::now();
    let records = (0..400)
        .map(|i| PairRecord::new("t", t0 + TimeDelta::milliseconds(i), "GET", format!("/x/{i}"), None))
        .collect();
    tx.send(Ok(SourceItem::Records(records))).await.expect("send");
    drop(tx);
    let target = Arc::new(Slow { sides: vec![Side::Canary], dispatched: Mutex::new(Vec::new()) });
    let (sink, mut pairs) = mpsc::channel(4096);
    let collector = tokio::spawn(async move {
        let mut n = Vec::new();
        while let Some(batch) = pairs.recv().await {
            n.extend(batch);
        }
        n
    });
    let config = DriverConfig {
        pacing: Pacing::Rate { per_second: 200.0 },
        concurrency: 1_000,
        filters: Filters::default(),
        limit: None,
        duration: None,
        agent: "t".into(),
        keep_recorded_baseline: false,
    };
    let start = Instant::now();
    let summary = drive(rx, Arc::clone(&target), config, sink, Arc::new(Progress::default()), std::future::pending())
        .await
        .expect("drive");
    let pairs = collector.await.expect("collector");
    assert_eq!((summary.sent, pairs.len()), (400, 400));
    let dispatched = target.dispatched.lock().expect("lock").clone();
    for (i, at) in dispatched.iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / 200.0);
        assert!(
            at.saturating_duration_since(due) < Duration::from_millis(1),
            "request {i} late by {:?}",
            at.saturating_duration_since(due)
        );
    }
    // 400 requests at 200/s: the schedule ends at 1.995 s; the last answer 300 ms later.
    assert!((summary.elapsed.as_secs_f64() - 2.295).abs() < 0.01, "{:?}", summary.elapsed);
    assert!(summary.lag.as_ref().is_some_and(|l| l.max_ms < 1.0), "{:?}", summary.lag);
    // Latency counts from the intended time.
    assert!(pairs.iter().all(|p| p.canary.latency_us.is_some_and(|l| (300_000..301_000).contains(&l))));
}
