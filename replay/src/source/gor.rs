//! GoReplay `.gor` files: payloads separated by the line `🐵🙈🙉`, each a meta line
//! `TYPE ID TIMESTAMP_NS [LATENCY_NS]` followed by raw HTTP bytes. Type 1 is a request, 2 the
//! original response (it becomes the baseline side), 3 a response replayed by GoReplay (it
//! becomes the canary side). Responses are matched to requests by ID.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use shadowdiff_format::{Header, PairRecord, SideRecord};

use super::split_url;
use crate::error::{Error, Result};

/// The payload separator, as GoReplay writes it.
pub const SEPARATOR: &[u8] = "\n🐵🙈🙉\n".as_bytes();

const MAX_HEADERS: usize = 256;

struct Meta<'a> {
    kind: u8,
    id: &'a str,
    timestamp_ns: i64,
    latency_ns: Option<i64>,
}

fn parse_meta(line: &[u8]) -> std::result::Result<Meta<'_>, String> {
    let line = std::str::from_utf8(line).map_err(|_| "the meta line is not text".to_owned())?;
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    if fields.len() < 3 {
        return Err(format!("the meta line `{}` needs `TYPE ID TIMESTAMP`", line.chars().take(80).collect::<String>()));
    }
    let kind = match fields[0] {
        "1" => 1,
        "2" => 2,
        "3" => 3,
        other => return Err(format!("unknown payload type `{other}` (expected 1, 2 or 3)")),
    };
    let timestamp_ns =
        fields[2].parse::<i64>().map_err(|_| format!("timestamp `{}` is not an integer of nanoseconds", fields[2]))?;
    let latency_ns = match fields.get(3) {
        Some(l) => Some(l.parse::<i64>().map_err(|_| format!("latency `{l}` is not an integer of nanoseconds"))?),
        None => None,
    };
    Ok(Meta { kind, id: fields[1], timestamp_ns, latency_ns })
}

fn to_headers(raw: &[httparse::Header<'_>]) -> Vec<Header> {
    raw.iter().map(|h| Header::new(h.name.to_owned(), Bytes::copy_from_slice(h.value))).collect()
}

fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| &h.value[..])
}

/// One chunk-size line of a chunked body: the size and the bytes the line takes. Lines may end in
/// CRLF or a bare LF: GoReplay writes what was on the wire, and files edited or produced by other
/// tools end every line in LF. The payload's last line may have no line break at all: the
/// separator (`\n🐵🙈🙉\n`) starts with the one it had. `None` at the end of the payload.
fn chunk_size(buf: &[u8]) -> std::result::Result<Option<(usize, usize)>, String> {
    let (end, used) = match buf.iter().position(|&b| b == b'\n') {
        Some(nl) => (nl, nl + 1),
        None if buf.is_empty() => return Ok(None),
        None => (buf.len(), buf.len()),
    };
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    // Chunk extensions (`;name=value`) and whitespace after the size are ignored.
    let digits = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    let size = std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.len() <= 15 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|d| usize::from_str_radix(d, 16).ok())
        .ok_or_else(|| format!("the chunk-size line `{}` is not a hexadecimal size", shorten_bytes(line)))?;
    Ok(Some((size, used)))
}

fn shorten_bytes(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(40)]).escape_debug().to_string()
}

/// The body after the head: de-chunked when chunked, cut to Content-Length when given. Returns
/// the body and whether it was cut short in the file.
fn body(headers: &[Header], rest: &[u8]) -> std::result::Result<(Option<Bytes>, bool), String> {
    let chunked = header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().windows(7).any(|w| w == b"chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut buf = rest;
        while let Some((size, used)) = chunk_size(buf)? {
            buf = &buf[used..];
            if size == 0 {
                // Trailer fields, if any, are not kept.
                return Ok((Some(Bytes::from(out)), false));
            }
            if buf.len() < size {
                out.extend_from_slice(buf);
                return Ok((Some(Bytes::from(out)), true));
            }
            out.extend_from_slice(&buf[..size]);
            buf = &buf[size..];
            buf = if let Some(b) = buf.strip_prefix(b"\r\n").or_else(|| buf.strip_prefix(b"\n")) {
                b
            } else if buf.is_empty() || buf == b"\r" {
                return Ok((Some(Bytes::from(out)), true));
            } else {
                return Err(format!("chunk data of {size} bytes is not followed by a line break"));
            };
        }
        // The payload ends before the last chunk.
        return Ok((Some(Bytes::from(out)), true));
    }
    let length = match header(headers, "content-length") {
        Some(v) => Some(
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| format!("Content-Length `{}` is not a number", String::from_utf8_lossy(v)))?,
        ),
        None => None,
    };
    Ok(match length {
        Some(n) if n <= rest.len() => ((n > 0).then(|| Bytes::copy_from_slice(&rest[..n])), false),
        Some(_) => (Some(Bytes::copy_from_slice(rest)), true),
        None => ((!rest.is_empty()).then(|| Bytes::copy_from_slice(rest)), false),
    })
}

/// Split file content into payloads with their byte offsets.
fn payloads(data: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let end = data[start..].windows(SEPARATOR.len()).position(|w| w == SEPARATOR).map(|p| start + p);
        let stop = end.unwrap_or(data.len());
        let payload = &data[start..stop];
        if !payload.iter().all(u8::is_ascii_whitespace) {
            out.push((start, payload));
        }
        start = stop + SEPARATOR.len();
    }
    out
}

/// A `.gor` file read: its pairs, in request order, and the response payloads left out.
#[derive(Debug)]
pub struct GorFile {
    pub records: Vec<PairRecord>,
    /// Response payloads that could not be read (a head that does not parse, a broken chunked
    /// body), each as the [`Error::Gor`] that names the file, the payload and its byte offset.
    /// Their pairs keep the request, without that response.
    pub skipped: Vec<Error>,
}

/// Read a `.gor` file into pairs, in request order. Response payloads that cannot be read are
/// left out; [`read_file`] says which.
pub fn read(path: &Path, agent: &str) -> Result<Vec<PairRecord>> {
    read_file(path, agent).map(|f| f.records)
}

/// Read a `.gor` file. A request or a meta line that cannot be read rejects the file (there is no
/// pair without its request); one response that cannot be read costs only that response, so a
/// file of valid requests is never refused for it.
pub fn read_file(path: &Path, agent: &str) -> Result<GorFile> {
    let data = std::fs::read(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    read_bytes(path, &data, agent)
}

/// [`read_file`] over a file's content already in memory; `path` only names it in errors.
pub fn read_bytes(path: &Path, data: &[u8], agent: &str) -> Result<GorFile> {
    let mut records: Vec<PairRecord> = Vec::new();
    let mut skipped = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (index, (offset, payload)) in payloads(data).into_iter().enumerate() {
        let err = |message: String| Error::Gor { path: path.to_owned(), index, offset, message };
        let nl = payload.iter().position(|&b| b == b'\n').ok_or_else(|| err("the payload has no meta line".into()))?;
        let meta = parse_meta(&payload[..nl]).map_err(err)?;
        let raw = &payload[nl + 1..];
        match meta.kind {
            1 => {
                let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut req = httparse::Request::new(&mut hs);
                let head = match req.parse(raw) {
                    Ok(httparse::Status::Complete(n)) => n,
                    Ok(httparse::Status::Partial) => return Err(err("the HTTP request head is incomplete".into())),
                    Err(e) => return Err(err(format!("the HTTP request does not parse ({e})"))),
                };
                let method = req.method.unwrap_or("GET").to_owned();
                let target = req.path.unwrap_or("/");
                let (p, query) = split_url(target).map_err(err)?;
                let headers = to_headers(req.headers);
                let (request_body, truncated) = body(&headers, &raw[head..]).map_err(err)?;
                // The pair format keeps microseconds.
                let at = DateTime::<Utc>::from_timestamp_nanos(meta.timestamp_ns - meta.timestamp_ns.rem_euclid(1_000));
                let mut r = PairRecord::new(agent, at, method, p, query);
                r.request_headers = headers;
                r.request_body = request_body;
                r.request_body_truncated = truncated;
                by_id.insert(meta.id.to_owned(), records.len());
                records.push(r);
            }
            kind => {
                let side = match response(raw, meta.latency_ns) {
                    Ok(side) => side,
                    Err(message) => {
                        skipped.push(err(message));
                        continue;
                    }
                };
                // A response whose request is not in the file (the capture started mid-flight)
                // has nothing to pair with; it is skipped.
                if let Some(&i) = by_id.get(meta.id) {
                    if kind == 2 {
                        records[i].baseline = side;
                    } else {
                        records[i].canary = side;
                    }
                }
            }
        }
    }
    Ok(GorFile { records, skipped })
}

fn response(raw: &[u8], latency_ns: Option<i64>) -> std::result::Result<SideRecord, String> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut hs);
    let head = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the HTTP response head is incomplete".into()),
        Err(e) => return Err(format!("the HTTP response does not parse ({e})")),
    };
    let headers = to_headers(resp.headers);
    let (body, body_truncated) = body(&headers, &raw[head..])?;
    Ok(SideRecord {
        status: resp.code,
        headers,
        body,
        body_truncated,
        latency_us: latency_ns.filter(|l| *l > 0).map(|l| (l / 1_000) as u64),
        ttfb_us: None,
        error: None,
        trailers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_split_on_the_separator() {
        let data = ["1 a 1 0\nGET / HTTP/1.1\r\n\r\n", "2 a 2 5\nHTTP/1.1 200 OK\r\n\r\n", ""].join("\n🐵🙈🙉\n");
        let p = payloads(data.as_bytes());
        assert_eq!(p.len(), 2);
        assert!(p[1].1.starts_with(b"2 a"));
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let headers = vec![Header::new("Transfer-Encoding", "chunked")];
        let (b, cut) = body(&headers, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").expect("body");
        assert_eq!(b.as_deref(), Some(&b"hello world"[..]));
        assert!(!cut);
    }

    #[test]
    fn chunk_lines_may_end_in_a_bare_lf() {
        let headers = vec![Header::new("Transfer-Encoding", "chunked")];
        for raw in
            [&b"5\nhello\n6\n world\n0\n\n"[..], b"5;ext=1\r\nhello\n6 \n world\r\n0", b"5\nhello\r\n6\n world\n0\r\n"]
        {
            let (b, cut) = body(&headers, raw).expect("body");
            assert_eq!((b.as_deref(), cut), (Some(&b"hello world"[..]), false), "{}", raw.escape_ascii());
        }
    }

    #[test]
    fn chunked_bodies_cut_short_are_truncated_and_garbage_is_an_error() {
        let headers = vec![Header::new("Transfer-Encoding", "chunked")];
        for raw in [&b"5\nhel"[..], b"5\nhello", b"5\nhello\n", b""] {
            let (_, cut) = body(&headers, raw).expect("body");
            assert!(cut, "{}", raw.escape_ascii());
        }
        let e = body(&headers, b"zz\nhello\n0\n\n").expect_err("not a size");
        assert!(e.contains("`zz` is not a hexadecimal size"), "{e}");
        let e = body(&headers, b"2\nhello\n0\n\n").expect_err("no line break after the data");
        assert!(e.contains("chunk data of 2 bytes"), "{e}");
    }

    #[test]
    fn an_unreadable_response_is_skipped_and_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("one-bad.gor");
        let payloads = [
            "1 a 1000 0\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n",
            "2 a 2000 5\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnot-a-size\r\nhello\r\n0\r\n\r\n",
            "1 b 3000 0\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
            "2 b 4000 5\nHTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n",
        ];
        std::fs::write(&path, payloads.join("\n🐵🙈🙉\n")).expect("write");
        let f = read_file(&path, "t").expect("a file of valid requests reads");
        assert_eq!(f.records.len(), 2);
        assert_eq!((f.records[0].baseline.status, &f.records[0].baseline.body), (None, &None));
        assert_eq!(f.records[1].baseline.body.as_deref(), Some(&b"ok"[..]));
        assert_eq!(f.skipped.len(), 1);
        let offset = payloads[0].len() + SEPARATOR.len();
        assert!(matches!(f.skipped[0], Error::Gor { index: 1, offset: o, .. } if o == offset), "{:?}", f.skipped);
        let msg = f.skipped[0].to_string();
        assert!(msg.contains("one-bad.gor: GoReplay payload 1 at byte") && msg.contains("not-a-size"), "{msg}");
    }
}
