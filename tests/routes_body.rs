//! Endpoints named in the request body: GraphQL and JSON-RPC POSTs recorded by GoReplay (a `.gor`
//! file with each request's original response and its replayed one, written here and imported
//! by `shadowdiff import gor`), analyzed with `[[routes.key]]` rules. Each operation is its own
//! route; a regression in one operation fails that route only; a body whose key cannot be read
//! keeps the plain route and is counted.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{run, stderr, stdout};

/// Pairs of each operation: enough for every check to reach its minimum sample.
const EACH: usize = 60;

fn http_request(path: &str, content_type: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: api.example\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn http_response(body: &Value) -> String {
    let body = body.to_string();
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// One request with its recorded (baseline) and replayed (canary) response, as GoReplay writes
/// them: payload types 1, 2 and 3.
fn payloads(id: usize, request: String, baseline: &Value, canary: &Value) -> [String; 3] {
    let t = 1_763_633_730_000_000_000u64 + id as u64 * 1_000_000;
    [
        format!("1 r{id} {t} 0\n{request}"),
        format!("2 r{id} {} 1500000\n{}", t + 1_500_000, http_response(baseline)),
        format!("3 r{id} {} 1600000\n{}", t + 1_600_000, http_response(canary)),
    ]
}

fn write_gor(path: &Path) {
    let mut all = Vec::new();
    let mut id = 0;
    let mut add = |request: String, baseline: Value, canary: Value| {
        all.extend(payloads(id, request, &baseline, &canary));
        id += 1;
    };
    for i in 0..EACH {
        // GetUser: named by operationName. The canary dropped `email`: a breaking change.
        let body = json!({"operationName": "GetUser", "query": "query GetUser($id: ID!) { user(id: $id) { id name email } }", "variables": {"id": i}});
        let user =
            json!({"data": {"user": {"id": i, "name": format!("user {i}"), "email": format!("u{i}@example.invalid")}}});
        let mut dropped = user.clone();
        dropped["data"]["user"].as_object_mut().unwrap().remove("email");
        add(http_request("/graphql", "application/json", &body.to_string()), user, dropped);

        // GetCart: named only in the query document, after a fragment. Unchanged.
        let body =
            json!({"query": "fragment Line on Item { sku qty } query GetCart { cart { items { ...Line } total } }"});
        let cart = json!({"data": {"cart": {"items": [{"sku": "a", "qty": i % 3}], "total": i}}});
        add(http_request("/graphql", "application/json", &body.to_string()), cart.clone(), cart);

        // An anonymous query. Unchanged.
        let ping = json!({"data": {"ping": "pong"}});
        add(http_request("/graphql", "application/json", r#"{"query":"{ ping }"}"#), ping.clone(), ping);

        // JSON-RPC: a call and a batch. Unchanged.
        let body = json!({"jsonrpc": "2.0", "id": i, "method": "getBalance", "params": [format!("acct{i}")]});
        let balance = json!({"jsonrpc": "2.0", "id": i, "result": i * 10});
        add(http_request("/rpc", "application/json", &body.to_string()), balance.clone(), balance);
        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"getBlock"},{"jsonrpc":"2.0","id":2,"method":"getBalance"}]"#;
        let answers =
            json!([{"jsonrpc": "2.0", "id": 1, "result": {"height": i}}, {"jsonrpc": "2.0", "id": 2, "result": 0}]);
        add(http_request("/rpc", "application/json", batch), answers.clone(), answers);
    }
    // GraphQL sent form-encoded: no key can be read, the plain route is kept and counted.
    for _ in 0..3 {
        let ok = json!({"data": {"ping": "pong"}});
        add(http_request("/graphql", "application/x-www-form-urlencoded", "query=%7B+ping+%7D"), ok.clone(), ok);
    }
    std::fs::write(path, all.join("\n🐵🙈🙉\n")).expect("write the .gor file");
}

const RULES: &str = r#"
[[routes.key]]
path = "/graphql"
from = "graphql"

[[routes.key]]
path = "/rpc"
from = "jsonrpc"
"#;

fn analyze(input: &Path, out: &Path, policy: Option<&Path>) -> (Option<i32>, Value, String) {
    let mut args = vec!["analyze", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
    if let Some(p) = policy {
        args.extend(["--policy", p.to_str().unwrap()]);
    }
    let o = run(&args);
    let verdict = std::fs::read_to_string(out.join("verdict.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (o.status.code(), verdict, format!("{}\n{}", stdout(&o), stderr(&o)))
}

fn check<'v>(verdict: &'v Value, id: &str) -> &'v Value {
    verdict["checks"].as_array().and_then(|c| c.iter().find(|c| c["id"] == id)).unwrap_or(&Value::Null)
}

#[test]
fn each_operation_is_its_own_route_and_a_regression_fails_only_its_route() {
    let d = tempfile::tempdir().unwrap();
    let gor = d.path().join("api.gor");
    write_gor(&gor);
    let pairs = d.path().join("pairs");
    let o = run(&["import", "gor", gor.to_str().unwrap(), "--out", pairs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    let policy = d.path().join("policy.toml");
    std::fs::write(&policy, RULES).unwrap();
    let (code, v, said) = analyze(&pairs, &d.path().join("out"), Some(&policy));
    assert_eq!(code, Some(1), "{said}\n{v:#}");

    let mut routes: Vec<(String, u64)> = v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["route"].as_str().unwrap().to_owned(), e["pairs"].as_u64().unwrap()))
        .collect();
    routes.sort();
    let n = EACH as u64;
    assert_eq!(
        routes,
        vec![
            ("/graphql".to_owned(), 3),
            ("/graphql#(anonymous)".to_owned(), n),
            ("/graphql#GetCart".to_owned(), n),
            ("/graphql#GetUser".to_owned(), n),
            ("/rpc#[getBlock,getBalance]".to_owned(), n),
            ("/rpc#getBalance".to_owned(), n),
        ],
        "{v:#}"
    );

    // The breaking check fails on GetUser, naming the field, and on no other route.
    let breaking = check(&v, "breaking");
    assert_eq!(breaking["status"], "fail", "{breaking:#}");
    let failed: Vec<&str> = breaking["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "fail")
        .map(|e| e["route"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["/graphql#GetUser"], "{breaking:#}");
    assert_eq!(breaking["endpoints"][0]["fields"][0]["field"], "/data/user/email", "{breaking:#}");
    let differing: Vec<&str> = v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["different"].as_u64() != Some(0))
        .map(|e| e["route"].as_str().unwrap())
        .collect();
    assert_eq!(differing, vec!["/graphql#GetUser"], "{v:#}");

    // Keyed and unkeyed requests are counted, with the reason.
    let keys = &v["inputs"]["route_keys"];
    assert_eq!(keys["keyed"], 5 * n, "{keys:#}");
    assert_eq!(
        keys["unkeyed"],
        json!([{"route": "/graphql", "reason": "request body is not JSON", "requests": 3}]),
        "{keys:#}"
    );

    let html = std::fs::read_to_string(d.path().join("out/report.html")).unwrap();
    assert!(
        html.contains("3 requests on paths with a [[routes.key]] rule kept their plain route")
            && html.contains("/graphql: request body is not JSON ×3"),
        "the report says which requests kept their plain route"
    );

    // Without the rules it is one route per path, and the regression is diluted into /graphql.
    let (_, plain, said) = analyze(&pairs, &d.path().join("plain"), None);
    let routes: Vec<&str> =
        plain["endpoints"].as_array().unwrap().iter().map(|e| e["route"].as_str().unwrap()).collect();
    assert_eq!(routes.len(), 2, "{routes:?} {said}");
    assert!(plain["inputs"].get("route_keys").is_none(), "{}", plain["inputs"]);
}

#[test]
fn a_bad_key_rule_is_refused_with_a_sentence_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let gor = d.path().join("api.gor");
    write_gor(&gor);
    let pairs = d.path().join("pairs");
    assert!(run(&["import", "gor", gor.to_str().unwrap(), "--out", pairs.to_str().unwrap()]).status.success());
    let policy = d.path().join("policy.toml");
    std::fs::write(&policy, "[[routes.key]]\npath = \"/graphql\"\nfrom = \"header\"\n").unwrap();
    let (code, _, said) = analyze(&pairs, &d.path().join("out"), Some(&policy));
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("routes.key[0]") && said.contains("header"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "{said}");
}
