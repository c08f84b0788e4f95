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
//!
//! # Sides
//!
//! | stack (record name) | what runs at both ends |
//! |---|---|
//! | `linux` | kernel sockets, the app sleeping in `epoll_wait` |
//! | `linux-busy` | kernel busy polling (ping-pong only): see below |
//! | `mtcp-rs-threaded` | our stack, a stack thread beside the app thread (mTCP's model) |
//! | `mtcp-rs-rtc` | our stack run to completion by the app thread, which sleeps in `epoll_wait` after `stack.spin_us` (50 us) |
//! | `mtcp-rs-rtc-busy` | the same, spinning instead of sleeping (`spin_us` of a second) |
//!
//! # Linux busy polling on veth
//!
//! `linux-busy` sets `net.core.busy_poll` and `net.core.busy_read` to
//! [`BUSY_POLL_US`]: `epoll_wait` and `read` then poll the device's NAPI
//! context for up to that long before they sleep, and the app calls
//! `epoll_wait` as on the `linux` side. On veth the kernel can only
//! busy-poll when the receiving end has a NAPI context, which it has only
//! with GRO on (or an XDP program attached), and when the sender's skbs are
//! eligible for that path, which TCP's are only with TSO off (`tx off`, the
//! pair's setting here): without GRO, `TcpExt: BusyPollRxPackets` stays 0.
//! So the side turns GRO on at both ends for its runs, and every record
//! says which share of the received TCP segments the kernel busy-polled
//! (99% at concurrency 1 on the 2-core VM). The sysctls and GRO are put
//! back as they were afterwards, also on errors.
//!
//! With [`Options::linux_busy_app_spin`] (`--linux-busy-spin`) the apps
//! also spin on `epoll_wait` with a zero timeout
//! ([`KernelStack::busy_polling`]). That is not the default: a zero-timeout
//! `epoll_wait` polls the NAPI context once and lets it go, so the sender's
//! softirq takes nearly every packet first (under 1% busy-polled) and the
//! kernel's busy polling hardly takes part.

use crate::record::{Record, LINUX, LINUX_BUSY, OURS_RTC, OURS_RTC_BUSY, OURS_THREADED};
use indicatif::{ProgressBar, ProgressStyle};
use mtcp_apps::client::LoadPlan;
use mtcp_apps::http::{FileCache, HttpGet};
use mtcp_apps::kernel::KernelStack;
use mtcp_apps::net::{run_per_core, would_block, Fd, NetContext};
use mtcp_apps::net::{NetStack, StopFlag};
use mtcp_apps::ours::{xdp_config, Config, OurStack, ThreadMode};
use mtcp_apps::perf::Workload;
use mtcp_apps::run::{load, perf_client, serve_http, serve_perf, summarize, Summary};
use packet_io::testnet::{Netns, VethOptions, VethPair};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub use crate::record::LINUX_OFFLOAD;

/// `net.core.busy_poll` and `net.core.busy_read` of the `linux-busy` side,
/// microseconds (the value the kernel's documentation suggests).
pub const BUSY_POLL_US: u32 = 50;

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

/// Which stacks run (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Linux at both ends, the app sleeping in `epoll_wait`.
    Linux,
    /// Linux at both ends with kernel busy polling and the app spinning on
    /// `epoll_wait` (ping-pong cases only).
    LinuxBusy,
    /// Our stack at both ends in mTCP's threaded mode: a stack thread beside
    /// each application thread on the same core.
    Threaded,
    /// Our stack at both ends in run-to-completion mode: the application
    /// thread drives the stack and sleeps in `epoll_wait` after
    /// `stack.spin_us` (the default, 50 us) of polling.
    Rtc,
    /// Run-to-completion, busy polling: the application thread spins
    /// (`spin_us` of a second) instead of sleeping.
    RtcBusy,
}

impl Side {
    /// Every side, in run order: Linux's first (our XDP steering program
    /// must not be attached while Linux runs on the pair).
    pub const ALL: [Side; 5] = [
        Side::Linux,
        Side::LinuxBusy,
        Side::Threaded,
        Side::Rtc,
        Side::RtcBusy,
    ];

    /// The stack name of this side's records in `case`.
    pub fn label(self, case: &Case) -> &'static str {
        match self {
            Side::Linux if case.offload => LINUX_OFFLOAD,
            Side::Linux => LINUX,
            Side::LinuxBusy => LINUX_BUSY,
            Side::Threaded => OURS_THREADED,
            Side::Rtc => OURS_RTC,
            Side::RtcBusy => OURS_RTC_BUSY,
        }
    }

    /// The short name `--sides` takes: `linux`, `linux-busy`, `threaded`,
    /// `rtc`, `rtc-busy`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Linux => "linux",
            Side::LinuxBusy => "linux-busy",
            Side::Threaded => "threaded",
            Side::Rtc => "rtc",
            Side::RtcBusy => "rtc-busy",
        }
    }

    /// The side called `name` (its short name or its record name).
    pub fn parse(name: &str) -> Option<Side> {
        let name = name.trim();
        let plain = Case {
            kind: Kind::Http,
            concurrency: 1,
            offload: false,
        };
        Side::ALL
            .into_iter()
            .find(|s| s.name() == name || s.label(&plain) == name)
    }

    /// Our stack (not Linux).
    pub fn is_ours(self) -> bool {
        matches!(self, Side::Threaded | Side::Rtc | Side::RtcBusy)
    }

    /// Whether this side measures `case`: Linux with default offloads is a
    /// Linux figure only, and Linux busy polling is measured on ping-pong
    /// (where the issue's latency target is).
    pub fn runs(self, case: &Case) -> bool {
        match self {
            Side::Linux => true,
            Side::LinuxBusy => case.kind == Kind::Perf(Workload::Pingpong),
            _ => !case.offload,
        }
    }
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
    /// Only cases of these concurrencies (all if empty).
    pub concurrency: Vec<usize>,
    /// Idle connections for the resident-memory figure of our stack (0: skip).
    pub memory_conns: usize,
    /// rcvbuf = sndbuf of the memory figure's connections.
    pub memory_buffer: usize,
    /// On the `linux-busy` side, the apps also spin on `epoll_wait` with a
    /// zero timeout (else they call it with their timeout and the kernel
    /// busy-polls inside it for up to [`BUSY_POLL_US`] before sleeping).
    pub linux_busy_app_spin: bool,
}

impl Options {
    /// `--quick`: every side, three repetitions of half a second each, no
    /// memory figure: 93 runs, about a minute on the 2-core VM, so that
    /// `cargo xtask bench --quick` (every bench binary) stays within two
    /// minutes (about 90 s measured with other builds running).
    pub fn quick() -> Self {
        Options {
            secs: 0.5,
            memory_conns: 0,
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
            sides: Side::ALL.to_vec(),
            only: Vec::new(),
            concurrency: Vec::new(),
            memory_conns: 100_000,
            memory_buffer: 16 * 1024,
            linux_busy_app_spin: false,
        }
    }
}

const PORT: u16 = 5001;

/// Starts our stack at both ends of `net` in the thread mode of `side`
/// (one of ours): the server side on our end (pinned to the server CPU),
/// the client side on the peer end.
pub fn start_ours(
    net: &VethPair,
    opts: &Options,
    side: Side,
) -> anyhow::Result<(OurStack, OurStack)> {
    start_ours_with(net, opts, |c| match side {
        Side::Threaded => c.stack.mode = ThreadMode::Threaded,
        // spin_us stays at its default.
        Side::Rtc => c.stack.mode = ThreadMode::RunToCompletion,
        Side::RtcBusy => {
            c.stack.mode = ThreadMode::RunToCompletion;
            // Spin (for up to a second) rather than sleep in epoll_wait.
            c.stack.spin_us = 1_000_000;
        }
        Side::Linux | Side::LinuxBusy => {}
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

/// Sets the pair's TX checksum offload (and with it TSO/GSO) on both ends.
fn set_offload(net: &VethPair, on: bool) -> std::io::Result<()> {
    let v = if on { "on" } else { "off" };
    net.ours.exec("ethtool", &["-K", &net.our_if, "tx", v])?;
    net.peer.exec("ethtool", &["-K", &net.peer_if, "tx", v])?;
    Ok(())
}

/// Runs one repetition of `case` on Linux at both ends, the apps spinning
/// on `epoll_wait` when `busy`.
fn run_linux(net: &VethPair, case: &Case, opts: &Options, busy: bool) -> anyhow::Result<Summary> {
    let stop = StopFlag::new();
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    let listen: SocketAddr = (IpAddr::V4(net.our_ip), PORT).into();
    let server_cpu = opts.server_cpu;
    let kind = case.kind;
    let server = {
        let stop = stop.clone();
        let tx = Mutex::new(tx);
        net.ours.spawn(move || -> std::io::Result<()> {
            let stack = KernelStack::new(1, &[server_cpu]).busy_polling(busy);
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
        let stack = KernelStack::new(1, &[client_cpu]).busy_polling(busy);
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
            (opts.only.is_empty() || opts.only.iter().any(|o| c.workload().contains(o.as_str())))
                && (opts.concurrency.is_empty() || opts.concurrency.contains(&c.concurrency))
        })
        .collect();
    // Linux first, then ours: our XDP steering program must not be attached
    // while Linux runs on the same pair.
    let mut sides = opts.sides.clone();
    sides.sort();
    sides.dedup();
    let runs: usize = sides
        .iter()
        .map(|side| cases.iter().filter(|c| side.runs(c)).count())
        .sum::<usize>()
        * opts.reps;
    let bar = ProgressBar::new(runs as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut records = Vec::new();
    for &side in &sides {
        if !cases.iter().any(|c| side.runs(c)) {
            continue;
        }
        let ours = if side.is_ours() {
            match start_ours(&net, opts, side) {
                Ok(pair) => Some(pair),
                Err(e) => {
                    say(
                        &bar,
                        format!(
                            "stacks: {} NOT measured: cannot start our stack: {e:#}",
                            side.name()
                        ),
                    );
                    continue;
                }
            }
        } else {
            None
        };
        // Put back when this side is done (dropped), also on errors.
        let busy_poll = if side == Side::LinuxBusy {
            match KernelBusyPoll::enable(&net) {
                Ok(b) => Some(b),
                Err(e) => {
                    say(
                        &bar,
                        format!(
                            "stacks: linux-busy NOT measured: cannot set up busy polling: {e:#}"
                        ),
                    );
                    continue;
                }
            }
        } else {
            None
        };
        for case in cases.iter().filter(|c| side.runs(c)) {
            let name = side.label(case);
            if case.offload {
                set_offload(&net, true)?;
            }
            let mut samples = Samples::default();
            // Kernel busy polling's evidence: (busy-polled, received) TCP
            // segments over the repetitions, both namespaces.
            let mut polled = (0u64, 0u64);
            // The 1-minute load average before each repetition: how much
            // else competed for the two pinned CPUs.
            let mut loads = Vec::with_capacity(opts.reps);
            for rep in 0..opts.reps {
                let load = load_average();
                loads.extend(load);
                bar.set_message(format!(
                    "{} c={} {name} #{}",
                    case.workload(),
                    case.concurrency,
                    rep + 1
                ));
                let before = busy_poll.as_ref().map(|_| busy_counters(&net));
                let s = match side {
                    Side::Linux | Side::LinuxBusy => {
                        let spin = side == Side::LinuxBusy && opts.linux_busy_app_spin;
                        run_linux(&net, case, opts, spin)
                    }
                    _ => match &ours {
                        Some((server, client)) => run_ours(server, client, &net, case, opts),
                        None => Err(anyhow::anyhow!("our stack is not running")),
                    },
                };
                let mut extra = load.map(|l| format!("  load {l:.1}")).unwrap_or_default();
                if let Some(Some(b)) = before {
                    if let Some(a) = busy_counters(&net) {
                        let d = (a.0.saturating_sub(b.0), a.1.saturating_sub(b.1));
                        polled = (polled.0 + d.0, polled.1 + d.1);
                        extra += &format!("  busy-polled {}/{} segments", d.0, d.1);
                    }
                }
                match s {
                    Ok(s) => {
                        say(&bar, format!(
                            "{:>13} c={:<4} {:<16} {:>12.1} {:<6} p50 {:>8.1} us  p99 {:>8.1} us  max {:>8.0} us  errors {}{extra}",
                            case.workload(),
                            case.concurrency,
                            name,
                            if matches!(case.kind, Kind::Perf(Workload::Bulk)) { s.gbit_s } else { s.rate },
                            case.unit(),
                            s.p50_us,
                            s.p99_us,
                            s.max_us,
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
                let mut note = match side {
                    Side::Linux if case.offload => {
                        Some("default veth offloads (TSO/GSO, checksum)".to_string())
                    }
                    Side::LinuxBusy => Some(busy_note(polled, opts.linux_busy_app_spin)),
                    _ => None,
                };
                if let Some(l) = load_note(&loads) {
                    note = Some(match note {
                        Some(n) => format!("{n}; {l}"),
                        None => l,
                    });
                }
                if let Some(note) = note {
                    for r in &mut recs {
                        r.note = Some(match r.note.take() {
                            Some(old) => format!("{note}; {old}"),
                            None => note.clone(),
                        });
                    }
                }
                records.extend(recs);
            }
        }
        drop(busy_poll);
        drop(ours);
    }
    bar.finish_and_clear();
    if opts.memory_conns > 0 && sides.iter().any(|s| s.is_ours()) {
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
                        OURS_THREADED,
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

/// The note of a `linux-busy` record: how busy polling was set up and how
/// much of the traffic the kernel busy-polled, `(busy-polled, received)`
/// TCP segments over its repetitions.
fn busy_note((polled, received): (u64, u64), app_spin: bool) -> String {
    let how = format!(
        "net.core.busy_poll = busy_read = {BUSY_POLL_US} us, GRO on{}",
        if app_spin {
            ", app spins on epoll_wait(0)"
        } else {
            ""
        }
    );
    if polled == 0 {
        format!("{how}; kernel busy polling did NOT take effect (BusyPollRxPackets 0)")
    } else {
        format!(
            "{how}; {:.0}% of received TCP segments busy-polled",
            100.0 * polled as f64 / received.max(1) as f64
        )
    }
}

/// The 1-minute load average (`/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `load 0.4-0.9`: the range of the load averages read before the
/// repetitions (none when none could be read).
fn load_note(loads: &[f64]) -> Option<String> {
    let lo = loads.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = loads.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = (format!("{lo:.1}"), format!("{hi:.1}"));
    match loads.len() {
        0 => None,
        _ if lo == hi => Some(format!("load {lo}")),
        _ => Some(format!("load {lo}-{hi}")),
    }
}

/// The sysctls of kernel busy polling.
const BUSY_SYSCTLS: [&str; 2] = [
    "/proc/sys/net/core/busy_poll",
    "/proc/sys/net/core/busy_read",
];

/// Kernel busy polling switched on for the `linux-busy` runs: the sysctls
/// at [`BUSY_POLL_US`] and GRO on at both ends of the pair (veth has a NAPI
/// context to poll only with GRO on). Dropping it puts both back as they
/// were.
struct KernelBusyPoll<'a> {
    net: &'a VethPair,
    /// (path, value before).
    sysctls: Vec<(&'static str, String)>,
    /// GRO of (our end, the peer end) before, `None` until changed.
    gro: Option<(bool, bool)>,
}

impl<'a> KernelBusyPoll<'a> {
    fn enable(net: &'a VethPair) -> anyhow::Result<Self> {
        let mut guard = KernelBusyPoll {
            net,
            sysctls: Vec::new(),
            gro: None,
        };
        for path in BUSY_SYSCTLS {
            let old = std::fs::read_to_string(path)?.trim().to_string();
            std::fs::write(path, BUSY_POLL_US.to_string())?;
            guard.sysctls.push((path, old));
        }
        let ours = gro_on(&net.ours, &net.our_if)?;
        let peer = gro_on(&net.peer, &net.peer_if)?;
        guard.gro = Some((ours, peer));
        set_gro(&net.ours, &net.our_if, true)?;
        set_gro(&net.peer, &net.peer_if, true)?;
        Ok(guard)
    }
}

impl Drop for KernelBusyPoll<'_> {
    fn drop(&mut self) {
        for (path, old) in &self.sysctls {
            if let Err(e) = std::fs::write(path, old) {
                eprintln!("stacks: could not put {path} back to {old}: {e}");
            }
        }
        if let Some((ours, peer)) = self.gro {
            let net = self.net;
            for (ns, dev, on) in [
                (&net.ours, &net.our_if, ours),
                (&net.peer, &net.peer_if, peer),
            ] {
                if let Err(e) = set_gro(ns, dev, on) {
                    eprintln!("stacks: could not put GRO of {dev} back: {e}");
                }
            }
        }
    }
}

/// Whether GRO is on on `dev` (`ethtool -k`).
fn gro_on(ns: &Netns, dev: &str) -> std::io::Result<bool> {
    let text = ns.exec("ethtool", &["-k", dev])?;
    Ok(text
        .lines()
        .any(|l| l.trim_start().starts_with("generic-receive-offload: on")))
}

fn set_gro(ns: &Netns, dev: &str, on: bool) -> std::io::Result<()> {
    ns.exec(
        "ethtool",
        &["-K", dev, "gro", if on { "on" } else { "off" }],
    )
    .map(drop)
}

/// (busy-polled, received) TCP segments so far, both namespaces together:
/// `TcpExt: BusyPollRxPackets` of `/proc/net/netstat` and `Tcp: InSegs` of
/// `/proc/net/snmp` (per network namespace).
fn busy_counters(net: &VethPair) -> Option<(u64, u64)> {
    let mut sum = (0, 0);
    for ns in [&net.ours, &net.peer] {
        let netstat = ns.exec("cat", &["/proc/net/netstat"]).ok()?;
        let snmp = ns.exec("cat", &["/proc/net/snmp"]).ok()?;
        sum.0 += proc_net_field(&netstat, "TcpExt:", "BusyPollRxPackets")?;
        sum.1 += proc_net_field(&snmp, "Tcp:", "InSegs")?;
    }
    Some(sum)
}

/// A counter of a `/proc/net/{snmp,netstat}` table: the line of names
/// starting with `table`, then the line of values.
fn proc_net_field(text: &str, table: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(table));
    let names = lines.next()?;
    let values = lines.next()?;
    let i = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(i)?.parse().ok()
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
    fn sides_have_distinct_names_and_their_cases() {
        let all = cases();
        let mut labels = std::collections::HashSet::new();
        for side in Side::ALL {
            assert_eq!(Side::parse(side.name()), Some(side));
            for c in all.iter().filter(|c| side.runs(c)) {
                assert!(labels.insert((side.label(c), c.workload(), c.concurrency, c.offload)));
            }
        }
        assert_eq!(Side::parse("mtcp-rs-rtc-busy"), Some(Side::RtcBusy));
        assert_eq!(Side::parse("ours"), None);
        // Every side of ours runs every case but Linux's offload one.
        let ours: Vec<&Case> = all.iter().filter(|c| Side::Rtc.runs(c)).collect();
        assert_eq!(ours.len(), all.len() - 1);
        assert!(ours.iter().any(|c| c.kind == Kind::Perf(Workload::Bulk)));
        // Linux busy polling: the two ping-pong cases.
        let busy: Vec<usize> = all
            .iter()
            .filter(|c| Side::LinuxBusy.runs(c))
            .map(|c| c.concurrency)
            .collect();
        assert_eq!(busy, vec![1, 64]);
        let bulk_offload = all.iter().find(|c| c.offload).unwrap();
        assert_eq!(Side::Linux.label(bulk_offload), LINUX_OFFLOAD);
        // Sorting puts Linux's sides before ours.
        let mut sides = [Side::RtcBusy, Side::LinuxBusy, Side::Threaded, Side::Linux];
        sides.sort();
        assert!(!sides[0].is_ours() && !sides[1].is_ours() && sides[2].is_ours());
    }

    #[test]
    fn proc_net_counters_are_read_by_name() {
        let netstat = "TcpExt: SyncookiesSent BusyPollRxPackets TCPAutoCorking\n\
                       TcpExt: 0 1234 7\n\
                       IpExt: InNoRoutes\n\
                       IpExt: 3\n";
        assert_eq!(
            proc_net_field(netstat, "TcpExt:", "BusyPollRxPackets"),
            Some(1234)
        );
        assert_eq!(proc_net_field(netstat, "IpExt:", "InNoRoutes"), Some(3));
        assert_eq!(proc_net_field(netstat, "TcpExt:", "Missing"), None);
        assert_eq!(proc_net_field("TcpExt: A\n", "TcpExt:", "A"), None);
        assert_eq!(load_note(&[]), None);
        assert_eq!(load_note(&[0.42]).as_deref(), Some("load 0.4"));
        assert_eq!(load_note(&[2.98, 3.04]).as_deref(), Some("load 3.0"));
        assert_eq!(load_note(&[0.9, 0.4, 0.6]).as_deref(), Some("load 0.4-0.9"));
        assert!(load_average().is_some_and(|l| l >= 0.0));
        assert!(busy_note((0, 100), false).contains("did NOT take effect"));
        assert!(busy_note((97, 100), true).contains("97% of received"));
        assert!(busy_note((97, 100), true).contains("epoll_wait(0)"));
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
