//! Content codings applied again: a body that redaction decoded (through
//! `shadowdiff_format::encoding`, bounded by a cap) and changed is stored encoded the way it
//! arrived, so its `content-encoding` header stays true and analyze reads it like any other.
//!
//! Levels are the fast end of each coding: the stored bytes are not the upstream's bytes anyway
//! (they decode to the redacted content), and this runs for every redacted compressed body.

use std::io::Write;

/// One coding this module applies, as `Content-Encoding` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    fn parse(token: &str) -> Result<Option<Self>, String> {
        Ok(Some(match token.to_ascii_lowercase().as_str() {
            "" | "identity" => return Ok(None),
            "gzip" | "x-gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            "br" => Coding::Brotli,
            "zstd" => Coding::Zstd,
            other => return Err(format!("unknown content-encoding `{other}`")),
        }))
    }

    fn apply(self, content: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(content)?;
                e.finish()
            }
            // RFC 9110's `deflate` is the zlib format; the decoders accept it and raw deflate alike.
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
}

/// `content` encoded by the `Content-Encoding` value `content_encoding` (codings in the order
/// they are listed, as a server applies them: `gzip, br` is gzip first).
pub fn encode(content: &[u8], content_encoding: &str) -> Result<Vec<u8>, String> {
    let mut out = content.to_vec();
    for token in content_encoding.split(',') {
        if let Some(coding) = Coding::parse(token.trim())? {
            out = coding.apply(&out).map_err(|e| format!("cannot encode as {token}: {e}"))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use shadowdiff_format::encoding::decode;

    use super::*;

    #[test]
    fn every_coding_and_stack_decodes_back() {
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
}
