//! Helpers over `serde_json::Value` that never recurse, so a document of any depth is safe:
//! equality, a canonical hash, and type names.

use serde_json::Value;

/// The JSON type name of `v`: `null`, `boolean`, `number`, `string`, `array` or `object`.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Equal scalars, decided without looking deeper. `None` when either side is a container.
#[inline]
pub(crate) fn scalar_eq(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => None,
        _ => Some(a == b),
    }
}

/// `a == b` with the same meaning as `serde_json`'s (object key order does not matter, `1` and
/// `1.0` differ), but with an explicit stack instead of recursion.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    if let Some(eq) = scalar_eq(a, b) {
        return eq;
    }
    let mut stack = vec![(a, b)];
    while let Some((a, b)) = stack.pop() {
        match (a, b) {
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                for (p, q) in x.iter().zip(y) {
                    match scalar_eq(p, q) {
                        Some(true) => {}
                        Some(false) => return false,
                        None => stack.push((p, q)),
                    }
                }
            }
            (Value::Object(x), Value::Object(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                for (k, p) in x {
                    let Some(q) = y.get(k) else { return false };
                    match scalar_eq(p, q) {
                        Some(true) => {}
                        Some(false) => return false,
                        None => stack.push((p, q)),
                    }
                }
            }
            _ => {
                if a != b {
                    return false;
                }
            }
        }
    }
    true
}

/// A 64-bit hash of `v` that is equal for [`json_eq`]-equal values (object key order does not
/// matter). Used to align array elements; equal hashes are confirmed with [`json_eq`].
pub(crate) fn canonical_hash(v: &Value, buf: &mut Vec<u8>) -> u64 {
    enum Item<'v> {
        Value(&'v Value),
        Key(&'v str),
    }
    buf.clear();
    let mut stack = vec![Item::Value(v)];
    while let Some(item) = stack.pop() {
        let v = match item {
            Item::Key(k) => {
                put_str(buf, b'k', k);
                continue;
            }
            Item::Value(v) => v,
        };
        match v {
            Value::Null => buf.push(b'n'),
            Value::Bool(true) => buf.push(b't'),
            Value::Bool(false) => buf.push(b'f'),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    buf.push(b'u');
                    buf.extend_from_slice(&u.to_le_bytes());
                } else if let Some(i) = n.as_i64() {
                    buf.push(b'i');
                    buf.extend_from_slice(&i.to_le_bytes());
                } else {
                    let f = n.as_f64().unwrap_or(0.0);
                    let f = if f == 0.0 { 0.0 } else { f }; // -0.0 == 0.0
                    buf.push(b'd');
                    buf.extend_from_slice(&f.to_bits().to_le_bytes());
                }
            }
            Value::String(s) => put_str(buf, b's', s),
            Value::Array(a) => {
                buf.push(b'a');
                buf.extend_from_slice(&(a.len() as u64).to_le_bytes());
                stack.extend(a.iter().rev().map(Item::Value));
            }
            Value::Object(o) => {
                buf.push(b'o');
                buf.extend_from_slice(&(o.len() as u64).to_le_bytes());
                let mut entries: Vec<(&String, &Value)> = o.iter().collect();
                entries.sort_unstable_by(|x, y| x.0.cmp(y.0));
                for (k, v) in entries.into_iter().rev() {
                    stack.push(Item::Value(v));
                    stack.push(Item::Key(k));
                }
            }
        }
    }
    xxhash_rust::xxh3::xxh3_64(buf)
}

fn put_str(buf: &mut Vec<u8>, tag: u8, s: &str) {
    buf.push(tag);
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn eq_matches_serde() {
        let cases = [
            (json!({"a": 1, "b": [1, 2, {"c": null}]}), json!({"b": [1, 2, {"c": null}], "a": 1})),
            (json!([1, 2]), json!([1, 2, 3])),
            (json!({"a": 1}), json!({"a": 1.0})),
            (json!({"a": {"b": "x"}}), json!({"a": {"b": "y"}})),
            (json!({"a": 1}), json!({"b": 1})),
            (json!(null), json!(false)),
            (json!([[[]]]), json!([[[]]])),
        ];
        for (a, b) in cases {
            assert_eq!(json_eq(&a, &b), a == b, "{a} vs {b}");
            let mut buf = Vec::new();
            if a == b {
                assert_eq!(canonical_hash(&a, &mut buf), canonical_hash(&b, &mut buf));
            } else {
                assert_ne!(canonical_hash(&a, &mut buf), canonical_hash(&b, &mut buf));
            }
        }
    }

    #[test]
    fn hash_separates_nesting() {
        let mut buf = Vec::new();
        let a = canonical_hash(&json!([["a"], "b"]), &mut buf);
        let b = canonical_hash(&json!([["a", "b"]]), &mut buf);
        assert_ne!(a, b);
    }
}
