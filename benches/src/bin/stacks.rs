//! Our stack against Linux, both ends each, over a veth pair: short
//! connections, ping-pong, bulk and HTTP (see `mtcp_benches::stacks`).
//! Writes `target/bench/latest.json`, `latest.md` and `latest.svg`.
//!
//! usage: stacks [--quick] [--secs S] [--reps R] [--only NAME,...]... [--conc N,...]
//!        [--sides SIDE,...] [--linux-only|--ours-only] [--no-busy] [--linux-busy-spin]
//!        [--memory N] [--memory-buf BYTES]   (idle connections for the RSS figure; 0 skips)
//!        (needs root; skips otherwise)
//!        stacks --report   (rewrite latest.md and latest.svg from latest.json)
//!
//! Sides (record names in brackets): `linux` (`linux`, `linux-offload`),
//! `linux-busy` (`linux-busy`, ping-pong only), `threaded`
//! (`mtcp-rs-threaded`), `rtc` (`mtcp-rs-rtc`), `rtc-busy`
//! (`mtcp-rs-rtc-busy`). Both the full run (5-second repetitions, three of
//! each, plus the resident memory of 100k connections) and `--quick`
//! (half-second repetitions, three of each, no memory figure) measure them
//! all; `--no-busy` leaves out both busy-polling sides.

use mtcp_benches::record::{append_records, compute_ratios};
use mtcp_benches::report::markdown;
use mtcp_benches::stacks::{load_average, run_all, Options, Side};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    // --quick sets the base; every other flag adjusts it, in any order.
    let mut opts = if all.iter().any(|a| a == "--quick") {
        Options::quick()
    } else {
        Options::default()
    };
    let mut args = all.into_iter();
    let mut secs = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()),
            "--reps" => {
                opts.reps = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(opts.reps)
                    .max(1)
            }
            "--only" => opts.only.extend(
                args.next()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|w| !w.is_empty())
                    .map(str::to_string),
            ),
            "--conc" => opts.concurrency.extend(
                args.next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|c| c.trim().parse::<usize>().ok()),
            ),
            "--sides" => {
                let list = args.next().unwrap_or_default();
                let mut sides = Vec::new();
                for name in list.split(',').filter(|n| !n.trim().is_empty()) {
                    match Side::parse(name) {
                        Some(side) => sides.push(side),
                        None => anyhow::bail!(
                            "unknown side `{name}` (linux, linux-busy, threaded, rtc, rtc-busy)"
                        ),
                    }
                }
                opts.sides = sides;
            }
            "--linux-only" => opts.sides.retain(|s| !s.is_ours()),
            "--ours-only" => opts.sides.retain(|s| s.is_ours()),
            "--memory" => opts.memory_conns = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--memory-buf" => {
                opts.memory_buffer = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(opts.memory_buffer)
            }
            "--linux-busy-spin" => opts.linux_busy_app_spin = true,
            "--no-busy" => opts
                .sides
                .retain(|s| !matches!(s, Side::LinuxBusy | Side::RtcBusy)),
            "--report" => {
                // Only rewrite latest.md and latest.svg from latest.json.
                let path = append_records(&[])?;
                let all = mtcp_benches::record::read_records(&path)?;
                println!("{}", markdown(&all));
                return Ok(());
            }
            _ => {}
        }
    }
    if let Some(s) = secs {
        opts.secs = f64::max(s, 0.1);
    }
    if !packet_io::testnet::is_root() {
        println!("stacks: SKIPPED (needs root to create network namespaces)");
        return Ok(());
    }
    // The figures are only as good as the machine is quiet.
    if let Some(load) = load_average() {
        let cpus = packet_io::testnet::available_cpus() as f64;
        if load > 0.5 * cpus {
            eprintln!(
                "stacks: WARNING: load average {load:.1} on {cpus} CPUs: other work competes \
                 with the pinned server and client; figures will be low and noisy"
            );
        }
    }
    let t = Instant::now();
    let mut records = run_all(&opts)?;
    let path = append_records(&records)?;
    compute_ratios(&mut records);
    println!("{}", markdown(&records));
    println!(
        "stacks: {} records in {:.0} s -> {} (and latest.md, latest.svg)",
        records.len(),
        t.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(())
}
