//! Memory per idle established connection, excluding data buffers (issue 2
//! section 6 target: at most 1 KiB), measured as the growth of the resident set
//! over 100,000 passively opened, accepted, idle connections.

use std::net::{Ipv4Addr, SocketAddrV4};

use tcp_core::{Config, Endpoint, Instant};
use wire::tcp::TcpOptions;
use wire::{SeqNumber, TcpFlags, TcpRepr};

/// Resident set size of this process in bytes (Linux), allocator overhead
/// included. No `unsafe` (a counting global allocator would need it).
fn rss() -> Option<isize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: isize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn idle_established_connection_costs_at_most_1_kib_without_buffers() {
    const N: usize = 100_000;
    let local_ip = Ipv4Addr::new(10, 0, 0, 1);
    let cfg = Config {
        // Exclude data buffers from the measurement.
        send_buf: 0,
        recv_buf: 0,
        max_connections: N + 10,
        max_syn_backlog: N + 10,
        ..Config::default()
    };
    let mut ep = Endpoint::with_seed(cfg, 1);
    let l = ep.listen(SocketAddrV4::new(local_ip, 80), N + 10).unwrap();
    let now = Instant::from_secs(1);
    let mut buf = [0u8; 256];
    let Some(before) = rss() else {
        eprintln!("no /proc/self/status: skipped");
        return;
    };
    let mut handles = Vec::with_capacity(N);
    for i in 0..N {
        let remote_ip = Ipv4Addr::new(10, 1, (i >> 16) as u8, (i >> 8) as u8);
        let port = 1024 + (i & 0xff) as u16;
        let syn = TcpRepr {
            src_port: port,
            dst_port: 80,
            seq: SeqNumber(1000),
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: 65535,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((1, 0)),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        ep.handle_segment(now, remote_ip, local_ip, &syn);
        let t = ep.poll_transmit(now, &mut buf).unwrap();
        let synack = TcpRepr::parse_bytes(&buf[..t.len], t.src, t.dst, true).unwrap();
        let tsval = synack.options.timestamps.unwrap().0;
        let ack = TcpRepr {
            seq: SeqNumber(1001),
            ack: synack.seq + 1,
            flags: TcpFlags::ACK,
            options: TcpOptions {
                timestamps: Some((2, tsval)),
                ..TcpOptions::default()
            },
            ..syn
        };
        ep.handle_segment(now, remote_ip, local_ip, &ack);
        while ep.poll_transmit(now, &mut buf).is_some() {}
        handles.push(ep.accept(l).unwrap());
    }
    while ep.poll_event().is_some() {}
    let after = rss().unwrap_or(before);
    let handles_bytes = (handles.capacity() * std::mem::size_of_val(&handles[0])) as isize;
    let per_conn = (after - before - handles_bytes) as f64 / N as f64;
    eprintln!("memory per idle established connection (no data buffers): {per_conn:.0} bytes");
    assert_eq!(ep.connection_count(), N);
    assert!(per_conn <= 1024.0, "{per_conn} bytes per connection");
}
