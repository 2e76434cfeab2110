//! Streamed bodies — server-sent events, NDJSON / JSON Lines, RFC 7464 JSON text sequences —
//! read as the list of records a client sees, so they are compared record by record: one
//! changed event is one difference at `/3/data/price`, not a whole-body text diff.
//!
//! - `text/event-stream` is parsed as the WHATWG HTML standard's event-stream interpretation
//!   does: lines end in CRLF, LF or CR; a leading BOM is skipped; `:` lines are comments
//!   (heartbeats) and ignored; `data` lines are joined with `\n`; an empty line dispatches the
//!   event, and a block with no `data` dispatches nothing. Each event is
//!   `{"event": type ("message" when unnamed), "id": the last event id (persists, as in a
//!   browser), "data": the data parsed as JSON when it parses, else the text}`, plus
//!   `"retry": ms` on the first event after a valid `retry` line.
//! - NDJSON / JSON Lines: one JSON value per line (blank lines skipped, CRLF accepted).
//! - JSON text sequences: records start with RS (0x1E) and end with LF.
//!
//! A record that is not JSON is kept as its text (and noted), never dropped. When the body was
//! cut (by the recorder's cap or a duration cap, or at the decoded-size cap), its last record
//! may be incomplete: only complete records are kept (an event not yet ended by its empty line,
//! a line not yet ended by its LF, a sequence record not yet ended by its LF).

use serde_json::{Map, Value};

pub use shadowdiff_format::media::{Stream, stream};

use crate::body::{ParseProblem, parse_json};

/// A streamed body as its list of complete records.
#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    pub kind: Stream,
    /// The records, each as JSON: events as objects, lines and sequence records as their value.
    pub items: Vec<Value>,
    /// The body was cut, so more records may have followed: comparisons go only as far as the
    /// shorter cut side.
    pub cut: bool,
    /// The first record that was not JSON (NDJSON and sequences only; event data that is not
    /// JSON is ordinary text), and why.
    pub problem: Option<ParseProblem>,
}

impl Records {
    /// The records as one JSON array.
    pub fn to_value(&self) -> Value {
        Value::Array(self.items.clone())
    }
}

/// Parses `bytes` as a stream of `kind`; `cut` says the body was truncated.
pub fn parse(kind: Stream, bytes: &[u8], cut: bool) -> Records {
    let (items, problem) = match kind {
        Stream::EventStream => (events(bytes), None),
        Stream::JsonLines => json_records(lines(bytes, cut)),
        Stream::JsonSeq => json_records(sequence(bytes, cut)),
    };
    Records { kind, items, cut, problem }
}

/// Server-sent events, as a browser's `EventSource` dispatches them. Only complete events are
/// returned whether or not the body was cut: the standard discards an event the stream ends in
/// the middle of.
fn events(bytes: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(bytes);
    let mut text: &str = &text;
    text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let (mut event_type, mut data, mut last_id) = (String::new(), String::new(), String::new());
    let mut retry: Option<u64> = None;
    let mut rest = text;
    // A line counts only once its end-of-line arrived: what follows the last one is incomplete.
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[end + skip..];
        if line.is_empty() {
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            let mut event = Map::new();
            let name = if event_type.is_empty() { "message".to_owned() } else { std::mem::take(&mut event_type) };
            event.insert("event".into(), Value::String(name));
            event.insert("id".into(), Value::String(last_id.clone()));
            let text = std::mem::take(&mut data);
            let value = match serde_json::from_str::<Value>(&text) {
                Ok(v) => v,
                Err(_) => Value::String(text),
            };
            event.insert("data".into(), value);
            if let Some(ms) = retry.take() {
                event.insert("retry".into(), Value::from(ms));
            }
            out.push(Value::Object(event));
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut event_type),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut last_id),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                retry = value.parse().ok();
            }
            _ => {}
        }
    }
    out
}

/// The lines of an NDJSON body that hold a record: ended by LF (or complete because the body
/// ends there and was not cut), without a trailing CR, not blank.
fn lines(bytes: &[u8], cut: bool) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // The part after the last LF is empty for a body that ends in LF; otherwise it is a line
    // still being written when the body was cut.
    if cut || parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts.into_iter().map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !is_blank(l)).collect()
}

/// The records of an RFC 7464 sequence: between RS bytes, each ended by LF. A cut body's last
/// record counts only when its LF arrived.
fn sequence(bytes: &[u8], cut: bool) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = bytes.split(|b| *b == 0x1e).collect();
    if cut && parts.len() > 1 && parts.last().is_some_and(|p| !p.ends_with(b"\n")) {
        parts.pop();
    }
    parts.into_iter().filter(|p| !is_blank(p)).collect()
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

/// Each record as JSON, or as its text when it is not JSON; the first such record's problem.
fn json_records(records: Vec<&[u8]>) -> (Vec<Value>, Option<ParseProblem>) {
    let mut problem = None;
    let items = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| match parse_json(r) {
            Ok(v) => v,
            Err(p) => {
                problem.get_or_insert_with(|| ParseProblem::Syntax { message: format!("record {i}: {p}") });
                Value::String(String::from_utf8_lossy(r).trim().to_owned())
            }
        })
        .collect();
    (items, problem)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sse(text: &str, cut: bool) -> Vec<Value> {
        parse(Stream::EventStream, text.as_bytes(), cut).items
    }

    #[test]
    fn events_as_a_browser_dispatches_them() {
        let body = "\u{feff}: heartbeat\nretry: 3000\n\nevent: quote\nid: 1\ndata: {\"price\": 10}\n\n\
                    data: first\ndata:second\n\nid: 7\r\ndata\r\n\r\nevent: gone\n\ndata: tail";
        assert_eq!(
            sse(body, false),
            vec![
                json!({"event": "quote", "id": "1", "data": {"price": 10}, "retry": 3000}),
                json!({"event": "message", "id": "1", "data": "first\nsecond"}),
                json!({"event": "message", "id": "7", "data": ""}),
            ],
            "comments are ignored, ids persist, a block without data dispatches nothing, \
             and an event the stream ends inside is not dispatched"
        );
    }

    #[test]
    fn every_line_ending_reads_the_same() {
        let lf = "event: a\ndata: 1\ndata: 2\n\n";
        let want = sse(lf, false);
        assert_eq!(want, vec![json!({"event": "a", "id": "", "data": "1\n2"})]);
        assert_eq!(sse(&lf.replace('\n', "\r\n"), false), want);
        assert_eq!(sse(&lf.replace('\n', "\r"), false), want);
    }

    #[test]
    fn odd_fields_are_read_as_the_standard_says() {
        // No space after the colon; a field with no colon; an unknown field; a bad retry; an id
        // with NUL is ignored.
        let body = "data:x\nfoo: bar\nretry: 10s\nid: a\0b\ndata\n\n";
        assert_eq!(sse(body, false), vec![json!({"event": "message", "id": "", "data": "x\n"})]);
    }

    #[test]
    fn a_cut_stream_keeps_its_complete_events() {
        let full = "data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: {\"n\":3}\n\n";
        for cut_at in 0..full.len() {
            let items = sse(&full[..cut_at], true);
            let complete = full[..cut_at].matches("\n\n").count();
            assert_eq!(items.len(), complete, "cut at {cut_at}");
        }
    }

    #[test]
    fn json_lines() {
        let body = b"{\"a\":1}\r\n\n  \n[2]\nnot json\n{\"a\":";
        let r = parse(Stream::JsonLines, body, true);
        assert_eq!(r.items, vec![json!({"a": 1}), json!([2]), json!("not json")]);
        assert!(matches!(&r.problem, Some(ParseProblem::Syntax { message }) if message.starts_with("record 2:")));
        // Not cut: the last line needs no LF.
        let r = parse(Stream::JsonLines, b"1\n2", false);
        assert_eq!((r.items, r.problem), (vec![json!(1), json!(2)], None));
        assert_eq!(parse(Stream::JsonLines, b"1\n2", true).items, vec![json!(1)]);
        assert!(parse(Stream::JsonLines, b"", false).items.is_empty());
    }

    #[test]
    fn json_text_sequences() {
        let body = b"\x1e{\"a\":1}\n\x1e[2]\n\x1e{\"b\"";
        assert_eq!(parse(Stream::JsonSeq, body, true).items, vec![json!({"a": 1}), json!([2])]);
        let whole = parse(Stream::JsonSeq, b"\x1e1\n\x1e2\n", false);
        assert_eq!((whole.items, whole.problem), (vec![json!(1), json!(2)], None));
        let bad = parse(Stream::JsonSeq, b"\x1e{oops\n", false);
        assert_eq!(bad.items, vec![json!("{oops")]);
        assert!(bad.problem.is_some());
    }
}
