//! Abusive clients against `shadowdiff capture`'s listener while a well-behaved client goes on
//! being served the baseline's exact answer: slowloris (headers a byte at a time), idle
//! connections past --max-connections, an oversized header; silent and idle connections closed by
//! --idle-timeout; HTTP/2 rapid reset (CVE-2023-44487), provoked resets (MadeYouReset), a
//! CONTINUATION flood and a PING flood, each told apart on the wire (GOAWAY and its code) and in
//! /metrics.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use shadowdiff_fixtures::service::{Upstream, upstream};

use shadowdiff_format::reader::PairFile;
use shadowdiff_format::resolve_inputs;

use crate::support::{shadowdiff, signal, wait_with_deadline};

/// Whether the server closed `s` within `limit` (EOF or reset), reading and discarding anything.
// Plain blocking sockets on a thread: the OS clock.
#[allow(clippy::disallowed_methods)]
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
// A synchronous test around a child process and blocking sockets (OS clock); whole answers read.
#[allow(clippy::disallowed_methods)]
fn abusive_clients_are_cut_while_a_good_client_is_served() {
    let (rt, base, canary) = runtime_and_twins();
    let out = tempfile::tempdir().expect("tempdir");
    let proxy = Capture::start(
        &base.url(),
        &canary.url(),
        &out.path().join("pairs"),
        out.path().join("capture.log"),
        &["--max-connections", "64", "--header-read-timeout", "1s", "--max-header-size", "8KiB"],
    );
    let (url, addr) = (format!("http://{}", proxy.addr), proxy.addr.clone());

    // The well-behaved client: the baseline's exact answer, again and again, until told to stop.
    let expected = {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let base_url = format!("{}/users/1", base.url());
        rt.block_on(async move {
            let r = client.get(base_url.parse().expect("uri")).await.expect("baseline");
            r.into_body().collect().await.expect("body").to_bytes()
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let good = {
        let (stop, url, expected) = (Arc::clone(&stop), format!("{url}/users/1"), expected.clone());
        rt.spawn(async move {
            let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let (mut served, mut wrong) = (0u32, 0u32);
            while !stop.load(Ordering::Relaxed) && served + wrong < 5_000 {
                let ok = match client.get(url.parse().expect("uri")).await {
                    Ok(r) if r.status() == 200 => r.into_body().collect().await.is_ok_and(|b| b.to_bytes() == expected),
                    _ => false,
                };
                if ok {
                    served += 1
                } else {
                    wrong += 1
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (served, wrong)
        })
    };

    // Slowloris: 40 connections sending a request's headers a byte every 100 ms, forever.
    let slow: Vec<_> = (0..40)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).expect("connect");
                let head = format!("GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ");
                let started = Instant::now();
                for b in head.bytes().chain(std::iter::repeat(b'a')) {
                    if s.write_all(&[b]).is_err() || started.elapsed() > Duration::from_secs(10) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                started.elapsed()
            })
        })
        .collect();
    for t in slow {
        let held = t.join().expect("slowloris thread");
        assert!(held < Duration::from_secs(5), "a slowloris connection was cut by the header timeout, after {held:?}");
    }

    // Idle connections past the cap: those past it are closed at once. (A connection that
    // never sends a byte is bounded by the cap only: hyper's header timeout starts at the
    // first byte.)
    let mut idle: Vec<_> = (0..100).map(|_| TcpStream::connect(&addr).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused = idle.iter_mut().map(|s| closed_within(s, Duration::from_millis(100))).filter(|c| *c).count();
    assert!(refused >= 100 - 64, "connections past --max-connections 64 are closed at once: {refused} of 100");
    drop(idle);

    // An oversized header: refused, nothing else disturbed.
    let mut big = TcpStream::connect(&addr).expect("connect");
    let _ = big
        .write_all(format!("GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(64 * 1024)).as_bytes());
    let mut answer = Vec::new();
    big.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = big.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "an oversized header is refused: {answer}");

    stop.store(true, Ordering::Relaxed);
    let (served, wrong) = rt.block_on(good).expect("good client");
    eprintln!(
        "listener abuse: the good client was served {served} times, {wrong} failures; {refused} of 100 idle refused at the cap"
    );
    assert_eq!(wrong, 0, "the good client was always served the baseline's answer");
    assert!(served > 100, "{served}");
    proxy.stop_and_check_counts(&out.path().join("pairs"));
    drop((base, canary));
}

/// A two-worker runtime for the test's clients, and a baseline and a canary answering
/// `/users/1` with the same document.
fn runtime_and_twins() -> (tokio::runtime::Runtime, Upstream, Upstream) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let doc = json!({"id": 1, "name": "Ada"});
    let (base, canary) = rt.block_on(async {
        let base = upstream().route("/users/1", doc.clone()).noise(false).run().await.expect("baseline");
        let canary = upstream().route("/users/1", doc.clone()).noise(false).run().await.expect("canary");
        (base, canary)
    });
    (rt, base, canary)
}

/// A capture process on loopback ports, its stderr in a file.
struct Capture {
    child: std::process::Child,
    /// host:port of the client listener.
    addr: String,
    /// host:port of the admin listener.
    admin: String,
}

impl Capture {
    fn start(base: &str, canary: &str, out: &std::path::Path, log: std::path::PathBuf, extra: &[&str]) -> Self {
        let mut child = shadowdiff()
            .arg("capture")
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "info"])
            .args(["--baseline", base, "--canary", canary, "--out", out.to_str().expect("utf-8")])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("capture starts");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("listen line");
        let addr = line.trim().strip_prefix("listening on http://").expect("the proxy address").to_owned();
        line.clear();
        stdout.read_line(&mut line).expect("admin line");
        let admin = line.trim().strip_prefix("admin on http://").expect("the admin address").to_owned();
        Self { child, addr, admin }
    }

    /// The value of one unlabelled series, or of one labelled sample (`name{reason="idle"}`).
    fn metric(&self, series: &str) -> u64 {
        let mut s = TcpStream::connect(&self.admin).expect("admin");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("scrape");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{series} in /metrics"))
            .trim()
            .parse()
            .expect("a number")
    }

    fn closed(&self, reason: &str) -> u64 {
        self.metric(&format!("shadowdiff_client_connections_closed_total{{reason=\"{reason}\"}}"))
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// SIGTERM, a clean exit, and the counters of the last file: seen = recorded + dropped +
    /// skipped, and recorded is the rows in the files.
    fn stop_and_check_counts(mut self, out: &std::path::Path) -> std::collections::BTreeMap<String, u64> {
        signal(&self.child, "-TERM");
        assert!(wait_with_deadline(&mut self.child, Duration::from_secs(20)).success(), "capture exits 0");
        let files = resolve_inputs(&[out.to_str().expect("utf-8")]).expect("files");
        let infos: Vec<_> = files.iter().map(|f| PairFile::open(f).expect("every file is whole").info).collect();
        let rows: u64 = infos.iter().map(|i| i.rows).sum();
        let c = infos.iter().max_by_key(|i| i.file_seq).expect("a file").counters.clone();
        assert_eq!(c["seen"], c["recorded"] + c["dropped"] + c["skipped"], "{c:?}");
        assert_eq!(c["recorded"], rows, "{c:?}");
        c
    }
}

/// The baseline's answer to `GET url`, then a task that asks capture for `path` again and again
/// (HTTP/2 with prior knowledge when `h2`) until `stop`, counting answers that are exactly it and
/// any that are not.
// Small, whole answers read from a fixture baseline.
#[allow(clippy::disallowed_methods)]
fn good_client(
    rt: &tokio::runtime::Runtime,
    base: &str,
    proxy: &str,
    h2: bool,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u32, u32)> {
    let expected = rt.block_on(async {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let r = client.get(format!("{base}/users/1").parse().expect("uri")).await.expect("baseline");
        r.into_body().collect().await.expect("body").to_bytes()
    });
    let (stop, url) = (Arc::clone(stop), format!("http://{proxy}/users/1"));
    rt.spawn(async move {
        let client = Client::builder(TokioExecutor::new()).http2_only(h2).build_http::<Empty<Bytes>>();
        let (mut served, mut wrong) = (0u32, 0u32);
        while !stop.load(Ordering::Relaxed) && served + wrong < 20_000 {
            let ok = match client.get(url.parse().expect("uri")).await {
                Ok(r) if r.status() == 200 => r.into_body().collect().await.is_ok_and(|b| b.to_bytes() == expected),
                _ => false,
            };
            if ok {
                served += 1
            } else {
                wrong += 1
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (served, wrong)
    })
}

/// Raw HTTP/2 frames, written by hand: the h2 crate will not send the abusive patterns.
mod frames {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const CONTINUATION: u8 = 0x9;
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PRIORITY: u8 = 0x20;
    /// GOAWAY's error code for a peer that has to calm down.
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;

    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).expect("small frame").to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, flags];
        f.extend(stream.to_be_bytes());
        f.extend(payload);
        f
    }

    /// The client preface and an empty SETTINGS.
    pub fn preface() -> Vec<u8> {
        let mut p = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        p.extend(frame(SETTINGS, 0, 0, &[]));
        p
    }

    /// A HEADERS block for `GET http://x/users/1` in HPACK: static-table indices for :method
    /// GET and :scheme http, :path and :authority as literals with an indexed name.
    pub fn get() -> Vec<u8> {
        let mut h = vec![0x82, 0x86, 0x04, 8];
        h.extend(b"/users/1");
        h.extend([0x01, 1, b'x']);
        h
    }

    /// Rapid reset's unit (CVE-2023-44487): stream `2i + 1` opened with a whole GET, then
    /// cancelled (RST_STREAM CANCEL) at once.
    pub fn rapid_reset(i: u32) -> Vec<u8> {
        let id = 2 * i + 1;
        let mut f = frame(HEADERS, END_HEADERS | END_STREAM, id, &get());
        f.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
        f
    }

    /// One abusive connection: the preface, then `unit(i)` for i = 0, 1, … in batches of 100
    /// until the server closes it or `limit` units went out (loopback buffers take megabytes
    /// before a busy server reads them, so how many went out is not asserted), then everything
    /// the server sends until it closes. Returns the units written and the GOAWAYs received.
    pub fn flood(mut s: TcpStream, unit: &dyn Fn(u32) -> Vec<u8>, limit: u32) -> (u32, Vec<(u32, String)>) {
        s.set_write_timeout(Some(std::time::Duration::from_secs(5))).expect("timeout");
        let reader = {
            let r = s.try_clone().expect("clone");
            std::thread::spawn(move || until_closed(r, None))
        };
        let mut sent = 0;
        let _ = s.write_all(&preface());
        while sent < limit {
            let batch: Vec<u8> = (sent..sent + 100).flat_map(unit).collect();
            if s.write_all(&batch).is_err() {
                break;
            }
            sent += 100;
        }
        let _ = s.shutdown(std::net::Shutdown::Write);
        let (goaways, _) = reader.join().expect("reader");
        (sent, goaways)
    }

    /// The next frame (kind, flags, stream, payload), or None at EOF or a reset.
    pub fn read(s: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).ok()?;
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        Some((head[3], head[4], stream, payload))
    }

    /// Read frames until the server closes the connection, acknowledging its PINGs (when a
    /// writer is given); returns the GOAWAY frames' (error code, debug data) and how many
    /// frames of any kind came.
    pub fn until_closed(mut s: TcpStream, mut ack: Option<TcpStream>) -> (Vec<(u32, String)>, usize) {
        let (mut goaways, mut n) = (Vec::new(), 0);
        while let Some((kind, flags, _, payload)) = read(&mut s) {
            n += 1;
            if kind == GOAWAY && payload.len() >= 8 {
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                goaways.push((code, String::from_utf8_lossy(&payload[8..]).into_owned()));
            }
            if kind == PING
                && flags & ACK == 0
                && let Some(w) = ack.as_mut()
            {
                let _ = std::io::Write::write_all(w, &frame(PING, ACK, 0, &payload));
            }
        }
        (goaways, n)
    }
}

/// Whether `answer` holds a whole HTTP/1.1 response (Content-Length or chunked).
fn whole_answer(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let body = &answer[end + 4..];
    match head.lines().find_map(|l| l.strip_prefix("content-length:")) {
        Some(n) => body.len() >= n.trim().parse::<usize>().expect("a length"),
        None => body.ends_with(b"0\r\n\r\n"),
    }
}

#[test]
// A synchronous test around a child process and blocking sockets (OS clock).
#[allow(clippy::disallowed_methods)]
fn silent_and_idle_connections_are_closed_after_the_idle_timeout() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // Every answer's body comes in 6 pieces 1 s apart: 6 s in flight, longer than the idle timeout.
    let doc = json!({"id": 1, "name": "Ada"});
    let (base, canary) = rt.block_on(async {
        let base = upstream().route("/users/1", doc.clone()).noise(false).slow_body(6, Duration::from_secs(1));
        let canary = upstream().route("/users/1", doc.clone()).noise(false);
        (base.run().await.expect("baseline"), canary.run().await.expect("canary"))
    });
    let out = tempfile::tempdir().expect("tempdir");
    let log = out.path().join("capture.log");
    let proxy = Capture::start(
        &base.url(),
        &canary.url(),
        &out.path().join("pairs"),
        log,
        &["--idle-timeout", "4s", "--header-read-timeout", "30s"],
    );

    // 300 connections that never send a byte: hyper's header timer never starts for them.
    // (Connecting takes a few milliseconds each on a loaded machine: the timeout leaves room.)
    let started = Instant::now();
    let mut silent: Vec<_> = (0..300).map(|_| TcpStream::connect(&proxy.addr).expect("connect")).collect();
    while proxy.metric("shadowdiff_client_connections_open") < 300 && started.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let accepted_in = started.elapsed();
    assert_eq!(proxy.metric("shadowdiff_client_connections_open"), 300, "all open before the idle timeout");
    assert!(!closed_within(
        &mut silent[0],
        Duration::from_millis(3_500) - started.elapsed().min(Duration::from_millis(3_500))
    ));
    for s in &mut silent {
        assert!(closed_within(s, Duration::from_secs(10)), "a silent connection is closed by --idle-timeout");
    }
    let silent_closed = started.elapsed();
    assert!(silent_closed >= Duration::from_millis(3_900), "not before the idle timeout: {silent_closed:?}");
    drop(silent);

    // HTTP/1.1 kept alive: a response in flight for 2 s is not cut; idle after it, it is closed.
    let mut kept = TcpStream::connect(&proxy.addr).expect("connect");
    kept.write_all(b"GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    kept.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let asked = Instant::now();
    while !whole_answer(&answer) {
        let n = kept.read(&mut buf).expect("the answer, whole");
        assert!(n > 0, "cut mid-answer: {}", String::from_utf8_lossy(&answer));
        answer.extend(&buf[..n]);
    }
    let in_flight = asked.elapsed();
    assert!(in_flight >= Duration::from_millis(5_500), "the slow answer took {in_flight:?}");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    let answered = Instant::now();
    assert!(closed_within(&mut kept, Duration::from_secs(10)), "an idle kept-alive connection is closed");
    let kept_idle = answered.elapsed();
    assert!(kept_idle >= Duration::from_millis(3_900), "{kept_idle:?}");

    // HTTP/2 holding its connection with PINGs and no stream: GOAWAY, then closed.
    let h2 = TcpStream::connect(&proxy.addr).expect("connect");
    let mut w = h2.try_clone().expect("clone");
    w.write_all(&frames::preface()).expect("preface");
    let reader = {
        let (r, ack) = (h2.try_clone().expect("clone"), h2.try_clone().expect("clone"));
        std::thread::spawn(move || frames::until_closed(r, Some(ack)))
    };
    let h2_started = Instant::now();
    while !reader.is_finished() && h2_started.elapsed() < Duration::from_secs(15) {
        let _ = w.write_all(&frames::frame(frames::PING, 0, 0, b"stillhr!"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let (goaways, _) = reader.join().expect("reader");
    let h2_idle = h2_started.elapsed();
    assert!(goaways.iter().any(|(code, _)| *code == 0), "GOAWAY NO_ERROR: {goaways:?}");
    assert!(h2_idle >= Duration::from_millis(3_900) && h2_idle < Duration::from_secs(10), "{h2_idle:?}");

    std::thread::sleep(Duration::from_millis(200));
    let idle = proxy.closed("idle");
    let accepted = proxy.metric("shadowdiff_client_connections_total");
    let open = proxy.metric("shadowdiff_client_connections_open");
    let closed: u64 =
        ["client", "refused", "idle", "header_timeout", "header_too_large", "http2_abuse", "tls_handshake", "error"]
            .iter()
            .map(|r| proxy.closed(r))
            .sum();
    eprintln!(
        "idle timeout 4s: 300 silent connections (open within {accepted_in:?}) closed after {silent_closed:?}; a kept-alive one {kept_idle:?} after a {in_flight:?} answer; an HTTP/2 one sending PINGs after {h2_idle:?}; closed idle {idle}, accepted {accepted}, open {open}"
    );
    assert_eq!(idle, 302, "the silent, kept-alive and HTTP/2 connections, counted idle");
    // The scrapes are the admin listener's, not counted here.
    assert_eq!(accepted, closed + open, "every connection accepted is open or closed for a reason");
    assert_eq!(open, 0);
    proxy.stop_and_check_counts(&out.path().join("pairs"));
    drop((base, canary));
}

#[test]
// A synchronous test around a child process and blocking sockets (OS clock).
#[allow(clippy::disallowed_methods)]
fn http2_abuse_is_cut_while_good_clients_are_served() {
    let (rt, base, canary) = runtime_and_twins();
    let out = tempfile::tempdir().expect("tempdir");
    let pairs = out.path().join("pairs");
    let log = out.path().join("capture.log");
    // h2's own bounds, each abusive connection served at once: without the abuse penalty (its
    // own test below), which would hold each of these sequential connections for a second.
    let proxy = Capture::start(&base.url(), &canary.url(), &pairs, log.clone(), &["--abuse-penalty", "0s"]);
    let stop = Arc::new(AtomicBool::new(false));
    let good_h1 = good_client(&rt, &base.url(), &proxy.addr, false, &stop);
    let good_h2 = good_client(&rt, &base.url(), &proxy.addr, true, &stop);
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = proxy.rss_kib();

    let abuse = |unit: &dyn Fn(u32) -> Vec<u8>, limit: u32| {
        frames::flood(TcpStream::connect(&proxy.addr).expect("connect"), unit, limit)
    };
    let calm = |goaways: &[(u32, String)], why: &str| {
        goaways.iter().any(|(code, debug)| *code == frames::ENHANCE_YOUR_CALM && debug == why)
    };

    // Rapid reset (CVE-2023-44487): HEADERS and RST_STREAM at once, stream after stream.
    let rapid = frames::rapid_reset;
    let mut rapid_streams = 0;
    for _ in 0..50 {
        let (sent, goaways) = abuse(&rapid, 100_000);
        assert!(calm(&goaways, "too_many_resets"), "rapid reset ends in GOAWAY ENHANCE_YOUR_CALM: {goaways:?}");
        rapid_streams += sent;
    }

    // MadeYouReset (CVE-2025-8671): streams the server itself must reset, here a HEADERS frame
    // whose stream depends on itself (a stream error, PROTOCOL_ERROR).
    let provoked = |i: u32| {
        let id = 2 * i + 1;
        let mut payload = id.to_be_bytes().to_vec();
        payload.push(16);
        payload.extend(frames::get());
        frames::frame(frames::HEADERS, frames::END_HEADERS | frames::END_STREAM | frames::PRIORITY, id, &payload)
    };
    for _ in 0..5 {
        let (_, goaways) = abuse(&provoked, 100_000);
        assert!(calm(&goaways, "too_many_internal_resets"), "provoked resets end in GOAWAY: {goaways:?}");
    }

    // CONTINUATION flood: one header block that never ends.
    let flood = |i: u32| {
        if i == 0 {
            frames::frame(frames::HEADERS, frames::END_STREAM, 1, &frames::get())
        } else {
            frames::frame(frames::CONTINUATION, 0, 1, &[0x00, 1, b'a', 1, b'b'])
        }
    };
    for _ in 0..5 {
        let (_, goaways) = abuse(&flood, 100_000);
        assert!(calm(&goaways, "too_many_continuations"), "a CONTINUATION flood ends in GOAWAY: {goaways:?}");
    }

    // PING flood, its answers never read: h2 keeps one pending answer and stops reading.
    let ping = |_: u32| frames::frame(frames::PING, 0, 0, b"flooding");
    let mut s = TcpStream::connect(&proxy.addr).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let _ = s.write_all(&frames::preface());
    let mut pings = 0u32;
    while pings < 1_000_000 && s.write_all(&(0..100).flat_map(ping).collect::<Vec<u8>>()).is_ok() {
        pings += 100;
    }
    drop(s);

    std::thread::sleep(Duration::from_millis(500));
    let rss_after = proxy.rss_kib();
    stop.store(true, Ordering::Relaxed);
    let (h1_served, h1_wrong) = rt.block_on(good_h1).expect("good client");
    let (h2_served, h2_wrong) = rt.block_on(good_h2).expect("good client");
    let abuse_closed = proxy.closed("http2_abuse");
    let seen = proxy.metric("shadowdiff_requests_total");
    let warned = std::fs::read_to_string(&log).expect("log").lines().filter(|l| l.contains("WARN")).count();
    eprintln!(
        "HTTP/2 abuse: {rapid_streams} streams reset in 50 rapid-reset connections, 5 provoked-reset and 5 CONTINUATION-flood connections, {pings} PINGs unread; closed http2_abuse {abuse_closed}; requests seen {seen}; good clients served {h1_served} (HTTP/1.1) and {h2_served} (HTTP/2), failures {h1_wrong} and {h2_wrong}; RSS {rss_before} KiB before, {rss_after} KiB after; {warned} WARN lines"
    );
    assert_eq!((h1_wrong, h2_wrong), (0, 0), "the good clients were always served the baseline's answer");
    assert!(h1_served > 50 && h2_served > 50, "{h1_served} {h2_served}");
    assert_eq!(abuse_closed, 60, "every abusive connection counted http2_abuse");
    // The streams reset before the server took them never became upstream requests.
    assert!(seen < u64::from(h1_served + h2_served) + 2_000, "{seen} requests for {rapid_streams} reset streams");
    assert!(rss_after < rss_before + 64 * 1024, "memory stays bounded: {rss_before} → {rss_after} KiB");
    assert!(warned <= 2, "abusive clients are logged at most once a minute, not per connection ({warned} WARN lines)");
    proxy.stop_and_check_counts(&pairs);
    drop((base, canary));
}

/// The abuse penalty: once an address has had a connection closed for HTTP/2 abuse, its next
/// connection waits unread for `--abuse-penalty` and is then served (here it abuses again and is
/// cut again), while a client from another loopback address connects and is served at once; after
/// the penalty the address is served at once again. A connection still held at SIGTERM is closed
/// and capture exits cleanly.
#[test]
// Blocking sockets on threads (OS clock).
#[allow(clippy::disallowed_methods)]
fn an_address_cut_for_http2_abuse_waits_while_others_are_served() {
    let (rt, base, canary) = runtime_and_twins();
    let out = tempfile::tempdir().expect("tempdir");
    let pairs = out.path().join("pairs");
    let penalty = Duration::from_millis(800);
    let proxy = Capture::start(
        &base.url(),
        &canary.url(),
        &pairs,
        out.path().join("capture.log"),
        &["--abuse-penalty", "800ms"],
    );
    let target: std::net::SocketAddr = proxy.addr.parse().expect("proxy address");
    // Linux routes all of 127.0.0.0/8 to loopback: the abuser comes from 127.0.0.2.
    let connect_from = |source: &str| -> TcpStream {
        let s = rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind(format!("{source}:0").parse().expect("source")).expect("bind the source address");
            socket.connect(target).await.expect("connect").into_std().expect("std socket")
        });
        s.set_nonblocking(false).expect("blocking");
        s
    };
    // A rapid-reset connection from `source`: how long from connecting until capture closed it,
    // and its GOAWAYs.
    let rapid_reset = |source: &str| {
        let s = connect_from(source);
        let started = Instant::now();
        let (_, goaways) = frames::flood(s, &frames::rapid_reset, 20_000);
        (started.elapsed(), goaways)
    };
    let cut = |goaways: &[(u32, String)]| goaways.iter().any(|(code, _)| *code == frames::ENHANCE_YOUR_CALM);
    // One HTTP/1.1 request on a fresh connection from `source`: how long it took, and whether the
    // answer was whole.
    let get_from = |source: &str| {
        let mut s = connect_from(source);
        let started = Instant::now();
        s.write_all(b"GET /users/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("request");
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        (started.elapsed(), answer.starts_with(b"HTTP/1.1 200") && whole_answer(&answer))
    };

    let (first, goaways) = rapid_reset("127.0.0.2");
    assert!(cut(&goaways), "the first rapid-reset connection is cut by h2's bound: {goaways:?}");
    assert_eq!(proxy.metric("shadowdiff_client_connections_held_total"), 0, "the first one was not held");
    // The next one from the same address waits the penalty out, then is served (and cut again);
    // meanwhile fresh connections from 127.0.0.1 are served without waiting.
    let second = std::thread::scope(|scope| {
        let abuser = scope.spawn(|| rapid_reset("127.0.0.2"));
        std::thread::sleep(Duration::from_millis(100));
        for _ in 0..5 {
            let (took, whole) = get_from("127.0.0.1");
            assert!(whole, "a client from another address is served while the abuser's address waits");
            assert!(took < penalty, "and is not held ({took:?})");
        }
        abuser.join().expect("abuser")
    });
    assert!(cut(&second.1), "the held connection is served, then cut again: {:?}", second.1);
    assert!(
        second.0 >= penalty - Duration::from_millis(150),
        "the address's next connection waited the penalty out ({:?}; the first was cut in {first:?})",
        second.0
    );
    assert_eq!(proxy.metric("shadowdiff_client_connections_held_total"), 1, "only the abuser's connection was held");
    assert_eq!(proxy.closed("http2_abuse"), 2);
    // Once the penalty has run out the address is served at once.
    std::thread::sleep(penalty + Duration::from_millis(200));
    let (_, whole) = get_from("127.0.0.2");
    assert!(whole, "after the penalty the address is served again");
    assert_eq!(proxy.metric("shadowdiff_client_connections_held_total"), 1, "and not held");

    // A connection held at SIGTERM is closed unread, and capture still exits 0 with its counts.
    rapid_reset("127.0.0.2");
    let held = connect_from("127.0.0.2");
    let started = Instant::now();
    while proxy.metric("shadowdiff_client_connections_held_total") < 2 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(proxy.metric("shadowdiff_client_connections_held_total"), 2);
    proxy.stop_and_check_counts(&pairs);
    drop((held, base, canary));
}

/// The suite's short soak (bench/soak.sh is the long one): 40 s of steady load with a file
/// rotated every 2 s, capture's RSS and descriptors sampled every 2 s. Neither grows from the
/// first half of the run to the second, every file is whole, and the counts add up.
#[test]
// A synchronous test around a child process (OS clock for the sampling loop).
#[allow(clippy::disallowed_methods)]
fn a_short_soak_keeps_memory_and_descriptors_flat() {
    let (rt, base, canary) = runtime_and_twins();
    let out = tempfile::tempdir().expect("tempdir");
    let pairs = out.path().join("pairs");
    let proxy =
        Capture::start(&base.url(), &canary.url(), &pairs, out.path().join("capture.log"), &["--rotate-age", "2s"]);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4).map(|_| good_client(&rt, &base.url(), &proxy.addr, false, &stop)).collect();
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", proxy.child.id())).expect("/proc fd").count();
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_secs(2));
        samples.push((proxy.rss_kib(), fds()));
    }
    stop.store(true, Ordering::Relaxed);
    let (mut served, mut wrong) = (0, 0);
    for c in clients {
        let (s, w) = rt.block_on(c).expect("client");
        (served, wrong) = (served + s, wrong + w);
    }
    let seen = proxy.metric("shadowdiff_requests_total");
    let c = proxy.stop_and_check_counts(&pairs);
    let files = resolve_inputs(&[pairs.to_str().expect("utf-8")]).expect("files").len();
    let (first, last) = samples.split_at(samples.len() / 2);
    let max = |s: &[(u64, usize)]| (s.iter().map(|x| x.0).max().unwrap_or(0), s.iter().map(|x| x.1).max().unwrap_or(0));
    let ((rss1, fd1), (rss2, fd2)) = (max(first), max(last));
    eprintln!(
        "short soak: {served} requests in 40 s, {wrong} failures; seen {seen}, recorded {}, {files} files; RSS KiB first half max {rss1}, last half max {rss2}; descriptors {fd1} then {fd2}; samples {samples:?}",
        c["recorded"]
    );
    assert_eq!(wrong, 0, "every request was answered with the baseline's answer");
    assert_eq!(seen, u64::from(served), "capture saw every request, and only those");
    assert_eq!(c["seen"], seen);
    assert!(files >= 10, "rotated every 2 s: {files} files");
    assert!(rss2 <= rss1 + rss1 / 4 + 8 * 1024, "RSS does not grow: {rss1} KiB, then {rss2} KiB");
    assert!(fd2 <= fd1 + 2, "descriptors do not grow: {fd1}, then {fd2}");
    drop((base, canary));
}
