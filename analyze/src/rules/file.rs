//! The rules file as written: TOML, every table `deny_unknown_fields` so a misspelt key is an
//! error that names it. [`super::Rules::from_file`] compiles it. `docs/policy.md` documents it;
//! the same file becomes analyze's policy, whose checks will be further sections beside these.

use serde::Deserialize;

/// The whole file. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub defaults: DefaultsSection,
    #[serde(default)]
    pub ignore: Vec<PathEntry>,
    #[serde(default)]
    pub tolerance: Vec<ToleranceEntry>,
    #[serde(default)]
    pub array: Vec<ArrayEntry>,
    #[serde(default)]
    pub presence_only: Vec<PathEntry>,
    #[serde(default)]
    pub type_only: Vec<PathEntry>,
    #[serde(default)]
    pub explained: Vec<ExplainedEntry>,
    #[serde(default)]
    pub headers: HeadersSection,
    #[serde(default)]
    pub routes: RoutesSection,
    #[serde(default)]
    pub grpc: GrpcSection,
}

/// `[grpc]`: how gRPC messages are decoded for comparison.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcSection {
    /// A descriptor set (`protoc --include_imports --descriptor_set_out`, `buf build -o`) naming the
    /// messages of the services; relative to the file it is written in. Without one, messages are
    /// decoded by the wire format, fields by number.
    pub descriptor_set: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSection {
    /// How arrays with no `[[array]]` rule are compared: `list`, `set` or `multiset`.
    pub array_mode: Option<String>,
    /// A tolerance for every number with no `[[tolerance]]` rule.
    pub tolerance: Option<ToleranceValues>,
    /// Arrays longer than this are compared index by index instead of aligned.
    pub max_lcs_len: Option<usize>,
    /// Bodies are decoded by their Content-Encoding up to this size (`64MiB`, or a number of
    /// bytes); past it the content is cut and counted as truncated.
    pub max_decoded_body: Option<SizeValue>,
}

/// A size: a number of bytes, or text as `bytesize` reads it (`64MiB`, `10MB`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    Bytes(u64),
    Text(String),
}

impl SizeValue {
    /// The size in bytes; at least one.
    pub fn bytes(&self) -> Result<u64, String> {
        let n = match self {
            SizeValue::Bytes(n) => *n,
            SizeValue::Text(t) => {
                let t: String = t.trim().chars().filter(|c| *c != '_').collect();
                t.parse::<bytesize::ByteSize>()
                    .map(|s| s.as_u64())
                    .map_err(|_| format!("must be a number of bytes or a size such as 64MiB, not {t:?}"))?
            }
        };
        if n == 0 { Err("must be at least 1 byte".into()) } else { Ok(n) }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToleranceValues {
    pub absolute: Option<f64>,
    pub relative: Option<f64>,
}

/// `[[ignore]]`, `[[presence_only]]`, `[[type_only]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathEntry {
    pub path: String,
    pub route: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToleranceEntry {
    pub path: String,
    pub route: Option<String>,
    pub absolute: Option<f64>,
    pub relative: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayEntry {
    pub path: String,
    pub route: Option<String>,
    /// `list`, `set`, `multiset` or `keyed`.
    pub mode: String,
    /// The field that identifies an element, for `mode = "keyed"`.
    pub key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainedEntry {
    pub path: String,
    pub route: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersSection {
    /// When set, only these headers are compared.
    pub compare: Option<Vec<String>>,
    /// Headers never compared, on top of the default list.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Whether the default ignore list applies (default true).
    pub default_ignore: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesSection {
    /// Explicit route templates, tried in order before the heuristics: `/users/{id}/avatar`.
    #[serde(default)]
    pub templates: Vec<String>,
    /// The most distinct routes kept; later ones are grouped as `{other}`.
    pub max_routes: Option<usize>,
    /// Route keys read from the request, per path: `[[routes.key]]`.
    #[serde(default)]
    pub key: Vec<RouteKeyEntry>,
}

/// `[[routes.key]]`: requests whose path matches `path` are routed as `ROUTE#KEY`, the key read
/// from the request as `from` says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteKeyEntry {
    /// A pattern over request paths: `/graphql`, `/rpc/*`, `/api/**`.
    pub path: String,
    /// `graphql` (the operation name), `jsonrpc` (the method) or `header`.
    pub from: String,
    /// The request header whose value is the key, for `from = "header"`.
    pub header: Option<String>,
}
