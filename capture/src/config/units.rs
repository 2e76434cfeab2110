//! Durations and sizes: one syntax for every flag and key of capture and replay alike. The crates
//! that own the syntax parse it (`humantime` for durations, `bytesize` for sizes); this module only
//! adds what capture accepted before them, a bare number of seconds and `_` between digits, and
//! the sentence a bad value is reported with.

use std::time::Duration;

use bytesize::ByteSize;

/// `250ms`, `5s`, `1.5s`, `2m`, `1h30m`, `0s` (as `humantime` reads them), or a bare number of
/// seconds (`3`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let seconds = !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.');
    let parsed = if seconds { humantime::parse_duration(&format!("{t}s")) } else { humantime::parse_duration(t) };
    parsed.map_err(|_| format!("must be a duration such as 500ms, 5s or 2m, not {text}"))
}

/// As [`parse_duration`], for settings where zero would mean "never" or "at once".
pub fn parse_nonzero_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

/// A size or a count: `4096`, `10_000`, `64KiB`, `1MiB`, `1.5KiB`, `1MB`, `10k`, `2GiB`, as
/// `bytesize` reads them (`k`, `MB`, `G` are powers of 1000; `KiB`, `MiB`, `GiB` of 1024; units
/// ignore case). A fraction needs a unit, and a fraction of a byte is dropped.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t: String = text.trim().chars().filter(|c| *c != '_').collect();
    t.parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| format!("must be a whole number or a size such as 64KiB or 1MiB, not {text}"))
}

/// As [`parse_size`], for settings where zero would stop all work (queues, rotation, limits on
/// what runs at once).
pub fn parse_nonzero_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err("must be at least 1, not 0".into()),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_what_capture_accepted_and_add_humantime() {
        let ok = [
            ("0s", 0),
            ("0", 0),
            ("250ms", 250),
            ("5s", 5_000),
            ("1.5s", 1_500),
            ("0.5", 500),
            ("2m", 120_000),
            ("2min", 120_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            (" 5 s ", 5_000),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)), "{text}");
        }
        for text in ["", "soon", "5 parsecs", "-1s", "1e3", "s"] {
            assert_eq!(
                parse_duration(text),
                Err(format!("must be a duration such as 500ms, 5s or 2m, not {text}")),
                "{text}"
            );
        }
        assert_eq!(parse_nonzero_duration("0s"), Err("must be longer than zero".into()));
        assert_eq!(parse_nonzero_duration("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn sizes_keep_what_capture_accepted() {
        let ok = [
            ("0", 0),
            ("4096", 4096),
            ("10_000", 10_000),
            ("64KiB", 65_536),
            ("64kib", 65_536),
            ("1MiB", 1 << 20),
            ("1 MiB", 1 << 20),
            ("1.5KiB", 1536),
            ("1MB", 1_000_000),
            ("10k", 10_000),
            ("2GiB", 2 << 30),
            ("2G", 2_000_000_000),
            ("16B", 16),
        ];
        for (text, n) in ok {
            assert_eq!(parse_size(text), Ok(n), "{text}");
        }
        for text in ["", "1.5", "-1", "lots", "5 parsecs", "1e3"] {
            assert_eq!(
                parse_size(text),
                Err(format!("must be a whole number or a size such as 64KiB or 1MiB, not {text}")),
                "{text}"
            );
        }
        assert_eq!(parse_nonzero_size("0"), Err("must be at least 1, not 0".into()));
    }
}
