//! The chart font, compiled into the binary.
//!
//! plotters' `ab_glyph` backend only draws fonts registered by name; registering DejaVu Sans as
//! `sans-serif` (the family plotters' own defaults ask for) means no system font, fontconfig or
//! freetype is needed anywhere the binary runs, and charts look identical on every machine.

use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

use crate::{Error, Result};

/// DejaVu Sans 2.37 from Debian's fonts-dejavu-core; licence in `assets/README.md`.
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The family name every chart asks for. Use even pixel sizes: plotters' `ab_glyph` backend
/// places each glyph at `size / 2 + top` truncated to a pixel, so at odd sizes glyphs that sit
/// low (".", ",") round differently from tall ones and float a pixel above the baseline.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the embedded font once per process. Bold and italic requests fall back to the
/// regular face (plotters' documented fallback), which keeps the binary one font lighter.
pub(crate) fn register() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok { Ok(()) } else { Err(Error::Font) }
}
