//! The report's view models: plain strings and numbers, shaped like what a reader sees.
//!
//! Producers (the page built from a verdict, or a test) fill these in; the templates only lay
//! them out.
//! Every `String` here is treated as untrusted text and escaped when rendered — a captured body
//! or an endpoint name can hold anything — so none of these fields may carry markup.

use crate::charts::Png;

/// The outcome of a check, an endpoint or the whole run. Rendered as colour *and* a word *and*
/// a symbol, so it survives colour blindness and black-and-white printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Within the pass threshold, on evidence.
    Pass,
    /// Between the pass and fail thresholds, or not clearly either.
    Warn,
    /// Beyond the fail threshold, on evidence.
    Fail,
    /// Too few samples to judge.
    Inconclusive,
}

impl Status {
    /// The vocabulary word this status shows.
    pub fn word(self) -> shadowdiff_format::vocab::Status {
        use shadowdiff_format::vocab::Status as Word;
        match self {
            Self::Pass => Word::Pass,
            Self::Warn => Word::Warn,
            Self::Fail => Word::Fail,
            Self::Inconclusive => Word::Inconclusive,
        }
    }

    /// The word shown to readers, in capitals: `PASS`, `WARN`, `FAIL`, `INCONCLUSIVE`.
    pub fn label(self) -> String {
        self.word().label().to_uppercase()
    }

    /// The CSS class: the word as verdict.json spells it.
    pub fn class(self) -> &'static str {
        self.word().as_str()
    }

    /// A symbol that repeats the status without colour.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Pass => "✓",
            Self::Warn => "!",
            Self::Fail => "✗",
            Self::Inconclusive => "?",
        }
    }
}

impl From<shadowdiff_format::vocab::Status> for Status {
    /// A check's status as the report shows it: what was not judged (disabled, or not
    /// comparable) shows as a pass, since it holds nothing against the canary.
    fn from(s: shadowdiff_format::vocab::Status) -> Self {
        use shadowdiff_format::vocab::Status as Word;
        match s {
            Word::Pass | Word::Disabled | Word::NotComparable => Self::Pass,
            Word::Warn => Self::Warn,
            Word::Fail => Self::Fail,
            Word::Inconclusive => Self::Inconclusive,
        }
    }
}

/// The whole report page.
#[derive(Debug, Clone, Default)]
pub struct ReportPage {
    /// `<title>` and the top heading, e.g. "Canary report: checkout-api".
    pub title: String,
    /// One line under the title: what was compared ("baseline v1.41.0 vs canary v1.42.0-rc.1").
    pub subject: String,
    /// When the report was generated, as displayed. Volatile: snapshot tests redact it.
    pub generated_at: String,
    /// Facts about the run shown in the header (inputs, time window, policy file, version).
    pub facts: Vec<Fact>,
    /// The overall verdict, shown first.
    pub verdict: VerdictBanner,
    /// The sections after the verdict, in order; each gets an entry in the contents.
    pub sections: Vec<Section>,
    /// Small print at the bottom (tool version, how to re-render).
    pub footer: String,
}

/// A label and a value, e.g. "pairs analysed" / "48,210".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fact {
    /// What the value is.
    pub label: String,
    /// The value, formatted with its unit.
    pub value: String,
}

impl Fact {
    /// A fact from anything string-like.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self { label: label.into(), value: value.into() }
    }
}

/// The verdict banner at the top: the overall status in words, why, and the headline numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictBanner {
    /// The overall status.
    pub status: Status,
    /// One sentence: the answer and its main reason ("Canary fails: p99 latency +27% on
    /// GET /search").
    pub headline: String,
    /// The checks that decided it, one sentence each; empty on a clean pass.
    pub reasons: Vec<String>,
    /// Headline numbers shown as tiles (pairs, endpoints, diff rate, p99 delta).
    pub figures: Vec<KeyFigure>,
}

impl Default for VerdictBanner {
    fn default() -> Self {
        Self { status: Status::Inconclusive, headline: String::new(), reasons: Vec::new(), figures: Vec::new() }
    }
}

/// A headline number tile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyFigure {
    /// What it measures ("p99 latency delta").
    pub label: String,
    /// The number with its unit ("+27.4%").
    pub value: String,
    /// Context in small print ("95% CI +21.0% … +33.9%, n = 48,210").
    pub note: String,
    /// Colours the tile when the figure is judged.
    pub status: Option<Status>,
}

/// A titled part of the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    /// The anchor for links from the contents. Reduced to `[a-z0-9-]` when rendered.
    pub id: String,
    /// The heading.
    pub title: String,
    /// A sentence or two on what the section shows and how to read it; may be empty.
    pub intro: String,
    /// The content, in order.
    pub blocks: Vec<Block>,
}

impl Section {
    /// The sanitised anchor: lower-case ASCII letters, digits and dashes only, so a link to it
    /// can never be anything but a same-page fragment.
    pub fn anchor(&self) -> String {
        let mut out = String::with_capacity(self.id.len());
        for c in self.id.chars() {
            match c {
                'a'..='z' | '0'..='9' => out.push(c),
                'A'..='Z' => out.push(c.to_ascii_lowercase()),
                _ if !out.ends_with('-') => out.push('-'),
                _ => {}
            }
        }
        let trimmed = out.trim_matches('-');
        if trimmed.is_empty() { "section".to_owned() } else { format!("s-{trimmed}") }
    }
}

/// One piece of section content.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Block {
    /// A paragraph of plain text.
    Paragraph(String),
    /// A highlighted note with a status colour ("3 pairs were dropped at capture").
    Callout(Callout),
    /// A row of number tiles.
    Figures(Vec<KeyFigure>),
    /// The policy checks.
    Checks(ChecksTable),
    /// Any other table.
    Table(DataTable),
    /// A chart.
    Figure(Figure),
    /// Baseline and canary responses side by side.
    Example(Box<ExamplePair>),
}

/// A highlighted note.
#[derive(Debug, Clone, PartialEq)]
pub struct Callout {
    /// Its colour and symbol.
    pub status: Status,
    /// The text.
    pub text: String,
}

/// The policy checks, one row each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChecksTable {
    /// Shown above the table; may be empty.
    pub caption: String,
    /// The checks, in the order to show them (failures first reads best).
    pub rows: Vec<CheckRow>,
}

/// One policy check. Values are preformatted with units; an empty string shows as "—".
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    /// The outcome.
    pub status: Status,
    /// What was checked ("p99 latency delta").
    pub name: String,
    /// Where: "overall" or an endpoint ("GET /search").
    pub scope: String,
    /// The measured value ("+27.4%").
    pub value: String,
    /// The thresholds ("pass ≤ 10%, warn ≤ 20%").
    pub threshold: String,
    /// The confidence interval ("95% CI +21.0% … +33.9%").
    pub interval: String,
    /// The test statistic ("Wilcoxon W = 1.2·10⁶").
    pub statistic: String,
    /// The p-value ("< 0.001"), after any correction.
    pub p_value: String,
    /// Sample size behind the figure.
    pub samples: u64,
    /// The endpoints that drove the result, if any ("GET /search, POST /cart").
    pub drivers: String,
}

impl CheckRow {
    /// The sample size with thousands separated ("48,210").
    pub fn samples_display(&self) -> String {
        let digits = self.samples.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }
}

/// A generic static table. "Sortable-looking": the column the rows are sorted by shows an
/// arrow, so a reader knows the order is deliberate (worst first), though nothing re-sorts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataTable {
    /// Shown above the table; may be empty.
    pub caption: String,
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows; each should have one cell per column.
    pub rows: Vec<Row>,
    /// Small print under the table ("12 more endpoints in pairs.parquet"); may be empty.
    pub note: String,
}

/// A table column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Column {
    /// The header.
    pub label: String,
    /// Numbers align right.
    pub align: Align,
    /// Set on the column the rows are sorted by.
    pub sorted: Option<SortOrder>,
}

impl Column {
    /// A left-aligned, unsorted column.
    pub fn text(label: impl Into<String>) -> Self {
        Self { label: label.into(), align: Align::Left, sorted: None }
    }

    /// A right-aligned, unsorted column.
    pub fn number(label: impl Into<String>) -> Self {
        Self { label: label.into(), align: Align::Right, sorted: None }
    }

    /// Marks the column as the one the rows are sorted by.
    pub fn sorted(mut self, order: SortOrder) -> Self {
        self.sorted = Some(order);
        self
    }

    /// `aria-sort` value.
    pub fn aria_sort(&self) -> &'static str {
        match self.sorted {
            Some(SortOrder::Ascending) => "ascending",
            Some(SortOrder::Descending) => "descending",
            None => "none",
        }
    }

    /// The arrow shown after the header.
    pub fn arrow(&self) -> &'static str {
        match self.sorted {
            Some(SortOrder::Ascending) => "▲",
            Some(SortOrder::Descending) => "▼",
            None => "",
        }
    }
}

/// Horizontal alignment of a column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Align {
    /// Text.
    #[default]
    Left,
    /// Numbers.
    Right,
    /// Short markers.
    Center,
}

impl Align {
    /// The CSS class.
    pub fn class(self) -> &'static str {
        match self {
            Self::Left => "l",
            Self::Right => "r",
            Self::Center => "c",
        }
    }
}

/// Sort direction of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Smallest first.
    Ascending,
    /// Largest (worst) first.
    Descending,
}

/// A table row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// One cell per column.
    pub cells: Vec<Cell>,
    /// Tints the whole row (a failing endpoint).
    pub status: Option<Status>,
}

impl Row {
    /// A row of plain cells.
    pub fn new<I, C>(cells: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<Cell>,
    {
        Self { cells: cells.into_iter().map(Into::into).collect(), status: None }
    }

    /// Tints the row.
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }
}

/// A table cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// The text.
    pub text: String,
    /// Shows the cell as a status pill (the text follows the status word).
    pub status: Option<Status>,
    /// Monospace (paths, ids, bodies).
    pub code: bool,
}

impl Cell {
    /// A status pill.
    pub fn status(status: Status) -> Self {
        Self { text: String::new(), status: Some(status), code: false }
    }

    /// Monospace text.
    pub fn code(text: impl Into<String>) -> Self {
        Self { text: text.into(), status: None, code: true }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self { text, status: None, code: false }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        text.to_owned().into()
    }
}

/// A chart embedded in the page as a `data:` image (the only image source the page's
/// Content-Security-Policy allows); the same PNG is written to `charts/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The rendered chart.
    pub png: Png,
    /// Alternative text: what the chart shows, for screen readers and broken images.
    pub alt: String,
    /// How to read it, shown under the image.
    pub caption: String,
}

impl Figure {
    /// The `src` attribute value.
    pub fn src(&self) -> String {
        self.png.data_uri()
    }

    /// Where the same image lives beside the report.
    pub fn file(&self) -> String {
        format!("charts/{}", self.png.kind.file_name())
    }
}

/// One pair's responses side by side, differences highlighted.
#[derive(Debug, Clone, PartialEq)]
pub struct ExamplePair {
    /// What request this was ("GET /users/42?expand=cart").
    pub title: String,
    /// The pair's id, to find it in `pairs.parquet`.
    pub pair_id: String,
    /// Why it is shown ("status 200 → 500", "field /price changed"); may be empty.
    pub note: String,
    /// The baseline's response.
    pub baseline: ExampleSide,
    /// The canary's response.
    pub canary: ExampleSide,
    /// How to find and mark the differences.
    pub highlight: Highlight,
}

/// One side's response, as captured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExampleSide {
    /// The status line as shown: "200", "500", or "no response (timeout)".
    pub status: String,
    /// The response's content type, as captured; may be empty.
    pub content_type: String,
    /// The body bytes exactly as captured: any bytes at all, including invalid UTF-8.
    pub body: Vec<u8>,
    /// The capture cut the body at its cap.
    pub truncated: bool,
}

/// How an example's differences are found.
#[derive(Debug, Clone, PartialEq)]
pub enum Highlight {
    /// Compare the bodies as text, line by line and word by word.
    Text,
    /// Pretty-print both bodies as JSON and mark the lines at (or under) these paths; falls back
    /// to [`Highlight::Text`] when a body is not JSON.
    JsonPaths(Vec<MarkedPath>),
}

/// A JSON location analyze found a difference at.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkedPath {
    /// An RFC 6901 JSON pointer ("/items/0/price"); "" is the whole document.
    pub pointer: String,
    /// What kind of difference it is.
    pub mark: Mark,
}

impl MarkedPath {
    /// A marked path.
    pub fn new(pointer: impl Into<String>, mark: Mark) -> Self {
        Self { pointer: pointer.into(), mark }
    }
}

/// The kind of a marked difference, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mark {
    /// A field removed, a type changed, a status class changed.
    Breaking,
    /// A value changed.
    Changed,
    /// A field added.
    Additive,
    /// Differs, but it is noise (it differs between two baselines too) or explained.
    Noise,
}

impl Mark {
    /// The CSS class.
    pub fn class(self) -> &'static str {
        match self {
            Self::Breaking => "m-breaking",
            Self::Changed => "m-changed",
            Self::Additive => "m-additive",
            Self::Noise => "m-noise",
        }
    }

    /// The gutter symbol that repeats the colour.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Breaking => "✗",
            Self::Changed => "~",
            Self::Additive => "+",
            Self::Noise => "≈",
        }
    }

    /// The word in the legend.
    pub fn label(self) -> &'static str {
        match self {
            Self::Breaking => "breaking",
            Self::Changed => "changed",
            Self::Additive => "added",
            Self::Noise => "noise",
        }
    }
}
