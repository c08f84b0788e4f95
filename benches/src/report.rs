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
    if v == 0.0 {
        return "0".into();
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

/// An axis label short enough for the label area: `950`, `12k`, `3.5M`,
/// `10G`.
fn fmt_axis(v: f64) -> String {
    let a = v.abs();
    let short = |x: f64, unit: &str| {
        let n = if x >= 10.0 || x == x.round() {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        };
        format!("{n}{unit}")
    };
    if a >= 1e9 {
        short(v / 1e9, "G")
    } else if a >= 1e6 {
        short(v / 1e6, "M")
    } else if a >= 1e4 {
        short(v / 1e3, "k")
    } else {
        fmt_num(v)
    }
}

/// A ratio with two significant digits at least: `2.42x`, `0.05x`,
/// `0.005x` (a ratio of a few per cent still reads as more than zero).
pub fn fmt_ratio(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        "-".into()
    } else if a >= 0.1 || a == 0.0 {
        format!("{x:.2}x")
    } else if a >= 0.01 {
        format!("{x:.3}x")
    } else {
        format!("{x:.4}x")
    }
}

/// The Markdown table of every record (one row each): the ratio to
/// `linux`, then for busy-polling stacks the ratio to `linux-busy`; a
/// record's note is the last column.
pub fn markdown(records: &[Record]) -> String {
    let mut s = String::from(
        "| bench | workload | conc. | metric | stack | median | min | max | unit | / linux | / linux-busy | note |\n\
         |---|---|---:|---|---|---:|---:|---:|---|---:|---:|---|\n",
    );
    let x = |r: Option<f64>| r.map(fmt_ratio).unwrap_or_default();
    for r in records {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.bench,
            r.workload,
            r.concurrency,
            r.metric,
            r.stack,
            fmt_num(r.median),
            fmt_num(r.min),
            fmt_num(r.max),
            r.unit,
            x(r.ratio_to_linux),
            x(r.ratio_to_linux_busy),
            r.note.as_deref().unwrap_or_default().replace('|', "/"),
        ));
    }
    s
}

/// Height of one chart panel, in pixels.
const PANEL_H: u32 = 300;
/// Width of one chart panel; panels are laid out two per row.
const PANEL_W: u32 = 640;
const COLUMNS: usize = 2;
/// Panels with more groups than this take a whole row.
const WIDE_AFTER: usize = 4;

fn stack_color(i: usize) -> RGBColor {
    // As many colours as the stacks a full run names (linux, linux-busy,
    // linux-offload, mtcp-rs and its three modes), so none repeats.
    const PALETTE: [RGBColor; 8] = [
        RGBColor(0x55, 0x7a, 0xb5),
        RGBColor(0xe0, 0x7b, 0x39),
        RGBColor(0x4c, 0xa0, 0x6b),
        RGBColor(0xb5, 0x55, 0x8f),
        RGBColor(0x8c, 0x8c, 0x8c),
        RGBColor(0xc9, 0xa2, 0x27),
        RGBColor(0x3b, 0xa8, 0xb5),
        RGBColor(0x8a, 0x5a, 0x3c),
    ];
    PALETTE[i % PALETTE.len()]
}

/// A concurrency as a short label: `64`, `1000`, `100k`, `1M`.
fn fmt_count(n: u32) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 10_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// Which panel a record goes in: benches in a fixed order (the
/// side-by-side `stacks` run first), rates before latencies and sizes.
type PanelKey = (bool, String, bool, String, String);

/// A bar chart: one panel per bench, metric and unit (two panels a row, a
/// panel of more than four groups a row of its own),
/// one group per workload and concurrency, one bar per stack with the
/// repetitions' range as a whisker and the ratio to Linux written above the
/// others' bars. A stack has the same colour in every panel.
pub fn svg(records: &[Record]) -> String {
    // panel -> (workload, concurrency) -> records
    let mut panels: BTreeMap<PanelKey, BTreeMap<(String, u32), Vec<&Record>>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.median.is_finite()) {
        panels
            .entry((
                r.bench != "stacks",
                r.bench.clone(),
                r.metric != "rate",
                r.metric.clone(),
                r.unit.clone(),
            ))
            .or_default()
            .entry((r.workload.clone(), r.concurrency))
            .or_default()
            .push(r);
    }
    let mut stacks: Vec<&str> = records.iter().map(|r| r.stack.as_str()).collect();
    stacks.sort_by_key(|s| (*s != LINUX, *s));
    stacks.dedup();

    // Layout: two panels a row; a panel with many groups takes a whole
    // row so that its labels do not collide.
    let wide = |cats: &BTreeMap<(String, u32), Vec<&Record>>| cats.len() > WIDE_AFTER;
    let mut cells: Vec<(usize, usize, usize)> = Vec::new(); // (row, column, span)
    let (mut row, mut col) = (0, 0);
    for cats in panels.values() {
        let span = if wide(cats) { COLUMNS } else { 1 };
        if col + span > COLUMNS {
            row += 1;
            col = 0;
        }
        cells.push((row, col, span));
        col += span;
    }
    let rows = if cells.is_empty() { 1 } else { row + 1 };
    let columns = if panels.len() > 1 || panels.values().any(wide) {
        COLUMNS
    } else {
        1
    };
    let mut out = String::new();
    {
        let size = (PANEL_W * columns as u32, PANEL_H * rows as u32);
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
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
        for (&(row, col, span), (key, cats)) in cells.iter().zip(panels.iter()) {
            let area = root.clone().shrink(
                (col as u32 * PANEL_W, row as u32 * PANEL_H),
                (span as u32 * PANEL_W, PANEL_H),
            );
            let (_, bench, _, metric, unit) = key;
            let _ = draw_panel(&area, bench, metric, unit, cats, &stacks);
        }
        let _ = root.present();
    }
    out
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_panel(
    area: &Area<'_>,
    bench: &str,
    metric: &str,
    unit: &str,
    cats: &BTreeMap<(String, u32), Vec<&Record>>,
    all_stacks: &[&str],
) -> Option<()> {
    // Only this panel's stacks get a bar slot; colours stay global.
    let stacks: Vec<(usize, &str)> = all_stacks
        .iter()
        .enumerate()
        .filter(|(_, s)| cats.values().flatten().any(|r| r.stack == **s))
        .map(|(i, s)| (i, *s))
        .collect();
    let keys: Vec<&(String, u32)> = cats.keys().collect();
    let all_one = keys.iter().all(|(_, c)| *c == 1);
    let names: Vec<String> = keys
        .iter()
        .map(|(w, c)| {
            if all_one {
                w.clone()
            } else {
                format!("{w} c={}", fmt_count(*c))
            }
        })
        .collect();
    let n = names.len().max(1);
    let values = || {
        cats.values()
            .flatten()
            .flat_map(|r| [r.min, r.median, r.max])
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    // Latencies span decades (tens of microseconds to seconds), and so do
    // some panels' figures: log10 axis, drawn as log10 of the values on a
    // linear axis. The top of the plot is left to the legend (one line per
    // stack) and the ratios: the bars end below it.
    let (lo_v, hi_v) = values().fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let log = unit == "us" || (lo_v.is_finite() && hi_v / lo_v > 30.0);
    let free = ((stacks.len() * 20 + 45) as f64 / 220.0).min(0.6);
    let (y0, ymax) = if log {
        let lo = lo_v.max(1e-3).log10().floor();
        let hi = hi_v.max(1e-3).log10().max(lo + 1.0);
        (lo, lo + (hi - lo) / (1.0 - free))
    } else {
        (0.0, hi_v.max(1e-9) / (1.0 - free))
    };
    let y = |v: f64| if log { v.max(1e-3).log10() } else { v };
    let caption = if log {
        format!("{bench}: {metric} ({unit}, log scale)")
    } else {
        format!("{bench}: {metric} ({unit})")
    };
    // (Plotters writes SVG text at about 0.8 of the size asked for.)
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 21))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y0..ymax)
        .ok()?;
    let label = |x: &f64| -> String {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&label)
        .x_label_style(("sans-serif", 16))
        .y_labels(6)
        .y_label_style(("sans-serif", 15))
        .y_label_formatter(&|v| fmt_axis(if log { 10f64.powf(*v) } else { *v }))
        .draw()
        .ok()?;
    let width = 0.8 / stacks.len().max(1) as f64;
    for (slot, &(si, stack)) in stacks.iter().enumerate() {
        let color = stack_color(si);
        let bars: Vec<(f64, &Record)> = keys
            .iter()
            .enumerate()
            .filter_map(|(ci, key)| {
                cats[*key]
                    .iter()
                    .find(|r| r.stack == stack)
                    .map(|r| (ci as f64 - 0.4 + width * slot as f64, *r))
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
            .label(stack)
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
                        fmt_ratio(ratio),
                        // Text hangs below its anchor: clear the whisker.
                        (*x, y(r.max.max(r.median)) + (ymax - y0) * 0.13),
                        ("sans-serif", 15),
                    )
                })
            }))
            .ok()?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
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
        assert_eq!(fmt_axis(950.0), "950");
        assert_eq!(fmt_axis(12_000.0), "12k");
        assert_eq!(fmt_axis(3_500_000.0), "3.5M");
        assert_eq!(fmt_axis(1e10), "10G");
        assert_eq!(fmt_axis(0.5), "0.50");
        assert_eq!(fmt_ratio(2.4249), "2.42x");
        assert_eq!(fmt_ratio(0.0512), "0.051x");
        assert_eq!(fmt_ratio(0.00494), "0.0049x");
        assert_eq!(fmt_ratio(0.0), "0.00x");
    }

    #[test]
    fn notes_have_their_own_column() {
        let r = Record::from_samples("b", "w", "rate", 1, "mtcp-rs", "x/s", &[1.0, 3.0, 2.0])
            .with_note("a | b");
        let md = markdown(&[r]);
        let row = md.lines().nth(2).unwrap();
        assert_eq!(
            row,
            "| b | w | 1 | rate | mtcp-rs | 2.00 | 1.00 | 3.00 | x/s |  |  | a / b |"
        );
        // Header, separator and row have the same number of cells.
        let cells = |l: &str| l.matches('|').count();
        assert!(md.lines().all(|l| cells(l) == cells(row)), "{md}");
    }

    #[test]
    fn busy_rows_show_both_ratios() {
        use crate::record::{compute_ratios, LINUX_BUSY, OURS_RTC_BUSY};
        let p99 = |stack: &str, v: f64| {
            Record::from_samples("stacks", "pingpong-64B", "p99", 1, stack, "us", &[v])
        };
        let mut recs = vec![
            p99(LINUX, 80.0),
            p99(LINUX_BUSY, 16.0),
            p99(OURS_RTC_BUSY, 8.0),
        ];
        compute_ratios(&mut recs);
        let md = markdown(&recs);
        let rows: Vec<&str> = md.lines().skip(2).collect();
        assert!(rows[1].ends_with("| us | 0.20x |  |  |"), "{md}");
        assert!(rows[2].ends_with("| us | 0.10x | 0.50x |  |"), "{md}");
    }

    #[test]
    fn counts_are_short() {
        assert_eq!(fmt_count(64), "64");
        assert_eq!(fmt_count(1000), "1000");
        assert_eq!(fmt_count(100_000), "100k");
        assert_eq!(fmt_count(1_000_000), "1M");
        assert_eq!(fmt_count(12_345), "12345");
    }

    #[test]
    fn panels_name_their_bench_and_stacks_share_colours() {
        let recs = vec![
            Record::from_samples("stacks", "short-64B", "rate", 64, LINUX, "conn/s", &[1.0]),
            Record::from_samples(
                "stacks",
                "short-64B",
                "rate",
                64,
                "mtcp-rs",
                "conn/s",
                &[2.0],
            ),
            Record::from_samples(
                "timers_wheel",
                "insert",
                "cost",
                1,
                "mtcp-rs",
                "ns/op",
                &[3.0],
            ),
        ];
        let s = svg(&recs);
        assert!(s.contains("stacks: rate (conn/s)"), "{s}");
        assert!(s.contains("timers_wheel: cost (ns/op)"), "{s}");
        // Concurrency is left out of a panel's labels when it is 1 throughout.
        assert!(
            s.contains("short-64B c=64") && !s.contains("insert c=1"),
            "{s}"
        );
        assert!(s.contains("insert"), "{s}");
        // mtcp-rs has its colour (the second) in both panels.
        let second = "#E07B39";
        assert!(s.matches(second).count() >= 2, "{s}");
    }

    #[test]
    fn every_stack_of_a_full_run_has_its_own_colour() {
        use crate::record::{
            LINUX_BUSY, LINUX_OFFLOAD, OURS, OURS_RTC, OURS_RTC_BUSY, OURS_THREADED,
        };
        let stacks = [
            LINUX,
            LINUX_BUSY,
            LINUX_OFFLOAD,
            OURS,
            OURS_RTC,
            OURS_RTC_BUSY,
            OURS_THREADED,
        ];
        let colours: std::collections::HashSet<(u8, u8, u8)> = (0..stacks.len())
            .map(|i| {
                let c = stack_color(i);
                (c.0, c.1, c.2)
            })
            .collect();
        assert_eq!(colours.len(), stacks.len());
    }

    #[test]
    fn empty_chart_is_valid_svg() {
        let s = svg(&[]);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(markdown(&[]).starts_with("| bench |"));
    }
}
