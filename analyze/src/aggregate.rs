//! The endpoints table: polars (lazy) over `pairs.parquet`, grouped by route. The same counts and
//! quantiles a user's query over the file gives (`group_by(route)` with `len`, sums and a linear
//! `quantile`), so the table in `verdict.json` and their own figures agree.
//!
//! Memory stays flat however long the file is: polars reads it [`CHUNK_ROWS`] rows at a time,
//! counts per route, and reduces each side's usable latencies to counts per (route, value) —
//! latencies are whole microseconds, so those tables are bounded by the spread of the latencies,
//! not by the number of pairs. The chunks' counts add up; the quantiles are read off the summed
//! value counts with polars' linear interpolation (`QuantileMethod::Linear`), the same figure as
//! polars' quantile over every row. One query over the whole file held every row of a route at
//! once: 2.7 GiB for 10,000,000 pairs.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::outputs as o;

pub use shadowdiff_format::verdict::EndpointRow;

/// Rows of pairs.parquet aggregated at once (four of the writer's 64 Ki-row groups). Each chunk
/// costs ~13 ms of queries beyond its rows: on 1M pairs, chunks of 64 Ki rows took 0.41 s,
/// 256 Ki rows 0.25 s (one query over the whole file 0.3 s).
const CHUNK_ROWS: IdxSize = 256 * 1024;

/// The counters of the table, in the order of [`EndpointRow`]'s fields.
const COUNTS: [&str; 8] = [
    "pairs",
    "canary_skipped",
    "compared",
    "status_mismatches",
    "baseline_errors",
    "canary_errors",
    "different",
    "breaking_pairs",
];

/// The columns the table reads.
const COLUMNS: [&str; 9] = [
    o::ROUTE,
    o::OUTCOME,
    o::BASELINE_FAILED,
    o::CANARY_FAILED,
    o::DIFFS_BREAKING,
    o::BASELINE_LATENCY_US,
    o::BASELINE_ERROR,
    o::CANARY_LATENCY_US,
    o::CANARY_ERROR,
];

fn count(e: Expr, name: &str) -> Expr {
    e.cast(DataType::UInt64).sum().cast(DataType::UInt64).alias(name)
}

fn counters() -> Vec<Expr> {
    let outcome = || col(o::OUTCOME);
    vec![
        len().cast(DataType::UInt64).alias(COUNTS[0]),
        count(outcome().eq(lit("canary_skipped")), COUNTS[1]),
        count(
            outcome().eq(lit("same")).or(outcome().eq(lit("noise_only"))).or(outcome().eq(lit("different"))),
            COUNTS[2],
        ),
        count(outcome().eq(lit("status_mismatch")), COUNTS[3]),
        count(col(o::BASELINE_FAILED), COUNTS[4]),
        count(col(o::CANARY_FAILED), COUNTS[5]),
        count(outcome().eq(lit("different")), COUNTS[6]),
        count(col(o::DIFFS_BREAKING).gt(lit(0u32)), COUNTS[7]),
    ]
}

/// A side's latencies that count (the side answered without an error), as occurrences per
/// (route, value in µs).
fn latency_counts(chunk: &DataFrame, latency: &str, error: &str) -> PolarsResult<DataFrame> {
    chunk
        .clone()
        .lazy()
        .filter(col(error).is_null().and(col(latency).is_not_null()))
        .group_by([col(o::ROUTE), col(latency)])
        .agg([len().cast(DataType::UInt64).alias("n")])
        .collect()
}

/// What the table holds for one route while the chunks are read.
#[derive(Default)]
struct Tally {
    counts: [u64; COUNTS.len()],
    /// Occurrences of each latency in µs, baseline and canary.
    latency: [BTreeMap<u64, u64>; 2],
}

impl Tally {
    fn absorb(&mut self, other: &Tally) {
        self.counts.iter_mut().zip(other.counts).for_each(|(a, b)| *a += b);
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            for (&v, &n) in theirs {
                *mine.entry(v).or_default() += n;
            }
        }
    }

    /// The table's row; `alone[side]`: the file has a single usable latency on that side.
    fn row(&self, route: &str, alone: [bool; 2]) -> EndpointRow {
        // In the order of COUNTS.
        let n = self.counts;
        let [b, c] = &self.latency;
        EndpointRow {
            route: route.to_owned(),
            pairs: n[0],
            canary_skipped: n[1],
            compared: n[2],
            status_mismatches: n[3],
            baseline_errors: n[4],
            canary_errors: n[5],
            different: n[6],
            breaking_pairs: n[7],
            baseline_p50_ms: quantile_ms(b, 0.5, alone[0]),
            canary_p50_ms: quantile_ms(c, 0.5, alone[1]),
            baseline_p99_ms: quantile_ms(b, 0.99, alone[0]),
            canary_p99_ms: quantile_ms(c, 0.99, alone[1]),
        }
    }
}

/// The `q` quantile in milliseconds of latencies given as occurrences per value in µs: polars'
/// `(col.cast(Float64) / 1000).quantile(q, Linear)` over the values listed out — the order
/// statistics at ⌊(n−1)q⌋ and ⌈(n−1)q⌉, interpolated as polars does. `None` with no values.
/// `alone`: the file has this one usable latency on this side and no other.
fn quantile_ms(counts: &BTreeMap<u64, u64>, q: f64, alone: bool) -> Option<f64> {
    let n: u64 = counts.values().sum();
    if n == 0 {
        return None;
    }
    // polars evaluates `/ 1000` over a column as a product with the reciprocal, and over a
    // column of one value as a division; so does this, or the last digit would differ from a
    // user's query (9040 µs is 9.040000000000001 ms in the first case, 9.04 in the second).
    let ms = |v: u64| if alone { v as f64 / 1000.0 } else { v as f64 * (1.0 / 1000.0) };
    // The value at 0-based rank `k` of the sorted list.
    let at = |k: u64| {
        let mut below = 0;
        for (&v, &m) in counts {
            below += m;
            if k < below {
                return v;
            }
        }
        *counts.keys().next_back().unwrap_or(&0)
    };
    let float_idx = (n - 1) as f64 * q;
    let base = (float_idx as u64).min(n - 1);
    let top = float_idx.ceil() as u64;
    let lower = ms(at(base));
    if base == top {
        return Some(lower);
    }
    let upper = ms(at(top));
    Some(if lower == upper { lower } else { (float_idx - base as f64) * (upper - lower) + lower })
}

/// Adds one chunk of pairs.parquet's rows to `routes`.
fn add_chunk(chunk: &DataFrame, routes: &mut BTreeMap<String, Tally>) -> PolarsResult<()> {
    let counted = chunk.clone().lazy().group_by([col(o::ROUTE)]).agg(counters()).collect()?;
    let names = counted.column(o::ROUTE)?.str()?;
    let columns =
        COUNTS.iter().map(|c| counted.column(c).and_then(|s| s.u64().cloned())).collect::<PolarsResult<Vec<_>>>()?;
    for i in 0..counted.height() {
        let tally = routes.entry(names.get(i).unwrap_or_default().to_owned()).or_default();
        for (slot, column) in tally.counts.iter_mut().zip(&columns) {
            *slot += column.get(i).unwrap_or(0);
        }
    }
    let sides = [(o::BASELINE_LATENCY_US, o::BASELINE_ERROR), (o::CANARY_LATENCY_US, o::CANARY_ERROR)];
    for (side, (latency, error)) in sides.into_iter().enumerate() {
        let values = latency_counts(chunk, latency, error)?;
        let (names, v, n) =
            (values.column(o::ROUTE)?.str()?, values.column(latency)?.u64()?, values.column("n")?.u64()?);
        for i in 0..values.height() {
            let (Some(route), Some(v), Some(n)) = (names.get(i), v.get(i), n.get(i)) else { continue };
            let tally = routes.entry(route.to_owned()).or_default();
            *tally.latency[side].entry(v).or_default() += n;
        }
    }
    Ok(())
}

/// The whole run's row and one row per route, sorted by route.
pub fn endpoints(pairs_file: &Path) -> Result<(EndpointRow, Vec<EndpointRow>)> {
    endpoints_by(pairs_file, CHUNK_ROWS)
}

fn endpoints_by(pairs_file: &Path, chunk_rows: IdxSize) -> Result<(EndpointRow, Vec<EndpointRow>)> {
    let err = |e: PolarsError| Error::Aggregate { path: pairs_file.to_owned(), message: e.to_string() };
    let open = || {
        std::fs::File::open(pairs_file)
            .map_err(|e| Error::Aggregate { path: pairs_file.to_owned(), message: e.to_string() })
    };
    // The footer is read once; every chunk's reader is handed it (a scan per chunk read it and
    // planned anew each time: ~10 ms more a chunk).
    let metadata = ParquetReader::new(open()?).get_metadata().map_err(err)?.clone();
    let columns: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    let mut routes: BTreeMap<String, Tally> = BTreeMap::new();
    let chunk_rows = chunk_rows as usize;
    for offset in (0..metadata.num_rows).step_by(chunk_rows.max(1)) {
        let mut reader =
            ParquetReader::new(open()?).with_columns(Some(columns.clone())).with_slice(Some((offset, chunk_rows)));
        reader.set_metadata(metadata.clone());
        let chunk = reader.finish().map_err(err)?;
        add_chunk(&chunk, &mut routes).map_err(err)?;
    }
    let mut all = Tally::default();
    routes.values().for_each(|t| all.absorb(t));
    let alone = all.latency.each_ref().map(|side| side.values().sum::<u64>() == 1);
    Ok((all.row("(all)", alone), routes.iter().map(|(route, t)| t.row(route, alone)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A side's latency quantile in ms as a user's polars query over the file computes it.
    fn latency(column: &str, error: &str, q: f64, name: &str) -> Expr {
        (col(column).filter(col(error).is_null()).cast(DataType::Float64) / lit(1000.0))
            .quantile(lit(q), QuantileMethod::Linear)
            .alias(name)
    }

    /// The table as one polars query over the whole file computes it: what a user would run.
    fn whole_file(path: &Path) -> (EndpointRow, Vec<EndpointRow>) {
        let mut exprs = counters();
        exprs.extend([
            latency(o::BASELINE_LATENCY_US, o::BASELINE_ERROR, 0.5, "b50"),
            latency(o::CANARY_LATENCY_US, o::CANARY_ERROR, 0.5, "c50"),
            latency(o::BASELINE_LATENCY_US, o::BASELINE_ERROR, 0.99, "b99"),
            latency(o::CANARY_LATENCY_US, o::CANARY_ERROR, 0.99, "c99"),
        ]);
        let scan =
            || LazyFrame::scan_parquet(PlRefPath::new(path.to_str().unwrap()), ScanArgsParquet::default()).unwrap();
        let rows = |df: DataFrame, route: Option<&str>| -> Vec<EndpointRow> {
            let u = |c: &str, i: usize| df.column(c).unwrap().u64().unwrap().get(i).unwrap();
            let f = |c: &str, i: usize| df.column(c).unwrap().f64().unwrap().get(i);
            (0..df.height())
                .map(|i| EndpointRow {
                    route: route.map_or_else(
                        || df.column(o::ROUTE).unwrap().str().unwrap().get(i).unwrap().to_owned(),
                        str::to_owned,
                    ),
                    pairs: u(COUNTS[0], i),
                    canary_skipped: u(COUNTS[1], i),
                    compared: u(COUNTS[2], i),
                    status_mismatches: u(COUNTS[3], i),
                    baseline_errors: u(COUNTS[4], i),
                    canary_errors: u(COUNTS[5], i),
                    different: u(COUNTS[6], i),
                    breaking_pairs: u(COUNTS[7], i),
                    baseline_p50_ms: f("b50", i),
                    canary_p50_ms: f("c50", i),
                    baseline_p99_ms: f("b99", i),
                    canary_p99_ms: f("c99", i),
                })
                .collect()
        };
        let by_route =
            scan().group_by([col(o::ROUTE)]).agg(exprs.clone()).sort([o::ROUTE], Default::default()).collect().unwrap();
        let all = scan().select(exprs).collect().unwrap();
        (rows(all, Some("(all)")).remove(0), rows(by_route, None))
    }

    /// A pairs file of `n` rows over four routes: latencies from a few µs to seconds (so values
    /// whose millisecond figures round differently), errors on either side, a route whose
    /// canary always fails, and every outcome.
    fn pairs_file(dir: &Path, n: usize) -> std::path::PathBuf {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let outcomes = ["same", "noise_only", "different", "status_mismatch", "canary_skipped", "error"];
        let (mut route, mut outcome, mut b_failed, mut c_failed, mut breaking) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut b_lat, mut b_err, mut c_lat, mut c_err) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            let r = next() % 4;
            route.push(["/a", "/b/{id}", "/c", "/down"][r as usize]);
            outcome.push(outcomes[(next() % 6) as usize]);
            let failed = |r: u64| r.is_multiple_of(50);
            let (bf, cf) = (failed(next()), r == 3 || failed(next()));
            b_failed.push(bf);
            c_failed.push(cf);
            breaking.push((next() % 7 == 0) as u32 * (next() % 3) as u32);
            let latency = |r: u64| match r % 10 {
                0 => None,
                1..=6 => Some(900 + r % 9000),
                _ => Some(r % 3_000_000),
            };
            b_lat.push(latency(next()));
            c_lat.push(latency(next()));
            b_err.push(bf.then_some("connect"));
            c_err.push(cf.then_some("timeout"));
        }
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new(o::ROUTE.into(), route),
                Column::new(o::OUTCOME.into(), outcome),
                Column::new(o::BASELINE_FAILED.into(), b_failed),
                Column::new(o::CANARY_FAILED.into(), c_failed),
                Column::new(o::DIFFS_BREAKING.into(), breaking),
                Column::new(o::BASELINE_LATENCY_US.into(), b_lat),
                Column::new(o::BASELINE_ERROR.into(), b_err),
                Column::new(o::CANARY_LATENCY_US.into(), c_lat),
                Column::new(o::CANARY_ERROR.into(), c_err),
            ],
        )
        .unwrap();
        let path = dir.join("pairs.parquet");
        let file = std::fs::File::create(&path).unwrap();
        ParquetWriter::new(file).with_row_group_size(Some(1000)).finish(&mut df).unwrap();
        path
    }

    #[test]
    fn chunked_table_equals_one_query_over_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = pairs_file(dir.path(), 20_011);
        let expected = whole_file(&path);
        // Chunks smaller than, equal to and larger than the row groups, one that divides the
        // file's length badly, and one chunk holding every row.
        for chunk in [700, 1000, 4096, 20_011, CHUNK_ROWS] {
            assert_eq!(endpoints_by(&path, chunk).unwrap(), expected, "chunks of {chunk} rows");
        }
        let (all, routes) = expected;
        assert_eq!(routes.len(), 4);
        assert_eq!(all.pairs, 20_011);
        // The route whose canary always fails has no canary latency, and says so.
        let down = routes.iter().find(|r| r.route == "/down").unwrap();
        assert_eq!((down.canary_p50_ms, down.canary_errors), (None, down.pairs));
        assert!(down.baseline_p99_ms.is_some());
        // Files of a few rows, down to one usable latency in the whole file.
        for n in 1..=4 {
            let small = tempfile::tempdir().unwrap();
            let path = pairs_file(small.path(), n);
            assert_eq!(endpoints(&path).unwrap(), whole_file(&path), "{n} rows");
        }
    }

    #[test]
    fn quantiles_from_value_counts_are_polars_quantiles_of_the_values_listed_out() {
        let cases: [&[u64]; 6] = [
            &[9040],
            &[9040, 9040],
            &[9119, 9120],
            &[5, 5, 5, 7],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1_000_000],
            &[3, 9040, 9040, 12, 400_001],
        ];
        for values in cases {
            let mut counts = BTreeMap::new();
            values.iter().for_each(|&v| *counts.entry(v).or_default() += 1);
            let n = values.len();
            let df = DataFrame::new(
                n,
                vec![Column::new("v".into(), values.to_vec()), Column::new("e".into(), vec![None::<&str>; n])],
            )
            .unwrap();
            for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
                let polars = df.clone().lazy().select([latency("v", "e", q, "v")]).collect().unwrap();
                let expected = polars.column("v").unwrap().f64().unwrap().get(0);
                assert_eq!(quantile_ms(&counts, q, n == 1), expected, "{values:?} q={q}");
            }
        }
        assert_eq!(quantile_ms(&BTreeMap::new(), 0.5, false), None);
    }
}
