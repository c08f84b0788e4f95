//! tcp-core engine benchmark: two `Endpoint`s in one thread joined by an
//! in-memory link (segments are copied from one endpoint's `poll_transmit`
//! into per-direction slot buffers, parsed with checksum verification and
//! fed to the other's `handle_segment`, a batch at a time, as a driver
//! would). One core, no I/O: the figures are the engine's own cost.
//!
//! * **short**: short connections per second: batches of concurrent
//!   connections, each connect, 64 B request, 64 B response, server close,
//!   client close (targets: >= 300,000/s on one core).
//! * **bulk**: bytes per second on one connection, one direction.
//! * **idle memory**: bytes allocated per idle established connection
//!   (client and server side each count as one), measured with a counting
//!   global allocator over 100,000 connections, minus the data buffers;
//!   also the RSS growth from `/proc/self/statm` (target: <= 1 KiB).
//!
//! `cargo run --release -p mtcp-benches --bin tcp_core [-- --quick]`;
//! `cargo xtask bench` runs it. Prints figures, appends them to
//! `target/bench/latest.json`, never asserts on timing.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant as StdInstant};

use mtcp_benches::median;
use mtcp_benches::record::{append_records, Record, OURS};
use tcp_core::{AcceptError, Config, Endpoint, Instant, RecvError, SendError, SocketHandle};
use wire::TcpRepr;

/// A global allocator that counts live bytes, so the benchmark can say how
/// much the engine allocates per connection.
#[allow(unsafe_code)]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static LIVE: AtomicUsize = AtomicUsize::new(0);

    /// Live allocations per size class (8-byte classes; the last class
    /// holds everything from 4 KiB up), for a breakdown of what a
    /// connection costs.
    const CLASSES: usize = 513;
    static BY_SIZE: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];

    fn class(size: usize) -> usize {
        (size / 8).min(CLASSES - 1)
    }

    /// Bytes currently allocated through the global allocator.
    pub fn live_bytes() -> usize {
        LIVE.load(Ordering::Relaxed)
    }

    /// Live allocation counts per size class (class `i` holds sizes
    /// `8 * i .. 8 * i + 8`; the last one all larger sizes).
    pub fn live_by_size() -> Vec<usize> {
        BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    fn add(size: usize) {
        LIVE.fetch_add(size, Ordering::Relaxed);
        BY_SIZE[class(size)].fetch_add(1, Ordering::Relaxed);
    }

    fn sub(size: usize) {
        LIVE.fetch_sub(size, Ordering::Relaxed);
        BY_SIZE[class(size)].fetch_sub(1, Ordering::Relaxed);
    }

    /// Forwards to the system allocator and keeps [`live_bytes`].
    pub struct Counting;

    // SAFETY: every method forwards to `System` with the caller's layout and
    // pointer unchanged, so `System`'s guarantees hold; the counter is only
    // bookkeeping.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same contract as ours; `layout` is the caller's.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                add(layout.size());
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same contract as ours; `layout` is the caller's.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                add(layout.size());
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
            unsafe { System.dealloc(ptr, layout) };
            sub(layout.size());
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: `ptr` was allocated by `System` with `layout`; the caller
            // guarantees `new_size` is valid for `layout.align()`.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                sub(layout.size());
                add(new_size);
            }
            p
        }
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SERVER_PORT: u16 = 80;
const SLOT: usize = 2048;
const MSG: usize = 64;

/// Segments in flight in one direction: fixed-size slots reused across
/// rounds, so the link itself does not allocate per packet.
struct Wire {
    slots: Vec<[u8; SLOT]>,
    meta: Vec<(usize, Ipv4Addr, Ipv4Addr)>,
}

impl Wire {
    fn new() -> Wire {
        Wire {
            slots: Vec::new(),
            meta: Vec::new(),
        }
    }

    /// Move everything `from` has to send onto the wire.
    fn collect(&mut self, from: &mut Endpoint, now: Instant) -> usize {
        self.meta.clear();
        loop {
            let i = self.meta.len();
            if i == self.slots.len() {
                self.slots.push([0u8; SLOT]);
            }
            match from.poll_transmit(now, &mut self.slots[i][..]) {
                Some(t) => self.meta.push((t.len, t.src, t.dst)),
                None => break,
            }
        }
        self.meta.len()
    }

    /// Deliver every segment on the wire to `to`.
    fn deliver(&mut self, to: &mut Endpoint, now: Instant) {
        for (i, &(len, src, dst)) in self.meta.iter().enumerate() {
            let bytes = &self.slots[i][..len];
            match TcpRepr::parse_bytes(bytes, src, dst, true) {
                Ok(seg) => to.handle_segment(now, src, dst, &seg),
                Err(e) => panic!("the engine emitted an invalid segment: {e:?}"),
            }
        }
        self.meta.clear();
    }
}

/// Client (endpoint 0) and server (endpoint 1) over two wires.
struct Pair {
    client: Endpoint,
    server: Endpoint,
    c2s: Wire,
    s2c: Wire,
    start: StdInstant,
}

impl Pair {
    fn new(cfg: Config) -> Pair {
        Pair {
            client: Endpoint::with_seed(cfg.clone(), 1),
            server: Endpoint::with_seed(cfg, 2),
            c2s: Wire::new(),
            s2c: Wire::new(),
            start: StdInstant::now(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    /// One round trip of the link: both directions drained and delivered,
    /// timers run. Returns segments moved.
    fn pump(&mut self) -> usize {
        let now = self.now();
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        let a = self.c2s.collect(&mut self.client, now);
        self.c2s.deliver(&mut self.server, now);
        let b = self.s2c.collect(&mut self.server, now);
        self.s2c.deliver(&mut self.client, now);
        a + b
    }
}

fn short_config(buf: usize) -> Config {
    Config {
        recv_buf: buf,
        send_buf: buf,
        max_connections: 1 << 21,
        max_syn_backlog: 1 << 16,
        // TIME-WAIT of 1 s (MSL 0.5 s) so that TIME-WAIT blocks do not pile
        // up by the million during the run; their expiry is part of the cost.
        msl: Duration::from_millis(500),
        nodelay: true,
        ..Config::default()
    }
}

/// A rate per second of wall-clock time and per second of this thread's
/// CPU time (the machine is shared: the second is the engine's cost).
#[derive(Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: f64,
}

fn rate(count: f64, t0: StdInstant, cpu0: Option<u64>) -> Rate {
    let wall = count / t0.elapsed().as_secs_f64();
    let cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if b > a => count / ((b - a) as f64 / 1e9),
        _ => f64::NAN,
    };
    Rate { wall, cpu }
}

/// Short connections: `batch` concurrent ones at a time for `secs`
/// seconds.
fn short_connections(cfg: Config, batch: usize, secs: f64) -> Rate {
    let mut p = Pair::new(cfg);
    let listener = p
        .server
        .listen(SocketAddrV4::new(SERVER_IP, SERVER_PORT), 1 << 16)
        .expect("listen");
    let remote = SocketAddrV4::new(SERVER_IP, SERVER_PORT);
    let request = [b'q'; MSG];
    let response = [b'r'; MSG];
    let mut buf = [0u8; 256];
    let mut clients: Vec<(SocketHandle, usize, bool)> = Vec::with_capacity(batch);
    let mut servers: Vec<(SocketHandle, usize, bool)> = Vec::with_capacity(batch);
    let mut done = 0u64;
    let mut round = 0u32;
    let t0 = StdInstant::now();
    let cpu0 = thread_cpu_ns();
    while t0.elapsed().as_secs_f64() < secs {
        // A fresh client address per batch, as from many clients: keeps
        // the 4-tuples of this batch apart from the TIME-WAIT blocks of
        // earlier ones.
        round += 1;
        let client_ip = Ipv4Addr::from(0x0a01_0000u32 + round);
        let now = p.now();
        clients.clear();
        servers.clear();
        for _ in 0..batch {
            let h = p
                .client
                .connect(now, SocketAddrV4::new(client_ip, 0), remote)
                .expect("connect");
            // Queued in SYN-SENT, sent once established.
            let n = p.client.send(now, h, &request).expect("send request");
            assert_eq!(n, MSG);
            clients.push((h, 0, false));
        }
        let mut remaining = batch * 2;
        let mut idle_rounds = 0;
        while remaining > 0 {
            let moved = p.pump();
            let now = p.now();
            // Server: accept, read the request, answer, close.
            loop {
                match p.server.accept(listener) {
                    Ok(h) => servers.push((h, 0, false)),
                    Err(AcceptError::WouldBlock) => break,
                    Err(e) => panic!("accept: {e:?}"),
                }
            }
            for s in servers.iter_mut().filter(|s| !s.2) {
                loop {
                    match p.server.recv(s.0, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => s.1 += n,
                        Err(RecvError::WouldBlock) => break,
                        Err(e) => panic!("server recv: {e:?}"),
                    }
                }
                if s.1 == MSG {
                    match p.server.send(now, s.0, &response) {
                        Ok(MSG) => {}
                        Ok(n) => panic!("short send {n}"),
                        Err(SendError::WouldBlock) => continue,
                        Err(e) => panic!("server send: {e:?}"),
                    }
                    p.server.close(now, s.0).expect("server close");
                    s.2 = true;
                    remaining -= 1;
                }
            }
            // Client: read the response and end of stream, close.
            for c in clients.iter_mut().filter(|c| !c.2) {
                loop {
                    match p.client.recv(c.0, &mut buf) {
                        Ok(0) => {
                            p.client.close(now, c.0).expect("client close");
                            c.2 = true;
                            remaining -= 1;
                            break;
                        }
                        Ok(n) => c.1 += n,
                        Err(RecvError::WouldBlock) => break,
                        Err(e) => panic!("client recv: {e:?}"),
                    }
                }
            }
            // Events are not needed by this driver; drop them so the queue
            // stays small.
            while p.client.poll_event().is_some() {}
            while p.server.poll_event().is_some() {}
            if moved == 0 {
                idle_rounds += 1;
                assert!(idle_rounds < 1_000_000, "short connections stalled");
            }
        }
        // The closing handshakes (FIN, ACK) of the last batch.
        while p.pump() > 0 {}
        done += batch as u64;
    }
    let r = rate(done as f64, t0, cpu0);
    black_box(&p.server);
    r
}

/// Bulk transfer on one connection for `secs` seconds: bytes per second.
fn bulk(cfg: Config, secs: f64) -> Rate {
    let mut p = Pair::new(cfg);
    let listener = p
        .server
        .listen(SocketAddrV4::new(SERVER_IP, SERVER_PORT), 8)
        .expect("listen");
    let now = p.now();
    let c = p
        .client
        .connect(
            now,
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 0),
            SocketAddrV4::new(SERVER_IP, SERVER_PORT),
        )
        .expect("connect");
    let s = loop {
        p.pump();
        if let Ok(s) = p.server.accept(listener) {
            break s;
        }
    };
    let chunk = vec![0x5au8; 64 * 1024];
    let mut sink = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    let t0 = StdInstant::now();
    let cpu0 = thread_cpu_ns();
    while t0.elapsed().as_secs_f64() < secs {
        let now = p.now();
        loop {
            match p.client.send(now, c, &chunk) {
                Ok(_) => {}
                Err(SendError::WouldBlock) => break,
                Err(e) => panic!("bulk send: {e:?}"),
            }
        }
        p.pump();
        loop {
            match p.server.recv(s, &mut sink) {
                Ok(n) if n > 0 => received += n as u64,
                Ok(_) | Err(RecvError::WouldBlock) => break,
                Err(e) => panic!("bulk recv: {e:?}"),
            }
        }
        while p.client.poll_event().is_some() {}
        while p.server.poll_event().is_some() {}
    }
    rate(received as f64, t0, cpu0)
}

/// CPU time this thread has run, in nanoseconds (from
/// /proc/thread-self/schedstat), so rates can be given per CPU-second on a
/// shared machine.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Resident set size in bytes (from /proc/self/statm), if readable.
fn rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Idle established connections: (allocated bytes per TCB, RSS bytes per
/// TCB), where each connection is two TCBs (client and server side).
fn idle_memory(n: usize, buf: usize, breakdown: bool) -> (f64, f64) {
    let n_conns = n;
    let cfg = Config {
        recv_buf: buf,
        send_buf: buf,
        max_connections: n + 16,
        max_syn_backlog: n + 16,
        ..Config::default()
    };
    let mut p = Pair::new(cfg);
    let listener = p
        .server
        .listen(SocketAddrV4::new(SERVER_IP, SERVER_PORT), n + 16)
        .expect("listen");
    let per_ip = 20_000;
    // The benchmark's own memory is allocated before the baseline: the
    // handle list and the link's packet slots (one per segment in flight).
    let mut handles: Vec<SocketHandle> = Vec::with_capacity(2 * n);
    for w in [&mut p.c2s, &mut p.s2c] {
        while w.slots.len() < per_ip + 64 {
            w.slots.push([0u8; SLOT]);
        }
    }
    let remote = SocketAddrV4::new(SERVER_IP, SERVER_PORT);
    let before = counting::live_bytes();
    let by_size_before = counting::live_by_size();
    let rss_before = rss_bytes();
    let mut made = 0;
    while made < n {
        let now = p.now();
        let ip = Ipv4Addr::from(0x0a02_0000u32 + (made / per_ip) as u32);
        let k = per_ip.min(n - made);
        for _ in 0..k {
            handles.push(
                p.client
                    .connect(now, SocketAddrV4::new(ip, 0), remote)
                    .expect("connect"),
            );
        }
        made += k;
        while p.pump() > 0 {}
        while let Ok(h) = p.server.accept(listener) {
            handles.push(h);
        }
        while p.client.poll_event().is_some() {}
        while p.server.poll_event().is_some() {}
    }
    assert_eq!(p.client.connection_count(), n, "client connections");
    assert_eq!(p.server.connection_count(), n, "server connections");
    let after = counting::live_bytes();
    let by_size_after = counting::live_by_size();
    let rss_after = rss_bytes();
    if breakdown {
        // Allocations that grew by at least one per 10 TCBs: the
        // per-connection ones (and the tables that grow with them).
        let mut grew: Vec<(usize, usize)> = by_size_after
            .iter()
            .zip(&by_size_before)
            .enumerate()
            .filter(|(_, (a, b))| **a > **b)
            .map(|(class, (a, b))| (class, a - b))
            .collect();
        grew.sort_by_key(|&(class, n)| std::cmp::Reverse(n * (class * 8 + 4)));
        println!("  live allocations added per TCB, by size ({buf} B buffers):");
        for (class, n) in grew.iter().take(8) {
            let size = if *class == 512 {
                ">= 4096".to_owned()
            } else {
                format!("{}..{}", class * 8, class * 8 + 8)
            };
            println!(
                "    {size:>10} B: {:.3} per TCB",
                *n as f64 / (2 * n_conns) as f64
            );
        }
    }
    let tcbs = (2 * n) as f64;
    assert!(handles.len() <= 2 * n, "the handle list did not grow");
    let alloc = after.saturating_sub(before) as f64 / tcbs;
    let rss = match (rss_before, rss_after) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / tcbs,
        _ => f64::NAN,
    };
    black_box(&p);
    (alloc, rss)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only short|bulk|memory` runs one part (for profiling).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let run = |part: &str| only.as_deref().map_or(true, |o| o == part);
    // `--buf KIB` runs the short-connection part with that buffer size only.
    let buf_only: Option<usize> = args
        .iter()
        .position(|a| a == "--buf")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
    // `--batch N`: concurrent short connections per batch (default 1000).
    let batch: usize = args
        .iter()
        .position(|a| a == "--batch")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (reps, mut secs, idle_n) = if quick {
        // Three repetitions still, for a median with its range.
        (3, 0.25, 10_000)
    } else {
        (3, 2.0, 100_000)
    };
    // `--secs S`: seconds per measurement (longer under valgrind).
    if let Some(s) = args
        .iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
    {
        secs = s;
    }
    let mut records = Vec::new();

    println!("tcp-core engine benchmark (one thread, in-memory link, checksums verified)");
    for (buf, label) in [(64 * 1024, "64 KiB buffers"), (8 * 1024, "8 KiB buffers")] {
        if !run("short") {
            break;
        }
        if buf_only.is_some_and(|k| k * 1024 != buf) {
            continue;
        }
        let runs: Vec<Rate> = (0..reps)
            .map(|_| short_connections(short_config(buf), batch, secs))
            .collect();
        let mut wall: Vec<f64> = runs.iter().map(|r| r.wall).collect();
        let mut cpu: Vec<f64> = runs.iter().map(|r| r.cpu).collect();
        let samples = cpu.clone();
        let (w, c) = (median(&mut wall), median(&mut cpu));
        println!(
            "short connections ({label}, batches of {batch}, 64 B request + 64 B response): \
             {c:.0} conn per CPU-second ({w:.0} conn/s wall; median of {reps}; target >= 300000)"
        );
        records.push(
            Record::from_samples(
                "tcp_core",
                &format!("short-64B-buf{}k", buf / 1024),
                "rate",
                batch as u32,
                OURS,
                "conn/CPU-s",
                &samples,
            )
            .with_note("engine only, both ends in one thread, in-memory link, per CPU-second"),
        );
    }
    for (buf, label) in [(64 * 1024, "64 KiB buffers"), (1 << 20, "1 MiB buffers")] {
        if !run("bulk") {
            break;
        }
        let runs: Vec<Rate> = (0..reps)
            .map(|_| {
                bulk(
                    Config {
                        recv_buf: buf,
                        send_buf: buf,
                        ..Config::default()
                    },
                    secs,
                )
            })
            .collect();
        let mut wall: Vec<f64> = runs.iter().map(|r| r.wall * 8.0 / 1e9).collect();
        let mut cpu: Vec<f64> = runs.iter().map(|r| r.cpu * 8.0 / 1e9).collect();
        let samples = cpu.clone();
        let (w, c) = (median(&mut wall), median(&mut cpu));
        println!(
            "bulk, one connection ({label}): {c:.1} Gbit per CPU-second ({w:.1} Gbit/s wall; median of {reps})"
        );
        records.push(
            Record::from_samples(
                "tcp_core",
                &format!("bulk-buf{}k", buf / 1024),
                "rate",
                1,
                OURS,
                "Gbit/CPU-s",
                &samples,
            )
            .with_note("engine only, both ends in one thread, in-memory link, per CPU-second"),
        );
    }
    if !run("memory") {
        if let Err(e) = append_records(&records) {
            eprintln!("tcp_core bench: could not write the result file: {e}");
        }
        return;
    }
    // Memory: the same run with two buffer sizes tells how much of the
    // allocation is buffers; the rest is the per-connection overhead.
    let (small_alloc, small_rss) = idle_memory(idle_n, 4 * 1024, true);
    let (big_alloc, big_rss) = idle_memory(idle_n, 64 * 1024, false);
    let buffer_part = (big_alloc - small_alloc) / (2.0 * (60 * 1024) as f64);
    // Buffers allocated per TCB with 4 KiB buffers, by the same proportion.
    let small_buffers = buffer_part * 2.0 * 4096.0;
    let overhead = small_alloc - small_buffers;
    println!(
        "idle established connections ({idle_n} connections = {} TCBs):",
        2 * idle_n
    );
    println!(
        "  allocated per TCB: {small_alloc:.0} B with 4 KiB buffers, {big_alloc:.0} B with 64 KiB buffers \
         (buffers allocated while idle: {:.0}% of their capacity)",
        buffer_part * 100.0
    );
    println!("  per-TCB memory excluding data buffers: {overhead:.0} B (target <= 1024)");
    println!(
        "  RSS growth per TCB: {small_rss:.0} B (4 KiB buffers), {big_rss:.0} B (64 KiB buffers)"
    );
    records.push(
        Record::from_samples(
            "tcp_core",
            "idle-established",
            "bytes-per-conn",
            idle_n as u32,
            OURS,
            "B",
            &[overhead],
        )
        .with_note("allocated by the engine per idle established TCB, data buffers excluded"),
    );
    if let Err(e) = append_records(&records) {
        eprintln!("tcp_core bench: could not write the result file: {e}");
    }
}
