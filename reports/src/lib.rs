//! shadowdiff-reports turns what analyze found into what people and CI systems read: junit.xml
//! (one test case per check), summary.md (for a pull request or a CI step summary), the terminal
//! summary, and a self-contained HTML report (no script, no external fetch, every captured byte
//! escaped by the template engine) with PNG charts drawn in an embedded font. It reads the typed
//! verdict ([`shadowdiff_format::verdict::Verdict`], as `verdict.json` holds it) and the files
//! beside it; [`write_outputs`] writes everything from an analyze output directory, so
//! `shadowdiff report DIR` can re-render any earlier one. [`page`] maps the verdict onto plain
//! view models ([`html`]) and plain numbers ([`charts`]), one module per report section.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod charts;
mod error;
pub mod html;
pub mod junit;
mod outputs;
pub mod page;
pub mod rows;
pub mod summary;

pub use error::{Error, Result};
pub use outputs::{REPORT_FILE, Written, read_verdict, write_outputs};
