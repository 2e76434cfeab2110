//! Per-path comparison rules: what to ignore, how close numbers must be, how arrays line up, and
//! which differences are known and explained. Rules come from a TOML file ([`RulesFile`],
//! documented in `docs/policy.md`) or are built in code; either way they are compiled once into
//! [`Rules`] and then only read.

pub mod file;

use std::path::Path;

pub use file::{
    ArrayEntry, DefaultsSection, ExplainedEntry, GrpcSection, HeadersSection, PathEntry, RouteKeyEntry, RoutesSection,
    RulesFile, SizeValue, ToleranceEntry, ToleranceValues,
};

use crate::error::{Error, Result};
use crate::headers::HeaderRules;
use crate::path::{self, MatchesWalk, PathPattern, Seg};
use crate::route::RouteRules;

/// Arrays longer than this (on either side) are compared index by index: aligning them costs
/// more than it is worth and must stay linear on hostile input.
pub const DEFAULT_MAX_LCS_LEN: usize = 10_000;

pub use shadowdiff_format::encoding::DEFAULT_MAX_DECODED;

/// How the elements of an array are matched between baseline and canary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ArrayMode {
    /// Order matters; elements are aligned by a longest common subsequence, so one inserted
    /// element is one difference.
    #[default]
    List,
    /// Order and repetition do not matter.
    Set,
    /// Order does not matter; how many times an element occurs does.
    Multiset,
    /// Elements are objects identified by the named field; order does not matter and elements
    /// with the same key are compared field by field.
    Keyed(String),
}

impl ArrayMode {
    /// Parses `list`, `set`, `multiset` or `keyed` (which needs `key`).
    pub fn parse(mode: &str, key: Option<&str>) -> Result<Self, String> {
        match (mode, key) {
            ("list", None) => Ok(Self::List),
            ("set", None) => Ok(Self::Set),
            ("multiset", None) => Ok(Self::Multiset),
            ("keyed", Some(key)) => Ok(Self::Keyed(key.to_owned())),
            ("keyed", None) => Err("mode `keyed` needs a `key`".to_owned()),
            ("list" | "set" | "multiset", Some(_)) => Err(format!("`key` only applies to mode `keyed`, not `{mode}`")),
            _ => Err(format!("unknown array mode `{mode}`, expected list, set, multiset or keyed")),
        }
    }
}

/// Two numbers are equal when `|a - b| <= max(absolute, relative * max(|a|, |b|))` — the rule of
/// Python's `math.isclose`, so a relative tolerance is symmetric in baseline and canary.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tolerance {
    pub absolute: f64,
    pub relative: f64,
}

impl Tolerance {
    pub fn absolute(absolute: f64) -> Self {
        Self { absolute, relative: 0.0 }
    }

    pub fn relative(relative: f64) -> Self {
        Self { absolute: 0.0, relative }
    }

    pub fn within(&self, a: f64, b: f64) -> bool {
        if a == b {
            return true;
        }
        let delta = (a - b).abs();
        delta <= self.absolute.max(self.relative * a.abs().max(b.abs()))
    }

    fn validate(self) -> Result<Self, String> {
        for (name, v) in [("absolute", self.absolute), ("relative", self.relative)] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("`{name}` must be a finite number >= 0, not {v}"));
            }
        }
        Ok(self)
    }
}

/// What a rule does to the paths it matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Not compared at all, nor anything below.
    Ignore,
    /// Only compared for being present on both sides; the values do not matter.
    PresenceOnly,
    /// Only compared for having the same JSON type; the values do not matter.
    TypeOnly,
    /// Numbers compared within a tolerance.
    Tolerance(Tolerance),
    /// Arrays compared in this mode.
    Array(ArrayMode),
}

/// One rule: a path pattern, an optional route pattern it is scoped to, and its action.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    pub pattern: PathPattern,
    /// When set, the rule applies only to routes this pattern matches (`/users/*` or
    /// `/users/{id}`); it never applies when no route is known.
    pub route: Option<PathPattern>,
    pub action: Action,
}

/// A difference that is known and accepted. It is still reported, marked with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub pattern: PathPattern,
    pub route: Option<PathPattern>,
    pub reason: String,
}

/// Compiled rules. `Rules::default()` compares everything exactly, arrays as lists.
#[derive(Debug, Clone)]
pub struct Rules {
    path_rules: Vec<PathRule>,
    explained: Vec<Explained>,
    /// How arrays with no array rule are compared.
    pub array_mode: ArrayMode,
    /// A tolerance for numbers with no tolerance rule.
    pub tolerance: Option<Tolerance>,
    /// Arrays longer than this are compared by index (see [`DEFAULT_MAX_LCS_LEN`]).
    pub max_lcs_len: usize,
    /// Bodies are decoded by their Content-Encoding up to this many bytes (see
    /// [`DEFAULT_MAX_DECODED`]).
    pub max_decoded_body: u64,
    pub headers: HeaderRules,
    pub routes: RouteRules,
    /// gRPC messages are decoded by this descriptor set; without one, by the wire format.
    pub grpc_schema: Option<crate::grpc::Schema>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            path_rules: Vec::new(),
            explained: Vec::new(),
            array_mode: ArrayMode::List,
            tolerance: None,
            max_lcs_len: DEFAULT_MAX_LCS_LEN,
            max_decoded_body: DEFAULT_MAX_DECODED,
            headers: HeaderRules::default(),
            routes: RouteRules::default(),
            grpc_schema: None,
        }
    }
}

impl Rules {
    /// Reads and compiles a rules file. Errors name the file and the offending key or rule.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::ReadRules { path: path.to_owned(), source })?;
        let file: RulesFile = toml::from_str(&text)
            .map_err(|e| Error::ParseRules { path: path.to_owned(), message: toml_message(&text, &e) })?;
        Self::compile_in(&file, path.parent())
    }

    /// Parses and compiles rules from TOML text. A parse error's `path` is `<rules>`.
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: RulesFile = toml::from_str(text)
            .map_err(|e| Error::ParseRules { path: "<rules>".into(), message: toml_message(text, &e) })?;
        Self::compile(&file)
    }

    /// Compiles a parsed rules file; a relative `[grpc] descriptor_set` is read from the
    /// current directory.
    pub fn compile(file: &RulesFile) -> Result<Self> {
        Self::compile_in(file, None)
    }

    /// Compiles a parsed rules file written in directory `dir`: a relative `[grpc]
    /// descriptor_set` is read from there.
    pub fn compile_in(file: &RulesFile, dir: Option<&Path>) -> Result<Self> {
        let mut rules = Rules::default();
        if let Some(set) = &file.grpc.descriptor_set {
            let path = match dir {
                Some(dir) if set.is_relative() => dir.join(set),
                _ => set.clone(),
            };
            rules.grpc_schema = Some(crate::grpc::Schema::load(&path)?);
        }
        let d = &file.defaults;
        if let Some(mode) = &d.array_mode {
            rules.array_mode =
                ArrayMode::parse(mode, None).map_err(|reason| rule_err("defaults.array_mode", reason))?;
        }
        if let Some(t) = &d.tolerance {
            rules.tolerance = Some(tolerance(t.absolute, t.relative).map_err(|r| rule_err("defaults.tolerance", r))?);
        }
        if let Some(n) = d.max_lcs_len {
            rules.max_lcs_len = n;
        }
        if let Some(size) = &d.max_decoded_body {
            rules.max_decoded_body = size.bytes().map_err(|r| rule_err("defaults.max_decoded_body", r))?;
        }
        let simple = [
            (&file.ignore, Action::Ignore),
            (&file.presence_only, Action::PresenceOnly),
            (&file.type_only, Action::TypeOnly),
        ];
        for (entries, action) in simple {
            for e in entries {
                rules.add(PathRule {
                    pattern: path::compile(&e.path)?,
                    route: route(&e.route)?,
                    action: action.clone(),
                });
            }
        }
        for (i, e) in file.tolerance.iter().enumerate() {
            let t = tolerance(e.absolute, e.relative).map_err(|r| rule_err(&format!("tolerance[{i}]"), r))?;
            rules.add(PathRule {
                pattern: path::compile(&e.path)?,
                route: route(&e.route)?,
                action: Action::Tolerance(t),
            });
        }
        for (i, e) in file.array.iter().enumerate() {
            let mode = ArrayMode::parse(&e.mode, e.key.as_deref()).map_err(|r| rule_err(&format!("array[{i}]"), r))?;
            rules.add(PathRule {
                pattern: path::compile(&e.path)?,
                route: route(&e.route)?,
                action: Action::Array(mode),
            });
        }
        for (i, e) in file.explained.iter().enumerate() {
            if e.reason.trim().is_empty() {
                return Err(rule_err(&format!("explained[{i}]"), "`reason` must not be empty".to_owned()));
            }
            rules.explained.push(Explained {
                pattern: path::compile(&e.path)?,
                route: route(&e.route)?,
                reason: e.reason.clone(),
            });
        }
        rules.headers = HeaderRules::from_section(&file.headers);
        rules.routes = RouteRules::from_section(&file.routes)?;
        Ok(rules)
    }

    /// Adds a rule after the existing ones.
    pub fn add(&mut self, rule: PathRule) -> &mut Self {
        self.path_rules.push(rule);
        self
    }

    /// Adds an explained difference.
    pub fn explain(&mut self, explained: Explained) -> &mut Self {
        self.explained.push(explained);
        self
    }

    /// Adds an unscoped ignore rule for `pattern`.
    pub fn ignore(&mut self, pattern: &str) -> Result<&mut Self> {
        Ok(self.add(PathRule { pattern: path::compile(pattern)?, route: None, action: Action::Ignore }))
    }

    pub fn path_rules(&self) -> &[PathRule] {
        &self.path_rules
    }

    pub fn explained(&self) -> &[Explained] {
        &self.explained
    }

    /// The rules that apply on `route`: unscoped ones, and scoped ones whose route matches. A
    /// keyed route (`/graphql#GetUser`) is matched by its own patterns and by its path's
    /// (`/graphql`), so rules for a path apply to all of its operations.
    pub(crate) fn scoped(&self, route: Option<&str>) -> Scoped<'_> {
        let applies = |r: &Option<PathPattern>| match (r, route) {
            (None, _) => true,
            (Some(p), Some(route)) => crate::route::route_matches(p, route),
            (Some(_), None) => false,
        };
        Scoped {
            rules: self,
            path_rules: self.path_rules.iter().filter(|r| applies(&r.route)).collect(),
            explained: self.explained.iter().filter(|e| applies(&e.route)).collect(),
        }
    }
}

/// What applies at one node of a document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeRule<'r> {
    pub ignore: bool,
    pub presence_only: bool,
    pub type_only: bool,
    pub tolerance: Option<Tolerance>,
    pub array: &'r ArrayMode,
}

/// Rules narrowed to one route, for one diff.
#[derive(Debug)]
pub(crate) struct Scoped<'r> {
    rules: &'r Rules,
    path_rules: Vec<&'r PathRule>,
    explained: Vec<&'r Explained>,
}

impl<'r> Scoped<'r> {
    /// No path rule and no explanation applies: every node gets the defaults.
    pub fn is_trivial(&self) -> bool {
        self.path_rules.is_empty() && self.explained.is_empty()
    }

    pub fn max_lcs_len(&self) -> usize {
        self.rules.max_lcs_len
    }

    /// The rule at `path`. Precedence: ignore, then presence-only, then type-only; among
    /// tolerance rules and among array rules the last matching one in the file wins.
    pub fn node(&self, path: &[Seg<'_>]) -> NodeRule<'r> {
        let mut node = NodeRule {
            ignore: false,
            presence_only: false,
            type_only: false,
            tolerance: self.rules.tolerance,
            array: &self.rules.array_mode,
        };
        for rule in &self.path_rules {
            if !rule.pattern.matches(path) {
                continue;
            }
            match &rule.action {
                Action::Ignore => {
                    node.ignore = true;
                    return node;
                }
                Action::PresenceOnly => node.presence_only = true,
                Action::TypeOnly => node.type_only = true,
                Action::Tolerance(t) => node.tolerance = Some(*t),
                Action::Array(mode) => node.array = mode,
            }
        }
        node
    }

    /// Cheaper than [`Self::node`] when only ignoring matters (added and removed members).
    pub fn ignored(&self, path: &[Seg<'_>]) -> bool {
        self.path_rules.iter().any(|r| r.action == Action::Ignore && r.pattern.matches(path))
    }

    /// The reason a difference at `path` is explained, if one is.
    pub fn explained(&self, path: &[Seg<'_>]) -> Option<&'r str> {
        self.explained.iter().rev().find(|e| e.pattern.matches(path)).map(|e| e.reason.as_str())
    }
}

fn route(route: &Option<String>) -> Result<Option<PathPattern>> {
    route.as_deref().map(path::compile).transpose()
}

fn tolerance(absolute: Option<f64>, relative: Option<f64>) -> Result<Tolerance, String> {
    if absolute.is_none() && relative.is_none() {
        return Err("give `absolute`, `relative` or both".to_owned());
    }
    Tolerance { absolute: absolute.unwrap_or(0.0), relative: relative.unwrap_or(0.0) }.validate()
}

fn rule_err(rule: &str, reason: String) -> Error {
    Error::Rule { rule: rule.to_owned(), reason }
}

/// One line for a TOML error: its message (which names the key) and where it is. The rules file
/// and the policy (the same file) both report through this.
pub(crate) fn toml_message(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().trim_end_matches('.').replace('\n', " ").trim().to_owned();
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests;
