//! Example pairs, side by side, from `examples.json`: the endpoints that failed or warned a check
//! first, their differences marked by kind.

use shadowdiff_format::examples::{self, Example};
use shadowdiff_format::media::{Claim, claim};
use shadowdiff_format::verdict::Verdict;
use shadowdiff_format::vocab::BODY_FIELD;
use shadowdiff_format::vocab::{DiffStatus, Outcome, Severity};

use super::{any_check, rank, route_status};
use crate::html::{Block, ExamplePair, ExampleSide, Highlight, Mark, MarkedPath, Section};

/// Routes whose examples the report shows; `examples.json` keeps the rest.
pub const MAX_EXAMPLE_ROUTES: usize = 10;

/// The "Example pairs" section; `error` says why `examples.json` could not be read.
pub(super) fn section(v: &Verdict, examples: &[Example], error: Option<&str>) -> Section {
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
    routes.sort_by_key(|r| std::cmp::Reverse(route_status(v, r, any_check).map(rank)));
    let left_out = routes.len().saturating_sub(MAX_EXAMPLE_ROUTES);
    for route in routes.into_iter().take(MAX_EXAMPLE_ROUTES) {
        for e in examples.iter().filter(|e| e.route == route) {
            blocks.push(Block::Example(Box::new(pair(e))));
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

fn side(side: &examples::ExampleSide) -> ExampleSide {
    let status = match (side.status, &side.error) {
        (Some(s), None) => s.to_string(),
        (Some(s), Some(e)) => format!("{s} ({e})"),
        (None, Some(e)) => format!("no response ({e})"),
        (None, None) => "no response".to_owned(),
    };
    // A gRPC answer's outcome is its grpc-status, by name, beside the HTTP status.
    let status = match &side.grpc_status {
        Some(g) => format!("{status} · grpc {g}"),
        None => status,
    };
    let content_type = side.content_type.clone().unwrap_or_default();
    if let Some(messages) = &side.messages {
        // gRPC messages as analyze decoded and compared them; the difference paths
        // (`/price/units`, `/2/name`) point into this JSON.
        let what = match messages.as_array() {
            Some(list) => format!("its {} messages", list.len()),
            None => "its message".to_owned(),
        };
        let how = match side.decoded_as.as_deref() {
            Some("wire format") | None => "decoded by the wire format, fields by number".to_owned(),
            Some(t) if t.starts_with("wire format (") => {
                format!("decoded by the wire format, fields by number {}", &t["wire format ".len()..])
            }
            Some(t) => format!("decoded as {t}"),
        };
        return ExampleSide {
            status,
            content_type: format!("{content_type} — shown as {what}, {how}"),
            body: serde_json::to_vec(messages).unwrap_or_default(),
            truncated: false,
        };
    }
    match &side.events {
        // A stream is shown as the list of events analyze compared, which the difference paths
        // (`/3/data/price`) point into; a cut stream's list holds its complete events only.
        Some(events) => ExampleSide {
            status,
            content_type: format!(
                "{content_type} — shown as its {} events{}",
                events.as_array().map_or(0, Vec::len),
                if side.truncated { " (the stream was cut: complete events only)" } else { "" }
            ),
            body: serde_json::to_vec(events).unwrap_or_default(),
            truncated: false,
        },
        None => ExampleSide { status, content_type, body: side.body_bytes(), truncated: side.truncated },
    }
}

/// How a difference is marked in the bodies.
fn mark(status: DiffStatus, severity: Severity) -> Mark {
    match (status, severity) {
        (DiffStatus::Real, Severity::Breaking) => Mark::Breaking,
        (DiffStatus::Real, Severity::Additive) => Mark::Additive,
        (DiffStatus::Real, Severity::Changed) => Mark::Changed,
        _ => Mark::Noise,
    }
}

fn pair(e: &Example) -> ExamplePair {
    let json_paths: Vec<MarkedPath> = e
        .differences
        .iter()
        .filter(|d| d.location == "body" && d.field != BODY_FIELD)
        .map(|d| MarkedPath::new(d.path.clone(), mark(d.status, d.severity)))
        .collect();
    let json = |side: &examples::ExampleSide| {
        side.events.is_some() || side.messages.is_some() || claim(side.content_type.as_deref()) == Claim::Json
    };
    let highlight = if e.outcome == Outcome::Different && !json_paths.is_empty() {
        Highlight::JsonPaths(json_paths)
    } else if e.outcome != Outcome::Different && json(&e.baseline) && json(&e.canary) {
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
            let what = if d.status == DiffStatus::Real { d.kind.as_str() } else { d.status.as_str() };
            format!("{} ({what})", d.path.trim_start_matches("header:"))
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
        baseline: side(&e.baseline),
        canary: side(&e.canary),
        highlight,
    }
}
