//! A realistic report built from hand-made view models and synthetic data: what the tests
//! snapshot and load in a browser, and what `cargo run -p shadowdiff-reports --example
//! demo_report` writes for looking at (the example includes this file). Deterministic: the same
//! page every time. It exercises every view model, whatever a verdict happens to hold.

use shadowdiff_reports::Result;
use shadowdiff_reports::charts::{
    self, ChartOptions, EndpointDiffRate, EndpointErrorRate, LatencyCdf, NumericDrift, Png,
};
use shadowdiff_reports::html::*;

/// A small deterministic generator (xorshift64*), so the demo needs no `rand`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.next().max(1e-12);
        let v = self.next();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Builds the demo page: a failing canary with a latency tail regression on one endpoint, a
/// 5xx regression on another, a changed field, an added field and noise.
pub fn demo_page() -> Result<ReportPage> {
    let charts = charts()?;
    Ok(ReportPage {
        title: "Canary report: checkout-api".into(),
        subject: "baseline v1.41.0 vs canary v1.42.0-rc.1 · shadow traffic 2026-11-23 08:00–20:00 UTC".into(),
        generated_at: "2026-11-24 10:00 UTC".into(),
        facts: vec![
            Fact::new("input", "captures/dt=2026-11-23/ (96 files)"),
            Fact::new("policy", "policy.toml"),
            Fact::new("pairs", "48,210"),
            Fact::new("secondary", "yes (noise detection on)"),
        ],
        verdict: VerdictBanner {
            status: Status::Fail,
            headline: "Canary fails: GET /search is 27% slower at p99, and POST /cart/{id}/items errors 5× as often."
                .into(),
            reasons: vec![
                "p99 latency of GET /search: +27.4% (95% CI +21.0% … +33.9%), fail threshold 20%.".into(),
                "Error rate of POST /cart/{id}/items: 5.2% vs 1.0% on the baseline (McNemar p < 0.001 after Holm)."
                    .into(),
                "Diff rate 0.62% is above the 0.5% pass threshold (warn), driven by POST /cart/{id}/items.".into(),
            ],
            figures: vec![
                tile("pairs", "48,210", "5 endpoints", None),
                tile("p99 latency Δ", "+27.4%", "GET /search", Some(Status::Fail)),
                tile("canary errors", "5.2%", "POST /cart/{id}/items, baseline 1.0%", Some(Status::Fail)),
                tile("diff rate", "0.62%", "threshold 0.5%", Some(Status::Warn)),
                tile("breaking diffs", "0", "", Some(Status::Pass)),
            ],
        },
        sections: sections(charts),
        footer: "shadowdiff 0.1.0 · re-render with `shadowdiff report DIR`".into(),
    })
}

/// A headline number tile.
fn tile(label: &str, value: &str, note: &str, status: Option<Status>) -> KeyFigure {
    KeyFigure { label: label.into(), value: value.into(), note: note.into(), status }
}

/// The page's sections, with the charts in their places.
fn sections([cdf, delta, errors, diffs, drift_png]: [Png; 5]) -> Vec<Section> {
    let figure =
        |png, alt: &str, caption: &str| Block::Figure(Figure { png, alt: alt.into(), caption: caption.into() });
    vec![
        Section {
            id: "checks".into(),
            title: "Checks".into(),
            intro: "Every policy check with the evidence behind it. A check fails only when its whole confidence interval lies beyond the fail threshold, and passes only when it lies within the pass threshold.".into(),
            blocks: vec![Block::Checks(checks())],
        },
        Section {
            id: "capture".into(),
            title: "Capture completeness".into(),
            intro: "How much of the traffic made it into the comparison.".into(),
            blocks: vec![
                Block::Figures(vec![
                    tile("requests seen", "48,390", "", None),
                    tile("mirrored", "48,251", "99.7%", None),
                    tile("recorded pairs", "48,210", "", None),
                    tile("skipped", "139", "mirror queue full", None),
                    tile("dropped", "41", "writer queue full", Some(Status::Warn)),
                    tile("truncated bodies", "3", "cap 1 MiB", None),
                ]),
                Block::Callout(Callout { status: Status::Warn, text: "41 pairs were dropped because the writer queue was full; the figures below exclude them.".into() }),
            ],
        },
        Section {
            id: "latency".into(),
            title: "Latency".into(),
            intro: "Both sides served the same requests at the same time, so latencies are compared pair by pair.".into(),
            blocks: vec![
                figure(cdf, "Latency CDF of baseline and canary", "Share of requests at or below each latency (log scale). A curve further right is slower; the gap at the top is the tail."),
                figure(delta, "Histogram of canary minus baseline latency per pair", "Right of the zero line the canary was slower on that request. A shifted peak is a general slowdown; a second hump is a tail regression."),
                Block::Table(DataTable {
                    caption: "Quantiles (ms), with 95% bootstrap intervals for the delta".into(),
                    columns: vec![Column::text("quantile"), Column::number("baseline"), Column::number("canary"), Column::number("Δ"), Column::text("95% CI of Δ")],
                    rows: vec![
                        Row::new(["p50", "24.6", "25.2", "+0.6 (+2.4%)", "+0.4 … +0.8"]),
                        Row::new(["p90", "43.8", "46.1", "+2.3 (+5.3%)", "+1.7 … +3.0"]),
                        Row::new(["p95", "51.9", "69.0", "+17.1 (+33%)", "+12.2 … +21.4"]).with_status(Status::Warn),
                        Row::new(["p99", "70.7", "112.8", "+42.1 (+60%)", "+35.0 … +49.9"]).with_status(Status::Fail),
                    ],
                    note: String::new(),
                }),
            ],
        },
        Section {
            id: "errors".into(),
            title: "Errors".into(),
            intro: "5xx responses and transport errors (timeouts, resets) per side.".into(),
            blocks: vec![figure(errors, "Error rate per endpoint, baseline and canary", "Blue is the baseline, orange the canary; each bar is labelled with its rate.")],
        },
        Section {
            id: "endpoints".into(),
            title: "Endpoints".into(),
            intro: String::new(),
            blocks: vec![
                Block::Table(endpoint_table()),
                figure(diffs, "Diff rate per endpoint against the threshold", "Share of pairs with a real difference (not noise, not explained, beyond tolerance). Bars right of the dashed line exceed the policy."),
            ],
        },
        Section {
            id: "fields".into(),
            title: "Field differences".into(),
            intro: "Where in the bodies the differences are. Noise differs between two baseline instances too; explained differences were declared in the policy.".into(),
            blocks: vec![Block::Table(field_table())],
        },
        Section {
            id: "drift".into(),
            title: "Numeric drift".into(),
            intro: "Numeric fields compared with tolerance instead of equality.".into(),
            blocks: vec![
                figure(drift_png, "Histogram of relative differences of /items/*/price", "Bars between the dashed lines are within tolerance; vermillion bars are beyond it."),
                Block::Table(outliers()),
            ],
        },
        Section {
            id: "examples".into(),
            title: "Example pairs".into(),
            intro: "A few pairs from failing endpoints, baseline on the left, canary on the right.".into(),
            blocks: vec![Block::Example(Box::new(json_example())), Block::Example(Box::new(text_example()))],
        },
    ]
}

/// The five charts, drawn from seeded synthetic latencies, error rates, diff rates and drifts.
fn charts() -> Result<[Png; 5]> {
    let opts = ChartOptions::default();
    let mut rng = Rng(0x5EED_CAFE);
    let n = 4000;
    let mut baseline = Vec::with_capacity(n);
    let mut canary = Vec::with_capacity(n);
    for _ in 0..n {
        let b = (3.2 + 0.45 * rng.normal()).exp();
        let slow_tail = if rng.next() < 0.04 { 40.0 + 60.0 * rng.next() } else { 0.0 };
        baseline.push(b);
        canary.push(b * (1.02 + 0.04 * rng.normal()).max(0.5) + slow_tail);
    }
    let deltas: Vec<f64> = baseline.iter().zip(&canary).map(|(b, c)| c - b).collect();
    let drift: Vec<f64> =
        (0..2500).map(|_| if rng.next() < 0.06 { 0.02 + 0.03 * rng.next() } else { 0.003 * rng.normal() }).collect();
    let endpoints = [
        ("GET /search", 0.004, 0.005, 0.0021, "+27.4%"),
        ("POST /cart/{id}/items", 0.010, 0.052, 0.0410, "+3.1%"),
        ("GET /users/{id}", 0.002, 0.003, 0.0090, "+1.2%"),
        ("GET /products/{id}", 0.001, 0.001, 0.0004, "−0.4%"),
        ("GET /health", 0.0, 0.0, 0.0, "+0.1%"),
    ];

    let cdf = charts::latency_cdf(
        &LatencyCdf { reference: "baseline", reference_ms: &baseline, canary_ms: &canary, log_x: true },
        &opts,
    )?;
    let delta = charts::latency_delta_histogram(&deltas, "baseline", &opts)?;
    let errors = charts::error_rates(
        &endpoints
            .iter()
            .map(|e| EndpointErrorRate { endpoint: e.0.into(), baseline: e.1, canary: e.2 })
            .collect::<Vec<_>>(),
        &opts,
    )?;
    let diffs = charts::diff_rates(
        &endpoints.iter().map(|e| EndpointDiffRate { endpoint: e.0.into(), rate: e.3 }).collect::<Vec<_>>(),
        0.005,
        &opts,
    )?;
    let drift_png = charts::numeric_drift(
        &NumericDrift { field: "/items/*/price", relative_deltas: &drift, tolerance: 0.01 },
        &opts,
    )?;

    Ok([cdf, delta, errors, diffs, drift_png])
}

fn checks() -> ChecksTable {
    let check = |status,
                 name: &str,
                 scope: &str,
                 value: &str,
                 threshold: &str,
                 interval: &str,
                 statistic: &str,
                 p: &str,
                 samples,
                 drivers: &str| CheckRow {
        status,
        name: name.into(),
        scope: scope.into(),
        value: value.into(),
        threshold: threshold.into(),
        interval: interval.into(),
        statistic: statistic.into(),
        p_value: p.into(),
        samples,
        drivers: drivers.into(),
    };
    ChecksTable {
        caption: String::new(),
        rows: vec![
            check(
                Status::Fail,
                "p99 latency delta",
                "GET /search",
                "+27.4%",
                "pass ≤ 10%, warn ≤ 20%",
                "95% CI +21.0% … +33.9%",
                "bootstrap, 2,000 resamples",
                "",
                18_412,
                "",
            ),
            check(
                Status::Fail,
                "error rate",
                "POST /cart/{id}/items",
                "5.2% vs 1.0%",
                "≤ baseline × 1.1",
                "Wilson 95% CI 4.4% … 6.1%",
                "McNemar χ² = 61.3",
                "< 0.001 (Holm)",
                6_120,
                "",
            ),
            check(
                Status::Warn,
                "diff rate",
                "overall",
                "0.62%",
                "pass ≤ 0.5%",
                "95% CI 0.48% … 0.79%",
                "",
                "",
                48_210,
                "POST /cart/{id}/items, GET /users/{id}",
            ),
            check(Status::Pass, "breaking differences", "overall", "0", "= 0", "", "", "", 48_210, ""),
            check(Status::Pass, "critical errors", "overall", "none", "no new error kind", "", "", "", 48_210, ""),
            check(
                Status::Pass,
                "latency shift (median)",
                "overall",
                "+0.6 ms",
                "|shift| ≤ 5 ms",
                "HL 95% CI +0.4 … +0.8 ms",
                "Wilcoxon W = 6.1·10⁸",
                "< 0.001",
                48_210,
                "",
            ),
            check(
                Status::Inconclusive,
                "p99 latency delta",
                "GET /health",
                "+0.1%",
                "pass ≤ 10%",
                "",
                "",
                "",
                140,
                "needs ≥ 500 pairs",
            ),
        ],
    }
}

fn endpoint_table() -> DataTable {
    DataTable {
        caption: "Endpoints, worst first".into(),
        columns: vec![
            Column::text("verdict"),
            Column::text("endpoint"),
            Column::number("pairs"),
            Column::number("diff rate").sorted(SortOrder::Descending),
            Column::number("errors baseline"),
            Column::number("errors canary"),
            Column::number("p50 Δ"),
            Column::number("p99 Δ"),
        ],
        rows: vec![
            Row::new([
                Cell::status(Status::Fail),
                Cell::code("POST /cart/{id}/items"),
                "6,120".into(),
                "4.10%".into(),
                "1.0%".into(),
                "5.2%".into(),
                "+1.1%".into(),
                "+3.1%".into(),
            ])
            .with_status(Status::Fail),
            Row::new([
                Cell::status(Status::Warn),
                Cell::code("GET /users/{id}"),
                "15,003".into(),
                "0.90%".into(),
                "0.2%".into(),
                "0.3%".into(),
                "+0.8%".into(),
                "+1.2%".into(),
            ])
            .with_status(Status::Warn),
            Row::new([
                Cell::status(Status::Fail),
                Cell::code("GET /search"),
                "18,412".into(),
                "0.21%".into(),
                "0.4%".into(),
                "0.5%".into(),
                "+2.0%".into(),
                "+27.4%".into(),
            ])
            .with_status(Status::Fail),
            Row::new([
                Cell::status(Status::Pass),
                Cell::code("GET /products/{id}"),
                "8,535".into(),
                "0.04%".into(),
                "0.1%".into(),
                "0.1%".into(),
                "−0.2%".into(),
                "−0.4%".into(),
            ]),
            Row::new([
                Cell::status(Status::Inconclusive),
                Cell::code("GET /health"),
                "140".into(),
                "0%".into(),
                "0%".into(),
                "0%".into(),
                "0%".into(),
                "+0.1%".into(),
            ]),
        ],
        note: "Every endpoint is listed; route templates replace ids with {id}.".into(),
    }
}

fn field_table() -> DataTable {
    DataTable {
        caption: "Fields of GET /users/{id}".into(),
        columns: vec![
            Column::text("path"),
            Column::number("pairs differing").sorted(SortOrder::Descending),
            Column::number("rate"),
            Column::number("noise rate"),
            Column::text("severity"),
            Column::text("status"),
        ],
        rows: vec![
            Row::new([
                Cell::code("/generated_at"),
                "15,003".into(),
                "100%".into(),
                "100%".into(),
                "changed".into(),
                "noise".into(),
            ]),
            Row::new([
                Cell::code("/request_id"),
                "15,003".into(),
                "100%".into(),
                "100%".into(),
                "changed".into(),
                "noise".into(),
            ]),
            Row::new([
                Cell::code("/loyalty/tier"),
                "135".into(),
                "0.90%".into(),
                "0%".into(),
                "changed".into(),
                "real".into(),
            ])
            .with_status(Status::Warn),
            Row::new([
                Cell::code("/preferences/beta"),
                "15,003".into(),
                "100%".into(),
                "0%".into(),
                "additive".into(),
                "explained: new flag, JIRA-4211".into(),
            ]),
            Row::new([
                Cell::code("/debug"),
                "12".into(),
                "0.08%".into(),
                "0%".into(),
                "breaking".into(),
                "ignored by policy".into(),
            ]),
        ],
        note: String::new(),
    }
}

fn outliers() -> DataTable {
    DataTable {
        caption: "Largest numeric drifts".into(),
        columns: vec![
            Column::text("pair"),
            Column::text("path"),
            Column::number("baseline"),
            Column::number("canary"),
            Column::number("relative Δ").sorted(SortOrder::Descending),
        ],
        rows: vec![
            Row::new([
                Cell::code("01JDQ7ZP4K"),
                Cell::code("/items/2/price"),
                "19.99".into(),
                "20.99".into(),
                "+5.0%".into(),
            ])
            .with_status(Status::Fail),
            Row::new([
                Cell::code("01JDQ80C1M"),
                Cell::code("/items/0/price"),
                "4.50".into(),
                "4.70".into(),
                "+4.4%".into(),
            ])
            .with_status(Status::Fail),
            Row::new([
                Cell::code("01JDQ81X9T"),
                Cell::code("/total"),
                "112.40".into(),
                "116.30".into(),
                "+3.5%".into(),
            ])
            .with_status(Status::Fail),
        ],
        note: String::new(),
    }
}

fn json_example() -> ExamplePair {
    ExamplePair {
        title: "GET /users/1842?expand=loyalty".into(),
        pair_id: "01JDQ7Y3M2R8".into(),
        note: "field /loyalty/tier changed; /preferences/beta added".into(),
        baseline: ExampleSide {
            status: "200".into(),
            content_type: "application/json".into(),
            body: br#"{"id":1842,"name":"Ada Lovelace","email":"ada@example.invalid","loyalty":{"tier":"gold","points":12040,"since":"2019-04-02"},"addresses":[{"kind":"home","city":"London","postcode":"N1 9GU"}],"preferences":{"newsletter":true,"currency":"GBP"},"generated_at":"2026-11-23T10:00:00.120Z","request_id":"8f1c6a52-3b2e-4d8e-9d41-0c2a7f5b1e90"}"#.to_vec(),
            truncated: false,
        },
        canary: ExampleSide {
            status: "200".into(),
            content_type: "application/json".into(),
            body: br#"{"id":1842,"name":"Ada Lovelace","email":"ada@example.invalid","loyalty":{"tier":"platinum","points":12040,"since":"2019-04-02"},"addresses":[{"kind":"home","city":"London","postcode":"N1 9GU"}],"preferences":{"newsletter":true,"currency":"GBP","beta":true},"generated_at":"2026-11-23T10:00:00.131Z","request_id":"c3d9e0aa-77f1-4b8a-8f0e-5e2d1b9c4a71"}"#.to_vec(),
            truncated: false,
        },
        highlight: Highlight::JsonPaths(vec![
            MarkedPath::new("/loyalty/tier", Mark::Changed),
            MarkedPath::new("/preferences/beta", Mark::Additive),
            MarkedPath::new("/generated_at", Mark::Noise),
            MarkedPath::new("/request_id", Mark::Noise),
        ]),
    }
}

fn text_example() -> ExamplePair {
    ExamplePair {
        title: "POST /cart/77/items".into(),
        pair_id: "01JDQ80F6ZQA".into(),
        note: "status 201 → 503".into(),
        baseline: ExampleSide {
            status: "201".into(),
            content_type: "text/plain; charset=utf-8".into(),
            body: b"item added\ncart 77: 3 items\ntotal 112.40 GBP\n".to_vec(),
            truncated: false,
        },
        canary: ExampleSide {
            status: "503".into(),
            content_type: "text/plain; charset=utf-8".into(),
            body: b"upstream connect error\ncart 77: unavailable\ntotal 112.40 GBP\n".to_vec(),
            truncated: false,
        },
        highlight: Highlight::Text,
    }
}
