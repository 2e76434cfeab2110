//! Abusive clients against `shadowdiff capture`'s listener (--max-connections,
//! --header-read-timeout, --max-header-size) while a well-behaved client goes on being served
//! the baseline's exact answer: slowloris (headers a byte at a time), idle connections past the
//! cap, an oversized header.

use std::io::{Read, Write};
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
use shadowdiff_fixtures::service::upstream;

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
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let doc = json!({"id": 1, "name": "Ada"});
    let (base, canary) = rt.block_on(async {
        let base = upstream().route("/users/1", doc.clone()).noise(false).run().await.expect("baseline");
        let canary = upstream().route("/users/1", doc.clone()).noise(false).run().await.expect("canary");
        (base, canary)
    });
    let out = tempfile::tempdir().expect("tempdir");
    let mut child = shadowdiff()
        .arg("capture")
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "warn"])
        .args(["--baseline", &base.url(), "--canary", &canary.url(), "--out", out.path().to_str().expect("utf-8")])
        .args(["--max-connections", "64", "--header-read-timeout", "1s", "--max-header-size", "8KiB"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("capture starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("listen line");
    let url = line.trim().strip_prefix("listening on ").expect("the proxy address").to_owned();
    let mut admin = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut admin).expect("admin line");
    let addr = url.strip_prefix("http://").expect("http").to_owned();

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
    signal(&child, "-TERM");
    assert!(wait_with_deadline(&mut child, Duration::from_secs(20)).success());
    drop((base, canary));
}
