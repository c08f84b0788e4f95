//! Renders a record list as a Markdown table and as an SVG bar chart
//! (plotters' SVG backend only: text is emitted as SVG `<text>`, so no font
//! library is needed at build or run time).

use crate::record::{Record, LINUX};
use plotters::prelude::*;
use std::collections::BTreeMap;

/// A figure with precision that suits its size.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The Markdown table of every record (one row each).
pub fn markdown(records: &[Record]) -> String {
    let mut s = String::from(
        "| bench | workload | conc. | metric | stack | median | min | max | unit | ours/Linux |\n\
         |---|---|---:|---|---|---:|---:|---:|---|---:|\n",
    );
    for r in records {
        let ratio = r
            .ratio_to_linux
            .map(|x| format!("{x:.2}x"))
            .unwrap_or_default();
        let note = r
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} |\n",
            r.bench,
            r.workload,
            r.concurrency,
            r.metric,
            r.stack,
            note,
            fmt_num(r.median),
            fmt_num(r.min),
            fmt_num(r.max),
            r.unit,
            ratio
        ));
    }
    s
}

const PANEL_H: u32 = 280;
const WIDTH: u32 = 1000;

fn stack_color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 6] = [
        RGBColor(0x55, 0x7a, 0xb5),
        RGBColor(0xe0, 0x7b, 0x39),
        RGBColor(0x4c, 0xa0, 0x6b),
        RGBColor(0xb5, 0x55, 0x8f),
        RGBColor(0x8c, 0x8c, 0x8c),
        RGBColor(0xc9, 0xa2, 0x27),
    ];
    PALETTE[i % PALETTE.len()]
}

/// A bar chart: one panel per (metric, unit), one group per workload and
/// concurrency, one bar per stack with the repetitions' range as a whisker
/// and the ratio to Linux written above the others' bars.
pub fn svg(records: &[Record]) -> String {
    // (metric, unit) -> category -> stack -> record
    // (rate first, metric, unit) -> category -> records
    let mut panels: BTreeMap<(bool, String, String), BTreeMap<String, Vec<&Record>>> =
        BTreeMap::new();
    for r in records.iter().filter(|r| r.median.is_finite()) {
        let cat = format!("{} c={}", r.workload, r.concurrency);
        panels
            .entry((r.metric != "rate", r.metric.clone(), r.unit.clone()))
            .or_default()
            .entry(cat)
            .or_default()
            .push(r);
    }
    let mut stacks: Vec<&str> = records.iter().map(|r| r.stack.as_str()).collect();
    stacks.sort_by_key(|s| (*s != LINUX, *s));
    stacks.dedup();

    let mut out = String::new();
    {
        let height = PANEL_H * (panels.len().max(1) as u32);
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        if root.fill(&WHITE).is_err() {
            return String::new();
        }
        if panels.is_empty() {
            let _ = root.draw(&Text::new(
                "no benchmark records yet",
                (20, 20),
                ("sans-serif", 16),
            ));
        }
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (area, ((_, metric, unit), cats)) in areas.iter().zip(panels.iter()) {
            let _ = draw_panel(area, metric, unit, cats, &stacks);
        }
        let _ = root.present();
    }
    out
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_panel(
    area: &Area<'_>,
    metric: &str,
    unit: &str,
    cats: &BTreeMap<String, Vec<&Record>>,
    stacks: &[&str],
) -> Option<()> {
    let names: Vec<&String> = cats.keys().collect();
    let n = names.len().max(1);
    let values = || {
        cats.values()
            .flatten()
            .flat_map(|r| [r.min, r.median, r.max])
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    // Latencies span decades (tens of microseconds to seconds): log10 axis,
    // drawn as log10 of the values on a linear axis.
    let log = unit == "us";
    let (y0, ymax) = if log {
        let lo = values()
            .fold(f64::INFINITY, f64::min)
            .max(1e-3)
            .log10()
            .floor();
        let hi = values().fold(0.0f64, f64::max).max(1e-3).log10() + 0.3;
        (lo, hi.max(lo + 1.0))
    } else {
        (0.0, values().fold(0.0f64, f64::max).max(1e-9) * 1.25)
    };
    let y = |v: f64| if log { v.max(1e-3).log10() } else { v };
    let caption = if log {
        format!("{metric} ({unit}, log scale)")
    } else {
        format!("{metric} ({unit})")
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax)
        .ok()?;
    let label = |x: &f64| -> String {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names
                .get(i as usize)
                .map(|s| s.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&label)
        .y_label_formatter(&|v| fmt_num(if log { 10f64.powf(*v) } else { *v }))
        .y_desc(unit)
        .draw()
        .ok()?;
    let width = 0.8 / stacks.len().max(1) as f64;
    for (si, stack) in stacks.iter().enumerate() {
        let color = stack_color(si);
        let bars: Vec<(f64, &Record)> = names
            .iter()
            .enumerate()
            .filter_map(|(ci, name)| {
                cats[*name]
                    .iter()
                    .find(|r| r.stack == *stack)
                    .map(|r| (ci as f64 - 0.4 + width * si as f64, *r))
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        chart
            .draw_series(bars.iter().map(|(x, r)| {
                Rectangle::new([(*x, y0), (*x + width * 0.9, y(r.median))], color.filled())
            }))
            .ok()?
            .label(*stack)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        chart
            .draw_series(bars.iter().map(|(x, r)| {
                let mid = *x + width * 0.45;
                PathElement::new(
                    vec![(mid, y(r.min)), (mid, y(r.max))],
                    BLACK.stroke_width(1),
                )
            }))
            .ok()?;
        chart
            .draw_series(bars.iter().filter_map(|(x, r)| {
                r.ratio_to_linux.map(|ratio| {
                    Text::new(
                        format!("{ratio:.2}x"),
                        (*x, y(r.max.max(r.median)) + (ymax - y0) * 0.06),
                        ("sans-serif", 12),
                    )
                })
            }))
            .ok()?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .ok()?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(fmt_num(22_512.7), "22513");
        assert_eq!(fmt_num(56.26), "56.3");
        assert_eq!(fmt_num(7.345), "7.34");
        assert_eq!(fmt_num(f64::NAN), "-");
    }

    #[test]
    fn empty_chart_is_valid_svg() {
        let s = svg(&[]);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(markdown(&[]).starts_with("| bench |"));
    }
}
