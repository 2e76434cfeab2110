//! HAR 1.2 (HTTP Archive) files, as browsers' developer tools, proxies and mitmproxy export them.
//! Each entry becomes a pair whose baseline side is the recorded response.

use std::path::Path;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shadowdiff_format::schema::error_kind;
use shadowdiff_format::{Header, PairRecord, SideRecord};

use super::split_url;
use crate::error::{Error, Result};

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    #[serde(default)]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    started_date_time: String,
    /// Total time in milliseconds (−1 when unknown).
    #[serde(default)]
    time: Option<f64>,
    request: Request,
    response: Option<Response>,
    #[serde(default)]
    timings: Option<Timings>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostData {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    status: i64,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize, Default)]
struct Timings {
    #[serde(default)]
    blocked: Option<f64>,
    #[serde(default)]
    dns: Option<f64>,
    #[serde(default)]
    connect: Option<f64>,
    #[serde(default)]
    send: Option<f64>,
    #[serde(default)]
    wait: Option<f64>,
}

/// HTTP/2 pseudo-headers (`:authority`) are how HAR spells the request line; they are not
/// headers to send.
fn headers(list: &[NameValue]) -> Vec<Header> {
    list.iter()
        .filter(|h| !h.name.starts_with(':'))
        .map(|h| Header::new(h.name.clone(), h.value.clone().into_bytes()))
        .collect()
}

fn decode(text: Option<&String>, encoding: Option<&String>) -> std::result::Result<Option<Bytes>, String> {
    let Some(text) = text else { return Ok(None) };
    match encoding.map(String::as_str) {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| format!("the base64 body does not decode ({e})")),
        None | Some("") => Ok(Some(Bytes::from(text.clone().into_bytes()))),
        Some(other) => Err(format!("unknown body encoding `{other}`")),
    }
}

fn ms_to_us(ms: f64) -> Option<u64> {
    (ms.is_finite() && ms >= 0.0).then(|| (ms * 1000.0).round() as u64)
}

/// The UTF-8 byte order mark. RFC 8259 §8.1 lets a parser ignore it, and Chrome on Windows
/// writes it at the start of its HAR exports.
const BOM: &[u8] = b"\xEF\xBB\xBF";

fn parse(text: &[u8]) -> std::result::Result<Har, String> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    serde_json::from_slice(text).map_err(|e| {
        // serde stops at the first shape it does not expect, before it sees whether the rest is
        // JSON at all (`{"log": [2,1,3] "request:"}` fails on the `2`); a file that is not JSON
        // is named as such.
        if e.is_syntax() || e.is_eof() {
            return format!("it is not JSON ({e})");
        }
        match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
            Err(syntax) => format!("it is not JSON ({syntax})"),
            Ok(_) => format!("it lacks the HAR structure `{{\"log\": {{\"entries\": [...]}}}}` ({e})"),
        }
    })
}

/// Read every entry of a HAR file into pairs (baseline = the recorded response).
pub fn read(path: &Path, agent: &str) -> Result<Vec<PairRecord>> {
    let text = std::fs::read(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    read_bytes(path, &text, agent)
}

/// [`read`] over a file's content already in memory; `path` only names it in errors.
pub fn read_bytes(path: &Path, text: &[u8], agent: &str) -> Result<Vec<PairRecord>> {
    let har = parse(text).map_err(|message| Error::Har { path: path.to_owned(), message })?;
    har.log
        .entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let err =
                |field: &'static str, message: String| Error::HarEntry { path: path.to_owned(), index, field, message };
            let at: DateTime<Utc> =
                DateTime::parse_from_rfc3339(&entry.started_date_time).map(|t| t.with_timezone(&Utc)).map_err(|e| {
                    err("startedDateTime", format!("`{}` is not an ISO 8601 time ({e})", entry.started_date_time))
                })?;
            let (p, query) = split_url(&entry.request.url).map_err(|m| err("request.url", m))?;
            if entry.request.method.is_empty() || !entry.request.method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(err("request.method", format!("`{}` is not an HTTP method", entry.request.method)));
            }
            let mut r = PairRecord::new(agent, at, entry.request.method.to_ascii_uppercase(), p, query);
            r.request_headers = headers(&entry.request.headers);
            if let Some(pd) = &entry.request.post_data {
                r.request_body =
                    decode(pd.text.as_ref(), pd.encoding.as_ref()).map_err(|m| err("request.postData", m))?;
            }
            let latency_us = entry.time.and_then(ms_to_us);
            r.baseline = match entry.response {
                // Status 0: the browser got no response (aborted, blocked, failed).
                None => SideRecord::failed(error_kind::OTHER),
                Some(resp) if resp.status <= 0 => SideRecord::failed(error_kind::OTHER),
                Some(resp) => {
                    let status = u16::try_from(resp.status)
                        .ok()
                        .filter(|s| (100..=999).contains(s))
                        .ok_or_else(|| err("response.status", format!("{} is not an HTTP status", resp.status)))?;
                    let body = match &resp.content {
                        Some(c) => {
                            decode(c.text.as_ref(), c.encoding.as_ref()).map_err(|m| err("response.content", m))?
                        }
                        None => None,
                    };
                    let t = entry.timings.unwrap_or_default();
                    let ttfb: f64 =
                        [t.blocked, t.dns, t.connect, t.send, t.wait].iter().flatten().filter(|x| **x > 0.0).sum();
                    SideRecord {
                        status: Some(status),
                        headers: headers(&resp.headers),
                        body,
                        body_truncated: false,
                        latency_us,
                        ttfb_us: ms_to_us(ttfb).filter(|x| *x > 0),
                        error: None,
                        trailers: Vec::new(),
                    }
                }
            };
            Ok(r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_ENTRY: &str = r#"{"log": {"entries": [{"startedDateTime": "2026-11-20T10:00:00Z",
        "request": {"method": "GET", "url": "https://h/a"}, "response": {"status": 200}}]}}"#;

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let with_bom = [BOM, ONE_ENTRY.as_bytes()].concat();
        assert_eq!(parse(&with_bom).expect("a HAR with a BOM parses").log.entries.len(), 1);
        assert_eq!(parse(ONE_ENTRY.as_bytes()).expect("and without").log.entries.len(), 1);
        // Only at the start, and only once.
        let twice = [BOM, BOM, ONE_ENTRY.as_bytes()].concat();
        let Err(e) = parse(&twice) else { panic!("two BOMs are not JSON") };
        assert!(e.starts_with("it is not JSON"), "{e}");
    }

    #[test]
    fn text_that_is_not_json_is_named_so_even_when_its_start_has_the_wrong_shape() {
        let Err(e) = parse(br#"{"log": [2,1,3] "request:"}"#) else { panic!("malformed") };
        assert!(e.starts_with("it is not JSON (expected `,` or `}`"), "{e}");
        let Err(e) = parse(br#"{"log": [2,1,3]}"#) else { panic!("wrong shape") };
        assert!(e.starts_with("it lacks the HAR structure"), "{e}");
    }
}
