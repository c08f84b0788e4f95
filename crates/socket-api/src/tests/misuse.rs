//! API misuse: every call on every wrong kind of descriptor returns a typed
//! error, and random call sequences never panic.

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};

use core::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::{MsgFlags, Shutdown, SockOpt, SockOptName};

const ANY: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);

#[test]
fn every_call_on_a_bad_descriptor_is_ebadf() {
    let mut net = Net::new();
    let t = &mut net.a;
    let fd = t.tcp_socket().unwrap();
    t.close(fd).unwrap();
    for bad in [fd, Fd(7), Fd(u32::MAX)] {
        let mut buf = [0u8; 4];
        assert_eq!(t.bind(bad, ANY), Err(Errno::EBADF));
        assert_eq!(t.listen(bad, 1), Err(Errno::EBADF));
        assert_eq!(t.accept(bad), Err(Errno::EBADF));
        assert_eq!(t.connect(bad, SERVER), Err(Errno::EBADF));
        assert_eq!(t.read(bad, &mut buf), Err(Errno::EBADF));
        assert_eq!(t.recv(bad, &mut buf, MsgFlags::PEEK), Err(Errno::EBADF));
        assert_eq!(
            t.readv(bad, &mut [IoSliceMut::new(&mut buf)]),
            Err(Errno::EBADF)
        );
        assert_eq!(t.write(bad, b"x"), Err(Errno::EBADF));
        assert_eq!(t.send(bad, b"x", MsgFlags::NONE), Err(Errno::EBADF));
        assert_eq!(t.writev(bad, &[IoSlice::new(b"x")]), Err(Errno::EBADF));
        assert_eq!(t.shutdown(bad, Shutdown::Both), Err(Errno::EBADF));
        assert_eq!(t.close(bad), Err(Errno::EBADF));
        assert_eq!(t.abort(bad), Err(Errno::EBADF));
        assert_eq!(t.getsockname(bad), Err(Errno::EBADF));
        assert_eq!(t.getpeername(bad), Err(Errno::EBADF));
        assert_eq!(t.set_nonblocking(bad, true), Err(Errno::EBADF));
        assert_eq!(t.is_nonblocking(bad), Err(Errno::EBADF));
        assert_eq!(t.fcntl(bad, crate::options::F_GETFL, 0), Err(Errno::EBADF));
        assert_eq!(t.fionread(bad), Err(Errno::EBADF));
        assert_eq!(t.ioctl(bad, crate::options::FIONREAD), Err(Errno::EBADF));
        assert_eq!(t.setsockopt(bad, SockOpt::NoDelay(true)), Err(Errno::EBADF));
        assert_eq!(t.getsockopt(bad, SockOptName::Error), Err(Errno::EBADF));
        assert_eq!(t.setsockopt_raw(bad, 6, 1, 1), Err(Errno::EBADF));
        assert_eq!(t.getsockopt_raw(bad, 6, 1), Err(Errno::EBADF));
        assert_eq!(t.readiness(bad), Err(Errno::EBADF));
        assert_eq!(t.handle(bad), Err(Errno::EBADF));
        assert_eq!(t.release_fd(bad), Err(Errno::EBADF));
    }
}

#[test]
fn socket_calls_on_a_reserved_descriptor_are_enotsock() {
    let mut net = Net::new();
    let t = &mut net.a;
    let ep = t.reserve_fd().unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(t.bind(ep, ANY), Err(Errno::ENOTSOCK));
    assert_eq!(t.listen(ep, 1), Err(Errno::ENOTSOCK));
    assert_eq!(t.accept(ep), Err(Errno::ENOTSOCK));
    assert_eq!(t.connect(ep, SERVER), Err(Errno::ENOTSOCK));
    assert_eq!(t.read(ep, &mut buf), Err(Errno::ENOTSOCK));
    assert_eq!(t.write(ep, b"x"), Err(Errno::ENOTSOCK));
    assert_eq!(t.shutdown(ep, Shutdown::Read), Err(Errno::ENOTSOCK));
    assert_eq!(t.getsockname(ep), Err(Errno::ENOTSOCK));
    assert_eq!(
        t.setsockopt(ep, SockOpt::KeepAlive(true)),
        Err(Errno::ENOTSOCK)
    );
    assert_eq!(t.abort(ep), Err(Errno::ENOTSOCK));
    let s = t.tcp_socket().unwrap();
    assert_eq!(t.release_fd(s), Err(Errno::EINVAL), "not a reserved fd");
    t.release_fd(ep).unwrap();
    assert_eq!(t.release_fd(ep), Err(Errno::EBADF));
}

#[test]
fn calls_in_the_wrong_state() {
    let mut net = Net::new();
    let (c, l, s) = net.connected();
    let fresh = net.a.tcp_socket().unwrap();
    let mut buf = [0u8; 8];
    // An unconnected socket.
    let t = &mut net.a;
    assert_eq!(t.read(fresh, &mut buf), Err(Errno::ENOTCONN));
    assert_eq!(t.write(fresh, b"x"), Err(Errno::ENOTCONN));
    assert_eq!(t.shutdown(fresh, Shutdown::Write), Err(Errno::ENOTCONN));
    assert_eq!(t.getpeername(fresh), Err(Errno::ENOTCONN));
    assert_eq!(t.accept(fresh), Err(Errno::EINVAL));
    assert_eq!(t.getsockname(fresh), Ok(ANY));
    assert_eq!(t.fionread(fresh), Ok(0));
    assert_eq!(
        t.connect(fresh, SocketAddrV4::new(Ipv4Addr::BROADCAST, 80)),
        Err(Errno::EADDRNOTAVAIL)
    );
    assert_eq!(
        t.connect(fresh, SocketAddrV4::new(IP_B, 0)),
        Err(Errno::EADDRNOTAVAIL)
    );
    // A connected socket.
    assert_eq!(t.listen(c, 1), Err(Errno::EINVAL));
    assert_eq!(t.bind(c, ANY), Err(Errno::EINVAL));
    assert_eq!(t.accept(c), Err(Errno::EINVAL));
    assert_eq!(t.connect(c, SERVER), Err(Errno::EISCONN));
    assert_eq!(
        t.recv(c, &mut buf, MsgFlags::from_raw(crate::options::MSG_OOB)),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        t.send(c, b"x", MsgFlags::from_raw(crate::options::MSG_PEEK)),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(t.ioctl(c, 0x1234), Err(Errno::EINVAL));
    assert_eq!(t.write(c, b""), Ok(0));
    // A listener.
    let t = &mut net.b;
    assert_eq!(t.read(l, &mut buf), Err(Errno::ENOTCONN));
    assert_eq!(t.write(l, b"x"), Err(Errno::ENOTCONN));
    assert_eq!(t.connect(l, SERVER), Err(Errno::EISCONN));
    assert_eq!(t.bind(l, ANY), Err(Errno::EINVAL));
    assert_eq!(t.shutdown(l, Shutdown::Both), Err(Errno::ENOTCONN));
    assert_eq!(t.getpeername(l), Err(Errno::ENOTCONN));
    assert_eq!(t.fionread(l), Err(Errno::EINVAL));
    assert_eq!(t.listen(l, 5), Ok(()), "listen again is allowed");
    assert_eq!(t.accept(l), Err(Errno::EAGAIN));
    // Unsupported socket kinds.
    assert_eq!(t.socket(10, 1, 0), Err(Errno::EAFNOSUPPORT));
    assert_eq!(t.socket(2, 2, 0), Err(Errno::ESOCKTNOSUPPORT));
    assert_eq!(t.socket(2, 1, 17), Err(Errno::EPROTONOSUPPORT));
    let _ = s;
}

/// One random call, with random descriptors and arguments.
#[derive(Debug, Clone)]
enum Op {
    Socket(bool),
    Bind(u32, u16),
    Listen(u32, i32),
    Accept(u32),
    Connect(u32, u8, u16),
    Read(u32, u16, bool),
    Readv(u32, u16),
    Write(u32, u16),
    Writev(u32, u16),
    Shutdown(u32, i32),
    Close(u32),
    Abort(u32),
    Names(u32),
    Fcntl(u32, i32, i32),
    Ioctl(u32, u64),
    SetOpt(u32, i32, i32, i32),
    GetOpt(u32, i32, i32),
    Reserve,
    Release(u32),
    Pump,
    Advance(u16),
    /// A opens a socket and connects it to the listener on B.
    ClientConnect,
    /// B accepts on its listener.
    ServerAccept,
    /// Read from every descriptor of the side (an application's poll loop).
    ReadEvery,
}

fn op() -> impl Strategy<Value = Op> {
    let fd = 0u32..10;
    let port = prop_oneof![Just(0u16), Just(80), Just(81), any::<u16>()];
    let level = prop_oneof![Just(1), Just(6), any::<i32>()];
    let name = prop_oneof![0..20i32, any::<i32>()];
    prop_oneof![
        // Weighted towards calls that build connections, so that sequences
        // reach established, half-closed and reset states often.
        3 => any::<bool>().prop_map(Op::Socket),
        4 => Just(Op::ClientConnect),
        4 => Just(Op::ServerAccept),
        3 => Just(Op::ReadEvery),
        2 => (0u32..4, 0i32..3).prop_map(|(f, h)| Op::Shutdown(f, h)),
        1 => (0u32..4).prop_map(Op::Abort),
        4 => Just(Op::Pump),
        3 => (0u32..4, 1u16..3000).prop_map(|(f, n)| Op::Write(f, n)),
        3 => (0u32..4, 1u16..3000, any::<bool>()).prop_map(|(f, n, p)| Op::Read(f, n, p)),
        1 => (fd.clone(), port.clone()).prop_map(|(f, p)| Op::Bind(f, p)),
        1 => (fd.clone(), any::<i32>()).prop_map(|(f, b)| Op::Listen(f, b)),
        1 => fd.clone().prop_map(Op::Accept),
        1 => (fd.clone(), 0u8..4, port.clone()).prop_map(|(f, h, p)| Op::Connect(f, h, p)),
        1 => (fd.clone(), any::<u16>(), any::<bool>()).prop_map(|(f, n, p)| Op::Read(f, n, p)),
        1 => (fd.clone(), any::<u16>()).prop_map(|(f, n)| Op::Readv(f, n)),
        1 => (fd.clone(), any::<u16>()).prop_map(|(f, n)| Op::Write(f, n)),
        1 => (fd.clone(), any::<u16>()).prop_map(|(f, n)| Op::Writev(f, n)),
        1 => (fd.clone(), -1i32..4).prop_map(|(f, h)| Op::Shutdown(f, h)),
        1 => fd.clone().prop_map(Op::Close),
        1 => fd.clone().prop_map(Op::Abort),
        1 => fd.clone().prop_map(Op::Names),
        1 => (fd.clone(), 0i32..6, any::<i32>()).prop_map(|(f, c, a)| Op::Fcntl(f, c, a)),
        1 => (fd.clone(), prop_oneof![Just(0x541Bu64), any::<u64>()]).prop_map(|(f, r)| Op::Ioctl(f, r)),
        1 => (fd.clone(), level.clone(), name.clone(), any::<i32>())
            .prop_map(|(f, l, n, v)| Op::SetOpt(f, l, n, v)),
        1 => (fd.clone(), level, name).prop_map(|(f, l, n)| Op::GetOpt(f, l, n)),
        1 => Just(Op::Reserve),
        1 => fd.prop_map(Op::Release),
        1 => Just(Op::Pump),
        1 => (0u16..5000).prop_map(Op::Advance),
    ]
}

fn remote(h: u8, port: u16) -> SocketAddrV4 {
    let ip = match h {
        0 => IP_A,
        1 => IP_B,
        2 => Ipv4Addr::UNSPECIFIED,
        _ => Ipv4Addr::new(224, 0, 0, 1),
    };
    SocketAddrV4::new(ip, port)
}

/// What a sequence reached (coverage of the random calls).
#[derive(Debug, Default, Clone, Copy)]
struct Reached {
    accepted: bool,
    data_read: bool,
    eof: bool,
    reset: bool,
}

/// Run `op` on side `side`, noting what it reached. Every result is a typed
/// `Result`; the point is that nothing panics.
fn apply(net: &mut Net, side: Side, op: &Op, reached: &mut Reached) {
    let t = net.side(side);
    let mut buf = vec![0u8; 256];
    match *op {
        Op::Socket(nb) => {
            let ty =
                crate::options::SOCK_STREAM | if nb { crate::options::SOCK_NONBLOCK } else { 0 };
            let _ = t.socket(crate::options::AF_INET, ty, 0);
        }
        Op::Bind(f, p) => {
            let _ = t.bind(Fd(f), SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p));
        }
        Op::Listen(f, b) => {
            let _ = t.listen(Fd(f), b);
        }
        Op::Accept(f) => {
            reached.accepted |= t.accept(Fd(f)).is_ok();
        }
        Op::Connect(f, h, p) => {
            let _ = t.connect(Fd(f), remote(h, p));
        }
        Op::Read(f, n, peek) => {
            buf.resize(usize::from(n % 4096), 0);
            let flags = if peek { MsgFlags::PEEK } else { MsgFlags::NONE };
            match t.recv(Fd(f), &mut buf, flags) {
                Ok(0) if !buf.is_empty() => reached.eof = true,
                Ok(n) if n > 0 => reached.data_read = true,
                Err(Errno::ECONNRESET) => reached.reset = true,
                _ => {}
            }
        }
        Op::Readv(f, n) => {
            let mut x = vec![0u8; usize::from(n % 100)];
            let mut y = vec![0u8; usize::from(n % 3000)];
            let _ = t.readv(
                Fd(f),
                &mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)],
            );
        }
        Op::Write(f, n) => {
            let data = vec![0xAB; usize::from(n)];
            let _ = t.write(Fd(f), &data);
        }
        Op::Writev(f, n) => {
            let data = vec![0xCD; usize::from(n % 5000)];
            let _ = t.writev(Fd(f), &[IoSlice::new(&data), IoSlice::new(b"tail")]);
        }
        Op::Shutdown(f, h) => {
            let _ = t.shutdown_raw(Fd(f), h);
        }
        Op::Close(f) => {
            let _ = t.close(Fd(f));
        }
        Op::Abort(f) => {
            let _ = t.abort(Fd(f));
        }
        Op::Names(f) => {
            let _ = t.getsockname(Fd(f));
            let _ = t.getpeername(Fd(f));
            let _ = t.readiness(Fd(f));
            let _ = t.fionread(Fd(f));
        }
        Op::Fcntl(f, c, a) => {
            let _ = t.fcntl(Fd(f), c, a);
        }
        Op::Ioctl(f, r) => {
            let _ = t.ioctl(Fd(f), r);
        }
        Op::SetOpt(f, l, n, v) => {
            let _ = t.setsockopt_raw(Fd(f), l, n, v);
        }
        Op::GetOpt(f, l, n) => {
            let _ = t.getsockopt_raw(Fd(f), l, n);
        }
        Op::Reserve => {
            let _ = t.reserve_fd();
        }
        Op::Release(f) => {
            let _ = t.release_fd(Fd(f));
        }
        Op::Pump => net.pump(),
        Op::ClientConnect => {
            if let Ok(fd) = net.a.tcp_socket() {
                let _ = net.a.connect(fd, SERVER);
            }
        }
        Op::ReadEvery => {
            for fd in 0..10 {
                match t.read(Fd(fd), &mut buf) {
                    Ok(0) => reached.eof = true,
                    Ok(_) => reached.data_read = true,
                    Err(Errno::ECONNRESET) => reached.reset = true,
                    _ => {}
                }
            }
        }
        Op::ServerAccept => {
            reached.accepted |= net.b.accept(Fd(0)).is_ok();
        }
        Op::Advance(ms) => net.advance(Duration::from_millis(u64::from(ms))),
    }
}

/// Invariants after every step: readiness of every open fd is computable, the
/// open count matches, and each drain reports an fd at most once.
fn check(t: &mut SocketTable) -> Result<(), TestCaseError> {
    let mut open = 0;
    for fd in 0..12 {
        match t.readiness(Fd(fd)) {
            Ok(_) | Err(Errno::ENOTSOCK) => open += 1,
            Err(Errno::EBADF) => {}
            Err(e) => return Err(TestCaseError::fail(format!("readiness({fd}) = {e}"))),
        }
    }
    prop_assert_eq!(open, t.open_count());
    let mut seen = Vec::new();
    t.drain_changes(|fd, _, _| seen.push(fd));
    let n = seen.len();
    seen.sort();
    seen.dedup();
    prop_assert_eq!(n, seen.len());
    Ok(())
}

/// One random sequence: a listener on B, then the calls; checks the invariants
/// after each call and that everything closes cleanly at the end.
fn run_sequence(ops: &[(bool, Op)]) -> Result<Reached, TestCaseError> {
    let mut reached = Reached::default();
    let mut net = Net::with_configs(engine_config(), engine_config(), 10);
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    for (on_a, op) in ops {
        let side = if *on_a { Side::A } else { Side::B };
        apply(&mut net, side, op, &mut reached);
        check(&mut net.a)?;
        check(&mut net.b)?;
    }
    // Everything can still be closed and the tables drain clean.
    for fd in 0..12 {
        let _ = net.a.close(Fd(fd));
        let _ = net.b.close(Fd(fd));
    }
    net.advance(Duration::from_secs(200));
    net.a.drain_changes(|_, _, _| {});
    net.b.drain_changes(|_, _, _| {});
    prop_assert_eq!(net.a.open_count(), 0);
    prop_assert_eq!(net.b.open_count(), 0);
    prop_assert_eq!(net.a.endpoint().connection_count(), 0);
    prop_assert_eq!(net.b.endpoint().connection_count(), 0);
    prop_assert!(net.a.ports_all_free());
    prop_assert!(net.b.ports_all_free());
    Ok(reached)
}

fn sequences() -> impl Strategy<Value = Vec<(bool, Op)>> {
    proptest::collection::vec((any::<bool>(), op()), 1..80)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    /// Random call sequences on both tables, with random descriptors and
    /// arguments, never panic; every failure is a typed `Errno`.
    #[test]
    fn random_call_sequences_never_panic(ops in sequences()) {
        run_sequence(&ops)?;
    }
}

/// The generator is worth something only if sequences reach connections that
/// accept, carry data, end and reset: a floor on how often they do.
#[test]
fn random_sequences_reach_interesting_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = sequences();
    let (mut n, mut accepted, mut data, mut eof, mut reset) = (0, 0, 0, 0, 0);
    for _ in 0..200 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let r = run_sequence(&ops).unwrap();
        n += 1;
        accepted += usize::from(r.accepted);
        data += usize::from(r.data_read);
        eof += usize::from(r.eof);
        reset += usize::from(r.reset);
    }
    eprintln!("of {n}: accepted {accepted}, data read {data}, eof {eof}, reset {reset}");
    assert!(accepted * 2 >= n, "accepted in {accepted} of {n}");
    assert!(data * 20 >= n, "data read in {data} of {n}");
    assert!(eof * 20 >= n, "eof in {eof} of {n}");
    assert!(reset * 20 >= n, "reset in {reset} of {n}");
}
