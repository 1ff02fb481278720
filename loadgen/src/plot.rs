//! `--plot`: an SVG of a run's per-second series. The upper panel draws the p50, p99
//! and p99.9 latency of each second on a logarithmic axis. The lower one draws the
//! responses per second. Both shade the warm-up seconds. Each second's value is drawn
//! as a step across the second, and a latency line breaks over seconds without
//! responses.
//!
//! Text is written as SVG `<text>` elements that the viewer renders, so plotters needs
//! no font files: its built-in estimate of text widths places the labels.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::Second;

/// Width of the picture, in pixels.
const WIDTH_PX: u32 = 1_000;
/// Height of the picture, in pixels: two panels of half this each.
const HEIGHT_PX: u32 = 760;
/// Font size of the panel captions, in pixels.
const CAPTION_PX: u32 = 18;
/// Shade of the warm-up seconds.
const WARMUP_SHADE: RGBAColor = RGBAColor(128, 128, 128, 0.2);
/// One line of the latency panel.
struct LatencyLine {
    label: &'static str,
    colour: RGBColor,
    /// Reads the line's percentile from a second, in microseconds.
    percentile: fn(&Second) -> u64,
}

/// The lines of the latency panel.
const LATENCY_LINES: [LatencyLine; 3] = [
    LatencyLine { label: "p50", colour: RGBColor(31, 119, 180), percentile: |second| second.figures.latency_us.p50 },
    LatencyLine { label: "p99", colour: RGBColor(255, 127, 14), percentile: |second| second.figures.latency_us.p99 },
    LatencyLine { label: "p99.9", colour: RGBColor(214, 39, 40), percentile: |second| second.figures.latency_us.p999 },
];
/// Colour of the throughput line.
const THROUGHPUT_COLOUR: RGBColor = RGBColor(44, 160, 44);

/// Renders the series as an SVG document.
pub fn render_svg(seconds: &[Second]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        root.fill(&WHITE).map_err(|error| error.to_string())?;
        let (upper, lower) = root.split_vertically(HEIGHT_PX / 2);
        draw_latency(&upper, seconds).map_err(|error| error.to_string())?;
        draw_throughput(&lower, seconds).map_err(|error| error.to_string())?;
        root.present().map_err(|error| error.to_string())?;
    }
    Ok(svg)
}

/// Returns the values 1, 2 and 5 times a power of ten from `start` to `end`: the labels
/// of a logarithmic axis. Plotters' own labels of such an axis are either the powers of
/// ten only or every whole multiple of them, which crowds each power's upper end.
fn one_two_five(start: f64, end: f64) -> Vec<f64> {
    let mut values = Vec::new();
    let mut power = 10f64.powi(start.log10().floor() as i32);
    while power <= end {
        for value in [power, 2.0 * power, 5.0 * power] {
            if (start..=end).contains(&value) {
                values.push(value);
            }
        }
        power *= 10.0;
    }
    values
}

/// Returns the end of the x axis, in seconds: the end of the last second, at least 1.
fn x_end_secs(seconds: &[Second]) -> f64 {
    seconds.iter().map(|second| second.end_secs).fold(1.0, f64::max)
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_latency(area: &DrawingArea<SVGBackend<'_>, Shift>, seconds: &[Second]) -> DrawResult {
    // The axis spans from half the lowest p50 to twice the highest p99.9, at least 1 to 10 us.
    let answered = seconds.iter().filter(|second| second.figures.count > 0);
    let lowest_us = answered.clone().map(|second| second.figures.latency_us.p50).min().unwrap_or(1);
    let highest_us = answered.map(|second| second.figures.latency_us.p999).max().unwrap_or(0);
    let y_start_us = (lowest_us as f64 / 2.0).max(1.0);
    let y_end_us = (highest_us as f64 * 2.0).max(y_start_us * 10.0);
    let mut chart = ChartBuilder::on(area)
        .caption("latency per second (microseconds, log scale; shaded: warm-up)", ("sans-serif", CAPTION_PX))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0.0..x_end_secs(seconds),
            (y_start_us..y_end_us).log_scale().with_key_points(one_two_five(y_start_us, y_end_us)),
        )?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("seconds")
        .y_desc("us")
        .y_label_formatter(&|us| format!("{us:.0}"))
        .draw()?;
    shade_warmup(&mut chart, seconds, (y_start_us, y_end_us))?;

    for LatencyLine { label, colour, percentile } in LATENCY_LINES {
        // One line per run of seconds with responses, so that a stall shows as a gap.
        let runs = seconds.split(|second| second.figures.count == 0).filter(|run| !run.is_empty());
        for (index, run) in runs.enumerate() {
            let points = run.iter().flat_map(|second| {
                let us = percentile(second).max(1) as f64;
                [(second.start_secs, us), (second.end_secs, us)]
            });
            let series = chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
            if index == 0 {
                series.label(label).legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
            }
        }
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

fn draw_throughput(area: &DrawingArea<SVGBackend<'_>, Shift>, seconds: &[Second]) -> DrawResult {
    let highest = seconds.iter().map(|second| second.figures.ops_per_sec).fold(0.0, f64::max);
    let y_end = (highest * 1.1).max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption("throughput per second (responses/s; shaded: warm-up)", ("sans-serif", CAPTION_PX))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_end_secs(seconds), 0.0..y_end)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("seconds")
        .y_desc("ops/s")
        .y_label_formatter(&|rate| format!("{rate:.0}"))
        .draw()?;
    shade_warmup(&mut chart, seconds, (0.0, y_end))?;

    let points = seconds.iter().flat_map(|second| {
        let rate = second.figures.ops_per_sec;
        [(second.start_secs, rate), (second.end_secs, rate)]
    });
    chart.draw_series(LineSeries::new(points, THROUGHPUT_COLOUR.stroke_width(2)))?;
    Ok(())
}

/// Shades the warm-up seconds over the height `y_span` of a chart.
fn shade_warmup<'a, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    seconds: &[Second],
    y_span: (f64, f64),
) -> DrawResult
where
    Y: Ranged<ValueType = f64>,
{
    let warmup = seconds.iter().filter(|second| second.warmup);
    let shades = warmup.map(|second| {
        Rectangle::new([(second.start_secs, y_span.0), (second.end_secs, y_span.1)], WARMUP_SHADE.filled())
    });
    chart.draw_series(shades)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::{Figures, Percentiles};

    fn second(start_secs: f64, count: u64, p50: u64, warmup: bool) -> Second {
        Second {
            start_secs,
            end_secs: start_secs + 1.0,
            warmup,
            figures: Figures {
                count,
                ops_per_sec: count as f64,
                refused: 0,
                errors: 0,
                errors_by_code: BTreeMap::new(),
                latency_us: Percentiles { p50, p90: p50 * 2, p99: p50 * 3, p999: p50 * 4, max: p50 * 5 },
            },
        }
    }

    #[test]
    fn svg_has_both_panels_and_the_warmup() {
        let seconds = [second(0.0, 900, 120, true), second(1.0, 0, 0, false), second(2.0, 1_000, 100, false)];
        let svg = render_svg(&seconds).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("latency per second"));
        assert!(svg.contains("throughput per second"));
        assert!(svg.contains("p99.9"));
        // 3 percentiles in 2 runs of seconds each, and the throughput line; the axes and
        // the legend draw thinner lines.
        assert_eq!(svg.matches("stroke-width=\"2\" points=").count(), 3 * 2 + 1, "{svg}");
        // The warm-up second, shaded in both panels.
        assert!(svg.matches("opacity=\"0.2\"").count() >= 2, "{svg}");
    }

    #[test]
    fn log_labels_step_one_two_five() {
        assert_eq!(one_two_five(1.0, 10.0), [1.0, 2.0, 5.0, 10.0]);
        assert_eq!(one_two_five(6_000.0, 250_000.0), [10_000.0, 20_000.0, 50_000.0, 100_000.0, 200_000.0]);
        assert!(one_two_five(3.0, 4.0).is_empty());
    }

    #[test]
    fn empty_series_gives_empty_axes() {
        let svg = render_svg(&[]).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("throughput per second"));
    }
}
