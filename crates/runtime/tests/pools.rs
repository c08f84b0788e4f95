//! The per-core pools of a running stack, sized by the configuration
//! (`stack.buffer_memory`): a connection whose buffers do not fit is refused
//! cleanly at both ends (the client's `connect` fails with `ENOBUFS`, the
//! server drops the SYN so that the client retries) and both recover as
//! soon as connections are released, TIME-WAIT included.

use packet_io::{mem_pair, MemConfig};
use runtime::{
    Errno, Event, Events, Fd, Runtime, RuntimeConfig, SockOpt, SockOptName, TcpListener, ThreadMode,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 5, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 5, 0, 2);
const PORT: u16 = 7070;
/// rcvbuf + sndbuf of every connection.
const PER_CONN: usize = 8192 + 8192;

fn config(ip: Ipv4Addr, mac: &str, connections: usize) -> RuntimeConfig {
    let mut c = RuntimeConfig::memory(ip, 1);
    c.net.mac = Some(mac.into());
    c.stack.mode = ThreadMode::Threaded;
    c.stack.max_concurrency = 64;
    c.stack.rcvbuf = 8192;
    c.stack.sndbuf = 8192;
    c.stack.buffer_memory = Some(connections * PER_CONN);
    // TIME-WAIT (20 s) outlasts the test: only the reservation it gives
    // back lets the client open more connections.
    c.stack.msl_ms = 10_000;
    c.stack.rto_min_ms = 50;
    c.stack.rto_initial_ms = 200;
    c.stack.seed = 11;
    c
}

fn server_addr() -> SocketAddrV4 {
    SocketAddrV4::new(SERVER_IP, PORT)
}

#[test]
fn buffer_memory_refuses_connections_cleanly_and_recovers() {
    let (x, y) = mem_pair(&MemConfig::default()).unwrap();
    // The server has buffer memory for two connections, the client for three.
    let (_srt, mut sctx) =
        Runtime::start_memory(config(SERVER_IP, "02:00:00:00:05:01", 2), vec![x]).unwrap();
    let (_crt, mut cctx) =
        Runtime::start_memory(config(CLIENT_IP, "02:00:00:00:05:02", 3), vec![y]).unwrap();
    let sctx = sctx.remove(0);
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        {
            let l = TcpListener::bind(&sctx, server_addr()).unwrap();
            let mut held: Vec<_> = (0..2).map(|_| l.accept().unwrap().0).collect();
            go_rx.recv().unwrap();
            for s in &mut held {
                let mut v = Vec::new();
                s.read_to_end(&mut v).unwrap();
            }
            drop(held);
            // The refused one (retransmitting its SYN) and one more get in.
            for _ in 0..2 {
                let (mut s, _) = l.accept().unwrap();
                s.write_all(b"in").unwrap();
            }
        }
        sctx
    });
    let ctx = cctx.remove(0);
    let connect = |fd: Fd| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match ctx.connect(fd, server_addr()) {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("connect: {e}"),
            }
        }
    };
    let held: Vec<Fd> = (0..2)
        .map(|_| {
            let fd = ctx.socket().unwrap();
            connect(fd);
            fd
        })
        .collect();
    // The server's buffer memory is taken: a third attempt stays pending
    // (its SYN is dropped, not reset).
    let pending = ctx.socket_nonblocking().unwrap();
    assert_eq!(
        ctx.connect(pending, server_addr())
            .unwrap_err()
            .socket_errno(),
        Some(Errno::EINPROGRESS)
    );
    std::thread::sleep(Duration::from_millis(300));
    let ep = ctx.epoll_create().unwrap();
    ctx.epoll_add(ep, pending, Events::OUT).unwrap();
    let mut evs = [Event::default(); 2];
    assert_eq!(
        ctx.epoll_wait(ep, &mut evs, Some(Duration::ZERO)).unwrap(),
        0,
        "the server took a connection beyond its buffer memory"
    );
    // The client's own buffer memory is taken too: ENOBUFS, not a panic.
    let fourth = ctx.socket().unwrap();
    assert_eq!(
        ctx.connect(fourth, server_addr())
            .unwrap_err()
            .socket_errno(),
        Some(Errno::ENOBUFS)
    );
    ctx.close(fourth).unwrap();
    // Releasing the held connections frees both sides' buffer memory.
    for fd in held {
        ctx.close(fd).unwrap();
    }
    go_tx.send(()).unwrap();
    let n = ctx
        .epoll_wait(ep, &mut evs, Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(n, 1, "the pending connection completed");
    assert_eq!(
        ctx.getsockopt(pending, SockOptName::Error).unwrap(),
        SockOpt::Error(None)
    );
    // Our closed connections sit in TIME-WAIT for 20 s, but hold no buffer
    // memory there: a new connection fits at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    let fd = loop {
        let fd = ctx.socket().unwrap();
        match ctx.connect(fd, server_addr()) {
            Ok(()) => break fd,
            Err(e) => {
                ctx.close(fd).unwrap();
                assert!(Instant::now() < deadline, "never recovered: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let mut got = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        n += ctx.read(fd, &mut got[n..]).unwrap();
    }
    assert_eq!(&got, b"in");
    server.join().unwrap();
}
