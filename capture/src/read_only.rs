//! Whether a POST only reads, judged from its body, for the paths the user listed
//! (`--mirror-graphql`, `--mirror-jsonrpc`): a mirrored write would run twice, so anything that is
//! not provably a read is not mirrored.
//!
//! - **GraphQL** (a JSON body `{"query", "operationName", …}`, a batch of them, or an
//!   `application/graphql` body): the operation that runs must be a `query`. With an
//!   `operationName` that operation is picked; without one, every operation in the document must
//!   be a query. A persisted query sent without its text (`extensions.persistedQuery`) cannot be
//!   read, so it is mirrored only when its operationName or sha256Hash is listed as read-only.
//! - **JSON-RPC** (a call or a batch): every call's `method` must be in the configured list.
//!
//! Documents are parsed by `graphql-parser`, whose nesting limit (50) keeps a hostile body from
//! exhausting the stack; a document it refuses is not mirrored.

use graphql_parser::query::{Definition, OperationDefinition, parse_query};
use serde::Deserialize;

/// Why a body is not a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRead {
    /// The body is not a request of the expected kind (not JSON, no `query` or `method`).
    Unreadable,
    /// A GraphQL `mutation` or `subscription` (or a document that holds one and names none).
    Write,
    /// A persisted query without text that is not listed as read-only.
    UnknownPersisted,
    /// A JSON-RPC method not in the read-only list.
    Method(String),
}

/// One GraphQL request over POST with a JSON body.
#[derive(Debug, Deserialize)]
struct GraphqlRequest {
    #[serde(default)]
    query: Option<String>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<String>,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Debug, Deserialize)]
struct Extensions {
    #[serde(default, rename = "persistedQuery")]
    persisted_query: Option<PersistedQuery>,
}

#[derive(Debug, Deserialize)]
struct PersistedQuery {
    #[serde(default, rename = "sha256Hash")]
    sha256_hash: Option<String>,
}

/// One JSON-RPC call; only its method matters here.
#[derive(Debug, Deserialize)]
struct RpcCall {
    method: String,
}

/// A request or a batch of them (both protocols batch as a JSON array).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrBatch<T> {
    One(T),
    Batch(Vec<T>),
}

impl<T> OneOrBatch<T> {
    /// The requests; `None` for an empty batch, which does nothing worth mirroring.
    fn into_vec(self) -> Option<Vec<T>> {
        match self {
            OneOrBatch::One(t) => Some(vec![t]),
            OneOrBatch::Batch(v) if v.is_empty() => None,
            OneOrBatch::Batch(v) => Some(v),
        }
    }
}

/// Whether a GraphQL POST body only reads. `media_type` is the request's (lower case, no
/// parameters); `persisted` lists the persisted queries known to be read-only.
pub fn graphql(body: &[u8], media_type: &str, persisted: &[String]) -> Result<(), NotRead> {
    if media_type == "application/graphql" {
        let text = std::str::from_utf8(body).map_err(|_| NotRead::Unreadable)?;
        return document_reads(text, None);
    }
    let requests = serde_json::from_slice::<OneOrBatch<GraphqlRequest>>(body)
        .ok()
        .and_then(OneOrBatch::into_vec)
        .ok_or(NotRead::Unreadable)?;
    for r in requests {
        match r.query.as_deref().filter(|q| !q.trim().is_empty()) {
            Some(text) => document_reads(text, r.operation_name.as_deref())?,
            None => {
                let hash = r.extensions.and_then(|e| e.persisted_query).and_then(|p| p.sha256_hash);
                if hash.is_none() {
                    return Err(NotRead::Unreadable);
                }
                let listed = |id: &Option<String>| id.as_ref().is_some_and(|id| persisted.contains(id));
                if !listed(&r.operation_name) && !listed(&hash) {
                    return Err(NotRead::UnknownPersisted);
                }
            }
        }
    }
    Ok(())
}

/// Whether the operation that `text` runs (the one named, or every one when none is) is a query.
fn document_reads(text: &str, operation_name: Option<&str>) -> Result<(), NotRead> {
    let doc = parse_query::<&str>(text).map_err(|_| NotRead::Unreadable)?;
    let operations: Vec<&OperationDefinition<'_, &str>> = doc
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Operation(op) => Some(op),
            Definition::Fragment(_) => None,
        })
        .collect();
    let chosen: Vec<_> = match operation_name.filter(|n| !n.is_empty()) {
        Some(name) => operations.into_iter().filter(|op| name_of(op) == Some(name)).collect(),
        None => operations,
    };
    if chosen.is_empty() {
        return Err(NotRead::Unreadable);
    }
    let reads = |op: &&OperationDefinition<'_, &str>| {
        matches!(op, OperationDefinition::Query(_) | OperationDefinition::SelectionSet(_))
    };
    if chosen.iter().all(reads) { Ok(()) } else { Err(NotRead::Write) }
}

fn name_of<'a>(op: &OperationDefinition<'a, &'a str>) -> Option<&'a str> {
    match op {
        OperationDefinition::Query(q) => q.name,
        OperationDefinition::Mutation(m) => m.name,
        OperationDefinition::Subscription(s) => s.name,
        OperationDefinition::SelectionSet(_) => None,
    }
}

/// Whether a JSON-RPC POST body (a call or a batch) calls only `methods`.
pub fn jsonrpc(body: &[u8], methods: &[String]) -> Result<(), NotRead> {
    let calls = serde_json::from_slice::<OneOrBatch<RpcCall>>(body)
        .ok()
        .and_then(OneOrBatch::into_vec)
        .ok_or(NotRead::Unreadable)?;
    match calls.into_iter().find(|c| !methods.contains(&c.method)) {
        Some(c) => Err(NotRead::Method(c.method)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = "application/json";

    fn gql(body: &str) -> Result<(), NotRead> {
        graphql(body.as_bytes(), JSON, &["ListedOp".to_owned(), "abc123".to_owned()])
    }

    #[test]
    fn graphql_queries_read_and_mutations_write() {
        assert_eq!(gql(r#"{"query":"{ user(id: 1) { name } }"}"#), Ok(()));
        assert_eq!(gql(r#"{"query":"query GetUser($id: ID = 1) { user(id: $id) { name } }"}"#), Ok(()));
        assert_eq!(gql(r#"{"query":"mutation { deleteUser(id: 1) }"}"#), Err(NotRead::Write));
        assert_eq!(gql(r#"{"query":"subscription { events { id } }"}"#), Err(NotRead::Write));
        // A comment or a string that says "mutation" does not make a query a write, and a
        // keyword hidden in a string does not make a write a query.
        assert_eq!(gql(r##"{"query":"# mutation\nquery Q { a(s: \"mutation {\") }"}"##), Ok(()));
        assert_eq!(gql(r#"{"query":"mutation M { a(s: \"query\") }"}"#), Err(NotRead::Write));
        // Fragments are not operations.
        assert_eq!(gql(r#"{"query":"query Q { ...F } fragment F on User { id }"}"#), Ok(()));
    }

    #[test]
    fn the_operation_name_picks_the_operation() {
        let doc = "query Read { a } mutation Write { b }";
        let with = |name: &str| gql(&serde_json::json!({"query": doc, "operationName": name}).to_string());
        assert_eq!(with("Read"), Ok(()));
        assert_eq!(with("Write"), Err(NotRead::Write));
        assert_eq!(with("Missing"), Err(NotRead::Unreadable));
        // No name: every operation must read.
        assert_eq!(gql(&serde_json::json!({"query": doc}).to_string()), Err(NotRead::Write));
        assert_eq!(gql(&serde_json::json!({"query": doc, "operationName": null}).to_string()), Err(NotRead::Write));
    }

    #[test]
    fn batches_persisted_queries_and_bad_bodies() {
        assert_eq!(gql(r#"[{"query":"{ a }"},{"query":"query B { b }"}]"#), Ok(()));
        assert_eq!(gql(r#"[{"query":"{ a }"},{"query":"mutation { b }"}]"#), Err(NotRead::Write));
        assert_eq!(gql("[]"), Err(NotRead::Unreadable));
        let persisted = |name: &str, hash: &str| {
            gql(&serde_json::json!({"operationName": name, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}})
                .to_string())
        };
        assert_eq!(persisted("ListedOp", "zzz"), Ok(()));
        assert_eq!(persisted("Other", "abc123"), Ok(()));
        assert_eq!(persisted("Other", "zzz"), Err(NotRead::UnknownPersisted));
        for bad in
            ["", "not json", "{}", r#"{"query":"{ unclosed"}"#, r#"{"query": 5}"#, r#"{"query":"type T { a: Int }"}"#]
        {
            assert_eq!(gql(bad), Err(NotRead::Unreadable), "{bad}");
        }
        // Nesting past the parser's limit is refused, not a stack overflow.
        let deep = format!("{{\"query\":\"{}{}\"}}", "{ a ".repeat(10_000), "}".repeat(10_000));
        assert_eq!(gql(&deep), Err(NotRead::Unreadable));
        assert_eq!(graphql(b"query Q { a }", "application/graphql", &[]), Ok(()));
        assert_eq!(graphql(b"mutation { a }", "application/graphql", &[]), Err(NotRead::Write));
    }

    #[test]
    fn jsonrpc_methods_must_all_be_listed() {
        let methods = ["eth_getBalance".to_owned(), "eth_call".to_owned()];
        let rpc = |body: &str| jsonrpc(body.as_bytes(), &methods);
        assert_eq!(rpc(r#"{"jsonrpc":"2.0","method":"eth_call","params":[],"id":1}"#), Ok(()));
        assert_eq!(rpc(r#"[{"method":"eth_call","id":1},{"method":"eth_getBalance","id":2}]"#), Ok(()));
        assert_eq!(
            rpc(r#"[{"method":"eth_call","id":1},{"method":"eth_sendTransaction","id":2}]"#),
            Err(NotRead::Method("eth_sendTransaction".into()))
        );
        for bad in ["[]", "{}", r#"{"method": 1}"#, "garbage", r#"[{"method":"eth_call"}, 5]"#] {
            assert_eq!(rpc(bad), Err(NotRead::Unreadable), "{bad}");
        }
    }
}
