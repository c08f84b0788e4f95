//! packet-io benchmark: 64-byte frames over a veth pair between two network
//! namespaces (created here and deleted at the end).
//!
//! Phases, each measured over the same window on the same pair:
//! 1. RX: an AF_XDP generator in the peer namespace blasts frames; our
//!    AF_XDP queue receives and recycles them.
//! 2. TX: our AF_XDP queue blasts frames; the peer's AF_XDP queue counts them.
//! 3. AF_XDP echo: the generator blasts and counts replies; our queue swaps
//!    addresses and ports in place and sends every frame back.
//! 4. Kernel echo: the same generator; a kernel UDP socket on our side
//!    echoes with recvmmsg/sendmmsg (batch as above).
//!
//! "64-byte frames" are 60 bytes on the veth (Ethernet minimum without FCS):
//! Ethernet 14 + IPv4 20 + UDP 8 + 18 bytes of payload.
//!
//! Every phase runs `--rounds` times (default 3); the summary line gives
//! medians, and the figures go to `target/bench/latest.json` (bench
//! `packet_io`): AF_XDP receive and transmit (stack `mtcp-rs`, no Linux
//! counterpart), and the UDP echo of our AF_XDP queue (`mtcp-rs`) against
//! the kernel's (`linux`), in replies per second and per CPU-second.
//!
//! usage: packet_io [--quick] [--secs S] [--batch N] [--rounds R]   (needs root; skips otherwise)
//!        (`--quick`: 0.5 s per phase after a 0.25 s warm-up instead of 3 s after 0.5 s)

use mtcp_benches::record::{self, Record, LINUX, OURS};
use packet_io::testnet::{self, VethOptions, VethPair};
use packet_io::{
    open_queues, FrameBatch, Interest, PacketQueue, SteerConfig, WaitConfig, Waiter, XdpConfig,
    XdpQueue,
};
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use wire::checksum;

const FRAME_LEN: usize = 60;
const ECHO_PORT: u16 = 9;
const GEN_PORT: u16 = 40_000;

/// A 60-byte Ethernet/IPv4/UDP frame with valid checksums.
fn template(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[20] = 0x40;
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&src.0.octets());
    f[30..34].copy_from_slice(&dst.0.octets());
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&src.1.to_be_bytes());
    f[36..38].copy_from_slice(&dst.1.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    for (i, b) in f[42..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let pseudo = checksum::pseudo_header_ipv4(src.0, dst.0, 17, 26);
    let mut c = checksum::finish(&[pseudo, checksum::sum(&f[34..60])]);
    if c == 0 {
        c = 0xffff;
    }
    f[40..42].copy_from_slice(&c.to_be_bytes());
    f
}

/// Swaps Ethernet addresses, IPv4 addresses and UDP ports in place (the
/// checksums stay valid: the sums commute). False when not IPv4/UDP.
fn swap_in_place(f: &mut [u8]) -> bool {
    if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[23] != 17 || f[14] != 0x45 {
        return false;
    }
    for i in 0..6 {
        f.swap(i, 6 + i);
    }
    for i in 0..4 {
        f.swap(26 + i, 30 + i);
    }
    f.swap(34, 36);
    f.swap(35, 37);
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Receive and recycle, counting.
    Sink,
    /// Transmit as fast as possible; count what is received too.
    Blast,
    /// Send every received UDP frame back.
    Echo,
}

#[derive(Default)]
struct Stats {
    rx: AtomicU64,
    tx: AtomicU64,
}

/// Drives one AF_XDP queue in `role` until `stop`.
fn drive(
    q: &mut XdpQueue,
    role: Role,
    frame: [u8; FRAME_LEN],
    batch: usize,
    stats: &Stats,
    stop: &AtomicBool,
) {
    let mut rx = FrameBatch::with_capacity(batch);
    let mut tx = FrameBatch::with_capacity(batch);
    let mut waiter = Waiter::new(WaitConfig::default()).expect("eventfd");
    let mut iterations = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let n = q.recv(&mut rx);
        if n > 0 {
            stats.rx.fetch_add(n as u64, Ordering::Relaxed);
        }
        match role {
            Role::Sink | Role::Blast => {
                let _ = q.release(&mut rx);
            }
            Role::Echo => {
                for f in rx.iter_mut() {
                    if let Ok(bytes) = q.frame_mut(f) {
                        swap_in_place(bytes);
                    }
                }
                if let Ok(sent) = q.send(&mut rx) {
                    stats.tx.fetch_add(sent as u64, Ordering::Relaxed);
                }
                // What the TX ring did not take is dropped, like a NIC would.
                let _ = q.release(&mut rx);
            }
        }
        if role == Role::Blast {
            let got = q.alloc(&mut tx, batch);
            let start = tx.len() - got;
            for f in tx.as_mut_slice()[start..].iter_mut() {
                let _ = q.set_len(f, FRAME_LEN);
                if let Ok(bytes) = q.frame_mut(f) {
                    bytes.copy_from_slice(&frame);
                }
            }
            if let Ok(sent) = q.send(&mut tx) {
                stats.tx.fetch_add(sent as u64, Ordering::Relaxed);
            }
            let _ = q.release(&mut tx);
        } else if n == 0 {
            q.maintain();
            iterations += 1;
            // Idle: the select-style wait (spins first, so it costs nothing under load).
            if iterations % 64 == 0 {
                let _ = waiter.wait(
                    std::slice::from_mut(q),
                    &[Interest::RX],
                    Some(Duration::from_millis(10)),
                );
            }
        }
    }
}

struct Window {
    rx: f64,
    tx: f64,
    /// CPU time of this process over the window, in cores (softirq work done
    /// on behalf of the veth is charged here too): shows how much of the
    /// machine the phase actually got.
    cores: f64,
}

/// Lets the phase warm up for `warm`, measures the rates of `measured` over
/// the window, then stops the phase.
fn measure(warm: Duration, secs: f64, measured: &Stats, stop: &AtomicBool) -> Window {
    std::thread::sleep(warm);
    let cpu0 = testnet::process_cpu_time();
    let (rx0, tx0, t0) = (
        measured.rx.load(Ordering::Relaxed),
        measured.tx.load(Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs_f64(secs));
    let dt = t0.elapsed().as_secs_f64();
    let w = Window {
        rx: (measured.rx.load(Ordering::Relaxed) - rx0) as f64 / dt,
        tx: (measured.tx.load(Ordering::Relaxed) - tx0) as f64 / dt,
        cores: (testnet::process_cpu_time() - cpu0).as_secs_f64() / dt,
    };
    stop.store(true, Ordering::Relaxed);
    w
}

/// Spawns a thread in namespace `ns` that opens the XDP queue of `ifname`
/// (steering UDP to `addr`) and drives it in `role`.
fn spawn_xdp(
    net: &VethPair,
    ours: bool,
    role: Role,
    frame: [u8; FRAME_LEN],
    batch: usize,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    let (ns, ifname, addr, cpu) = if ours {
        (&net.ours, net.our_if.clone(), net.our_ip, 1)
    } else {
        (&net.peer, net.peer_if.clone(), net.peer_ip, 0)
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = ns.spawn(move || {
        let _ = testnet::pin_thread_to_cpu(cpu % testnet::available_cpus());
        let config = XdpConfig {
            batch,
            ..XdpConfig::default()
        };
        let steer = SteerConfig {
            addr,
            ports: None,
            udp: true,
            icmp: false,
        };
        match open_queues(&ifname, Some(&[0]), &config, &steer) {
            Ok((_steering, mut queues)) => {
                let _ = ready_tx.send(Ok(()));
                drive(&mut queues[0], role, frame, batch, &stats, &stop);
                if std::env::var_os("PIO_BENCH_VERBOSE").is_some() {
                    eprintln!(
                        "  {role:?} {}: {:?}",
                        if ours { "ours" } else { "peer" },
                        queues[0].counters()
                    );
                }
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
            }
        }
    });
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("opening the AF_XDP queue: {e}"),
        Err(e) => panic!("AF_XDP queue not ready: {e}"),
    }
    handle
}

fn main() {
    let quick = record::quick_requested();
    let mut secs = if quick { 0.5 } else { 3.0 };
    let warm = Duration::from_millis(if quick { 250 } else { 500 });
    let mut batch = 256;
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).unwrap_or(secs),
            "--batch" => batch = args.next().and_then(|v| v.parse().ok()).unwrap_or(batch),
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
        println!("packet_io: SKIPPED (needs root to create network namespaces and AF_XDP sockets)");
        return;
    }
    let net = VethPair::new(&VethOptions {
        kernel_ip_on_ours: true,
        ..VethOptions::default()
    })
    .expect("creating the veth pair");
    let to_us = template(
        net.peer_mac,
        net.our_mac,
        (net.peer_ip, GEN_PORT),
        (net.our_ip, ECHO_PORT),
    );
    let to_peer = template(
        net.our_mac,
        net.peer_mac,
        (net.our_ip, ECHO_PORT),
        (net.peer_ip, GEN_PORT),
    );
    println!(
        "packet_io: 64-byte frames ({FRAME_LEN} B on the wire) over veth {} <-> {}, batch {batch}, {secs} s per phase, {} CPUs",
        net.our_if,
        net.peer_if,
        testnet::available_cpus()
    );

    let run_xdp_phase = |ours_role: Role, peer_role: Role| -> (Window, Window) {
        let stop = Arc::new(AtomicBool::new(false));
        let (ours, peer) = (Arc::new(Stats::default()), Arc::new(Stats::default()));
        let h1 = spawn_xdp(
            &net,
            true,
            ours_role,
            to_peer,
            batch,
            Arc::clone(&ours),
            Arc::clone(&stop),
        );
        let h2 = spawn_xdp(
            &net,
            false,
            peer_role,
            to_us,
            batch,
            Arc::clone(&peer),
            Arc::clone(&stop),
        );
        // Measure both sides over the same window.
        std::thread::sleep(warm);
        let snap = |s: &Stats| (s.rx.load(Ordering::Relaxed), s.tx.load(Ordering::Relaxed));
        let cpu0 = testnet::process_cpu_time();
        let (o0, p0, t0) = (snap(&ours), snap(&peer), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(secs));
        let dt = t0.elapsed().as_secs_f64();
        let (o1, p1) = (snap(&ours), snap(&peer));
        let cores = (testnet::process_cpu_time() - cpu0).as_secs_f64() / dt;
        stop.store(true, Ordering::Relaxed);
        h1.join().expect("our thread").expect("our namespace");
        h2.join().expect("peer thread").expect("peer namespace");
        let rate = |a: (u64, u64), b: (u64, u64)| Window {
            rx: (b.0 - a.0) as f64 / dt,
            tx: (b.1 - a.1) as f64 / dt,
            cores,
        };
        (rate(o0, o1), rate(p0, p1))
    };

    let mut rounds_out: Vec<[f64; 8]> = Vec::new();
    for round in 1..=rounds {
        println!("round {round}/{rounds}");
        let (rx_ours, rx_peer) = run_xdp_phase(Role::Sink, Role::Blast);
        println!(
            "RX   AF_XDP receive:  {:>10.0} frames/s   (generator sent {:.0}/s; cpu {:.2} cores)",
            rx_ours.rx, rx_peer.tx, rx_ours.cores
        );
        let (tx_ours, tx_peer) = run_xdp_phase(Role::Blast, Role::Sink);
        println!(
            "TX   AF_XDP transmit: {:>10.0} frames/s   (peer received {:.0}/s; cpu {:.2} cores)",
            tx_ours.tx, tx_peer.rx, tx_ours.cores
        );
        let (echo_ours, echo_gen) = run_xdp_phase(Role::Echo, Role::Blast);
        println!(
            "ECHO AF_XDP echo:     {:>10.0} replies/s  (generator sent {:.0}/s; echo side rx {:.0}/s tx {:.0}/s; cpu {:.2} cores)",
            echo_gen.rx, echo_gen.tx, echo_ours.rx, echo_ours.tx, echo_ours.cores
        );

        // Kernel UDP echo with recvmmsg/sendmmsg, same generator, same pair.
        let stop = Arc::new(AtomicBool::new(false));
        let gen = Arc::new(Stats::default());
        let kstats = Arc::new(Stats::default());
        let (ready_tx, ready_rx) = mpsc::channel();
        let kernel = {
            let (stop, kstats, our_ip) = (Arc::clone(&stop), Arc::clone(&kstats), net.our_ip);
            net.ours.spawn(move || {
                let _ = testnet::pin_thread_to_cpu(1 % testnet::available_cpus());
                let sock =
                    UdpSocket::bind((our_ip, ECHO_PORT)).expect("binding the kernel echo socket");
                sock.set_read_timeout(Some(Duration::from_millis(50)))
                    .expect("timeout");
                let mut echo = testnet::UdpBatch::new(sock, batch, 2048);
                let _ = ready_tx.send(());
                while !stop.load(Ordering::Relaxed) {
                    let n = echo.recv().unwrap_or(0);
                    if n > 0 {
                        kstats.rx.fetch_add(n as u64, Ordering::Relaxed);
                        let sent = echo.echo(n).unwrap_or(0);
                        kstats.tx.fetch_add(sent as u64, Ordering::Relaxed);
                    }
                }
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("kernel echo ready");
        let generator = spawn_xdp(
            &net,
            false,
            Role::Blast,
            to_us,
            batch,
            Arc::clone(&gen),
            Arc::clone(&stop),
        );
        let k = measure(warm, secs, &gen, &stop);
        generator
            .join()
            .expect("generator")
            .expect("peer namespace");
        kernel.join().expect("kernel echo").expect("our namespace");
        println!(
            "ECHO kernel UDP echo: {:>10.0} replies/s  (generator sent {:.0}/s; recvmmsg/sendmmsg batch {batch}; cpu {:.2} cores)",
            k.rx, k.tx, k.cores
        );
        let ratio = echo_gen.rx / k.rx.max(1.0);
        let per_core = |rate: f64, cores: f64| rate / cores.max(0.01);
        let efficiency = per_core(echo_gen.rx, echo_ours.cores) / per_core(k.rx, k.cores).max(1.0);
        println!(
            "     echo ratio AF_XDP/kernel this round: {ratio:.2}x; per CPU-second {:.0} vs {:.0} replies ({efficiency:.2}x)",
            per_core(echo_gen.rx, echo_ours.cores),
            per_core(k.rx, k.cores)
        );
        rounds_out.push([
            rx_ours.rx,
            tx_ours.tx,
            echo_gen.rx,
            k.rx,
            ratio,
            efficiency,
            per_core(echo_gen.rx, echo_ours.cores),
            per_core(k.rx, k.cores),
        ]);
    }
    let med =
        |i: usize| mtcp_benches::median(&mut rounds_out.iter().map(|r| r[i]).collect::<Vec<_>>());
    println!(
        "RESULT (median of {rounds} rounds, batch {batch}) rx {:.0} frames/s | tx {:.0} frames/s | AF_XDP echo {:.0} replies/s | kernel UDP echo {:.0} replies/s | echo ratio {:.2}x (target >= 2x), per CPU-second {:.2}x",
        med(0),
        med(1),
        med(2),
        med(3),
        med(4),
        med(5)
    );
    drop(net);
    let col = |i: usize| rounds_out.iter().map(|r| r[i]).collect::<Vec<f64>>();
    let rec = |workload: &str, metric: &str, stack: &str, unit: &str, i: usize, note: String| {
        Record::from_samples("packet_io", workload, metric, 1, stack, unit, &col(i)).with_note(note)
    };
    let xdp = format!("packet-io AF_XDP queue, no TCP, batch {batch}");
    record::report(
        "packet_io",
        &[
            rec(
                "xdp-rx-64B",
                "rate",
                OURS,
                "frames/s",
                0,
                format!("{xdp}: receive and recycle"),
            ),
            rec(
                "xdp-tx-64B",
                "rate",
                OURS,
                "frames/s",
                1,
                format!("{xdp}: transmit"),
            ),
            rec(
                "udp-echo-64B",
                "rate",
                OURS,
                "replies/s",
                2,
                format!("{xdp}: swap and send back"),
            ),
            rec(
                "udp-echo-64B",
                "rate",
                LINUX,
                "replies/s",
                3,
                format!("kernel UDP socket, recvmmsg/sendmmsg batch {batch}"),
            ),
            rec(
                "udp-echo-64B",
                "per-cpu-s",
                OURS,
                "replies/CPU-s",
                6,
                "replies per CPU-second of the echo side (softirq included)".into(),
            ),
            rec(
                "udp-echo-64B",
                "per-cpu-s",
                LINUX,
                "replies/CPU-s",
                7,
                "replies per CPU-second of the echo side (softirq included)".into(),
            ),
        ],
    );
}
