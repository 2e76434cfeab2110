//! Redaction, applied to every pair before it reaches the writer: secret headers, query
//! parameters and JSON body fields are replaced by a mask or, with a key, by a keyed hash
//! (HMAC-SHA256) so that the same secret becomes the same token in every side and every pair and
//! stays comparable. The key never leaves this module: not into logs, files or `Debug` output.
//!
//! A body that redaction rules apply to but that cannot be parsed (a truncated JSON body) is
//! withheld rather than written half-redacted.
//!
//! A compressed body (`content-encoding` gzip, x-gzip, deflate, br, zstd or a stack of them) is
//! decoded first, through the format's bounded decoder, up to `max_decoded_body` bytes of
//! content; if the rules change it, the redacted content is encoded again with the same codings
//! ([`crate::coding`]), so the stored body still means what its header says. A compressed body
//! that cannot be decoded within the cap is withheld like one that cannot be parsed: its secret
//! could be anywhere in the bytes that were not read.
//!
//! A body that is a sequence of JSON documents — server-sent events, NDJSON, JSON Lines, JSON text
//! sequences ([`crate::framing`]) — has the rules applied to each document (each event's `data`,
//! each line); the unfinished last record of a cut stream is left out, since it cannot be checked.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::framing::{self, Framing, Rewrite};
use shadowdiff_format::encoding::{DecodeError, decode, encode, is_encoded};
use shadowdiff_format::media::{Claim, claim, looks_json};
use shadowdiff_format::pointer::{PathPattern, PatternSeg};
use shadowdiff_format::{Header, PairRecord, SideRecord};

/// Headers always redacted.
pub const DEFAULT_HEADERS: [&str; 5] = ["authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key"];

/// What replaces a value in mask mode.
pub const MASK: &str = "REDACTED";

/// The keyed-hash key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct HashKey(Vec<u8>);

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// At least 16 bytes: a short key makes the tokens of guessable secrets reversible.
    pub const MIN_LEN: usize = 16;

    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, String> {
        let bytes = bytes.into();
        if bytes.len() < Self::MIN_LEN {
            return Err(format!("gives a hash key of {} bytes; it must have at least {}", bytes.len(), Self::MIN_LEN));
        }
        Ok(Self(bytes))
    }

    /// The file's content without a trailing newline.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let mut bytes =
            std::fs::read(path).map_err(|e| format!("names {}, which cannot be read: {e}", path.display()))?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        Self::new(bytes)
    }

    pub fn from_env(var: &str) -> Result<Self, String> {
        match std::env::var_os(var) {
            Some(v) if !v.is_empty() => Self::new(v.into_encoded_bytes()),
            _ => Err(format!("names the environment variable {var}, which is not set")),
        }
    }
}

/// The decoded-size cap for compressed bodies redaction must look into, when none is configured.
pub const DEFAULT_MAX_DECODED_BODY: u64 = 8 * 1024 * 1024;

/// The configured rules (defaults excluded; they always apply).
#[derive(Debug, Clone)]
pub struct RedactRules {
    /// Extra header names, lower case.
    pub headers: Vec<String>,
    pub query_params: Vec<String>,
    /// JSON Pointer paths (RFC 6901) where a `*` segment matches any key or index.
    pub json_paths: Vec<String>,
    /// With a key, values become keyed-hash tokens; without one, [`MASK`].
    pub key: Option<HashKey>,
    /// The most content decoded from one compressed body to redact it; a body whose content is
    /// larger is withheld.
    pub max_decoded_body: u64,
}

impl Default for RedactRules {
    fn default() -> Self {
        Self {
            headers: Vec::new(),
            query_params: Vec::new(),
            json_paths: Vec::new(),
            key: None,
            max_decoded_body: DEFAULT_MAX_DECODED_BODY,
        }
    }
}

impl RedactRules {
    /// For file metadata: every rule and the mode, never the key.
    pub fn summary(&self) -> serde_json::Value {
        let mut headers: Vec<String> = DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect();
        headers.extend(self.headers.iter().cloned());
        serde_json::json!({
            "headers": headers,
            "query_params": self.query_params,
            "json_paths": self.json_paths,
            "mode": if self.key.is_some() { "hmac-sha256" } else { "mask" },
            "max_decoded_body": self.max_decoded_body,
            // How a compressed body that the JSON rules changed is stored (docs/schema.md).
            "encoded_bodies": "decoded, redacted and encoded again with the same content-encoding",
        })
    }
}

/// A JSON path to redact, in shadowdiff's one JSON-pointer pattern language (the same as the
/// diff rules'): `/user/password`, `/items/*/card`, `/**/password` at any depth.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(PathPattern);

impl JsonPath {
    pub fn parse(s: &str) -> Result<Self, String> {
        if !s.starts_with('/') || s.len() < 2 {
            return Err(format!(
                "must be a JSON Pointer pattern such as /user/password, /items/*/card or /**/password, not `{s}`"
            ));
        }
        PathPattern::new(s).map(Self).map_err(|why| format!("is not a valid JSON Pointer pattern ({why}): `{s}`"))
    }
}

/// Applies [`RedactRules`] to pairs.
pub struct Redactor {
    headers: HashSet<String>,
    params: HashSet<String>,
    paths: Vec<JsonPath>,
    key: Option<Hmac<Sha256>>,
    max_decoded: u64,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("headers", &self.headers)
            .field("params", &self.params)
            .field("paths", &self.paths)
            .field("keyed", &self.key.is_some())
            .field("max_decoded", &self.max_decoded)
            .finish()
    }
}

impl Redactor {
    pub fn new(rules: &RedactRules) -> Self {
        let mut headers: HashSet<String> = DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect();
        headers.extend(rules.headers.iter().map(|h| h.to_ascii_lowercase()));
        Self {
            headers,
            params: rules.query_params.iter().cloned().collect(),
            paths: rules.json_paths.iter().filter_map(|p| JsonPath::parse(p).ok()).collect(),
            key: rules.key.as_ref().and_then(|k| Hmac::<Sha256>::new_from_slice(&k.0).ok()),
            max_decoded: rules.max_decoded_body,
        }
    }

    /// Whether redacting `pair` means decoding a compressed body: work for a blocking thread.
    pub fn decodes(&self, pair: &PairRecord) -> bool {
        if self.paths.is_empty() {
            return false;
        }
        let encoded = |headers: &[Header], body: &Option<Bytes>| {
            body.as_ref().is_some_and(|b| !b.is_empty()) && is_encoded(content_encoding(headers).as_deref())
        };
        encoded(&pair.request_headers, &pair.request_body)
            || [&pair.baseline, &pair.canary, &pair.secondary].iter().any(|s| encoded(&s.headers, &s.body))
    }

    /// The replacement for a secret value: [`MASK`], or `hmac:` and 32 hex digits of its keyed hash.
    pub fn token(&self, secret: &[u8]) -> String {
        match &self.key {
            None => MASK.to_owned(),
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(secret);
                let digest = mac.finalize().into_bytes();
                let mut out = String::with_capacity(5 + 32);
                out.push_str("hmac:");
                for b in &digest[..16] {
                    out.push_str(&format!("{b:02x}"));
                }
                out
            }
        }
    }

    /// Redact a pair in place. Returns true when a body had to be withheld because rules apply
    /// to it and it could not be parsed.
    pub fn apply(&self, pair: &mut PairRecord) -> bool {
        self.headers(&mut pair.request_headers);
        if let Some(q) = pair.query.take() {
            pair.query = Some(self.query(&q));
        }
        let mut withheld = false;
        if let Some(body) = pair.request_body.take() {
            match self.body(body, &pair.request_headers, pair.request_body_truncated) {
                Some(b) => pair.request_body = Some(b),
                None => {
                    pair.request_body_truncated = true;
                    withheld = true;
                }
            }
        }
        for side in [&mut pair.baseline, &mut pair.canary, &mut pair.secondary] {
            withheld |= self.side(side);
        }
        withheld
    }

    fn side(&self, side: &mut SideRecord) -> bool {
        self.headers(&mut side.headers);
        // Trailers are headers sent late: the same names are secret there.
        self.headers(&mut side.trailers);
        if let Some(body) = side.body.take() {
            match self.body(body, &side.headers, side.body_truncated) {
                Some(b) => side.body = Some(b),
                None => {
                    side.body_truncated = true;
                    return true;
                }
            }
        }
        false
    }

    fn headers(&self, headers: &mut [Header]) {
        for h in headers {
            if self.headers.contains(&h.name.to_ascii_lowercase()) {
                h.value = Bytes::from(self.token(&h.value));
            }
        }
    }

    /// The raw query with configured parameters' values replaced; everything else byte for byte.
    pub fn query(&self, query: &str) -> String {
        if self.params.is_empty() {
            return query.to_owned();
        }
        query
            .split('&')
            .map(|part| match (part.split_once('='), form_decode(part)) {
                (Some((raw_key, _)), Some((key, value)))
                    if self.params.contains(raw_key) || self.params.contains(&*key) =>
                {
                    format!("{raw_key}={}", self.token(value.as_bytes()))
                }
                _ => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The body with JSON paths redacted; `None` when it must be withheld. `headers` are the
    /// message's own: its `content-type` and `content-encoding` say what the bytes are.
    fn body(&self, body: Bytes, headers: &[Header], cut: bool) -> Option<Bytes> {
        if self.paths.is_empty() || body.is_empty() {
            return Some(body);
        }
        let content_type = content_type(headers);
        let framing = Framing::of(content_type.as_deref());
        if framing.is_none() && matches!(claim(content_type.as_deref()), Claim::Text | Claim::Binary) {
            // Not JSON whatever its coding: nothing here for the JSON rules, nothing to decode.
            return Some(body);
        }
        let coding = content_encoding(headers);
        if !is_encoded(coding.as_deref()) {
            return match self.content(&body, content_type.as_deref(), framing, cut)? {
                Some(redacted) => Some(Bytes::from(redacted)),
                None => Some(body),
            };
        }
        let coding = coding.unwrap_or_default();
        // Undecodable (unknown or broken coding, cut in transit or at the cap) or larger than
        // the cap: the content cannot be checked, so none of it is written. A cut stream's
        // encoding ends early by nature: its complete records are checked.
        let (content, partial) = match decode(&body, Some(&coding), self.max_decoded) {
            Ok(d) if !d.truncated => (d.bytes, false),
            Err(DecodeError::EndsEarly { partial, .. }) if cut && framing.is_some() => (partial.into(), true),
            _ => return None,
        };
        match self.content(&content, content_type.as_deref(), framing, cut)? {
            Some(redacted) => encode(&redacted, &coding).ok().map(Bytes::from),
            // Decoded only in part: what is stored must be what was checked.
            None if partial => encode(&content, &coding).ok().map(Bytes::from),
            None => Some(body),
        }
    }

    /// Redacts content (decoded) by its framing: a sequence of documents, or one document.
    fn content(
        &self,
        content: &[u8],
        content_type: Option<&str>,
        framing: Option<Framing>,
        cut: bool,
    ) -> Option<Option<Vec<u8>>> {
        let Some(framing) = framing else {
            return self.json(content, content_type);
        };
        let redact = |doc: &mut Value| {
            let mut changed = false;
            for path in &self.paths {
                changed |= self.redact_matching(doc, path.0.segments(), true);
            }
            changed
        };
        match framing::rewrite(framing, content, cut, redact) {
            Rewrite::Unchanged => Some(None),
            Rewrite::Changed(out) => Some(Some(out)),
            Rewrite::Unreadable => None,
        }
    }

    /// Redacts a JSON document's bytes: `Some(None)` when nothing matched (or it is not JSON),
    /// `Some(Some(bytes))` with the redacted document, `None` when it cannot be parsed.
    fn json(&self, content: &[u8], content_type: Option<&str>) -> Option<Option<Vec<u8>>> {
        if !looks_json(content_type, content) {
            return Some(None);
        }
        let mut doc = serde_json::from_slice::<Value>(content).ok()?;
        let mut changed = false;
        for path in &self.paths {
            changed |= self.redact_matching(&mut doc, path.0.segments(), true);
        }
        if !changed {
            return Some(None);
        }
        serde_json::to_vec(&doc).ok().map(Some)
    }

    /// Replaces every value `pattern` (the rest of it, from here) matches with its token, and
    /// does not look inside what it replaced. The walk follows the pattern: a literal segment
    /// goes straight to its key or index, `*` visits each child, and only `**` visits a subtree;
    /// the document itself (`root`) is never replaced whole. The depth is bounded by serde_json's
    /// nesting limit (128).
    fn redact_matching(&self, v: &mut Value, pattern: &[PatternSeg], root: bool) -> bool {
        let Some((head, rest)) = pattern.split_first() else {
            let secret = match &*v {
                Value::String(s) => s.as_bytes().to_vec(),
                other => other.to_string().into_bytes(),
            };
            *v = Value::String(self.token(&secret));
            return true;
        };
        match (head, v) {
            (PatternSeg::Literal { text, .. }, Value::Object(map)) => {
                map.get_mut(text.as_str()).is_some_and(|child| self.redact_matching(child, rest, false))
            }
            (PatternSeg::Literal { index, .. }, Value::Array(items)) => {
                index.and_then(|i| items.get_mut(i)).is_some_and(|child| self.redact_matching(child, rest, false))
            }
            (PatternSeg::One, v) => self.each_child(v, |child| self.redact_matching(child, rest, false)),
            (PatternSeg::AnyDepth, v) => {
                // `**` matches no segment here, or one more and stays.
                if !root && rest.is_empty() {
                    return self.redact_matching(v, rest, false);
                }
                let here = !rest.is_empty() && self.redact_matching(v, rest, root);
                self.each_child(v, |child| self.redact_matching(child, pattern, false)) | here
            }
            _ => false,
        }
    }

    /// Applies `f` to every child of an object or array; true when any call was.
    fn each_child(&self, v: &mut Value, mut f: impl FnMut(&mut Value) -> bool) -> bool {
        let mut any = false;
        match v {
            Value::Object(map) => map.values_mut().for_each(|child| any |= f(child)),
            Value::Array(items) => items.iter_mut().for_each(|child| any |= f(child)),
            _ => {}
        }
        any
    }
}

fn content_type(headers: &[Header]) -> Option<String> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-type")).map(|h| h.value_lossy().to_ascii_lowercase())
}

/// Every `content-encoding` header of a message joined with `, `, in order.
fn content_encoding(headers: &[Header]) -> Option<String> {
    let values: Vec<_> =
        headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-encoding")).map(|h| h.value_lossy()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// One `key=value` part of a query as a form decoder reads it (`+` is a space, `%XX` a byte,
/// invalid escapes and invalid UTF-8 kept leniently), for comparing keys and hashing values.
fn form_decode(part: &str) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    form_urlencoded::parse(part.as_bytes()).next()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn rules(key: Option<&str>) -> RedactRules {
        RedactRules {
            headers: vec!["x-session".into()],
            query_params: vec!["token".into()],
            json_paths: vec!["/password".into(), "/cards/*/number".into()],
            key: key.map(|k| HashKey::new(k.as_bytes().to_vec()).expect("long enough")),
            ..RedactRules::default()
        }
    }

    fn pair() -> PairRecord {
        let mut p = PairRecord::new("a", Utc::now(), "POST", "/login", Some("user=ann&token=s3cr%65t&x=1".into()));
        p.request_headers = vec![
            Header::new("Authorization", "Bearer abc"),
            Header::new("X-Session", "sess-1"),
            Header::new("content-type", "application/json"),
        ];
        p.request_body = Some(Bytes::from_static(
            br#"{"user":"ann","password":"hunter2","cards":[{"number":4111},{"number":"5500"}]}"#,
        ));
        p.baseline.headers = vec![Header::new("set-cookie", "sid=1"), Header::new("content-type", "application/json")];
        p.baseline.body = Some(Bytes::from_static(br#"{"password":"hunter2","ok":true}"#));
        p.canary.body = Some(Bytes::from_static(br#"{"password":"hunt"#));
        p.canary.body_truncated = true;
        p
    }

    #[test]
    fn masks_headers_query_and_json_paths() {
        let r = Redactor::new(&rules(None));
        let mut p = pair();
        let withheld = r.apply(&mut p);
        assert_eq!(p.request_headers[0].value, MASK);
        assert_eq!(p.request_headers[1].value, MASK);
        assert_eq!(p.request_headers[2].value, "application/json");
        assert_eq!(p.query.as_deref(), Some("user=ann&token=REDACTED&x=1"));
        let body: Value = serde_json::from_slice(p.request_body.as_deref().expect("body")).expect("json");
        assert_eq!(body, serde_json::json!({"user":"ann","password":MASK,"cards":[{"number":MASK},{"number":MASK}]}));
        assert_eq!(p.baseline.headers[0].value, MASK);
        // The truncated canary body cannot be parsed: withheld, not half-redacted.
        assert!(withheld);
        assert_eq!(p.canary.body, None);
        assert!(p.canary.body_truncated);
    }

    #[test]
    fn patterns_speak_the_diff_rules_language() {
        let mut rules = rules(None);
        rules.json_paths = vec!["/**/password".into(), "/items/*/card".into()];
        let r = Redactor::new(&rules);
        let mut p = pair();
        p.request_body = Some(Bytes::from_static(
            br#"{"password":"a","user":{"auth":{"password":"b"}},"items":[{"card":1,"id":2}],"passwords":"c"}"#,
        ));
        r.apply(&mut p);
        let body: Value = serde_json::from_slice(p.request_body.as_deref().expect("body")).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"password":MASK,"user":{"auth":{"password":MASK}},"items":[{"card":MASK,"id":2}],"passwords":"c"})
        );
        // `**` never replaces the document itself, and nothing inside a replaced value is visited.
        rules.json_paths = vec!["/**".into()];
        let mut p = pair();
        p.request_body = Some(Bytes::from_static(br#"{"a":{"b":1},"c":[2]}"#));
        Redactor::new(&rules).apply(&mut p);
        let body: Value = serde_json::from_slice(p.request_body.as_deref().expect("body")).expect("json");
        assert_eq!(body, serde_json::json!({"a": MASK, "c": MASK}));
        assert!(JsonPath::parse("/a~2").expect_err("a bad escape").contains("`/a~2`"));
        assert!(JsonPath::parse("password").is_err());
    }

    #[test]
    fn keyed_hash_is_stable_and_never_the_secret() {
        let r = Redactor::new(&rules(Some("0123456789abcdef-key")));
        let mut p = pair();
        r.apply(&mut p);
        let body: Value = serde_json::from_slice(p.request_body.as_deref().expect("body")).expect("json");
        let base: Value = serde_json::from_slice(p.baseline.body.as_deref().expect("body")).expect("json");
        let token = body["password"].as_str().expect("token");
        assert!(token.starts_with("hmac:") && token.len() == 37, "{token}");
        assert_eq!(base["password"], body["password"], "the same secret gives the same token");
        assert_ne!(r.token(b"hunter2"), r.token(b"hunter3"));
        // The query value is decoded before hashing: s3cr%65t is "s3cret".
        assert!(p.query.as_deref().is_some_and(|q| q.contains(&r.token(b"s3cret"))));
        let other = Redactor::new(&rules(Some("another-key-0123456789")));
        assert_ne!(other.token(b"hunter2"), r.token(b"hunter2"), "tokens depend on the key");
        assert!(!format!("{:?}", rules(Some("0123456789abcdef-key"))).contains("0123456789abcdef"));
    }

    fn encoded_side(body: &[u8], coding: &str, content_type: Option<&str>) -> PairRecord {
        let mut p = PairRecord::new("a", Utc::now(), "GET", "/", None);
        p.baseline.status = Some(200);
        p.baseline.headers = vec![Header::new("content-encoding", coding.to_owned())];
        if let Some(ct) = content_type {
            p.baseline.headers.push(Header::new("content-type", ct.to_owned()));
        }
        p.baseline.body = Some(Bytes::from(encode(body, coding).expect("encodes")));
        p
    }

    #[test]
    fn compressed_json_is_decoded_redacted_and_encoded_again() {
        let r = Redactor::new(&rules(None));
        let doc = br#"{"password":"hunter2","ok":true}"#;
        for coding in ["gzip", "x-gzip", "deflate", "br", "zstd", "gzip, br", "br, zstd"] {
            let mut p = encoded_side(doc, coding, Some("application/json"));
            assert!(r.decodes(&p), "{coding}");
            assert!(!r.apply(&mut p), "{coding}: nothing withheld");
            let stored = p.baseline.body.as_deref().expect("body");
            let content = decode(stored, Some(coding), 1 << 20).expect("the stored body decodes by its header");
            let v: Value = serde_json::from_slice(&content.bytes).expect("json");
            assert_eq!(v, serde_json::json!({"password": MASK, "ok": true}), "{coding}");
            assert_eq!(p.baseline.headers[0].value, coding, "the header still says what the bytes are");
        }
        // Repeated content-encoding headers are one stack.
        let mut p = encoded_side(doc, "gzip, zstd", None);
        p.baseline.headers = vec![Header::new("Content-Encoding", "gzip"), Header::new("content-encoding", "zstd")];
        r.apply(&mut p);
        let content = decode(p.baseline.body.as_deref().expect("body"), Some("gzip, zstd"), 1 << 20).expect("decodes");
        assert!(!content.bytes.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn compressed_bodies_that_cannot_be_checked_are_withheld() {
        let r = Redactor::new(&rules(None));
        let doc = br#"{"password":"hunter2","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
        // Cut in transit (or at the body cap), a claim that lies, an unknown coding, a bomb past
        // the decoded-size cap, and compressed JSON that does not parse.
        let mut cut = encoded_side(doc, "gzip", Some("application/json"));
        let whole = cut.baseline.body.clone().expect("body");
        cut.baseline.body = Some(whole.slice(..whole.len() / 2));
        let mut liar = encoded_side(doc, "gzip", Some("application/json"));
        liar.baseline.headers[0].value = Bytes::from_static(b"br");
        let mut unknown = encoded_side(doc, "gzip", Some("application/json"));
        unknown.baseline.headers[0].value = Bytes::from_static(b"compress");
        let mut bomb = encoded_side(&[b' '; 4096], "gzip", Some("application/json"));
        let mut small = rules(None);
        small.max_decoded_body = 1024;
        let mut broken_json = encoded_side(br#"{"password":"hun"#, "zstd", None);
        for (name, pair, redactor) in [
            ("cut", &mut cut, &r),
            ("liar", &mut liar, &r),
            ("unknown", &mut unknown, &r),
            ("bomb", &mut bomb, &Redactor::new(&small)),
            ("broken json", &mut broken_json, &r),
        ] {
            assert!(redactor.apply(pair), "{name} is withheld");
            assert_eq!(pair.baseline.body, None, "{name}");
            assert!(pair.baseline.body_truncated, "{name}");
        }
    }

    #[test]
    fn compressed_bodies_the_rules_do_not_touch_are_kept_as_received() {
        let r = Redactor::new(&rules(None));
        let untouched = encoded_side(br#"{"ok":true}"#, "br", Some("application/json"));
        let html = encoded_side(b"<p>password</p>", "gzip", Some("text/html"));
        let mut broken_html = html.clone();
        broken_html.baseline.body = Some(Bytes::from_static(b"not gzip at all"));
        for original in [untouched, html, broken_html] {
            let mut p = original.clone();
            assert!(!r.apply(&mut p));
            assert_eq!(p.baseline.body, original.baseline.body, "the received bytes, unchanged");
        }
        // Without JSON rules nothing is decoded at all.
        let mut no_paths = rules(None);
        no_paths.json_paths.clear();
        assert!(!Redactor::new(&no_paths).decodes(&encoded_side(b"{}", "gzip", None)));
    }

    #[test]
    fn every_event_of_a_stream_is_redacted_and_a_cut_tail_left_out() {
        let r = Redactor::new(&rules(None));
        let sse = b"id: 1\ndata: {\"password\":\"hunter2\"}\n\nid: 2\ndata: {\"password\":\"hun";
        for coding in ["identity", "gzip", "br"] {
            let mut p = encoded_side(sse, coding, Some("text/event-stream"));
            // Cut in the middle of its second event, and (when compressed) of its coding.
            if coding != "identity" {
                let whole = p.baseline.body.clone().expect("body");
                p.baseline.body = Some(whole.slice(..whole.len() - 3));
            }
            p.baseline.body_truncated = true;
            assert!(!r.apply(&mut p), "{coding}: kept, not withheld");
            let stored = p.baseline.body.as_deref().expect("body");
            let content = decode(stored, Some(coding), 1 << 20).expect("the stored body decodes whole");
            assert_eq!(&content.bytes[..], b"id: 1\ndata: {\"password\":\"REDACTED\"}\n\n", "{coding}");
        }
        let mut nd = encoded_side(b"{\"password\":\"a\"}\n{\"ok\":1}\n", "zstd", Some("application/x-ndjson"));
        r.apply(&mut nd);
        let content = decode(nd.baseline.body.as_deref().expect("body"), Some("zstd"), 1 << 20).expect("decodes");
        assert_eq!(&content.bytes[..], b"{\"password\":\"REDACTED\"}\n{\"ok\":1}\n");
        let mut broken = encoded_side(b"{\"password\":\"a\"}\nnot json\n", "identity", Some("application/x-ndjson"));
        assert!(r.apply(&mut broken), "a line that is not JSON in a JSON-lines body withholds it");
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(HashKey::new(b"short".to_vec()).is_err());
    }

    #[test]
    fn percent_decoding_is_forgiving() {
        let decoded = |part: &str| form_decode(part).map(|(k, v)| (k.into_owned(), v.into_owned()));
        assert_eq!(decoded("a%20b+c=100%"), Some(("a b c".to_owned(), "100%".to_owned())));
        assert_eq!(decoded("k=%zz"), Some(("k".to_owned(), "%zz".to_owned())));
        assert_eq!(decoded("k=a=b"), Some(("k".to_owned(), "a=b".to_owned())));
    }
}
