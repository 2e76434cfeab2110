//! gRPC and HTTP/2 upstreams through a real `shadowdiff capture`, against implementations the
//! project did not write.
//!
//! gRPC: Python's `grpcio` serves and calls `tests/grpc/shop.py` (unary, server-streaming,
//! client-streaming and bidirectional calls, metadata, trailers, error statuses, deadlines). The
//! client must see exactly what the baseline sends it directly — messages, initial and trailing
//! metadata, status and status message — whether the canary answers differently, hangs or dies;
//! each call is one pair holding both sides' trailers and `grpc-status`.
//!
//! HTTP/2 upstreams: nginx with TLS and `http2` (ALPN), with h2c on a cleartext port and HTTP/1.1
//! on another, reached through capture by HTTP/1.1 and HTTP/2 clients in every crossing; nginx
//! names the protocol it was spoken to in a response header.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use shadowdiff_format::{PairReader, PairRecord, SideRecord};

use crate::support::{python, repo_root, run, shadowdiff, signal, wait_with_deadline};

/// A child process killed when dropped (a failed test leaves nothing running).
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The client-streaming call lasts twice this, longer than the `--baseline-timeout` of 1s the
/// first test gives capture: the head timeout must start when the client's stream has ended.
const UPLOAD_PAUSE: &str = "0.6";

fn shop_py() -> PathBuf {
    repo_root().join("tests/grpc/shop.py")
}

/// Whether the test virtualenv has grpcio; outside CI a missing one skips the gRPC tests.
fn have_grpcio() -> bool {
    let ok = Command::new(python()).args(["-c", "import grpc, google.protobuf"]).status().is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("grpcio is missing from the test virtualenv (scripts/test installs tests/requirements.txt)");
    }
    ok
}

/// One `shop.py serve` process on a loopback port.
struct Shop {
    _child: Reap,
    port: u16,
}

impl Shop {
    fn start(variant: &str, behavior: &str) -> Shop {
        let mut child = Command::new(python())
            .arg(shop_py())
            .args(["serve", "--variant", variant, "--behavior", behavior])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python runs shop.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the port line");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("shop.py printed a port, not {line:?}"));
        Shop { _child: Reap(child), port }
    }

    fn h2c(&self) -> String {
        format!("h2c://127.0.0.1:{}", self.port)
    }
}

/// Every call of `shop.py call` against `target` (host:port), as the client saw it; the
/// client-streaming call's messages are `UPLOAD_PAUSE` seconds apart.
fn calls(target: &str) -> Value {
    let o = Command::new(python())
        .arg(shop_py())
        .args(["call", "--target", target, "--upload-pause", UPLOAD_PAUSE])
        .output()
        .expect("python runs shop.py call");
    assert!(o.status.success(), "shop.py call {target} failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("shop.py call prints JSON")
}

/// A running capture agent.
struct Capture {
    child: Reap,
    addr: String,
    out: tempfile::TempDir,
}

impl Capture {
    fn start(baseline: &str, canary: &str, args: &[&str]) -> Capture {
        let out = tempfile::tempdir().expect("tempdir");
        let mut child = shadowdiff()
            .arg("capture")
            .args(["--listen", "127.0.0.1:0", "--log-level", "warn", "--drain-timeout", "5s"])
            .args(["--baseline", baseline, "--canary", canary, "--out"])
            .arg(out.path().join("pairs"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("shadowdiff capture starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the address line");
        let addr = line.trim().strip_prefix("listening on http://").map(str::to_owned).expect("the proxy address");
        Capture { child: Reap(child), addr, out }
    }

    /// SIGTERM, a clean exit, and the directory holding `pairs/` as capture wrote it.
    fn stop_keeping_files(mut self) -> tempfile::TempDir {
        signal(&self.child.0, "-TERM");
        let status = wait_with_deadline(&mut self.child.0, Duration::from_secs(30));
        assert!(status.success(), "capture exits 0 after SIGTERM: {status}");
        self.out
    }

    /// SIGTERM, a clean exit, and every pair it wrote, oldest first.
    fn stop(self) -> Vec<PairRecord> {
        let out = self.stop_keeping_files();
        let dir = out.path().join("pairs");
        let mut pairs = PairReader::read_all_records(&[dir.to_str().expect("utf-8")]).expect("readable pairs");
        pairs.sort_by_key(|p| p.captured_at);
        pairs
    }
}

/// A side's `grpc-status`: from its trailers, or from its headers for a trailers-only answer.
fn grpc_status(side: &SideRecord) -> Option<String> {
    side.trailer("grpc-status").or_else(|| side.header("grpc-status")).map(|h| h.value_lossy().into_owned())
}

fn trailer(side: &SideRecord, name: &str) -> Option<String> {
    side.trailer(name).map(|h| h.value_lossy().into_owned())
}

/// The length-prefixed messages of a gRPC body: how many there are; panics on a malformed one.
fn grpc_messages(body: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    while at < body.len() {
        let len = u32::from_be_bytes(body[at + 1..at + 5].try_into().expect("a 5-byte prefix")) as usize;
        at += 5 + len;
        n += 1;
    }
    assert_eq!(at, body.len(), "whole messages");
    n
}

fn pairs_by_method(pairs: &[PairRecord], method: &str) -> Vec<PairRecord> {
    pairs.iter().filter(|p| p.path == format!("/shop.v1.Shop/{method}")).cloned().collect()
}

#[test]
fn grpc_calls_of_every_kind_reach_the_client_unchanged_and_are_recorded_with_trailers() {
    if !have_grpcio() {
        eprintln!("skipped: grpcio is not installed in the test virtualenv (scripts/test installs it)");
        return;
    }
    let baseline = Shop::start("baseline", "normal");
    let canary = Shop::start("canary", "normal");
    let direct = calls(&format!("127.0.0.1:{}", baseline.port));
    // The canary really differs, as the client would see it.
    let from_canary = calls(&format!("127.0.0.1:{}", canary.port));
    assert_ne!(direct["GetItem/1"], from_canary["GetItem/1"]);
    assert_eq!(direct["GetItem/404"]["code"], "NOT_FOUND");
    assert_eq!(from_canary["GetItem/404"]["code"], "UNAVAILABLE");

    let proxy = Capture::start(
        &baseline.h2c(),
        &canary.h2c(),
        &["--mirror-grpc", "/shop.v1.Shop/*", "--baseline-timeout", "1s"],
    );
    let through = calls(&proxy.addr);
    assert_eq!(through, direct, "the client gets exactly the baseline's calls through capture");
    assert_eq!(through["Chat"]["messages"].as_array().map(Vec::len), Some(3));
    assert_eq!(through["ListItems"]["messages"].as_array().map(Vec::len), Some(5));
    assert!(
        through["GetItem/1"]["trailing_metadata"].to_string().contains("[\"x-deadline\",\"set\"]"),
        "grpc-timeout reached the baseline: {}",
        through["GetItem/1"]
    );
    let pairs = proxy.stop();
    assert_eq!(pairs.len(), 6, "one pair per call: {:?}", pairs.iter().map(|p| &p.path).collect::<Vec<_>>());

    let get = pairs_by_method(&pairs, "GetItem");
    assert_eq!(get.len(), 3);
    for p in &get {
        assert_eq!(p.method, "POST");
        assert_eq!(grpc_messages(p.request_body.as_deref().expect("the request message")), 1);
        assert!(p.canary.error.is_none(), "{:?}", p.canary);
    }
    let ok: Vec<&PairRecord> = get.iter().filter(|p| grpc_status(&p.baseline).as_deref() == Some("0")).collect();
    assert_eq!(ok.len(), 2);
    for p in ok {
        assert_eq!(trailer(&p.baseline, "x-inventory-version").as_deref(), Some("1"));
        assert_eq!(trailer(&p.canary, "x-inventory-version").as_deref(), Some("2"));
        assert_eq!(grpc_status(&p.canary).as_deref(), Some("0"));
        assert_ne!(p.baseline.body, p.canary.body, "the canary's price differs");
        assert_eq!(grpc_messages(p.baseline.body.as_deref().expect("a body")), 1);
    }
    let missing = get.iter().find(|p| grpc_status(&p.baseline).as_deref() == Some("5")).expect("GetItem 404");
    assert_eq!(grpc_status(&missing.canary).as_deref(), Some("14"), "NOT_FOUND became UNAVAILABLE");
    let message = |s: &SideRecord| s.trailer("grpc-message").or_else(|| s.header("grpc-message")).cloned();
    assert_eq!(message(&missing.baseline).map(|h| h.value), Some(Bytes::from_static(b"no item 404")));

    let list = &pairs_by_method(&pairs, "ListItems")[0];
    assert_eq!(grpc_messages(list.baseline.body.as_deref().expect("a body")), 5);
    assert_eq!(grpc_messages(list.canary.body.as_deref().expect("a body")), 5);
    // Client-streaming: the whole request stream is recorded and mirrored.
    let upload = &pairs_by_method(&pairs, "Upload")[0];
    assert_eq!(grpc_messages(upload.request_body.as_deref().expect("the request messages")), 3);
    assert_eq!(trailer(&upload.baseline, "x-received").as_deref(), Some("3"));
    assert_eq!(trailer(&upload.canary, "x-received").as_deref(), Some("3"));
    let chat = &pairs_by_method(&pairs, "Chat")[0];
    assert_eq!(grpc_messages(chat.request_body.as_deref().expect("the request messages")), 3);
    assert_eq!(grpc_messages(chat.baseline.body.as_deref().expect("a body")), 3);
    assert_eq!(grpc_messages(chat.canary.body.as_deref().expect("a body")), 3);
    for p in &pairs {
        assert!(p.baseline.error.is_none() && p.baseline.latency_us.is_some(), "{}: {:?}", p.path, p.baseline);
    }

    // analyze: the route is the method's path; UNAVAILABLE is an error the baseline never
    // showed, named by its code; the changed trailer is a difference at its name.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("pairs")).expect("dir");
    let mut w = shadowdiff_format::PairWriter::new(shadowdiff_format::WriterConfig::new(dir.path().join("pairs"), "t"))
        .expect("writer");
    for p in pairs {
        w.write(p).expect("write");
    }
    w.close().expect("close");

    // replay re-drives the recorded calls over h2c, `TE: trailers` kept as capture keeps it.
    let replayed = dir.path().join("replayed");
    let o = run(&[
        "replay",
        dir.path().join("pairs").to_str().expect("utf-8"),
        "--baseline",
        &baseline.h2c(),
        "--canary",
        &canary.h2c(),
        "--allow-mutations",
        "--out",
        replayed.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "replay: {}", String::from_utf8_lossy(&o.stderr));
    let again = PairReader::read_all_records(&[replayed.to_str().expect("utf-8")]).expect("replayed pairs");
    assert_eq!(again.len(), 6);
    for p in &again {
        assert!(p.baseline.error.is_none() && p.canary.error.is_none(), "{}: {:?} {:?}", p.path, p.baseline, p.canary);
    }
    let statuses: Vec<(Option<String>, Option<String>)> =
        pairs_by_method(&again, "GetItem").iter().map(|p| (grpc_status(&p.baseline), grpc_status(&p.canary))).collect();
    assert!(statuses.contains(&(Some("5".into()), Some("14".into()))), "{statuses:?}");
    let list = &pairs_by_method(&again, "ListItems")[0];
    assert_eq!(grpc_messages(list.canary.body.as_deref().expect("a body")), 5);
    let upload = &pairs_by_method(&again, "Upload")[0];
    assert_eq!(trailer(&upload.canary, "x-received").as_deref(), Some("3"));
    let out = dir.path().join("analysis");
    let o = run(&["analyze", dir.path().join("pairs").to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")]);
    assert_ne!(o.status.code(), Some(2), "analyze ran: {}", String::from_utf8_lossy(&o.stderr));
    let verdict: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("verdict.json")).expect("verdict.json")).expect("JSON");
    let critical = verdict["critical_errors"].as_array().expect("critical_errors");
    assert!(
        critical.iter().any(|c| c["route"] == "/shop.v1.Shop/GetItem" && c["kind"] == "grpc UNAVAILABLE"),
        "{critical:?}"
    );
    // The status change is named by its codes.
    assert_eq!(verdict["status_mismatches"]["/shop.v1.Shop/GetItem"]["grpc NOT_FOUND→UNAVAILABLE"], 1, "{verdict}");
    let fields = verdict["fields"].as_array().expect("fields");
    assert!(
        fields.iter().any(|f| f["route"] == "/shop.v1.Shop/GetItem" && f["field"] == "trailer:x-inventory-version"),
        "{fields:?}"
    );
    // Without a descriptor set the Struct messages are read by the wire format: the Struct's map
    // by key (the two servers write its entries in different orders), so the changed price is one
    // difference at /1/price/2 (field 1 `fields`, key `price`, field 2 `number_value`), and the
    // streams of equal messages differ only in their trailer.
    assert_eq!(fields_of(&verdict, "/shop.v1.Shop/GetItem"), vec!["/1/price/2", "trailer:x-inventory-version"]);
    // The report says what a gRPC error is, and names the status change.
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(html.contains("gRPC calls that ended UNKNOWN, DEADLINE_EXCEEDED"), "the errors caption");
    assert!(html.contains("grpc NOT_FOUND → UNAVAILABLE"), "the status mismatch example");
    for method in ["ListItems", "Upload", "Chat"] {
        let route = format!("/shop.v1.Shop/{method}");
        assert_eq!(fields_of(&verdict, &route), vec!["trailer:x-inventory-version"], "{route}");
    }
    // A descriptor set without some of the methods (typed shop.proto has GetItem and ListItems
    // only): the calls to the others are counted by method and decoded by the wire format.
    if have_grpc_tools() {
        let code = compile_typed_shop();
        let set = code.path().join("shop.pb");
        let (_, v, examples) = analyze(dir.path(), "partial-set", &["--descriptor-set", set.to_str().expect("utf-8")]);
        let missing: Vec<&String> =
            v["inputs"]["grpc_undescribed"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
        assert_eq!(missing, ["/shop.v1.Shop/Chat", "/shop.v1.Shop/Upload"], "{}", v["inputs"]);
        let upload =
            examples["examples"].as_array().expect("examples").iter().find(|e| e["route"] == "/shop.v1.Shop/Upload");
        if let Some(decoded) = upload.and_then(|e| e["canary"]["decoded_as"].as_str()) {
            assert_eq!(decoded, "wire format (/shop.v1.Shop/Upload is not in the descriptor set)");
        }
    }
}

#[test]
fn a_grpc_canary_that_hangs_or_dies_changes_nothing_the_client_sees() {
    if !have_grpcio() {
        eprintln!("skipped: grpcio is not installed in the test virtualenv (scripts/test installs it)");
        return;
    }
    let baseline = Shop::start("baseline", "normal");
    let direct = calls(&format!("127.0.0.1:{}", baseline.port));
    for behavior in ["hang", "die"] {
        let canary = Shop::start("canary", behavior);
        let proxy =
            Capture::start(&baseline.h2c(), &canary.h2c(), &["--mirror-methods", "POST", "--mirror-timeout", "1s"]);
        let through = calls(&proxy.addr);
        assert_eq!(through, direct, "a canary that does `{behavior}` changes nothing the client sees");
        let pairs = proxy.stop();
        assert_eq!(pairs.len(), 6, "{behavior}");
        for p in &pairs {
            assert!(p.canary.error.is_some(), "{behavior}: {}: {:?}", p.path, p.canary);
            assert!(grpc_status(&p.baseline).is_some(), "{behavior}: {}", p.path);
        }
    }
}

fn typed_shop_py() -> PathBuf {
    repo_root().join("tests/grpc/typed_shop.py")
}

/// Whether the test virtualenv has grpcio-tools (protoc); outside CI a missing one skips.
fn have_grpc_tools() -> bool {
    if !have_grpcio() {
        return false;
    }
    let ok = Command::new(python()).args(["-c", "import grpc_tools.protoc"]).status().is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("grpcio-tools is missing from the test virtualenv (scripts/test installs tests/requirements.txt)");
    }
    ok
}

/// tests/grpc/shop.proto compiled by grpcio-tools' protoc: Python classes and `shop.pb`, the
/// descriptor set.
fn compile_typed_shop() -> tempfile::TempDir {
    let code = tempfile::tempdir().expect("tempdir");
    let o = Command::new(python()).arg(typed_shop_py()).arg("compile").arg(code.path()).output().expect("python runs");
    assert!(o.status.success(), "protoc: {}", String::from_utf8_lossy(&o.stderr));
    code
}

/// [`compile_typed_shop`], or `None` with the reason printed when grpcio-tools is missing (the
/// test is then skipped).
fn typed_shop_code() -> Option<tempfile::TempDir> {
    if !have_grpc_tools() {
        eprintln!("skipped: grpcio-tools is not installed in the test virtualenv (scripts/test installs it)");
        return None;
    }
    Some(compile_typed_shop())
}

impl Shop {
    /// The typed service (real protobuf messages) of `variant`: baseline, canary or malformed.
    fn typed(code: &Path, variant: &str) -> Shop {
        Self::typed_with(code, variant, &[])
    }

    /// As [`Shop::typed`], with more arguments (`--reflection`).
    fn typed_with(code: &Path, variant: &str, args: &[&str]) -> Shop {
        let mut child = Command::new(python())
            .arg(typed_shop_py())
            .arg("serve")
            .arg("--gen")
            .arg(code)
            .args(["--variant", variant])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python runs typed_shop.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the port line");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("typed_shop.py printed a port, not {line:?}"));
        Shop { _child: Reap(child), port }
    }
}

/// Every call of `typed_shop.py call` against `target`, as the client saw it.
fn typed_calls(code: &Path, target: &str) -> Value {
    let o = Command::new(python())
        .arg(typed_shop_py())
        .arg("call")
        .arg("--gen")
        .arg(code)
        .args(["--target", target])
        .output()
        .expect("python runs typed_shop.py call");
    assert!(o.status.success(), "typed_shop.py call {target} failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("typed_shop.py call prints JSON")
}

/// Pairs written to a fresh directory's `pairs/`, for analyze.
fn write_pairs(pairs: Vec<PairRecord>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("pairs")).expect("dir");
    let mut w = shadowdiff_format::PairWriter::new(shadowdiff_format::WriterConfig::new(dir.path().join("pairs"), "t"))
        .expect("writer");
    for p in pairs {
        w.write(p).expect("write");
    }
    w.close().expect("close");
    dir
}

/// `shadowdiff analyze DIR/pairs ARGS… --out DIR/NAME`: its exit code, verdict.json and
/// examples.json.
fn analyze(dir: &Path, name: &str, args: &[&str]) -> (Option<i32>, Value, Value) {
    let out = dir.join(name);
    let pairs = dir.join("pairs");
    let mut all = vec!["analyze", pairs.to_str().expect("utf-8"), "--out", out.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    let o = run(&all);
    assert_ne!(o.status.code(), Some(2), "analyze {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).expect("an output file")).expect("JSON")
    };
    (o.status.code(), read("verdict.json"), read("examples.json"))
}

/// The differing fields verdict.json lists for `route`.
fn fields_of(verdict: &Value, route: &str) -> Vec<String> {
    let mut f: Vec<String> = verdict["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| f["route"] == route)
        .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    f.sort();
    f
}

#[test]
fn protobuf_messages_are_diffed_by_field_with_a_descriptor_set_and_by_field_number_without() {
    let Some(code) = typed_shop_code() else { return };
    let descriptors = code.path().join("shop.pb");
    let set = descriptors.to_str().expect("utf-8");
    let baseline = Shop::typed(code.path(), "baseline");
    let canary = Shop::typed(code.path(), "canary");
    let direct = typed_calls(code.path(), &format!("127.0.0.1:{}", baseline.port));
    assert_ne!(direct, typed_calls(code.path(), &format!("127.0.0.1:{}", canary.port)), "the canary differs");

    let proxy = Capture::start(&baseline.h2c(), &canary.h2c(), &["--mirror-grpc", "/shop.v1.Shop/*"]);
    assert_eq!(typed_calls(code.path(), &proxy.addr), direct, "the client gets exactly the baseline's answers");
    let pairs = proxy.stop();
    assert_eq!(pairs.len(), 4, "GetItem ×3 and ListItems");
    let dir = write_pairs(pairs);
    let (get, list) = ("/shop.v1.Shop/GetItem", "/shop.v1.Shop/ListItems");

    // By the descriptor set: one field of the unary answer, one field of one streamed message.
    let (_, v, examples) = analyze(dir.path(), "typed", &["--descriptor-set", set]);
    assert_eq!(fields_of(&v, get), vec!["/price/units"], "{}", v["fields"]);
    assert_eq!(fields_of(&v, list), vec!["/*/name"], "{}", v["fields"]);
    assert!(v["inputs"].get("undecodable").is_none(), "{}", v["inputs"]);
    let example = examples["examples"]
        .as_array()
        .expect("examples")
        .iter()
        .find(|e| e["route"] == get && e["outcome"] == "different")
        .expect("a GetItem example")
        .clone();
    assert_eq!(example["baseline"]["decoded_as"], "shop.v1.Item");
    assert_eq!(example["baseline"]["grpc_status"], "OK");
    let units = |side: &str| example[side]["messages"]["price"]["units"].as_i64().expect("units");
    assert_eq!(units("canary"), units("baseline") + 1, "{example}");
    assert_eq!(example["baseline"]["messages"]["stock"], "IN_STOCK", "enums by name");
    let d = &example["differences"][0];
    assert_eq!((d["path"].as_str(), d["kind"].as_str()), (Some("/price/units"), Some("value_changed")), "{example}");
    let list_example =
        examples["examples"].as_array().expect("examples").iter().find(|e| e["route"] == list).expect("ListItems");
    assert_eq!(list_example["differences"][0]["path"], "/2/name");
    assert_eq!(list_example["canary"]["messages"][2]["name"], "item 2 (renamed)");
    let html = std::fs::read_to_string(dir.path().join("typed/report.html")).expect("report.html");
    assert!(html.contains("shown as its message, decoded as shop.v1.Item"), "the report shows the decoded message");
    assert!(html.contains("grpc OK"), "and the grpc-status by name");

    // The same set named in the policy (relative to it), and the policy's rules apply to the
    // decoded fields: an ignored /price/units is no difference.
    std::fs::write(
        code.path().join("policy.toml"),
        "[grpc]\ndescriptor_set = \"shop.pb\"\n\n[[ignore]]\npath = \"/price/units\"\nroute = \"/shop.v1.Shop/GetItem\"\n",
    )
    .expect("policy");
    let policy = code.path().join("policy.toml");
    let (_, v, _) = analyze(dir.path(), "policy", &["--policy", policy.to_str().expect("utf-8")]);
    assert_eq!(fields_of(&v, get), Vec::<String>::new(), "{}", v["fields"]);
    assert_eq!(fields_of(&v, list), vec!["/*/name"]);

    // Without a descriptor set: the wire format, fields by number (price is 3, units 2; name 2).
    let (_, v, examples) = analyze(dir.path(), "wire", &[]);
    assert_eq!(fields_of(&v, get), vec!["/3/2"], "{}", v["fields"]);
    assert_eq!(fields_of(&v, list), vec!["/*/2"], "{}", v["fields"]);
    let example = examples["examples"].as_array().expect("examples").iter().find(|e| e["route"] == get).expect("one");
    assert_eq!(example["canary"]["decoded_as"], "wire format");

    // A/A: the baseline against itself through capture: nothing differs, nothing undecodable.
    let twin = Shop::typed(code.path(), "baseline");
    let proxy = Capture::start(&baseline.h2c(), &twin.h2c(), &["--mirror-grpc", "/shop.v1.Shop/*"]);
    assert_eq!(typed_calls(code.path(), &proxy.addr), direct);
    let aa = write_pairs(proxy.stop());
    // Four calls are enough to judge differences and errors; latency is not judged on four.
    let aa_policy = code.path().join("aa.toml");
    std::fs::write(
        &aa_policy,
        "min_samples = 4\n[checks.latency_p99]\nenabled = false\n[checks.latency_shape]\nenabled = false\n",
    )
    .expect("policy");
    let (exit, v, _) =
        analyze(aa.path(), "aa", &["--descriptor-set", set, "--policy", aa_policy.to_str().expect("utf-8")]);
    assert_eq!((exit, v["verdict"].as_str()), (Some(0), Some("pass")), "{}", v["checks"]);
    assert_eq!(v["fields"].as_array().map(Vec::len), Some(0), "{}", v["fields"]);
    assert!(v["status_mismatches"].as_object().is_none_or(|m| m.is_empty()), "{}", v["status_mismatches"]);
    assert!(v["inputs"].get("undecodable").is_none(), "{}", v["inputs"]);

    // Bad input: a file that is not a descriptor set, and one that is missing — exit 2, one
    // sentence naming the file.
    let bogus = code.path().join("shop_pb2.py");
    for (file, said) in
        [(bogus.as_path(), "not a protobuf FileDescriptorSet"), (&code.path().join("nope.pb"), "cannot read")]
    {
        let out = dir.path().join("bad");
        let pairs = dir.path().join("pairs");
        let o = run(&[
            "analyze",
            pairs.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
            "--descriptor-set",
            file.to_str().expect("utf-8"),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(said) && err.contains(file.to_str().expect("utf-8")), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// Capture asks the baseline's server reflection (grpcio-reflection) on the first gRPC call and
/// stores the descriptors in its pair files, so analyze names fields without a descriptor set;
/// `--no-grpc-reflection` and a baseline without reflection leave the files without them (fields
/// by number), and a damaged set in a file's metadata is exit 2 naming the file.
#[test]
fn the_baselines_reflection_lets_analyze_name_fields_without_a_descriptor_set() {
    let Some(code) = typed_shop_code() else { return };
    let baseline = Shop::typed_with(code.path(), "baseline", &["--reflection"]);
    let canary = Shop::typed(code.path(), "canary");
    let direct = typed_calls(code.path(), &format!("127.0.0.1:{}", baseline.port));
    let (get, list) = ("/shop.v1.Shop/GetItem", "/shop.v1.Shop/ListItems");
    let descriptors_in = |dir: &Path| -> Vec<Option<String>> {
        shadowdiff_format::resolve_inputs(&[dir.join("pairs").to_str().expect("utf-8")])
            .expect("pair files")
            .iter()
            .map(|f| {
                let info = shadowdiff_format::PairFile::open(f).expect("a pair file").info;
                info.metadata.get(shadowdiff_format::schema::meta::GRPC_DESCRIPTORS).cloned()
            })
            .collect()
    };

    let proxy = Capture::start(&baseline.h2c(), &canary.h2c(), &["--mirror-grpc", "/shop.v1.Shop/*"]);
    assert_eq!(typed_calls(code.path(), &proxy.addr), direct, "the client gets exactly the baseline's answers");
    let out = proxy.stop_keeping_files();
    let sets = descriptors_in(out.path());
    assert!(!sets.is_empty() && sets.iter().all(Option::is_some), "every file carries the descriptors: {sets:?}");
    let (_, v, examples) = analyze(out.path(), "reflected", &[]);
    assert_eq!(fields_of(&v, get), vec!["/price/units"], "{}", v["fields"]);
    assert_eq!(fields_of(&v, list), vec!["/*/name"], "{}", v["fields"]);
    let example = examples["examples"].as_array().expect("examples").iter().find(|e| e["route"] == get).expect("one");
    assert_eq!(example["baseline"]["decoded_as"], "shop.v1.Item", "{example}");
    assert_eq!(example["baseline"]["messages"]["stock"], "IN_STOCK", "enums by name");

    // Turned off, and a baseline that offers no reflection: fields by number.
    let proxy =
        Capture::start(&baseline.h2c(), &canary.h2c(), &["--mirror-grpc", "/shop.v1.Shop/*", "--no-grpc-reflection"]);
    assert_eq!(typed_calls(code.path(), &proxy.addr), direct);
    let off = proxy.stop_keeping_files();
    assert!(descriptors_in(off.path()).iter().all(Option::is_none));
    let (_, v, _) = analyze(off.path(), "off", &[]);
    assert_eq!(fields_of(&v, get), vec!["/3/2"], "{}", v["fields"]);
    let plain = Shop::typed(code.path(), "baseline");
    let plain_direct = typed_calls(code.path(), &format!("127.0.0.1:{}", plain.port));
    let proxy = Capture::start(&plain.h2c(), &canary.h2c(), &["--mirror-grpc", "/shop.v1.Shop/*"]);
    assert_eq!(typed_calls(code.path(), &proxy.addr), plain_direct, "no reflection changes nothing the client sees");
    let none = proxy.stop_keeping_files();
    assert!(descriptors_in(none.path()).iter().all(Option::is_none));
    let (_, v, _) = analyze(none.path(), "none", &[]);
    assert_eq!(fields_of(&v, get), vec!["/3/2"], "{}", v["fields"]);

    // A descriptor set given to analyze wins over the files' (here: the same schema).
    let set = code.path().join("shop.pb");
    let (_, v, _) = analyze(out.path(), "given", &["--descriptor-set", set.to_str().expect("utf-8")]);
    assert_eq!(fields_of(&v, get), vec!["/price/units"], "{}", v["fields"]);

    // A damaged set in a file's metadata: exit 2, one sentence naming the file.
    let file =
        &shadowdiff_format::resolve_inputs(&[out.path().join("pairs").to_str().expect("utf-8")]).expect("files")[0];
    let mut info = shadowdiff_format::PairFile::open(file).expect("a pair file").info.as_ref().clone();
    info.metadata.insert(shadowdiff_format::schema::meta::GRPC_DESCRIPTORS.into(), "bm90IGEgc2V0".into());
    let pairs = PairReader::read_all_records(&[file.to_str().expect("utf-8")]).expect("records");
    let bad = tempfile::tempdir().expect("tempdir");
    let mut config = shadowdiff_format::WriterConfig::new(bad.path().join("pairs"), "t");
    let meta: Vec<(String, String)> =
        info.metadata.into_iter().filter(|(k, _)| k.starts_with("shadowdiff.grpc.")).collect();
    config.metadata = Some(std::sync::Arc::new(move || meta.clone()));
    let mut w = shadowdiff_format::PairWriter::new(config).expect("writer");
    for p in pairs {
        w.write(p).expect("write");
    }
    w.close().expect("close");
    let o = run(&[
        "analyze",
        bad.path().join("pairs").to_str().expect("utf-8"),
        "--out",
        bad.path().join("out").to_str().expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("in the metadata of") && err.contains("shadowdiff.grpc.descriptor_set"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A gRPC canary that answers every call with a malformed message — its length prefix claims
/// 16 bytes and 2 follow — and `grpc-status: 0`, served by hyper over h2c on a loopback port.
fn broken_frame_canary(rt: &tokio::runtime::Runtime) -> u16 {
    hyper_grpc_canary(rt, &[0, 0, 0, 0, 16, 8, 1], "0")
}

/// A gRPC canary served by hyper over h2c that answers every call with `body` and the trailer
/// `grpc-status: status`.
fn hyper_grpc_canary(rt: &tokio::runtime::Runtime, body: &'static [u8], status: &'static str) -> u16 {
    use http_body_util::Full;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("address").port();
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request: Request<hyper::body::Incoming>| async move {
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static(status));
                    let body = Full::new(Bytes::from_static(body)).with_trailers(async move { Some(Ok(trailers)) });
                    http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(body)
                        .map_err(|e| std::io::Error::other(e.to_string()))
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ =
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(io, service).await;
            });
        }
    });
    port
}

#[test]
fn a_canary_sending_malformed_grpc_messages_changes_nothing_the_client_sees_and_is_counted() {
    let Some(code) = typed_shop_code() else { return };
    let set = code.path().join("shop.pb");
    let baseline = Shop::typed(code.path(), "baseline");
    let direct = typed_calls(code.path(), &format!("127.0.0.1:{}", baseline.port));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    // grpcio sending bytes that are not protobuf; hyper sending a length prefix past the body.
    let not_protobuf = Shop::typed(code.path(), "malformed");
    let cut_frame = format!("h2c://127.0.0.1:{}", broken_frame_canary(&rt));
    for (canary, why) in [
        (not_protobuf.h2c(), "undecodable: gRPC message 1: does not decode as shop.v1.Item"),
        (cut_frame, "undecodable: gRPC message 1 is cut: its prefix says 16 bytes and 2 follow"),
    ] {
        let proxy = Capture::start(&baseline.h2c(), &canary, &["--mirror-grpc", "/shop.v1.Shop/*"]);
        assert_eq!(typed_calls(code.path(), &proxy.addr), direct, "{canary}: the client sees the baseline only");
        let pairs = proxy.stop();
        assert_eq!(pairs.len(), 4, "{canary}: every call recorded");
        let dir = write_pairs(pairs);
        let (_, v, examples) = analyze(dir.path(), "out", &["--descriptor-set", set.to_str().expect("utf-8")]);
        // GetItem 1 and 2 are compared (both answered OK) and the canary's message does not
        // decode: counted, one breaking (body) difference each, the reason shown.
        assert!(v["inputs"]["undecodable"]["canary"].as_u64().unwrap_or(0) >= 2, "{canary}: {}", v["inputs"]);
        assert_eq!(v["inputs"]["undecodable"]["baseline"].as_u64().unwrap_or(0), 0);
        assert!(fields_of(&v, "/shop.v1.Shop/GetItem").contains(&"(body)".to_owned()), "{}", v["fields"]);
        let shown = examples["examples"]
            .as_array()
            .expect("examples")
            .iter()
            .filter(|e| e["route"] == "/shop.v1.Shop/GetItem")
            .any(|e| e["why"].as_str().is_some_and(|w| w.contains(why)));
        assert!(shown, "{canary}: {examples}");
    }
    // A grpc-status that is not a number: the client still sees the baseline only; analyze
    // reads it as UNKNOWN, an error that says why.
    let canary = format!("h2c://127.0.0.1:{}", hyper_grpc_canary(&rt, &[0, 0, 0, 0, 0], "zero"));
    let proxy = Capture::start(&baseline.h2c(), &canary, &["--mirror-grpc", "/shop.v1.Shop/*"]);
    assert_eq!(typed_calls(code.path(), &proxy.addr), direct, "the client sees the baseline only");
    let pairs = proxy.stop();
    assert_eq!(pairs.len(), 4, "every call recorded");
    assert!(pairs.iter().all(|p| grpc_status(&p.canary).as_deref() == Some("zero")), "recorded as sent");
    let dir = write_pairs(pairs);
    let (_, v, _) = analyze(dir.path(), "out", &["--descriptor-set", set.to_str().expect("utf-8")]);
    assert!(v.to_string().contains("grpc-status `zero` is not a number"), "{v}");
}

/// nginx, when installed.
fn nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().map(PathBuf::from).find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// One nginx serving `/items/N` on four ports: HTTP/1.1, h2c (prior knowledge), h2 over TLS
/// (ALPN, with HTTP/1.1 as its fallback) and TLS with HTTP/1.1 only; every answer says which
/// protocol nginx was spoken to in `x-proto`.
struct Nginx {
    process: Reap,
    http1: u16,
    h2c: u16,
    tls: u16,
    tls_http1: u16,
}

impl Nginx {
    fn start(bin: &Path, dir: &Path) -> Nginx {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("items")).expect("docroot");
        for i in 1..=3 {
            std::fs::write(root.join(format!("items/{i}.json")), format!("{{\"id\":{i},\"name\":\"item {i}\"}}"))
                .expect("item file");
        }
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).expect("cert");
        std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).expect("key");
        // The ports are picked free and then given to nginx, so another test can take one in
        // between: then nginx exits ("Address already in use") while the port still answers —
        // someone else's server. Such a start is retried with fresh ports; a port counts as
        // nginx's only while nginx is still running.
        for _attempt in 0..5 {
            let (http1, h2c, tls, tls_http1) = (free_port(), free_port(), free_port(), free_port());
            let p = |name: &str| dir.join(name).display().to_string();
            let conf = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\nerror_log {err} warn;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n  default_type application/json;\n\
                   client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  fastcgi_temp_path {t}/fcgi;\n\
                   uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n\
                   server {{\n    listen 127.0.0.1:{http1};\n    listen 127.0.0.1:{h2c} http2;\n\
                     listen 127.0.0.1:{tls} ssl http2;\n    listen 127.0.0.1:{tls_http1} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
                     root {root};\n    add_header x-proto $server_protocol always;\n\
                     location / {{ try_files $uri.json =404; }}\n  }}\n}}\n",
                pid = p("nginx.pid"),
                err = p("error.log"),
                t = dir.display(),
                cert = p("cert.pem"),
                key = p("key.pem"),
                root = root.display(),
            );
            std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
            let child = Command::new(bin)
                .arg("-p")
                .arg(dir)
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("nginx starts");
            let mut nginx = Nginx { process: Reap(child), http1, h2c, tls, tls_http1 };
            for _ in 0..200 {
                if nginx.process.0.try_wait().ok().flatten().is_some() {
                    break;
                }
                if [http1, h2c, tls, tls_http1].iter().all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok()) {
                    std::thread::sleep(Duration::from_millis(50));
                    if nginx.process.0.try_wait().ok().flatten().is_none() {
                        return nginx;
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("nginx did not listen: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
    }
}

/// `GET /items/N` through capture with an HTTP/1.1 or HTTP/2 (prior knowledge) client: the
/// version the client got, the status, nginx's `x-proto`, the body.
fn get(rt: &tokio::runtime::Runtime, addr: &str, path: &str, h2: bool) -> (Version, u16, String, Bytes) {
    rt.block_on(async {
        let client = Client::builder(TokioExecutor::new()).http2_only(h2).build_http::<Empty<Bytes>>();
        let req = Request::get(format!("http://{addr}{path}")).body(Empty::new()).expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
            .await
            .expect("capture answers in time")
            .expect("capture answers");
        let (head, body) = resp.into_parts();
        let proto = head.headers.get("x-proto").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        // Bounded: the files served are a few dozen bytes.
        #[allow(clippy::disallowed_methods)]
        let body = http_body_util::Limited::new(body, 64 * 1024).collect().await.expect("the whole body").to_bytes();
        (head.version, head.status.as_u16(), proto, body)
    })
}

#[test]
fn http2_upstreams_h2c_and_h2_over_tls_in_every_crossing_with_http1() {
    let Some(bin) = nginx() else {
        eprintln!("skipped: nginx is not installed (scripts/test installs it from Debian's packages)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let nginx = Nginx::start(&bin, dir.path());
    let ca = dir.path().join("cert.pem");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // (upstream URL, the protocol nginx must have been spoken to)
    let cases = [
        (format!("http://127.0.0.1:{}", nginx.http1), "HTTP/1.1"),
        (format!("h2c://127.0.0.1:{}", nginx.h2c), "HTTP/2.0"),
        (format!("h2://localhost:{}", nginx.tls), "HTTP/2.0"),
        // Automatic over TLS: ALPN agrees on h2.
        (format!("https://localhost:{}", nginx.tls), "HTTP/2.0"),
        (format!("http1+https://localhost:{}", nginx.tls), "HTTP/1.1"),
    ];
    for (url, want) in &cases {
        let proxy = Capture::start(url, url, &["--ca-file", ca.to_str().expect("utf-8")]);
        for (i, h2) in [(1, false), (2, true)] {
            let (version, status, proto, body) = get(&rt, &proxy.addr, &format!("/items/{i}"), h2);
            let client = if h2 { Version::HTTP_2 } else { Version::HTTP_11 };
            assert_eq!(version, client, "{url}: the client is answered in its own version");
            assert_eq!((status, proto.as_str()), (200, *want), "{url}, client {client:?}");
            assert_eq!(body, format!("{{\"id\":{i},\"name\":\"item {i}\"}}"), "{url}");
        }
        let pairs = proxy.stop();
        assert_eq!(pairs.len(), 2, "{url}");
        for p in &pairs {
            for side in [&p.baseline, &p.canary] {
                assert_eq!(side.status, Some(200), "{url}: {side:?}");
                assert_eq!(side.header("x-proto").map(|h| h.value_lossy().into_owned()).as_deref(), Some(*want));
            }
        }
    }
    // Automatic over TLS with a server that offers only HTTP/1.1: HTTP/1.1.
    let url = format!("https://localhost:{}", nginx.tls_http1);
    let proxy = Capture::start(&url, &url, &["--ca-file", ca.to_str().expect("utf-8")]);
    assert_eq!(get(&rt, &proxy.addr, "/items/3", true).2, "HTTP/1.1");
    assert_eq!(proxy.stop().len(), 1);
    // h2 only: an upstream that does not agree to h2 is a failed baseline (502), never spoken to
    // in HTTP/1.1 instead.
    let url = format!("h2://localhost:{}", nginx.tls_http1);
    let proxy = Capture::start(&url, &url, &["--ca-file", ca.to_str().expect("utf-8")]);
    let (_, status, _, _) = get(&rt, &proxy.addr, "/items/1", false);
    assert_eq!(status, 502);
    drop(proxy);
}
