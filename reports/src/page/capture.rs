//! Capture completeness: what was read and analysed, what the capture cut, dropped or did not
//! mirror, and its counters.

use std::collections::BTreeMap;

use shadowdiff_format::verdict::Verdict;

use super::figures::ratio;
use crate::html::{Block, Callout, Cell, Column, DataTable, KeyFigure, Row, Section, Status};

/// The "Capture completeness" section.
pub(super) fn section(v: &Verdict) -> Section {
    let inputs = &v.inputs;
    let t = inputs.truncated;
    let count = |label: &str, n: u64| KeyFigure { label: label.into(), value: n.to_string(), ..KeyFigure::default() };
    let mut blocks = vec![Block::Figures(vec![
        count("files", inputs.files as u64),
        count("pairs in files", inputs.pairs_in_files),
        count("pairs analysed", inputs.pairs_analyzed),
        count("canary skipped", v.overall.canary_skipped),
        KeyFigure {
            note: format!("baseline {} · canary {} · request {}", t.baseline, t.canary, t.request),
            ..count("bodies truncated", t.baseline + t.canary)
        },
    ])];
    let truncated = t.baseline + t.canary;
    if truncated > 0 {
        blocks.push(callout(
            Status::Warn,
            format!(
                "{truncated} response bodies were cut at the capture's size cap (or their decoded content at analyze's --max-decoded-body); their differences were looked for only in the part kept. Raise the cap (docs/capture.md) if that part matters."
            ),
        ));
    }
    let u = inputs.undecodable;
    if !u.is_zero() {
        blocks.push(callout(
            Status::Warn,
            format!(
                "{} response bodies could not be decoded by their Content-Encoding or as gRPC messages (baseline {} · canary {} · secondary {}): an unknown coding or a broken stream, or a gRPC message that is malformed or not of its method's type. Each is one (body) difference that says why; their content was not compared.",
                u.total(),
                u.baseline,
                u.canary,
                u.secondary
            ),
        ));
    }
    let keys = &inputs.route_keys;
    let unkeyed = keys.unkeyed_total();
    if unkeyed > 0 {
        let why: Vec<String> =
            keys.unkeyed.iter().take(5).map(|u| format!("{}: {} ×{}", u.route, u.reason, u.requests)).collect();
        blocks.push(callout(
            Status::Warn,
            format!(
                "{unkeyed} requests on paths with a [[routes.key]] rule kept their plain route because no key could be read from them ({}{}); {} were routed by their key.",
                why.join("; "),
                if keys.unkeyed.len() > why.len() { "; …" } else { "" },
                keys.keyed
            ),
        ));
    }
    blocks.extend(counter_callouts(&inputs.counters));
    let rows = inputs.counters.iter().map(|(k, c)| Row::new([Cell::code(k.clone()), c.to_string().into()])).collect();
    blocks.push(Block::Table(DataTable {
        caption: "Capture counters (summed over capture runs)".into(),
        columns: vec![Column::text("counter"), Column::number("value")],
        rows,
        note: String::new(),
    }));
    let overflow = v.route_overflow.requests;
    if overflow > 0 {
        blocks.push(callout(
            Status::Warn,
            format!("{overflow} requests fell outside the route table and were grouped together."),
        ));
    }
    Section {
        id: "capture".into(),
        title: "Capture completeness".into(),
        intro: "What was read and what was analysed.".into(),
        blocks,
    }
}

fn callout(status: Status, text: String) -> Block {
    Block::Callout(Callout { status, text })
}

/// What the capture counters say was lost or left out on purpose.
fn counter_callouts(counters: &BTreeMap<String, u64>) -> Vec<Block> {
    let get = |k: &str| counters.get(k).copied().unwrap_or(0);
    let (seen, dropped, skipped) = (get("seen"), get("dropped"), get("skipped"));
    let not_mirrored: u64 = counters.iter().filter(|(k, _)| k.starts_with("mirror_skipped.")).map(|(_, c)| c).sum();
    let mut blocks = Vec::new();
    if dropped > 0 {
        blocks.push(callout(
            Status::Warn,
            format!(
                "{dropped} of {seen} requests were served but not recorded (the writer's queue was full or the agent stopped); the figures describe the pairs that were recorded."
            ),
        ));
    }
    if skipped > 0 {
        blocks.push(callout(
            Status::Pass,
            format!(
                "{skipped} of {seen} requests were not recorded by choice (sampling, path filters, upgrades); see the skipped.* counters."
            ),
        ));
    }
    if not_mirrored > 0 {
        blocks.push(callout(
            if ratio(not_mirrored, seen) > 0.05 { Status::Warn } else { Status::Pass },
            format!(
                "{not_mirrored} of {seen} recorded requests were not mirrored to the canary (methods not mirrored, the body cap, the in-flight bound); they count as canary skipped and are left out of every figure. See the mirror_skipped.* counters."
            ),
        ));
    }
    blocks
}
