//! The runtime end to end over the in-memory backend: two runtimes (our stack
//! at both ends) joined by packet-io's memory queue pairs. Fast and
//! deterministic in what they check; the same scenarios as the AF_XDP tests
//! where they make sense.

use packet_io::{mem_pair, MemConfig, MemQueue};
use runtime::{
    Context, CtlOp, Errno, Error, Event, Events, Fd, MsgFlags, Runtime, RuntimeConfig, Shutdown,
    SockOpt, SockOptName, TcpListener, TcpStream, ThreadMode,
};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const PORT: u16 = 8080;

fn config(ip: Ipv4Addr, mac: &str, cores: usize, mode: ThreadMode) -> RuntimeConfig {
    let mut c = RuntimeConfig::memory(ip, cores);
    c.net.mac = Some(mac.into());
    c.stack.mode = mode;
    c.stack.max_concurrency = 512;
    c.stack.msl_ms = 200;
    c.stack.rto_min_ms = 50;
    c.stack.rto_initial_ms = 200;
    c.stack.seed = 7;
    c
}

/// Two runtimes, `cores` contexts each, queue k of one joined to queue k of the other.
fn pair(cores: usize, mode: ThreadMode) -> ((Runtime, Vec<Context>), (Runtime, Vec<Context>)) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..cores {
        let (x, y): (MemQueue, MemQueue) = mem_pair(&MemConfig {
            frames: 4096,
            link_capacity: 4096,
            ..MemConfig::default()
        })
        .unwrap();
        a.push(x);
        b.push(y);
    }
    let server =
        Runtime::start_memory(config(SERVER_IP, "02:00:00:00:00:01", cores, mode), a).unwrap();
    let client =
        Runtime::start_memory(config(CLIENT_IP, "02:00:00:00:00:02", cores, mode), b).unwrap();
    (server, client)
}

fn server_addr() -> SocketAddrV4 {
    SocketAddrV4::new(SERVER_IP, PORT)
}

/// Accepts `n` connections and echoes each until EOF (one at a time).
fn echo_server(ctx: Context, n: usize) -> std::thread::JoinHandle<Context> {
    std::thread::spawn(move || {
        {
            let l = TcpListener::bind(&ctx, server_addr()).unwrap();
            for _ in 0..n {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = vec![0u8; 65536];
                loop {
                    let k = s.read(&mut buf).unwrap();
                    if k == 0 {
                        break;
                    }
                    s.write_all(&buf[..k]).unwrap();
                }
            }
        }
        ctx
    })
}

#[test]
fn echo_round_trip_threaded() {
    let ((_srt, mut sctx), (_crt, mut cctx)) = pair(1, ThreadMode::Threaded);
    let server = echo_server(sctx.remove(0), 1);
    let ctx = cctx.remove(0);
    {
        let mut s = loop {
            // The server thread may not listen yet: retry refused connects.
            match TcpStream::connect(&ctx, server_addr()) {
                Ok(s) => break s,
                Err(e) if e.raw_os_error() == Some(Errno::ECONNREFUSED.errno()) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("connect: {e}"),
            }
        };
        s.write_all(b"hello over memory").unwrap();
        let mut got = [0u8; 17];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello over memory");
        assert_eq!(s.peer_addr().unwrap(), server_addr());
        assert_eq!(*s.local_addr().unwrap().ip(), CLIENT_IP);
    }
    server.join().unwrap();
}

fn connect_retry(ctx: &Context) -> TcpStream<'_> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(ctx, server_addr()) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
}

fn short_connections(mode: ThreadMode, n: usize) {
    let ((_srt, mut sctx), (_crt, mut cctx)) = pair(1, mode);
    let server = echo_server(sctx.remove(0), n);
    let ctx = cctx.remove(0);
    for i in 0..n {
        let mut s = connect_retry(&ctx);
        let msg = [i as u8; 64];
        s.write_all(&msg).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, msg, "connection {i}");
    }
    server.join().unwrap();
}

#[test]
fn sequential_short_connections_threaded() {
    short_connections(ThreadMode::Threaded, 300);
}

#[test]
fn sequential_short_connections_run_to_completion() {
    short_connections(ThreadMode::RunToCompletion, 300);
}

#[test]
fn bulk_transfer_with_sha256_both_ways() {
    let ((_srt, mut sctx), (_crt, mut cctx)) = pair(1, ThreadMode::Threaded);
    const LEN: usize = 8 << 20;
    let sctx = sctx.remove(0);
    let server = std::thread::spawn(move || {
        let l = TcpListener::bind(&sctx, server_addr()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        // Receive LEN bytes, hash them, then send LEN bytes of our own.
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 65536];
        let mut got = 0;
        while got < LEN {
            let k = s.read(&mut buf).unwrap();
            assert!(k > 0, "early EOF at {got}");
            h.update(&buf[..k]);
            got += k;
        }
        let mut out = Sha256::new();
        let data: Vec<u8> = (0..LEN).map(|i| (i * 7 % 251) as u8).collect();
        out.update(&data);
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        (h.finalize().to_vec(), out.finalize().to_vec())
    });
    let ctx = cctx.remove(0);
    let mut s = connect_retry(&ctx);
    let data: Vec<u8> = (0..LEN).map(|i| (i * 13 % 253) as u8).collect();
    let sent_hash = Sha256::digest(&data).to_vec();
    s.write_all(&data).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 65536];
    let mut got = 0;
    loop {
        let k = s.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        got += k;
    }
    let (server_got, server_sent) = server.join().unwrap();
    assert_eq!(got, LEN);
    assert_eq!(server_got, sent_hash, "server hash of client data");
    assert_eq!(
        h.finalize().to_vec(),
        server_sent,
        "client hash of server data"
    );
}

#[test]
fn api_misuse_returns_typed_errors() {
    let ((_srt, mut sctx), _client) = pair(1, ThreadMode::Threaded);
    let ctx = sctx.remove(0);
    let bad = Fd(4000);
    let e = |r: Result<(), Error>| r.unwrap_err().socket_errno();
    assert_eq!(e(ctx.close(bad)), Some(Errno::EBADF));
    assert_eq!(
        ctx.read(bad, &mut [0u8; 4]).unwrap_err().socket_errno(),
        Some(Errno::EBADF)
    );
    let fd = ctx.socket().unwrap();
    assert_eq!(
        ctx.read(fd, &mut [0u8; 4]).unwrap_err().socket_errno(),
        Some(Errno::ENOTCONN)
    );
    assert_eq!(
        ctx.write(fd, b"x").unwrap_err().socket_errno(),
        Some(Errno::ENOTCONN)
    );
    // A listener cannot connect; accept on a plain socket is EINVAL.
    let l = ctx.socket().unwrap();
    ctx.bind(l, server_addr()).unwrap();
    assert_eq!(
        e(ctx.bind(l, server_addr())),
        Some(Errno::EINVAL),
        "bind twice"
    );
    ctx.listen(l, 8).unwrap();
    assert_eq!(
        e(ctx.connect(l, SocketAddrV4::new(CLIENT_IP, 80))),
        Some(Errno::EISCONN)
    );
    let other = ctx.socket().unwrap();
    assert_eq!(e(ctx.bind(other, server_addr())), Some(Errno::EADDRINUSE));
    assert_eq!(
        ctx.accept(other).unwrap_err().socket_errno(),
        Some(Errno::EINVAL)
    );
    // Non-blocking accept with nothing pending.
    ctx.set_nonblocking(l, true).unwrap();
    assert_eq!(
        ctx.accept(l).unwrap_err().socket_errno(),
        Some(Errno::EAGAIN)
    );
    // Epoll misuse.
    let ep = ctx.epoll_create().unwrap();
    assert!(matches!(
        ctx.epoll_ctl(ep, CtlOp::Add, bad, Event::new(Events::IN, 0)),
        Err(Error::Epoll(_))
    ));
    assert_eq!(
        e(ctx.epoll_ctl(fd, CtlOp::Add, l, Event::new(Events::IN, 0))),
        Some(Errno::EBADF),
        "epoll_ctl on a non-epoll fd"
    );
    let mut evs = [Event::default(); 4];
    assert_eq!(
        ctx.epoll_wait(ep, &mut evs, Some(Duration::ZERO)).unwrap(),
        0
    );
    assert!(ctx.epoll_wait(ep, &mut [], Some(Duration::ZERO)).is_err());
    // Socket options.
    ctx.setsockopt(fd, SockOpt::NoDelay(true)).unwrap();
    assert_eq!(
        ctx.getsockopt(fd, SockOptName::NoDelay).unwrap(),
        SockOpt::NoDelay(true)
    );
    assert_eq!(
        e(ctx.setsockopt(fd, SockOpt::Error(None))),
        Some(Errno::ENOPROTOOPT)
    );
    assert!(ctx.fionread(l).unwrap_err().socket_errno().is_some());
    // Everything closes cleanly, and closed descriptors are EBADF.
    for f in [fd, l, other, ep] {
        ctx.close(f).unwrap();
        assert_eq!(e(ctx.close(f)), Some(Errno::EBADF));
    }
    let _ = MsgFlags::NONE;
}
