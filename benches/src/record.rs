//! The benchmark record every bench binary reports into, and the shared
//! result file `target/bench/latest.json` with its Markdown table and SVG
//! chart beside it.
//!
//! # Reporting from a bench binary
//!
//! ```no_run
//! use mtcp_benches::record::{append_records, Record};
//! let samples = vec![1.02e6, 0.98e6, 1.01e6]; // one figure per repetition
//! let rec = Record::from_samples("packet_io", "rx-64B", "rate", 1, "af_xdp", "frames/s", &samples);
//! append_records(&[rec]).expect("writing target/bench/latest.json");
//! ```
//!
//! [`append_records`] replaces any record with the same key (bench,
//! workload, metric, concurrency, stack), so the file always holds the
//! latest figure of each measurement, whichever binaries ran last; it then
//! recomputes every `ratio_to_linux` (the median of a non-Linux record over
//! the median of the `linux` record with the same workload, metric and
//! concurrency, from the same bench when it has one; for our busy-polling
//! stacks also `ratio_to_linux_busy`, over `linux-busy`) and rewrites
//! `latest.md` and `latest.svg`. Set `MTCP_BENCH_DIR` to write elsewhere
//! (tests do).
//!
//! Stack names are the same in every bench: [`LINUX`], [`LINUX_BUSY`],
//! [`LINUX_OFFLOAD`], and for our stack [`OURS_THREADED`], [`OURS_RTC`] and
//! [`OURS_RTC_BUSY`] (its thread modes); [`OURS`] only where a bench has a
//! single way to run ours. Records of figures with no Linux counterpart
//! (the in-process tcp-core engine, the timer wheel) use [`OURS`] and
//! carry no ratio.
//!
//! `cargo xtask bench` starts each invocation from an empty `latest.json`
//! (the previous one is kept as `previous.json`), so that the table it
//! prints holds exactly that run's figures; running one binary on its own
//! merges into the existing file.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// The stack name of the Linux baseline that ratios divide by: kernel
/// sockets, the application sleeping in `epoll_wait`.
pub const LINUX: &str = "linux";
/// Linux busy polling: kernel sockets with `net.core.busy_poll` and
/// `net.core.busy_read` set, so that `epoll_wait` and `read` poll the
/// device queue instead of sleeping (see `stacks` for how on veth). The
/// baseline of [`Record::ratio_to_linux_busy`].
pub const LINUX_BUSY: &str = "linux-busy";
/// Linux with the link's default offloads (bulk): other stacks' notes give
/// their ratio to it as well.
pub const LINUX_OFFLOAD: &str = "linux-offload";
/// mtcp-rs where a bench has only one way to run it (the packet-io queue,
/// the in-process tcp-core engine, the timer wheel).
pub const OURS: &str = "mtcp-rs";
/// mtcp-rs in threaded mode (mTCP's model): a stack thread beside each
/// application thread on the same core, calls crossing a mailbox.
pub const OURS_THREADED: &str = "mtcp-rs-threaded";
/// mtcp-rs in run-to-completion mode: the application thread drives the
/// stack itself and sleeps in `epoll_wait` after `stack.spin_us` (default
/// 50 us) of polling.
pub const OURS_RTC: &str = "mtcp-rs-rtc";
/// mtcp-rs in run-to-completion mode, busy polling: `stack.spin_us` of a
/// second, so the application thread spins instead of sleeping. Compared
/// with [`LINUX_BUSY`] as well as with [`LINUX`].
pub const OURS_RTC_BUSY: &str = "mtcp-rs-rtc-busy";

/// True for the stacks that busy-poll (their names end in `-busy`): their
/// records also carry a ratio to [`LINUX_BUSY`].
pub fn is_busy(stack: &str) -> bool {
    stack.ends_with("-busy")
}

/// One measured figure: the median of several repetitions, with their range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The bench binary that measured it (`stacks`, `packet_io`, ...).
    pub bench: String,
    /// What ran (`short-64B`, `pingpong-64B`, `bulk`, `http`, ...).
    pub workload: String,
    /// Which figure of the run (`rate`, `p50`, `p99`, ...).
    pub metric: String,
    /// Concurrent connections (or flows, or 1).
    pub concurrency: u32,
    /// `linux`, `mtcp-rs`, or another name for what was measured.
    pub stack: String,
    /// Median over the repetitions.
    pub median: f64,
    /// Smallest repetition.
    pub min: f64,
    /// Largest repetition.
    pub max: f64,
    /// Unit of median, min and max.
    pub unit: String,
    /// Every repetition, in run order.
    #[serde(default)]
    pub samples: Vec<f64>,
    /// This median over Linux's for the same workload, metric and
    /// concurrency (absent for Linux itself and when Linux was not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_linux: Option<f64>,
    /// For a busy-polling stack of ours ([`is_busy`]): this median over that
    /// of [`LINUX_BUSY`] for the same workload, metric and concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_linux_busy: Option<f64>,
    /// Anything a reader needs to interpret the figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Median of a sample (sorts in place; NaN when empty).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    match samples.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    }
}

impl Record {
    /// A record from the repetitions' figures.
    pub fn from_samples(
        bench: &str,
        workload: &str,
        metric: &str,
        concurrency: u32,
        stack: &str,
        unit: &str,
        samples: &[f64],
    ) -> Self {
        let mut sorted = samples.to_vec();
        let med = median(&mut sorted);
        Record {
            bench: bench.into(),
            workload: workload.into(),
            metric: metric.into(),
            concurrency,
            stack: stack.into(),
            median: med,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            unit: unit.into(),
            samples: samples.to_vec(),
            ratio_to_linux: None,
            ratio_to_linux_busy: None,
            note: None,
        }
    }

    /// The same record with a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    fn key(&self) -> (&str, &str, &str, u32, &str) {
        (
            &self.bench,
            &self.workload,
            &self.metric,
            self.concurrency,
            &self.stack,
        )
    }
}

/// Where results go: `$MTCP_BENCH_DIR`, else `<workspace>/target/bench`.
pub fn bench_dir() -> PathBuf {
    match std::env::var_os("MTCP_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .join("target/bench"),
    }
}

/// Reads a record list (an empty list when the file does not exist).
pub fn read_records(path: &Path) -> io::Result<Vec<Record>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Sets every non-Linux record's ratio to the Linux record of the same
/// workload, metric and concurrency: the one of the same bench when there
/// is one (two benches may both measure `short-64B` at concurrency 1 under
/// different conditions), else that of any bench. Busy-polling stacks of
/// ours get their ratio to [`LINUX_BUSY`] the same way.
pub fn compute_ratios(records: &mut [Record]) {
    type Base = (String, String, String, u32, f64);
    let baseline = |stack: &str| -> Vec<Base> {
        records
            .iter()
            .filter(|r| r.stack == stack)
            .map(|r| {
                (
                    r.bench.clone(),
                    r.workload.clone(),
                    r.metric.clone(),
                    r.concurrency,
                    r.median,
                )
            })
            .collect()
    };
    let linux = baseline(LINUX);
    let busy = baseline(LINUX_BUSY);
    let offload = baseline(LINUX_OFFLOAD);
    let find = |list: &[Base], r: &Record| {
        let same = |l: &&Base| l.1 == r.workload && l.2 == r.metric && l.3 == r.concurrency;
        list.iter()
            .filter(same)
            .find(|l| l.0 == r.bench)
            .or_else(|| list.iter().find(same))
            .filter(|l| l.4 != 0.0 && l.4.is_finite())
            .map(|l| r.median / l.4)
    };
    for r in records.iter_mut().filter(|r| r.stack != LINUX) {
        r.ratio_to_linux = find(&linux, r);
        r.ratio_to_linux_busy = if is_busy(&r.stack) && r.stack != LINUX_BUSY {
            find(&busy, r)
        } else {
            None
        };
        if r.stack != LINUX_OFFLOAD {
            if let Some(x) = find(&offload, r) {
                r.note = Some(format!("{x:.2}x Linux with default offloads"));
            }
        }
    }
}

/// True when this process was started with `--quick` (shorter runs, for
/// `cargo xtask bench --quick`).
pub fn quick_requested() -> bool {
    std::env::args().skip(1).any(|a| a == "--quick")
}

/// [`append_records`], then one line saying where the figures went (or
/// why they did not): what every bench binary does at its end.
pub fn report(bench: &str, records: &[Record]) {
    match append_records(records) {
        Ok(path) => println!(
            "{bench}: {} records -> {} (and latest.md, latest.svg)",
            records.len(),
            path.display()
        ),
        Err(e) => eprintln!("{bench}: could not write the result file: {e}"),
    }
}

/// Merges `new` into `target/bench/latest.json` (replacing records with the
/// same key), recomputes the ratios and rewrites the Markdown table and the
/// SVG chart. Returns the JSON file's path.
pub fn append_records(new: &[Record]) -> io::Result<PathBuf> {
    append_records_in(&bench_dir(), new)
}

/// [`append_records`] into the directory `dir`.
pub fn append_records_in(dir: &Path, new: &[Record]) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("latest.json");
    let mut all = match read_records(&path) {
        Ok(r) => r,
        Err(e) => {
            // A damaged file is kept aside, never silently merged into.
            let aside = dir.join("latest.json.bad");
            eprintln!(
                "bench: {} unreadable ({e}); moved to {}",
                path.display(),
                aside.display()
            );
            std::fs::rename(&path, &aside)?;
            Vec::new()
        }
    };
    for rec in new {
        match all.iter_mut().find(|r| r.key() == rec.key()) {
            Some(old) => *old = rec.clone(),
            None => all.push(rec.clone()),
        }
    }
    all.sort_by(|a, b| {
        (&a.bench, &a.workload, a.concurrency, &a.metric, &a.stack).cmp(&(
            &b.bench,
            &b.workload,
            b.concurrency,
            &b.metric,
            &b.stack,
        ))
    });
    compute_ratios(&mut all);
    let tmp = dir.join("latest.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(&all).map_err(io::Error::other)?,
    )?;
    std::fs::rename(&tmp, &path)?;
    std::fs::write(dir.join("latest.md"), crate::report::markdown(&all))?;
    std::fs::write(dir.join("latest.svg"), crate::report::svg(&all))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(stack: &str, samples: &[f64]) -> Record {
        Record::from_samples("stacks", "short-64B", "rate", 64, stack, "conn/s", samples)
    }

    #[test]
    fn median_min_max() {
        let r = rec(LINUX, &[3.0, 1.0, 2.0]);
        assert_eq!((r.median, r.min, r.max), (2.0, 1.0, 3.0));
        assert_eq!(r.samples, vec![3.0, 1.0, 2.0]);
        let r = rec(LINUX, &[4.0, 1.0, 2.0, 3.0]);
        assert_eq!(r.median, 2.5);
        assert!(rec(LINUX, &[]).median.is_nan());
    }

    #[test]
    fn json_round_trip() {
        let mut recs = vec![
            rec(LINUX, &[20_000.0, 21_000.0, 22_000.0]),
            rec("mtcp-rs", &[60_000.0, 63_000.0, 66_000.0]).with_note("AF_XDP"),
        ];
        compute_ratios(&mut recs);
        let text = serde_json::to_string(&recs).unwrap();
        let back: Vec<Record> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, recs);
        assert_eq!(back[1].ratio_to_linux, Some(3.0));
        assert_eq!(back[0].ratio_to_linux, None);
        // Optional fields may be absent in files written by others.
        let minimal = r#"[{"bench":"b","workload":"w","metric":"rate","concurrency":1,
            "stack":"linux","median":1.0,"min":1.0,"max":1.0,"unit":"x"}]"#;
        let r: Vec<Record> = serde_json::from_str(minimal).unwrap();
        assert!(r[0].samples.is_empty() && r[0].note.is_none());
    }

    #[test]
    fn ratio_prefers_the_same_bench() {
        let mut recs = vec![
            Record::from_samples("a", "short-64B", "rate", 1, LINUX, "conn/s", &[10.0]),
            Record::from_samples("b", "short-64B", "rate", 1, LINUX, "conn/s", &[20.0]),
            Record::from_samples("b", "short-64B", "rate", 1, OURS, "conn/s", &[40.0]),
            Record::from_samples("c", "short-64B", "rate", 1, OURS, "conn/s", &[40.0]),
            Record::from_samples("c", "short-64B", "rate", 2, OURS, "conn/s", &[40.0]),
        ];
        compute_ratios(&mut recs);
        // Bench b has its own Linux figure: 40 / 20.
        assert_eq!(recs[2].ratio_to_linux, Some(2.0));
        // Bench c has none: the first Linux figure of any bench, 40 / 10.
        assert_eq!(recs[3].ratio_to_linux, Some(4.0));
        // No Linux figure at that concurrency: no ratio.
        assert_eq!(recs[4].ratio_to_linux, None);
    }

    #[test]
    fn busy_stacks_are_also_compared_with_linux_busy() {
        let p99 = |stack: &str, v: f64| {
            Record::from_samples("stacks", "pingpong-64B", "p99", 1, stack, "us", &[v])
        };
        let mut recs = vec![
            p99(LINUX, 80.0),
            p99(LINUX_BUSY, 16.0),
            p99(OURS_RTC, 40.0),
            p99(OURS_RTC_BUSY, 8.0),
            p99(OURS_THREADED, 160.0),
        ];
        compute_ratios(&mut recs);
        let ratios: Vec<(Option<f64>, Option<f64>)> = recs
            .iter()
            .map(|r| (r.ratio_to_linux, r.ratio_to_linux_busy))
            .collect();
        assert_eq!(
            ratios,
            vec![
                (None, None),
                (Some(0.2), None),
                (Some(0.5), None),
                (Some(0.1), Some(0.5)),
                (Some(2.0), None),
            ]
        );
        // Without a linux-busy figure there is no busy ratio.
        let mut recs = vec![p99(LINUX, 80.0), p99(OURS_RTC_BUSY, 8.0)];
        compute_ratios(&mut recs);
        assert_eq!(recs[1].ratio_to_linux_busy, None);
        assert!(is_busy(OURS_RTC_BUSY) && is_busy(LINUX_BUSY) && !is_busy(OURS_RTC));
    }

    #[test]
    fn append_replaces_by_key_and_writes_reports() {
        let dir = std::env::temp_dir().join(format!("mtcp-bench-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = append_records_in(&dir, &[rec(LINUX, &[10.0, 10.0, 10.0])]).unwrap();
        append_records_in(&dir, &[rec("mtcp-rs", &[30.0, 31.0, 29.0])]).unwrap();
        // Same key again: replaced, not duplicated.
        append_records_in(&dir, &[rec(LINUX, &[15.0, 15.0, 15.0])]).unwrap();
        let all = read_records(&p).unwrap();
        assert_eq!(all.len(), 2);
        let ours = all.iter().find(|r| r.stack == "mtcp-rs").unwrap();
        assert_eq!(ours.ratio_to_linux, Some(2.0));
        let md = std::fs::read_to_string(dir.join("latest.md")).unwrap();
        assert!(md.contains("| short-64B |") && md.contains("2.00x"), "{md}");
        let svg = std::fs::read_to_string(dir.join("latest.svg")).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("short-64B"),
            "{svg}"
        );
        // A damaged file is moved aside.
        std::fs::write(&p, b"not json").unwrap();
        append_records_in(&dir, &[rec(LINUX, &[1.0])]).unwrap();
        assert!(dir.join("latest.json.bad").exists());
        assert_eq!(read_records(&p).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
