//! Two endpoints wired back to back through a tiny lossy, reordering link:
//! a smoke test of the whole engine (the sim helper's netsim tests go much
//! further). Every byte must arrive once, in order, and both sides close.

use super::*;

struct Link {
    /// (deliver_at, to_b, bytes)
    queue: Vec<(Instant, bool, Vec<u8>)>,
    rng: u64,
    loss_pct: u64,
}

impl Link {
    fn rand(&mut self) -> u64 {
        self.rng = self
            .rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.rng >> 33
    }
}

const A_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);

fn pump(now: Instant, ep: &mut Endpoint, to_b: bool, link: &mut Link) {
    let mut buf = [0u8; 1600];
    while let Some(t) = ep.poll_transmit(now, &mut buf) {
        if link.rand() % 100 < link.loss_pct {
            continue;
        }
        let delay = 5_000 + link.rand() % 3_000;
        link.queue.push((
            now + Duration::from_micros(delay),
            to_b,
            buf[..t.len].to_vec(),
        ));
    }
}

fn run(loss_pct: u64, seed: u64, size: usize) -> (Vec<u8>, Vec<u8>, Duration) {
    run_with(Config::default(), loss_pct, seed, size)
}

fn run_with(cfg: Config, loss_pct: u64, seed: u64, size: usize) -> (Vec<u8>, Vec<u8>, Duration) {
    let mut a = Endpoint::with_seed(cfg.clone(), seed);
    let mut b = Endpoint::with_seed(cfg, seed ^ 0xdead);
    let mut link = Link {
        queue: Vec::new(),
        rng: seed,
        loss_pct,
    };
    let mut now = Instant::from_secs(1);
    let start = now;
    let lb = b.listen(SocketAddrV4::new(B_IP, 80), 4).unwrap();
    let ha = a
        .connect(now, SocketAddrV4::new(A_IP, 0), SocketAddrV4::new(B_IP, 80))
        .unwrap();
    let mut hb = None;
    let data_a = pattern(size);
    let data_b: Vec<u8> = pattern(size / 2).into_iter().rev().collect();
    let (mut sent_a, mut sent_b) = (0, 0);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let (mut closed_a, mut closed_b) = (false, false);
    let mut buf = vec![0u8; 70_000];
    for _ in 0..2_000_000 {
        // Application work.
        if sent_a < data_a.len() {
            if let Ok(n) = a.send(now, ha, &data_a[sent_a..]) {
                sent_a += n;
            }
        } else if !closed_a {
            a.shutdown(now, ha).unwrap();
            closed_a = true;
        }
        while let Ok(n) = a.recv(ha, &mut buf) {
            if n == 0 {
                break;
            }
            got_a.extend_from_slice(&buf[..n]);
        }
        if hb.is_none() {
            hb = b.accept(lb).ok();
        }
        if let Some(h) = hb {
            if sent_b < data_b.len() {
                if let Ok(n) = b.send(now, h, &data_b[sent_b..]) {
                    sent_b += n;
                }
            } else if !closed_b {
                b.shutdown(now, h).unwrap();
                closed_b = true;
            }
            while let Ok(n) = b.recv(h, &mut buf) {
                if n == 0 {
                    break;
                }
                got_b.extend_from_slice(&buf[..n]);
            }
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        pump(now, &mut a, true, &mut link);
        pump(now, &mut b, false, &mut link);
        let done = hb.is_some_and(|h| {
            matches!(
                b.state(h),
                Ok(State::Closed) | Ok(State::LastAck) | Ok(State::TimeWait)
            ) && matches!(a.state(ha), Ok(State::Closed) | Ok(State::TimeWait))
        }) && got_a.len() == data_b.len()
            && got_b.len() == data_a.len();
        if done {
            return (got_a, got_b, now - start);
        }
        // Advance to the next event: a delivery or a timer.
        let next_pkt = link.queue.iter().map(|p| p.0).min();
        let next = [next_pkt, a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| {
                panic!(
                    "stuck: a {:?} {:?} b {:?} {:?} got_a {} got_b {} sent_a {} sent_b {}",
                    a.state(ha),
                    a.info(ha),
                    hb.map(|h| b.state(h)),
                    hb.map(|h| b.info(h)),
                    got_a.len(),
                    got_b.len(),
                    sent_a,
                    sent_b
                )
            });
        now = now.max(next);
        let (due, rest): (Vec<_>, Vec<_>) = link.queue.drain(..).partition(|p| p.0 <= now);
        link.queue = rest;
        for (_, to_b, bytes) in due {
            let (ep, src, dst) = if to_b {
                (&mut b, A_IP, B_IP)
            } else {
                (&mut a, B_IP, A_IP)
            };
            let repr = TcpRepr::parse_bytes(&bytes, src, dst, true).unwrap();
            if std::env::var("LOOPBACK_TRACE").is_ok() {
                eprintln!(
                    "{now} {}->{} seq {} ack {} flags {:02x} win {} len {} ts {:?} sack {:?}",
                    src,
                    dst,
                    repr.seq,
                    repr.ack,
                    repr.flags.0,
                    repr.window,
                    repr.payload.len(),
                    repr.options.timestamps,
                    repr.options.sack()
                );
            }
            ep.handle_segment(now, src, dst, &repr);
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    panic!(
        "did not finish: a {:?} b {:?} got_a {} got_b {} sent_a {} sent_b {} info a {:?}",
        a.state(ha),
        hb.map(|h| b.state(h)),
        got_a.len(),
        got_b.len(),
        sent_a,
        sent_b,
        a.info(ha)
    );
}

#[test]
fn loopback_transfer_without_loss() {
    let size = 300_000;
    let (got_a, got_b, took) = run(0, 1, size);
    assert_eq!(got_b, pattern(size));
    assert_eq!(got_a.len(), size / 2);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn loopback_transfer_with_loss_and_reordering() {
    for (loss, seed) in [(1, 2), (5, 3), (10, 4), (20, 5)] {
        let size = 100_000;
        let (got_a, got_b, _took) = run(loss, seed, size);
        assert_eq!(got_b, pattern(size), "loss {loss}");
        let expect_a: Vec<u8> = pattern(size / 2).into_iter().rev().collect();
        assert_eq!(got_a, expect_a, "loss {loss}");
    }
}

#[test]
fn loopback_without_options_and_small_buffers() {
    let mut cfg = plain_config();
    cfg.recv_buf = 3000;
    cfg.send_buf = 5000;
    for (loss, seed) in [(0, 11), (5, 12), (15, 13)] {
        let size = 40_000;
        let (got_a, got_b, _) = run_with(cfg.clone(), loss, seed, size);
        assert_eq!(got_b, pattern(size), "loss {loss}");
        assert_eq!(got_a.len(), size / 2, "loss {loss}");
    }
}

#[test]
#[ignore = "slow sweep; run with --ignored"]
fn loopback_sweep_plain() {
    for loss in [0u64, 5, 20] {
        for seed in 0..100 {
            let mut cfg = plain_config();
            cfg.recv_buf = 1000 + (seed as usize * 997) % 20_000;
            cfg.nodelay = seed % 2 == 0;
            let (got_a, got_b, _) = run_with(cfg, loss, seed * 13 + 5, 30_000);
            assert_eq!(got_b, pattern(30_000), "loss {loss} seed {seed}");
            assert_eq!(got_a.len(), 15_000, "loss {loss} seed {seed}");
        }
    }
}

#[test]
#[ignore = "slow sweep; run with --ignored"]
fn loopback_sweep() {
    let only: Option<u64> = std::env::var("LOOPBACK_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    for loss in [0u64, 1, 5, 10, 30] {
        let mut total = Duration::ZERO;
        for seed in 0..200 {
            if only.is_some_and(|o| o != seed) || (only.is_some() && loss != 30) {
                continue;
            }
            let size = 20_000;
            let (got_a, got_b, took) = run(loss, seed * 7 + 1, size);
            assert_eq!(got_b, pattern(size), "loss {loss} seed {seed}");
            assert_eq!(got_a.len(), size / 2, "loss {loss} seed {seed}");
            total += took;
        }
        eprintln!("loss {loss}%: mean completion {:?}", total / 200);
    }
}

/// Move every segment from `from` to `to` (perfect link, no delay).
fn shuttle(now: Instant, from: &mut Endpoint, to: &mut Endpoint, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while let Some(t) = from.poll_transmit(now, buf) {
        let repr = TcpRepr::parse_bytes(&buf[..t.len], t.src, t.dst, false).unwrap();
        to.handle_segment(now, t.src, t.dst, &repr);
        n += 1;
    }
    n
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn short_connection_rate() {
    let mut cfg = Config::default();
    cfg.msl = Duration::from_millis(1);
    let bufsize: usize = std::env::var("SHORT_BUF")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    cfg.send_buf = bufsize;
    cfg.recv_buf = bufsize;
    let mut client = Endpoint::with_seed(cfg.clone(), 1);
    let mut server = Endpoint::with_seed(cfg, 2);
    let l = server.listen(SocketAddrV4::new(B_IP, 80), 1024).unwrap();
    let mut now = Instant::from_secs(1);
    let mut buf = vec![0u8; 2048];
    let mut rbuf = [0u8; 128];
    let req = [7u8; 64];
    let n = 200_000;
    let start = std::time::Instant::now();
    for i in 0..n {
        // Ports in turn, so that no 4-tuple meets its own TIME-WAIT.
        let port = 1024 + (i % 60_000) as u16;
        let c = client
            .connect(
                now,
                SocketAddrV4::new(A_IP, port),
                SocketAddrV4::new(B_IP, 80),
            )
            .unwrap();
        shuttle(now, &mut client, &mut server, &mut buf);
        shuttle(now, &mut server, &mut client, &mut buf);
        client.send(now, c, &req).unwrap();
        shuttle(now, &mut client, &mut server, &mut buf);
        let s = server.accept(l).unwrap();
        assert_eq!(server.recv(s, &mut rbuf), Ok(64));
        server.send(now, s, &req).unwrap();
        server.close(now, s).unwrap();
        shuttle(now, &mut server, &mut client, &mut buf);
        assert_eq!(client.recv(c, &mut rbuf), Ok(64));
        client.close(now, c).unwrap();
        shuttle(now, &mut client, &mut server, &mut buf);
        shuttle(now, &mut server, &mut client, &mut buf);
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
        now += Duration::from_micros(3);
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    now += Duration::from_secs(1);
    client.handle_timeout(now);
    server.handle_timeout(now);
    let took = start.elapsed();
    eprintln!(
        "{n} short connections in {took:?}: {:.0} conn/s (both endpoints, one thread); left: client {} server {}",
        n as f64 / took.as_secs_f64(),
        client.connection_count(),
        server.connection_count()
    );
    assert_eq!(server.connection_count(), 0);
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn bulk_rate() {
    let cfg = Config::default();
    let mut client = Endpoint::with_seed(cfg.clone(), 1);
    let mut server = Endpoint::with_seed(cfg, 2);
    let l = server.listen(SocketAddrV4::new(B_IP, 80), 4).unwrap();
    let mut now = Instant::from_secs(1);
    let mut buf = vec![0u8; 2048];
    let c = client
        .connect(now, SocketAddrV4::new(A_IP, 0), SocketAddrV4::new(B_IP, 80))
        .unwrap();
    shuttle(now, &mut client, &mut server, &mut buf);
    shuttle(now, &mut server, &mut client, &mut buf);
    shuttle(now, &mut client, &mut server, &mut buf);
    let s = server.accept(l).unwrap();
    let chunk = vec![0x5au8; 65536];
    let mut rbuf = vec![0u8; 65536];
    let total: usize = 1 << 30;
    let (mut sent, mut got) = (0usize, 0usize);
    let start = std::time::Instant::now();
    let mut segs = 0;
    while got < total {
        if sent < total {
            sent += client.send(now, c, &chunk).unwrap_or(0);
        }
        segs += shuttle(now, &mut client, &mut server, &mut buf);
        while let Ok(n) = server.recv(s, &mut rbuf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        segs += shuttle(now, &mut server, &mut client, &mut buf);
        now += Duration::from_micros(50);
        client.handle_timeout(now);
        server.handle_timeout(now);
    }
    let took = start.elapsed();
    eprintln!(
        "bulk: {} MiB in {took:?}: {:.2} Gbit/s ({segs} segments, retransmits {})",
        total >> 20,
        total as f64 * 8.0 / took.as_secs_f64() / 1e9,
        client.info(c).unwrap().total_retransmits
    );
}

/// Urgent data end to end (MUST-30..33, MUST-62): what one side sends with
/// `send_urgent` the other reads inline, knowing where the urgent data ends.
#[test]
fn urgent_data_round_trip() {
    let mut cfg = Config::default();
    cfg.nodelay = true;
    let mut client = Endpoint::with_seed(cfg.clone(), 1);
    let mut server = Endpoint::with_seed(cfg, 2);
    let l = server.listen(SocketAddrV4::new(B_IP, 80), 8).unwrap();
    let now = Instant::from_secs(1);
    let mut buf = vec![0u8; 2048];
    let c = client
        .connect(
            now,
            SocketAddrV4::new(A_IP, 1024),
            SocketAddrV4::new(B_IP, 80),
        )
        .unwrap();
    shuttle(now, &mut client, &mut server, &mut buf);
    shuttle(now, &mut server, &mut client, &mut buf);
    shuttle(now, &mut client, &mut server, &mut buf);
    let s = server.accept(l).unwrap();
    client.send(now, c, b"hello ").unwrap();
    client.send_urgent(now, c, b"URGENT").unwrap();
    client.send(now, c, b" tail").unwrap();
    shuttle(now, &mut client, &mut server, &mut buf);
    assert_eq!(server.urgent_remaining(s), Ok(Some(12)));
    let mut rbuf = [0u8; 64];
    assert_eq!(server.recv(s, &mut rbuf[..12]), Ok(12));
    assert_eq!(&rbuf[..12], b"hello URGENT");
    assert_eq!(server.urgent_remaining(s), Ok(None), "at the mark");
    let n = server.recv(s, &mut rbuf).unwrap();
    assert_eq!(&rbuf[..n], b" tail");
}

/// RFC 6191 section 2 under RFC 7323 PAWS: short connections that reuse one
/// client port while the server still holds the previous incarnation in
/// TIME-WAIT (the server closes first) open at once, every time. Timestamp
/// offsets are keyed on the 4-tuple, so each incarnation's SYN carries a
/// newer TSval than the last; with a random offset per connection about
/// half of these SYNs were answered with the old connection's ACK and
/// waited a whole SYN retransmission timeout.
#[test]
fn time_wait_reuse_on_one_port_opens_every_time() {
    let mut client = Endpoint::with_seed(Config::default(), 1);
    let mut server = Endpoint::with_seed(Config::default(), 2);
    let l = server.listen(SocketAddrV4::new(B_IP, 80), 8).unwrap();
    let local = SocketAddrV4::new(A_IP, 40_000);
    let mut now = Instant::from_secs(1);
    let mut buf = vec![0u8; 2048];
    let mut rbuf = [0u8; 64];
    for round in 0..24 {
        let c = client
            .connect(now, local, SocketAddrV4::new(B_IP, 80))
            .unwrap_or_else(|e| panic!("round {round}: connect: {e:?}"));
        assert_eq!(shuttle(now, &mut client, &mut server, &mut buf), 1, "SYN");
        let mut answers = Vec::new();
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            let repr = TcpRepr::parse_bytes(&buf[..t.len], t.src, t.dst, false).unwrap();
            answers.push(repr.flags);
            client.handle_segment(now, t.src, t.dst, &repr);
        }
        assert_eq!(
            answers,
            [SYN_ACK],
            "round {round}: the SYN reopens TIME-WAIT"
        );
        shuttle(now, &mut client, &mut server, &mut buf);
        assert_eq!(client.state(c), Ok(State::Established), "round {round}");
        let s = server.accept(l).unwrap();
        // The server closes first and keeps TIME-WAIT; the client follows.
        server.close(now, s).unwrap();
        shuttle(now, &mut server, &mut client, &mut buf);
        assert_eq!(client.recv(c, &mut rbuf), Ok(0), "round {round}: EOF");
        client.close(now, c).unwrap();
        shuttle(now, &mut client, &mut server, &mut buf);
        shuttle(now, &mut server, &mut client, &mut buf);
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
        now += Duration::from_millis(10);
    }
}
