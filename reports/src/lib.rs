//! shadowdiff-reports renders what analyze found: a self-contained HTML report with PNG charts,
//! `verdict.json`, JUnit XML and a Markdown summary.
//!
//! Not built yet: see the reports issue.
