//! The calls, over two tables back to back.

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};

use core::time::Duration;

use super::*;
use crate::options::{MSG_PEEK, SHUT_RD, SHUT_RDWR, SHUT_WR};
use crate::{MsgFlags, Shutdown, SockOpt, SockOptName};

#[test]
fn connect_accept_and_data_both_ways() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 8).unwrap();
    assert_eq!(net.b.getsockname(l), Ok(SERVER));
    let c = net.a.tcp_socket().unwrap();
    assert_eq!(net.a.connect(c, SERVER), Err(Errno::EINPROGRESS));
    // In progress: EALREADY, not yet a peer, reads and writes would block.
    assert_eq!(net.a.connect(c, SERVER), Err(Errno::EALREADY));
    assert_eq!(net.a.getpeername(c), Err(Errno::ENOTCONN));
    assert_eq!(net.a.read(c, &mut [0; 8]), Err(Errno::EAGAIN));
    assert_eq!(net.a.write(c, b"x"), Err(Errno::EAGAIN));
    assert_eq!(net.b.accept(l), Err(Errno::EAGAIN));
    net.pump();
    assert_eq!(net.a.connect(c, SERVER), Err(Errno::EISCONN));
    assert_eq!(
        net.a.getsockopt(c, SockOptName::Error),
        Ok(SockOpt::Error(None))
    );
    let (s, peer) = net.b.accept(l).unwrap();
    let local = net.a.getsockname(c).unwrap();
    assert_eq!(peer, local);
    assert_eq!(*local.ip(), IP_A);
    assert!(net.a.config().ephemeral_ports.contains(&local.port()));
    assert_eq!(net.a.getpeername(c), Ok(SERVER));
    assert_eq!(net.b.getpeername(s), Ok(local));
    assert_eq!(net.b.getsockname(s), Ok(SERVER));

    assert_eq!(net.a.write(c, b"hello, server"), Ok(13));
    net.pump();
    assert_eq!(net.b.fionread(s), Ok(13));
    assert_eq!(net.b.ioctl(s, crate::options::FIONREAD), Ok(13));
    let mut buf = [0u8; 64];
    assert_eq!(net.b.read(s, &mut buf), Ok(13));
    assert_eq!(&buf[..13], b"hello, server");
    assert_eq!(net.b.read(s, &mut buf), Err(Errno::EAGAIN));

    assert_eq!(net.b.send(s, b"hello, client", MsgFlags::NONE), Ok(13));
    net.pump();
    assert_eq!(net.a.recv(c, &mut buf, MsgFlags::NONE), Ok(13));
    assert_eq!(&buf[..13], b"hello, client");
}

#[test]
fn large_transfer_respects_buffers_and_arrives_intact() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    while got.len() < data.len() {
        while sent < data.len() {
            match net.a.write(c, &data[sent..]) {
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("{e}"),
            }
        }
        net.advance(Duration::from_millis(50));
        got.extend(read_all(&mut net.b, s));
    }
    assert_eq!(got, data);
}

#[test]
fn peek_leaves_data_and_fionread_counts_it() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a.write(c, b"abcdef").unwrap();
    net.pump();
    let mut buf = [0u8; 4];
    assert_eq!(net.b.recv(s, &mut buf, MsgFlags::PEEK), Ok(4));
    assert_eq!(&buf, b"abcd");
    assert_eq!(net.b.recv(s, &mut buf, MsgFlags::from_raw(MSG_PEEK)), Ok(4));
    assert_eq!(net.b.fionread(s), Ok(6));
    let mut all = [0u8; 16];
    assert_eq!(net.b.read(s, &mut all), Ok(6));
    assert_eq!(&all[..6], b"abcdef");
    assert_eq!(net.b.fionread(s), Ok(0));
    assert_eq!(net.b.recv(s, &mut buf, MsgFlags::PEEK), Err(Errno::EAGAIN));
}

#[test]
fn readv_and_writev_scatter_and_gather() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    let parts = [
        IoSlice::new(b"one-"),
        IoSlice::new(b""),
        IoSlice::new(b"two-three"),
    ];
    assert_eq!(net.a.writev(c, &parts), Ok(13));
    assert_eq!(net.a.writev(c, &[]), Ok(0));
    net.pump();
    let (mut x, mut y, mut z) = ([0u8; 3], [0u8; 0], [0u8; 20]);
    let mut bufs = [
        IoSliceMut::new(&mut x),
        IoSliceMut::new(&mut y),
        IoSliceMut::new(&mut z),
    ];
    assert_eq!(net.b.readv(s, &mut bufs), Ok(13));
    assert_eq!(&x, b"one");
    assert_eq!(&z[..10], b"-two-three");
    let mut w = [0u8; 4];
    assert_eq!(
        net.b.readv(s, &mut [IoSliceMut::new(&mut w)]),
        Err(Errno::EAGAIN)
    );
}

#[test]
fn writev_stops_at_sndbuf() {
    let mut net = Net::new();
    let (c, _l, _s) = net.connected();
    net.a.setsockopt(c, SockOpt::SndBuf(4096)).unwrap();
    net.cut_a_to_b = true;
    let big = vec![1u8; 3000];
    let parts = [IoSlice::new(&big), IoSlice::new(&big)];
    assert_eq!(net.a.writev(c, &parts), Ok(4096));
    assert_eq!(net.a.writev(c, &parts), Err(Errno::EAGAIN));
    assert!(!net.ready(Side::A, c).writable);
}

#[test]
fn shutdown_write_sends_fin_after_data_and_keeps_reading() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a.write(c, b"last words").unwrap();
    net.a.shutdown(c, Shutdown::Write).unwrap();
    assert_eq!(net.a.write(c, b"more"), Err(Errno::EPIPE));
    // Repeating it is harmless.
    net.a.shutdown_raw(c, SHUT_WR).unwrap();
    net.pump();
    assert_eq!(read_all(&mut net.b, s), b"last words");
    assert_eq!(net.b.read(s, &mut [0; 8]), Ok(0), "EOF after the FIN");
    assert_eq!(net.b.read(s, &mut [0; 8]), Ok(0));
    // The other direction still works.
    net.b.write(s, b"reply").unwrap();
    net.pump();
    assert_eq!(read_all(&mut net.a, c), b"reply");
    net.b.shutdown(s, Shutdown::Write).unwrap();
    net.pump();
    assert_eq!(net.a.read(c, &mut [0; 8]), Ok(0));
    assert_eq!(
        net.a.getsockopt(c, SockOptName::Error),
        Ok(SockOpt::Error(None))
    );
}

#[test]
fn shutdown_read_gives_buffered_data_then_eof() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a.write(c, b"buffered").unwrap();
    net.pump();
    net.b.shutdown_raw(s, SHUT_RD).unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(net.b.read(s, &mut buf), Ok(8));
    assert_eq!(net.b.read(s, &mut buf), Ok(0));
    // Writing is unaffected.
    assert_eq!(net.b.write(s, b"ok"), Ok(2));
    net.b.shutdown_raw(s, SHUT_RDWR).unwrap();
    assert_eq!(net.b.shutdown_raw(s, 7), Err(Errno::EINVAL));
}

#[test]
fn close_is_graceful_and_frees_the_lowest_descriptor() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a.write(c, b"bye").unwrap();
    net.a.close(c).unwrap();
    assert_eq!(net.a.read(c, &mut [0; 4]), Err(Errno::EBADF));
    net.pump();
    assert_eq!(read_all(&mut net.b, s), b"bye");
    assert_eq!(net.b.read(s, &mut [0; 4]), Ok(0));
    assert!(
        !net.log.iter().any(Seg::is_rst),
        "graceful close sends no RST"
    );
    let again = net.a.tcp_socket().unwrap();
    assert_eq!(again, c, "lowest free descriptor is reused");
}

#[test]
fn close_with_unread_data_resets() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.b.write(s, b"unread").unwrap();
    net.pump();
    net.a.close(c).unwrap();
    net.pump();
    assert!(net.log.iter().any(|g| g.from == Side::A && g.is_rst()));
    assert_eq!(net.b.write(s, b"x"), Err(Errno::ECONNRESET));
}

#[test]
fn abort_is_seen_as_connection_reset() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a.abort(c).unwrap();
    net.pump();
    assert!(net.log.iter().any(|g| g.from == Side::A && g.is_rst()));
    let r = net.ready(Side::B, s);
    assert_eq!(r, rd(true, true, true, true, true));
    assert_eq!(net.b.read(s, &mut [0; 4]), Err(Errno::ECONNRESET));
    // Reported once; then end of stream and a broken pipe.
    assert_eq!(net.b.read(s, &mut [0; 4]), Ok(0));
    assert_eq!(net.b.write(s, b"x"), Err(Errno::EPIPE));
    assert_eq!(
        net.b.getsockopt(s, SockOptName::Error),
        Ok(SockOpt::Error(None))
    );
    assert_eq!(net.ready(Side::B, s), rd(true, true, true, true, false));
    assert_eq!(net.b.getpeername(s), Err(Errno::ENOTCONN));
    assert_eq!(net.b.shutdown(s, Shutdown::Write), Err(Errno::ENOTCONN));
    net.b.close(s).unwrap();
}

#[test]
fn linger_zero_close_aborts() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a
        .setsockopt(c, SockOpt::Linger(Some(Duration::ZERO)))
        .unwrap();
    net.a.close(c).unwrap();
    net.pump();
    assert!(net.log.iter().any(|g| g.from == Side::A && g.is_rst()));
    assert_eq!(net.b.read(s, &mut [0; 4]), Err(Errno::ECONNRESET));
}

#[test]
fn refused_connect_reports_econnrefused_then_can_retry() {
    let mut net = Net::new();
    let c = net.a.tcp_socket().unwrap();
    assert_eq!(net.a.connect(c, SERVER), Err(Errno::EINPROGRESS));
    net.pump();
    assert_eq!(net.ready(Side::A, c), rd(true, true, true, true, true));
    assert_eq!(
        net.a.getsockopt(c, SockOptName::Error),
        Ok(SockOpt::Error(Some(Errno::ECONNREFUSED)))
    );
    assert_eq!(net.a.getsockopt_raw(c, 1, 4), Ok(0), "SO_ERROR is cleared");
    assert!(!net.ready(Side::A, c).err);
    // A listener appears; the same descriptor connects again.
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 1).unwrap();
    assert_eq!(net.a.connect(c, SERVER), Err(Errno::EINPROGRESS));
    net.pump();
    assert!(net.ready(Side::A, c).writable);
    assert!(net.b.accept(l).is_ok());
}

#[test]
fn connect_after_unread_failure_returns_the_error() {
    let mut net = Net::new();
    let c = net.a.tcp_socket().unwrap();
    let _ = net.a.connect(c, SERVER);
    net.pump();
    assert_eq!(net.a.connect(c, SERVER), Err(Errno::ECONNREFUSED));
    assert_eq!(net.a.connect(c, SERVER), Err(Errno::EINPROGRESS));
}

#[test]
fn unanswered_connect_times_out() {
    let mut cfg = engine_config();
    cfg.syn_retries = 2;
    let mut net = Net::with_configs(cfg, engine_config(), 8);
    net.cut_a_to_b = true;
    let c = net.a.tcp_socket().unwrap();
    let _ = net.a.connect(c, SERVER);
    net.advance(Duration::from_secs(1));
    assert_eq!(net.ready(Side::A, c), Readiness::EMPTY, "still trying");
    net.advance(Duration::from_secs(60));
    assert!(net.ready(Side::A, c).err);
    assert_eq!(net.a.write(c, b"x"), Err(Errno::ETIMEDOUT));
    assert_eq!(
        net.a.getsockopt(c, SockOptName::Error),
        Ok(SockOpt::Error(None))
    );
    let syns = net
        .log
        .iter()
        .filter(|g| g.flags.contains(TcpFlags::SYN))
        .count();
    assert_eq!(syns, 3, "first SYN plus syn_retries");
}

#[test]
fn emfile_at_the_descriptor_limit_and_recovery_after_close() {
    let mut net = Net::with_configs(engine_config(), engine_config(), 4);
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 8).unwrap();
    let fillers: Vec<Fd> = (0..3).map(|_| net.b.tcp_socket().unwrap()).collect();
    assert_eq!(net.b.tcp_socket(), Err(Errno::EMFILE));
    assert_eq!(net.b.reserve_fd(), Err(Errno::EMFILE));
    let c = net.a.tcp_socket().unwrap();
    let _ = net.a.connect(c, SERVER);
    net.pump();
    assert!(net.ready(Side::B, l).readable);
    assert_eq!(net.b.accept(l), Err(Errno::EMFILE));
    assert!(
        net.ready(Side::B, l).readable,
        "the connection stays queued"
    );
    net.b.close(fillers[1]).unwrap();
    let (s, _) = net.b.accept(l).unwrap();
    assert_eq!(s, fillers[1]);
    net.a.write(c, b"ok").unwrap();
    net.pump();
    assert_eq!(read_all(&mut net.b, s), b"ok");
    assert_eq!(net.b.open_count(), 4);
}

#[test]
fn engine_connection_limit_gives_enobufs() {
    let mut cfg = engine_config();
    cfg.max_connections = 1;
    let mut net = Net::with_configs(cfg, engine_config(), 8);
    let c1 = net.a.tcp_socket().unwrap();
    let c2 = net.a.tcp_socket().unwrap();
    assert_eq!(net.a.connect(c1, SERVER), Err(Errno::EINPROGRESS));
    assert_eq!(net.a.connect(c2, SERVER), Err(Errno::ENOBUFS));
    net.pump(); // refused: the connection ends
    net.a.close(c1).unwrap();
    net.pump();
    net.a.drain_changes(|_, _, _| {});
    assert_eq!(net.a.connect(c2, SERVER), Err(Errno::EINPROGRESS));
}

#[test]
fn bind_conflicts_and_so_reuseaddr() {
    let mut net = Net::new();
    let (c, l, s) = net.connected();
    // A listener always conflicts, even with SO_REUSEADDR on both.
    let x = net.b.tcp_socket().unwrap();
    net.b.setsockopt(x, SockOpt::ReuseAddr(true)).unwrap();
    assert_eq!(net.b.bind(x, SERVER), Err(Errno::EADDRINUSE));
    // The server closes first: its side goes through TIME-WAIT.
    net.b.close(s).unwrap();
    net.pump();
    net.a.close(c).unwrap();
    net.pump();
    net.b.close(l).unwrap();
    net.b.drain_changes(|_, _, _| {});
    let y = net.b.tcp_socket().unwrap();
    assert_eq!(
        net.b.bind(y, SERVER),
        Err(Errno::EADDRINUSE),
        "TIME-WAIT holds the port"
    );
    assert_eq!(
        net.b
            .bind(y, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT)),
        Err(Errno::EADDRINUSE)
    );
    net.b.bind(x, SERVER).unwrap();
    net.b.listen(x, 4).unwrap();
    assert_eq!(net.b.getsockname(x), Ok(SERVER));
    net.b.close(x).unwrap();
    // Once TIME-WAIT ends (2 * MSL) the port is free without SO_REUSEADDR.
    net.advance(Duration::from_secs(11));
    net.b.drain_changes(|_, _, _| {});
    net.b.bind(y, SERVER).unwrap();
}

#[test]
fn bind_rules() {
    let mut net = Net::new();
    let a = net.b.tcp_socket().unwrap();
    let b = net.b.tcp_socket().unwrap();
    net.b.bind(a, SERVER).unwrap();
    assert_eq!(net.b.bind(a, SERVER), Err(Errno::EINVAL), "binds once");
    assert_eq!(net.b.bind(b, SERVER), Err(Errno::EADDRINUSE));
    // Both with SO_REUSEADDR and no listener: allowed.
    net.b.setsockopt(a, SockOpt::ReuseAddr(true)).unwrap();
    net.b.setsockopt(b, SockOpt::ReuseAddr(true)).unwrap();
    net.b.bind(b, SERVER).unwrap();
    net.b.listen(a, 1).unwrap();
    assert_eq!(net.b.listen(b, 1), Err(Errno::EADDRINUSE));
    let c = net.b.tcp_socket().unwrap();
    assert_eq!(
        net.b
            .bind(c, SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 1234)),
        Err(Errno::EADDRNOTAVAIL)
    );
    // Port 0: an ephemeral port.
    net.b
        .bind(c, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    let p = net.b.getsockname(c).unwrap().port();
    assert!(net.b.config().ephemeral_ports.contains(&p));
    // listen on an unbound socket binds an ephemeral port.
    let d = net.b.tcp_socket().unwrap();
    net.b.listen(d, 1).unwrap();
    assert_ne!(net.b.getsockname(d).unwrap().port(), 0);
}

#[test]
fn bound_client_connects_from_its_port() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    let c = net.a.tcp_socket().unwrap();
    net.a
        .bind(c, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5555))
        .unwrap();
    let _ = net.a.connect(c, SERVER);
    net.pump();
    let (_, peer) = net.b.accept(l).unwrap();
    assert_eq!(peer, SocketAddrV4::new(IP_A, 5555));
}

#[test]
fn port_policy_chooses_owned_ports() {
    let mut sc = SocketConfig::default();
    sc.local_ips = vec![IP_A];
    sc.ephemeral_ports = 40000..=40100;
    sc.port_policy = Some(Box::new(|local: SocketAddrV4, _r: Option<SocketAddrV4>| {
        local.port() % 4 == 1
    }));
    let mut net = Net::new();
    net.a = SocketTable::new(Endpoint::with_seed(engine_config(), 9), sc);
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 64).unwrap();
    for _ in 0..10 {
        let c = net.a.tcp_socket().unwrap();
        let _ = net.a.connect(c, SERVER);
        let port = net.a.getsockname(c).unwrap().port();
        assert_eq!(port % 4, 1);
        assert!((40000..=40100).contains(&port));
    }
    let b = net.a.tcp_socket().unwrap();
    net.a
        .bind(b, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    assert_eq!(net.a.getsockname(b).unwrap().port() % 4, 1);
    net.pump();
    let mut accepted = 0;
    while net.b.accept(l).is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, 10);
}

#[test]
fn ephemeral_ports_run_out_with_eaddrnotavail() {
    let mut sc = SocketConfig::default();
    sc.local_ips = vec![IP_A];
    sc.ephemeral_ports = 40000..=40001;
    let mut net = Net::new();
    net.a = SocketTable::new(Endpoint::with_seed(engine_config(), 9), sc);
    for _ in 0..2 {
        let c = net.a.tcp_socket().unwrap();
        assert_eq!(net.a.connect(c, SERVER), Err(Errno::EINPROGRESS));
    }
    let c = net.a.tcp_socket().unwrap();
    assert_eq!(net.a.connect(c, SERVER), Err(Errno::EADDRNOTAVAIL));
    // A different remote can reuse the ports (4-tuples differ).
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, 81)),
        Err(Errno::EINPROGRESS)
    );
}

#[test]
fn accepted_socket_inherits_listener_options() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.setsockopt(l, SockOpt::NoDelay(true)).unwrap();
    net.b.setsockopt(l, SockOpt::KeepAlive(true)).unwrap();
    net.b
        .setsockopt(l, SockOpt::KeepIdle(Duration::from_secs(30)))
        .unwrap();
    net.b.set_nonblocking(l, true).unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    let c = net.a.tcp_socket().unwrap();
    let _ = net.a.connect(c, SERVER);
    net.pump();
    let (s, _) = net.b.accept(l).unwrap();
    assert_eq!(
        net.b.getsockopt(s, SockOptName::NoDelay),
        Ok(SockOpt::NoDelay(true))
    );
    assert_eq!(
        net.b.getsockopt(s, SockOptName::KeepIdle),
        Ok(SockOpt::KeepIdle(Duration::from_secs(30)))
    );
    assert_eq!(
        net.b.is_nonblocking(s),
        Ok(false),
        "O_NONBLOCK is not inherited"
    );
}

#[test]
fn closing_a_listener_resets_unaccepted_connections() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    let c1 = net.a.tcp_socket().unwrap();
    let c2 = net.a.tcp_socket().unwrap();
    let _ = net.a.connect(c1, SERVER);
    let _ = net.a.connect(c2, SERVER);
    net.pump();
    net.b.drain_changes(|_, _, _| {});
    net.b.close(l).unwrap();
    net.pump();
    for c in [c1, c2] {
        assert_eq!(net.a.read(c, &mut [0; 4]), Err(Errno::ECONNRESET));
    }
    // The port is free again once the reset connections are released.
    net.b.drain_changes(|_, _, _| {});
    let l2 = net.b.tcp_socket().unwrap();
    net.b.bind(l2, SERVER).unwrap();
}

#[test]
fn nonblocking_mode_via_fcntl_and_socket_flag() {
    use crate::options::{F_GETFL, F_SETFL, O_NONBLOCK, SOCK_NONBLOCK, SOCK_STREAM};
    let mut net = Net::new();
    let fd = net.a.tcp_socket().unwrap();
    assert_eq!(net.a.is_nonblocking(fd), Ok(false));
    assert_eq!(net.a.fcntl(fd, F_GETFL, 0).map(|f| f & O_NONBLOCK), Ok(0));
    net.a.fcntl(fd, F_SETFL, O_NONBLOCK).unwrap();
    assert_eq!(net.a.is_nonblocking(fd), Ok(true));
    assert_eq!(
        net.a.fcntl(fd, F_GETFL, 0).map(|f| f & O_NONBLOCK),
        Ok(O_NONBLOCK)
    );
    net.a.set_nonblocking(fd, false).unwrap();
    assert_eq!(net.a.is_nonblocking(fd), Ok(false));
    let nb = net
        .a
        .socket(crate::options::AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
        .unwrap();
    assert_eq!(net.a.is_nonblocking(nb), Ok(true));
    assert_eq!(net.a.fcntl(fd, 99, 0), Err(Errno::EINVAL));
}

#[test]
fn errno_numbers_and_text() {
    let table: &[(Errno, i32)] = &[
        (Errno::EAGAIN, 11),
        (Errno::EINPROGRESS, 115),
        (Errno::EALREADY, 114),
        (Errno::EISCONN, 106),
        (Errno::ECONNREFUSED, 111),
        (Errno::ECONNRESET, 104),
        (Errno::ETIMEDOUT, 110),
        (Errno::EPIPE, 32),
        (Errno::ENOTCONN, 107),
        (Errno::EBADF, 9),
        (Errno::EINVAL, 22),
        (Errno::EADDRINUSE, 98),
        (Errno::EADDRNOTAVAIL, 99),
        (Errno::EMFILE, 24),
        (Errno::ENOBUFS, 105),
        (Errno::EOPNOTSUPP, 95),
        (Errno::ENOPROTOOPT, 92),
        (Errno::ENOTSOCK, 88),
        (Errno::EEXIST, 17),
        (Errno::ENOENT, 2),
        (Errno::ENOSPC, 28),
    ];
    for &(e, n) in table {
        assert_eq!(e.errno(), n, "{e:?}");
    }
    let mut seen = std::collections::HashSet::new();
    for e in Errno::ALL {
        assert!(seen.insert(e.errno()), "duplicate number for {e:?}");
        let io: std::io::Error = e.into();
        assert_eq!(io.raw_os_error(), Some(e.errno()));
        assert!(e.to_string().contains(e.name()));
    }
    // The epoll errnos' kind() is the one std gives the same OS error number.
    for e in [Errno::EEXIST, Errno::ENOENT] {
        assert_eq!(std::io::Error::from(e).kind(), e.kind(), "{e:?}");
    }
    assert_eq!(
        std::io::Error::from(Errno::ECONNRESET).kind(),
        std::io::ErrorKind::ConnectionReset
    );
    assert_eq!(Errno::EAGAIN.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(
        Errno::ECONNREFUSED.to_string(),
        "Connection refused (ECONNREFUSED)"
    );
}

#[test]
fn server_restart_with_live_connections_needs_so_reuseaddr_on_both() {
    let run = |reuse: bool| {
        let mut net = Net::new();
        let l = net.b.tcp_socket().unwrap();
        net.b.setsockopt(l, SockOpt::ReuseAddr(reuse)).unwrap();
        net.b.bind(l, SERVER).unwrap();
        net.b.listen(l, 4).unwrap();
        let c = net.a.tcp_socket().unwrap();
        let _ = net.a.connect(c, SERVER);
        net.pump();
        let (s, _) = net.b.accept(l).unwrap();
        // The old listener goes; its accepted connection lives on.
        net.b.close(l).unwrap();
        let l2 = net.b.tcp_socket().unwrap();
        net.b.setsockopt(l2, SockOpt::ReuseAddr(reuse)).unwrap();
        let r = net.b.bind(l2, SERVER).and_then(|()| net.b.listen(l2, 4));
        // The live connection still works either way.
        net.a.write(c, b"still here").unwrap();
        net.pump();
        assert_eq!(read_all(&mut net.b, s), b"still here");
        r
    };
    assert_eq!(run(false), Err(Errno::EADDRINUSE));
    assert_eq!(run(true), Ok(()));
}

#[test]
fn mtcp_aliases() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a.setsock_nonblock(c).unwrap();
    assert_eq!(net.a.is_nonblocking(c), Ok(true));
    net.a.write(c, b"abc").unwrap();
    net.pump();
    assert_eq!(net.b.socket_ioctl(s, crate::options::FIONREAD), Ok(3));
}

#[test]
fn bound_port_with_its_four_tuple_in_time_wait_is_eaddrnotavail() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    let from = SocketAddrV4::new(IP_A, 5555);
    let c = net.a.tcp_socket().unwrap();
    net.a.bind(c, from).unwrap();
    let _ = net.a.connect(c, SERVER);
    net.pump();
    let (s, _) = net.b.accept(l).unwrap();
    // A closes first and keeps the 4-tuple in TIME-WAIT.
    net.a.close(c).unwrap();
    net.pump();
    net.b.close(s).unwrap();
    net.pump();
    let c2 = net.a.tcp_socket().unwrap();
    assert_eq!(net.a.bind(c2, from), Err(Errno::EADDRINUSE));
    net.a.setsockopt(c2, SockOpt::ReuseAddr(true)).unwrap();
    net.a.bind(c2, from).unwrap();
    assert_eq!(net.a.connect(c2, SERVER), Err(Errno::EADDRNOTAVAIL));
    // Another server port is a different 4-tuple.
    assert_eq!(
        net.a.connect(c2, SocketAddrV4::new(IP_B, 8080)),
        Err(Errno::EINPROGRESS)
    );
}

#[test]
fn listen_backlog_extremes_are_clamped() {
    let mut net = Net::new();
    for (i, backlog) in [i32::MIN, -1, 0, 1, i32::MAX].into_iter().enumerate() {
        let l = net.b.tcp_socket().unwrap();
        net.b
            .bind(l, SocketAddrV4::new(IP_B, 1000 + i as u16))
            .unwrap();
        assert_eq!(net.b.listen(l, backlog), Ok(()), "backlog {backlog}");
    }
}

/// The backlog is exact: with backlog 2 and nothing accepted, only two of
/// three handshakes complete; the listener is readable exactly while the
/// engine's accept queue holds one; `listen` again raises the backlog.
#[test]
fn listen_backlog_is_exact_and_can_be_raised() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 2).unwrap();
    assert!(!net.ready(Side::B, l).readable);
    let clients: Vec<Fd> = (0..3)
        .map(|_| {
            let c = net.a.tcp_socket().unwrap();
            let _ = net.a.connect(c, SERVER);
            c
        })
        .collect();
    net.pump();
    assert!(net.ready(Side::B, l).readable);
    let h = net.b.handle(l).unwrap();
    assert_eq!(net.b.endpoint().accept_queue_len(h), Ok(2));
    let (s1, _) = net.b.accept(l).unwrap();
    let (s2, _) = net.b.accept(l).unwrap();
    assert_ne!(s1, s2);
    assert_eq!(net.b.accept(l), Err(Errno::EAGAIN));
    assert!(!net.ready(Side::B, l).readable);
    // The third handshake completes on a retry now that there is room.
    net.advance(Duration::from_secs(10));
    assert!(net.ready(Side::B, l).readable);
    assert!(net.b.accept(l).is_ok());
    assert!(clients.iter().all(|&c| net.ready(Side::A, c).writable));
    // listen on a listener changes the backlog.
    net.b.listen(l, 4).unwrap();
    for _ in 0..4 {
        let c = net.a.tcp_socket().unwrap();
        let _ = net.a.connect(c, SERVER);
    }
    net.pump();
    assert_eq!(net.b.endpoint().accept_queue_len(h), Ok(4));
}

#[test]
fn icmp_errors_during_connect_map_to_errnos() {
    use tcp_core::{IcmpError, IcmpErrorKind};
    let cases = [
        (IcmpErrorKind::PortUnreachable, Some(Errno::ECONNREFUSED)),
        (IcmpErrorKind::AdminProhibited, Some(Errno::ECONNREFUSED)),
        // Soft errors do not end the attempt (RFC 9293 MUST-56).
        (IcmpErrorKind::TimeExceeded, None),
        (IcmpErrorKind::HostUnreachable, None),
        (IcmpErrorKind::NetUnreachable, None),
    ];
    for (kind, want) in cases {
        let mut net = Net::new();
        net.cut_a_to_b = true;
        let c = net.a.tcp_socket().unwrap();
        let _ = net.a.connect(c, SERVER);
        net.pump();
        let syn = net.log.iter().find(|g| g.from == Side::A).unwrap().seq;
        let err = IcmpError {
            kind,
            local: net.a.getsockname(c).unwrap(),
            remote: SERVER,
            seq: wire::SeqNumber(syn),
        };
        let now = net.now;
        net.a.handle_icmp_error(now, err);
        let got = match net.a.getsockopt(c, SockOptName::Error) {
            Ok(SockOpt::Error(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(got, want, "{kind:?}");
        assert_eq!(net.ready(Side::A, c).hup, want.is_some(), "{kind:?}");
    }
}
