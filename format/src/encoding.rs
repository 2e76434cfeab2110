//! Content-Encoding: turning a body stored as received (`gzip`, `deflate`, `br`, `zstd`, or a
//! stack of them) back into the content the sides meant, so analyze compares content, not
//! compression.
//!
//! Decoding is streaming and bounded: every layer is a [`Read`] adapter over the one below, and
//! the output is read through `.take(cap + 1)`, so a bomb (a few MB that inflate to gigabytes)
//! costs at most `cap` bytes of memory and the time to produce them, and comes back marked
//! [`Decoded::truncated`]. A body without a content encoding (or `identity`) is borrowed as it
//! is: no copy, no cap (its size was already bounded when it was received).

use std::borrow::Cow;
use std::io::{self, Read};

use crate::SideRecord;

/// The decoded-size cap when none is configured: 64 MiB, far above any JSON body worth
/// diffing, far below what a bomb would allocate.
pub const DEFAULT_MAX_DECODED: u64 = 64 * 1024 * 1024;

/// 2^23 = 8 MiB, the window limit RFC 9659 sets for `Content-Encoding: zstd`.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// A decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The content: borrowed when nothing was to be decoded.
    pub bytes: Cow<'a, [u8]>,
    /// The content was longer than the cap and was cut there.
    pub truncated: bool,
}

/// Why a body could not be decoded. Each message is a sentence fragment that follows
/// `undecodable: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A content coding this decoder does not know (`x-foo`, `compress`).
    #[error("unknown content-encoding `{encoding}`")]
    Unknown { encoding: String },
    /// The bytes are not a valid stream of the claimed coding (a br label on gzip bytes, a
    /// corrupt block, a bad checksum).
    #[error("{encoding} stream is broken ({message})")]
    Broken { encoding: &'static str, message: String },
    /// The stream stops before its end marker, as when the body was cut in transit or by a size
    /// cap. `partial` is the content decoded up to there.
    #[error("{encoding} stream ends early")]
    EndsEarly { encoding: &'static str, partial: Vec<u8> },
}

impl DecodeError {
    /// The coding at fault, as it is written in `Content-Encoding`.
    pub fn encoding(&self) -> &str {
        match self {
            DecodeError::Unknown { encoding } => encoding,
            DecodeError::Broken { encoding, .. } | DecodeError::EndsEarly { encoding, .. } => encoding,
        }
    }
}

/// One content coding this module decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    fn parse(token: &str) -> Result<Option<Self>, DecodeError> {
        Ok(Some(match token.to_ascii_lowercase().as_str() {
            "" | "identity" => return Ok(None),
            "gzip" | "x-gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            "br" => Coding::Brotli,
            "zstd" => Coding::Zstd,
            _ => return Err(DecodeError::Unknown { encoding: token.to_owned() }),
        }))
    }

    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// Wraps `inner` in this coding's streaming decoder, tagging its errors with the coding.
    fn reader<'a>(self, inner: Box<dyn Read + 'a>) -> io::Result<Box<dyn Read + 'a>> {
        let decoder: Box<dyn Read + 'a> = match self {
            Coding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(inner)),
            Coding::Deflate => Box::new(Inflate::sniffing(inner)?),
            Coding::Brotli => Box::new(Brotli(brotli::Decompressor::new(Watched { inner, eof: false }, 8 * 1024))),
            Coding::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::new(inner).map_err(|e| tag(self, e))?;
                // RFC 9659: HTTP's zstd uses windows of at most 8 MiB; a frame asking for more
                // (up to zstd's 128 MiB default) would cost that much memory per body in flight.
                decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(|e| tag(self, e))?;
                Box::new(decoder)
            }
        };
        Ok(Box::new(Tagged { coding: self, inner: decoder }))
    }

    /// `content` in this coding, at the fast end of its levels (the encoder of
    /// [`encode`]).
    fn apply(self, content: &[u8]) -> io::Result<Vec<u8>> {
        use std::io::Write as _;
        match self {
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(content)?;
                e.finish()
            }
            // RFC 9110's `deflate` is the zlib format; the decoder accepts it and raw deflate alike.
            Coding::Deflate => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(content)?;
                e.finish()
            }
            Coding::Brotli => {
                let mut out = Vec::new();
                {
                    // Quality 4 and a 4 MiB window (lgwin 22): brotli's fast settings.
                    let mut w = brotli::CompressorWriter::new(&mut out, 16 * 1024, 4, 22);
                    w.write_all(content)?;
                    w.flush()?;
                }
                Ok(out)
            }
            // Level 1 with zstd's default window for that level (well under RFC 9659's 8 MiB).
            Coding::Zstd => zstd::stream::encode_all(content, 1),
        }
    }

    /// This coding's decoder straight over the body as received. gzip reads the slice in place
    /// (flate2's `bufread` decoder) instead of through a fresh 32 KiB zeroed buffer per body,
    /// which for bodies of a few hundred bytes cost more than the inflating.
    fn reader_over<'a>(self, body: &'a [u8]) -> io::Result<Box<dyn Read + 'a>> {
        match self {
            Coding::Gzip => {
                Ok(Box::new(Tagged { coding: self, inner: Box::new(flate2::bufread::MultiGzDecoder::new(body)) }))
            }
            _ => self.reader(Box::new(body)),
        }
    }
}

/// Room for a body's content before decoding it, so that `read_to_end` does not grow the buffer
/// from nothing, reallocating and copying, for every body: four times the encoded size (JSON
/// gzips to a third or less), at most 1 MiB (larger content grows as it comes) and at most the cap.
fn room_for(encoded: usize, cap: u64) -> usize {
    let cap = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
    encoded.saturating_mul(4).saturating_add(256).min(1024 * 1024).min(cap)
}

/// `content` encoded by the `Content-Encoding` value `content_encoding`, codings in the order they
/// are listed (as a server applies them: `gzip, br` is gzip first) — the inverse of [`decode`],
/// for a body that was decoded, changed (redacted) and must be stored encoded as it arrived.
/// Levels are the fast end of each coding: the bytes are not the upstream's bytes anyway.
pub fn encode(content: &[u8], content_encoding: &str) -> Result<Vec<u8>, String> {
    let mut out = content.to_vec();
    for coding in codings(content_encoding).map_err(|e| e.to_string())? {
        out = coding.apply(&out).map_err(|e| format!("cannot encode as {}: {e}", coding.name()))?;
    }
    Ok(out)
}

/// The codings of a `Content-Encoding` value in the order they were applied. Repeated headers
/// are joined with `,` before this is called.
fn codings(content_encoding: &str) -> Result<Vec<Coding>, DecodeError> {
    content_encoding.split(',').map(|t| Coding::parse(t.trim())).filter_map(Result::transpose).collect()
}

/// Decodes `body` by its `Content-Encoding` header value (`None`: the header is absent), keeping
/// at most `cap` bytes of content. Stacked codings (`gzip, br`: gzip applied first) are undone
/// in reverse order.
pub fn decode<'a>(body: &'a [u8], content_encoding: Option<&str>, cap: u64) -> Result<Decoded<'a>, DecodeError> {
    let codings = match content_encoding {
        None => Vec::new(),
        Some(value) => codings(value)?,
    };
    // The last coding applied is the first undone, straight over the body.
    let Some((&innermost, outer)) = codings.split_last().filter(|_| !body.is_empty()) else {
        return Ok(Decoded { bytes: Cow::Borrowed(body), truncated: false });
    };
    let mut reader = innermost.reader_over(body).map_err(|e| error_of(e, innermost, Vec::new()))?;
    for &coding in outer.iter().rev() {
        reader = coding.reader(reader).map_err(|e| error_of(e, coding, Vec::new()))?;
    }
    let mut out = Vec::with_capacity(room_for(body.len(), cap));
    if let Err(e) = reader.take(cap.saturating_add(1)).read_to_end(&mut out) {
        return Err(error_of(e, codings[0], out));
    }
    let truncated = out.len() as u64 > cap;
    if truncated {
        out.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
    }
    Ok(Decoded { bytes: Cow::Owned(out), truncated })
}

/// A recorded side's `Content-Encoding`: its headers of that name joined with `, ` in order
/// (borrowed when there is one).
pub fn side_encoding(side: &SideRecord) -> Option<Cow<'_, str>> {
    let mut values = side.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-encoding"));
    let first = values.next()?.value_lossy();
    let rest: Vec<_> = values.map(|h| h.value_lossy()).collect();
    if rest.is_empty() {
        return Some(first);
    }
    Some(Cow::Owned(std::iter::once(first).chain(rest).collect::<Vec<_>>().join(", ")))
}

/// A recorded side's body as content, decoded by its own `Content-Encoding` and kept to `cap`
/// bytes. A body the recorder cut at its size cap (`body_truncated`) necessarily ends early: it
/// decodes to the content that was there, marked truncated, as an unencoded cut body is
/// compared as far as it was kept.
pub fn decode_side(side: &SideRecord, cap: u64) -> Result<Decoded<'_>, DecodeError> {
    let body = side.body.as_deref().unwrap_or_default();
    match decode(body, side_encoding(side).as_deref(), cap) {
        Err(DecodeError::EndsEarly { partial, .. }) if side.body_truncated => {
            Ok(Decoded { bytes: Cow::Owned(partial), truncated: true })
        }
        other => other,
    }
}

/// Whether a `Content-Encoding` value asks for any decoding at all.
pub fn is_encoded(content_encoding: Option<&str>) -> bool {
    content_encoding
        .is_some_and(|v| v.split(',').any(|t| !t.trim().is_empty() && !t.trim().eq_ignore_ascii_case("identity")))
}

/// An error from one layer of the stack, carried through the layers above it unchanged.
#[derive(Debug)]
struct LayerError {
    coding: Coding,
    ends_early: bool,
    message: String,
}

impl std::fmt::Display for LayerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.coding.name(), self.message)
    }
}

impl std::error::Error for LayerError {}

fn tag(coding: Coding, e: io::Error) -> io::Error {
    if e.get_ref().is_some_and(|inner| inner.is::<LayerError>()) {
        return e;
    }
    let ends_early = e.kind() == io::ErrorKind::UnexpectedEof;
    io::Error::other(LayerError { coding, ends_early, message: e.to_string() })
}

fn error_of(e: io::Error, outermost: Coding, partial: Vec<u8>) -> DecodeError {
    let layer = e.get_ref().and_then(|inner| inner.downcast_ref::<LayerError>());
    let (coding, ends_early, message) = match layer {
        Some(l) => (l.coding, l.ends_early, l.message.clone()),
        None => (outermost, e.kind() == io::ErrorKind::UnexpectedEof, e.to_string()),
    };
    if ends_early {
        DecodeError::EndsEarly { encoding: coding.name(), partial }
    } else {
        DecodeError::Broken { encoding: coding.name(), message }
    }
}

/// A decoder's output with its errors tagged by the coding that raised them.
struct Tagged<'a> {
    coding: Coding,
    inner: Box<dyn Read + 'a>,
}

impl Read for Tagged<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| tag(self.coding, e))
    }
}

/// brotli's reader says "Invalid Data" both for a corrupt stream and for one that stops early;
/// whether its input had ended tells them apart.
struct Brotli<'a>(brotli::Decompressor<Watched<Box<dyn Read + 'a>>>);

impl Read for Brotli<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::InvalidData && self.0.get_ref().eof => {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream stops before its end marker"))
            }
            other => other,
        }
    }
}

/// A reader that remembers whether it reached its end.
struct Watched<R> {
    inner: R,
    eof: bool,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.eof |= n == 0 && !buf.is_empty();
        Ok(n)
    }
}

/// `deflate` as servers send it: zlib-wrapped (RFC 9110's meaning) or raw (what some servers
/// and old IIS send). The zlib header is two bytes with a checksum, so two bytes decide. Unlike
/// flate2's read adapters, a stream that stops before its end marker is an error here, not a
/// quiet end of file.
struct Inflate<R> {
    inner: R,
    state: flate2::Decompress,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    done: bool,
}

impl<R: Read> Inflate<io::Chain<io::Cursor<Vec<u8>>, R>> {
    fn sniffing(mut inner: R) -> io::Result<Self> {
        let mut head = Vec::with_capacity(2);
        (&mut inner).take(2).read_to_end(&mut head)?;
        let zlib = head.len() == 2 && head[0] & 0x0f == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
        Ok(Self {
            inner: io::Cursor::new(head).chain(inner),
            state: flate2::Decompress::new(zlib),
            buf: vec![0; 32 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
            eof: false,
            done: false,
        })
    }
}

impl<R: Read> Read for Inflate<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.done {
                return Ok(0);
            }
            if self.pos == self.len && !self.eof {
                self.len = self.inner.read(&mut self.buf)?;
                self.pos = 0;
                self.eof = self.len == 0;
            }
            let (in_before, out_before) = (self.state.total_in(), self.state.total_out());
            let flush = if self.eof { flate2::FlushDecompress::Finish } else { flate2::FlushDecompress::None };
            let status = self
                .state
                .decompress(&self.buf[self.pos..self.len], out, flush)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let consumed = (self.state.total_in() - in_before) as usize;
            let produced = (self.state.total_out() - out_before) as usize;
            self.pos += consumed;
            self.done = status == flate2::Status::StreamEnd;
            if produced > 0 {
                return Ok(produced);
            }
            if !self.done && consumed == 0 && (self.eof || self.pos < self.len) {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream stops before its end marker"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_coding_and_stack_encodes_and_decodes_back() {
        let content = br#"{"user":"ada","password":"REDACTED","items":[1,2,3]}"#.repeat(20);
        for ce in ["gzip", "x-gzip", "deflate", "br", "zstd", "gzip, br", "zstd,gzip", "identity", "GZIP"] {
            let encoded = encode(&content, ce).expect("encodes");
            let back = decode(&encoded, Some(ce), 1 << 20).expect("decodes");
            assert_eq!(&back.bytes[..], &content[..], "{ce}");
            assert!(!back.truncated);
            if ce != "identity" {
                assert_ne!(encoded, content, "{ce} changed the bytes");
            }
        }
        assert_eq!(encode(b"x", "compress"), Err("unknown content-encoding `compress`".into()));
    }

    use std::io::Write;
    use std::time::{Duration, Instant};

    use super::*;

    const JSON: &[u8] =
        br#"{"id":1,"name":"Ada","tags":["a","b","c"],"note":"the quick brown fox jumps over the lazy dog"}"#;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn br(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).unwrap();
        }
        out
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).unwrap()
    }

    fn decoded(body: &[u8], encoding: &str) -> Vec<u8> {
        let d = decode(body, Some(encoding), DEFAULT_MAX_DECODED).unwrap();
        assert!(!d.truncated);
        d.bytes.into_owned()
    }

    #[test]
    fn each_coding_round_trips() {
        assert_eq!(decoded(&gzip(JSON), "gzip"), JSON);
        assert_eq!(decoded(&gzip(JSON), "x-gzip"), JSON);
        assert_eq!(decoded(&gzip(JSON), "GZIP"), JSON);
        assert_eq!(decoded(&zlib(JSON), "deflate"), JSON);
        assert_eq!(decoded(&raw_deflate(JSON), "deflate"), JSON);
        assert_eq!(decoded(&br(JSON), "br"), JSON);
        assert_eq!(decoded(&zstd(JSON), "zstd"), JSON);
    }

    #[test]
    fn identity_and_absent_borrow_the_body() {
        for encoding in [None, Some("identity"), Some(""), Some(" identity , ")] {
            let d = decode(JSON, encoding, 4).unwrap();
            assert!(matches!(d.bytes, Cow::Borrowed(b) if b == JSON), "{encoding:?}");
            assert!(!d.truncated);
        }
        assert!(!is_encoded(None) && !is_encoded(Some("identity")) && is_encoded(Some("gzip")));
    }

    #[test]
    fn stacked_codings_are_undone_in_reverse() {
        assert_eq!(decoded(&br(&gzip(JSON)), "gzip, br"), JSON);
        assert_eq!(decoded(&gzip(&zstd(JSON)), "zstd,gzip"), JSON);
        assert_eq!(decoded(&zstd(&br(&raw_deflate(JSON))), "deflate, identity, br, zstd"), JSON);
    }

    #[test]
    fn concatenated_gzip_members_are_one_body() {
        let mut body = gzip(b"{\"a\":");
        body.extend(gzip(b"1}"));
        assert_eq!(decoded(&body, "gzip"), b"{\"a\":1}");
    }

    #[test]
    fn sides_decode_by_their_own_headers() {
        use crate::Header;
        let side = |headers: Vec<Header>, body: Vec<u8>, cut: bool| SideRecord {
            headers,
            body: Some(body.into()),
            body_truncated: cut,
            ..SideRecord::default()
        };
        let stacked = side(
            vec![Header::new("Content-Encoding", "gzip"), Header::new("content-encoding", "br")],
            br(&gzip(JSON)),
            false,
        );
        assert_eq!(side_encoding(&stacked).as_deref(), Some("gzip, br"));
        assert_eq!(decode_side(&stacked, u64::MAX).unwrap().bytes.as_ref(), JSON);
        let plain = side(vec![], JSON.to_vec(), false);
        assert!(matches!(decode_side(&plain, 1).unwrap().bytes, Cow::Borrowed(_)));
        // Cut by the recorder: what was there, marked truncated; cut in transit: an error.
        let body = gzip(JSON);
        let cut = side(vec![Header::new("content-encoding", "gzip")], body[..body.len() - 12].to_vec(), true);
        let d = decode_side(&cut, u64::MAX).unwrap();
        assert!(d.truncated && JSON.starts_with(&d.bytes));
        let broken = SideRecord { body_truncated: false, ..cut };
        assert!(matches!(decode_side(&broken, u64::MAX), Err(DecodeError::EndsEarly { .. })));
    }

    #[test]
    fn examples_show_decoded_bodies() {
        use crate::Header;
        use crate::examples::{BODY_CAP, ExampleSide};
        let side = |body: Vec<u8>| SideRecord {
            headers: vec![Header::new("content-encoding", "gzip")],
            body: Some(body.into()),
            ..SideRecord::default()
        };
        let (shown, kept) = ExampleSide::of(&side(gzip(JSON)));
        assert_eq!((shown.body.as_deref(), kept, shown.truncated), (std::str::from_utf8(JSON).ok(), JSON.len(), false));
        let (shown, kept) = ExampleSide::of(&side(gzip(&vec![b'a'; BODY_CAP * 4])));
        assert!(shown.truncated && kept == BODY_CAP);
        // Undecodable: shown as received.
        let (shown, _) = ExampleSide::of(&side(JSON.to_vec()));
        assert_eq!(shown.body.as_deref(), std::str::from_utf8(JSON).ok());
    }

    #[test]
    fn zstd_windows_past_http_s_limit_are_refused() {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.window_log(26).unwrap();
        e.long_distance_matching(true).unwrap();
        let data: Vec<u8> = (0..(40u32 << 20) / 4).flat_map(|i| (i % 9_999_991).to_le_bytes()).collect();
        e.write_all(&data).unwrap();
        let wide = e.finish().unwrap();
        let err = decode(&wide, Some("zstd"), u64::MAX).unwrap_err();
        assert!(matches!(err, DecodeError::Broken { encoding: "zstd", .. }), "{err:?}");
        assert!(err.to_string().contains("memory"), "{err}");
    }

    #[test]
    fn unknown_coding_is_named() {
        let e = decode(JSON, Some("gzip, x-foo"), DEFAULT_MAX_DECODED).unwrap_err();
        assert_eq!(e, DecodeError::Unknown { encoding: "x-foo".into() });
        assert_eq!(e.to_string(), "unknown content-encoding `x-foo`");
    }

    #[test]
    fn truncated_streams_end_early_with_what_was_decoded() {
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| format!("{i},").into_bytes()).collect();
        for (name, body) in [("gzip", gzip(&big)), ("deflate", zlib(&big)), ("br", br(&big)), ("zstd", zstd(&big))] {
            let cut = &body[..body.len() / 2];
            match decode(cut, Some(name), DEFAULT_MAX_DECODED) {
                Err(DecodeError::EndsEarly { encoding, partial }) => {
                    assert_eq!(encoding, name);
                    assert!(!partial.is_empty() && big.starts_with(&partial), "{name}: a prefix of the content");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let cut = raw_deflate(&big);
        assert!(matches!(decode(&cut[..cut.len() / 2], Some("deflate"), u64::MAX), Err(DecodeError::EndsEarly { .. })));
        let e = decode(&gzip(JSON)[..10], Some("gzip"), DEFAULT_MAX_DECODED).unwrap_err();
        assert_eq!(e.to_string(), "gzip stream ends early");
    }

    #[test]
    fn a_label_that_lies_is_broken() {
        let e = decode(&gzip(JSON), Some("br"), DEFAULT_MAX_DECODED).unwrap_err();
        assert!(matches!(e, DecodeError::Broken { encoding: "br", .. }), "{e:?}");
        let e = decode(JSON, Some("gzip"), DEFAULT_MAX_DECODED).unwrap_err();
        assert!(matches!(e, DecodeError::Broken { encoding: "gzip", .. }), "{e:?}");
        assert!(e.to_string().starts_with("gzip stream is broken"), "{e}");
        let e = decode(JSON, Some("zstd"), DEFAULT_MAX_DECODED).unwrap_err();
        assert_eq!(e.encoding(), "zstd");
        // In a stack, the layer at fault is named: the outer br is fine, the inner gzip is not.
        let e = decode(&br(JSON), Some("gzip, br"), DEFAULT_MAX_DECODED).unwrap_err();
        assert_eq!(e.encoding(), "gzip", "{e:?}");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // A synchronous test timing itself; no runtime here.
    fn a_bomb_stops_at_the_cap_fast() {
        // 1 GiB of zeros, streamed through the encoder at its best level: about 1 MB of gzip
        // (deflate cannot do better than ~1032:1; a fast level of some backends makes 10 MB).
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 8 << 20, "{} bytes", bomb.len());
        let cap = 16 << 20;
        let started = Instant::now();
        let d = decode(&bomb, Some("gzip"), cap).unwrap();
        let took = started.elapsed();
        assert!(d.truncated);
        assert_eq!(d.bytes.len() as u64, cap);
        assert!(d.bytes.iter().all(|&b| b == 0));
        assert!(took < Duration::from_secs(5), "{took:?}");
        // The same bomb stacked under br is still bounded.
        let stacked = br(&bomb);
        let d = decode(&stacked, Some("gzip, br"), 1 << 20).unwrap();
        assert!(d.truncated && d.bytes.len() == 1 << 20);
    }
}
