//! Streamed responses compared per event (analyze): pair files written through the project's writer with
//! server-sent events and NDJSON bodies, analyzed. One changed event is one difference at
//! `/N/data/field` (verdict.json, diffs.parquet, examples.json, the report); identical streams
//! cut at different points are the same; a stream whose recording was cut after a 2xx head
//! (the recorder gave up waiting: `timeout`) is not an error.

use std::path::Path;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use shadowdiff_format::{Header, PairRecord, PairWriter, SideRecord, WriterConfig};

use crate::support::{python, run, stderr, stdout};

const EACH: usize = 80;

fn sse(prices: &[u32]) -> String {
    let mut out = String::from(": connected\nretry: 2000\n\n");
    for (i, p) in prices.iter().enumerate() {
        out.push_str(&format!("event: quote\nid: {i}\ndata: {{\"symbol\": \"ACME\",\ndata:  \"price\": {p}}}\n\n"));
        if i % 2 == 0 {
            out.push_str(": keep-alive\n\n");
        }
    }
    out
}

fn side(content_type: &str, body: &str, cut: bool, error: Option<&str>) -> SideRecord {
    SideRecord {
        status: Some(200),
        headers: vec![Header::new("content-type", content_type.to_owned())],
        body: Some(body.to_owned().into()),
        body_truncated: cut,
        latency_us: error.is_none().then_some(20_000),
        ttfb_us: Some(1_000),
        error: error.map(str::to_owned),
        trailers: Vec::new(),
    }
}

fn write_pairs(dir: &Path) {
    let mut w = PairWriter::new(WriterConfig::new(dir, "streams-test")).unwrap();
    let at = |i: usize| Utc.timestamp_opt(1_763_633_730 + i as i64, 0).unwrap();
    let mut n = 0;
    let mut write = |path: &str, baseline: SideRecord, canary: SideRecord, secondary: SideRecord| {
        let mut r = PairRecord::new(format!("p{n}"), at(n), "GET", path, None);
        (r.baseline, r.canary, r.secondary) = (baseline, canary, secondary);
        w.write(r).unwrap();
        n += 1;
    };
    let prices: Vec<u32> = (100..106).collect();
    let mut changed = prices.clone();
    changed[3] = 999;
    for _ in 0..EACH {
        // /quotes: the canary's fourth event carries another price (and its heartbeats differ).
        let (base, canary) = (sse(&prices), sse(&changed).replace(": keep-alive", ": ping"));
        let ct = "text/event-stream; charset=utf-8";
        write("/quotes", side(ct, &base, false, None), side(ct, &canary, false, None), side(ct, &base, false, None));

        // /ticks: the same endless stream, each recording cut at its own point mid-event; the
        // canary's recorder then gave up waiting for the end.
        let long = sse(&(0..40).collect::<Vec<_>>());
        let (b, c, s) = (&long[..700], &long[..1300], &long[..1000]);
        write("/ticks", side(ct, b, true, None), side(ct, c, true, Some("timeout")), side(ct, s, true, None));

        // /feed: NDJSON, the canary's last line cut by the cap.
        let lines: String = (0..10).map(|i| format!("{{\"seq\":{i},\"ok\":true}}\n")).collect();
        let nd = "application/x-ndjson";
        write(
            "/feed",
            side(nd, &lines, false, None),
            side(nd, &lines[..lines.len() - 9], true, None),
            side(nd, &lines, false, None),
        );
    }
    w.close().unwrap();
}

#[test]
fn one_changed_event_is_one_difference_and_cut_streams_are_the_same() {
    let d = tempfile::tempdir().unwrap();
    let pairs = d.path().join("pairs");
    write_pairs(&pairs);
    let out = d.path().join("out");
    let o = run(&["analyze", pairs.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(out.join("verdict.json")).unwrap()).unwrap();
    let said = format!("{}\n{}\n{v:#}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{said}");

    // The only difference is the changed event's price, on /quotes.
    let fields: Vec<(&str, &str)> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["route"].as_str().unwrap(), f["field"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, vec![("/quotes", "/*/data/price")], "{said}");
    let endpoint =
        |route: &str| v["endpoints"].as_array().unwrap().iter().find(|e| e["route"] == route).unwrap().clone();
    assert_eq!(endpoint("/quotes")["different"], EACH, "{said}");
    for route in ["/ticks", "/feed"] {
        let e = endpoint(route);
        assert_eq!((e["compared"].as_u64(), e["different"].as_u64()), (Some(EACH as u64), Some(0)), "{route}: {e}");
        assert_eq!(e["canary_errors"], 0, "{route}: a cut stream is not an error: {e}");
    }
    let status = |id: &str| v["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap()["status"].clone();
    assert_eq!(status("error_rate"), "pass", "{said}");
    assert_eq!(status("critical_errors"), "pass", "{said}");
    assert_eq!(status("diff_rate"), "fail", "{said}");
    assert_eq!(v["inputs"]["truncated"]["canary"], 2 * EACH, "{said}");

    // diffs.parquet has one row per changed event, at its pointer.
    let py = format!(
        "import pyarrow.parquet as pq, json\nt = pq.read_table({:?}).to_pylist()\nprint(json.dumps(sorted({{(r['route'], r['diff_path'], r['kind']) for r in t}})))\nprint(len(t))",
        out.join("diffs.parquet")
    );
    let o = std::process::Command::new(python()).args(["-c", &py]).output().expect("python runs");
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec![r#"[["/quotes", "/3/data/price", "value_changed"]]"#, &EACH.to_string()],
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // examples.json shows the streams as their decoded events; the report says so.
    let examples: Value = serde_json::from_str(&std::fs::read_to_string(out.join("examples.json")).unwrap()).unwrap();
    let e =
        examples["examples"].as_array().unwrap().iter().find(|e| e["route"] == "/quotes").expect("a /quotes example");
    assert_eq!(e["differences"][0]["path"], "/3/data/price", "{e:#}");
    let events = e["canary"]["events"].as_array().expect("events");
    assert_eq!(events.len(), 6);
    assert_eq!(events[3], serde_json::json!({"event": "quote", "id": "3", "data": {"symbol": "ACME", "price": 999}}));
    assert_eq!(events[0]["retry"], 2000);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("shown as its 6 events"), "the report shows the stream as its events");
}

/// Through the real thing: fixture services streaming server-sent events behind
/// `shadowdiff capture` (with a secondary), then `shadowdiff analyze`. The canary's fourth event
/// carries another price; an endless stream is recorded on every side up to
/// `--max-body-duration`, each cut at its own point. Analyze reports the one changed event at
/// `/3/data/price` and finds the cut streams the same, with no error on either side.
#[test]
fn through_capture_one_changed_event_is_found_and_endless_streams_cut_anywhere_are_the_same() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Duration;

    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use serde_json::json;
    use shadowdiff_fixtures::service::{EventStream, upstream};

    use crate::support::{shadowdiff, signal, wait_with_deadline};

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let prices = |fourth: u32| {
        vec![
            json!({"price": 1}),
            json!({"price": 2}),
            json!({"price": 3}),
            json!({"price": fourth}),
            json!({"price": 5}),
        ]
    };
    let tick = Duration::from_millis(40);
    let service = |fourth: u32| {
        upstream()
            .stream("/quotes", EventStream::sse(prices(fourth), Duration::from_millis(2)))
            .stream("/ticks", EventStream::sse(prices(4), tick).endless())
            .run()
    };
    let (base, canary, secondary) =
        rt.block_on(async { (service(4).await.unwrap(), service(40).await.unwrap(), service(4).await.unwrap()) });

    let d = tempfile::tempdir().unwrap();
    let pairs = d.path().join("pairs");
    let mut child = shadowdiff()
        .args(["capture", "--listen", "127.0.0.1:0", "--drain-timeout", "2s", "--max-body-duration", "1s"])
        .args(["--baseline", &base.url(), "--canary", &canary.url(), "--secondary", &secondary.url(), "--out"])
        .arg(&pairs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap()).lines().next().and_then(Result::ok).unwrap_or_default();
    let proxy = first.strip_prefix("listening on ").expect("the proxy's address").to_owned();

    const QUOTES: usize = 12;
    rt.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<http_body_util::Empty<bytes::Bytes>>();
        for _ in 0..QUOTES {
            let resp = client.get(format!("{proxy}/quotes").parse().unwrap()).await.unwrap();
            // A finite stream from a fixture: bounded by its five events.
            #[allow(clippy::disallowed_methods)]
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(String::from_utf8_lossy(&body).matches("\n\n").count(), 5);
        }
        // Two endless streams, each read past the recording's one-second cap, then dropped.
        for _ in 0..2 {
            let resp = client.get(format!("{proxy}/ticks").parse().unwrap()).await.unwrap();
            let mut body = resp.into_body();
            let mut seen = 0;
            while seen < 40 {
                let frame = body.frame().await.expect("the stream goes on").expect("no error");
                seen += frame.data_ref().map_or(0, |b| b.windows(2).filter(|w| w == b"\n\n").count());
            }
        }
    });
    signal(&child, "-TERM");
    assert!(wait_with_deadline(&mut child, Duration::from_secs(20)).success());

    let out = d.path().join("out");
    let o = run(&["analyze", pairs.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(out.join("verdict.json")).unwrap()).unwrap();
    let said = format!("{}\n{}\n{v:#}", stdout(&o), stderr(&o));
    let body_fields: Vec<(&str, &str)> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["route"].as_str().unwrap(), f["field"].as_str().unwrap()))
        .filter(|(_, f)| !f.starts_with("header:"))
        .collect();
    assert_eq!(body_fields, vec![("/quotes", "/*/data/price")], "{said}");
    let endpoint =
        |route: &str| v["endpoints"].as_array().unwrap().iter().find(|e| e["route"] == route).unwrap().clone();
    assert_eq!(endpoint("/quotes")["different"], QUOTES, "{said}");
    let ticks = endpoint("/ticks");
    assert_eq!(ticks["compared"], 2, "{said}");
    assert_eq!(
        (ticks["different"].as_u64(), ticks["baseline_errors"].as_u64(), ticks["canary_errors"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{said}"
    );
    assert_eq!(v["inputs"]["truncated"]["canary"], 2, "both /ticks recordings were cut: {said}");
    let examples: Value = serde_json::from_str(&std::fs::read_to_string(out.join("examples.json")).unwrap()).unwrap();
    let e =
        examples["examples"].as_array().unwrap().iter().find(|e| e["route"] == "/quotes").expect("a /quotes example");
    let paths: Vec<&str> = e["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["location"] == "body")
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["/3/data/price"], "{e:#}");
    rt.block_on(async {
        base.shutdown().await;
        canary.shutdown().await;
        secondary.shutdown().await;
    });
}
