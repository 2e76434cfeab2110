use std::collections::HashSet;

use shadowdiff_reports::html::{
    Block, Cell, Column, DataTable, ExamplePair, ExampleSide, Highlight, Mark, MarkedPath, ReportPage, Row, Section,
};

use crate::demo_page::demo_page;

/// A decoded PNG: size and RGB pixels.
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<[u8; 3]>,
}

impl Image {
    pub fn decode(bytes: &[u8]) -> Image {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
        let info = reader.next_frame(&mut buf).expect("PNG image data");
        let channels = info.color_type.samples();
        let pixels = buf[..info.buffer_size()]
            .chunks(channels)
            .map(|p| match channels {
                1 | 2 => [p[0], p[0], p[0]],
                _ => [p[0], p[1], p[2]],
            })
            .collect();
        Image { width: info.width, height: info.height, pixels }
    }

    pub fn distinct_colours(&self) -> usize {
        self.pixels.iter().collect::<HashSet<_>>().len()
    }

    /// Share of pixels that differ from the most common colour (the background).
    pub fn foreground_share(&self) -> f64 {
        let mut counts = std::collections::HashMap::new();
        for p in &self.pixels {
            *counts.entry(*p).or_insert(0usize) += 1;
        }
        let background = counts.values().copied().max().unwrap_or(0);
        1.0 - background as f64 / self.pixels.len() as f64
    }

    /// Pixels close to `rgb` (each channel within 12).
    pub fn count_near(&self, rgb: [u8; 3]) -> usize {
        self.pixels.iter().filter(|p| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 12)).count()
    }
}

pub const SCRIPT: &str = "<script>alert(1)</script>";
pub const IMG: &str = "<img src=x onerror=alert(1)>";
pub const TEXTAREA: &str = "</textarea><b>bold</b>";
pub const JS_URL: &str = "javascript:alert(1)";
pub const REMOTE: &str = "<img src=\"https://attacker.invalid/pixel.png\"><a href=\"http://attacker.invalid/\">x</a>";

/// The demo page plus a section where every captured or user-controlled string is hostile.
pub fn hostile_page() -> ReportPage {
    let mut page = demo_page().expect("the demo page renders");
    let hostile_body = format!(
        "{{\"comment\": \"{}\", \"avatar\": \"{}\", \"link\": \"{JS_URL}\", \"bio\": \"{}\"}}",
        SCRIPT,
        IMG.replace('"', "\\\""),
        TEXTAREA
    );
    let side = |body: Vec<u8>| ExampleSide {
        status: "200".into(),
        content_type: "application/json".into(),
        body,
        truncated: false,
    };
    let mut text_canary =
        format!("{SCRIPT}\n{IMG}\n{TEXTAREA}\n{REMOTE}\n<a href=\"{JS_URL}\">click</a>\n").into_bytes();
    text_canary.extend_from_slice(b"invalid utf-8: \xff\xfe\xc3\x28 end\n");
    page.sections.push(Section {
        id: "hostile <script>\"".into(),
        title: format!("Hostile {SCRIPT}"),
        intro: format!("intro {IMG}"),
        blocks: vec![
            Block::Paragraph(format!("paragraph {TEXTAREA} {JS_URL}")),
            Block::Table(DataTable {
                caption: format!("caption {SCRIPT}"),
                columns: vec![Column::text(format!("col {IMG}")), Column::text("value")],
                rows: vec![Row::new([Cell::code(format!("GET /{SCRIPT}")), Cell::from(REMOTE)])],
                note: JS_URL.into(),
            }),
            Block::Example(Box::new(ExamplePair {
                title: format!("GET /comments?q={SCRIPT}"),
                pair_id: IMG.into(),
                note: TEXTAREA.into(),
                baseline: side(br#"{"comment": "hello", "avatar": "a.png", "link": "/u/1", "bio": ""}"#.to_vec()),
                canary: side(hostile_body.into_bytes()),
                highlight: Highlight::JsonPaths(vec![
                    MarkedPath::new("/comment", Mark::Changed),
                    MarkedPath::new("/avatar", Mark::Breaking),
                ]),
            })),
            Block::Example(Box::new(ExamplePair {
                title: "POST /render".into(),
                pair_id: "p-2".into(),
                note: String::new(),
                baseline: ExampleSide {
                    status: "200".into(),
                    content_type: format!("text/html {SCRIPT}"),
                    body: b"<p>safe</p>\n".to_vec(),
                    truncated: false,
                },
                canary: ExampleSide {
                    status: IMG.into(),
                    content_type: "text/html".into(),
                    body: text_canary,
                    truncated: true,
                },
                highlight: Highlight::Text,
            })),
        ],
    });
    page.verdict.reasons.push(format!("reason {SCRIPT}"));
    page.facts.push(shadowdiff_reports::html::Fact::new(IMG, REMOTE));
    page
}

/// The page with volatile parts replaced: embedded images and the generation time.
pub fn redact(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    const PREFIX: &str = "data:image/png;base64,";
    while let Some(i) = rest.find(PREFIX) {
        out.push_str(&rest[..i + PREFIX.len()]);
        out.push_str("[png]");
        rest = &rest[i + PREFIX.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    let start = "<dd class=\"generated\">";
    if let Some(i) = out.find(start) {
        let from = i + start.len();
        if let Some(len) = out[from..].find("</dd>") {
            out.replace_range(from..from + len, "[generated]");
        }
    }
    out
}

/// Every start tag's name and attributes (name, value), with `<style>` content skipped.
/// Escaped text holds no raw `<`, so each `<` starts real markup.
pub fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        if rest.starts_with('/') || rest.starts_with('!') {
            continue;
        }
        let end = rest.find('>').expect("every tag is closed");
        let tag = &rest[..end];
        let name: String =
            tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        let attrs = attributes(&tag[name.len()..]);
        rest = &rest[end + 1..];
        if name == "style" {
            let close = rest.find("</style>").expect("style is closed");
            rest = &rest[close..];
        }
        out.push((name, attrs));
    }
    out
}

fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.trim().trim_end_matches('/').trim();
    while !chars.is_empty() {
        let name_end = chars.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(chars.len());
        let name = chars[..name_end].to_ascii_lowercase();
        chars = chars[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = chars.strip_prefix('=') {
            let after = after.trim_start();
            if let Some(q) = after.strip_prefix('"') {
                let close = q.find('"').expect("quoted attribute closes");
                value = q[..close].to_owned();
                chars = q[close + 1..].trim_start();
            } else {
                let close = after.find(char::is_whitespace).unwrap_or(after.len());
                value = after[..close].to_owned();
                chars = after[close..].trim_start();
            }
        }
        out.push((name, value));
    }
    out
}

/// Analyzes the pair files under `input` with the default policy into `out`, writes verdict.json
/// and then junit.xml, summary.md and the report from the typed verdict, as `shadowdiff analyze`
/// does.
pub fn analyze_and_report(
    input: &std::path::Path,
    out: &std::path::Path,
) -> (shadowdiff_analyze::pipeline::Analysis, shadowdiff_reports::Written) {
    let policy = shadowdiff_analyze::Policy::default();
    let analysis = shadowdiff_analyze::pipeline::run(
        &[input.to_str().expect("a UTF-8 path")],
        &policy,
        &shadowdiff_analyze::pipeline::Options::new(out),
        &shadowdiff_analyze::pipeline::Quiet,
    )
    .expect("analyze runs");
    let mut verdict = shadowdiff_analyze::judge::judge(&analysis, &policy);
    shadowdiff_analyze::verdict::write(&mut verdict, out).expect("verdict written");
    let written = shadowdiff_reports::write_outputs(out, &verdict).expect("report written");
    (analysis, written)
}
