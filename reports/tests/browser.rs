//! These tests need Debian's `chromium` (installed by `scripts/test`). Without it they fail,
//! on purpose: a report nobody has opened in a browser is not tested.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shadowdiff_reports::html::write_page;

use crate::support::{Image, analyze_and_report, hostile_page, tags};

const TIMEOUT: Duration = Duration::from_secs(90);

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("SHADOWDIFF_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium is required by the report browser tests and was not found on PATH \
         (nor in SHADOWDIFF_CHROMIUM); run scripts/test, which installs Debian's `chromium` package"
    );
}

/// Runs Chromium headless on `page` with the isolation flags plus `extra`, with a fresh
/// profile, console logging on stderr and a deadline.
// Times a child process from a plain thread: the OS clock.
#[allow(clippy::disallowed_methods)]
fn run_chromium(page: &Path, extra: &[String]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start chromium: {e}; run scripts/test"));
    // Drain both pipes while waiting: a DOM dump is larger than a pipe buffer.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut buf).ok();
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() };
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Console output Chromium logged: uncaught exceptions, console.* calls, CSP refusals.
fn console_problems(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused to")).collect()
}

/// Loads `page` in Chromium and returns the DOM after load, asserting no console problems.
fn load_dom(page: &Path) -> String {
    let output = run_chromium(page, &["--dump-dom".into()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(console_problems(&stderr), Vec::<&str>::new(), "console errors while loading the report");
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// Nothing was injected: no script element, no handler, no foreign element, no remote URL.
fn assert_inert(dom: &str) {
    let lower = dom.to_ascii_lowercase();
    assert!(!lower.contains("<script"));
    assert!(!lower.contains("<textarea"));
    assert!(!lower.contains("<b>"));
    for (name, attrs) in tags(dom) {
        for (attr, value) in attrs {
            assert!(!attr.starts_with("on"), "<{name} {attr}> in the live DOM");
            if attr == "src" {
                assert!(value.starts_with("data:image/png;base64,"), "<{name} src={value}>");
            }
            if attr == "href" {
                assert!(value.starts_with('#'), "<{name} href={value}>");
            }
        }
        assert_ne!(name, "iframe");
        assert_ne!(name, "object");
    }
}

fn write_report(dir: &Path) -> PathBuf {
    let path = dir.join("report.html");
    write_page(&hostile_page(), &path).unwrap();
    path
}

#[test]
fn report_screenshot_is_not_blank() {
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(dir.path());
    let shot = dir.path().join("screenshot.png");
    let output = run_chromium(&page, &[format!("--screenshot={}", shot.display()), "--window-size=1200,2000".into()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(console_problems(&stderr), Vec::<&str>::new(), "console errors while loading the report");
    let bytes = std::fs::read(&shot).expect("chromium wrote the screenshot");
    let image = Image::decode(&bytes);
    assert_eq!((image.width, image.height), (1200, 2000));
    assert!(image.distinct_colours() > 200, "a blank-looking screenshot: {} colours", image.distinct_colours());
    assert!(image.foreground_share() > 0.2, "a mostly empty screenshot");
    // The verdict banner's FAIL red is on screen.
    assert!(image.count_near([207, 34, 46]) > 500, "the FAIL badge is not visible");
    // Keep it for people to look at.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    std::fs::copy(&shot, &keep).unwrap();
    std::fs::copy(&page, keep.with_file_name("report-screenshot.html")).unwrap();
}

#[test]
fn dom_after_load_shows_the_verdict_and_only_inert_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(dir.path());
    let dom = load_dom(&page);
    assert!(dom.contains("✗ FAIL"), "verdict badge text missing from the DOM");
    assert!(dom.contains("Canary fails: GET /search is 27% slower at p99"));
    // The payloads survived as text nodes, serialised escaped by the browser itself.
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert_inert(&dom);
    let imgs = tags(&dom).into_iter().filter(|(n, _)| n == "img").count();
    assert_eq!(imgs, 5, "exactly the five charts are images");
}

/// The console check above is only worth something if it sees a problem when there is one:
/// a page with an inline script under the same CSP must be reported.
#[test]
fn console_check_catches_a_blocked_script() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        format!(
            "<!DOCTYPE html><meta http-equiv=\"Content-Security-Policy\" content=\"{}\"><p>x</p><script>console.error('ran')</script>",
            shadowdiff_reports::html::CONTENT_SECURITY_POLICY
        ),
    )
    .unwrap();
    let output = run_chromium(&page, &["--dump-dom".into()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!console_problems(&stderr).is_empty(), "a blocked inline script went unnoticed:\n{stderr}");
    assert!(!stderr.contains("\"ran\""), "the inline script ran despite the CSP");
}

/// The whole path a hostile canary takes: its bodies recorded in real pair files, analyzed,
/// chosen as examples, rendered by `write_report` and loaded by Chromium. Every payload is text.
#[test]
fn hostile_canary_bodies_analyzed_from_pair_files_stay_inert() {
    use crate::support::{IMG, JS_URL, SCRIPT, TEXTAREA};
    use shadowdiff_format::{Header, PairRecord, PairWriter, SideRecord, WriterConfig};

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let mut writer = PairWriter::new(WriterConfig::new(&input, "hostile")).unwrap();
    let payloads = [SCRIPT, IMG, TEXTAREA, JS_URL];
    for i in 0..200u32 {
        // One route per payload, so every payload is among the examples.
        let k = i as usize % payloads.len();
        let payload = payloads[k];
        let side = |status: u16, ct: &str, body: String| SideRecord {
            status: Some(status),
            headers: vec![Header::new("content-type", ct.to_owned())],
            body: Some(body.into()),
            latency_us: Some(2000 + u64::from(i % 7) * 100),
            ..SideRecord::absent()
        };
        let mut r = PairRecord::new("hostile", chrono::Utc::now(), "GET", format!("/p{k}/{i}"), None);
        r.baseline =
            side(200, "application/json", format!(r#"{{"id":{i},"name":"ok","link":"https://example.invalid/"}}"#));
        r.canary = match i % 3 {
            // JSON with the payload in a value.
            0 => {
                side(200, "application/json", serde_json::json!({"id": i, "name": payload, "link": JS_URL}).to_string())
            }
            // An HTML error page in place of JSON.
            1 => side(500, "text/html", format!("<html><body>{payload}<a href=\"{JS_URL}\">retry</a></body></html>")),
            _ => {
                side(200, "application/json", format!(r#"{{"id":{i},"name":"ok","link":"https://example.invalid/"}}"#))
            }
        };
        writer.write(r).unwrap();
    }
    writer.close().unwrap();
    let out = dir.path().join("out");
    let (analysis, written) = analyze_and_report(&input, &out);
    assert!(!analysis.examples.is_empty(), "the hostile pairs were chosen as examples");

    let html = std::fs::read_to_string(&written.report).unwrap();
    assert!(html.contains("Example pairs"));
    let dom = load_dom(&written.report);
    assert!(dom.contains("Verdict: FAIL"), "the verdict is missing");
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the script payload is not shown as text");
    assert!(dom.contains("&lt;/textarea&gt;"), "the textarea payload is not shown as text");
    assert!(dom.contains("onerror=alert(1)"), "the img payload is not shown");
    assert_inert(&dom);
}
