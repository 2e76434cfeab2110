use shadowdiff_reports::html::render_page;

use crate::demo_page::demo_page;
use crate::support::{analyze_and_report, redact};

/// The demo page's HTML with embedded images and the generation time redacted. A change here
/// is a change to what every report looks like: review the diff, then `cargo insta accept`
/// (or rerun with `INSTA_UPDATE=always`).
#[test]
fn demo_page_structure() {
    let html = render_page(&demo_page().unwrap()).unwrap();
    let redacted = redact(&html);
    assert!(redacted.contains("data:image/png;base64,[png]"));
    assert!(redacted.contains("<dd class=\"generated\">[generated]</dd>"));
    insta::assert_snapshot!("demo_page", redacted);
}

/// The page's outline: one line per heading, caption, column header, list item, figure and
/// example title, and the row count of each table. What a reader sees and in what order,
/// without the bulk of bodies and images.
fn outline(html: &str) -> String {
    let html = html.split("</style>").nth(1).unwrap_or(html);
    let mut out = Vec::new();
    let mut rest = html;
    let mut rows = 0usize;
    let wanted = ["h1", "h2", "h3", "caption", "th", "li", "figcaption", "summary"];
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag_text = &rest[..end];
        let name: String = tag_text.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '/').collect();
        let class = tag_text.split("class=\"").nth(1).and_then(|c| c.split('"').next()).unwrap_or("");
        match name.as_str() {
            "tr" => rows += 1,
            "table" => rows = 0,
            "/table" => out.push(format!("  rows: {}", rows.saturating_sub(1))),
            n if wanted.contains(&n) || (n == "p" && class == "headline") || class == "req" || class == "why" => {
                let close = format!("</{n}>");
                let body = &rest[end + 1..];
                let inner = &body[..body.find(&close).unwrap_or(0)];
                let text = strip_tags(inner).split_whitespace().collect::<Vec<_>>().join(" ");
                out.push(format!("{n}{}: {text}", if class.is_empty() { String::new() } else { format!(".{class}") }));
            }
            _ => {}
        }
    }
    out.join("\n")
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// A report analyze wrote from a seeded corpus with the canary profile's regressions: the
/// outline of report.html and the whole summary.md. Both are deterministic for a seed except
/// the generation time, which the outline does not include.
#[test]
fn analyzed_report_outline_and_summary() {
    use shadowdiff_fixtures::corpus::{CorpusConfig, generate};
    use shadowdiff_fixtures::{Profile, Scoped};

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let mut cfg = CorpusConfig::new(3000, &input);
    cfg.seed = 7;
    cfg.canary = Profile::canary();
    cfg.canary.effects.push(Scoped::parse("fault:reset:0.02@/api/search").unwrap());
    generate(&cfg).unwrap();
    let out = dir.path().join("out");
    let (_, written) = analyze_and_report(&input, &out);
    assert_eq!(written.charts.len(), 5);
    let html = std::fs::read_to_string(&written.report).unwrap();
    insta::assert_snapshot!("analyzed_report_outline", outline(&html));
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    insta::assert_snapshot!("analyzed_summary_md", summary);
}
