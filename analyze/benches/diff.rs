//! Parse two ~1 KB JSON bodies and diff them: pairs per second on one core, for equal pairs and
//! for pairs with one to three differences. The aim is at least 60,000 pairs/s/core. Then the same
//! through `compare_bodies`, which analyze calls per pair and which recognises byte-identical
//! bodies without building them (reported separately: it does not parse and diff).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shadowdiff_analyze::{Rules, compare_bodies, diff_json};

#[path = "support/corpus.rs"]
mod corpus;

const BATCH: usize = 1_000;

fn parse_and_diff(c: &mut Criterion) {
    let rules = Rules::default();
    let mut group = c.benchmark_group("parse_and_diff");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, share) in [("equal", 0.0), ("few_differences", 1.0)] {
        let pairs = corpus::pairs(BATCH, share, 7);
        let bytes: usize = pairs.iter().map(|(a, b)| a.len() + b.len()).sum();
        eprintln!("{name}: mean body {} bytes", bytes / (2 * BATCH));
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let mut found = 0;
                for (a, b) in &pairs {
                    let a: serde_json::Value = serde_json::from_str(a).expect("corpus is JSON");
                    let b: serde_json::Value = serde_json::from_str(b).expect("corpus is JSON");
                    found += diff_json(&a, &b, &rules, None).len();
                }
                black_box(found)
            })
        });
    }
    let pairs: Vec<_> = corpus::pairs(BATCH, 1.0, 7)
        .into_iter()
        .map(|(a, b)| {
            (
                serde_json::from_str::<serde_json::Value>(&a).expect("JSON"),
                serde_json::from_str::<serde_json::Value>(&b).expect("JSON"),
            )
        })
        .collect();
    group.bench_function("diff_only_few_differences", |bench| {
        bench.iter(|| pairs.iter().map(|(a, b)| diff_json(a, b, &rules, None).len()).sum::<usize>())
    });
    for (name, share) in [("compare_bodies_identical", 0.0), ("compare_bodies_few_differences", 1.0)] {
        let pairs = corpus::pairs(BATCH, share, 7);
        let ct = Some("application/json");
        group.bench_function(name, |bench| {
            bench.iter(|| {
                pairs
                    .iter()
                    .map(|(a, b)| {
                        compare_bodies((a.as_bytes(), ct), (b.as_bytes(), ct), &rules, None).differences.len()
                    })
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_and_diff);
criterion_main!(benches);
