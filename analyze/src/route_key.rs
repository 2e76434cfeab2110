//! Route keys: endpoints named in the request rather than in its path. A POST to `/graphql`
//! carries its operation in the body, so every GraphQL operation shares one path; with a
//! `[[routes.key]]` rule the operation's name is appended to the route (`/graphql#GetUser`) and
//! each operation is judged on its own. Keys come from:
//!
//! - `graphql`: the request's `operationName`, else the name of the first operation in its
//!   `query` document, `(anonymous)` for an unnamed one. Read from a JSON body, an
//!   `application/graphql` body (the document itself), or for a GET the URL's query string.
//! - `jsonrpc`: the JSON-RPC `method`.
//! - `header`: the value of a named request header.
//!
//! A batch (a JSON array of GraphQL requests or JSON-RPC calls) is keyed by its distinct names in
//! order, in brackets: `/rpc#[getUser,getCart]`. A request the rule applies to whose key cannot
//! be read (a body that is not JSON, a missing header …) keeps its plain route, and is counted
//! with the reason.
//!
//! Request bodies are decoded by their `Content-Encoding` first, up to the decoded-size cap.

use serde_json::Value;
use shadowdiff_format::PairRecord;
use shadowdiff_format::encoding;
use shadowdiff_format::pointer::PathPattern;

use crate::error::{Error, Result};

/// The key of an operation without a name.
pub const ANONYMOUS: &str = "(anonymous)";
/// The separator between a route and its key.
pub const SEPARATOR: char = '#';
/// Keys are cut to this many characters: they are client-controlled text.
pub const MAX_KEY_CHARS: usize = 100;
/// Distinct names listed in a batch's key; more are shown as `…`.
const MAX_BATCH_NAMES: usize = 8;

/// Where a route key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    GraphQl,
    JsonRpc,
    /// A request header, by lower-case name.
    Header(String),
}

/// One `[[routes.key]]` rule: requests whose path matches `path` get a key from `source`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRule {
    pub path: PathPattern,
    pub source: KeySource,
}

impl KeyRule {
    /// Compiles a rule; `rule` names it in errors (`routes.key[0]`).
    pub fn new(rule: &str, path: &str, from: &str, header: Option<&str>) -> Result<Self> {
        let err = |reason: String| Error::Rule { rule: rule.to_owned(), reason };
        let path = PathPattern::new(path).map_err(|e| err(format!("`path` is not a valid route pattern: {e}")))?;
        let source = match (from, header) {
            ("graphql", None) => KeySource::GraphQl,
            ("jsonrpc", None) => KeySource::JsonRpc,
            ("header", Some(name)) if !name.trim().is_empty() => KeySource::Header(name.trim().to_ascii_lowercase()),
            ("header", _) => return Err(err("`from = \"header\"` needs a `header` name".into())),
            ("graphql" | "jsonrpc", Some(_)) => {
                return Err(err(format!("`header` only applies to `from = \"header\"`, not `{from}`")));
            }
            _ => return Err(err(format!("unknown key source `{from}`, expected graphql, jsonrpc or header"))),
        };
        Ok(Self { path, source })
    }
}

/// What the key rules made of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// No rule applies to the request's path.
    NoRule,
    /// The key, to append to the route.
    Key(String),
    /// A rule applies but no key could be read: why (the request keeps its plain route).
    Missing(&'static str),
}

/// The key of `record` under the first rule whose path matches (`rules` in file order).
/// `cap` bounds a decoded request body.
pub fn key_of(rules: &[KeyRule], record: &PairRecord, cap: u64) -> KeyOutcome {
    let Some(rule) = rules.iter().find(|r| r.path.matches_route(&record.path)) else {
        return KeyOutcome::NoRule;
    };
    let read = match &rule.source {
        KeySource::Header(name) => header_key(record, name),
        KeySource::GraphQl if record.request_body.as_ref().is_none_or(|b| b.is_empty()) => graphql_from_query(record),
        source => match request_body(record, cap) {
            Ok(body) if is_graphql_document(record) && *source == KeySource::GraphQl => {
                std::str::from_utf8(&body).ok().and_then(first_operation).ok_or(GRAPHQL_UNPARSEABLE)
            }
            Ok(body) => match serde_json::from_slice::<Value>(&body) {
                Ok(json) => body_key(source, &json),
                Err(_) if record.request_body_truncated => Err("request body was cut at the capture cap"),
                Err(_) => Err("request body is not JSON"),
            },
            Err(why) => Err(why),
        },
    };
    match read {
        Ok(key) => KeyOutcome::Key(clean(&key)),
        Err(why) => KeyOutcome::Missing(why),
    }
}

const GRAPHQL_UNPARSEABLE: &str = "GraphQL query has no operation that parses";

fn header_key(record: &PairRecord, name: &str) -> Result<String, &'static str> {
    record
        .request_headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value_lossy().trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or("the key header is missing or empty")
}

fn request_body(record: &PairRecord, cap: u64) -> Result<Vec<u8>, &'static str> {
    let body = record.request_body.as_deref().unwrap_or_default();
    let coding = request_header(record, "content-encoding");
    match encoding::decode(body, coding.as_deref(), cap) {
        Ok(d) => Ok(d.bytes.into_owned()),
        Err(encoding::DecodeError::EndsEarly { partial, .. }) if record.request_body_truncated => Ok(partial),
        Err(_) => Err("request body could not be decoded by its content-encoding"),
    }
}

fn request_header(record: &PairRecord, name: &str) -> Option<String> {
    record.request_headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value_lossy().into_owned())
}

/// A body that is a GraphQL document itself (`Content-Type: application/graphql`).
fn is_graphql_document(record: &PairRecord) -> bool {
    request_header(record, "content-type")
        .is_some_and(|ct| shadowdiff_format::media::media_type(&ct) == "application/graphql")
}

/// The key of a JSON request body: one request, or a batch.
fn body_key(source: &KeySource, json: &Value) -> Result<String, &'static str> {
    let one = |v: &Value| match source {
        KeySource::GraphQl => graphql_key(v.get("operationName"), v.get("query")),
        _ => v.get("method").and_then(Value::as_str).map(str::to_owned).ok_or("no JSON-RPC `method`"),
    };
    match json {
        Value::Array(items) if items.is_empty() => Err("empty batch"),
        Value::Array(items) => {
            let mut names: Vec<String> = Vec::new();
            for item in items {
                let name = one(item)?;
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            let more = names.len() > MAX_BATCH_NAMES;
            names.truncate(MAX_BATCH_NAMES);
            Ok(format!("[{}{}]", names.join(","), if more { ",…" } else { "" }))
        }
        Value::Object(_) => one(json),
        _ => Err(match source {
            KeySource::GraphQl => "request body is not a GraphQL request object",
            _ => "request body is not a JSON-RPC call object",
        }),
    }
}

/// `operationName` when it is a non-empty string, else the first operation of `query`.
fn graphql_key(operation_name: Option<&Value>, query: Option<&Value>) -> Result<String, &'static str> {
    if let Some(name) = operation_name.and_then(Value::as_str).filter(|n| !n.trim().is_empty()) {
        return Ok(name.trim().to_owned());
    }
    match query.and_then(Value::as_str) {
        Some(q) => first_operation(q).ok_or(GRAPHQL_UNPARSEABLE),
        None => Err("no GraphQL `operationName` or `query`"),
    }
}

/// A GraphQL GET: `operationName` and `query` from the URL's query string.
fn graphql_from_query(record: &PairRecord) -> Result<String, &'static str> {
    let (mut name, mut query) = (None, None);
    for (k, v) in form_urlencoded::parse(record.query.as_deref().unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "operationName" => name = Some(Value::String(v.into_owned())),
            "query" => query = Some(Value::String(v.into_owned())),
            _ => {}
        }
    }
    graphql_key(name.as_ref(), query.as_ref())
}

/// A key as a route suffix: trimmed, control characters replaced, cut at [`MAX_KEY_CHARS`].
fn clean(key: &str) -> String {
    let mut out: String =
        key.trim().chars().map(|c| if c.is_control() { '?' } else { c }).take(MAX_KEY_CHARS + 1).collect();
    if out.chars().count() > MAX_KEY_CHARS {
        out = out.chars().take(MAX_KEY_CHARS - 1).collect::<String>() + "…";
    }
    out
}

/// The name of the first operation in a GraphQL executable document, [`ANONYMOUS`] for an
/// unnamed one (`{ user { id } }`, `query { … }`), `None` when the document has no operation or
/// does not lex. Only the document's top level is read: fragments before the first operation are
/// skipped, and selection sets are skipped by brace depth, with strings, block strings and
/// comments lexed as the GraphQL specification (§2.1) defines them so braces inside them do not
/// count.
pub fn first_operation(document: &str) -> Option<String> {
    let mut lexer = Lexer { src: document.as_bytes(), at: 0 };
    loop {
        match lexer.next()? {
            Token::Punct(b'{') => return Some(ANONYMOUS.to_owned()),
            Token::Name("query" | "mutation" | "subscription") => {
                return match lexer.next()? {
                    Token::Name(name) => Some(name.to_owned()),
                    Token::Punct(b'(' | b'@' | b'{') => Some(ANONYMOUS.to_owned()),
                    _ => None,
                };
            }
            // `fragment Name on Type @dir { … }`: skip to the end of its selection set.
            Token::Name("fragment") => {
                let mut depth = 0usize;
                loop {
                    match lexer.next()? {
                        Token::Punct(b'{') => depth += 1,
                        Token::Punct(b'}') => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => return None,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Name(&'a str),
    Punct(u8),
    /// A number, a string or a block string: their content does not matter here.
    Value,
}

struct Lexer<'a> {
    src: &'a [u8],
    at: usize,
}

impl<'a> Lexer<'a> {
    /// The next token, skipping ignored tokens (whitespace, commas, comments, a BOM); `None` at
    /// the end or on text that is not GraphQL.
    fn next(&mut self) -> Option<Token<'a>> {
        let s = self.src;
        loop {
            match s.get(self.at)? {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.at += 1,
                b'#' => {
                    while self.at < s.len() && !matches!(s[self.at], b'\n' | b'\r') {
                        self.at += 1;
                    }
                }
                0xEF if s[self.at..].starts_with("\u{feff}".as_bytes()) => self.at += 3,
                _ => break,
            }
        }
        let start = self.at;
        let c = s[start];
        if c == b'_' || c.is_ascii_alphabetic() {
            while self.at < s.len() && (s[self.at] == b'_' || s[self.at].is_ascii_alphanumeric()) {
                self.at += 1;
            }
            return std::str::from_utf8(&s[start..self.at]).ok().map(Token::Name);
        }
        if c == b'-' || c.is_ascii_digit() {
            self.at += 1;
            while self.at < s.len() && (s[self.at].is_ascii_alphanumeric() || matches!(s[self.at], b'.' | b'+' | b'-'))
            {
                self.at += 1;
            }
            return Some(Token::Value);
        }
        if s[start..].starts_with(b"\"\"\"") {
            self.at += 3;
            loop {
                if s[self.at..].starts_with(b"\\\"\"\"") {
                    self.at += 4;
                } else if s[self.at..].starts_with(b"\"\"\"") {
                    self.at += 3;
                    return Some(Token::Value);
                } else if self.at >= s.len() {
                    return None;
                } else {
                    self.at += 1;
                }
            }
        }
        if c == b'"' {
            self.at += 1;
            loop {
                match s.get(self.at)? {
                    b'\\' => self.at += 2,
                    b'"' => {
                        self.at += 1;
                        return Some(Token::Value);
                    }
                    b'\n' | b'\r' => return None,
                    _ => self.at += 1,
                }
            }
        }
        if s[start..].starts_with(b"...") {
            self.at += 3;
            return Some(Token::Punct(b'.'));
        }
        if b"!$&()[]{}:=@|".contains(&c) {
            self.at += 1;
            return Some(Token::Punct(c));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chrono::Utc;
    use shadowdiff_format::Header;

    use super::*;

    #[test]
    fn first_operation_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("query GetUser($id: ID!) { user(id: $id) { name } }", Some("GetUser")),
            ("mutation AddItem { add { id } }", Some("AddItem")),
            ("subscription OnPrice { price }", Some("OnPrice")),
            ("{ user { id } }", Some(ANONYMOUS)),
            ("query { user { id } }", Some(ANONYMOUS)),
            ("query ($id: ID = 1) { user { id } }", Some(ANONYMOUS)),
            ("query @live { user { id } }", Some(ANONYMOUS)),
            (
                "# a comment with { and \"\nfragment F on User { name bio(format: \"}\") } query Named { ...F }",
                Some("Named"),
            ),
            ("fragment F on User { a { b } }\n\nquery Second { x } query Third { y }", Some("Second")),
            ("fragment F on User { note(text: \"\"\"a } \\\"\"\" b\"\"\") }, query Q { x }", Some("Q")),
            ("\u{feff}  query\tTabbed{x}", Some("Tabbed")),
            ("fragment F on User { a }", None),
            ("type User { id: ID }", None),
            ("query", None),
            ("", None),
            ("fragment F on User { a ", None),
            ("{ \"unterminated }", Some(ANONYMOUS)),
            ("%%%", None),
        ];
        for (doc, want) in cases {
            assert_eq!(first_operation(doc).as_deref(), *want, "{doc:?}");
        }
    }

    fn request(method: &str, path: &str, query: Option<&str>, headers: &[(&str, &str)], body: &[u8]) -> PairRecord {
        let mut r = PairRecord::new("t", Utc::now(), method, path, query.map(str::to_owned));
        r.request_headers = headers.iter().map(|(n, v)| Header::new(*n, v.to_string())).collect();
        r.request_body = (!body.is_empty()).then(|| Bytes::copy_from_slice(body));
        r
    }

    fn rules() -> Vec<KeyRule> {
        vec![
            KeyRule::new("routes.key[0]", "/graphql", "graphql", None).unwrap(),
            KeyRule::new("routes.key[1]", "/rpc/*", "jsonrpc", None).unwrap(),
            KeyRule::new("routes.key[2]", "/api/**", "header", Some("X-Action")).unwrap(),
        ]
    }

    fn key(r: &PairRecord) -> KeyOutcome {
        key_of(&rules(), r, 1 << 20)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn graphql_keys() {
        let k = |body: &str| key(&request("POST", "/graphql", None, &[], body.as_bytes()));
        let named = KeyOutcome::Key("GetUser".into());
        assert_eq!(k(r#"{"operationName":"GetUser","query":"query GetUser { u }"}"#), named);
        assert_eq!(k(r#"{"operationName":null,"query":"query GetUser { u }"}"#), named);
        assert_eq!(k(r#"{"query":"{ u }"}"#), KeyOutcome::Key(ANONYMOUS.into()));
        assert_eq!(
            k(r#"[{"operationName":"A","query":"query A {a}"},{"query":"query B {b}"},{"operationName":"A"}]"#),
            KeyOutcome::Key("[A,B]".into())
        );
        assert_eq!(k("operationName=GetUser"), KeyOutcome::Missing("request body is not JSON"));
        assert_eq!(k(r#"{"variables":{}}"#), KeyOutcome::Missing("no GraphQL `operationName` or `query`"));
        assert_eq!(k(r#"{"query":"type X { a: Int }"}"#), KeyOutcome::Missing(GRAPHQL_UNPARSEABLE));
        assert_eq!(k("[]"), KeyOutcome::Missing("empty batch"));

        // Gzip-encoded, as a document body, and as a GET.
        let body = gzip(br#"{"operationName":"GetUser"}"#);
        assert_eq!(key(&request("POST", "/graphql", None, &[("Content-Encoding", "gzip")], &body)), named);
        let broken = &body[..body.len() - 4];
        assert_eq!(
            key(&request("POST", "/graphql", None, &[("Content-Encoding", "gzip")], broken)),
            KeyOutcome::Missing("request body could not be decoded by its content-encoding")
        );
        let doc = request("POST", "/graphql", None, &[("content-type", "application/graphql")], b"query GetUser {u}");
        assert_eq!(key(&doc), named);
        let get = request("GET", "/graphql", Some("query=query%20GetUser%20%7B%20u%20%7D&variables=%7B%7D"), &[], b"");
        assert_eq!(key(&get), named);
        let get = request("GET", "/graphql", Some("operationName=GetUser"), &[], b"");
        assert_eq!(key(&get), named);
    }

    #[test]
    fn jsonrpc_and_header_keys() {
        let k = |path: &str, body: &str| key(&request("POST", path, None, &[], body.as_bytes()));
        assert_eq!(k("/rpc/v1", r#"{"jsonrpc":"2.0","method":"eth_call","id":1}"#), KeyOutcome::Key("eth_call".into()));
        assert_eq!(
            k("/rpc/v1", r#"[{"method":"a"},{"method":"b"},{"method":"a"}]"#),
            KeyOutcome::Key("[a,b]".into()),
            "a batch: its distinct methods in order"
        );
        assert_eq!(k("/rpc/v1", r#"{"jsonrpc":"2.0","id":1}"#), KeyOutcome::Missing("no JSON-RPC `method`"));
        assert_eq!(k("/rpc/v1", "42"), KeyOutcome::Missing("request body is not a JSON-RPC call object"));
        assert_eq!(k("/rpc", r#"{"method":"a"}"#), KeyOutcome::NoRule, "`/rpc/*` needs one more segment");
        assert_eq!(k("/other", r#"{"method":"a"}"#), KeyOutcome::NoRule);

        let h = |headers: &[(&str, &str)]| key(&request("GET", "/api/v2/do", None, headers, b""));
        assert_eq!(h(&[("x-action", " Refund ")]), KeyOutcome::Key("Refund".into()));
        assert_eq!(h(&[]), KeyOutcome::Missing("the key header is missing or empty"));
        let long = "x".repeat(500);
        let KeyOutcome::Key(cut) = h(&[("x-action", long.as_str())]) else { panic!("a key") };
        assert_eq!(cut.chars().count(), MAX_KEY_CHARS);
        assert!(cut.ends_with('…'));

        let mut truncated = request("POST", "/rpc/v1", None, &[], br#"{"method":"eth_c"#);
        truncated.request_body_truncated = true;
        assert_eq!(key(&truncated), KeyOutcome::Missing("request body was cut at the capture cap"));
    }

    #[test]
    fn bad_rules_are_errors_that_name_them() {
        let e = KeyRule::new("routes.key[3]", "/x", "header", None).unwrap_err().to_string();
        assert!(e.contains("routes.key[3]") && e.contains("needs a `header`"), "{e}");
        let e = KeyRule::new("routes.key[0]", "/x", "grpc", None).unwrap_err().to_string();
        assert!(e.contains("unknown key source `grpc`"), "{e}");
        assert!(KeyRule::new("routes.key[0]", "/x", "graphql", Some("h")).is_err());
    }
}
