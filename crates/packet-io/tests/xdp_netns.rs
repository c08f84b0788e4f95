//! AF_XDP against the real kernel: each test creates its own pair of network
//! namespaces joined by a veth pair (unique names) and deletes it on drop.
//! Skipped, with a message, when not root.

mod common;

use common::*;
use packet_io::testnet::{VethOptions, VethPair};
use packet_io::{
    open_queues, FrameBatch, Interest, PacketQueue, SteerConfig, Steering, WaitConfig, Waiter,
    XdpConfig,
};
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn small_config() -> XdpConfig {
    XdpConfig {
        frames: 1024,
        fill_target: 512,
        ring_size: 512,
        batch: 64,
        ..XdpConfig::default()
    }
}

fn steer_udp(addr: Ipv4Addr, ports: Option<Vec<u16>>) -> SteerConfig {
    SteerConfig {
        addr,
        ports,
        udp: true,
        icmp: false,
    }
}

/// Serves one queue until `stop`: answers ARP for `ip`, hands UDP frames to
/// `on_udp` (which may return a frame to transmit), releases the rest.
fn serve<Q: PacketQueue>(
    queue: &mut Q,
    ip: Ipv4Addr,
    mac: [u8; 6],
    stop: &AtomicBool,
    mut on_udp: impl FnMut(Udp) -> Option<Vec<u8>>,
) {
    let mut waiter = Waiter::new(WaitConfig::default()).unwrap();
    let mut rx = FrameBatch::with_capacity(64);
    let mut tx = FrameBatch::with_capacity(64);
    let mut keep = FrameBatch::with_capacity(64);
    let mut replies = Vec::new();
    while !stop.load(Ordering::Acquire) {
        waiter
            .wait(
                std::slice::from_mut(queue),
                &[Interest::RX],
                Some(Duration::from_millis(20)),
            )
            .unwrap();
        queue.recv(&mut rx);
        while let Some(mut f) = rx.pop() {
            let bytes = queue.frame_mut(&mut f).unwrap();
            if answer_arp(bytes, ip, mac) {
                tx.push(f);
            } else if let Some(u) = parse_udp(bytes) {
                if let Some(reply) = on_udp(u) {
                    replies.push(reply);
                }
                keep.push(f);
            } else {
                keep.push(f);
            }
        }
        queue.release(&mut keep).unwrap();
        if !tx.is_empty() {
            queue.send(&mut tx).unwrap();
            queue.release(&mut tx).unwrap();
        }
        for r in replies.drain(..) {
            assert!(send_bytes(queue, &r), "TX of a reply failed");
        }
        queue.maintain();
    }
}

#[test]
fn answers_arp_and_exchanges_udp_with_the_kernel() {
    if skip_unless_root("answers_arp_and_exchanges_udp_with_the_kernel") {
        return;
    }
    let net = VethPair::new(&VethOptions {
        static_arp: false,
        ..VethOptions::default()
    })
    .unwrap();
    let (our_ip, peer_ip, our_mac, peer_mac) = (net.our_ip, net.peer_ip, net.our_mac, net.peer_mac);
    let our_if = net.our_if.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (got_tx, got_rx) = mpsc::channel::<Udp>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let pcap_path = std::env::temp_dir().join(format!(
        "pio-xdp-{}-{}.pcap",
        std::process::id(),
        net.our_if
    ));
    let server = {
        let stop = Arc::clone(&stop);
        let pcap_path = pcap_path.clone();
        net.ours.spawn(move || {
            let (_steering, mut queues) = open_queues(
                &our_if,
                Some(&[0]),
                &small_config(),
                &steer_udp(our_ip, None),
            )
            .unwrap();
            ready_tx.send(()).unwrap();
            // Tap the AF_XDP queue: every frame in and out goes to a pcap file.
            let file = std::io::BufWriter::new(std::fs::File::create(&pcap_path).unwrap());
            let mut q = packet_io::Tap::new(queues.pop().unwrap(), file).unwrap();
            serve(&mut q, our_ip, our_mac, &stop, |u| {
                got_tx.send(u.clone()).unwrap();
                // Answer every datagram with one of ours.
                Some(udp_frame(
                    our_mac,
                    peer_mac,
                    (our_ip, 9),
                    u.src,
                    b"from-xdp-side",
                ))
            });
            q.flush().unwrap();
            q.counters()
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server ready");
    let client = net.peer.spawn(move || {
        let s = UdpSocket::bind((peer_ip, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // The kernel has no neighbour entry for us: it ARPs first.
        s.send_to(b"hello from the kernel", (our_ip, 9)).unwrap();
        let mut buf = [0u8; 128];
        let (n, from) = s.recv_from(&mut buf).expect("reply from the XDP side");
        (buf[..n].to_vec(), from)
    });
    let (reply, from) = client.join().unwrap().unwrap();
    stop.store(true, Ordering::Release);
    let counters = server.join().unwrap().unwrap();
    // The kernel delivered our frame to its socket: its checksums were valid
    // (veth hands AF_XDP frames to the peer unverified, so the UDP layer checks them).
    assert_eq!(reply, b"from-xdp-side");
    assert_eq!(from, (our_ip, 9).into());
    let got = got_rx.try_recv().expect("the kernel's datagram reached us");
    assert_eq!(got.payload, b"hello from the kernel");
    assert_eq!(got.dst, (our_ip, 9));
    assert_eq!(got.src.0, peer_ip);
    assert!(
        got.ip_checksum_ok,
        "IPv4 header checksum of the kernel's frame"
    );
    assert_eq!(
        got.udp_checksum_ok,
        Some(true),
        "UDP checksum of the kernel's frame"
    );
    let neigh = net
        .peer
        .ip(&["neigh", "show", &our_ip.to_string()])
        .unwrap();
    assert!(
        neigh.contains(&packet_io::testnet::mac_string(our_mac)),
        "kernel learnt our MAC through ARP: {neigh}"
    );
    eprintln!("counters: {counters:?}");
    assert!(
        counters.rx_packets >= 2 && counters.tx_packets >= 2,
        "{counters:?}"
    );
    // tshark reads the tap of the AF_XDP queue and finds every checksum good.
    let out = std::process::Command::new("tshark")
        .args([
            "-r",
            pcap_path.to_str().unwrap(),
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
        ])
        .args([
            "-T",
            "fields",
            "-e",
            "_ws.col.Protocol",
            "-e",
            "arp.opcode",
            "-e",
            "udp.checksum.status",
            "-e",
            "ip.checksum.status",
        ])
        .output();
    match out {
        Err(e) => eprintln!("SKIP tshark check: cannot run tshark ({e})"),
        Ok(out) => {
            assert!(
                out.status.success(),
                "tshark: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
            eprintln!("tap:\n{text}");
            assert!(
                rows.iter().any(|r| r[0] == "ARP" && r[1] == "1"),
                "ARP request captured:\n{text}"
            );
            assert!(
                rows.iter().any(|r| r[0] == "ARP" && r[1] == "2"),
                "our ARP reply captured:\n{text}"
            );
            let udp: Vec<_> = rows.iter().filter(|r| r[0] == "UDP").collect();
            assert_eq!(udp.len(), 2, "datagram in and reply out:\n{text}");
            assert!(
                udp.iter().all(|r| r[2] == "1" && r[3] == "1"),
                "checksums good (status 1):\n{text}"
            );
        }
    }
    std::fs::remove_file(&pcap_path).ok();
}

#[test]
fn interface_mac_reads_the_address_in_the_namespace() {
    if skip_unless_root("interface_mac_reads_the_address_in_the_namespace") {
        return;
    }
    let net = VethPair::new(&VethOptions::default()).unwrap();
    let name = net.our_if.clone();
    let mac = net
        .ours
        .spawn(move || packet_io::interface_mac(&name))
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(mac, net.our_mac);
    // Not in this namespace, and not a valid name.
    assert!(packet_io::interface_mac(&net.our_if).is_err());
    assert!(packet_io::interface_mac("").is_err());
    assert!(packet_io::interface_mac("a-name-far-too-long-for-linux").is_err());
}

#[test]
fn veth_pair_is_removed_after_a_panic() {
    if skip_unless_root("veth_pair_is_removed_after_a_panic") {
        return;
    }
    let names = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let net = VethPair::new(&VethOptions::default()).unwrap();
        names
            .lock()
            .unwrap()
            .extend([net.ours.name().to_owned(), net.peer.name().to_owned()]);
        panic!("test body fails");
    });
    assert!(result.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 2);
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for n in &names {
        assert!(
            !list.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "{n} left behind:\n{list}"
        );
    }
}

#[test]
fn steering_leaves_other_traffic_to_the_kernel() {
    if skip_unless_root("steering_leaves_other_traffic_to_the_kernel") {
        return;
    }
    let net = VethPair::new(&VethOptions {
        kernel_ip_on_ours: true,
        ..VethOptions::default()
    })
    .unwrap();
    let (our_ip, peer_ip) = (net.our_ip, net.peer_ip);
    let (ours_port, kernel_port) = (7000u16, 7001u16);
    let our_if = net.our_if.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let server = {
        let stop = Arc::clone(&stop);
        net.ours.spawn(move || {
            // A kernel socket on the same interface, on the port not steered.
            let kernel = UdpSocket::bind((our_ip, kernel_port)).unwrap();
            kernel
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let (steering, mut queues) = open_queues(
                &our_if,
                None,
                &small_config(),
                &steer_udp(our_ip, Some(vec![ours_port])),
            )
            .unwrap();
            ready_tx.send(()).unwrap();
            let mut xsk_payloads = Vec::new();
            let kernel_thread = std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 64];
                let t0 = Instant::now();
                while got.len() < 5 && t0.elapsed() < Duration::from_secs(5) {
                    if let Ok((n, _)) = kernel.recv_from(&mut buf) {
                        got.push(buf[..n].to_vec());
                    }
                }
                got
            });
            serve(&mut queues[0], our_ip, [2, 0, 0, 0, 0, 0x0a], &stop, |u| {
                xsk_payloads.push((u.dst.1, u.payload));
                None
            });
            let stats = steering.stats().unwrap();
            (xsk_payloads, kernel_thread.join().unwrap(), stats)
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server ready");
    net.peer
        .spawn(move || {
            let s = UdpSocket::bind((peer_ip, 0)).unwrap();
            for i in 0..5u8 {
                s.send_to(&[b'x', i], (our_ip, ours_port)).unwrap();
                s.send_to(&[b'k', i], (our_ip, kernel_port)).unwrap();
            }
        })
        .join()
        .unwrap()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Release);
    let (xsk, kernel, stats) = server.join().unwrap().unwrap();
    assert_eq!(xsk.len(), 5, "steered datagrams at the XSK: {xsk:?}");
    assert!(
        xsk.iter()
            .all(|(port, p)| *port == ours_port && p[0] == b'x'),
        "{xsk:?}"
    );
    assert_eq!(
        kernel.len(),
        5,
        "datagrams at the kernel socket: {kernel:?}"
    );
    assert!(kernel.iter().all(|p| p[0] == b'k'), "{kernel:?}");
    eprintln!("steering stats: {stats:?}");
    assert_eq!(stats.redirected_ip, 5);
    assert!(stats.passed >= 5);
}

/// ICMP frames seen at an XSK: every IPv4 ICMP frame (fragments included)
/// and the echo requests among them.
#[derive(Debug, Default)]
struct IcmpSeen {
    frames: usize,
    echo_requests: usize,
}

/// Serves one queue until `stop`: answers ARP for `ip`, counts IPv4 ICMP
/// frames to it and does not answer them.
fn count_icmp<Q: PacketQueue>(
    queue: &mut Q,
    ip: Ipv4Addr,
    mac: [u8; 6],
    stop: &AtomicBool,
) -> IcmpSeen {
    let mut seen = IcmpSeen::default();
    let mut waiter = Waiter::new(WaitConfig::default()).unwrap();
    let mut rx = FrameBatch::with_capacity(64);
    let mut tx = FrameBatch::with_capacity(64);
    let mut keep = FrameBatch::with_capacity(64);
    while !stop.load(Ordering::Acquire) {
        waiter
            .wait(
                std::slice::from_mut(queue),
                &[Interest::RX],
                Some(Duration::from_millis(20)),
            )
            .unwrap();
        queue.recv(&mut rx);
        while let Some(mut f) = rx.pop() {
            let bytes = queue.frame_mut(&mut f).unwrap();
            if answer_arp(bytes, ip, mac) {
                tx.push(f);
                continue;
            }
            // Ethernet, IPv4 with protocol 1 (ICMP) to `ip`.
            if bytes.len() >= 34
                && bytes[12..14] == [0x08, 0x00]
                && bytes[23] == 1
                && bytes[30..34] == ip.octets()
            {
                seen.frames += 1;
                let ihl = usize::from(bytes[14] & 0x0f) * 4;
                let first_fragment = u16::from_be_bytes([bytes[20], bytes[21]]) & 0x1fff == 0;
                if first_fragment && bytes.get(14 + ihl) == Some(&8) {
                    seen.echo_requests += 1;
                }
            }
            keep.push(f);
        }
        queue.release(&mut keep).unwrap();
        if !tx.is_empty() {
            queue.send(&mut tx).unwrap();
            queue.release(&mut tx).unwrap();
        }
        queue.maintain();
    }
    seen
}

/// `SteerConfig::icmp` decides who sees ICMP to our address: with it on,
/// echo requests (every fragment of them, whatever the port bitmap) reach
/// the XSK and the kernel, which owns the address too, never answers; with
/// it off they go to the kernel, which answers them, and the XSK sees none.
#[test]
fn steering_icmp_flag_decides_who_sees_icmp() {
    if skip_unless_root("steering_icmp_flag_decides_who_sees_icmp") {
        return;
    }
    for icmp in [true, false] {
        let net = VethPair::new(&VethOptions {
            kernel_ip_on_ours: true,
            ..VethOptions::default()
        })
        .unwrap();
        let our_ip = net.our_ip;
        let our_if = net.our_if.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let server = {
            let stop = Arc::clone(&stop);
            net.ours.spawn(move || {
                // Only UDP port 7000 by port: ICMP must not depend on the bitmap.
                let steer = steer_udp(our_ip, Some(vec![7000])).with_icmp(icmp);
                let (steering, mut queues) =
                    open_queues(&our_if, None, &small_config(), &steer).unwrap();
                ready_tx.send(()).unwrap();
                let seen = count_icmp(&mut queues[0], our_ip, [2, 0, 0, 0, 0, 0x0a], &stop);
                (seen, steering.stats().unwrap())
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server ready");
        let ping = |extra: &[&str]| {
            let ours = our_ip.to_string();
            let mut args = vec!["netns", "exec", net.peer.name(), "ping", "-n", "-W", "1"];
            args.extend_from_slice(extra);
            args.push(&ours);
            let out = std::process::Command::new("ip")
                .args(&args)
                .output()
                .expect("ping (iputils-ping) runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // Three small echo requests, then one of 2000 bytes, which the
        // kernel sends as two fragments (veth MTU 1500).
        let small = ping(&["-c", "3", "-i", "0.2"]);
        let large = ping(&["-c", "1", "-s", "2000"]);
        stop.store(true, Ordering::Release);
        let (seen, stats) = server.join().unwrap().unwrap();
        eprintln!("icmp={icmp}: {seen:?} {stats:?}");
        if icmp {
            assert_eq!(seen.echo_requests, 4, "echo requests at the XSK");
            assert_eq!(seen.frames, 5, "ICMP frames (fragments too) at the XSK");
            assert_eq!(stats.redirected_ip, 5);
            assert!(
                small.contains("3 packets transmitted, 0 received"),
                "{small}"
            );
            assert!(
                large.contains("1 packets transmitted, 0 received"),
                "{large}"
            );
        } else {
            assert_eq!(seen.frames, 0, "no ICMP at the XSK: {seen:?}");
            assert_eq!(stats.redirected_ip, 0);
            assert!(
                small.contains("3 packets transmitted, 3 received"),
                "{small}"
            );
            assert!(
                large.contains("1 packets transmitted, 1 received"),
                "{large}"
            );
        }
    }
}

#[test]
fn killed_process_leaves_no_xdp_program() {
    if skip_unless_root("killed_process_leaves_no_xdp_program") {
        return;
    }
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let net = VethPair::new(&VethOptions::default()).unwrap();
    assert!(
        !net.our_link_details().unwrap().contains("prog/xdp"),
        "no program before"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_pio-steer-hold"))
        .args([net.ours.name(), &net.our_if, &net.our_ip.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "READY", "helper output");
    let attached = net.our_link_details().unwrap();
    assert!(
        attached.contains("prog/xdp"),
        "program attached while the helper lives:\n{attached}"
    );
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    let t0 = Instant::now();
    loop {
        let details = net.our_link_details().unwrap();
        if !details.contains("prog/xdp") && !details.contains(" xdp") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "XDP program left after SIGKILL:\n{details}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn wait_sleeps_when_idle_and_wakes_fast() {
    if skip_unless_root("wait_sleeps_when_idle_and_wakes_fast") {
        return;
    }
    let net = VethPair::new(&VethOptions::default()).unwrap();
    let (our_ip, peer_ip) = (net.our_ip, net.peer_ip);
    let our_if = net.our_if.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<Instant>();
    let server = net.ours.spawn(move || {
        let (_steering, mut queues) = open_queues(
            &our_if,
            Some(&[0]),
            &small_config(),
            &steer_udp(our_ip, None),
        )
        .unwrap();
        let mut waiter = Waiter::new(WaitConfig::default()).unwrap();
        ready_tx.send(waiter.waker()).unwrap();
        // 1. Idle for a second: CPU time of this thread.
        let cpu0 = packet_io::testnet::thread_cpu_time();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(1) {
            let r = waiter
                .wait(
                    &mut queues,
                    &[Interest::RX],
                    Some(Duration::from_millis(100)),
                )
                .unwrap();
            assert!(r.is_empty(), "nothing should arrive while idle: {r:?}");
        }
        let idle_cpu = packet_io::testnet::thread_cpu_time() - cpu0;
        let idle_wall = t0.elapsed();
        // 2. Woken by another thread.
        let r = waiter
            .wait(&mut queues, &[Interest::RX], Some(Duration::from_secs(5)))
            .unwrap();
        let woke_at = Instant::now();
        let sent_at = go_rx.recv().unwrap();
        assert!(r.woken(), "waker: {r:?}");
        let waker_latency = woke_at - sent_at;
        // 3. Woken by a frame.
        let r = waiter
            .wait(&mut queues, &[Interest::RX], Some(Duration::from_secs(5)))
            .unwrap();
        let frame_at = Instant::now();
        let sent_at = go_rx.recv().unwrap();
        assert!(r.rx(0), "frame: {r:?}");
        let frame_latency = frame_at - sent_at;
        (
            idle_cpu,
            idle_wall,
            waker_latency,
            frame_latency,
            queues[0].counters(),
        )
    });
    let waker = ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_millis(1300));
    let at = Instant::now();
    waker.wake();
    go_tx.send(at).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let go = go_tx.clone();
    net.peer
        .spawn(move || {
            let s = UdpSocket::bind((peer_ip, 0)).unwrap();
            let at = Instant::now();
            s.send_to(b"wake", (our_ip, 9)).unwrap();
            go.send(at).unwrap();
        })
        .join()
        .unwrap()
        .unwrap();
    let (idle_cpu, idle_wall, waker_latency, frame_latency, counters) =
        server.join().unwrap().unwrap();
    let share = idle_cpu.as_secs_f64() / idle_wall.as_secs_f64();
    eprintln!(
        "idle: {idle_cpu:?} CPU over {idle_wall:?} ({:.2}% of a core); wake by waker {waker_latency:?}, by frame {frame_latency:?}; {counters:?}",
        share * 100.0
    );
    assert!(
        share < 0.05,
        "idle wait burnt {:.1}% of a core",
        share * 100.0
    );
    assert!(
        waker_latency < Duration::from_millis(20),
        "waker latency {waker_latency:?}"
    );
    assert!(
        frame_latency < Duration::from_millis(20),
        "frame latency {frame_latency:?}"
    );
    assert!(counters.sleeps >= 5, "{counters:?}");
}

#[test]
fn both_queues_of_a_two_queue_veth_are_served() {
    if skip_unless_root("both_queues_of_a_two_queue_veth_are_served") {
        return;
    }
    let net = VethPair::new(&VethOptions {
        queues: 2,
        ..VethOptions::default()
    })
    .unwrap();
    let (our_ip, peer_ip) = (net.our_ip, net.peer_ip);
    let our_if = net.our_if.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = {
        let stop = Arc::clone(&stop);
        net.ours.spawn(move || {
            let (steering, queues) =
                open_queues(&our_if, None, &small_config(), &steer_udp(our_ip, None)).unwrap();
            assert_eq!(queues.len(), 2, "one queue per veth queue");
            ready_tx.send(()).unwrap();
            // One thread per queue, as the runtime runs one core per queue.
            let handles: Vec<_> = queues
                .into_iter()
                .map(|mut q| {
                    let stop = Arc::clone(&stop);
                    std::thread::spawn(move || {
                        let mut n = 0usize;
                        serve(&mut q, our_ip, [2, 0, 0, 0, 0, 0x0a], &stop, |_| {
                            n += 1;
                            None
                        });
                        (q.queue_id(), n)
                    })
                })
                .collect();
            let counts: Vec<(u32, usize)> =
                handles.into_iter().map(|h| h.join().unwrap()).collect();
            drop(steering);
            counts
        })
    };
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    net.peer
        .spawn(move || {
            // Many flows: the kernel spreads them over both TX queues, and veth
            // delivers TX queue i of one end to RX queue i of the other.
            for _ in 0..64 {
                let s = UdpSocket::bind((peer_ip, 0)).unwrap();
                for _ in 0..4 {
                    s.send_to(b"q", (our_ip, 9)).unwrap();
                }
            }
        })
        .join()
        .unwrap()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Release);
    let counts = server.join().unwrap().unwrap();
    eprintln!("frames per queue: {counts:?}");
    assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), 256, "{counts:?}");
    assert!(
        counts.iter().all(|c| c.1 > 0),
        "both queues served: {counts:?}"
    );
}

#[test]
fn steering_attach_modes() {
    if skip_unless_root("steering_attach_modes") {
        return;
    }
    let net = VethPair::new(&VethOptions::default()).unwrap();
    let our_if = net.our_if.clone();
    let ip = net.our_ip;
    let modes = net
        .ours
        .spawn(move || {
            let mut out = Vec::new();
            for mode in [
                packet_io::AttachMode::Generic,
                packet_io::AttachMode::NativeOrGeneric,
            ] {
                let s = Steering::attach(&our_if, &SteerConfig::tcp(ip), mode).unwrap();
                out.push(s.mode());
            }
            out
        })
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(
        modes,
        [
            packet_io::AttachMode::Generic,
            packet_io::AttachMode::Native
        ]
    );
    assert!(
        !net.our_link_details().unwrap().contains("prog/xdp"),
        "detached on drop"
    );
}
