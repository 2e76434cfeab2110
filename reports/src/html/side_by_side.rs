//! Baseline and canary bodies laid out side by side with their differences marked.
//!
//! Text bodies are aligned line by line with `similar`, and changed line pairs are diffed again
//! word by word. JSON bodies are pretty-printed (keeping each side's key order) with the JSON
//! pointer of every line remembered, aligned the same way, and the lines at or under the paths
//! analyze reported are marked by kind; lines that differ without being reported (ignored or
//! normalised fields) stay quiet. Long unchanged runs collapse to "n unchanged lines".
//!
//! Everything here produces plain strings; the template escapes them.

use std::time::Duration;

use serde_json::Value;
use similar::{ChangeTag, DiffOp, TextDiff};

use super::model::{ExamplePair, ExampleSide, Highlight, Mark, MarkedPath};

/// Unchanged lines kept around each change.
const CONTEXT: usize = 3;
/// Bytes of a body considered; the rest is cut with a note.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Bytes of a binary body shown as hex.
const MAX_HEX_BYTES: usize = 2048;
/// Rows shown after collapsing.
const MAX_ROWS: usize = 600;
/// Lines longer than this are marked whole instead of word by word.
const MAX_WORD_DIFF_CHARS: usize = 4000;
/// How long `similar` may search for a minimal diff before settling for a good one.
const DIFF_TIMEOUT: Duration = Duration::from_millis(250);

/// The computed side-by-side view of an [`ExamplePair`].
#[derive(Debug, Clone, PartialEq)]
pub struct SideBySide {
    /// How the bodies were compared: "JSON", "text" or "binary (hex)".
    pub mode: &'static str,
    /// Rows, top to bottom.
    pub rows: Vec<SbsRow>,
    /// Caveats for the reader (truncation, invalid UTF-8, fallback to text).
    pub notes: Vec<String>,
    /// The marks that occur, for the legend.
    pub marks: Vec<Mark>,
}

/// A row of the side-by-side table.
#[derive(Debug, Clone, PartialEq)]
pub enum SbsRow {
    /// A line of each side; `None` where one side has no counterpart.
    Lines {
        /// Baseline line.
        left: Option<SbsLine>,
        /// Canary line.
        right: Option<SbsLine>,
    },
    /// Unchanged lines left out.
    Skipped(usize),
}

/// One line of one side.
#[derive(Debug, Clone, PartialEq)]
pub struct SbsLine {
    /// 1-based line number in that side's (pretty-printed) body.
    pub number: usize,
    /// CSS class: `same`, `del`, `ins`, `quiet` or a [`Mark::class`].
    pub class: &'static str,
    /// Gutter symbol repeating the class without colour (`−`, `+`, a [`Mark::symbol`]).
    pub symbol: &'static str,
    /// The text, in runs; emphasised runs are the words that changed.
    pub segments: Vec<Segment>,
}

/// A run of text within a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The text.
    pub text: String,
    /// Whether this run changed.
    pub emphasis: bool,
}

impl ExamplePair {
    /// Computes the side-by-side view. Never fails: what cannot be parsed is shown as text,
    /// what is not text is shown as hex, and each such step leaves a note.
    pub fn side_by_side(&self) -> SideBySide {
        let mut notes = Vec::new();
        for (side, name) in [(&self.baseline, "baseline"), (&self.canary, "canary")] {
            if side.truncated {
                notes.push(format!("The {name} body was cut at the capture size cap; only its start is shown."));
            }
        }
        if let Highlight::JsonPaths(paths) = &self.highlight {
            match (parse_json(&self.baseline), parse_json(&self.canary)) {
                (Some(left), Some(right)) => {
                    let left = json_lines(&left);
                    let right = json_lines(&right);
                    let mut view = layout(&left, &right, Some(paths));
                    view.notes.splice(0..0, notes);
                    return view;
                }
                (l, r) => {
                    let which: Vec<&str> = [(l.is_none(), "baseline"), (r.is_none(), "canary")]
                        .into_iter()
                        .filter_map(|(bad, name)| bad.then_some(name))
                        .collect();
                    notes.push(format!(
                        "The {} body is not JSON, so the bodies are compared as text.",
                        which.join(" and ")
                    ));
                }
            }
        }
        let (left, left_binary) = text_lines(&self.baseline, "baseline", &mut notes);
        let (right, right_binary) = text_lines(&self.canary, "canary", &mut notes);
        let mut view = layout(&left, &right, None);
        if left_binary || right_binary {
            view.mode = "binary (hex)";
        }
        view.notes.splice(0..0, notes);
        view
    }
}

/// A body line and, for JSON, the pointer of the value it belongs to.
struct Line {
    text: String,
    pointer: Option<String>,
}

fn parse_json(side: &ExampleSide) -> Option<Value> {
    if side.body.is_empty() || side.body.len() > MAX_BODY_BYTES || side.truncated {
        return None;
    }
    serde_json::from_slice(&side.body).ok()
}

/// Pretty-prints `value` two spaces per level, remembering each line's JSON pointer.
fn json_lines(value: &Value) -> Vec<Line> {
    let mut out = Vec::new();
    emit(value, String::new(), 0, String::new(), false, &mut out);
    out
}

fn emit(value: &Value, pointer: String, depth: usize, key: String, comma: bool, out: &mut Vec<Line>) {
    let indent = "  ".repeat(depth);
    let tail = if comma { "," } else { "" };
    let (open, close, children): (&str, &str, Vec<(String, String, &Value)>) = match value {
        Value::Object(map) if !map.is_empty() => (
            "{",
            "}",
            map.iter().map(|(k, v)| (format!("{}: ", Value::String(k.clone())), escape_token(k), v)).collect(),
        ),
        Value::Array(items) if !items.is_empty() => {
            ("[", "]", items.iter().enumerate().map(|(i, v)| (String::new(), i.to_string(), v)).collect())
        }
        scalar => {
            out.push(Line { text: format!("{indent}{key}{scalar}{tail}"), pointer: Some(pointer) });
            return;
        }
    };
    out.push(Line { text: format!("{indent}{key}{open}"), pointer: Some(pointer.clone()) });
    let last = children.len().saturating_sub(1);
    for (i, (child_key, token, child)) in children.into_iter().enumerate() {
        emit(child, format!("{pointer}/{token}"), depth + 1, child_key, i < last, out);
    }
    out.push(Line { text: format!("{indent}{close}{tail}"), pointer: Some(pointer) });
}

/// RFC 6901 escaping of one reference token.
fn escape_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The body as display lines: text (invalid UTF-8 replaced, control characters made visible)
/// or, for binary bodies, a hex dump. Returns whether it was binary.
fn text_lines(side: &ExampleSide, name: &str, notes: &mut Vec<String>) -> (Vec<Line>, bool) {
    let mut body = side.body.as_slice();
    if body.is_empty() {
        return (Vec::new(), false);
    }
    if looks_binary(body) {
        let shown = body.len().min(MAX_HEX_BYTES);
        notes.push(format!(
            "The {name} body looks binary ({} bytes); {} shown as hex.",
            body.len(),
            if shown < body.len() { format!("its first {shown} bytes are") } else { "it is".to_owned() }
        ));
        let lines = body[..shown]
            .chunks(16)
            .enumerate()
            .map(|(i, chunk)| Line { text: hex_line(i * 16, chunk), pointer: None })
            .collect();
        return (lines, true);
    }
    if body.len() > MAX_BODY_BYTES {
        notes.push(format!("Only the first {} KiB of the {name} body are shown.", MAX_BODY_BYTES / 1024));
        body = &body[..MAX_BODY_BYTES];
    }
    let text = match std::str::from_utf8(body) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => {
            notes.push(format!("The {name} body is not valid UTF-8; invalid bytes are shown as �."));
            String::from_utf8_lossy(body)
        }
    };
    // A final newline ends the last line; it does not start an empty one.
    let text_body = text.strip_suffix('\n').unwrap_or(&text);
    let lines = text_body
        .split('\n')
        .map(|l| Line { text: visible(l.strip_suffix('\r').unwrap_or(l)), pointer: None })
        .collect();
    (lines, false)
}

/// Binary: a NUL byte, or many control bytes, in the first KiB.
fn looks_binary(body: &[u8]) -> bool {
    let head = &body[..body.len().min(1024)];
    let controls = head.iter().filter(|b| b.is_ascii_control() && !matches!(b, b'\n' | b'\r' | b'\t')).count();
    head.contains(&0) || controls * 10 > head.len()
}

fn hex_line(offset: usize, chunk: &[u8]) -> String {
    let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
    let ascii: String =
        chunk.iter().map(|b| if b.is_ascii_graphic() || *b == b' ' { *b as char } else { '.' }).collect();
    format!("{offset:08x}  {:<47}  {ascii}", hex.join(" "))
}

/// Control characters as their visible Unicode pictures (␛ for ESC), tabs kept.
fn visible(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\t' => c,
            '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
            '\u{7f}' => '\u{2421}',
            _ => c,
        })
        .collect()
}

/// Aligns the two sides and classifies every line; `paths` switches on JSON marking.
fn layout(left: &[Line], right: &[Line], paths: Option<&Vec<MarkedPath>>) -> SideBySide {
    let left_text: Vec<&str> = left.iter().map(|l| l.text.as_str()).collect();
    let right_text: Vec<&str> = right.iter().map(|l| l.text.as_str()).collect();
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_slices(&left_text, &right_text);
    let mark_of = |line: &Line| -> Option<Mark> {
        let pointer = line.pointer.as_deref()?;
        paths?.iter().filter(|p| covers(&p.pointer, pointer)).map(|p| p.mark).min()
    };
    let mut marks = Vec::new();
    let mut rows: Vec<(SbsRow, bool)> = Vec::new();
    let mut line =
        |lines: &[Line], i: usize, changed: bool, added: bool, words: Option<Vec<Segment>>| -> (SbsLine, bool) {
            let l = &lines[i];
            let (class, symbol, interesting) = match (paths.is_some(), mark_of(l)) {
                (true, Some(mark)) => {
                    if !marks.contains(&mark) {
                        marks.push(mark);
                    }
                    (mark.class(), mark.symbol(), true)
                }
                (true, None) if changed => ("quiet", "", true),
                (false, _) if changed && added => ("ins", "+", true),
                (false, _) if changed => ("del", "−", true),
                _ => ("same", "", false),
            };
            let emphasise = interesting && class != "quiet";
            let segments = match words {
                Some(words) if emphasise => words,
                _ => vec![Segment { text: l.text.clone(), emphasis: false }],
            };
            (SbsLine { number: i + 1, class, symbol, segments }, interesting)
        };
    for op in diff.ops() {
        match *op {
            DiffOp::Equal { old_index, new_index, len } => {
                for k in 0..len {
                    let (l, li) = line(left, old_index + k, false, false, None);
                    let (r, ri) = line(right, new_index + k, false, false, None);
                    rows.push((SbsRow::Lines { left: Some(l), right: Some(r) }, li || ri));
                }
            }
            DiffOp::Delete { old_index, old_len, .. } => {
                for k in 0..old_len {
                    let (l, li) = line(left, old_index + k, true, false, None);
                    rows.push((SbsRow::Lines { left: Some(l), right: None }, li));
                }
            }
            DiffOp::Insert { new_index, new_len, .. } => {
                for k in 0..new_len {
                    let (r, ri) = line(right, new_index + k, true, true, None);
                    rows.push((SbsRow::Lines { left: None, right: Some(r) }, ri));
                }
            }
            DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                for k in 0..old_len.max(new_len) {
                    let (lw, rw) = if k < old_len && k < new_len {
                        word_diff(&left[old_index + k].text, &right[new_index + k].text)
                    } else {
                        (None, None)
                    };
                    let l = (k < old_len).then(|| line(left, old_index + k, true, false, lw));
                    let r = (k < new_len).then(|| line(right, new_index + k, true, true, rw));
                    let interesting = l.as_ref().is_some_and(|x| x.1) || r.as_ref().is_some_and(|x| x.1);
                    rows.push((SbsRow::Lines { left: l.map(|x| x.0), right: r.map(|x| x.0) }, interesting));
                }
            }
        }
    }
    marks.sort();
    let mode = if paths.is_some() { "JSON" } else { "text" };
    let mut notes = Vec::new();
    if left.is_empty() && right.is_empty() {
        notes.push("Both bodies are empty.".to_owned());
    } else if !rows.iter().any(|(_, interesting)| *interesting) {
        notes.push(if paths.is_some() {
            "No difference is marked in these bodies.".to_owned()
        } else {
            "The bodies are identical.".to_owned()
        });
    }
    let mut rows = collapse(rows);
    if rows.len() > MAX_ROWS {
        let hidden = rows.len() - MAX_ROWS;
        rows.truncate(MAX_ROWS);
        notes.push(format!("The comparison is cut after {MAX_ROWS} rows ({hidden} more rows not shown)."));
    }
    SideBySide { mode, rows, notes, marks }
}

/// Whether a difference at `path` covers the line at `pointer`: the same location or inside it.
fn covers(path: &str, pointer: &str) -> bool {
    path.is_empty()
        || pointer == path
        || (pointer.len() > path.len() && pointer.starts_with(path) && pointer.as_bytes()[path.len()] == b'/')
}

/// Word-level runs of a changed line pair, or `None` when the lines have too little in common
/// for word marks to help (the whole line is marked anyway).
fn word_diff(old: &str, new: &str) -> (Option<Vec<Segment>>, Option<Vec<Segment>>) {
    if old.len() > MAX_WORD_DIFF_CHARS || new.len() > MAX_WORD_DIFF_CHARS {
        return (None, None);
    }
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_words(old, new);
    if diff.ratio() < 0.3 {
        return (None, None);
    }
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for change in diff.iter_all_changes() {
        let text = change.value();
        match change.tag() {
            ChangeTag::Equal => {
                push(&mut left, text, false);
                push(&mut right, text, false);
            }
            ChangeTag::Delete => push(&mut left, text, true),
            ChangeTag::Insert => push(&mut right, text, true),
        }
    }
    (Some(left), Some(right))
}

fn push(segments: &mut Vec<Segment>, text: &str, emphasis: bool) {
    match segments.last_mut() {
        Some(last) if last.emphasis == emphasis => last.text.push_str(text),
        _ => segments.push(Segment { text: text.to_owned(), emphasis }),
    }
}

/// Replaces runs of uninteresting rows longer than twice the context with a count.
fn collapse(rows: Vec<(SbsRow, bool)>) -> Vec<SbsRow> {
    let n = rows.len();
    let interesting: Vec<usize> = rows.iter().enumerate().filter(|(_, r)| r.1).map(|(i, _)| i).collect();
    if interesting.is_empty() {
        // Nothing to focus on: show the start, fold the rest.
        let keep = n.min(40);
        let mut out: Vec<SbsRow> = rows.into_iter().take(keep).map(|r| r.0).collect();
        if n > keep {
            out.push(SbsRow::Skipped(n - keep));
        }
        return out;
    }
    let mut keep = vec![false; n];
    for i in interesting {
        keep[i.saturating_sub(CONTEXT)..(i + CONTEXT + 1).min(n)].fill(true);
    }
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, (row, _)) in rows.into_iter().enumerate() {
        if keep[i] {
            if skipped > 0 {
                out.push(SbsRow::Skipped(skipped));
                skipped = 0;
            }
            out.push(row);
        } else {
            skipped += 1;
        }
    }
    if skipped > 0 {
        out.push(SbsRow::Skipped(skipped));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(baseline: &[u8], canary: &[u8], highlight: Highlight) -> ExamplePair {
        let side = |body: &[u8]| ExampleSide {
            status: "200".into(),
            content_type: "application/json".into(),
            body: body.to_vec(),
            truncated: false,
        };
        ExamplePair {
            title: "GET /x".into(),
            pair_id: "p1".into(),
            note: String::new(),
            baseline: side(baseline),
            canary: side(canary),
            highlight,
        }
    }

    /// A side's line as (class, text).
    type Shown = Option<(&'static str, String)>;

    fn lines(view: &SideBySide) -> Vec<(Shown, Shown)> {
        let text = |l: &Option<SbsLine>| {
            l.as_ref().map(|l| (l.class, l.segments.iter().map(|s| s.text.as_str()).collect::<String>()))
        };
        view.rows
            .iter()
            .filter_map(|r| match r {
                SbsRow::Lines { left, right } => Some((text(left), text(right))),
                SbsRow::Skipped(_) => None,
            })
            .collect()
    }

    #[test]
    fn json_lines_carry_pointers() {
        let v: Value = serde_json::json!({"a": {"b/c": [1, 2]}, "e": {}});
        let got: Vec<(String, String)> =
            json_lines(&v).into_iter().map(|l| (l.text, l.pointer.unwrap_or_default())).collect();
        let want = [
            ("{", ""),
            ("  \"a\": {", "/a"),
            ("    \"b/c\": [", "/a/b~1c"),
            ("      1,", "/a/b~1c/0"),
            ("      2", "/a/b~1c/1"),
            ("    ]", "/a/b~1c"),
            ("  },", "/a"),
            ("  \"e\": {}", "/e"),
            ("}", ""),
        ];
        assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn json_marks_follow_paths_not_text() {
        let view = pair(
            br#"{"id": 1, "price": 10.0, "ts": 100}"#,
            br#"{"id": 1, "price": 12.5, "ts": 200, "new": true}"#,
            Highlight::JsonPaths(vec![
                MarkedPath::new("/price", Mark::Changed),
                MarkedPath::new("/new", Mark::Additive),
            ]),
        )
        .side_by_side();
        assert_eq!(view.mode, "JSON");
        let rows = lines(&view);
        let price = rows.iter().find(|(l, _)| l.as_ref().is_some_and(|l| l.1.contains("price"))).unwrap();
        assert_eq!(price.0.as_ref().unwrap().0, "m-changed");
        assert_eq!(price.1.as_ref().unwrap().0, "m-changed");
        let ts = rows.iter().find(|(l, _)| l.as_ref().is_some_and(|l| l.1.contains("ts"))).unwrap();
        assert_eq!(ts.0.as_ref().unwrap().0, "quiet", "unreported differences stay quiet");
        assert!(rows.iter().any(|(_, r)| r.as_ref().is_some_and(|r| r.0 == "m-additive" && r.1.contains("new"))));
        assert_eq!(view.marks, vec![Mark::Changed, Mark::Additive]);
    }

    #[test]
    fn text_diff_marks_words() {
        let view = pair(b"alpha\nbeta gamma\ndelta\n", b"alpha\nbeta GAMMA\ndelta\n", Highlight::Text).side_by_side();
        let changed = view
            .rows
            .iter()
            .find_map(|r| match r {
                SbsRow::Lines { left: Some(l), right: Some(r) } if l.class == "del" => Some((l.clone(), r.clone())),
                _ => None,
            })
            .unwrap();
        assert_eq!(changed.1.class, "ins");
        assert!(changed.0.segments.iter().any(|s| s.emphasis && s.text == "gamma"));
        assert!(changed.1.segments.iter().any(|s| s.emphasis && s.text == "GAMMA"));
    }

    #[test]
    fn not_json_falls_back_to_text_with_a_note() {
        let view = pair(b"{\"a\":1}", b"<html>oops</html>", Highlight::JsonPaths(vec![])).side_by_side();
        assert_eq!(view.mode, "text");
        assert!(view.notes.iter().any(|n| n.contains("canary body is not JSON")));
    }

    #[test]
    fn long_unchanged_runs_collapse() {
        let a: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let b = a.replace("line 50\n", "line fifty\n");
        let view = pair(a.as_bytes(), b.as_bytes(), Highlight::Text).side_by_side();
        assert!(view.rows.iter().any(|r| matches!(r, SbsRow::Skipped(n) if *n > 40)));
        assert!(view.rows.len() < 15);
    }

    #[test]
    fn binary_and_invalid_utf8_are_shown_safely() {
        let view = pair(b"\x89PNG\r\n\x1a\n\0\0\0", b"ok \xff\xfe bytes", Highlight::Text).side_by_side();
        assert_eq!(view.mode, "binary (hex)");
        assert!(view.notes.iter().any(|n| n.contains("baseline body looks binary")));
        assert!(view.notes.iter().any(|n| n.contains("canary body is not valid UTF-8")));
        let all = format!("{:?}", lines(&view));
        assert!(all.contains("89 50 4e 47"));
        assert!(all.contains("ok \u{fffd}\u{fffd} bytes"));
    }

    #[test]
    fn pointer_coverage() {
        assert!(covers("/a", "/a/b"));
        assert!(covers("", "/anything"));
        assert!(!covers("/a", "/ab"));
        assert!(covers("/a", "/a"));
    }
}
