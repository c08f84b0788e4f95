//! Micro-benchmark of the `timers` wheel: insert, cancel, reschedule and
//! expiry of 1M timers with deadlines spread over 10 s at 1 ms ticks (the
//! shape of per-connection RTO / delayed-ACK / keep-alive timers).
//!
//! `cargo run --release -p mtcp-benches --bin timers_wheel [-- N | --timers N] [--quick]`
//! Prints the median ns/op over several rounds and records each operation
//! in `target/bench/latest.json` (bench `timers_wheel`, stack `mtcp-rs`, no
//! Linux counterpart; concurrency 1, the timer count in the note). Never
//! asserts on timing. `--quick`: 3 rounds instead of 5 (the same 1M
//! timers: fewer make the wheel fit in cache and the figures incomparable).

use std::hint::black_box;
use std::time::Instant;

use mtcp_benches::record::{self, Record, OURS};
use timers::{TimerHandle, Wheel, DEFAULT_TICK_US};

const SPREAD_US: u64 = 10_000_000;

/// xorshift64*: deterministic deadlines without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn deadlines(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng(seed | 1);
    (0..n).map(|_| 1 + rng.next() % SPREAD_US).collect()
}

fn ns_per(start: Instant, ops: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / ops.max(1) as f64
}

fn main() {
    let quick = record::quick_requested();
    let rounds = if quick { 3 } else { 5 };
    // N is the first argument or follows `--timers`: other benches' flags
    // with numbers (`cargo xtask bench --secs 2`) are not a timer count.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--timers")
        .and_then(|i| args.get(i + 1))
        .or(args.first())
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let ds = deadlines(n, 0x9e37_79b9_7f4a_7c15);
    let mut order: Vec<usize> = (0..n).collect();
    // Cancel in a scrambled order (connections close in no particular order).
    let mut rng = Rng(42);
    for i in (1..n).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }

    let (mut insert, mut insert_cold, mut cancel, mut resched, mut expire_step, mut expire_jump) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut fired_total = 0usize;
    for _ in 0..rounds {
        // Insert into a fresh wheel (storage grows) and into a pre-sized one.
        let mut w: Wheel<u32> = Wheel::new(DEFAULT_TICK_US, 0);
        let t = Instant::now();
        for (i, &d) in ds.iter().enumerate() {
            black_box(w.insert(d, i as u32));
        }
        insert_cold.push(ns_per(t, n));
        drop(w);

        let mut w: Wheel<u32> = Wheel::with_capacity(DEFAULT_TICK_US, 0, n);
        let t = Instant::now();
        let handles: Vec<TimerHandle> = ds
            .iter()
            .enumerate()
            .map(|(i, &d)| w.insert(d, i as u32))
            .collect();
        insert.push(ns_per(t, n));

        // Reschedule every timer 1 s later (RTO restart on each ACK).
        let t = Instant::now();
        for (&h, &d) in handles.iter().zip(&ds) {
            black_box(w.reschedule(h, d + 1_000_000));
        }
        resched.push(ns_per(t, n));

        // Cancel all, in scrambled order.
        let t = Instant::now();
        for &i in &order {
            black_box(w.cancel(handles[i]));
        }
        cancel.push(ns_per(t, n));
        assert!(w.is_empty());

        // Expiry, driven tick by tick like a runtime's event loop.
        for (i, &d) in ds.iter().enumerate() {
            w.insert(d, i as u32);
        }
        let mut out: Vec<(TimerHandle, u32)> = Vec::with_capacity(4096);
        let mut fired = 0;
        let t = Instant::now();
        let mut now = 0;
        while now <= SPREAD_US {
            now += DEFAULT_TICK_US;
            fired += w.advance(now, &mut out);
            out.clear();
        }
        expire_step.push(ns_per(t, fired));
        fired_total = fired;

        // Expiry in one jump past every deadline (after a long stall).
        for (i, &d) in ds.iter().enumerate() {
            w.insert(now + d, i as u32);
        }
        let mut out: Vec<(TimerHandle, u32)> = Vec::with_capacity(n);
        let t = Instant::now();
        let fired = w.advance(now + SPREAD_US + 1, &mut out);
        expire_jump.push(ns_per(t, fired));
        black_box(&out);
    }
    assert_eq!(fired_total, n, "every timer fires exactly once");

    println!("timers_wheel: {n} timers, deadlines uniform over 10 s, 1 ms tick, median of {rounds} rounds");
    let ops: [(&str, &str, &str, &mut Vec<f64>); 6] = [
        ("insert", "insert (pre-sized storage)", "ns/op", &mut insert),
        (
            "insert-grow",
            "insert (storage grows)",
            "ns/op",
            &mut insert_cold,
        ),
        ("reschedule", "reschedule (+1 s)", "ns/op", &mut resched),
        ("cancel", "cancel (scrambled order)", "ns/op", &mut cancel),
        (
            "expire-tick",
            "expiry, advance every 1 ms",
            "ns/timer",
            &mut expire_step,
        ),
        (
            "expire-jump",
            "expiry, one advance past all",
            "ns/timer",
            &mut expire_jump,
        ),
    ];
    let mut records = Vec::new();
    for (workload, what, unit, samples) in ops {
        let rec = Record::from_samples("timers_wheel", workload, "cost", 1, OURS, "ns/op", samples)
            .with_note(format!("{n} timers over 10 s, 1 ms tick; {what}, {unit}"));
        println!("  {what:<31} {:8.1} {unit}", rec.median);
        records.push(rec);
    }
    record::report("timers_wheel", &records);
}
