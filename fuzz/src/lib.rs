//! The bodies of shadowdiff's fuzz targets, one public function per target (`fuzz_targets/*.rs`
//! only hand libFuzzer's input to them). Each takes arbitrary bytes, feeds them to one parser or
//! transform of untrusted input, and panics when a property fails: a panic in the code under
//! test is a finding as much as a failed `assert!` here. docs/fuzzing.md lists the targets, the
//! input layout of each and its properties.
//!
//! The same functions run on stable in the suite (tests/fuzz_inputs.rs includes this file), over
//! the committed seeds (`seeds/<target>/`) and the inputs of every crash found
//! (`regressions/<target>/`).

use std::path::Path;
use std::sync::OnceLock;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;
use shadowdiff_analyze::json::json_eq;
use shadowdiff_analyze::route::{OTHER_ROUTE, RouteRecorder, settle};
use shadowdiff_analyze::route_key::{self, KeyOutcome};
use shadowdiff_analyze::{Policy, Rules, body, diff_json, diff_json_with_patch, stream};
use shadowdiff_capture::redact::{MASK, RedactRules, Redactor};
use shadowdiff_format::encoding::{self, DecodeError};
use shadowdiff_format::{Header, PairReader, PairRecord, ReadOptions, SideRecord};
use shadowdiff_replay::source::{envoy, gor, har};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, for the seed and regression replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("json_diff", json_diff),
    ("har", har),
    ("gor", gor),
    ("envoy_tap", envoy_tap),
    ("pair_file", pair_file),
    ("rules_policy", rules_policy),
    ("redact", redact),
    ("route", route),
    ("decode", decode),
    ("stream", stream),
    ("route_key", route_key),
];

/// The decoded-size cap the targets decode with: small, so a bomb costs little time.
const CAP: u64 = 256 * 1024;

/// `data` cut at its first `n - 1` NUL bytes into `n` parts (missing parts are empty).
fn split<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for (i, slot) in out.iter_mut().enumerate() {
        if i + 1 == N {
            *slot = rest;
            break;
        }
        match rest.iter().position(|b| *b == 0) {
            Some(p) => {
                *slot = &rest[..p];
                rest = &rest[p + 1..];
            }
            None => {
                *slot = rest;
                rest = &rest[rest.len()..];
            }
        }
    }
    out
}

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

/// `A \0 B [\0 RULES]`: two JSON documents and a rules file (default rules when it is absent or
/// does not parse). The diff must not panic; its RFC 6902 patch must apply to A; under default
/// rules the patched A must equal B (as JSON: `1` and `1.0` are one number) and the diff must be
/// empty exactly when A equals B; under any rules, the patched A must show no difference from B
/// that is not explained.
pub fn json_diff(data: &[u8]) {
    let [a, b, rules] = split::<3>(data);
    let (Ok(a), Ok(b)) = (serde_json::from_slice::<Value>(a), serde_json::from_slice::<Value>(b)) else {
        return;
    };
    let rules = std::str::from_utf8(rules).ok().and_then(|t| Rules::from_toml(t).ok()).unwrap_or_default();
    let route = Some("/fuzz");
    let default = Rules::default();
    for (rules, exact) in [(&default, true), (&rules, false)] {
        let (diffs, patch) = diff_json_with_patch(&a, &b, rules, route);
        let parsed: json_patch::Patch = serde_json::from_value(Value::Array(patch.clone()))
            .unwrap_or_else(|e| panic!("the patch {patch:?} is not RFC 6902: {e}"));
        let mut patched = a.clone();
        json_patch::patch(&mut patched, &parsed).unwrap_or_else(|e| panic!("the patch {patch:?} does not apply: {e}"));
        if exact {
            assert!(json_eq(&patched, &b), "the patch turns A into {patched}, not B = {b}");
            assert_eq!(diffs.is_empty(), json_eq(&a, &b), "differences {diffs:?} for A = {a}, B = {b}");
        } else {
            let left: Vec<_> =
                diff_json(&patched, &b, rules, route).into_iter().filter(|d| d.explained.is_none()).collect();
            assert!(left.is_empty(), "after the patch {patch:?}, A = {patched} still differs from B = {b}: {left:?}");
        }
    }
}

/// A HAR file: read, never panic; every pair it gives has a method and a path.
pub fn har(data: &[u8]) {
    if let Ok(records) = har::read_bytes(Path::new("fuzz.har"), data, "fuzz") {
        for r in records {
            assert!(!r.method.is_empty());
        }
    }
}

/// A GoReplay file: read, never panic.
pub fn gor(data: &[u8]) {
    if let Ok(file) = gor::read_bytes(Path::new("fuzz.gor"), data, "fuzz") {
        for r in file.records {
            assert!(!r.method.is_empty());
        }
    }
}

/// `E FILE`: byte E picks the encoding (JSON, binary, length-delimited); FILE is read as the
/// baseline sidecar's and as the canary's, then the two are paired. Never panics, and every
/// exchange of each side is paired, side-only or without a request id.
pub fn envoy_tap(data: &[u8]) {
    let Some((&e, file)) = data.split_first() else { return };
    let encoding = match e % 3 {
        0 => envoy::Encoding::Json,
        1 => envoy::Encoding::ProtoBinary,
        _ => envoy::Encoding::ProtoLengthDelimited,
    };
    let read = |shadow| envoy::read_bytes(Path::new("fuzz_0.json"), file, encoding, shadow, at());
    let (Ok(b), Ok(c)) = (read(false), read(true)) else { return };
    let (nb, nc) = (b.exchanges.len() as u64, c.exchanges.len() as u64);
    let side = |t: envoy::TapFile| envoy::SideTraces {
        exchanges: t.exchanges,
        unreadable: t.unreadable,
        files: 1,
        ignored: Vec::new(),
    };
    let p = envoy::pair(side(b), side(c), "fuzz");
    assert_eq!(p.baseline.paired + p.baseline.only + p.baseline.no_request_id, nb, "baseline exchanges lost");
    assert_eq!(p.canary.paired + p.canary.only + p.canary.no_request_id, nc, "canary exchanges lost");
    assert_eq!(p.pairs.len() as u64, p.baseline.paired);
}

/// A pair file (mutated Parquet bytes, written to a temporary file): opened, checked and read to
/// the last record, never panicking.
pub fn pair_file(data: &[u8]) {
    // The reader turns a panic of the parquet crate on a damaged page into an error
    // (catch_unwind in format/src/reader.rs), but libFuzzer's panic hook aborts before any unwind:
    // the default hook instead. A panic that escapes the reader still aborts (libfuzzer-sys
    // catches it around the target), so it is still a crash.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| drop(std::panic::take_hook()));
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("shadowdiff-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a temporary directory");
        d
    });
    let path = dir.join("pairs.parquet");
    std::fs::write(&path, data).expect("the temporary file is written");
    let options = ReadOptions { batch_size: 64, columns: None };
    for batch in PairReader::from_files(vec![path], options) {
        let Ok(batch) = batch else { break };
        let _ = batch.records();
    }
}

/// A TOML file read as a rules file and as a policy file: errors, never panics.
pub fn rules_policy(data: &[u8]) {
    let Ok(t) = std::str::from_utf8(data) else { return };
    let _ = Rules::from_toml(t);
    if let Ok(p) = Policy::from_toml(t, Path::new("policy.toml")) {
        let _ = p.checks_for("/users/1");
        let _ = p.min_samples_for("/users/1");
    }
}

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("Application/JSON; charset=utf-8"),
    Some("text/event-stream"),
    Some("text/event-stream; charset=utf-8"),
    Some("application/x-ndjson"),
    Some("application/jsonl"),
    Some("application/json-lines"),
    Some("application/x-jsonl"),
    Some("text/x-ndjson"),
    Some("application/json-seq"),
    Some("application/geo+json-seq"),
    Some("application/problem+json"),
    Some("text/plain"),
    Some("application/octet-stream"),
    Some("application/x-www-form-urlencoded"),
];

const CODINGS: &[Option<&str>] =
    &[None, Some("gzip"), Some("br"), Some("deflate"), Some("zstd"), Some("gzip, br"), Some("identity")];

/// A value the redaction rules replaced: the mask, or a keyed-hash token.
fn is_token(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s == MASK || (s.len() == 37 && s.starts_with("hmac:") && s[5..].bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// Every `password` member at any depth of `v`, not a token: a secret left in the clear.
fn find_secret(v: &Value) -> Option<String> {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if k == "password" && !is_token(child) {
                        return Some(child.to_string());
                    }
                    stack.push(child);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    None
}

/// `T C F QUERY \0 BODY`: byte T picks a content type, C a content coding (the body is encoded
/// with it, so the fuzzer's bytes are the content), F's bits say the body was cut and that tokens
/// are keyed hashes. Redaction with the header defaults, query parameter `token` and JSON path
/// `/**/password` runs over a pair whose request and response carry them. Never panics, and
/// what is stored holds no secret: no `authorization` value, no `token` parameter value and no
/// `password` member at any depth of any JSON document that analyze reads out of a stored body
/// (decoding it and splitting it into events or lines as analyze does).
pub fn redact(data: &[u8]) {
    let Some((&[t, c, f], rest)) = data.split_first_chunk::<3>() else { return };
    let [query, body] = split::<2>(rest);
    let content_type = CONTENT_TYPES[usize::from(t) % CONTENT_TYPES.len()];
    let coding = CODINGS[usize::from(c) % CODINGS.len()];
    let cut = f & 1 != 0;
    let key = (f & 2 != 0).then(|| shadowdiff_capture::redact::HashKey::new(*b"0123456789abcdef0123"));
    let key = match key {
        Some(Ok(k)) => Some(k),
        _ => None,
    };
    let stored = match coding {
        Some(coding) => match encoding::encode(body, coding) {
            Ok(b) => b,
            Err(_) => return,
        },
        None => body.to_vec(),
    };
    let mut headers = vec![Header::new("authorization", "Bearer s3cr3t")];
    if let Some(ct) = content_type {
        headers.push(Header::new("content-type", ct.to_owned()));
    }
    if let Some(coding) = coding {
        headers.push(Header::new("content-encoding", coding.to_owned()));
    }
    let query = String::from_utf8_lossy(query).into_owned();
    let mut pair = PairRecord::new("fuzz", at(), "POST", "/fuzz", Some(query));
    pair.request_headers = headers.clone();
    pair.request_body = Some(Bytes::from(stored.clone()));
    pair.request_body_truncated = cut;
    pair.baseline = SideRecord {
        status: Some(200),
        headers,
        body: Some(Bytes::from(stored)),
        body_truncated: cut,
        ..SideRecord::default()
    };
    let rules = RedactRules {
        query_params: vec!["token".into()],
        json_paths: vec!["/**/password".into()],
        key,
        max_decoded_body: CAP,
        ..RedactRules::default()
    };
    let redactor = Redactor::new(&rules);
    redactor.apply(&mut pair);

    for h in pair.request_headers.iter().chain(&pair.baseline.headers) {
        if h.name == "authorization" {
            assert!(is_token(&Value::from(h.value_lossy().into_owned())), "authorization kept: {:?}", h.value);
        }
    }
    if let Some(q) = &pair.query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            assert!(k != "token" || v.is_empty() || is_token(&Value::from(v.as_ref())), "query kept `{k}={v}` in {q}");
        }
    }
    let request = SideRecord {
        headers: pair.request_headers.clone(),
        body: pair.request_body.clone(),
        body_truncated: pair.request_body_truncated,
        ..SideRecord::default()
    };
    for side in [&request, &pair.baseline] {
        let Some(stored) = &side.body else { continue };
        let decoded = match encoding::decode_side(side, CAP) {
            Ok(d) => d,
            Err(_) => continue,
        };
        let parsed = body::parse_body_cut(&decoded.bytes, content_type, side.body_truncated || decoded.truncated);
        if let body::ParsedBody::Json { value, .. } = &parsed.body
            && let Some(secret) = find_secret(value)
        {
            panic!("a password is stored in the clear: {secret} in {:?}", String::from_utf8_lossy(stored));
        }
    }
}

/// `RULES \0 PATH \0 PATH …`: route templates and keys from a rules file (default rules when it
/// does not parse), then paths templated as analyze does: recorded uncapped, the cap settled over
/// them all. Never panics; a path an explicit template matches gets that template, never
/// renamed; the heuristic routes that keep their names stay within `max_routes`.
pub fn route(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let rules = parts.next().and_then(|t| std::str::from_utf8(t).ok()).and_then(|t| Rules::from_toml(t).ok());
    let rules = rules.unwrap_or_default().routes;
    let max = rules.max_routes;
    let templates = rules.templates.clone();
    let mut recorder = RouteRecorder::new(rules);
    for (i, path) in parts.enumerate() {
        let path = text(path);
        let plain = path.split(['?', '#']).next().unwrap_or("");
        let route = recorder.route_keyed(&path, None, i as u64);
        if let Some(t) = templates.iter().find(|t| t.matches(plain)) {
            assert_eq!(route, t.as_str(), "{path} matches {} but went to {route}", t.as_str());
        }
        let _ = shadowdiff_analyze::template_path(&path);
    }
    let seen = recorder.into_seen();
    let (renamed, _) = settle(seen.clone(), max);
    let kept = seen.iter().filter(|s| !s.explicit && s.route != OTHER_ROUTE && !renamed.contains_key(&s.route)).count();
    assert!(kept <= max, "more heuristic routes than max_routes = {max}");
    assert!(
        seen.iter().filter(|s| s.explicit).all(|s| !renamed.contains_key(&s.route)),
        "an explicit template renamed"
    );
}

/// `C BODY`: byte C picks a `Content-Encoding` (or, past the list, the rest up to the first NUL is
/// the header's value). Decoding never panics and never gives more than the cap; and the
/// content encoded with a known coding decodes back to itself.
pub fn decode(data: &[u8]) {
    let Some((&c, rest)) = data.split_first() else { return };
    let (coding, body): (Option<String>, &[u8]) = match CODINGS.get(usize::from(c)) {
        Some(coding) => (coding.map(str::to_owned), rest),
        None => {
            let [value, body] = split::<2>(rest);
            (Some(text(value).into_owned()), body)
        }
    };
    let cap = 64 * 1024;
    match encoding::decode(body, coding.as_deref(), cap) {
        Ok(d) => assert!(d.bytes.len() as u64 <= cap.max(body.len() as u64)),
        Err(DecodeError::EndsEarly { partial, .. }) => assert!(partial.len() as u64 <= cap + 1),
        Err(_) => {}
    }
    if let Some(coding) = coding.as_deref().filter(|c| encoding::is_encoded(Some(c)))
        && let Ok(encoded) = encoding::encode(body, coding)
    {
        let back = encoding::decode(&encoded, Some(coding), body.len() as u64)
            .unwrap_or_else(|e| panic!("{coding}: what encode wrote does not decode: {e}"));
        assert_eq!(&*back.bytes, body, "{coding}: the round trip changed the content");
        assert!(!back.truncated);
    }
}

/// `K BODY`: byte K picks the stream kind and whether the body was cut. Parsing never panics,
/// and a cut body never gives more records than the same bytes uncut.
pub fn stream(data: &[u8]) {
    let Some((&k, body)) = data.split_first() else { return };
    let kind = match k % 3 {
        0 => stream::Stream::EventStream,
        1 => stream::Stream::JsonLines,
        _ => stream::Stream::JsonSeq,
    };
    let whole = stream::parse(kind, body, false);
    let cut = stream::parse(kind, body, true);
    assert!(cut.items.len() <= whole.items.len(), "cut: {} records, whole: {}", cut.items.len(), whole.items.len());
    let _ = whole.to_value();
}

/// `S PATH \0 QUERY \0 HEADER \0 BODY`: byte S picks a key rule (graphql, jsonrpc or a header) and
/// a content type and coding for the request body. Keying never panics, and a key is at most
/// `MAX_KEY_CHARS` characters.
pub fn route_key(data: &[u8]) {
    let Some((&s, rest)) = data.split_first() else { return };
    let [path, query, header, body] = split::<4>(rest);
    let from = ["graphql", "jsonrpc", "header"][usize::from(s) % 3];
    let rule = route_key::KeyRule::new("routes.key[0]", "/**", from, (from == "header").then_some("x-op"));
    let Ok(rule) = rule else { return };
    let content_type = ["application/json", "application/graphql", "text/plain"][usize::from(s / 3) % 3];
    let coding = CODINGS[usize::from(s / 9) % CODINGS.len()];
    let mut r = PairRecord::new("fuzz", at(), if s & 0x80 != 0 { "GET" } else { "POST" }, text(path), None);
    if !query.is_empty() {
        r.query = Some(text(query).into_owned());
    }
    r.request_headers.push(Header::new("x-op", Bytes::copy_from_slice(header)));
    r.request_headers.push(Header::new("content-type", content_type));
    let body = match coding {
        Some(c) => encoding::encode(body, c).unwrap_or_else(|_| body.to_vec()),
        None => body.to_vec(),
    };
    if let Some(c) = coding {
        r.request_headers.push(Header::new("content-encoding", c));
    }
    r.request_body = Some(Bytes::from(body));
    match route_key::key_of(std::slice::from_ref(&rule), &r, CAP) {
        KeyOutcome::Key(key) => {
            let n = key.chars().count();
            assert!(n <= route_key::MAX_KEY_CHARS, "a key of {n} characters: {key}");
        }
        KeyOutcome::Missing(_) | KeyOutcome::NoRule => {}
    }
    if let Ok(doc) = std::str::from_utf8(rest) {
        let _ = route_key::first_operation(doc);
    }
}

#[cfg(test)]
mod tests;
