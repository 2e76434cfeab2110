//! Bodies that are sequences of JSON documents — server-sent events (`text/event-stream`, JSON in
//! each event's `data`) and NDJSON / JSON Lines / JSON text sequences (one document per line or
//! record) — taken apart so that redaction can apply its JSON rules to each document, and put
//! back together with everything else (event names, ids, comments, line order) as it was.
//!
//! A stream cut before its end (`--max-body-duration`, the size cap, a client leaving) usually
//! ends inside an event or a line. That last piece cannot be checked, so it is left out of what
//! is stored; the body is marked truncated anyway.

use serde_json::Value;
use shadowdiff_format::media::{Stream, stream};

/// The record framing of a body, by its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `text/event-stream`.
    Sse,
    /// One JSON document per line (`application/x-ndjson`, `application/jsonl` …) or per record
    /// (`application/json-seq`, records led by the RS character).
    Lines,
}

impl Framing {
    /// The framing of every content type analyze reads as a stream ([`stream`]): a body analyze
    /// takes apart into documents must be redacted document by document (a list of its own here
    /// missed `text/x-ndjson`, `application/json-lines`, `+json-seq` …, whose secrets were stored).
    pub fn of(content_type: Option<&str>) -> Option<Self> {
        match stream(content_type)? {
            Stream::EventStream => Some(Framing::Sse),
            Stream::JsonLines | Stream::JsonSeq => Some(Framing::Lines),
        }
    }
}

/// What rewriting the documents of a body came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Nothing changed: the body can be kept byte for byte.
    Unchanged,
    /// The body with its documents rewritten (or an unfinished last record left out).
    Changed(Vec<u8>),
    /// The body cannot be read as its framing says (not UTF-8, a line that is not JSON).
    Unreadable,
}

/// Applies `f` (which edits a document and says whether it changed it) to every JSON document
/// in `content`. `cut`: the body was cut before its end, so a last record without its
/// terminator is unfinished and is left out.
pub fn rewrite(framing: Framing, content: &[u8], cut: bool, f: impl FnMut(&mut Value) -> bool) -> Rewrite {
    let Ok(text) = std::str::from_utf8(content) else {
        return Rewrite::Unreadable;
    };
    let out = match framing {
        Framing::Sse => sse(text, cut, f),
        Framing::Lines => lines(text, cut, f),
    };
    match out {
        None => Rewrite::Unreadable,
        Some(out) if out == text => Rewrite::Unchanged,
        Some(out) => Rewrite::Changed(out.into_bytes()),
    }
}

/// Splits `text` into pieces that end with `\n` (the last one may not).
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive('\n')
}

/// Splits an event stream into lines with their ends, as the event-stream standard (and analyze,
/// `stream.rs`) reads it: a line ends in CRLF, LF or a lone CR. The last piece may have no end.
fn sse_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.find(['\r', '\n']) {
            Some(i) if rest[i..].starts_with("\r\n") => i + 2,
            Some(i) => i + 1,
            None => rest.len(),
        };
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

fn lines(text: &str, cut: bool, mut f: impl FnMut(&mut Value) -> bool) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        if !piece.ends_with('\n') && cut {
            break;
        }
        let body = piece.trim_end_matches(['\n', '\r']);
        let json = body.trim_start_matches('\u{1e}').trim();
        if json.is_empty() {
            out.push_str(piece);
            continue;
        }
        let mut doc: Value = serde_json::from_str(json).ok()?;
        if !f(&mut doc) {
            out.push_str(piece);
            continue;
        }
        let lead = &body[..body.len() - body.trim_start_matches('\u{1e}').len()];
        out.push_str(lead);
        out.push_str(&doc.to_string());
        out.push_str(&piece[body.len()..]);
    }
    Some(out)
}

fn sse(text: &str, cut: bool, mut f: impl FnMut(&mut Value) -> bool) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut event: Vec<&str> = Vec::new();
    let mut flush = |event: &mut Vec<&str>, out: &mut String| {
        out.push_str(&rewrite_event(event, &mut f));
        event.clear();
    };
    // A leading byte order mark is not part of the first line (analyze skips it too).
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            out.push('\u{feff}');
            rest
        }
        None => text,
    };
    for piece in sse_lines(text) {
        if !piece.ends_with(['\n', '\r']) {
            // The last line, without its terminator.
            if !cut {
                event.push(piece);
                flush(&mut event, &mut out);
            }
            return Some(out);
        }
        let blank = piece.trim_end_matches(['\n', '\r']).is_empty();
        event.push(piece);
        if blank {
            flush(&mut event, &mut out);
        }
    }
    // Lines after the last blank line form an event that was never dispatched: kept whole when
    // the stream ended there, left out when it was cut.
    if !cut {
        flush(&mut event, &mut out);
    }
    Some(out)
}

/// The value of a `data` field line (`data:` and an optional space stripped), or `None`.
fn data_of(line: &str) -> Option<&str> {
    let l = line.trim_end_matches(['\n', '\r']);
    l.strip_prefix("data:").map(|d| d.strip_prefix(' ').unwrap_or(d))
}

/// One event's lines (with their terminators): its `data` lines rewritten as one when they hold
/// a JSON document that `f` changes; anything else as it was.
fn rewrite_event(lines: &[&str], f: &mut impl FnMut(&mut Value) -> bool) -> String {
    let data: Vec<&str> = lines.iter().filter_map(|l| data_of(l)).collect();
    let whole = || lines.concat();
    if data.is_empty() {
        return whole();
    }
    let Ok(mut doc) = serde_json::from_str::<Value>(&data.join("\n")) else {
        // Not JSON: nothing a JSON rule can address.
        return whole();
    };
    if !f(&mut doc) {
        return whole();
    }
    let mut out = String::new();
    let mut written = false;
    for line in lines {
        if data_of(line).is_none() {
            out.push_str(line);
        } else if !written {
            let end = &line[line.trim_end_matches(['\n', '\r']).len()..];
            out.push_str(&format!("data: {doc}{end}"));
            written = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replaces every `secret` field with "X".
    fn mask(v: &mut Value) -> bool {
        match v.get_mut("secret") {
            Some(s) => {
                *s = Value::from("X");
                true
            }
            None => false,
        }
    }

    fn run(framing: Framing, text: &str, cut: bool) -> Rewrite {
        rewrite(framing, text.as_bytes(), cut, mask)
    }

    fn changed(r: Rewrite) -> String {
        match r {
            Rewrite::Changed(b) => String::from_utf8(b).expect("utf-8"),
            other => panic!("not changed: {other:?}"),
        }
    }

    #[test]
    fn sse_events_are_rewritten_in_place() {
        let text = ": hello\n\nid: 1\nevent: tick\ndata: {\"secret\":\"s1\",\n\
                    data: \"n\":1}\n\nevent: plain\ndata: not json\n\nid: 3\r\ndata: {\"n\":3}\r\n\r\n";
        let out = changed(run(Framing::Sse, text, false));
        assert_eq!(
            out,
            ": hello\n\nid: 1\nevent: tick\ndata: {\"secret\":\"X\",\"n\":1}\n\n\
             event: plain\ndata: not json\n\nid: 3\r\ndata: {\"n\":3}\r\n\r\n"
        );
        assert_eq!(run(Framing::Sse, "data: {\"n\":1}\n\n", false), Rewrite::Unchanged);
    }

    #[test]
    fn a_cut_stream_loses_its_unfinished_last_record() {
        let text = "data: {\"secret\":\"s1\"}\n\ndata: {\"secret\":\"s2\"";
        assert_eq!(changed(run(Framing::Sse, text, true)), "data: {\"secret\":\"X\"}\n\n");
        // Complete lines of an event never dispatched are unfinished too.
        let text = "data: {\"n\":1}\n\nid: 2\ndata: {\"secret\":\"s2\"}\n";
        assert_eq!(changed(run(Framing::Sse, text, true)), "data: {\"n\":1}\n\n");
        let text = "{\"secret\":1}\n{\"n\":2}\n{\"secr";
        assert_eq!(changed(run(Framing::Lines, text, true)), "{\"secret\":\"X\"}\n{\"n\":2}\n");
        // Not cut: the last line counts, and one that is not JSON makes the body unreadable.
        assert_eq!(run(Framing::Lines, "{\"n\":1}\n{\"secr", false), Rewrite::Unreadable);
        assert_eq!(run(Framing::Lines, "{\"n\":1}\n{\"n\":2}", false), Rewrite::Unchanged);
    }

    #[test]
    fn lines_and_sequences() {
        let text = "{\"secret\":1}\r\n\n{\"n\":2}\n";
        assert_eq!(changed(run(Framing::Lines, text, false)), "{\"secret\":\"X\"}\r\n\n{\"n\":2}\n");
        let seq = "\u{1e}{\"secret\":1}\n\u{1e}{\"n\":2}\n";
        assert_eq!(changed(run(Framing::Lines, seq, false)), "\u{1e}{\"secret\":\"X\"}\n\u{1e}{\"n\":2}\n");
        assert_eq!(rewrite(Framing::Lines, b"\xff\xfe", false, mask), Rewrite::Unreadable);
        assert_eq!(Framing::of(Some("text/event-stream; charset=utf-8")), Some(Framing::Sse));
        assert_eq!(Framing::of(Some("application/x-ndjson")), Some(Framing::Lines));
        assert_eq!(Framing::of(Some("application/json")), None);
        assert_eq!(Framing::of(None), None);
    }

    /// Found by the `redact` fuzz target's property (fuzz/regressions/redact/): an event stream
    /// led by a byte order mark, or with lines ended by a lone CR, kept its secrets — capture
    /// split lines at LF only and read the BOM as part of the first field's name, while analyze
    /// (and every browser) skips the BOM and ends lines at CR, LF or CRLF, and found the data.
    #[test]
    fn sse_lines_end_as_the_standard_says_and_a_bom_is_skipped() {
        let bom = "\u{feff}data: {\"secret\":1}\n\n";
        assert_eq!(changed(run(Framing::Sse, bom, false)), "\u{feff}data: {\"secret\":\"X\"}\n\n");
        let cr = "data: {\"secret\":1}\r\rdata: x\r\r";
        assert_eq!(changed(run(Framing::Sse, cr, false)), "data: {\"secret\":\"X\"}\r\rdata: x\r\r");
        let mixed = "id: 1\rdata: {\"secret\":1}\r\n\ndata: {\"secret\":2}\r";
        assert_eq!(changed(run(Framing::Sse, mixed, true)), "id: 1\rdata: {\"secret\":\"X\"}\r\n\n");
    }

    /// Found by fuzzing (fuzz/regressions/redact/): a `text/x-ndjson` body was stored with its
    /// secrets, as were `application/json-lines`, `application/x-jsonl` and `+json-seq` ones —
    /// capture had its own list of stream types, shorter than the one analyze reads streams by.
    #[test]
    fn every_stream_analyze_reads_is_framed() {
        for ct in [
            "text/x-ndjson",
            "text/ndjson",
            "application/json-lines",
            "application/x-jsonl",
            "text/jsonl",
            "application/geo+json-seq",
            "application/ndjson",
            "application/json-seq",
        ] {
            assert_eq!(Framing::of(Some(ct)), Some(Framing::Lines), "{ct}");
            assert!(stream(Some(ct)).is_some(), "{ct}");
        }
        assert_eq!(Framing::of(Some("text/event-stream")), Some(Framing::Sse));
        assert_eq!(Framing::of(Some("text/plain")), None);
    }
}
