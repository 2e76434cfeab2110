use chrono::{DateTime, TimeDelta, Utc};
use shadowdiff_format::verdict::{CheckId, Ci, Status, Verdict, WindowCheck, WindowRow};
use shadowdiff_reports::charts::{ChartKind, ChartOptions, TrendPanel, TrendPoint, trend};
use shadowdiff_reports::read_verdict;

use crate::support::{Image, analyze_and_report};

/// The report's status colours (style.css `--pass`, `--warn`, `--fail`).
const PASS: [u8; 3] = [26, 127, 55];
const WARN: [u8; 3] = [154, 103, 0];
const FAIL: [u8; 3] = [207, 34, 46];

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    format!("2026-03-02T{hour:02}:{minute:02}:00Z").parse().unwrap()
}

/// Eight 15-minute windows from 08:00 of the run `v` judged: a regression from 09:00 — the
/// latency check warns at 09:00 and 09:15 and fails after, the diff rate fails from 09:00; the
/// 08:15 window is inconclusive.
fn with_windows(mut v: Verdict) -> Verdict {
    let limit = |id| v.check(id).map(|c| c.threshold).unwrap();
    let (latency, diff) = (limit(CheckId::LatencyP99), limit(CheckId::DiffRate));
    v.windows = (0..8)
        .map(|i| {
            let start = at(8, 0) + TimeDelta::minutes(15 * i);
            let late = i >= 4;
            let status_of = |id: CheckId| match (id, late, i) {
                (_, false, 1) => Status::Inconclusive,
                (CheckId::LatencyP99, true, 4 | 5) => Status::Warn,
                (CheckId::LatencyP99 | CheckId::DiffRate, true, _) => Status::Fail,
                _ => Status::Pass,
            };
            let figure = |id: CheckId| match id {
                CheckId::LatencyP99 if i >= 6 => Some(latency.warn * 1.6),
                CheckId::LatencyP99 if late => Some((latency.pass + latency.warn) / 2.0),
                CheckId::LatencyP99 => Some(latency.pass * 0.2 * (i as f64 - 1.5)),
                CheckId::DiffRate if late => Some(diff.warn * 1.5),
                CheckId::DiffRate => Some(diff.pass * 0.3),
                CheckId::ErrorRate => Some(0.004 + 0.001 * i as f64),
                _ => None,
            };
            let checks = v
                .checks
                .iter()
                .map(|c| {
                    let value = figure(c.id);
                    let ci = (c.id == CheckId::LatencyP99)
                        .then(|| {
                            value.map(|x| Ci {
                                low: x - latency.pass * 0.4,
                                high: x + latency.pass * 0.4,
                                confidence: 0.95,
                            })
                        })
                        .flatten();
                    WindowCheck { id: c.id, status: status_of(c.id), value, ci, n: 150 }
                })
                .collect();
            let verdict = if late {
                Status::Fail
            } else if i == 1 {
                Status::Inconclusive
            } else {
                Status::Pass
            };
            WindowRow { start, end: start + TimeDelta::minutes(15), pairs: 150 + i as u64, verdict, checks }
        })
        .collect();
    v
}

/// A real analysis rendered without windows writes no trend chart, no "Over time" section and
/// no windows table; the same verdict with windows gets all three, and a re-render without them
/// removes the chart again.
#[test]
fn windows_add_the_over_time_section_chart_and_summary_table() {
    use shadowdiff_fixtures::corpus::{CorpusConfig, generate};

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let mut cfg = CorpusConfig::new(800, &input);
    cfg.seed = 11;
    generate(&cfg).unwrap();
    let out = dir.path().join("out");
    let (_, plain) = analyze_and_report(&input, &out);
    let trend_png = out.join("charts").join("trend.png");
    assert!(!trend_png.exists(), "no trend chart without windows");
    assert!(!plain.charts.contains(&trend_png));
    let html = std::fs::read_to_string(&plain.report).unwrap();
    assert!(!html.contains("Over time"), "no section without windows");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(!summary.contains("<summary>Windows</summary>"));

    let verdict = read_verdict(&out).unwrap();
    assert!(verdict.windows.is_empty());
    let windowed = with_windows(verdict.clone());
    let written = shadowdiff_reports::write_outputs(&out, &windowed).unwrap();
    assert!(written.charts.contains(&trend_png), "{:?}", written.charts);

    // The chart: a PNG of the page's size, with fail, warn and pass markers and limits.
    let image = Image::decode(&std::fs::read(&trend_png).unwrap());
    assert_eq!((image.width, image.height), (900, 780));
    assert!(image.distinct_colours() >= 16);
    let share = image.foreground_share();
    assert!(share > 0.02 && share < 0.6, "{share:.3} of pixels drawn");
    for (name, rgb) in [("pass", PASS), ("warn", WARN), ("fail", FAIL)] {
        assert!(image.count_near(rgb) > 40, "{name} markers or limits: {} pixels", image.count_near(rgb));
    }

    // The section: after Latency, before Errors, with one row per window.
    let html = std::fs::read_to_string(&written.report).unwrap();
    let position = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle} missing"));
    let section = position("<h2>Over time</h2>");
    assert!(position("<h2>Latency</h2>") < section, "Over time follows Latency");
    assert!(section < position("<h2>Errors"), "Over time comes before Errors");
    let body = &html[section..];
    let body = &body[..body[4..].find("<h2>").map_or(body.len(), |e| e + 4)];
    assert!(body.contains("8 windows of 15m"), "intro names the windows");
    assert!(body.contains("data:image/png;base64,"), "the chart is embedded");
    for i in 0..8 {
        let start = at(8, 0) + TimeDelta::minutes(15 * i);
        let end = start + TimeDelta::minutes(15);
        let span = format!("{} – {}", start.format("%Y-%m-%d %H:%M"), end.format("%H:%M"));
        assert!(body.contains(&span), "row for {span}");
        assert!(body.contains(&format!(">{}</td>", 150 + i)), "pairs of {span}");
    }
    assert_eq!(body.matches("<tr class=\"row-fail\">").count(), 4, "four failed windows");
    assert_eq!(body.matches("<tr class=\"row-inconclusive\">").count(), 1);
    for id in ["latency_p99", "error_rate", "diff_rate"] {
        assert!(body.contains(&format!("scope=\"col\">{id}</th>")), "column {id}");
    }

    // summary.md: a collapsed table with each window and the checks that warned or failed.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let table = summary.split("<details><summary>Windows</summary>").nth(1).expect("a windows table");
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| 2026-03-02")).collect();
    assert_eq!(rows.len(), 8, "{table}");
    assert!(rows[0].starts_with("| 2026-03-02 08:00 – 08:15 | 150 | ✅ pass | – |"), "{}", rows[0]);
    assert!(rows[1].contains("❔ inconclusive"), "{}", rows[1]);
    assert!(
        rows[5].contains("❌ fail") && rows[5].contains("⚠️ latency_p99 +") && rows[5].contains("❌ diff_rate"),
        "{}",
        rows[5]
    );
    assert!(rows[7].contains("❌ latency_p99 +"), "{}", rows[7]);
    assert!(!rows[5].contains("error_rate"), "passing checks are not listed: {}", rows[5]);

    // Re-rendered without windows, the chart goes away with the section.
    let again = shadowdiff_reports::write_outputs(&out, &verdict).unwrap();
    assert!(!trend_png.exists(), "the stale trend chart is removed");
    assert!(!std::fs::read_to_string(&again.report).unwrap().contains("Over time"));
}

/// The chart alone: every status drawn in its colour and shape, limits in their colours, and
/// no windows says so instead of drawing an empty axis.
#[test]
fn trend_chart_draws_statuses_limits_and_no_data() {
    let opts = ChartOptions { width: 900, height: 780 };
    let statuses = [Status::Pass, Status::Pass, Status::Inconclusive, Status::Warn, Status::Fail, Status::Fail];
    let points = |scale: f64| {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| TrendPoint {
                start: at(10, 0) + TimeDelta::hours(i as i64),
                value: Some(scale * i as f64),
                ci: Some((scale * (i as f64 - 0.5), scale * (i as f64 + 0.5))),
                status: *s,
            })
            .collect()
    };
    let panel = |title: &str, scale: f64, thresholds| TrendPanel {
        title: title.into(),
        unit: shadowdiff_format::vocab::Unit::Relative,
        points: points(scale),
        thresholds,
        note: String::new(),
    };
    let panels = [
        panel("latency", 0.05, Some((0.1, 0.2))),
        panel("errors", 0.001, None),
        panel("diffs", 0.01, Some((0.02, 0.04))),
    ];
    let png = trend(&panels, TimeDelta::hours(1), &opts).unwrap();
    assert_eq!(png.kind, ChartKind::Trend);
    let image = Image::decode(&png.bytes);
    assert_eq!((image.width, image.height), (900, 780));
    for rgb in [PASS, WARN, FAIL] {
        assert!(image.count_near(rgb) > 40);
    }

    let empty = trend(&[], TimeDelta::minutes(15), &opts).unwrap();
    let image = Image::decode(&empty.bytes);
    assert_eq!(image.count_near(FAIL), 0, "nothing judged, nothing red");
    assert!(image.foreground_share() > 0.005, "says there is no data");
}
