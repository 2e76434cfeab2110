//! One value parser per kind of setting, put behind a flag (clap) or a key in the file (serde), so
//! a value is read the same way wherever it was written and a bad one is reported in the same
//! sentence, naming the flag (`--mirror-timeout must be a duration such as 500ms, 5s or 2m, not
//! soon`) or the key (`` `mirror.timeout` in capture.toml must be … ``).

use std::ffi::OsStr;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// A value parser: the text the user wrote → the typed value, or a predicate that reads after the
/// setting's name ("must be a duration such as 500ms, 5s or 2m, not soon").
pub type Parse<T> = fn(&str) -> Result<T, String>;

/// A value parser behind a flag: `#[arg(long, value_parser = Flag(parse_duration))]`. A bad value
/// is one line naming the flag, where clap's own message would be three lines that bury it.
pub struct Flag<T>(pub Parse<T>);

impl<T> Clone for Flag<T> {
    fn clone(&self) -> Self {
        Self(self.0)
    }
}

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Flag<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let name = arg.map_or_else(
            || "a value".to_owned(),
            |a| a.get_long().map_or_else(|| a.get_id().to_string(), |l| format!("--{l}")),
        );
        let bad = |message: &str| {
            // A raw message is printed as it is, after `error: `, without clap's usage lines.
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{name} {message}\n")).with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| bad("must be UTF-8 text"))?;
        (self.0)(text).map_err(|m| bad(&m))
    }
}

/// A value parser behind a key: `#[serde(default, deserialize_with = "…")]` on an `Option` field,
/// through a function that calls this one. The key may hold a string or a number (`timeout = "5s"`,
/// `timeout = 5`, `queue = 16384`, `rate = 0.5`): a number is read as the text it would be as a
/// flag.
pub fn key<'de, D: Deserializer<'de>, T>(d: D, parse: Parse<T>) -> Result<Option<T>, D::Error> {
    let text = d.deserialize_any(Text)?;
    parse(&text).map(Some).map_err(de::Error::custom)
}

/// As [`key`], for a key that holds a list of strings, each read by `parse`.
pub fn keys<'de, D: Deserializer<'de>, T>(d: D, parse: Parse<T>) -> Result<Vec<T>, D::Error> {
    Vec::<String>::deserialize(d)?.iter().map(|t| parse(t).map_err(de::Error::custom)).collect()
}

/// A scalar as the text it would be on the command line.
struct Text;

impl Visitor<'_> for Text {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}
