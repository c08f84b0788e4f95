//! runtime end-to-end benchmark: short connections (64-byte request and
//! response, one connection per exchange) and 64-byte ping-pong on one
//! connection, over a veth pair between two network namespaces, with our
//! stack at both ends (AF_XDP on each veth end) and with Linux at both ends
//! (kernel sockets in the two namespaces). The server runs on CPU 0 and the
//! client on CPU 1 in every case, for the same duration; figures are the
//! medians of `--rounds` repetitions, reported as ratios to Linux.
//!
//! Our stack is measured in both thread modes:
//! * `mtcp-rs-rtc` (run-to-completion, `spin_us` 50): one thread per side
//!   drives its stack;
//! * `mtcp-rs-threaded` (mTCP's model): per side a stack thread and the
//!   application thread, both pinned to the side's CPU, calls crossing the
//!   mailbox.
//!
//! ```text
//!   netns A (server, CPU 0)                 netns B (client, CPU 1)
//!   10.200.x.1  <======== veth ========>    10.200.x.2
//! ```
//!
//! usage: runtime_e2e [--quick] [--secs S] [--rounds R]   (needs root; skips otherwise)

use mtcp_benches::record::{append_records, Record, LINUX, OURS_RTC, OURS_THREADED};
use packet_io::testnet::{self, mac_string, Netns, VethOptions, VethPair};
use runtime::{Context, Runtime, RuntimeConfig, TcpListener, TcpStream, ThreadMode};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

const PORT: u16 = 7000;
const MSG: usize = 64;
/// First byte of the request that stops a short-connection server.
const STOP: u8 = 0xff;
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

/// Short-connection client: connect, 64 bytes out, 64 back, wait for the
/// server's FIN, close; as many as fit in `secs`. Then stops the server.
fn short_client<S: Read + Write>(
    mut connect: impl FnMut() -> io::Result<S>,
    secs: f64,
) -> io::Result<f64> {
    let req = [1u8; MSG];
    let mut resp = [0u8; MSG];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while Instant::now() < end {
        let mut s = connect()?;
        s.write_all(&req)?;
        s.read_exact(&mut resp)?;
        let mut rest = [0u8; 1];
        while s.read(&mut rest)? != 0 {}
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let mut s = connect()?;
    s.write_all(&[STOP; MSG])?;
    Ok(rate)
}

/// Short-connection server: one exchange per connection, server closes.
fn short_server<S: Read + Write>(mut accept: impl FnMut() -> io::Result<S>) -> io::Result<()> {
    let mut buf = [0u8; MSG];
    loop {
        let mut s = accept()?;
        s.read_exact(&mut buf)?;
        if buf[0] == STOP {
            return Ok(());
        }
        s.write_all(&buf)?;
    }
}

/// Ping-pong client: 64 bytes out, 64 back, on one connection, for `secs`.
fn pingpong_client<S: Read + Write>(mut s: S, secs: f64) -> io::Result<f64> {
    let mut buf = [7u8; MSG];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while Instant::now() < end {
        for _ in 0..64 {
            s.write_all(&buf)?;
            s.read_exact(&mut buf)?;
        }
        n += 64;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Ping-pong server: echoes 64-byte messages until EOF.
fn pingpong_server<S: Read + Write>(mut s: S) -> io::Result<()> {
    let mut buf = [0u8; MSG];
    loop {
        match s.read_exact(&mut buf) {
            Ok(()) => s.write_all(&buf)?,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Short,
    Pingpong,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Short => "short-64B",
            Workload::Pingpong => "pingpong-64B",
        }
    }
    fn unit(self) -> &'static str {
        match self {
            Workload::Short => "conn/s",
            Workload::Pingpong => "msg/s",
        }
    }
}

fn pin(cpu: usize) {
    if let Err(e) = testnet::pin_thread_to_cpu(cpu) {
        eprintln!("runtime_e2e: pinning to CPU {cpu}: {e}");
    }
}

/// Linux at both ends.
fn run_linux(net: &VethPair, w: Workload, secs: f64) -> f64 {
    let addr = SocketAddrV4::new(net.our_ip, PORT);
    let (tx, rx) = std::sync::mpsc::channel();
    let server = net.ours.spawn(move || -> io::Result<()> {
        pin(SERVER_CPU);
        let l = std::net::TcpListener::bind(addr)?;
        tx.send(()).ok();
        let accept = || {
            let (s, _) = l.accept()?;
            s.set_nodelay(true)?;
            Ok(s)
        };
        match w {
            Workload::Short => short_server(accept),
            Workload::Pingpong => pingpong_server(l.accept()?.0),
        }
    });
    rx.recv().expect("kernel server up");
    let client = net.peer.spawn(move || -> io::Result<f64> {
        pin(CLIENT_CPU);
        let connect = || {
            let s = std::net::TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            Ok(s)
        };
        match w {
            Workload::Short => short_client(connect, secs),
            Workload::Pingpong => pingpong_client(connect()?, secs),
        }
    });
    let rate = client
        .join()
        .expect("client")
        .expect("netns")
        .expect("client io");
    server
        .join()
        .expect("server")
        .expect("netns")
        .expect("server io");
    rate
}

fn our_config(
    ifname: &str,
    ip: Ipv4Addr,
    mac: [u8; 6],
    cpu: usize,
    mode: ThreadMode,
) -> RuntimeConfig {
    let text = format!(
        "[net]\nbackend = \"af_xdp\"\ninterface = \"{ifname}\"\naddress = \"{ip}\"\nmac = \"{}\"\nxdp_frames = 4096\n\
         [stack]\ncores = [{cpu}]\npin = true\nmode = \"{}\"\nmax_concurrency = 65536\nmsl_ms = 250\nnodelay = true\nspin_us = 50\nseed = 1\n",
        mac_string(mac),
        match mode {
            ThreadMode::Threaded => "threaded",
            ThreadMode::RunToCompletion => "run_to_completion",
        }
    );
    RuntimeConfig::from_toml(&text).expect("bench configuration")
}

/// Starts a runtime inside `ns` and hands its (single) context to `f` on a
/// thread pinned to `cpu`.
fn with_our_stack<T: Send + 'static>(
    ns: &Netns,
    config: RuntimeConfig,
    cpu: usize,
    f: impl FnOnce(&Context) -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let (rt, mut ctxs) = ns
        .spawn(move || Runtime::start(config))
        .join()
        .expect("start thread")
        .expect("netns")
        .expect("runtime start");
    std::thread::spawn(move || {
        pin(cpu);
        let ctx = ctxs.remove(0);
        let out = f(&ctx);
        drop(ctx);
        rt.shutdown();
        out
    })
}

/// Our stack at both ends.
fn run_ours(net: &VethPair, w: Workload, secs: f64, mode: ThreadMode) -> f64 {
    let addr = SocketAddrV4::new(net.our_ip, PORT);
    let (tx, rx) = std::sync::mpsc::channel();
    let server = with_our_stack(
        &net.ours,
        our_config(&net.our_if, net.our_ip, net.our_mac, SERVER_CPU, mode),
        SERVER_CPU,
        move |ctx| -> io::Result<()> {
            let l = TcpListener::bind(ctx, addr)?;
            tx.send(()).ok();
            match w {
                Workload::Short => short_server(|| Ok(l.accept()?.0)),
                Workload::Pingpong => pingpong_server(l.accept()?.0),
            }
        },
    );
    rx.recv().expect("our server up");
    let client = with_our_stack(
        &net.peer,
        our_config(&net.peer_if, net.peer_ip, net.peer_mac, CLIENT_CPU, mode),
        CLIENT_CPU,
        move |ctx| -> io::Result<f64> {
            let connect = || TcpStream::connect(ctx, addr);
            match w {
                Workload::Short => short_client(connect, secs),
                Workload::Pingpong => pingpong_client(connect()?, secs),
            }
        },
    );
    let rate = client.join().expect("client").expect("client io");
    server.join().expect("server").expect("server io");
    rate
}

fn main() {
    // `--quick`: 0.5 s runs (still `--rounds` of them).
    let mut secs = if mtcp_benches::record::quick_requested() {
        0.5
    } else {
        2.0
    };
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).unwrap_or(secs),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(rounds)
                    .max(1)
            }
            _ => {}
        }
    }
    if !testnet::is_root() {
        println!(
            "runtime_e2e: SKIPPED (needs root to create network namespaces and AF_XDP sockets)"
        );
        return;
    }
    if testnet::available_cpus() < 2 {
        println!("runtime_e2e: SKIPPED (needs two CPUs: server on 0, client on 1)");
        return;
    }
    let net = VethPair::new(&VethOptions {
        kernel_ip_on_ours: true,
        ..VethOptions::default()
    })
    .expect("creating the veth pair");
    println!(
        "runtime_e2e: {secs} s per run, {rounds} rounds, server CPU {SERVER_CPU}, client CPU {CLIENT_CPU}"
    );
    let stacks: [(&str, Option<ThreadMode>); 3] = [
        (LINUX, None),
        (OURS_RTC, Some(ThreadMode::RunToCompletion)),
        (OURS_THREADED, Some(ThreadMode::Threaded)),
    ];
    let mut records = Vec::new();
    for w in [Workload::Short, Workload::Pingpong] {
        let mut linux_median = None;
        for (name, mode) in stacks {
            let mut samples = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let rate = match mode {
                    None => run_linux(&net, w, secs),
                    Some(m) => run_ours(&net, w, secs, m),
                };
                samples.push(rate);
            }
            let rec =
                Record::from_samples("runtime_e2e", w.name(), "rate", 1, name, w.unit(), &samples)
                    .with_note(
                        "server CPU 0, client CPU 1, one connection at a time, 64-byte messages",
                    );
            let ratio = match linux_median {
                None => {
                    linux_median = Some(rec.median);
                    String::new()
                }
                Some(l) => format!("  ratio to linux {:.2}", rec.median / l),
            };
            println!(
                "  {:<13} {:<17} median {:>10.0} {} (min {:.0}, max {:.0}){ratio}",
                w.name(),
                name,
                rec.median,
                w.unit(),
                rec.min,
                rec.max
            );
            records.push(rec);
        }
    }
    match append_records(&records) {
        Ok(path) => println!("runtime_e2e: recorded in {}", path.display()),
        Err(e) => eprintln!("runtime_e2e: writing the records: {e}"),
    }
}
