//! Hand-written SVG plots: latency (log scale) against percentile on a log
//! "nines" axis, where 90%, 99%, 99.9%... are evenly spaced; and throughput
//! (log scale) against core count for the scaling comparison.

use std::fmt::Write;

pub struct Series<'a> {
    pub label: &'a str,
    pub color: &'a str,
    /// (quantile in [0, 1], latency in µs), ascending; the last point is
    /// the maximum.
    pub points: Vec<(f64, f64)>,
    /// Samples behind the points: the max sits at the last nine this many
    /// samples can resolve.
    pub count: u64,
}

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 50.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const MAX_NINES: f64 = 6.0;

/// Position of a quantile on the nines axis: 0.9 -> 1, 0.99 -> 2, ...
pub fn nines(q: f64) -> f64 {
    if q >= 1.0 {
        f64::INFINITY
    } else {
        -(1.0 - q.max(0.0)).log10()
    }
}

/// Axis label for a whole number of nines: 0 -> "0%", 3 -> "99.9%".
pub fn nines_label(n: u32) -> String {
    match n {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

/// Largest 1, 2 or 5 × 10^k not above `v`.
fn nice_floor(v: f64) -> f64 {
    let decade = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|t| *t <= v * 1.0001)
        .unwrap_or(decade)
}

/// Smallest 1, 2 or 5 × 10^k not below `v`.
fn nice_ceil(v: f64) -> f64 {
    let decade = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|t| *t >= v * 0.9999)
        .unwrap_or(decade * 10.0)
}

/// Log-scale tick values (1, 2, 5 × 10^k) covering `[lo, hi]`.
fn y_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t >= lo * 0.9999 && t <= hi * 1.0001 {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

fn fmt_tick(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}ms", v / 1000.0)
    } else if v >= 1.0 {
        format!("{v}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn percentile_svg(title: &str, series: &[Series<'_>]) -> String {
    // X range: enough whole nines for the largest sample count.
    let resolvable = series
        .iter()
        .map(|s| (s.count.max(1) as f64).log10())
        .fold(0.0, f64::max);
    let x_max = resolvable.ceil().clamp(2.0, MAX_NINES);
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (y_lo, y_hi) = if hi > 0.0 {
        (nice_floor(lo), nice_ceil(hi).max(nice_floor(lo) * 10.0))
    } else {
        (1.0, 10.0)
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |n: f64| LEFT + n.min(x_max) / x_max * plot_w;
    let y = |v: f64| {
        TOP + plot_h - (v.max(y_lo).log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10()) * plot_h
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="16">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );

    for n in 0..=x_max as u32 {
        let px = x(f64::from(n));
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            TOP + plot_h
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h + 18.0,
            nines_label(n)
        );
    }
    for t in y_ticks(y_lo, y_hi) {
        let py = y(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            py + 4.0,
            fmt_tick(t)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">latency (µs, log scale)</text>"#,
        TOP + plot_h / 2.0
    );

    for (i, s) in series.iter().enumerate() {
        let last_nines = (s.count.max(1) as f64).log10().min(x_max);
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(q, v)| (nines(q).min(last_nines), v))
            .map(|(n, v)| format!("{:.1},{:.1}", x(n), y(v)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
        let ly = TOP + 16.0 + 18.0 * i as f64;
        let lx = LEFT + 12.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="3"/>"#,
            lx + 24.0,
            s.color
        );
        let label = format!("{} ({} samples)", s.label, s.count);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 30.0,
            ly + 4.0,
            escape(&label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One line of the scaling plot: a server's throughput in one scenario.
pub struct LineSeries {
    pub label: String,
    pub color: &'static str,
    /// Dashed lines for the reference, solid for natrix.
    pub dashed: bool,
    /// (x value, y value); x values not in the axis are skipped, and a
    /// missing x (a failed configuration) leaves a gap.
    pub points: Vec<(usize, f64)>,
}

/// Colors for up to ten scenarios (cycled beyond).
pub const PALETTE: [&str; 10] = [
    "#d9480f", "#1c7ed6", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d",
    "#364fc7", "#495057",
];

/// Axis label for a throughput tick: 200000 → "200k", 1500000 → "1.5M".
fn fmt_rate(v: f64) -> String {
    let (scaled, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = format!("{scaled:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text}{suffix}")
}

/// Throughput (log scale) against core count, the given core counts evenly
/// spaced on the x axis (powers of two: a log axis), one polyline with
/// point markers per series and a legend on the right.
pub fn scaling_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[usize],
    series: &[LineSeries],
) -> String {
    const W: f64 = 980.0;
    const H: f64 = 540.0;
    const L: f64 = 80.0;
    const R: f64 = 290.0;
    let plot_w = W - L - R;
    let plot_h = H - TOP - BOTTOM;
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| *v > 0.0 && v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (y_lo, y_hi) = if hi > 0.0 {
        (nice_floor(lo), nice_ceil(hi).max(nice_floor(lo) * 10.0))
    } else {
        (1.0, 10.0)
    };
    let slots = xs.len().max(1);
    let x_of = |x: usize| -> Option<f64> {
        let i = xs.iter().position(|&v| v == x)?;
        Some(if slots == 1 {
            L + plot_w / 2.0
        } else {
            L + 20.0 + i as f64 / (slots - 1) as f64 * (plot_w - 40.0)
        })
    };
    let y = |v: f64| {
        TOP + plot_h - (v.max(y_lo).log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10()) * plot_h
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="16">{}</text>"#,
        L + plot_w / 2.0,
        escape(title)
    );
    for &x in xs {
        let px = x_of(x).expect("x is on the axis");
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            TOP + plot_h
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{x}</text>"#,
            TOP + plot_h + 18.0
        );
    }
    for t in y_ticks(y_lo, y_hi) {
        let py = y(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{L}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/>"##,
            L + plot_w
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            L - 6.0,
            py + 4.0,
            fmt_rate(t)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{L}" y="{TOP}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        L + plot_w / 2.0,
        H - 14.0,
        escape(x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        escape(y_label)
    );

    for (i, s) in series.iter().enumerate() {
        let dash = if s.dashed {
            r#" stroke-dasharray="7 4""#
        } else {
            ""
        };
        // Consecutive axis positions with values form one segment; a gap
        // (failed run) splits the line.
        let mut segment: Vec<String> = Vec::new();
        let mut segments = Vec::new();
        for &x in xs {
            match s.points.iter().find(|p| p.0 == x).filter(|p| p.1 > 0.0) {
                Some(&(_, v)) => {
                    let px = x_of(x).expect("x is on the axis");
                    segment.push(format!("{px:.1},{:.1}", y(v)));
                }
                None => segments.push(std::mem::take(&mut segment)),
            }
        }
        segments.push(segment);
        for seg in segments.iter().filter(|s| !s.is_empty()) {
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
                s.color,
                seg.join(" ")
            );
            for p in seg {
                let (px, py) = p.split_once(',').expect("x,y");
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{px}" cy="{py}" r="3" fill="{}"/>"#,
                    s.color
                );
            }
        }
        let ly = TOP + 10.0 + 18.0 * i as f64;
        let lx = L + plot_w + 16.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="3"{dash}/>"#,
            lx + 28.0,
            s.color
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 34.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_axis() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(0.9) - 1.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
        assert!(nines(1.0).is_infinite());
        assert_eq!(nines_label(0), "0%");
        assert_eq!(nines_label(1), "90%");
        assert_eq!(nines_label(2), "99%");
        assert_eq!(nines_label(4), "99.99%");
    }

    #[test]
    fn log_ticks() {
        assert_eq!(
            y_ticks(10.0, 1000.0),
            vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
        );
        assert_eq!(y_ticks(1.0, 10.0), vec![1.0, 2.0, 5.0, 10.0]);
        assert_eq!(fmt_tick(2000.0), "2ms");
        assert_eq!(fmt_tick(50.0), "50");
        assert_eq!((nice_floor(43.0), nice_ceil(43.0)), (20.0, 50.0));
        assert_eq!((nice_floor(8200.0), nice_ceil(8200.0)), (5000.0, 10000.0));
        assert_eq!((nice_floor(100.0), nice_ceil(100.0)), (100.0, 100.0));
    }

    #[test]
    fn renders_both_series() {
        let s = |label, color, scale: f64| Series {
            label,
            color,
            points: vec![
                (0.0, 10.0 * scale),
                (0.9, 20.0 * scale),
                (0.99, 40.0 * scale),
                (1.0, 400.0 * scale),
            ],
            count: 25_000,
        };
        let svg = percentile_svg(
            "req <rep>",
            &[s("natrix", "#d9480f", 1.0), s("reference", "#1c7ed6", 1.5)],
        );
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(
            svg.contains(">natrix (25000 samples)</text>")
                && svg.contains(">reference (25000 samples)</text>")
        );
        assert!(svg.contains("req &lt;rep&gt;"));
        // 25k samples resolve four and a bit nines: the axis runs to five.
        assert!(svg.contains(">99.999%<") && !svg.contains(">99.9999%<"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn scaling_plot_has_a_line_per_series_and_gaps_for_failures() {
        let series = [
            LineSeries {
                label: "scale_pairs natrix".into(),
                color: PALETTE[0],
                dashed: false,
                points: vec![(1, 1.0e6), (2, 1.9e6), (4, 3.5e6), (8, 6.0e6)],
            },
            LineSeries {
                label: "scale_pairs reference".into(),
                color: PALETTE[0],
                dashed: true,
                // 4 cores failed: two segments.
                points: vec![(1, 0.9e6), (2, 1.5e6), (8, 2.0e6)],
            },
        ];
        let svg = scaling_svg("t", "cores", "msgs/s", &[1, 2, 4, 8], &series);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        // natrix: 1 polyline; reference: 2 segments (legend entries are <line>s).
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("<circle").count(), 7);
        assert_eq!(svg.matches("stroke-dasharray").count(), 3);
        assert!(svg.contains(">scale_pairs reference</text>"));
        for x in ["1", "2", "4", "8"] {
            assert!(svg.contains(&format!(">{x}</text>")));
        }
        assert!(svg.contains(">1M</text>") && svg.contains(">5M</text>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let empty = scaling_svg("e", "cores", "msgs/s", &[1], &[]);
        assert!(empty.contains("</svg>") && !empty.contains("NaN"));
    }

    #[test]
    fn rate_ticks() {
        assert_eq!(fmt_rate(200_000.0), "200k");
        assert_eq!(fmt_rate(1_500_000.0), "1.5M");
        assert_eq!(fmt_rate(50.0), "50");
        assert_eq!(fmt_rate(2e9), "2G");
    }

    #[test]
    fn empty_input_still_renders() {
        let svg = percentile_svg("empty", &[]);
        assert!(svg.contains("</svg>") && !svg.contains("NaN"));
    }
}
