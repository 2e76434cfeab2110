//! Deterministic ~1 KB JSON response pairs for benchmarks: an API-like document (a user with an
//! address, tags and orders with line items) and a canary copy that is either identical or has
//! a few differences of the kinds real canaries show. Shared by the criterion bench and the
//! `diff_batch` example that `bench/diff.sh` times against Python's deepdiff.

#![allow(dead_code)]

use serde_json::{Map, Value, json};

/// SplitMix64: tiny, seedable, good enough to vary documents.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn word(&mut self) -> String {
        const WORDS: &[&str] =
            &["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
        WORDS[self.below(WORDS.len() as u64) as usize].to_owned()
    }

    fn money(&mut self) -> f64 {
        (self.below(100_000) as f64) / 100.0 + 0.01
    }
}

fn distinct_words(rng: &mut Rng, n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(n);
    while out.len() < n {
        let w = rng.word();
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// One baseline document of roughly 1 KB.
pub fn document(rng: &mut Rng) -> Value {
    let orders: Vec<Value> = (0..4)
        .map(|o| {
            let items: Vec<Value> = (0..2)
                .map(|i| json!({"sku": format!("SKU-{}-{i}", rng.below(10_000)), "qty": rng.below(5) + 1, "price": rng.money()}))
                .collect();
            json!({
                "id": rng.below(1_000_000),
                "status": (["placed", "shipped", "delivered"][o % 3]),
                "total": rng.money(),
                "items": items,
            })
        })
        .collect();
    json!({
        "id": rng.below(1_000_000_000),
        "name": format!("{} {}", rng.word(), rng.word()),
        "email": format!("{}.{}@example.com", rng.word(), rng.below(1000)),
        "active": rng.below(2) == 0,
        "created_at": format!("2024-0{}-1{}T12:34:56Z", rng.below(9) + 1, rng.below(9)),
        "score": rng.money(),
        "address": {"street": format!("{} {} Street", rng.below(999), rng.word()), "city": rng.word(), "zip": format!("{:05}", rng.below(99_999)), "country": "NL"},
        // Distinct, so that removing one is unambiguous: with duplicates (`[x, x]` to `[x]`) either
        // index is a correct answer and tools legitimately differ on which they report.
        "tags": distinct_words(rng, 3),
        "preferences": {"newsletter": true, "theme": "dark", "language": "en"},
        "orders": orders,
        "links": {"self": "/users/42", "orders": "/users/42/orders"},
    })
}

/// A canary copy of `doc` with `edits` differences: a value change, a type change, an added or
/// removed field, or an array element removed or added.
pub fn mutate(doc: &Value, rng: &mut Rng, edits: usize) -> Value {
    let mut out = doc.clone();
    for _ in 0..edits {
        let Some(root) = out.as_object_mut() else { break };
        match rng.below(7) {
            0 => {
                root.insert("score".into(), json!(rng.money()));
            }
            1 => {
                root.insert("active".into(), json!("yes"));
            }
            2 => {
                root.insert(format!("new_field_{}", rng.below(3)), json!({"enabled": true}));
            }
            3 => {
                root.remove("email");
            }
            4 => {
                if let Some(Value::Array(tags)) = root.get_mut("tags")
                    && !tags.is_empty()
                {
                    tags.remove(0);
                }
            }
            5 => {
                if let Some(Value::Array(orders)) = root.get_mut("orders")
                    && let Some(Value::Object(o)) = orders.get_mut(1)
                {
                    o.insert("status".into(), json!("cancelled"));
                }
            }
            _ => {
                if let Some(Value::Object(a)) = root.get_mut("address") {
                    a.insert("zip".into(), json!(null));
                }
            }
        }
    }
    out
}

/// `n` pairs as JSON text; `changed_share` of them (0.0 to 1.0) have 1 to 3 differences.
pub fn pairs(n: usize, changed_share: f64, seed: u64) -> Vec<(String, String)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let a = document(&mut rng);
            let changed = (rng.below(1_000_000) as f64) < changed_share * 1_000_000.0;
            let b = if changed {
                let edits = rng.below(3) as usize + 1;
                mutate(&a, &mut rng, edits)
            } else {
                a.clone()
            };
            (a.to_string(), b.to_string())
        })
        .collect()
}

/// Sorted changed paths of a pair, for comparing tools.
pub fn changed_paths(diffs: &[shadowdiff_analyze::Difference]) -> Vec<String> {
    let mut p: Vec<String> = diffs.iter().map(|d| d.path.clone()).collect();
    p.sort();
    p
}

pub fn object(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())
}
