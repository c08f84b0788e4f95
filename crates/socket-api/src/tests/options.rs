//! Socket options that act on the engine.

use core::time::Duration;

use super::*;
use crate::options::{
    IPPROTO_TCP, MIN_BUF, SOL_SOCKET, SO_ERROR, SO_KEEPALIVE, SO_LINGER, SO_RCVBUF, SO_RCVTIMEO,
    SO_REUSEADDR, SO_SNDBUF, SO_SNDTIMEO, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_MAXSEG,
    TCP_NODELAY, TCP_USER_TIMEOUT,
};
use crate::{SockOpt, SockOptName};

/// Write 10 bytes twice with the first segment lost (unacknowledged): Nagle
/// holds the second small segment back, TCP_NODELAY sends it at once.
fn small_segments_sent(nodelay: bool) -> usize {
    let mut net = Net::new();
    let (c, _l, _s) = net.connected();
    net.a.setsockopt(c, SockOpt::NoDelay(nodelay)).unwrap();
    net.cut_a_to_b = true;
    net.log.clear();
    net.a.write(c, &[1; 10]).unwrap();
    net.pump();
    net.a.write(c, &[2; 10]).unwrap();
    net.pump();
    net.data_segments(Side::A).len()
}

#[test]
fn tcp_nodelay_changes_segmenting() {
    assert_eq!(small_segments_sent(false), 1, "Nagle waits for the ACK");
    assert_eq!(small_segments_sent(true), 2, "TCP_NODELAY sends at once");
}

#[test]
fn so_sndbuf_caps_queued_bytes() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    assert_eq!(
        net.a.getsockopt(c, SockOptName::SndBuf),
        Ok(SockOpt::SndBuf(64 * 1024))
    );
    net.a.setsockopt(c, SockOpt::SndBuf(10_000)).unwrap();
    assert_eq!(
        net.a.getsockopt(c, SockOptName::SndBuf),
        Ok(SockOpt::SndBuf(10_000))
    );
    net.cut_a_to_b = true;
    let big = vec![7u8; 50_000];
    assert_eq!(net.a.write(c, &big), Ok(10_000));
    assert_eq!(net.a.write(c, &big), Err(Errno::EAGAIN));
    // Once acknowledged, room comes back.
    net.cut_a_to_b = false;
    net.advance(Duration::from_secs(2));
    assert_eq!(read_all(&mut net.b, s).len(), 10_000);
    assert!(net.ready(Side::A, c).writable);
    assert_eq!(net.a.write(c, &big), Ok(10_000));
    // Clamped to [MIN_BUF, engine buffer].
    net.a.setsockopt(c, SockOpt::SndBuf(1)).unwrap();
    assert_eq!(
        net.a.getsockopt(c, SockOptName::SndBuf),
        Ok(SockOpt::SndBuf(MIN_BUF))
    );
    net.a.setsockopt(c, SockOpt::SndBuf(usize::MAX)).unwrap();
    assert_eq!(
        net.a.getsockopt(c, SockOptName::SndBuf),
        Ok(SockOpt::SndBuf(64 * 1024))
    );
}

#[test]
fn so_sndbuf_before_connect_applies_to_the_connection() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    let c = net.a.tcp_socket().unwrap();
    net.a.setsockopt(c, SockOpt::SndBuf(4096)).unwrap();
    let _ = net.a.connect(c, SERVER);
    net.pump();
    net.cut_a_to_b = true;
    assert_eq!(net.a.write(c, &[0; 10_000]), Ok(4096));
}

#[test]
fn so_rcvbuf_is_clamped_and_reported() {
    let mut net = Net::new();
    let fd = net.a.tcp_socket().unwrap();
    net.a.setsockopt(fd, SockOpt::RcvBuf(8192)).unwrap();
    assert_eq!(
        net.a.getsockopt(fd, SockOptName::RcvBuf),
        Ok(SockOpt::RcvBuf(8192))
    );
    net.a.setsockopt_raw(fd, SOL_SOCKET, SO_RCVBUF, 0).unwrap();
    assert_eq!(
        net.a.getsockopt_raw(fd, SOL_SOCKET, SO_RCVBUF),
        Ok(MIN_BUF as i32)
    );
    assert_eq!(
        net.a.setsockopt_raw(fd, SOL_SOCKET, SO_RCVBUF, -1),
        Err(Errno::EINVAL)
    );
}

#[test]
fn so_rcvbuf_changes_the_advertised_window() {
    let mut cfg = engine_config();
    cfg.window_scaling = false;
    let mut net = Net::with_configs(cfg.clone(), cfg, 8);
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    let c = net.a.tcp_socket().unwrap();
    net.a.setsockopt(c, SockOpt::RcvBuf(8192)).unwrap();
    let _ = net.a.connect(c, SERVER);
    net.pump();
    let syn = net.log.iter().find(|g| g.from == Side::A).unwrap();
    assert!(syn.window <= 8192, "SYN advertises {}", syn.window);
}

/// A listener's SO_RCVBUF is inherited: its SYN-ACK and the accepted
/// connection's windows stay within it, and a full buffer closes the window.
#[test]
fn listener_so_rcvbuf_is_inherited_by_accepted_connections() {
    let mut cfg = engine_config();
    cfg.window_scaling = false;
    let mut net = Net::with_configs(cfg.clone(), cfg, 8);
    let l = net.b.tcp_socket().unwrap();
    net.b.setsockopt(l, SockOpt::RcvBuf(4096)).unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    let c = net.a.tcp_socket().unwrap();
    let _ = net.a.connect(c, SERVER);
    net.pump();
    let synack = net.log.iter().find(|g| g.from == Side::B).unwrap();
    assert!(
        synack.window <= 4096,
        "SYN-ACK advertises {}",
        synack.window
    );
    let (s, _) = net.b.accept(l).unwrap();
    assert_eq!(
        net.b.getsockopt(s, SockOptName::RcvBuf),
        Ok(SockOpt::RcvBuf(4096))
    );
    // The peer can queue no more than the receive buffer while nothing is read.
    let _ = net.a.write(c, &[5; 20_000]);
    net.advance(Duration::from_secs(1));
    assert_eq!(net.b.ioctl(s, crate::options::FIONREAD), Ok(4096));
    assert!(net
        .log
        .iter()
        .filter(|g| g.from == Side::B)
        .all(|g| g.window <= 4096));
}

/// TCP_MAXSEG before connect lowers the MSS option of our SYN and the size of
/// the segments we send; TCP_MAXSEG on a listener does the same for the SYN-ACK.
#[test]
fn tcp_maxseg_lowers_the_mss_we_offer_and_use() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.setsockopt(l, SockOpt::MaxSeg(700)).unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    let c = net.a.tcp_socket().unwrap();
    net.a.setsockopt(c, SockOpt::MaxSeg(500)).unwrap();
    let _ = net.a.connect(c, SERVER);
    net.pump();
    let syn = net.log.iter().find(|g| g.from == Side::A).unwrap();
    assert_eq!(syn.mss, Some(500));
    let synack = net.log.iter().find(|g| g.from == Side::B).unwrap();
    assert_eq!(synack.mss, Some(700));
    let (s, _) = net.b.accept(l).unwrap();
    net.log.clear();
    net.a.write(c, &[1; 5000]).unwrap();
    net.b.write(s, &[2; 5000]).unwrap();
    net.advance(Duration::from_secs(1));
    let a_sizes: Vec<usize> = net
        .data_segments(Side::A)
        .iter()
        .map(|g| g.payload)
        .collect();
    let b_sizes: Vec<usize> = net
        .data_segments(Side::B)
        .iter()
        .map(|g| g.payload)
        .collect();
    assert_eq!(a_sizes.iter().sum::<usize>(), 5000);
    assert_eq!(b_sizes.iter().sum::<usize>(), 5000);
    // Each side sends at most the smaller of its own MSS and the peer's.
    assert!(a_sizes.iter().all(|&n| n <= 500), "A sent {a_sizes:?}");
    assert!(b_sizes.iter().all(|&n| n <= 500), "B sent {b_sizes:?}");
    // Like Linux's, the reported MSS is the payload per segment: the MSS less
    // the timestamp option (12 bytes) when timestamps are on.
    let Ok(SockOpt::MaxSeg(m)) = net.a.getsockopt(c, SockOptName::MaxSeg) else {
        panic!("TCP_MAXSEG");
    };
    assert!((488..=500).contains(&m), "TCP_MAXSEG reads {m}");
    // Without the option the engine's MSS is used.
    let mut plain = Net::new();
    let _ = plain.connected();
    let syn = plain.log.iter().find(|g| g.from == Side::A).unwrap();
    assert_eq!(syn.mss, Some(plain.a.endpoint().config().mss));
}

#[test]
fn so_keepalive_probes_an_idle_connection_and_drops_a_dead_one() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a
        .setsockopt(c, SockOpt::KeepIdle(Duration::from_secs(10)))
        .unwrap();
    net.a
        .setsockopt(c, SockOpt::KeepIntvl(Duration::from_secs(2)))
        .unwrap();
    net.a.setsockopt(c, SockOpt::KeepCnt(3)).unwrap();
    // Not enabled: an idle connection stays silent.
    let mut quiet = Net::new();
    let _ = quiet.connected();
    quiet.log.clear();
    quiet.advance(Duration::from_secs(30));
    assert!(quiet.log.is_empty(), "no keep-alive without SO_KEEPALIVE");
    net.log.clear();
    net.a.setsockopt(c, SockOpt::KeepAlive(true)).unwrap();
    net.advance(Duration::from_secs(9));
    assert!(
        net.log.iter().all(|g| g.from != Side::A),
        "idle time not over"
    );
    net.advance(Duration::from_secs(2));
    let probes = net.log.iter().filter(|g| g.from == Side::A).count();
    assert!(probes >= 1, "a probe after 10 s idle");
    assert!(
        net.log.iter().any(|g| g.from == Side::B),
        "the peer answers"
    );
    assert_eq!(net.a.read(c, &mut [0; 4]), Err(Errno::EAGAIN), "alive");
    // The peer vanishes: 3 unanswered probes end the connection.
    net.cut_b_to_a = true;
    net.advance(Duration::from_secs(30));
    assert!(net.ready(Side::A, c).err);
    assert_eq!(net.a.read(c, &mut [0; 4]), Err(Errno::ETIMEDOUT));
    let _ = s;
}

#[test]
fn tcp_user_timeout_ends_a_connection_with_unacknowledged_data() {
    let run = |timeout: Option<Duration>| {
        let mut net = Net::new();
        let (c, _l, _s) = net.connected();
        net.a.setsockopt(c, SockOpt::UserTimeout(timeout)).unwrap();
        net.cut_a_to_b = true;
        net.a.write(c, b"lost").unwrap();
        net.advance(Duration::from_secs(2));
        let early = net.ready(Side::A, c).err;
        net.advance(Duration::from_secs(3));
        (early, net.a.write(c, b"x"))
    };
    let (early, late) = run(Some(Duration::from_millis(3000)));
    assert!(!early);
    assert_eq!(late, Err(Errno::ETIMEDOUT));
    let (early, late) = run(None);
    assert!(!early);
    assert_eq!(late, Ok(1), "without it, R2 is far away");
}

#[test]
fn tcp_maxseg_reports_the_negotiated_mss() {
    let mut net = Net::new();
    let fd = net.a.tcp_socket().unwrap();
    assert_eq!(
        net.a.getsockopt(fd, SockOptName::MaxSeg),
        Ok(SockOpt::MaxSeg(1460))
    );
    net.a.setsockopt(fd, SockOpt::MaxSeg(1000)).unwrap();
    assert_eq!(
        net.a.getsockopt(fd, SockOptName::MaxSeg),
        Ok(SockOpt::MaxSeg(1000))
    );
    assert_eq!(
        net.a.setsockopt(fd, SockOpt::MaxSeg(10)),
        Err(Errno::EINVAL)
    );
    let (c, _l, _s) = net.connected();
    let Ok(SockOpt::MaxSeg(m)) = net.a.getsockopt(c, SockOptName::MaxSeg) else {
        panic!()
    };
    let smss = net
        .a
        .endpoint()
        .info(net.a.handle(c).unwrap())
        .unwrap()
        .smss;
    assert_eq!(usize::from(m), smss);
}

#[test]
fn raw_options_round_trip() {
    let mut net = Net::new();
    let fd = net.a.tcp_socket().unwrap();
    let cases = [
        (SOL_SOCKET, SO_REUSEADDR, 1),
        (SOL_SOCKET, SO_KEEPALIVE, 1),
        (SOL_SOCKET, SO_LINGER, 5),
        (SOL_SOCKET, SO_SNDBUF, 16384),
        (IPPROTO_TCP, TCP_NODELAY, 1),
        (IPPROTO_TCP, TCP_MAXSEG, 1200),
        (IPPROTO_TCP, TCP_KEEPIDLE, 60),
        (IPPROTO_TCP, TCP_KEEPINTVL, 10),
        (IPPROTO_TCP, TCP_KEEPCNT, 5),
        (IPPROTO_TCP, TCP_USER_TIMEOUT, 2500),
        (SOL_SOCKET, SO_RCVTIMEO, 1500),
        (SOL_SOCKET, SO_SNDTIMEO, 250),
    ];
    for (level, name, value) in cases {
        net.a.setsockopt_raw(fd, level, name, value).unwrap();
        assert_eq!(
            net.a.getsockopt_raw(fd, level, name),
            Ok(value),
            "({level}, {name})"
        );
    }
    net.a.setsockopt_raw(fd, SOL_SOCKET, SO_LINGER, -1).unwrap();
    assert_eq!(net.a.getsockopt_raw(fd, SOL_SOCKET, SO_LINGER), Ok(-1));
    net.a
        .setsockopt_raw(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 0)
        .unwrap();
    assert_eq!(
        net.a.getsockopt(fd, SockOptName::UserTimeout),
        Ok(SockOpt::UserTimeout(None))
    );
}

#[test]
fn receive_and_send_timeouts_are_kept_and_cleared() {
    let mut net = Net::new();
    let fd = net.a.tcp_socket().unwrap();
    for (set, name) in [
        (
            SockOpt::RcvTimeo as fn(Option<Duration>) -> SockOpt,
            SockOptName::RcvTimeo,
        ),
        (SockOpt::SndTimeo, SockOptName::SndTimeo),
    ] {
        assert_eq!(net.a.getsockopt(fd, name), Ok(set(None)));
        let t = Some(Duration::from_millis(750));
        net.a.setsockopt(fd, set(t)).unwrap();
        assert_eq!(net.a.getsockopt(fd, name), Ok(set(t)));
        // Zero means no timeout, as setting a zero timeval does on Linux.
        net.a.setsockopt(fd, set(Some(Duration::ZERO))).unwrap();
        assert_eq!(net.a.getsockopt(fd, name), Ok(set(None)));
    }
    assert_eq!(
        net.a.setsockopt_raw(fd, SOL_SOCKET, SO_RCVTIMEO, -5),
        Err(Errno::EINVAL)
    );
}

#[test]
fn option_errors() {
    let mut net = Net::new();
    let fd = net.a.tcp_socket().unwrap();
    let bad = [
        (SOL_SOCKET, SO_ERROR, 0, Errno::ENOPROTOOPT),
        (SOL_SOCKET, 999, 0, Errno::ENOPROTOOPT),
        (77, TCP_NODELAY, 0, Errno::ENOPROTOOPT),
        (IPPROTO_TCP, TCP_KEEPIDLE, 0, Errno::EINVAL),
        (IPPROTO_TCP, TCP_KEEPIDLE, 40000, Errno::EINVAL),
        (IPPROTO_TCP, TCP_KEEPINTVL, -3, Errno::EINVAL),
        (IPPROTO_TCP, TCP_KEEPCNT, 0, Errno::EINVAL),
        (IPPROTO_TCP, TCP_KEEPCNT, 128, Errno::EINVAL),
        (IPPROTO_TCP, TCP_MAXSEG, 87, Errno::EINVAL),
        (IPPROTO_TCP, TCP_MAXSEG, 70000, Errno::EINVAL),
        (IPPROTO_TCP, TCP_USER_TIMEOUT, -1, Errno::EINVAL),
        (SOL_SOCKET, SO_SNDBUF, -5, Errno::EINVAL),
    ];
    for (level, name, value, want) in bad {
        assert_eq!(
            net.a.setsockopt_raw(fd, level, name, value),
            Err(want),
            "({level}, {name}, {value})"
        );
    }
    assert_eq!(net.a.getsockopt_raw(fd, 1, 12345), Err(Errno::ENOPROTOOPT));
    assert_eq!(
        net.a
            .setsockopt(fd, SockOpt::KeepIdle(Duration::from_millis(1500))),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        net.a.setsockopt(fd, SockOpt::Error(None)),
        Err(Errno::ENOPROTOOPT)
    );
}
