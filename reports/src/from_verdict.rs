//! Renders an analyze output directory (its `verdict.json` and `pairs.parquet`) as
//! `report.html` and `charts/*.png`. The verdict is read as JSON (the schema in
//! `docs/verdict.md`), so a report can be re-rendered from any earlier output directory.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde_json::Value;
use shadowdiff_analyze::examples::{EXAMPLES_FILE, Example, ExamplesFile};

use crate::charts::{self, ChartOptions, EndpointDiffRate, EndpointErrorRate, LatencyCdf, NumericDrift, Png};
use crate::html::{
    Block, Callout, Cell, CheckRow, ChecksTable, Column, DataTable, ExamplePair, ExampleSide, Fact, Figure, Highlight,
    KeyFigure, Mark, MarkedPath, ReportPage, Row, Section, SortOrder, Status, VerdictBanner,
};

/// The report file written into the output directory.
pub const REPORT_FILE: &str = "report.html";
/// The most pairs whose latencies are drawn (a uniform stride over `pairs.parquet`).
pub const MAX_LATENCY_SAMPLES: usize = 20_000;
/// The most numeric differences drawn in the drift histogram.
pub const MAX_DRIFT_SAMPLES: usize = 50_000;

/// Why a report could not be rendered from a directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FromVerdictError {
    /// `verdict.json` is missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `verdict.json` is not JSON.
    #[error("{} is not valid JSON: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Rendering or writing failed.
    #[error(transparent)]
    Render(#[from] crate::Error),
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    /// `DIR/report.html`.
    pub report: PathBuf,
    /// `DIR/charts/*.png`.
    pub charts: Vec<PathBuf>,
    /// Parts left out because their file could not be read, each with the reason.
    pub left_out: Vec<String>,
}

/// Reads `dir/verdict.json` (and latencies from `dir/pairs.parquet` when present) and writes
/// `dir/report.html` and `dir/charts/*.png`.
pub fn write_report(dir: &Path) -> Result<Written, FromVerdictError> {
    let path = dir.join("verdict.json");
    let text =
        std::fs::read_to_string(&path).map_err(|source| FromVerdictError::Read { path: path.clone(), source })?;
    let verdict: Value = serde_json::from_str(&text).map_err(|source| FromVerdictError::Parse { path, source })?;
    let data = RowData::read(dir);
    let left_out: Vec<String> = [
        data.latencies.as_ref().err().map(|e| format!("latency charts: {e}")),
        data.drift_error.as_ref().map(|e| format!("numeric drift values: {e}")),
        data.examples_error.as_ref().map(|e| format!("example pairs: {e}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (page, pngs) = build_page(&verdict, &data)?;
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|source| crate::Error::Write { path: charts_dir.clone(), source })?;
    let mut charts = Vec::new();
    for png in &pngs {
        charts.push(png.save_in(&charts_dir)?);
    }
    // A chart this report leaves out must not linger from an earlier render beside it.
    for kind in charts::ChartKind::ALL {
        if !pngs.iter().any(|p| p.kind == kind) {
            let stale = charts_dir.join(kind.file_name());
            if stale.exists() {
                std::fs::remove_file(&stale).map_err(|source| crate::Error::Write { path: stale.clone(), source })?;
            }
        }
    }
    let report = dir.join(REPORT_FILE);
    crate::html::write_page(&page, &report)?;
    Ok(Written { report, charts, left_out })
}

/// What the report shows beyond verdict.json: read from pairs.parquet, diffs.parquet and
/// examples.json. A file that cannot be read leaves its part of the report out, with the reason.
#[derive(Debug, Clone)]
pub struct RowData {
    pub latencies: Result<Latencies, String>,
    /// Relative deltas of real numeric differences.
    pub drift: Vec<f64>,
    pub drift_error: Option<String>,
    pub examples: Vec<Example>,
    pub examples_error: Option<String>,
    /// When the report was rendered, as shown in its header (empty: not shown).
    pub generated_at: String,
}

impl RowData {
    /// Reads what `dir` holds.
    pub fn read(dir: &Path) -> Self {
        let latencies = read_latencies(&dir.join("pairs.parquet"), MAX_LATENCY_SAMPLES);
        let (drift, drift_error) = match read_drift(&dir.join("diffs.parquet"), MAX_DRIFT_SAMPLES) {
            Ok(d) => (d, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let (examples, examples_error) = match read_examples(&dir.join(EXAMPLES_FILE)) {
            Ok(e) => (e, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let generated_at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
        Self { latencies, drift, drift_error, examples, examples_error, generated_at }
    }
}

/// Reads `examples.json`.
pub fn read_examples(path: &Path) -> Result<Vec<Example>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: ExamplesFile =
        serde_json::from_str(&text).map_err(|e| format!("{} is not an examples file: {e}", path.display()))?;
    Ok(file.examples)
}

/// Reads the relative deltas `(canary − baseline) / |baseline|` of up to `max` real numeric
/// differences from `diffs.parquet` (a uniform stride over its rows).
pub fn read_drift(path: &Path, max: usize) -> Result<Vec<f64>, String> {
    let (reader, _) = open_projected(path, &["status", "baseline_number", "canary_number"])?;
    // Keep every `stride`-th real value; when the buffer fills, halve it and double the stride,
    // so the values kept stay a uniform stride over all of them whatever their count.
    let max = max.max(2);
    let mut stride = 1usize;
    let mut out = Vec::new();
    let mut seen = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        let (Some(st), Some(b), Some(c)) = (
            column::<StringArray>(&batch, "status"),
            column::<Float64Array>(&batch, "baseline_number"),
            column::<Float64Array>(&batch, "canary_number"),
        ) else {
            return Err(format!("{}: the status and number columns have unexpected types", path.display()));
        };
        for i in 0..batch.num_rows() {
            let real = st.is_valid(i) && st.value(i) == "real" && b.is_valid(i) && c.is_valid(i) && b.value(i) != 0.0;
            if !real {
                continue;
            }
            if seen.is_multiple_of(stride) {
                if out.len() == max {
                    let mut k = 0;
                    out.retain(|_| {
                        k += 1;
                        k % 2 == 1
                    });
                    stride *= 2;
                }
                if seen.is_multiple_of(stride) {
                    out.push((c.value(i) - b.value(i)) / b.value(i).abs());
                }
            }
            seen += 1;
        }
    }
    Ok(out)
}

/// Opens a Parquet file reading only the leaf columns named, and says how many rows it has.
fn open_projected(path: &Path, names: &[&str]) -> Result<(ParquetRecordBatchReader, usize), String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> = (0..schema.num_columns()).filter(|&i| names.contains(&schema.column(i).name())).collect();
    if wanted.len() != names.len() {
        return Err(format!("{} lacks one of the columns {}", path.display(), names.join(", ")));
    }
    let mask = ProjectionMask::leaves(schema, wanted);
    let reader = builder.with_projection(mask).build().map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((reader, rows))
}

/// A column of `batch` by name, as the array type expected.
fn column<T: Array + Clone + 'static>(batch: &RecordBatch, name: &str) -> Option<T> {
    batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<T>().cloned())
}

/// Paired latencies in milliseconds, sampled by stride.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    pub baseline_ms: Vec<f64>,
    pub canary_ms: Vec<f64>,
    /// Rows in the file.
    pub total: usize,
    /// The earliest and latest `captured_at` (µs since the epoch, UTC).
    pub window_us: Option<(i64, i64)>,
}

/// Reads up to `max` pairs' latencies from `pairs.parquet` (a uniform stride over its rows).
pub fn read_latencies(path: &Path, max: usize) -> Result<Latencies, String> {
    let (reader, total) = open_projected(
        path,
        &["baseline_latency_us", "canary_latency_us", "baseline_error", "canary_error", "captured_at"],
    )?;
    let stride = total.div_ceil(max.max(1)).max(1);
    let mut out = Latencies { total, ..Latencies::default() };
    let mut row = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        let (Some(b), Some(c), Some(be), Some(ce), Some(at)) = (
            column::<UInt64Array>(&batch, "baseline_latency_us"),
            column::<UInt64Array>(&batch, "canary_latency_us"),
            column::<StringArray>(&batch, "baseline_error"),
            column::<StringArray>(&batch, "canary_error"),
            column::<TimestampMicrosecondArray>(&batch, "captured_at"),
        ) else {
            return Err(format!("{}: the latency, error or captured_at columns have unexpected types", path.display()));
        };
        for i in 0..batch.num_rows() {
            if at.is_valid(i) {
                let t = at.value(i);
                out.window_us = Some(out.window_us.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
            }
            // As the statistics count them: both sides answered without a transport error.
            let usable = b.is_valid(i) && c.is_valid(i) && be.is_null(i) && ce.is_null(i);
            if row.is_multiple_of(stride) && usable && out.baseline_ms.len() < max {
                out.baseline_ms.push(b.value(i) as f64 / 1000.0);
                out.canary_ms.push(c.value(i) as f64 / 1000.0);
            }
            row += 1;
        }
    }
    Ok(out)
}

/// How much a status matters to a reader: a failure first, then what could not be judged, then
/// warnings.
fn rank(s: Status) -> u8 {
    match s {
        Status::Fail => 3,
        Status::Inconclusive => 2,
        Status::Warn => 1,
        Status::Pass => 0,
    }
}

/// The worst status other than pass that the checks whose id starts with `check_prefix` gave
/// `route` (`""` for every check).
fn route_status(checks: &[Value], route: &str, check_prefix: &str) -> Option<Status> {
    checks
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(|id| id.starts_with(check_prefix)))
        .flat_map(|c| arr(&c["endpoints"]))
        .filter(|e| e["route"].as_str() == Some(route))
        .map(|e| status_of(&e["status"]))
        .filter(|s| *s != Status::Pass)
        .max_by_key(|s| rank(*s))
}

fn status_of(v: &Value) -> Status {
    match v.as_str().unwrap_or_default() {
        "pass" | "disabled" | "not_comparable" => Status::Pass,
        "warn" => Status::Warn,
        "fail" => Status::Fail,
        _ => Status::Inconclusive,
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn num(v: Option<f64>, unit: &str) -> String {
    match (v, unit) {
        (None, _) => String::new(),
        (Some(x), "relative" | "ratio_relative") => format!("{:+.1}%", x * 100.0),
        (Some(x), "fraction" | "rate" | "share") => format!("{:.2}%", x * 100.0),
        (Some(x), "count") => format!("{x:.0}"),
        (Some(x), "ks_d") => format!("D = {x:.3}"),
        (Some(x), "ms") => format!("{x:.2} ms"),
        (Some(x), "ratio") => format!("{x:.2}×"),
        (Some(x), "") => format!("{x:.4}"),
        (Some(x), unit) => format!("{x:.4} {unit}"),
    }
}

/// A test statistic as people write them: whole numbers whole, small and huge ones in e-notation.
fn statistic(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if (1e-3..1e6).contains(&x.abs()) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

fn p_value(v: &Value) -> String {
    match f(v) {
        None => String::new(),
        Some(p) if p < 0.001 => "< 0.001".to_owned(),
        Some(p) => format!("{p:.3}"),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn figure(png: &Png, alt: &str, caption: &str) -> Block {
    Block::Figure(Figure { png: png.clone(), alt: alt.to_owned(), caption: caption.to_owned() })
}

/// One line an on-call engineer reads first: the verdict and the checks that decided it.
fn headline(status: Status, checks: &[Value]) -> String {
    let ids = |want: &str| -> Vec<String> {
        checks.iter().filter(|c| c["status"].as_str() == Some(want)).map(|c| s(&c["id"])).collect()
    };
    let mut parts = Vec::new();
    for (word, want) in [("failed", "fail"), ("inconclusive", "inconclusive"), ("warned", "warn")] {
        let list = ids(want);
        if !list.is_empty() {
            let noun = if list.len() == 1 { "check" } else { "checks" };
            parts.push(format!("{} {noun} {word}: {}", list.len(), list.join(", ")));
        }
    }
    if parts.is_empty() {
        parts.push(format!("all {} checks passed", checks.len()));
    }
    format!("Verdict: {} — {}", status.label(), parts.join("; "))
}

/// Maps a `verdict.json` document (and optional latency samples) onto a report page and the
/// charts it embeds.
pub fn build_page(v: &Value, data: &RowData) -> crate::Result<(ReportPage, Vec<Png>)> {
    let (lat, lat_error) = match &data.latencies {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(e.as_str())),
    };
    let opts = ChartOptions::default();
    let mut pngs = Vec::new();
    let overall = &v["overall"];
    let status = status_of(&v["verdict"]);
    let checks = arr(&v["checks"]);

    // Verdict.
    let mut rows: Vec<CheckRow> = checks
        .iter()
        .map(|c| {
            let unit = c["unit"].as_str().unwrap_or_default();
            let t_unit = c["threshold_unit"].as_str().unwrap_or(unit);
            let ci = &c["ci"];
            let drivers: Vec<String> = arr(&c["endpoints"])
                .iter()
                .filter(|e| matches!(e["status"].as_str(), Some("fail" | "warn")))
                .map(|e| s(&e["route"]))
                .collect();
            CheckRow {
                status: status_of(&c["status"]),
                name: format!("{} ({})", s(&c["title"]), s(&c["id"])),
                scope: "overall".to_owned(),
                value: num(f(&c["value"]), unit),
                threshold: format!(
                    "pass ≤ {}, warn ≤ {}",
                    num(f(&c["threshold"]["pass"]), t_unit),
                    num(f(&c["threshold"]["warn"]), t_unit)
                ),
                interval: match (f(&ci["low"]), f(&ci["high"])) {
                    (Some(lo), Some(hi)) => format!(
                        "{:.0}% CI {} … {}",
                        f(&ci["confidence"]).unwrap_or(0.95) * 100.0,
                        num(Some(lo), unit),
                        num(Some(hi), unit)
                    ),
                    _ => String::new(),
                },
                statistic: if c["statistic"].is_null() {
                    String::new()
                } else {
                    format!(
                        "{} = {}",
                        s(&c["statistic"]["name"]),
                        statistic(f(&c["statistic"]["value"]).unwrap_or(f64::NAN))
                    )
                },
                p_value: p_value(&c["p_value"]),
                samples: u(&c["n"]),
                drivers: drivers.join(", "),
            }
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(rank(r.status)));
    // Failures first, then inconclusive, then warnings; the policy's order within each.
    let mut decisive: Vec<&Value> =
        checks.iter().filter(|c| matches!(c["status"].as_str(), Some("fail" | "warn" | "inconclusive"))).collect();
    decisive.sort_by_key(|c| std::cmp::Reverse(rank(status_of(&c["status"]))));
    let reasons: Vec<String> = decisive.iter().map(|c| format!("{}: {}", s(&c["id"]), s(&c["reason"]))).collect();
    let pairs = u(&overall["pairs"]);
    let banner = VerdictBanner {
        status,
        headline: headline(status, checks),
        reasons,
        figures: vec![
            KeyFigure { label: "pairs analysed".into(), value: pairs.to_string(), ..KeyFigure::default() },
            KeyFigure {
                label: "endpoints".into(),
                value: arr(&v["endpoints"]).len().to_string(),
                ..KeyFigure::default()
            },
            KeyFigure {
                label: "p99 latency".into(),
                value: format!(
                    "{:.2} → {:.2} ms",
                    f(&overall["baseline_p99_ms"]).unwrap_or(f64::NAN),
                    f(&overall["canary_p99_ms"]).unwrap_or(f64::NAN)
                ),
                note: "baseline → canary".into(),
                status: None,
            },
            KeyFigure {
                label: "pairs with a difference".into(),
                value: pct(ratio(u(&overall["different"]), u(&overall["compared"]))),
                note: format!("{} breaking", u(&overall["breaking_pairs"])),
                status: None,
            },
        ],
    };
    let mut sections = vec![Section {
        id: "checks".into(),
        title: "Policy checks".into(),
        intro: "Every check of the policy, failures first: value, thresholds, statistic, p-value, confidence interval, sample size and the endpoints that drove it.".into(),
        blocks: vec![Block::Checks(ChecksTable { caption: String::new(), rows })],
    }];

    // Per-endpoint check results.
    let mut ep_rows = Vec::new();
    for c in checks {
        let unit = c["unit"].as_str().unwrap_or_default();
        for e in arr(&c["endpoints"]).iter().filter(|e| matches!(e["status"].as_str(), Some("fail" | "warn"))) {
            let st = status_of(&e["status"]);
            ep_rows.push(
                Row::new([
                    crate::html::Cell::status(st),
                    s(&c["id"]).into(),
                    crate::html::Cell::code(s(&e["route"])),
                    num(f(&e["value"]), unit).into(),
                    p_value(&e["p_adjusted"]).into(),
                    u(&e["n"]).to_string().into(),
                    s(&e["reason"]).into(),
                ])
                .with_status(st),
            );
        }
    }
    ep_rows.sort_by_key(|r: &Row| std::cmp::Reverse(r.status.map(rank)));
    if !ep_rows.is_empty() {
        sections[0].blocks.push(Block::Table(DataTable {
            caption: "Endpoints that drove a check".into(),
            columns: vec![
                Column::text("status"),
                Column::text("check"),
                Column::text("endpoint"),
                Column::number("value"),
                Column::number("p (Holm)"),
                Column::number("n"),
                Column::text("reason"),
            ],
            rows: ep_rows,
            note: String::new(),
        }));
    }

    // Capture completeness.
    let inputs = &v["inputs"];
    let mut blocks = vec![Block::Figures(vec![
        KeyFigure { label: "files".into(), value: u(&inputs["files"]).to_string(), ..KeyFigure::default() },
        KeyFigure {
            label: "pairs in files".into(),
            value: u(&inputs["pairs_in_files"]).to_string(),
            ..KeyFigure::default()
        },
        KeyFigure {
            label: "pairs analysed".into(),
            value: u(&inputs["pairs_analyzed"]).to_string(),
            ..KeyFigure::default()
        },
        KeyFigure {
            label: "canary skipped".into(),
            value: u(&overall["canary_skipped"]).to_string(),
            ..KeyFigure::default()
        },
        KeyFigure {
            label: "bodies truncated".into(),
            value: {
                let t = &inputs["truncated"];
                (u(&t["baseline"]) + u(&t["canary"])).to_string()
            },
            note: format!(
                "baseline {} · canary {} · request {}",
                u(&inputs["truncated"]["baseline"]),
                u(&inputs["truncated"]["canary"]),
                u(&inputs["truncated"]["request"])
            ),
            status: None,
        },
    ])];
    let truncated = u(&inputs["truncated"]["baseline"]) + u(&inputs["truncated"]["canary"]);
    if truncated > 0 {
        blocks.push(Block::Callout(Callout {
            status: Status::Warn,
            text: format!(
                "{truncated} response bodies were cut at the capture's size cap; their differences were looked for only in the part kept. Raise the cap (docs/capture.md) if that part matters."
            ),
        }));
    }
    if let Some(counters) = inputs["counters"].as_object() {
        let get = |k: &str| counters.get(k).map_or(0, u);
        let (seen, dropped, skipped) = (get("seen"), get("dropped"), get("skipped"));
        let not_mirrored: u64 =
            counters.iter().filter(|(k, _)| k.starts_with("mirror_skipped.")).map(|(_, c)| u(c)).sum();
        if dropped > 0 {
            blocks.push(Block::Callout(Callout {
                status: Status::Warn,
                text: format!(
                    "{dropped} of {seen} requests were served but not recorded (the writer's queue was full or the agent stopped); the figures describe the pairs that were recorded."
                ),
            }));
        }
        if skipped > 0 {
            blocks.push(Block::Callout(Callout {
                status: Status::Pass,
                text: format!("{skipped} of {seen} requests were not recorded by choice (sampling, path filters, upgrades); see the skipped.* counters."),
            }));
        }
        if not_mirrored > 0 {
            blocks.push(Block::Callout(Callout {
                status: if ratio(not_mirrored, seen) > 0.05 { Status::Warn } else { Status::Pass },
                text: format!(
                    "{not_mirrored} of {seen} recorded requests were not mirrored to the canary (methods not mirrored, the body cap, the in-flight bound); they count as canary skipped and are left out of every figure. See the mirror_skipped.* counters."
                ),
            }));
        }
        let rows = counters.iter().map(|(k, c)| Row::new([Cell::code(k.clone()), s(c).into()])).collect();
        blocks.push(Block::Table(DataTable {
            caption: "Capture counters (summed over capture runs)".into(),
            columns: vec![Column::text("counter"), Column::number("value")],
            rows,
            note: String::new(),
        }));
    }
    let overflow = u(&v["route_overflow"]["requests"]);
    if overflow > 0 {
        blocks.push(Block::Callout(Callout {
            status: Status::Warn,
            text: format!("{overflow} requests fell outside the route table and were grouped together."),
        }));
    }
    sections.push(Section {
        id: "capture".into(),
        title: "Capture completeness".into(),
        intro: "What was read and what was analysed.".into(),
        blocks,
    });

    // Latency.
    let mut blocks = Vec::new();
    match lat {
        Some(l) => {
            let cdf = charts::latency_cdf(
                &LatencyCdf { baseline_ms: &l.baseline_ms, canary_ms: &l.canary_ms, log_x: true },
                &opts,
            )?;
            let deltas: Vec<f64> = l.baseline_ms.iter().zip(&l.canary_ms).map(|(b, c)| c - b).collect();
            let hist = charts::latency_delta_histogram(&deltas, &opts)?;
            blocks.push(figure(
                &cdf,
                "Latency CDF of baseline and canary",
                &format!("{} of {} pairs drawn.", l.baseline_ms.len(), l.total),
            ));
            blocks.push(figure(
                &hist,
                "Histogram of per-pair latency deltas, canary minus baseline",
                "Mass right of zero: the canary was slower on those requests.",
            ));
            pngs.push(cdf);
            pngs.push(hist);
        }
        None => blocks.push(Block::Paragraph(format!(
            "Latency charts are left out: {}.",
            lat_error.unwrap_or("pairs.parquet could not be read")
        ))),
    }
    // One row per scope; each quantile cell holds the relative delta and its interval, and the
    // row is coloured by the worst latency status the checks gave that scope.
    let quantile_names: Vec<String> = arr(&v["latency"])
        .first()
        .map(|l| arr(&l["quantiles"]).iter().map(|q| format!("p{}", f(&q["q"]).unwrap_or(0.0) * 100.0)).collect())
        .unwrap_or_default();
    let mut qrows = Vec::new();
    for l in arr(&v["latency"]) {
        let route = s(&l["route"]);
        let mut cells: Vec<Cell> = vec![Cell::code(route.clone()), u(&l["n"]).to_string().into()];
        for q in arr(&l["quantiles"]) {
            cells.push(
                format!(
                    "{} → {} ({}; {} … {})",
                    num(f(&q["baseline"]), "ms"),
                    num(f(&q["canary"]), "ms"),
                    num(f(&q["relative"]), "relative"),
                    num(f(&q["relative_low"]), "relative"),
                    num(f(&q["relative_high"]), "relative")
                )
                .into(),
            );
        }
        let row = Row::new(cells);
        qrows.push(match route_status(checks, &route, "latency") {
            Some(st) => row.with_status(st),
            None => row,
        });
    }
    let mut columns = vec![Column::text("scope"), Column::number("n")];
    columns.extend(quantile_names.iter().map(|q| Column::number(q.clone())));
    blocks.push(Block::Table(DataTable {
        caption: "Latency quantiles: baseline → canary (delta; confidence interval)".into(),
        columns,
        rows: qrows,
        note: "Intervals are seeded bootstrap intervals of the paired quantile delta.".into(),
    }));
    sections.push(Section { id: "latency".into(), title: "Latency".into(), intro: String::new(), blocks });

    // Errors.
    let endpoints = arr(&v["endpoints"]);
    let err_rows: Vec<EndpointErrorRate> = endpoints
        .iter()
        .map(|e| EndpointErrorRate {
            endpoint: s(&e["route"]),
            baseline: ratio(u(&e["baseline_errors"]), u(&e["pairs"])),
            canary: ratio(u(&e["canary_errors"]), u(&e["pairs"])),
        })
        .collect();
    let err_png = charts::error_rates(&err_rows, &opts)?;
    let mut sorted_err: Vec<&Value> = endpoints.iter().collect();
    sorted_err.sort_by_key(|e| std::cmp::Reverse(u(&e["canary_errors"])));
    let mut blocks = vec![
        figure(
            &err_png,
            "Error rates per endpoint, baseline and canary",
            "Errors are 5xx responses and transport failures.",
        ),
        Block::Table(DataTable {
            caption: "Errors by side and endpoint".into(),
            columns: vec![
                Column::text("endpoint"),
                Column::number("pairs"),
                Column::number("baseline errors"),
                Column::number("canary errors").sorted(SortOrder::Descending),
                Column::number("canary rate"),
            ],
            rows: sorted_err
                .iter()
                .map(|e| {
                    Row::new([
                        Cell::code(s(&e["route"])),
                        u(&e["pairs"]).to_string().into(),
                        u(&e["baseline_errors"]).to_string().into(),
                        u(&e["canary_errors"]).to_string().into(),
                        pct(ratio(u(&e["canary_errors"]), u(&e["pairs"]))).into(),
                    ])
                })
                .collect(),
            note: String::new(),
        }),
    ];
    pngs.push(err_png);
    let crit = arr(&v["critical_errors"]);
    if !crit.is_empty() {
        blocks.push(Block::Table(DataTable {
            caption: "Error kinds the baseline never showed".into(),
            columns: vec![
                Column::text("endpoint"),
                Column::text("kind"),
                Column::number("canary"),
                Column::number("p (Holm)"),
                Column::text("confirmed"),
            ],
            rows: crit
                .iter()
                .map(|c| {
                    Row::new([
                        Cell::code(s(&c["route"])),
                        s(&c["kind"]).into(),
                        u(&c["canary"]).to_string().into(),
                        p_value(&c["p_adjusted"]).into(),
                        s(&c["confirmed"]).into(),
                    ])
                })
                .collect(),
            note: String::new(),
        }));
    }
    sections.push(Section { id: "errors".into(), title: "Errors".into(), intro: String::new(), blocks });

    // Endpoints, worst first.
    let endpoint_status = |route: &str| route_status(checks, route, "");
    let diff_rate = |e: &Value| ratio(u(&e["different"]), u(&e["compared"]));
    let mut eps: Vec<&Value> = endpoints.iter().collect();
    eps.sort_by(|a, b| {
        let ka = (endpoint_status(&s(&a["route"])).map(rank), u(&a["breaking_pairs"]));
        let kb = (endpoint_status(&s(&b["route"])).map(rank), u(&b["breaking_pairs"]));
        kb.cmp(&ka).then(diff_rate(b).total_cmp(&diff_rate(a)))
    });
    // The policy's pass threshold for the diff rate, as the check resolved it.
    let diff_threshold =
        checks.iter().find(|c| c["id"] == "diff_rate").and_then(|c| f(&c["threshold"]["pass"])).unwrap_or(0.005);
    let diff_png = charts::diff_rates(
        &endpoints
            .iter()
            .map(|e| EndpointDiffRate { endpoint: s(&e["route"]), rate: diff_rate(e) })
            .collect::<Vec<_>>(),
        diff_threshold,
        &opts,
    )?;
    let ep_table = DataTable {
        caption: "Endpoints, worst first".into(),
        columns: vec![
            Column::text("status"),
            Column::text("endpoint"),
            Column::number("pairs"),
            Column::number("diff rate").sorted(SortOrder::Descending),
            Column::number("breaking pairs"),
            Column::number("status mismatches"),
            Column::number("p50 ms (b → c)"),
            Column::number("p99 ms (b → c)"),
        ],
        rows: eps
            .iter()
            .map(|e| {
                let st = endpoint_status(&s(&e["route"])).unwrap_or(Status::Pass);
                let row = Row::new([
                    Cell::status(st),
                    Cell::code(s(&e["route"])),
                    u(&e["pairs"]).to_string().into(),
                    pct(diff_rate(e)).into(),
                    u(&e["breaking_pairs"]).to_string().into(),
                    u(&e["status_mismatches"]).to_string().into(),
                    format!(
                        "{:.2} → {:.2}",
                        f(&e["baseline_p50_ms"]).unwrap_or(f64::NAN),
                        f(&e["canary_p50_ms"]).unwrap_or(f64::NAN)
                    )
                    .into(),
                    format!(
                        "{:.2} → {:.2}",
                        f(&e["baseline_p99_ms"]).unwrap_or(f64::NAN),
                        f(&e["canary_p99_ms"]).unwrap_or(f64::NAN)
                    )
                    .into(),
                ]);
                if st == Status::Pass { row } else { row.with_status(st) }
            })
            .collect(),
        note: String::new(),
    };
    sections.push(Section {
        id: "endpoints".into(),
        title: "Endpoints".into(),
        intro: "Diff rate: the share of compared pairs with a real difference.".into(),
        blocks: vec![
            figure(
                &diff_png,
                "Diff rate per endpoint",
                &format!("The dashed line marks the policy's diff-rate pass threshold, {}.", pct(diff_threshold)),
            ),
            Block::Table(ep_table),
        ],
    });
    pngs.push(diff_png);

    // Fields.
    let mut fields: Vec<&Value> = arr(&v["fields"]).iter().collect();
    fields.sort_by(|a, b| f(&b["absolute"]).unwrap_or(0.0).total_cmp(&f(&a["absolute"]).unwrap_or(0.0)));
    let field_rows = fields
        .iter()
        .map(|fr| {
            let c = &fr["counts"];
            let total = u(&fr["total_with_secondary"]);
            let (status, real) = match fr["verdict"]["verdict"].as_str().unwrap_or_default() {
                "difference" => ("real", true),
                "below_threshold" => ("real (below Diffy's threshold)", true),
                "noise" => ("noise", false),
                "suspected_noise" => ("suspected noise", false),
                "explained" => ("explained", false),
                other => (other, false),
            };
            let severity = s(&fr["severity"]);
            let row_status = match (real, severity.as_str()) {
                (true, "breaking") => Some(Status::Fail),
                (true, _) => Some(Status::Warn),
                _ => None,
            };
            let row = Row::new([
                Cell::code(s(&fr["route"])),
                Cell::code(s(&fr["field"])),
                u(&c["raw"]).to_string().into(),
                // Diffy's absolute figure is already a percentage of the pairs.
                format!("{:.2}%", f(&fr["absolute"]).unwrap_or(0.0)).into(),
                pct(ratio(u(&c["noise"]), total)).into(),
                severity.into(),
                status.into(),
                s(&fr["verdict"]["reason"]).into(),
            ]);
            match row_status {
                Some(st) => row.with_status(st),
                None => row,
            }
        })
        .collect();
    sections.push(Section {
        id: "fields".into(),
        title: "Fields".into(),
        intro: "Per-endpoint fields that differed, by the rate of real differences (Diffy's absolute figure: differences beyond what the secondary shows, per pair compared); the noise rate is how often the field differs between baseline and secondary. Severity is the strongest seen: breaking (removed, type changed), changed (value), additive (added).".into(),
        blocks: vec![Block::Table(DataTable {
            caption: String::new(),
            columns: vec![
                Column::text("endpoint"),
                Column::text("path"),
                Column::number("count"),
                Column::number("rate").sorted(SortOrder::Descending),
                Column::number("noise rate"),
                Column::text("severity"),
                Column::text("status"),
                Column::text("why"),
            ],
            rows: field_rows,
            note: String::new(),
        })],
    });

    // Numeric drift.
    let drifts = arr(&v["numeric_drift"]);
    let mut blocks = Vec::new();
    let drift_fields = drifts.len();
    let drift_label = match drift_fields {
        1 => s(&drifts[0]["field"]),
        n => format!("{n} numeric fields"),
    };
    let drift_png = charts::numeric_drift(
        &NumericDrift { field: &drift_label, relative_deltas: &data.drift, tolerance: 0.0 },
        &opts,
    )?;
    let drift_caption = match &data.drift_error {
        Some(e) => format!("The values could not be read: {e}."),
        None => "Every real numeric difference in diffs.parquet (or a uniform sample of them).".to_owned(),
    };
    blocks.push(figure(&drift_png, "Relative drift of numeric fields, canary against baseline", &drift_caption));
    pngs.push(drift_png);
    blocks.push(Block::Table(DataTable {
        caption: String::new(),
        columns: vec![
            Column::text("endpoint"),
            Column::text("field"),
            Column::number("n"),
            Column::number("mean"),
            Column::number("min"),
            Column::number("max"),
        ],
        rows: drifts
            .iter()
            .map(|d| {
                Row::new([
                    Cell::code(s(&d["route"])),
                    Cell::code(s(&d["field"])),
                    u(&d["n"]).to_string().into(),
                    num(f(&d["mean"]), "relative").into(),
                    num(f(&d["min"]), "relative").into(),
                    num(f(&d["max"]), "relative").into(),
                ])
            })
            .collect(),
        note: String::new(),
    }));
    let outliers: Vec<Row> = drifts
        .iter()
        .flat_map(|d| arr(&d["outliers"]).iter().map(move |o| (d, o)))
        .map(|(d, o)| {
            Row::new([
                Cell::code(s(&d["route"])),
                Cell::code(s(&d["field"])),
                Cell::code(s(&o["pair_id"])),
                statistic(f(&o["baseline"]).unwrap_or(f64::NAN)).into(),
                statistic(f(&o["canary"]).unwrap_or(f64::NAN)).into(),
                num(f(&o["relative"]), "relative").into(),
            ])
        })
        .collect();
    if !outliers.is_empty() {
        blocks.push(Block::Table(DataTable {
            caption: "The largest drifts per field".into(),
            columns: vec![
                Column::text("endpoint"),
                Column::text("field"),
                Column::text("pair"),
                Column::number("baseline"),
                Column::number("canary"),
                Column::number("relative"),
            ],
            rows: outliers,
            note: "Find a pair by its id in pairs.parquet and diffs.parquet.".into(),
        }));
    }
    sections.push(Section { id: "drift".into(), title: "Numeric drift".into(), intro: String::new(), blocks });

    sections.push(examples_section(v, &data.examples, data.examples_error.as_deref()));

    let page = ReportPage {
        title: "shadowdiff canary report".into(),
        subject: "baseline vs canary".into(),
        generated_at: data.generated_at.clone(),
        facts: {
            let mut facts = Vec::new();
            if let Some((lo, hi)) = lat.and_then(|l| l.window_us) {
                let t = |us: i64| {
                    chrono::DateTime::from_timestamp_micros(us)
                        .map_or_else(String::new, |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                };
                facts.push(Fact::new("captured", format!("{} → {}", t(lo), t(hi))));
            }
            let origins =
                v["inputs"]["baseline_origin"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "));
            facts.push(Fact::new(
                "inputs",
                format!("{} pairs in {} file(s)", u(&v["inputs"]["pairs_in_files"]), u(&v["inputs"]["files"])),
            ));
            if let Some(o) = origins.filter(|o| !o.is_empty()) {
                facts.push(Fact::new("baseline", o));
            }
            facts.push(Fact::new("fail on", s(&v["fail_on"])));
            facts.push(Fact::new("exit code", s(&v["exit_code"])));
            facts.push(Fact::new("tool", s(&v["tool"])));
            facts
        },
        verdict: banner,
        sections,
        footer: "Re-render with `shadowdiff report DIR`.".into(),
    };
    Ok((page, pngs))
}

/// Routes whose examples the report shows; `examples.json` keeps the rest.
pub const MAX_EXAMPLE_ROUTES: usize = 10;

/// Example pairs, side by side: the endpoints that failed or warned a check first.
fn examples_section(v: &Value, examples: &[Example], error: Option<&str>) -> Section {
    let mut blocks = Vec::new();
    if let Some(e) = error {
        blocks.push(Block::Paragraph(format!("No example pairs: {e}.")));
    } else if examples.is_empty() {
        blocks.push(Block::Paragraph("No pair had a real difference, a status mismatch or a canary error.".into()));
    }
    let mut routes: Vec<&str> = Vec::new();
    for e in examples {
        if !routes.contains(&e.route.as_str()) {
            routes.push(&e.route);
        }
    }
    // Stable: within a status, analyze's order (most trouble first) is kept.
    routes.sort_by_key(|r| std::cmp::Reverse(route_status(arr(&v["checks"]), r, "").map(rank)));
    let left_out = routes.len().saturating_sub(MAX_EXAMPLE_ROUTES);
    for route in routes.into_iter().take(MAX_EXAMPLE_ROUTES) {
        for e in examples.iter().filter(|e| e.route == route) {
            blocks.push(Block::Example(Box::new(example_pair(e))));
        }
    }
    if left_out > 0 {
        blocks.push(Block::Paragraph(format!(
            "Examples of {left_out} more endpoints are in examples.json beside this report."
        )));
    }
    Section {
        id: "examples".into(),
        title: "Example pairs".into(),
        intro: "A few pairs per endpoint, baseline on the left and canary on the right, chosen to show every kind of failure and the real differences; noise and explained differences are marked ≈.".into(),
        blocks,
    }
}

fn example_side(side: &shadowdiff_analyze::examples::ExampleSide) -> ExampleSide {
    let status = match (side.status, &side.error) {
        (Some(s), None) => s.to_string(),
        (Some(s), Some(e)) => format!("{s} ({e})"),
        (None, Some(e)) => format!("no response ({e})"),
        (None, None) => "no response".to_owned(),
    };
    ExampleSide {
        status,
        content_type: side.content_type.clone().unwrap_or_default(),
        body: side.body_bytes(),
        truncated: side.truncated,
    }
}

fn example_pair(e: &Example) -> ExamplePair {
    let mark = |status: &str, severity: &str| match (status, severity) {
        ("real", "breaking") => Mark::Breaking,
        ("real", "additive") => Mark::Additive,
        ("real", _) => Mark::Changed,
        _ => Mark::Noise,
    };
    let json_paths: Vec<MarkedPath> = e
        .differences
        .iter()
        .filter(|d| d.location == "body" && d.field != shadowdiff_analyze::evaluate::BODY_FIELD)
        .map(|d| MarkedPath::new(d.path.clone(), mark(&d.status, &d.severity)))
        .collect();
    let json = |side: &shadowdiff_analyze::examples::ExampleSide| {
        side.content_type.as_deref().is_some_and(|t| t.contains("json"))
    };
    let highlight = if e.outcome == "different" && !json_paths.is_empty() {
        Highlight::JsonPaths(json_paths)
    } else if e.outcome != "different" && json(&e.baseline) && json(&e.canary) {
        // Different statuses: the whole document differs; pretty-printed JSON reads best.
        Highlight::JsonPaths(vec![MarkedPath::new("", Mark::Breaking)])
    } else {
        Highlight::Text
    };
    let headers: Vec<String> = e
        .differences
        .iter()
        .filter(|d| d.location == "header")
        .map(|d| {
            format!(
                "{} ({})",
                d.path.trim_start_matches("header:"),
                if d.status == "real" { d.kind.as_str() } else { d.status.as_str() }
            )
        })
        .collect();
    let mut note = format!("{} · {}", e.route, e.why);
    if !headers.is_empty() {
        note.push_str(&format!(" · headers: {}", headers.join(", ")));
    }
    let query = e.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
    ExamplePair {
        title: format!("{} {}{query}", e.method, e.path),
        pair_id: e.pair_id.clone(),
        note,
        baseline: example_side(&e.baseline),
        canary: example_side(&e.canary),
        highlight,
    }
}
