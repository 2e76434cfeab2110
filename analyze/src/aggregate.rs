//! The endpoints table: polars (lazy) over `pairs.parquet`, grouped by route. The same query a
//! user would run over the file, so the table in `verdict.json` and their own figures agree, and
//! it scales the way the file does (polars streams the scan and aggregates per group).

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::outputs as o;

pub use shadowdiff_format::verdict::EndpointRow;

fn count(e: Expr, name: &str) -> Expr {
    e.cast(DataType::UInt64).sum().cast(DataType::UInt64).alias(name)
}

fn aggregations() -> Vec<Expr> {
    let outcome = || col(o::OUTCOME);
    let latency = |column: &str, error: &str, q: f64, name: &str| {
        (col(column).filter(col(error).is_null()).cast(DataType::Float64) / lit(1000.0))
            .quantile(lit(q), QuantileMethod::Linear)
            .alias(name)
    };
    vec![
        len().cast(DataType::UInt64).alias("pairs"),
        count(outcome().eq(lit("canary_skipped")), "canary_skipped"),
        count(
            outcome().eq(lit("same")).or(outcome().eq(lit("noise_only"))).or(outcome().eq(lit("different"))),
            "compared",
        ),
        count(outcome().eq(lit("status_mismatch")), "status_mismatches"),
        count(col(o::BASELINE_FAILED), "baseline_errors"),
        count(col(o::CANARY_FAILED), "canary_errors"),
        count(outcome().eq(lit("different")), "different"),
        count(col(o::DIFFS_BREAKING).gt(lit(0u32)), "breaking_pairs"),
        latency(o::BASELINE_LATENCY_US, o::BASELINE_ERROR, 0.5, "baseline_p50_ms"),
        latency(o::CANARY_LATENCY_US, o::CANARY_ERROR, 0.5, "canary_p50_ms"),
        latency(o::BASELINE_LATENCY_US, o::BASELINE_ERROR, 0.99, "baseline_p99_ms"),
        latency(o::CANARY_LATENCY_US, o::CANARY_ERROR, 0.99, "canary_p99_ms"),
    ]
}

fn rows(df: &DataFrame, route: Option<&str>) -> PolarsResult<Vec<EndpointRow>> {
    let u = |name: &str| df.column(name).and_then(|c| c.u64().cloned());
    let f = |name: &str| df.column(name).and_then(|c| c.f64().cloned());
    let routes = match route {
        Some(_) => None,
        None => Some(df.column("route")?.str()?.clone()),
    };
    let (pairs, skipped, compared, mismatches, b_err, c_err, different, breaking) = (
        u("pairs")?,
        u("canary_skipped")?,
        u("compared")?,
        u("status_mismatches")?,
        u("baseline_errors")?,
        u("canary_errors")?,
        u("different")?,
        u("breaking_pairs")?,
    );
    let (b50, c50, b99, c99) = (f("baseline_p50_ms")?, f("canary_p50_ms")?, f("baseline_p99_ms")?, f("canary_p99_ms")?);
    Ok((0..df.height())
        .map(|i| EndpointRow {
            route: match (&routes, route) {
                (Some(r), _) => r.get(i).unwrap_or_default().to_owned(),
                (None, r) => r.unwrap_or_default().to_owned(),
            },
            pairs: pairs.get(i).unwrap_or(0),
            canary_skipped: skipped.get(i).unwrap_or(0),
            compared: compared.get(i).unwrap_or(0),
            status_mismatches: mismatches.get(i).unwrap_or(0),
            baseline_errors: b_err.get(i).unwrap_or(0),
            canary_errors: c_err.get(i).unwrap_or(0),
            different: different.get(i).unwrap_or(0),
            breaking_pairs: breaking.get(i).unwrap_or(0),
            baseline_p50_ms: b50.get(i),
            canary_p50_ms: c50.get(i),
            baseline_p99_ms: b99.get(i),
            canary_p99_ms: c99.get(i),
        })
        .collect())
}

/// The whole run's row and one row per route, sorted by route.
pub fn endpoints(pairs_file: &Path) -> Result<(EndpointRow, Vec<EndpointRow>)> {
    let err = |e: PolarsError| Error::Aggregate { path: pairs_file.to_owned(), message: e.to_string() };
    let path = pairs_file.to_string_lossy().into_owned();
    let scan = || LazyFrame::scan_parquet(PlRefPath::new(path.as_str()), ScanArgsParquet::default());
    let by_route = scan()
        .map_err(err)?
        .group_by([col(o::ROUTE)])
        .agg(aggregations())
        .sort([o::ROUTE], SortMultipleOptions::default())
        .collect()
        .map_err(err)?;
    let all = scan().map_err(err)?.select(aggregations()).collect().map_err(err)?;
    let overall = rows(&all, Some("(all)")).map_err(err)?.into_iter().next().unwrap_or_default();
    Ok((overall, rows(&by_route, None).map_err(err)?))
}
