//! PNG charts, drawn with plotters into memory.
//!
//! Every chart is a pure function from plain data (slices of numbers, endpoint names) to a
//! [`Png`]: the encoded bytes, which the report both writes to `charts/*.png` ([`Png::save`]) and
//! embeds in the HTML ([`Png::data_uri`]). Input is never trusted to be tidy: NaN and infinite
//! values are dropped and counted, empty input draws a chart that says "no data", and a panic
//! inside plotters becomes an [`Error::Chart`] instead of taking the report down with it.
//!
//! Colours follow the Okabe–Ito palette, which stays distinguishable under the common forms of
//! colour blindness: baseline is blue, canary is orange, "beyond a limit" is vermillion, and
//! every colour is repeated in a legend or label so nothing depends on colour alone.

mod axis;
mod bars;
mod diff_rate;
mod drift;
mod error_rates;
mod font;
mod histogram;
mod latency_cdf;
mod latency_delta;
mod trend;

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use base64::Engine as _;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use diff_rate::{EndpointDiffRate, diff_rates};
pub use drift::{NumericDrift, numeric_drift};
pub use error_rates::{EndpointErrorRate, error_rates};
pub use latency_cdf::{LatencyCdf, latency_cdf};
pub use latency_delta::latency_delta_histogram;
pub(crate) use trend::duration;
pub use trend::{TrendPanel, TrendPoint, trend};

use crate::{Error, Result};

/// Size of a chart in pixels. The default (900 × 420) fits the report's content column at
/// full resolution and stays legible when a phone scales it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartOptions {
    /// Width in pixels; at least [`ChartOptions::MIN_WIDTH`].
    pub width: u32,
    /// Height in pixels; at least [`ChartOptions::MIN_HEIGHT`].
    pub height: u32,
}

impl ChartOptions {
    /// Below this width axis labels collide; smaller requests are raised to it.
    pub const MIN_WIDTH: u32 = 360;
    /// Below this height the plot area vanishes under the title; smaller requests are raised.
    pub const MIN_HEIGHT: u32 = 220;

    fn clamped(self) -> (u32, u32) {
        (self.width.max(Self::MIN_WIDTH), self.height.max(Self::MIN_HEIGHT))
    }
}

impl Default for ChartOptions {
    fn default() -> Self {
        Self { width: 900, height: 420 }
    }
}

/// The file name each chart is written under in the report's `charts/` directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ChartKind {
    /// [`latency_cdf`]
    LatencyCdf,
    /// [`latency_delta_histogram`]
    LatencyDelta,
    /// [`error_rates`]
    ErrorRates,
    /// [`diff_rates`]
    DiffRates,
    /// [`numeric_drift`]
    NumericDrift,
    /// [`trend`]
    Trend,
}

impl ChartKind {
    /// Every chart, in report order.
    pub const ALL: [ChartKind; 6] =
        [Self::LatencyCdf, Self::LatencyDelta, Self::Trend, Self::ErrorRates, Self::DiffRates, Self::NumericDrift];

    /// The stem used in file names and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::LatencyCdf => "latency_cdf",
            Self::LatencyDelta => "latency_delta",
            Self::ErrorRates => "error_rates",
            Self::DiffRates => "diff_rates",
            Self::NumericDrift => "numeric_drift",
            Self::Trend => "trend",
        }
    }

    /// `<name>.png`
    pub fn file_name(self) -> String {
        format!("{}.png", self.name())
    }
}

/// A rendered chart: an encoded PNG and its size.
#[derive(Clone, PartialEq, Eq)]
pub struct Png {
    /// Which chart this is.
    pub kind: ChartKind,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The PNG file's bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Png {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Png")
            .field("kind", &self.kind)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &format_args!("[{} bytes]", self.bytes.len()))
            .finish()
    }
}

impl Png {
    /// Writes the PNG to `path` (through a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::error::write_atomically(path, &self.bytes)
    }

    /// Writes the PNG as `dir/<kind>.png` and returns that path.
    pub fn save_in(&self, dir: &Path) -> Result<std::path::PathBuf> {
        let path = dir.join(self.kind.file_name());
        self.save(&path)?;
        Ok(path)
    }

    /// A `data:image/png;base64,…` URI, the only kind of image source the report's
    /// Content-Security-Policy allows.
    pub fn data_uri(&self) -> String {
        let mut uri = String::from("data:image/png;base64,");
        base64::engine::general_purpose::STANDARD.encode_string(&self.bytes, &mut uri);
        uri
    }
}

// ---------------------------------------------------------------------------------------------
// Shared drawing vocabulary for the chart modules.

pub(crate) mod palette {
    use plotters::style::RGBColor;

    /// Okabe–Ito blue.
    pub const BASELINE: RGBColor = RGBColor(0, 114, 178);
    /// Okabe–Ito orange.
    pub const CANARY: RGBColor = RGBColor(230, 159, 0);
    /// Okabe–Ito vermillion: a value beyond its threshold or tolerance.
    pub const ALERT: RGBColor = RGBColor(213, 94, 0);
    /// A neutral slate for one-series data that belongs to neither side.
    pub const NEUTRAL: RGBColor = RGBColor(96, 125, 139);
    /// Text and the zero line.
    pub const INK: RGBColor = RGBColor(33, 37, 41);
    /// Secondary text (subtitles, notes).
    pub const MUTED: RGBColor = RGBColor(108, 117, 125);
    /// Axis lines.
    pub const AXIS: RGBColor = RGBColor(134, 142, 150);
    /// Grid lines.
    pub const GRID: RGBColor = RGBColor(233, 236, 239);
}

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type DrawResult<T = ()> = std::result::Result<T, BoxError>;
pub(crate) type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;
pub(crate) type Coords = Cartesian2d<axis::Ticked, axis::Ticked>;
pub(crate) type Plot<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Coords>;

/// A text style in the embedded font.
pub(crate) fn text(size: u32, color: RGBColor) -> TextStyle<'static> {
    (font::FAMILY, size).into_font().color(&color)
}

/// A text style anchored at `h`/`v` instead of the top-left corner.
pub(crate) fn anchored(size: u32, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    text(size, color).pos(Pos::new(h, v))
}

/// Title and subtitle of a chart; the subtitle carries sample sizes and what was left out.
pub(crate) struct Heading {
    pub title: String,
    pub subtitle: String,
}

/// One axis of a cartesian plot: its range, explicit tick positions and how to label them.
pub(crate) struct Axis<'f> {
    pub range: Range<f64>,
    pub ticks: Vec<f64>,
    pub desc: &'f str,
    pub format: &'f dyn Fn(f64) -> String,
    pub grid: bool,
}

/// Renders a chart: font, white canvas, heading strip, then `draw` on the area below the
/// heading. Panics inside plotters are caught and reported as errors.
pub(crate) fn render(
    kind: ChartKind,
    opts: &ChartOptions,
    heading: &Heading,
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<Png> {
    font::register()?;
    let (width, height) = opts.clamped();
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    let chart_error = |message: String| Error::Chart { chart: kind.name(), message };
    let drawn = catch_unwind(AssertUnwindSafe(|| -> DrawResult {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (head, body) = root.split_vertically(HEADING_HEIGHT);
        draw_heading(&head, heading)?;
        draw(&body)?;
        root.present()?;
        Ok(())
    }));
    match drawn {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(chart_error(error.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "plotters panicked".to_owned());
            return Err(chart_error(message));
        }
    }
    let bytes = encode(kind, width, height, &rgb)?;
    Ok(Png { kind, width, height, bytes })
}

const HEADING_HEIGHT: u32 = 60;

fn draw_heading(area: &Area<'_>, heading: &Heading) -> DrawResult {
    area.draw(&Text::new(heading.title.as_str(), (18, 12), text(20, palette::INK)))?;
    area.draw(&Text::new(heading.subtitle.as_str(), (18, 38), text(14, palette::MUTED)))?;
    Ok(())
}

/// Draws the "no data" placeholder that stands in for a chart whose input is empty.
pub(crate) fn draw_no_data(area: &Area<'_>, reason: &str) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    area.draw(&Rectangle::new([(18, 6), (w - 18, h - 18)], ShapeStyle::from(&palette::AXIS).stroke_width(1)))?;
    let centre = (w / 2, (h - 12) / 2);
    area.draw(&Text::new(
        "no data",
        (centre.0, centre.1 - 14),
        anchored(28, palette::MUTED, HPos::Center, VPos::Center),
    ))?;
    area.draw(&Text::new(reason, (centre.0, centre.1 + 22), anchored(14, palette::MUTED, HPos::Center, VPos::Center)))?;
    Ok(())
}

/// Builds a cartesian plot on `area` with our axis styling and draws its mesh.
pub(crate) fn plot<'a, 'b>(
    area: &'a Area<'b>,
    x: &Axis<'_>,
    y: &Axis<'_>,
    y_label_width: u32,
) -> DrawResult<Plot<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(28)
        .margin_top(6)
        .margin_bottom(6)
        .x_label_area_size(52)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(
            axis::Ticked { range: x.range.clone(), ticks: x.ticks.clone() },
            axis::Ticked { range: y.range.clone(), ticks: y.ticks.clone() },
        )?;
    let x_format = |v: &f64| (x.format)(*v);
    let y_format = |v: &f64| (y.format)(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x.desc)
        .y_desc(y.desc)
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .label_style(text(14, palette::INK))
        .axis_desc_style(text(14, palette::INK))
        .bold_line_style(palette::GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(palette::AXIS);
    if !x.grid {
        mesh.disable_x_mesh();
    }
    if !y.grid {
        mesh.disable_y_mesh();
    }
    mesh.draw()?;
    Ok(chart)
}

/// Draws the legend of `chart` at `position` in our style.
pub(crate) fn legend<'a, 'b: 'a>(chart: &mut Plot<'a, 'b>, position: SeriesLabelPosition) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .margin(10)
        .legend_area_size(26)
        .label_font(text(14, palette::INK))
        .background_style(WHITE.mix(0.92))
        .border_style(palette::GRID)
        .draw()?;
    Ok(())
}

/// A legend swatch: a filled square in `color`.
pub(crate) fn swatch(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x + 2, y - 6), (x + 16, y + 6)], color.filled())
}

/// A legend swatch: a short line in `color`.
pub(crate) fn line_swatch(color: RGBColor, width: u32) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
}

/// Encodes an RGB8 buffer as PNG.
fn encode(kind: ChartKind, width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let err = |source| Error::Encode { chart: kind.name(), source };
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(rgb).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

/// "n = 1,234" style counts.
pub(crate) fn count(n: usize) -> String {
    axis::format_number(n as f64)
}
