//! Writes the demo report and its charts to a directory, for looking at:
//! `cargo run -p shadowdiff-reports --example demo_report -- /tmp/shadowdiff-demo`

// The demo page lives with the tests that snapshot it; the example shares it.
#[path = "../tests/demo_page.rs"]
mod demo_page;

use demo_page::demo_page;
use shadowdiff_reports::html::{Block, write_page};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "shadowdiff-demo".into()));
    std::fs::create_dir_all(dir.join("charts"))?;
    let page = demo_page()?;
    for block in page.sections.iter().flat_map(|s| &s.blocks) {
        if let Block::Figure(figure) = block {
            figure.png.save_in(&dir.join("charts"))?;
        }
    }
    write_page(&page, &dir.join("report.html"))?;
    println!("{}", dir.join("report.html").display());
    Ok(())
}
