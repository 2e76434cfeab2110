//! The harness counts simulated pairs directly; this checks that doing so judges exactly as
//! analyze judges the same pairs written as real pair files and read back by the whole pipeline.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use shadowdiff_analyze::Policy;
use shadowdiff_analyze::judge::judge;
use shadowdiff_analyze::pipeline::{Options, Quiet, run};
use shadowdiff_calibration::judge_pairs;
use shadowdiff_calibration::model::{Effect, Noise, SimPair, simulate};
use shadowdiff_format::pair::{Header, PairRecord, SideRecord};
use shadowdiff_format::writer::{PairWriter, WriterConfig};

/// One side of a simulated pair as capture would have recorded it.
fn side(error: Option<&str>, ms: f64, price: u32) -> SideRecord {
    match SimPair::status(error) {
        None => SideRecord::failed(error.unwrap_or("reset")),
        Some(status) => SideRecord {
            status: Some(status),
            headers: vec![Header::new("content-type", "application/json")],
            body: Some(Bytes::from(format!(r#"{{"ok":{},"price":{price}}}"#, status == 200))),
            latency_us: Some((ms * 1000.0) as u64),
            ttfb_us: Some((ms * 500.0) as u64),
            ..SideRecord::default()
        },
    }
}

#[test]
fn simulated_sets_judge_alike_through_pair_files() {
    let policy = Policy::default();
    for (seed, noise, effect) in [
        (3u64, Noise::Lognormal, Effect::Latency(1.3)),
        (4, Noise::BurstyErrors, Effect::Errors(3.0)),
        (5, Noise::Bimodal, Effect::Field(0.05)),
        (6, Noise::HeavyTail, Effect::None),
    ] {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut pairs = simulate(3000, 6, noise, effect, &mut rng);
        // Whole microseconds, as pair files keep them.
        for p in &mut pairs {
            p.baseline_ms = (p.baseline_ms * 1000.0).trunc() / 1000.0;
            p.canary_ms = (p.canary_ms * 1000.0).trunc() / 1000.0;
        }
        let direct = judge_pairs(&pairs, &policy, seed);

        let dir = tempfile::tempdir().unwrap();
        let mut w = PairWriter::new(WriterConfig::new(dir.path().join("in"), "calibration")).unwrap();
        let start = chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
        for (i, p) in pairs.iter().enumerate() {
            // When the harness says it was captured (tail pairs in flight together are one event).
            let at = start + chrono::Duration::microseconds((p.at * pairs.len() as f64 * 10_000.0) as i64);
            let mut r = PairRecord::new("calibration", at, "GET", format!("/r{:02}/{}", p.route, 1000 + i), None);
            r.baseline = side(p.baseline_error, p.baseline_ms, 10);
            r.canary = side(p.canary_error, p.canary_ms, if p.field_changed { 11 } else { 10 });
            w.write(r).unwrap();
        }
        w.close().unwrap();
        let mut opts = Options::new(dir.path().join("out"));
        opts.seed = seed;
        std::fs::create_dir_all(&opts.out).unwrap();
        let input = dir.path().join("in").display().to_string();
        let analysis = run(&[input], &policy, &opts, &Quiet).unwrap();
        let through_files = judge(&analysis, &policy);

        assert_eq!(through_files.inputs.pairs_analyzed, pairs.len() as u64);
        assert_eq!(through_files.verdict, direct.verdict, "{noise:?} {effect:?}: {}", through_files.reason);
        for (a, b) in through_files.checks.iter().zip(&direct.checks) {
            assert_eq!(
                (a.id, a.status, a.n),
                (b.id, b.status, b.n),
                "{noise:?} {effect:?}: {} | {}",
                a.reason,
                b.reason
            );
            let close = match (a.value, b.value) {
                (Some(x), Some(y)) => (x - y).abs() < 1e-9 || (x.is_nan() && y.is_nan()),
                (x, y) => x == y,
            };
            assert!(close, "{noise:?} {effect:?} {}: {:?} vs {:?}", a.id, a.value, b.value);
        }
    }
}
