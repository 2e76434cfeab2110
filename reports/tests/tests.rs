// Tests panic on failure by design.
#![allow(clippy::unwrap_used)]

// Every chart decodes as a PNG of the right size with real content, for tidy and hostile input.
mod charts;
// Captured bytes that look like markup render as inert text; the page fetches nothing.
mod escaping;
// The demo page's structure as a golden file.
mod snapshot;
// Headless Chromium loads a report from disk: screenshot, DOM after load, console.
mod browser;
// PNG decoding, a hostile page, redaction.
mod support;
// The demo page: every view model filled with synthetic data.
mod demo_page;
// `--window`: the trend chart, the "Over time" section and the summary's windows table.
mod windows;
