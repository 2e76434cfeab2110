//! Writer throughput: pairs with ~1 KB JSON bodies on each of the three sides, written through
//! `PairWriter` to real files (zstd, row groups, rename on close). Reports pairs/s and, once,
//! the bytes on disk per pair.
//!
//! Run: `cargo bench -p shadowdiff-format --bench writer`.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shadowdiff_format::{Header, PairRecord, PairWriter, SideRecord, WriterConfig};

const PAIRS: usize = 20_000;

fn body(i: usize, side: usize) -> Bytes {
    // Realistic JSON: repeated keys (compressible), varying values (not trivially so).
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ side as u64;
    let mut s = format!(
        r#"{{"id":{i},"name":"user {i}","email":"user{i}@example.com","tier":"{}","balance":{}.{:02},"address":{{"street":"{} Main Street","city":"City {}","zip":"{:05}"}},"tags":["a{}","b{}","c{}"],"items":["#,
        ["free", "silver", "gold"][(x % 3) as usize],
        x % 10_000,
        x % 100,
        x % 999,
        x % 50,
        x % 100_000,
        x % 7,
        x % 11,
        x % 13
    );
    for k in 0..12 {
        let y = x.rotate_left(k * 7);
        s.push_str(&format!(
            r#"{{"sku":"{:010x}","qty":{},"price":{}.{:02}}},"#,
            y & 0xff_ffff_ffff,
            y % 5,
            y % 500,
            y % 100
        ));
    }
    s.pop();
    s.push_str(&format!(
        r#"],"generated_at":"2026-11-24T09:{:02}:{:02}.{:06}Z","request_id":"{:032x}"}}"#,
        i / 60 % 60,
        i % 60,
        x % 1_000_000,
        x as u128 * 31 + side as u128
    ));
    Bytes::from(s)
}

fn pairs() -> Vec<PairRecord> {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).single().expect("valid time");
    (0..PAIRS)
        .map(|i| {
            let mut r = PairRecord::new(
                "bench",
                t0 + TimeDelta::milliseconds(i as i64),
                "GET",
                format!("/api/users/{i}"),
                None,
            );
            r.request_headers = vec![Header::new("accept", "application/json"), Header::new("user-agent", "bench/1.0")];
            for (n, side) in [&mut r.baseline, &mut r.canary, &mut r.secondary].into_iter().enumerate() {
                let b = body(i, n);
                *side = SideRecord {
                    status: Some(200),
                    headers: vec![
                        Header::new("content-type", "application/json"),
                        Header::new("content-length", b.len().to_string()),
                    ],
                    body: Some(b),
                    body_truncated: false,
                    latency_us: Some(1000 + (i as u64 * 7 + n as u64) % 5000),
                    ttfb_us: Some(800),
                    error: None,
                    trailers: Vec::new(),
                };
            }
            r
        })
        .collect()
}

fn write_all(records: &[PairRecord]) -> (u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = PairWriter::new(WriterConfig::new(dir.path(), "bench")).expect("writer");
    for r in records {
        w.write(r.clone()).expect("write");
    }
    let stats = w.close().expect("close");
    (stats.rows_committed, stats.bytes_committed)
}

fn writer(c: &mut Criterion) {
    let records = pairs();
    let raw: usize = records.iter().map(PairRecord::approx_size).sum();
    let (rows, bytes) = write_all(&records);
    eprintln!(
        "writer: {rows} pairs, {:.0} bytes/pair in memory, {:.0} bytes/pair on disk (zstd level 1)",
        raw as f64 / rows as f64,
        bytes as f64 / rows as f64
    );
    let mut g = c.benchmark_group("writer");
    g.throughput(Throughput::Elements(PAIRS as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    g.bench_function("pairs_1kb_bodies_3_sides", |b| b.iter(|| black_box(write_all(&records))));
    g.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
