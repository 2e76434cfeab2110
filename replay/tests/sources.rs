//! HAR and GoReplay sources on the realistic samples in fixtures/data, and on malformed input.

use std::path::{Path, PathBuf};

use shadowdiff_format::PairReader;
use shadowdiff_replay::Error;
use shadowdiff_replay::import::import;
use shadowdiff_replay::source::{Format, gor, har};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data").join(name)
}

#[test]
fn har_sample_becomes_pairs() {
    let r = har::read(&data("sample.har"), "t").expect("sample.har reads");
    assert_eq!(r.len(), 7);
    let user = &r[0];
    assert_eq!((user.method.as_str(), user.path.as_str(), user.query.as_deref()), ("GET", "/api/users/42", None));
    assert!(user.request_headers.iter().all(|h| !h.name.starts_with(':')), "pseudo-headers dropped");
    assert_eq!(user.baseline.status, Some(200));
    let body: serde_json::Value = serde_json::from_slice(user.baseline.body.as_deref().expect("body")).expect("json");
    assert_eq!(body["city"], "東京");
    assert_eq!(user.baseline.latency_us, Some(12_500));
    assert!(user.baseline.ttfb_us.is_some_and(|t| t > 0 && t < 12_500));
    // A redirect is recorded as such, not followed.
    assert_eq!(r[1].baseline.status, Some(301));
    assert_eq!(r[1].baseline.header("location").map(|h| h.value_lossy().into_owned()), Some("/new-path".into()));
    // Binary content arrives byte for byte from base64.
    let png = r[3].baseline.body.as_deref().expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.contains(&0u8));
    // A POST keeps its body; a query keeps its percent-encoding.
    assert_eq!(r[4].request_body.as_deref(), Some(&br#"{"sku": "a1b2c3d4e5", "qty": 2}"#[..]));
    assert_eq!(r[5].query.as_deref(), Some("q=caf%C3%A9&page=2"));
    // An aborted request (status 0) has no response, and says so.
    assert_eq!((r[6].baseline.status, r[6].baseline.error.as_deref()), (None, Some("other")));
}

#[test]
fn gor_sample_becomes_pairs() {
    let r = gor::read(&data("sample.gor"), "t").expect("sample.gor reads");
    assert_eq!(r.len(), 4, "four requests; the orphan response is skipped");
    let u = &r[0];
    assert_eq!((u.path.as_str(), u.query.as_deref()), ("/api/users/7", Some("fields=name")));
    assert_eq!(u.captured_at.timestamp_nanos_opt(), Some(1_763_633_730_123_456_000));
    assert_eq!(u.baseline.latency_us, Some(2_001));
    let name = |b: &Option<bytes::Bytes>| {
        serde_json::from_slice::<serde_json::Value>(b.as_deref().expect("body")).expect("json")["name"].clone()
    };
    assert_eq!(name(&u.baseline.body), "Grüße aus München");
    assert_eq!(u.canary.status, Some(200), "type 3 is the replayed (canary) response");
    assert_ne!(u.canary.body, u.baseline.body);
    assert_eq!(r[1].request_body.as_deref(), Some(&br#"{"sku":"a1b2c3d4e5","qty":1}"#[..]));
    assert_eq!(r[1].baseline.body.as_deref(), Some(&br#"{"cart":1}"#[..]), "chunked body decoded");
    assert_eq!(r[2].baseline.status, Some(302));
    assert_eq!(r[3].baseline.body.as_deref().map(<[u8]>::len), Some(256));
    assert_eq!(r[3].baseline.body.as_deref().map(|b| b[0..3].to_vec()), Some(vec![0, 1, 2]));
}

#[test]
fn import_writes_readable_pair_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (format, file, n) in [(Format::Har, "sample.har", 7), (Format::Gor, "sample.gor", 4)] {
        let out = dir.path().join(format.name());
        let s = import(format, &data(file), &out, "imp").expect("import");
        assert_eq!(s.pairs, n);
        let back = PairReader::read_all_records(&[out.to_str().expect("utf-8")]).expect("read back");
        assert_eq!(back.len() as u64, n);
        assert_eq!(back, {
            let mut orig = shadowdiff_replay::source::read(format, &data(file), "imp").expect("read");
            orig.sort_by_key(|r| r.captured_at);
            // pair ids are fresh per read; compare the rest.
            for (o, b) in orig.iter_mut().zip(&back) {
                o.pair_id = b.pair_id.clone();
            }
            orig
        });
    }
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write");
    p
}

#[test]
fn malformed_input_names_the_file_and_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let entry = |url: &str, extra: &str| {
        format!(
            r#"{{"log":{{"entries":[{{"startedDateTime":"2026-11-20T10:00:00Z","time":1,"request":{{"method":"GET","url":"https://h/ok","headers":[]}},"response":{{"status":200,"headers":[],"content":{{"text":"x"}}}}}},{{"startedDateTime":"2026-11-20T10:00:01Z","time":1,"request":{{"method":"GET","url":"{url}","headers":[]}},"response":{{"status":200,"headers":[],"content":{{"text":"x"{extra}}}}}}}]}}}}"#
        )
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (write(d, "notjson.har", b"<html>"), "is not JSON"),
        (write(d, "nolog.har", br#"{"entries": []}"#), "lacks the HAR structure"),
        (write(d, "badurl.har", entry("not a url", "").as_bytes()), "HAR entry 1 (request.url)"),
        (
            write(d, "badb64.har", entry("https://h/x", r#","encoding":"base64""#).as_bytes()),
            "HAR entry 1 (response.content)",
        ),
    ];
    for (path, needle) in cases {
        let e = har::read(&path, "t").expect_err("malformed");
        let msg = e.to_string();
        assert!(
            msg.contains(needle) && msg.contains(path.file_name().and_then(|n| n.to_str()).expect("name")),
            "{msg}"
        );
    }
    let gor_cases: Vec<(PathBuf, &str)> = vec![
        (write(d, "badtype.gor", b"9 id 1 0\nGET / HTTP/1.1\r\n\r\n"), "payload 0 at byte 0: unknown payload type `9`"),
        (
            write(
                d,
                "badts.gor",
                "1 id 1 0\nGET / HTTP/1.1\r\n\r\n\n🐵🙈🙉\n1 id2 soon\nGET / HTTP/1.1\r\n\r\n".as_bytes(),
            ),
            "payload 1",
        ),
        (write(d, "badhttp.gor", b"1 id 1 0\nthis is not http\r\n\r\n"), "does not parse"),
        (write(d, "nometa.gor", b"GET / HTTP/1.1"), "no meta line"),
    ];
    for (path, needle) in gor_cases {
        let e = gor::read(&path, "t").expect_err("malformed");
        assert!(matches!(e, Error::Gor { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains(needle) && msg.contains(path.file_name().and_then(|n| n.to_str()).expect("name")),
            "{msg}"
        );
    }
}
