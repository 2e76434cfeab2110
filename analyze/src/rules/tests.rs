use serde_json::json;

use super::*;
use crate::json::diff_json;

const FULL: &str = r#"
[defaults]
array_mode = "multiset"
tolerance = { absolute = 0.001 }
max_lcs_len = 500
max_decoded_body = "1MiB"

[[ignore]]
path = "/meta/**"

[[ignore]]
path = "/debug"
route = "/users/*"

[[tolerance]]
path = "/price"
relative = 0.01

[[array]]
path = "/users"
mode = "keyed"
key = "id"

[[array]]
path = "/log"
mode = "list"

[[presence_only]]
path = "/token"

[[type_only]]
path = "/stats"

[[explained]]
path = "/version"
reason = "v2 reports its own version"

[headers]
compare = ["Content-Type", "cache-control"]
ignore = ["x-backend"]
default_ignore = false

[routes]
templates = ["/users/{id}/avatar"]
max_routes = 50
"#;

#[test]
fn parses_every_section() {
    let r = Rules::from_toml(FULL).expect("valid rules");
    assert_eq!(r.array_mode, ArrayMode::Multiset);
    assert_eq!(r.tolerance, Some(Tolerance::absolute(0.001)));
    assert_eq!(r.max_lcs_len, 500);
    assert_eq!(r.max_decoded_body, 1 << 20);
    assert_eq!(Rules::default().max_decoded_body, DEFAULT_MAX_DECODED);
    assert_eq!(Rules::from_toml("[defaults]\nmax_decoded_body = 4096").map(|r| r.max_decoded_body).ok(), Some(4096));
    assert!(Rules::from_toml("[defaults]\nmax_decoded_body = \"lots\"").is_err());
    assert!(Rules::from_toml("[defaults]\nmax_decoded_body = 0").is_err());
    assert_eq!(r.path_rules().len(), 7);
    assert_eq!(r.explained().len(), 1);
    assert!(r.headers.compare.as_ref().is_some_and(|c| c.contains("content-type")));
    assert!(r.headers.ignore.contains("x-backend"));
    assert!(!r.headers.default_ignore);
    assert_eq!(r.routes.max_routes, 50);
    assert_eq!(r.routes.template("/users/7/avatar"), "/users/{id}/avatar");

    let a = json!({"meta": {"t": 1}, "debug": 1, "price": 100.0, "users": [{"id": 1, "n": 1}, {"id": 2}],
        "log": [1, 2], "token": "a", "stats": {"x": 1}, "version": "1", "tags": [1, 2], "n": 1.0});
    let b = json!({"meta": {"t": 2}, "debug": 2, "price": 100.5, "users": [{"id": 2}, {"id": 1, "n": 1}],
        "log": [2, 1], "token": "b", "stats": {"y": 2}, "version": "2", "tags": [2, 1], "n": 1.0005});
    let d = diff_json(&a, &b, &r, Some("/users/{id}"));
    let got: Vec<(&str, Option<&str>)> = d.iter().map(|d| (d.path.as_str(), d.explained.as_deref())).collect();
    assert_eq!(got, vec![("/log/0", None), ("/log/1", None), ("/version", Some("v2 reports its own version"))]);
    let d = diff_json(&a, &b, &r, None);
    assert_eq!(d[0].path, "/debug", "the route-scoped ignore does not apply without a route");
}

#[test]
fn errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("[[ignore]]\npaht = \"/a\"\n", "unknown field `paht`"),
        ("[[ignore]]\nroute = \"/a\"\n", "missing field `path`"),
        ("[defaults]\narray_mode = 3\n", "line 2"),
        ("[nope]\n", "unknown field `nope`"),
        ("[[tolerance]]\npath = \"/a\"\n", "tolerance[0]"),
        ("[[tolerance]]\npath = \"/a\"\nabsolute = -1.0\n", "`absolute` must be a finite number >= 0"),
        ("[[array]]\npath = \"/a\"\nmode = \"keyed\"\n", "array[0]: mode `keyed` needs a `key`"),
        ("[[array]]\npath = \"/a\"\nmode = \"bag\"\n", "unknown array mode `bag`"),
        ("[[ignore]]\npath = \"a\"\n", "invalid path pattern `a`"),
        ("[[explained]]\npath = \"/a\"\nreason = \" \"\n", "explained[0]"),
        ("[routes]\ntemplates = [\"users\"]\n", "invalid route template `users`"),
        ("[defaults]\narray_mode = \"keyed\"\n", "defaults.array_mode"),
    ];
    for (text, want) in cases {
        let err = Rules::from_toml(text).expect_err(text).to_string();
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("shadowdiff-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rules.toml");
    std::fs::write(&path, "[[ignore]]\nbogus = 1\n").unwrap();
    let err = Rules::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("rules.toml") && err.contains("bogus"), "{err}");
    let err = Rules::from_file(&dir.join("missing.toml")).unwrap_err().to_string();
    assert!(err.contains("missing.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_file_is_default() {
    let r = Rules::from_toml("").unwrap();
    assert_eq!(r.array_mode, ArrayMode::List);
    assert!(r.path_rules().is_empty());
}

#[test]
fn route_keys_parse_and_scoped_rules_reach_keyed_routes() {
    let r = Rules::from_toml(
        r#"
[[ignore]]
path = "/extensions/**"
route = "/graphql"

[[ignore]]
path = "/data/user/seen_at"
route = "/graphql#GetUser"

[[routes.key]]
path = "/graphql"
from = "graphql"

[[routes.key]]
path = "/x/**"
from = "header"
header = "X-Op"
"#,
    )
    .unwrap();
    assert_eq!(r.routes.keys.len(), 2);
    assert_eq!(r.routes.keys[1].source, crate::route_key::KeySource::Header("x-op".into()));
    let a = json!({"data": {"user": {"seen_at": 1}}, "extensions": {"cost": 1}});
    let b = json!({"data": {"user": {"seen_at": 2}}, "extensions": {"cost": 2}});
    assert!(diff_json(&a, &b, &r, Some("/graphql#GetUser")).is_empty(), "the path's rule and the operation's");
    let cart: Vec<String> = diff_json(&a, &b, &r, Some("/graphql#GetCart")).into_iter().map(|d| d.path).collect();
    assert_eq!(cart, vec!["/data/user/seen_at"], "only the path's rule");
    let e = Rules::from_toml("[[routes.key]]\npath = \"/g\"\nfrom = \"graphql\"\nheadr = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("headr"), "{e}");
}

#[test]
fn a_descriptor_set_is_read_relative_to_the_rules_file_and_bad_ones_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, "[grpc]\ndescriptor_set = \"sets/shop.pb\"\n").unwrap();
    let err = Rules::from_file(&path).unwrap_err().to_string();
    let wanted = dir.path().join("sets/shop.pb");
    assert_eq!(err, format!("cannot read descriptor set {}", wanted.display()));
    std::fs::create_dir(dir.path().join("sets")).unwrap();
    std::fs::write(&wanted, b"\xff\xff not protobuf").unwrap();
    let err = Rules::from_file(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("invalid descriptor set {}: not a protobuf FileDescriptorSet", wanted.display())));
    let err = Rules::from_toml("[grpc]\ndescriptor = \"x.pb\"\n").unwrap_err().to_string();
    assert!(err.contains("descriptor"), "{err}");
    assert!(Rules::from_toml("").unwrap().grpc_schema.is_none());
}
