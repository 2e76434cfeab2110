use shadowdiff_reports::html::{demo_page, render_page};

use crate::support::redact;

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
