//! The PNG chart of docs/benchmarks.md: median throughput against
//! connection count, one line per server and load, log-scale x axis.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

/// Where a sans-serif font is looked for; without one the chart is drawn
/// with lines and points only (no text).
const FONT_PATHS: &[&str] =
    &["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"];

/// Registers a font for plotters' ab_glyph backend; false if none found.
fn load_font() -> bool {
    for p in FONT_PATHS {
        if let Ok(bytes) = std::fs::read(p) {
            // plotters wants 'static font data; one small leak per process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Colour of a line: Sprocket in warm colours, gearmand in cool ones.
fn colour(label: &str, i: usize) -> RGBColor {
    let sprocket = [RGBColor(214, 69, 28), RGBColor(230, 145, 20), RGBColor(170, 30, 90)];
    let gearmand = [RGBColor(40, 90, 180), RGBColor(60, 150, 120), RGBColor(100, 100, 100)];
    if label.starts_with("sprocketd") {
        sprocket[i % sprocket.len()]
    } else {
        gearmand[i % gearmand.len()]
    }
}

/// Draws `series` (label, (connections, jobs/s) points) into a PNG.
pub fn draw(path: &Path, title: &str, series: &[(String, Vec<(usize, f64)>)]) -> anyhow::Result<()> {
    anyhow::ensure!(series.iter().any(|(_, p)| !p.is_empty()), "no chartable results (memory group, series rows)");
    let text = load_font();
    let max_c = series.iter().flat_map(|(_, p)| p.iter().map(|x| x.0)).max().unwrap_or(1).max(2) as f64;
    let max_t = series.iter().flat_map(|(_, p)| p.iter().map(|x| x.1)).fold(0.0, f64::max).max(1.0);

    let root = BitMapBackend::new(path, (1000, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20).x_label_area_size(50).y_label_area_size(90);
    if text {
        builder.caption(title, ("sans-serif", 24));
    }
    let mut chart = builder
        .build_cartesian_2d((0.8f64..max_c * 1.25).log_scale(), 0f64..max_t * 1.1)
        .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("connections (log scale)")
            .y_desc("jobs/s (median)")
            .x_label_formatter(&|x| format!("{}", x.round()))
            .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| anyhow::anyhow!("mesh: {e}"))?;

    let (mut ns, mut ng) = (0, 0);
    for (label, pts) in series {
        let i = if label.starts_with("sprocketd") {
            ns += 1;
            ns - 1
        } else {
            ng += 1;
            ng - 1
        };
        let c = colour(label, i);
        let style = ShapeStyle::from(&c).stroke_width(3);
        let line = pts.iter().map(|(x, y)| (*x as f64, *y));
        let drawn = chart.draw_series(LineSeries::new(line, style)).map_err(|e| anyhow::anyhow!("line: {e}"))?;
        if text {
            drawn.label(label.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .draw_series(pts.iter().map(|(x, y)| Circle::new((*x as f64, *y), 5, c.filled())))
            .map_err(|e| anyhow::anyhow!("points: {e}"))?;
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| anyhow::anyhow!("legend: {e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
