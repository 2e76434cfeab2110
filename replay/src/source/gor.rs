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

/// The body after the head: de-chunked when chunked, cut to Content-Length when given. Returns
/// the body and whether it was cut short in the file.
fn body(headers: &[Header], rest: &[u8]) -> std::result::Result<(Option<Bytes>, bool), String> {
    let chunked = header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().windows(7).any(|w| w == b"chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut buf = rest;
        loop {
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((used, size))) => {
                    let size = usize::try_from(size).map_err(|_| "a chunk size is too large".to_owned())?;
                    buf = &buf[used..];
                    if size == 0 {
                        break;
                    }
                    if buf.len() < size {
                        out.extend_from_slice(buf);
                        return Ok((Some(Bytes::from(out)), true));
                    }
                    out.extend_from_slice(&buf[..size]);
                    buf = buf.get(size + 2..).unwrap_or_default();
                }
                Ok(httparse::Status::Partial) => return Ok((Some(Bytes::from(out)), true)),
                Err(_) => return Err("the chunked body is malformed".into()),
            }
        }
        return Ok((Some(Bytes::from(out)), false));
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

/// Read a `.gor` file into pairs, in request order.
pub fn read(path: &Path, agent: &str) -> Result<Vec<PairRecord>> {
    let data = std::fs::read(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    let mut records: Vec<PairRecord> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (index, (offset, payload)) in payloads(&data).into_iter().enumerate() {
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
                let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut hs);
                let head = match resp.parse(raw) {
                    Ok(httparse::Status::Complete(n)) => n,
                    Ok(httparse::Status::Partial) => return Err(err("the HTTP response head is incomplete".into())),
                    Err(e) => return Err(err(format!("the HTTP response does not parse ({e})"))),
                };
                let headers = to_headers(resp.headers);
                let (b, truncated) = body(&headers, &raw[head..]).map_err(err)?;
                let side = SideRecord {
                    status: resp.code,
                    headers,
                    body: b,
                    body_truncated: truncated,
                    latency_us: meta.latency_ns.filter(|l| *l > 0).map(|l| (l / 1_000) as u64),
                    ttfb_us: None,
                    error: None,
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
    Ok(records)
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
}
