use shadowdiff_reports::html::{CONTENT_SECURITY_POLICY, render_page};

use crate::support::{hostile_page, tags};

/// The elements the report is made of; anything else in the output was injected.
const ALLOWED_TAGS: &[&str] = &[
    "html",
    "head",
    "meta",
    "title",
    "style",
    "body",
    "div",
    "header",
    "h1",
    "h2",
    "p",
    "dl",
    "dt",
    "dd",
    "nav",
    "a",
    "main",
    "section",
    "span",
    "ul",
    "li",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "code",
    "strong",
    "figure",
    "img",
    "figcaption",
    "colgroup",
    "col",
    "mark",
    "footer",
    "!doctype",
];

#[test]
fn hostile_captured_bytes_render_as_inert_text() {
    let html = render_page(&hostile_page()).unwrap();
    let lower = html.to_ascii_lowercase();

    assert!(!lower.contains("<script"), "a raw <script> tag");
    assert!(!lower.contains("</textarea"), "a raw </textarea>");
    assert!(!lower.contains("<b>"), "injected markup");
    // The payloads are there, as escaped text.
    // (askama writes numeric references: &#60; is <, &#62; is >.)
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "escaped script text");
    assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;"), "escaped img text");
    assert!(html.contains("&#60;/textarea&#62;"));
    assert!(html.contains("javascript:alert(1)"), "the javascript: URL is shown as text");
    // Invalid UTF-8 becomes replacement characters with a note.
    assert!(html.contains("invalid utf-8: \u{fffd}\u{fffd}\u{fffd}("));
    assert!(html.contains("canary body is not valid UTF-8"));

    for (name, attrs) in tags(&html) {
        assert!(ALLOWED_TAGS.contains(&name.as_str()), "unexpected element <{name}>");
        for (attr, value) in attrs {
            assert!(!attr.starts_with("on"), "event handler attribute {attr} on <{name}>");
            let v = value.to_ascii_lowercase();
            assert!(!v.contains("javascript:"), "javascript: in {attr} of <{name}>");
            match attr.as_str() {
                "src" => assert!(v.starts_with("data:image/png;base64,"), "<{name} src={value}> is not a data: image"),
                "href" => assert!(v.starts_with('#'), "<{name} href={value}> leaves the page"),
                "style" => assert!(!v.contains("url("), "a style attribute that fetches"),
                _ => {}
            }
            assert!(!(matches!(attr.as_str(), "src" | "href") && (v.contains("http://") || v.contains("https://"))));
        }
    }
}

#[test]
fn the_page_forbids_scripts_and_fetches() {
    let html = render_page(&hostile_page()).unwrap();
    let meta = format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        CONTENT_SECURITY_POLICY.replace('\'', "&#39;")
    );
    assert!(html.contains(&meta), "CSP meta tag missing: want {meta}");
    assert_eq!(CONTENT_SECURITY_POLICY, "default-src 'none'; img-src data:; style-src 'unsafe-inline'");
    // The CSP must come before anything that could load.
    let csp_at = html.find("Content-Security-Policy").unwrap();
    assert!(csp_at < html.find("<style").unwrap() && csp_at < html.find("<img").unwrap());
    // Nothing in the stylesheet fetches either.
    let style = &html[html.find("<style>").unwrap()..html.find("</style>").unwrap()];
    assert!(!style.contains("url(") && !style.contains("@import"));
}

#[test]
fn anchors_are_sanitised() {
    let html = render_page(&hostile_page()).unwrap();
    assert!(html.contains("id=\"s-hostile-script\""));
    assert!(html.contains("href=\"#s-hostile-script\""));
}
