//! The judge's latency statistics on one scope of a million pairs, the largest an analysis of
//! 1,000,000 pairs computes: the bootstrap quantile deltas (500 resamples of 20,000 pairs, the
//! defaults), the Hodges–Lehmann shift with its interval, and the Wilcoxon signed-rank test on
//! differences in whole microseconds (as pair files record them, so with ties). perf put the
//! first two at 7 % and 4 % of such an analysis' CPU.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shadowdiff_analyze::stats::{Bootstrap, hodges_lehmann, quantile_deltas, wilcoxon_signed_rank};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PAIRS: usize = 1_000_000;

/// Paired latencies in ms: a log-normal-ish baseline, a canary 3 % slower with its own noise.
fn latencies() -> (Vec<f64>, Vec<f64>) {
    let mut rng = SmallRng::seed_from_u64(7);
    let base: Vec<f64> = (0..PAIRS).map(|_| (rng.random::<f64>() * 2.0).exp() * 5.0).collect();
    let canary = base.iter().map(|b| b * 1.03 + rng.random::<f64>()).collect();
    (base, canary)
}

fn judge_statistics(c: &mut Criterion) {
    let (base, canary) = latencies();
    let diffs: Vec<f64> = base.iter().zip(&canary).map(|(b, c)| c - b).collect();
    let mut group = c.benchmark_group("latency_statistics_1m");
    group.sample_size(10);
    group.bench_function("quantile_deltas", |bench| {
        bench.iter(|| {
            quantile_deltas(black_box(&base), black_box(&canary), &[0.5, 0.9, 0.95, 0.99], Bootstrap::default())
        })
    });
    group.bench_function("hodges_lehmann", |bench| bench.iter(|| hodges_lehmann(black_box(&diffs), 0.95)));
    let whole_us: Vec<f64> = diffs.iter().map(|d| (d * 1000.0).round() / 1000.0).collect();
    group.bench_function("wilcoxon", |bench| bench.iter(|| wilcoxon_signed_rank(black_box(&whole_us))));
    group.finish();
}

criterion_group!(benches, judge_statistics);
criterion_main!(benches);
