//! Side-by-side runs: every workload of the apps (perf's short connections,
//! ping-pong and bulk; epserver loaded by epwget) with our stack at both
//! ends and with Linux at both ends, over the same veth pair between two
//! network namespaces, the server pinned to one CPU and the client to
//! another, for the same duration, repeated; medians with min and max go to
//! `target/bench/latest.json` through [`crate::record`].
//!
//! ```text
//!   netns A (server, CPU 0)                 netns B (client, CPU 1)
//!   perf server / epserver  <== veth ==>   perf client / epwget
//!   10.200.x.1                               10.200.x.2
//! ```
//!
//! Both stacks run the same app code ([`mtcp_apps::net::NetContext`]); only
//! the backend differs. Linux's bulk figure is taken twice: with the pair's
//! checksum offload off (`tx off`, as our stack sees the link) and with the
//! default offloads (TSO/GSO and checksum offload on).

use crate::record::{Record, LINUX};
use indicatif::{ProgressBar, ProgressStyle};
use mtcp_apps::client::LoadPlan;
use mtcp_apps::http::{FileCache, HttpGet};
use mtcp_apps::kernel::KernelStack;
use mtcp_apps::net::{run_per_core, would_block, Fd, NetContext};
use mtcp_apps::net::{NetStack, StopFlag};
use mtcp_apps::ours::{xdp_config, Config, OurStack, ThreadMode};
use mtcp_apps::perf::Workload;
use mtcp_apps::run::{load, perf_client, serve_http, serve_perf, summarize, Summary};
use packet_io::testnet::{VethOptions, VethPair};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub use crate::record::OURS;
/// Our stack in busy-polling run-to-completion mode.
pub const OURS_BUSY: &str = "mtcp-rs-busy";
pub use crate::record::LINUX_OFFLOAD;

/// What one case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A perf workload.
    Perf(Workload),
    /// epserver (a 64-byte page) loaded by epwget, one GET per connection.
    Http,
}

/// One measured configuration.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The workload.
    pub kind: Kind,
    /// Connections in all.
    pub concurrency: usize,
    /// Run Linux with its default offloads (bulk), not `tx off`.
    pub offload: bool,
}

impl Case {
    /// The workload's name in records.
    pub fn workload(&self) -> &'static str {
        match self.kind {
            Kind::Perf(Workload::Short) => "short-64B",
            Kind::Perf(Workload::Pingpong) => "pingpong-64B",
            Kind::Perf(Workload::Bulk) => "bulk",
            Kind::Http => "http-64B",
        }
    }

    /// The unit of the rate.
    pub fn unit(&self) -> &'static str {
        match self.kind {
            Kind::Perf(Workload::Short) => "conn/s",
            Kind::Perf(Workload::Pingpong) => "msg/s",
            Kind::Perf(Workload::Bulk) => "Gbit/s",
            Kind::Http => "req/s",
        }
    }
}

/// The cases of issue 6, in run order.
pub fn cases() -> Vec<Case> {
    let perf = |w, c| Case {
        kind: Kind::Perf(w),
        concurrency: c,
        offload: false,
    };
    vec![
        perf(Workload::Short, 1),
        perf(Workload::Short, 64),
        perf(Workload::Short, 1000),
        perf(Workload::Pingpong, 1),
        perf(Workload::Pingpong, 64),
        perf(Workload::Bulk, 1),
        Case {
            offload: true,
            ..perf(Workload::Bulk, 1)
        },
        Case {
            kind: Kind::Http,
            concurrency: 64,
            offload: false,
        },
    ]
}

/// Which stacks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Linux at both ends.
    Linux,
    /// Our stack at both ends (mTCP's threaded mode: a stack thread beside
    /// each application thread on the same core).
    Ours,
    /// Our stack at both ends in run-to-completion mode, busy polling: the
    /// application thread drives the stack itself and spins instead of
    /// sleeping.
    OursBusy,
}

/// Options of a side-by-side run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seconds per repetition.
    pub secs: f64,
    /// Repetitions per case and stack.
    pub reps: usize,
    /// CPU of the server.
    pub server_cpu: usize,
    /// CPU of the client.
    pub client_cpu: usize,
    /// Stacks to run.
    pub sides: Vec<Side>,
    /// Only cases whose workload name contains one of these (all if empty).
    pub only: Vec<String>,
    /// Idle connections for the resident-memory figure of our stack (0: skip).
    pub memory_conns: usize,
    /// rcvbuf = sndbuf of the memory figure's connections.
    pub memory_buffer: usize,
}

impl Options {
    /// `--quick`: 1-second repetitions, three of each, Linux and our
    /// threaded mode only, no memory figure (about a minute).
    pub fn quick() -> Self {
        Options {
            secs: 1.0,
            memory_conns: 0,
            sides: vec![Side::Linux, Side::Ours],
            ..Options::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            secs: 5.0,
            reps: 3,
            server_cpu: 0,
            client_cpu: 1,
            sides: vec![Side::Linux, Side::Ours, Side::OursBusy],
            only: Vec::new(),
            memory_conns: 100_000,
            memory_buffer: 16 * 1024,
        }
    }
}

const PORT: u16 = 5001;

/// Starts our stack at both ends of `net`: the server side on our end
/// (pinned to the server CPU), the client side on the peer end.
pub fn start_ours(
    net: &VethPair,
    opts: &Options,
    busy: bool,
) -> anyhow::Result<(OurStack, OurStack)> {
    start_ours_with(net, opts, |c| {
        if busy {
            c.stack.mode = ThreadMode::RunToCompletion;
            // Spin (for up to a second) rather than sleep in epoll_wait.
            c.stack.spin_us = 1_000_000;
        }
    })
}

/// [`start_ours`] with both configurations adjusted by `tweak`.
pub fn start_ours_with(
    net: &VethPair,
    opts: &Options,
    tweak: impl Fn(&mut Config),
) -> anyhow::Result<(OurStack, OurStack)> {
    let mut scfg = xdp_config(&net.our_if, net.our_ip, net.our_mac, opts.server_cpu);
    let mut ccfg = xdp_config(&net.peer_if, net.peer_ip, net.peer_mac, opts.client_cpu);
    tweak(&mut scfg);
    tweak(&mut ccfg);
    let server = net
        .ours
        .spawn(move || OurStack::start(scfg))
        .join()
        .map_err(|_| anyhow::anyhow!("starting our server stack panicked"))???;
    let client = net
        .peer
        .spawn(move || OurStack::start(ccfg))
        .join()
        .map_err(|_| anyhow::anyhow!("starting our client stack panicked"))???;
    Ok((server, client))
}

/// Runs one repetition of `case` on our stack at both ends.
fn run_ours(
    server: &OurStack,
    client: &OurStack,
    net: &VethPair,
    case: &Case,
    opts: &Options,
) -> anyhow::Result<Summary> {
    let stop = StopFlag::new();
    let listen: SocketAddr = (IpAddr::V4(net.our_ip), PORT).into();
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    let tx = Mutex::new(tx);
    let cache = http_cache();
    std::thread::scope(|s| {
        let srv = s.spawn(|| {
            let ready = |_core: usize, a: SocketAddr| {
                let _ = tx.lock().map(|t| t.send(a));
            };
            match case.kind {
                Kind::Perf(w) => serve_perf(server, w, 64, listen, &stop, &ready).map(drop),
                Kind::Http => serve_http(server, listen, 4096, &cache, &stop, &ready).map(drop),
            }
        });
        let target = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => a,
            Err(_) => {
                stop.stop();
                let r = srv.join();
                anyhow::bail!("our server did not start: {r:?}");
            }
        };
        let plan = LoadPlan {
            target,
            concurrency: case.concurrency,
            requests: None,
            duration: Some(Duration::from_secs_f64(opts.secs)),
            nodelay: false,
        };
        let summary = client_run(client, case.kind, &plan);
        // Let the last closes finish before the server's sockets go.
        std::thread::sleep(Duration::from_millis(100));
        stop.stop();
        let served = srv.join();
        if std::env::var_os("MTCP_BENCH_DEBUG").is_some() {
            eprintln!(
                "server stack:\n{}\nclient stack:\n{}\nserver app: {:?}",
                server.report().unwrap_or_default(),
                client.report().unwrap_or_default(),
                served.as_ref().ok()
            );
        }
        served.map_err(|_| anyhow::anyhow!("our server panicked"))??;
        Ok(summary?)
    })
}

fn record_name(side: Side, case: &Case) -> &'static str {
    match (side, case.offload) {
        (Side::Ours, _) => OURS,
        (Side::OursBusy, _) => OURS_BUSY,
        (Side::Linux, false) => LINUX,
        (Side::Linux, true) => LINUX_OFFLOAD,
    }
}

/// Sets the pair's TX checksum offload (and with it TSO/GSO) on both ends.
fn set_offload(net: &VethPair, on: bool) -> std::io::Result<()> {
    let v = if on { "on" } else { "off" };
    net.ours.exec("ethtool", &["-K", &net.our_if, "tx", v])?;
    net.peer.exec("ethtool", &["-K", &net.peer_if, "tx", v])?;
    Ok(())
}

/// Runs one repetition of `case` on Linux at both ends.
fn run_linux(net: &VethPair, case: &Case, opts: &Options) -> anyhow::Result<Summary> {
    let stop = StopFlag::new();
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    let listen: SocketAddr = (IpAddr::V4(net.our_ip), PORT).into();
    let server_cpu = opts.server_cpu;
    let kind = case.kind;
    let server = {
        let stop = stop.clone();
        let tx = Mutex::new(tx);
        net.ours.spawn(move || -> std::io::Result<()> {
            let stack = KernelStack::new(1, &[server_cpu]);
            let ready = |_core: usize, a: SocketAddr| {
                let _ = tx.lock().map(|t| t.send(a));
            };
            match kind {
                Kind::Perf(w) => serve_perf(&stack, w, 64, listen, &stop, &ready).map(drop),
                Kind::Http => {
                    let cache = http_cache();
                    serve_http(&stack, listen, 4096, &cache, &stop, &ready).map(drop)
                }
            }
        })
    };
    let target = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(a) => a,
        Err(_) => {
            stop.stop();
            let r = server.join();
            anyhow::bail!("the server did not start: {r:?}");
        }
    };
    let plan = LoadPlan {
        target,
        concurrency: case.concurrency,
        requests: None,
        duration: Some(Duration::from_secs_f64(opts.secs)),
        // Every request is one write with nothing unacknowledged before
        // it, so Nagle never delays the client; the servers set TCP_NODELAY.
        nodelay: false,
    };
    let client_cpu = opts.client_cpu;
    let client = net.peer.spawn(move || -> std::io::Result<Summary> {
        let stack = KernelStack::new(1, &[client_cpu]);
        client_run(&stack, kind, &plan)
    });
    let summary = client.join();
    stop.stop();
    let served = server.join();
    let summary = summary.map_err(|_| anyhow::anyhow!("the client panicked"))???;
    served.map_err(|_| anyhow::anyhow!("the server panicked"))???;
    Ok(summary)
}

/// The client half of a case on any stack.
pub fn client_run<S: NetStack>(stack: &S, kind: Kind, plan: &LoadPlan) -> std::io::Result<Summary> {
    let per_core = match kind {
        Kind::Perf(w) => perf_client(stack, w, 64, plan, &StopFlag::new())?,
        Kind::Http => {
            let get = HttpGet::new(&plan.target.to_string(), "/index.html", false);
            load(stack, &get, plan, &StopFlag::new())?
        }
    };
    Ok(summarize(&per_core))
}

/// epserver's content in the HTTP case: a 64-byte page.
pub fn http_cache() -> Arc<FileCache> {
    let mut page = b"<html><body>mtcp-rs epserver benchmark page</body></html>".to_vec();
    page.resize(63, b' ');
    page.push(b'\n');
    Arc::new(FileCache::from_files([("/index.html".to_string(), page)]))
}

/// The figures of one case and stack over its repetitions.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// Rate per repetition (in the case's unit).
    pub rate: Vec<f64>,
    /// p50 latency per repetition, microseconds.
    pub p50: Vec<f64>,
    /// p99 latency per repetition, microseconds.
    pub p99: Vec<f64>,
    /// Failed connections over all repetitions.
    pub errors: u64,
}

impl Samples {
    fn push(&mut self, case: &Case, s: &Summary) {
        let rate = match case.kind {
            Kind::Perf(Workload::Bulk) => s.gbit_s,
            _ => s.rate,
        };
        self.rate.push(rate);
        self.p50.push(s.p50_us);
        self.p99.push(s.p99_us);
        self.errors += s.errors;
    }

    /// The records of these samples.
    pub fn records(&self, case: &Case, stack: &str) -> Vec<Record> {
        let c = case.concurrency as u32;
        let w = case.workload();
        let mut out = vec![Record::from_samples(
            "stacks",
            w,
            "rate",
            c,
            stack,
            case.unit(),
            &self.rate,
        )];
        if !matches!(case.kind, Kind::Perf(Workload::Bulk)) {
            out.push(Record::from_samples(
                "stacks", w, "p50", c, stack, "us", &self.p50,
            ));
            out.push(Record::from_samples(
                "stacks", w, "p99", c, stack, "us", &self.p99,
            ));
        }
        if self.errors > 0 {
            for r in &mut out {
                r.note = Some(format!("{} failed connections", self.errors));
            }
        }
        out
    }
}

/// Resident memory of this process, bytes (`VmRSS`).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What [`memory_per_connection`] measured.
#[derive(Clone, Debug)]
pub struct MemoryFigure {
    /// Connections established (each held by both stacks).
    pub connections: usize,
    /// Resident bytes added per established connection per end.
    pub bytes_per_connection: f64,
    /// The buffer size configured (rcvbuf = sndbuf).
    pub buffer: usize,
}

/// Opens `n` idle connections between our two stacks (both in this
/// process) and reports the growth of resident memory per connection per
/// end. The server listens on several ports (one client address has only
/// the ephemeral range of ports per server port).
pub fn memory_per_connection(
    net: &VethPair,
    opts: &Options,
    n: usize,
    buffer: usize,
) -> anyhow::Result<MemoryFigure> {
    let (server, client) = start_ours_with(net, opts, |c| {
        c.stack.max_concurrency = n + 4096;
        c.stack.rcvbuf = buffer;
        c.stack.sndbuf = buffer;
    })?;
    let per_port = 20_000;
    let ports: Vec<u16> = (0..n.div_ceil(per_port)).map(|i| 6000 + i as u16).collect();
    let before = resident_bytes().unwrap_or(0);
    let stop = StopFlag::new();
    let (tx, rx) = mpsc::channel::<usize>();
    let tx = Mutex::new(tx);
    let ip = net.our_ip;
    let result = std::thread::scope(|s| -> anyhow::Result<MemoryFigure> {
        let srv = s.spawn(|| {
            run_per_core(&server, |ctx, _| {
                let ls: Vec<Fd> = ports
                    .iter()
                    .map(|&p| ctx.listen((IpAddr::V4(ip), p).into(), 4096))
                    .collect::<std::io::Result<_>>()?;
                let mut held = Vec::with_capacity(n);
                let mut events = Vec::new();
                while !stop.is_stopped() {
                    ctx.wait(&mut events, Some(Duration::from_millis(50)))?;
                    for l in &ls {
                        loop {
                            match ctx.accept(*l) {
                                Ok(fd) => held.push(fd),
                                Err(e) if would_block(&e) => break,
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
                Ok(held.len())
            })
        });
        let cli = s.spawn(|| {
            run_per_core(&client, |ctx, _| {
                let mut events = Vec::new();
                let mut pending = std::collections::HashSet::new();
                let (mut opened, mut established) = (0usize, 0usize);
                let deadline = std::time::Instant::now() + Duration::from_secs(120);
                while established < n && std::time::Instant::now() < deadline {
                    // At most 512 handshakes in flight (the listen backlog).
                    while opened < n && pending.len() < 512 {
                        let port = ports[opened % ports.len()];
                        pending.insert(ctx.connect((IpAddr::V4(ip), port).into())?);
                        opened += 1;
                    }
                    ctx.wait(&mut events, Some(Duration::from_millis(50)))?;
                    for ev in events.iter() {
                        if pending.contains(&ev.fd) && ctx.connected(ev.fd).unwrap_or(false) {
                            pending.remove(&ev.fd);
                            established += 1;
                        }
                    }
                }
                let _ = tx.lock().map(|t| t.send(established));
                while !stop.is_stopped() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(established)
            })
        });
        let established = rx.recv_timeout(Duration::from_secs(180));
        // Give the server time to accept the last ones.
        std::thread::sleep(Duration::from_millis(500));
        let after = resident_bytes().unwrap_or(0);
        stop.stop();
        let accepted: usize = srv
            .join()
            .map_err(|_| anyhow::anyhow!("server panicked"))??
            .iter()
            .sum();
        cli.join()
            .map_err(|_| anyhow::anyhow!("client panicked"))??;
        let established = established.map_err(|_| anyhow::anyhow!("client never finished"))?;
        let conns = established.min(accepted).max(1);
        Ok(MemoryFigure {
            connections: established.min(accepted),
            bytes_per_connection: after.saturating_sub(before) as f64 / (2 * conns) as f64,
            buffer,
        })
    });
    drop(server);
    drop(client);
    result
}

/// A line above the progress bar, or on stderr when the bar is hidden (not a
/// terminal), where indicatif would drop it.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() || !std::io::stderr().is_terminal() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Runs every selected case on every selected stack and returns the records
/// (already appended to `latest.json` by the caller's choice).
pub fn run_all(opts: &Options) -> anyhow::Result<Vec<Record>> {
    let net = VethPair::new(&VethOptions {
        kernel_ip_on_ours: true,
        ..VethOptions::default()
    })?;
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| {
            opts.only.is_empty() || opts.only.iter().any(|o| c.workload().contains(o.as_str()))
        })
        .collect();
    let sides = opts.sides.clone();
    let runs: usize = cases
        .iter()
        .map(|c| {
            if c.offload {
                usize::from(sides.contains(&Side::Linux))
            } else {
                sides.len()
            }
        })
        .sum::<usize>()
        * opts.reps;
    let bar = ProgressBar::new(runs as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut records = Vec::new();
    // Linux first, then ours: our XDP steering program must not be attached
    // while Linux runs on the same pair.
    for &side in &sides {
        let ours = match side {
            Side::Linux => None,
            Side::Ours | Side::OursBusy => match start_ours(&net, opts, side == Side::OursBusy) {
                Ok(pair) => Some(pair),
                Err(e) => {
                    say(
                        &bar,
                        format!("stacks: our stack NOT measured: cannot start it: {e:#}"),
                    );
                    continue;
                }
            },
        };
        for case in &cases {
            if case.offload && side != Side::Linux {
                continue;
            }
            let name = record_name(side, case);
            if case.offload {
                set_offload(&net, true)?;
            }
            let mut samples = Samples::default();
            for rep in 0..opts.reps {
                bar.set_message(format!(
                    "{} c={} {name} #{}",
                    case.workload(),
                    case.concurrency,
                    rep + 1
                ));
                let s = match side {
                    Side::Linux => run_linux(&net, case, opts),
                    Side::Ours | Side::OursBusy => match &ours {
                        Some((server, client)) => run_ours(server, client, &net, case, opts),
                        None => Err(anyhow::anyhow!("our stack is not running")),
                    },
                };
                match s {
                    Ok(s) => {
                        say(&bar, format!(
                            "{:>13} c={:<4} {:<13} {:>12.1} {:<6} p50 {:>8.1} us  p99 {:>8.1} us  errors {}",
                            case.workload(),
                            case.concurrency,
                            name,
                            if matches!(case.kind, Kind::Perf(Workload::Bulk)) { s.gbit_s } else { s.rate },
                            case.unit(),
                            s.p50_us,
                            s.p99_us,
                            s.errors
                        ));
                        samples.push(case, &s);
                    }
                    Err(e) => say(
                        &bar,
                        format!(
                            "{} c={} {name}: FAILED: {e:#}",
                            case.workload(),
                            case.concurrency
                        ),
                    ),
                }
                bar.inc(1);
            }
            if case.offload {
                set_offload(&net, false)?;
            }
            if !samples.rate.is_empty() {
                let mut recs = samples.records(case, name);
                if side == Side::Linux && case.offload {
                    for r in &mut recs {
                        r.note = Some("default veth offloads (TSO/GSO, checksum)".into());
                    }
                }
                records.extend(recs);
            }
        }
        drop(ours);
    }
    bar.finish_and_clear();
    if opts.memory_conns > 0 && sides.contains(&Side::Ours) {
        eprintln!(
            "stacks: resident memory of {} idle connections on our stack ({} B buffers)",
            opts.memory_conns, opts.memory_buffer
        );
        match memory_per_connection(&net, opts, opts.memory_conns, opts.memory_buffer) {
            Ok(m) => {
                eprintln!(
                    "stacks: {} connections established: {:.0} B resident per connection per end",
                    m.connections, m.bytes_per_connection
                );
                records.push(
                    Record::from_samples(
                        "stacks",
                        "idle-connections",
                        "rss-per-conn",
                        m.connections as u32,
                        OURS,
                        "B",
                        &[m.bytes_per_connection],
                    )
                    .with_note(format!(
                        "rcvbuf = sndbuf = {} B; both ends in one process, divided by 2",
                        m.buffer
                    )),
                );
            }
            Err(e) => eprintln!("stacks: memory figure FAILED: {e:#}"),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_cases_are_all_there() {
        let names: Vec<(&str, usize, bool)> = cases()
            .iter()
            .map(|c| (c.workload(), c.concurrency, c.offload))
            .collect();
        for want in [
            ("short-64B", 1, false),
            ("short-64B", 64, false),
            ("short-64B", 1000, false),
            ("pingpong-64B", 1, false),
            ("pingpong-64B", 64, false),
            ("bulk", 1, false),
            ("bulk", 1, true),
            ("http-64B", 64, false),
        ] {
            assert!(names.contains(&want), "{want:?} missing");
        }
    }

    #[test]
    fn samples_become_records() {
        let case = cases()[1];
        let mut s = Samples::default();
        for (rate, p50, p99) in [(100.0, 5.0, 9.0), (300.0, 4.0, 8.0), (200.0, 6.0, 7.0)] {
            s.push(
                &case,
                &Summary {
                    rate,
                    p50_us: p50,
                    p99_us: p99,
                    ..Summary::default()
                },
            );
        }
        let recs = s.records(&case, LINUX);
        assert_eq!(recs.len(), 3);
        assert_eq!(
            (recs[0].median, recs[0].min, recs[0].max),
            (200.0, 100.0, 300.0)
        );
        assert_eq!(recs[0].unit, "conn/s");
        assert_eq!(recs[1].metric, "p50");
        assert_eq!(recs[1].median, 5.0);
        assert_eq!(recs[2].median, 8.0);
    }

    #[test]
    fn the_page_is_64_bytes() {
        let c = http_cache();
        assert_eq!(c.bytes(), 64);
    }
}
