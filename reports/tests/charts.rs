use shadowdiff_reports::charts::{
    ChartKind, ChartOptions, EndpointDiffRate, EndpointErrorRate, LatencyCdf, NumericDrift, Png, diff_rates,
    error_rates, latency_cdf, latency_delta_histogram, numeric_drift,
};

use crate::support::Image;

const BLUE: [u8; 3] = [0, 114, 178];
const ORANGE: [u8; 3] = [230, 159, 0];
const VERMILLION: [u8; 3] = [213, 94, 0];

/// Decodes `png` and checks what every chart must be: a PNG of the requested size, not blank.
fn check(png: &Png, kind: ChartKind, opts: &ChartOptions) -> Image {
    assert_eq!(png.kind, kind);
    assert!(png.bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{kind:?}: not a PNG");
    let image = Image::decode(&png.bytes);
    assert_eq!((image.width, image.height), (opts.width, opts.height), "{kind:?}: size");
    assert_eq!((png.width, png.height), (opts.width, opts.height));
    assert!(image.distinct_colours() >= 16, "{kind:?}: only {} colours", image.distinct_colours());
    let share = image.foreground_share();
    assert!(share > 0.01 && share < 0.9, "{kind:?}: {share:.3} of pixels are not background");
    image
}

fn latencies(n: usize, scale: f64) -> Vec<f64> {
    (1..=n).map(|i| scale * (1.0 + (i as f64 / n as f64 * 6.0).exp() / 20.0)).collect()
}

#[test]
fn latency_cdf_draws_both_sides_linear_and_log() {
    let opts = ChartOptions::default();
    let baseline = latencies(3000, 10.0);
    let canary = latencies(3000, 12.0);
    for log_x in [false, true] {
        let png = latency_cdf(
            &LatencyCdf { reference: "baseline", reference_ms: &baseline, canary_ms: &canary, log_x },
            &opts,
        )
        .unwrap();
        let image = check(&png, ChartKind::LatencyCdf, &opts);
        assert!(image.count_near(BLUE) > 500, "baseline curve in blue");
        assert!(image.count_near(ORANGE) > 500, "canary curve in orange");
    }
}

#[test]
fn latency_cdf_degenerate_inputs_say_so_instead_of_panicking() {
    let opts = ChartOptions::default();
    let cases: Vec<(Vec<f64>, Vec<f64>, bool)> = vec![
        (vec![], vec![], false),
        (vec![], vec![], true),
        (vec![f64::NAN, f64::INFINITY], vec![f64::NEG_INFINITY], false),
        (vec![5.0], vec![], false),
        (vec![7.0; 100], vec![7.0; 100], false),
        (vec![0.0, -3.0, 0.0], vec![0.0], true),
        (vec![0.0, 1e-9, 1e12], vec![f64::MAX, 1.0], true),
        (vec![1e300, 1e-300], vec![f64::MIN_POSITIVE], false),
    ];
    for (baseline, canary, log_x) in cases {
        let png = latency_cdf(
            &LatencyCdf { reference: "baseline", reference_ms: &baseline, canary_ms: &canary, log_x },
            &opts,
        )
        .unwrap_or_else(|e| panic!("{baseline:?} / {canary:?}: {e}"));
        check(&png, ChartKind::LatencyCdf, &opts);
    }
}

#[test]
fn latency_delta_histogram_handles_real_and_degenerate_input() {
    let opts = ChartOptions::default();
    let mut deltas: Vec<f64> = (0..5000).map(|i| ((i * 7919) % 200) as f64 / 10.0 - 8.0).collect();
    deltas.extend([500.0, -400.0, f64::NAN]);
    let image = check(&latency_delta_histogram(&deltas, "baseline", &opts).unwrap(), ChartKind::LatencyDelta, &opts);
    assert!(image.count_near(VERMILLION) > 50, "median line");
    for degenerate in [vec![], vec![0.0; 50], vec![3.0], vec![f64::NAN; 3], vec![-1e15, 1e15]] {
        check(&latency_delta_histogram(&degenerate, "baseline", &opts).unwrap(), ChartKind::LatencyDelta, &opts);
    }
}

#[test]
fn error_rates_draw_grouped_bars_for_few_many_and_no_endpoints() {
    let opts = ChartOptions::default();
    let row = |endpoint: String, baseline, canary| EndpointErrorRate { endpoint, baseline, canary };
    let few = vec![row("GET /users/{id}".into(), 0.01, 0.05), row("POST /cart/{id}/items".into(), 0.002, 0.002)];
    let image = check(&error_rates(&few, &opts).unwrap(), ChartKind::ErrorRates, &opts);
    assert!(image.count_near(BLUE) > 300 && image.count_near(ORANGE) > 300);
    let many: Vec<_> = (0..60)
        .map(|i| {
            row(format!("GET /a/very/long/route/template/number/{i}/with/{{id}}/segments"), i as f64 / 1000.0, f64::NAN)
        })
        .collect();
    check(&error_rates(&many, &opts).unwrap(), ChartKind::ErrorRates, &opts);
    for rows in [vec![], vec![row(String::new(), 0.0, 0.0)], vec![row("<script>".into(), -1.0, f64::INFINITY)]] {
        check(&error_rates(&rows, &opts).unwrap(), ChartKind::ErrorRates, &opts);
    }
}

#[test]
fn diff_rates_mark_endpoints_over_the_threshold() {
    let opts = ChartOptions::default();
    let rows = vec![
        EndpointDiffRate { endpoint: "GET /search".into(), rate: 0.03 },
        EndpointDiffRate { endpoint: "GET /users/{id}".into(), rate: 0.001 },
    ];
    let image = check(&diff_rates(&rows, 0.005, &opts).unwrap(), ChartKind::DiffRates, &opts);
    assert!(image.count_near(VERMILLION) > 300, "the bar over the threshold is vermillion");
    for (rows, threshold) in
        [(vec![], 0.005), (rows.clone(), 0.0), (rows.clone(), f64::NAN), (vec![EndpointDiffRate::default()], 0.0)]
    {
        check(&diff_rates(&rows, threshold, &opts).unwrap(), ChartKind::DiffRates, &opts);
    }
}

#[test]
fn numeric_drift_shows_the_tolerance_band() {
    let opts = ChartOptions::default();
    let deltas: Vec<f64> = (0..3000)
        .map(|i| ((i * 104_729) % 1000) as f64 / 50_000.0 - 0.01 + if i % 20 == 0 { 0.04 } else { 0.0 })
        .collect();
    let image = check(
        &numeric_drift(&NumericDrift { field: "/items/*/price", relative_deltas: &deltas, tolerance: 0.01 }, &opts)
            .unwrap(),
        ChartKind::NumericDrift,
        &opts,
    );
    assert!(image.count_near(VERMILLION) > 100, "bins beyond tolerance are vermillion");
    for (values, tolerance) in
        [(vec![], 0.01), (vec![0.0; 10], 0.0), (vec![0.5], f64::NAN), (vec![f64::NAN, 1e200], -0.1)]
    {
        let input = NumericDrift { field: "", relative_deltas: &values, tolerance };
        check(&numeric_drift(&input, &opts).unwrap(), ChartKind::NumericDrift, &opts);
    }
}

#[test]
fn sizes_are_honoured_and_tiny_sizes_are_raised() {
    let wide = ChartOptions { width: 1400, height: 600 };
    check(&latency_delta_histogram(&[1.0, 2.0, 3.0], "baseline", &wide).unwrap(), ChartKind::LatencyDelta, &wide);
    let png = latency_delta_histogram(&[1.0], "baseline", &ChartOptions { width: 1, height: 0 }).unwrap();
    let image = Image::decode(&png.bytes);
    assert_eq!((image.width, image.height), (ChartOptions::MIN_WIDTH, ChartOptions::MIN_HEIGHT));
}

#[test]
fn charts_save_to_disk_and_embed_as_data_uris() {
    let dir = tempfile::tempdir().unwrap();
    let png = latency_delta_histogram(&[1.0, -1.0], "baseline", &ChartOptions::default()).unwrap();
    let path = png.save_in(dir.path()).unwrap();
    assert_eq!(path, dir.path().join("latency_delta.png"));
    assert_eq!(std::fs::read(&path).unwrap(), png.bytes);
    assert!(png.data_uri().starts_with("data:image/png;base64,iVBORw0KGgo"));
    let names: Vec<String> = ChartKind::ALL.iter().map(|k| k.file_name()).collect();
    assert_eq!(
        names,
        ["latency_cdf.png", "latency_delta.png", "trend.png", "error_rates.png", "diff_rates.png", "numeric_drift.png"]
    );
}
