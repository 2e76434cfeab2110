//! The HTML report: view models, the components that lay them out, and the page.
//!
//! Templates are compiled into the binary by askama (from `reports/templates/`), and askama
//! escapes every interpolated value for HTML: a captured `<script>` becomes `&lt;script&gt;`.
//! No template uses `|safe`, and nothing builds markup by string concatenation. The page
//! carries a Content-Security-Policy that forbids scripts and every fetch except `data:`
//! images, so even a bug in escaping could not run code or phone home.

mod model;
mod side_by_side;

use std::path::Path;

use askama::Template;

pub use model::{
    Align, Block, Callout, Cell, CheckRow, ChecksTable, Column, DataTable, ExamplePair, ExampleSide, Fact, Figure,
    Highlight, KeyFigure, Mark, MarkedPath, ReportPage, Row, Section, SortOrder, Status, VerdictBanner,
};
pub use side_by_side::{SbsLine, SbsRow, Segment, SideBySide};

use crate::{Error, Result};

/// The page's Content-Security-Policy: nothing loads but inline styles and `data:` images.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

#[derive(Template)]
#[template(path = "report.html")]
struct PageTemplate<'a> {
    page: &'a ReportPage,
    csp: &'static str,
}

/// Renders the full, self-contained report page.
pub fn render_page(page: &ReportPage) -> Result<String> {
    PageTemplate { page, csp: CONTENT_SECURITY_POLICY }.render().map_err(Error::Template)
}

/// Renders the page and writes it to `path` (through a temporary file and a rename).
pub fn write_page(page: &ReportPage, path: &Path) -> Result<()> {
    let html = render_page(page)?;
    crate::error::write_atomically(path, html.as_bytes())
}
