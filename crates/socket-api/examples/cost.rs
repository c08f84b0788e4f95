//! What the socket layer costs: short connections (64 B request, 64 B response,
//! close) between two socket tables joined by an in-memory link, single thread,
//! virtual clock. Reports connections per second and the share of time spent in
//! `drain_changes` (the readiness reports epoll would get).
//!
//! `cargo run --release -p socket-api --example cost [connections]`

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant as WallClock;

use core::time::Duration;

use socket_api::{Errno, SocketConfig, SocketTable};
use tcp_core::{Config, Endpoint, Instant};
use wire::TcpRepr;

const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn table(ip: Ipv4Addr, seed: u64) -> SocketTable {
    let cfg = Config {
        msl: Duration::from_millis(100),
        recv_buf: 16 * 1024,
        send_buf: 16 * 1024,
        ..Config::default()
    };
    let sc = SocketConfig {
        local_ips: vec![ip],
        port_seed: seed as u32,
        ..SocketConfig::default()
    };
    SocketTable::new(Endpoint::with_seed(cfg, seed), sc)
}

/// Move segments both ways until the link is quiet.
fn pump(a: &mut SocketTable, b: &mut SocketTable, now: Instant, buf: &mut [u8]) -> usize {
    let mut moved = 0;
    loop {
        let mut any = false;
        for dir in 0..2 {
            let (tx, rx) = if dir == 0 {
                (&mut *a, &mut *b)
            } else {
                (&mut *b, &mut *a)
            };
            while let Some(t) = tx.poll_transmit(now, buf) {
                if let Ok(seg) = TcpRepr::parse_bytes(&buf[..t.len], t.src, t.dst, false) {
                    rx.handle_segment(now, t.src, t.dst, &seg);
                }
                moved += 1;
                any = true;
            }
        }
        if !any {
            return moved;
        }
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mut a = table(IP_A, 1);
    let mut b = table(IP_B, 2);
    let server = SocketAddrV4::new(IP_B, 80);
    let l = b.tcp_socket().unwrap();
    b.bind(l, server).unwrap();
    b.listen(l, 128).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut now = Instant::from_secs(1);
    let req = [0x55u8; 64];
    let mut rsp = [0u8; 64];
    let mut segments = 0;
    let mut reports = 0usize;
    let mut drain_time = Duration::ZERO;
    let start = WallClock::now();
    for _ in 0..n {
        let c = a.tcp_socket().unwrap();
        assert_eq!(a.connect(c, server), Err(Errno::EINPROGRESS));
        segments += pump(&mut a, &mut b, now, &mut buf);
        let (s, _) = b.accept(l).unwrap();
        a.write(c, &req).unwrap();
        segments += pump(&mut a, &mut b, now, &mut buf);
        assert_eq!(b.read(s, &mut rsp), Ok(64));
        b.write(s, &rsp).unwrap();
        segments += pump(&mut a, &mut b, now, &mut buf);
        assert_eq!(a.read(c, &mut rsp), Ok(64));
        a.close(c).unwrap();
        segments += pump(&mut a, &mut b, now, &mut buf);
        assert_eq!(b.read(s, &mut rsp), Ok(0));
        b.close(s).unwrap();
        segments += pump(&mut a, &mut b, now, &mut buf);
        let t0 = WallClock::now();
        a.drain_changes(|_, _, _| reports += 1);
        b.drain_changes(|_, _, _| reports += 1);
        drain_time += t0.elapsed();
        // Let TIME-WAIT states expire now and then.
        now += Duration::from_micros(50);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    let wall = start.elapsed();
    report_short(n, wall, segments, reports, drain_time);
    many_connections(&mut a, &mut b, l, server, &mut buf, now);
}

fn report_short(n: usize, wall: Duration, segments: usize, reports: usize, drain_time: Duration) {
    println!(
        "{n} short connections (64 B each way, close): {:.0} conn/s, {:.2} us/conn, \
         {segments} segments, {reports} readiness reports, drain_changes {:.1}% of time",
        n as f64 / wall.as_secs_f64(),
        wall.as_secs_f64() * 1e6 / n as f64,
        100.0 * drain_time.as_secs_f64() / wall.as_secs_f64(),
    );
}

fn many_connections(
    a: &mut SocketTable,
    b: &mut SocketTable,
    l: socket_api::Fd,
    server: SocketAddrV4,
    buf: &mut [u8],
    mut now: Instant,
) {
    const CONNS: usize = 1000;
    const ROUNDS: usize = 200;
    now += Duration::from_secs(10);
    a.handle_timeout(now);
    b.handle_timeout(now);
    let mut pairs = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let c = a.tcp_socket().unwrap();
        let _ = a.connect(c, server);
        pump(a, b, now, buf);
        let (s, _) = b.accept(l).unwrap();
        a.setsockopt(c, socket_api::SockOpt::NoDelay(true)).unwrap();
        pairs.push((c, s));
    }
    a.drain_changes(|_, _, _| {});
    b.drain_changes(|_, _, _| {});
    let msg = [1u8; 64];
    let mut sink = [0u8; 64];
    let (mut reports, mut drain_time) = (0usize, Duration::ZERO);
    for _ in 0..ROUNDS {
        for &(c, _) in &pairs {
            a.write(c, &msg).unwrap();
        }
        pump(a, b, now, buf);
        let t0 = WallClock::now();
        b.drain_changes(|_, level, wake| {
            reports += 1;
            assert!(level.readable && wake.readable);
        });
        drain_time += t0.elapsed();
        for &(_, s) in &pairs {
            assert_eq!(b.read(s, &mut sink), Ok(64));
        }
        b.drain_changes(|_, _, _| {});
        a.drain_changes(|_, _, _| {});
        now += Duration::from_millis(50);
        a.handle_timeout(now);
        b.handle_timeout(now);
        pump(a, b, now, buf);
    }
    println!(
        "{CONNS} open connections x {ROUNDS} rounds of 64 B: {reports} readiness reports, \
         {:.0} ns per report (drain_changes with data arrival)",
        drain_time.as_secs_f64() * 1e9 / reports as f64
    );
}
