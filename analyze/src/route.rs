//! Route templates: `/users/12345/orders/9f1c…` becomes `/users/{id}/orders/{id}`, so that
//! differences, latencies and noise are grouped per endpoint rather than per URL.
//!
//! Explicit templates from the rules file are tried first, in order. Otherwise every path
//! segment that looks like an identifier becomes `{id}`: all digits; a UUID; 8 or more hex
//! characters with at least one digit; or a long opaque token (16 or more URL-safe characters
//! mixing letters and digits, or 24 or more mixing upper and lower case). The number of distinct
//! routes is capped; past the cap new routes are grouped as [`OTHER_ROUTE`] and counted.

use std::collections::{BTreeMap, BTreeSet};

use shadowdiff_format::pointer::PathPattern;

use crate::error::{Error, Result};
use crate::route_key::{KeyOutcome, KeyRule, SEPARATOR};
use crate::rules::RoutesSection;

/// The route that collects paths past the cap on distinct routes.
pub const OTHER_ROUTE: &str = "{other}";
/// How many distinct routes are kept by default.
pub const DEFAULT_MAX_ROUTES: usize = 500;
/// How many example paths of the overflow are kept.
const OVERFLOW_EXAMPLES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
enum TSeg {
    Literal(String),
    /// `{name}`: exactly one segment.
    Param,
    /// `{*name}` or `**`, last: any number of segments.
    Rest,
}

/// An explicit route template: `/users/{id}/avatar`, `/static/{*path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate {
    source: String,
    segs: Vec<TSeg>,
}

impl RouteTemplate {
    pub fn new(template: &str) -> Result<Self> {
        let err = |reason: &str| Error::RouteTemplate { template: template.to_owned(), reason: reason.to_owned() };
        let Some(rest) = template.strip_prefix('/') else {
            return Err(err("a route template must start with `/`"));
        };
        let parts: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
        let mut segs = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let seg = if *part == "**" || (part.starts_with("{*") && part.ends_with('}')) {
                if i + 1 != parts.len() {
                    return Err(err("a rest segment (`**` or `{*name}`) must be last"));
                }
                TSeg::Rest
            } else if part.starts_with('{') && part.ends_with('}') && part.len() > 2 {
                TSeg::Param
            } else if part.contains(['{', '}']) {
                return Err(err("a parameter must be a whole segment, like `{id}`"));
            } else {
                TSeg::Literal((*part).to_owned())
            };
            segs.push(seg);
        }
        Ok(Self { source: template.to_owned(), segs })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `path` (no query string) fits this template.
    pub fn matches(&self, path: &str) -> bool {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let parts: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
        let mut i = 0;
        for seg in &self.segs {
            match seg {
                TSeg::Rest => return true,
                TSeg::Param => {
                    if parts.get(i).is_none_or(|p| p.is_empty()) {
                        return false;
                    }
                }
                TSeg::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return false;
                    }
                }
            }
            i += 1;
        }
        i == parts.len()
    }
}

/// Route settings from the rules file.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRules {
    pub templates: Vec<RouteTemplate>,
    pub max_routes: usize,
    /// `[[routes.key]]`: route keys read from requests, per path ([`crate::route_key`]).
    pub keys: Vec<KeyRule>,
}

impl Default for RouteRules {
    fn default() -> Self {
        Self { templates: Vec::new(), max_routes: DEFAULT_MAX_ROUTES, keys: Vec::new() }
    }
}

impl RouteRules {
    pub(crate) fn from_section(s: &RoutesSection) -> Result<Self> {
        Ok(Self {
            templates: s.templates.iter().map(|t| RouteTemplate::new(t)).collect::<Result<_>>()?,
            max_routes: s.max_routes.unwrap_or(DEFAULT_MAX_ROUTES),
            keys: s
                .key
                .iter()
                .enumerate()
                .map(|(i, k)| KeyRule::new(&format!("routes.key[{i}]"), &k.path, &k.from, k.header.as_deref()))
                .collect::<Result<_>>()?,
        })
    }

    /// The template of `path` (any query string is dropped), uncapped: the first explicit
    /// template that matches, else the heuristic one.
    pub fn template(&self, path: &str) -> String {
        let path = path.split(['?', '#']).next().unwrap_or("");
        match self.templates.iter().find(|t| t.matches(path)) {
            Some(t) => t.source.clone(),
            None => template_path(path),
        }
    }
}

/// Whether a route pattern (a rule's or an endpoint override's `route`) matches `route`. A keyed
/// route (`/graphql#GetUser`) is matched by patterns of the whole route and by patterns of its
/// path (`/graphql`).
pub fn route_matches(pattern: &PathPattern, route: &str) -> bool {
    pattern.matches_route(route) || route.split_once(SEPARATOR).is_some_and(|(path, _)| pattern.matches_route(path))
}

/// The heuristic template of `path`: identifier-like segments become `{id}`.
pub fn template_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_id_segment(seg) { "{id}" } else { seg });
    }
    out
}

/// Whether a path segment looks like an identifier rather than a fixed part of the route.
pub fn is_id_segment(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    let digits = seg.bytes().filter(u8::is_ascii_digit).count();
    if digits == seg.len() {
        return true;
    }
    if is_uuid(seg) {
        return true;
    }
    if seg.len() >= 8 && digits > 0 && seg.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    is_opaque_token(seg)
}

/// `8-4-4-4-12` hex digits.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A long random-looking token: URL-safe characters only, and either 16+ characters mixing
/// letters and digits (with at least three letter/digit alternations, which words and slugs such
/// as `release-2024` lack), or 24+ characters whose letters are at least a quarter upper and a
/// quarter lower case (random base64, but not `camelCaseNames`).
pub fn is_opaque_token(s: &str) -> bool {
    if s.len() < 16 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'=')) {
        return false;
    }
    let mut switches = 0;
    let mut last: Option<bool> = None; // Some(true) = digit
    let (mut upper, mut lower) = (0usize, 0usize);
    for b in s.bytes() {
        upper += usize::from(b.is_ascii_uppercase());
        lower += usize::from(b.is_ascii_lowercase());
        if b.is_ascii_alphanumeric() {
            let digit = b.is_ascii_digit();
            if last.is_some_and(|l| l != digit) {
                switches += 1;
            }
            last = Some(digit);
        }
    }
    let letters = upper + lower;
    switches >= 3 || (s.len() >= 24 && upper * 4 >= letters && lower * 4 >= letters && !s.contains(['-', '.']))
}

/// Maps request paths to route templates over a whole run in one pass, capping how many distinct
/// routes it hands out: the streaming cap that [`RouteRecorder`] and [`settle`] reproduce over
/// shards. Kept as the tests' oracle for them.
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct RouteTemplater {
    rules: RouteRules,
    routes: BTreeMap<String, u64>,
    overflow: u64,
    overflow_examples: BTreeSet<String>,
}

pub use shadowdiff_format::verdict::Overflow;

#[cfg(test)]
impl RouteTemplater {
    pub fn new(rules: RouteRules) -> Self {
        Self { rules, routes: BTreeMap::new(), overflow: 0, overflow_examples: BTreeSet::new() }
    }

    /// The route of `path`. Explicit templates are always kept; a heuristic route that would
    /// exceed `max_routes` distinct routes becomes [`OTHER_ROUTE`].
    pub fn route(&mut self, path: &str) -> String {
        self.route_keyed(path, None)
    }

    /// The route of a request whose key rules gave `key`: `TEMPLATE#KEY`. Keys are the client's
    /// text, so a keyed route is capped like a heuristic one even on an explicit template.
    pub fn route_keyed(&mut self, path: &str, key: Option<&KeyOutcome>) -> String {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let (mut template, mut explicit) = match self.rules.templates.iter().find(|t| t.matches(path)) {
            Some(t) => (t.source.clone(), true),
            None => (template_path(path), false),
        };
        if let Some(KeyOutcome::Key(key)) = key {
            template = format!("{template}{SEPARATOR}{key}");
            explicit = false;
        }
        if let Some(n) = self.routes.get_mut(&template) {
            *n += 1;
            return template;
        }
        let heuristic_routes = self.routes.len();
        if explicit || heuristic_routes < self.rules.max_routes {
            self.routes.insert(template.clone(), 1);
            return template;
        }
        self.overflow += 1;
        if self.overflow_examples.len() < OVERFLOW_EXAMPLES {
            self.overflow_examples.insert(template);
        }
        OTHER_ROUTE.to_owned()
    }

    /// Requests seen per route (excluding the overflow).
    pub fn routes(&self) -> &BTreeMap<String, u64> {
        &self.routes
    }

    pub fn overflow(&self) -> Overflow {
        Overflow { requests: self.overflow, examples: self.overflow_examples.iter().cloned().collect() }
    }
}

/// A route met while mapping a shard: its template, where it was first met (the pair's position
/// among the kept pairs), whether an explicit template named it, and how many requests it had.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeenRoute {
    pub route: String,
    pub first: u64,
    pub explicit: bool,
    pub requests: u64,
}

/// Maps request paths to uncapped route templates for one shard, remembering where each was
/// first met, so that the cap on distinct routes can be settled over all shards ([`settle`])
/// exactly as the streaming cap of [`RouteTemplater::route_keyed`] settles it over one input.
/// Past `safety_cap` distinct routes a shard groups new heuristic routes as [`OTHER_ROUTE`]
/// itself, so that a hostile input cannot grow its memory without bound.
#[derive(Debug, Clone)]
pub struct RouteRecorder {
    rules: RouteRules,
    safety_cap: usize,
    seen: BTreeMap<String, SeenRoute>,
}

impl RouteRecorder {
    /// A shard keeps at most this many times `max_routes` distinct routes (at least 10,000).
    pub const SAFETY_FACTOR: usize = 100;

    pub fn new(rules: RouteRules) -> Self {
        let safety_cap = rules.max_routes.saturating_mul(Self::SAFETY_FACTOR).max(10_000);
        Self { rules, safety_cap, seen: BTreeMap::new() }
    }

    /// The uncapped route of the pair at position `index` whose key rules gave `key`.
    pub fn route_keyed(&mut self, path: &str, key: Option<&KeyOutcome>, index: u64) -> String {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let (mut template, mut explicit) = match self.rules.templates.iter().find(|t| t.matches(path)) {
            Some(t) => (t.source.clone(), true),
            None => (template_path(path), false),
        };
        if let Some(KeyOutcome::Key(key)) = key {
            template = format!("{template}{SEPARATOR}{key}");
            explicit = false;
        }
        if let Some(seen) = self.seen.get_mut(&template) {
            seen.requests += 1;
            return template;
        }
        if !explicit && self.seen.len() >= self.safety_cap {
            template = OTHER_ROUTE.to_owned();
            if let Some(seen) = self.seen.get_mut(&template) {
                seen.requests += 1;
                return template;
            }
        }
        self.seen.insert(template.clone(), SeenRoute { route: template.clone(), first: index, explicit, requests: 1 });
        template
    }

    /// Every route met, in no particular order.
    pub fn into_seen(self) -> Vec<SeenRoute> {
        self.seen.into_values().collect()
    }
}

/// The cap on distinct routes settled over every shard's routes (positions already made global):
/// in order of first position, explicit templates always keep their names and the first
/// `max_routes` routes do; the rest become [`OTHER_ROUTE`]. Returns the renamed routes and the
/// overflow, as the streaming cap would have counted them over the same input in one pass.
pub fn settle(mut seen: Vec<SeenRoute>, max_routes: usize) -> (BTreeMap<String, String>, Overflow) {
    // One route met in several shards: its first position is the smallest, its requests add up.
    seen.sort_by(|a, b| a.route.cmp(&b.route).then(a.first.cmp(&b.first)));
    let mut merged: Vec<SeenRoute> = Vec::with_capacity(seen.len());
    for s in seen {
        match merged.last_mut() {
            Some(last) if last.route == s.route => last.requests += s.requests,
            _ => merged.push(s),
        }
    }
    merged.sort_by_key(|s| s.first);
    let (mut kept, mut renamed) = (0usize, BTreeMap::new());
    let (mut requests, mut examples) = (0u64, BTreeSet::new());
    for s in merged {
        if s.route == OTHER_ROUTE {
            // A shard past its safety cap grouped these already.
            requests += s.requests;
        } else if s.explicit || kept < max_routes {
            kept += 1;
        } else {
            requests += s.requests;
            if examples.len() < OVERFLOW_EXAMPLES {
                examples.insert(s.route.clone());
            }
            renamed.insert(s.route, OTHER_ROUTE.to_owned());
        }
    }
    (renamed, Overflow { requests, examples: examples.into_iter().collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristic_segments() {
        let cases: &[(&str, &str)] = &[
            ("/users/12345", "/users/{id}"),
            ("/users/12345/orders/42", "/users/{id}/orders/{id}"),
            ("/u/123e4567-e89b-12d3-a456-426614174000", "/u/{id}"),
            ("/u/123E4567-E89B-12D3-A456-426614174000/x", "/u/{id}/x"),
            ("/commits/9f1c2ab3", "/commits/{id}"),
            ("/commits/9f1c2ab3d4e5f60718293a4b5c6d7e8f90a1b2c3", "/commits/{id}"),
            ("/objects/507f1f77bcf86cd799439011", "/objects/{id}"),
            ("/hex/deadbeef", "/hex/deadbeef"),
            ("/hex/abc123", "/hex/abc123"),
            ("/t/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/t/{id}"),
            ("/t/eyJhbGciOiJIUzI1NiJ9", "/t/{id}"),
            ("/t/AbCdEfGhIjKlMnOpQrStUvWxYz", "/t/{id}"),
            ("/blog/release-notes-2024", "/blog/release-notes-2024"),
            ("/v2/users", "/v2/users"),
            ("/api/v1/health", "/api/v1/health"),
            ("/search?q=123", "/search"),
            ("/", "/"),
            ("", "/"),
            ("/users/12345/", "/users/{id}/"),
            ("/products/iphone-15-pro-max", "/products/iphone-15-pro-max"),
            ("/rpc/getUserPreferencesByAccountName", "/rpc/getUserPreferencesByAccountName"),
        ];
        for (path, want) in cases {
            assert_eq!(template_path(path), *want, "{path}");
        }
    }

    #[test]
    fn explicit_templates_win() {
        let rules = RouteRules {
            templates: vec![
                RouteTemplate::new("/users/{user}/avatar").unwrap(),
                RouteTemplate::new("/static/{*path}").unwrap(),
                RouteTemplate::new("/v/**").unwrap(),
            ],
            max_routes: 10,
            keys: Vec::new(),
        };
        assert_eq!(rules.template("/users/bob/avatar"), "/users/{user}/avatar");
        assert_eq!(rules.template("/users/bob"), "/users/bob");
        assert_eq!(rules.template("/static/css/site.css"), "/static/{*path}");
        assert_eq!(rules.template("/static"), "/static/{*path}");
        assert_eq!(rules.template("/v/1/2"), "/v/**");
        assert_eq!(rules.template("/users/42/photos"), "/users/{id}/photos");
    }

    #[test]
    fn bad_templates_are_errors() {
        assert!(RouteTemplate::new("users").is_err());
        assert!(RouteTemplate::new("/a/**/b").is_err());
        assert!(RouteTemplate::new("/a/x{id}").is_err());
    }

    #[test]
    fn cap_groups_overflow() {
        let mut t = RouteTemplater::new(RouteRules {
            templates: vec![RouteTemplate::new("/pinned/{x}").unwrap()],
            max_routes: 2,
            keys: Vec::new(),
        });
        assert_eq!(t.route("/a/1"), "/a/{id}");
        assert_eq!(t.route("/b"), "/b");
        assert_eq!(t.route("/a/2"), "/a/{id}");
        assert_eq!(t.route("/c"), OTHER_ROUTE);
        assert_eq!(t.route("/d"), OTHER_ROUTE);
        assert_eq!(t.route("/pinned/z"), "/pinned/{x}", "explicit templates are never capped");
        assert_eq!(t.routes().get("/a/{id}"), Some(&2));
        assert_eq!(t.overflow(), Overflow { requests: 2, examples: vec!["/c".into(), "/d".into()] });
        let key = KeyOutcome::Key("GetUser".into());
        assert_eq!(t.route_keyed("/pinned/z", Some(&key)), OTHER_ROUTE, "keys are the client's text: capped");
    }

    #[test]
    fn keyed_routes() {
        let mut t = RouteTemplater::new(RouteRules::default());
        let key = KeyOutcome::Key("GetUser".into());
        assert_eq!(t.route_keyed("/graphql", Some(&key)), "/graphql#GetUser");
        assert_eq!(t.route_keyed("/v1/42/graphql", Some(&key)), "/v1/{id}/graphql#GetUser");
        assert_eq!(t.route_keyed("/graphql", Some(&KeyOutcome::Missing("x"))), "/graphql");
        let p = |s: &str| PathPattern::new(s).unwrap();
        assert!(route_matches(&p("/graphql"), "/graphql#GetUser"));
        assert!(route_matches(&p("/graphql#GetUser"), "/graphql#GetUser"));
        assert!(!route_matches(&p("/graphql#GetCart"), "/graphql#GetUser"));
        assert!(route_matches(&p("/v1/*/graphql"), "/v1/{id}/graphql#GetUser"));
        assert!(!route_matches(&p("/rest"), "/graphql#GetUser"));
    }

    /// Settling recorded routes over any split gives the streaming cap's names and overflow.
    #[test]
    fn settled_cap_is_the_streaming_cap_however_split() {
        let rules =
            RouteRules { templates: vec![RouteTemplate::new("/pinned/{x}").unwrap()], max_routes: 3, keys: Vec::new() };
        let paths: Vec<String> = (0..400u64)
            .map(|i| match (i * 7919) % 13 {
                0 => format!("/pinned/{i}"),
                k => format!("/r{}/{}", (k * i) % 9, i),
            })
            .collect();
        let mut streaming = RouteTemplater::new(rules.clone());
        let want: Vec<String> = paths.iter().map(|p| streaming.route(p)).collect();
        for shards in [1usize, 2, 3, 7, 400, 401] {
            let size = paths.len().div_ceil(shards).max(1);
            let mut seen = Vec::new();
            let mut got = Vec::new();
            for (n, chunk) in paths.chunks(size).enumerate() {
                let mut r = RouteRecorder::new(rules.clone());
                for (i, p) in chunk.iter().enumerate() {
                    got.push(r.route_keyed(p, None, (n * size + i) as u64));
                }
                seen.extend(r.into_seen());
            }
            let (renamed, overflow) = settle(seen, rules.max_routes);
            let got: Vec<String> = got.into_iter().map(|r| renamed.get(&r).cloned().unwrap_or(r)).collect();
            assert_eq!(got, want, "{shards} shards");
            assert_eq!(overflow, streaming.overflow(), "{shards} shards");
        }
    }
}
