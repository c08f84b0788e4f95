//! The runtime against the Linux kernel over AF_XDP: each test makes its own
//! pair of network namespaces joined by a veth pair, runs our stack on one
//! end and kernel sockets (std::net, curl, python3) on the other. Skipped,
//! with a message, when not root.

mod common;

use common::*;
use runtime::{Context, Errno, Events, Shutdown, TcpListener, TcpStream, ThreadMode};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// Serves HTTP/1.0-ish requests: reads until the blank line, answers `body`.
fn http_server(
    ctx: Context,
    addr: SocketAddrV4,
    n: usize,
    body: &'static [u8],
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let l = TcpListener::bind(&ctx, addr).unwrap();
        for _ in 0..n {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let k = s.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..k]);
            }
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body).unwrap();
        }
    })
}

#[test]
fn kernel_clients_std_curl_python_talk_to_our_server() {
    if skip_unless_root("kernel_clients_std_curl_python_talk_to_our_server") {
        return;
    }
    let mut net = start(1, ThreadMode::Threaded, |_| {});
    let addr = net.ours(8080);
    let server = http_server(net.take_ctx(), addr, 3, b"hello from mtcp-rs\n");
    // std::net
    let got = net
        .pair
        .peer
        .spawn(move || {
            let mut s = kernel_connect(addr);
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .join()
        .unwrap()
        .unwrap();
    assert!(got.ends_with("hello from mtcp-rs\n"), "{got}");
    // curl
    let url = format!("http://{addr}/");
    let out = net
        .pair
        .peer
        .exec("curl", &["-s", "--max-time", "10", &url])
        .expect("curl");
    assert_eq!(out, "hello from mtcp-rs\n");
    // python3
    let script = format!(
        "import socket\ns=socket.create_connection(('{}',{}),timeout=10)\ns.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\nd=b''\nwhile True:\n  c=s.recv(4096)\n  if not c: break\n  d+=c\nprint(d.decode().split('\\r\\n\\r\\n',1)[1],end='')\n",
        addr.ip(),
        addr.port()
    );
    let out = net
        .pair
        .peer
        .exec("python3", &["-c", &script])
        .expect("python3");
    assert_eq!(out, "hello from mtcp-rs\n");
    server.join().unwrap();
}

/// A kernel echo server in the peer namespace for `n` connections.
fn kernel_echo_server(
    net: &Net,
    port: u16,
    n: usize,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    let addr = net.peer(port);
    let (tx, rx) = std::sync::mpsc::channel();
    let h = net.pair.peer.spawn(move || {
        let l = std::net::TcpListener::bind(addr).unwrap();
        tx.send(()).unwrap();
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
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("kernel server up");
    h
}

#[test]
fn our_client_talks_to_a_kernel_server() {
    if skip_unless_root("our_client_talks_to_a_kernel_server") {
        return;
    }
    // No MAC configured: the runtime reads the interface's (a wrong one
    // would leave the kernel's replies addressed elsewhere).
    let mut net = start(1, ThreadMode::Threaded, |c| c.net.mac = None);
    let server = kernel_echo_server(&net, 9000, 1);
    let ctx = net.take_ctx();
    {
        let mut s = TcpStream::connect(&ctx, net.peer(9000)).unwrap();
        s.write_all(b"ping over af_xdp").unwrap();
        let mut got = [0u8; 16];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping over af_xdp");
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
    server.join().unwrap().unwrap();
    // A closed port is refused with a RST: ECONNREFUSED.
    let e = TcpStream::connect(&ctx, net.peer(9001)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::ECONNREFUSED.errno()));
}

/// 64 KiB of deterministic data for chunk `i` of stream `seed`.
fn chunk(seed: u64, i: u64, out: &mut [u8]) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i.wrapping_add(1);
    for b in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        b.copy_from_slice(&bytes[..b.len()]);
    }
}

const CHUNK: usize = 64 * 1024;

#[test]
fn sequential_short_connections_both_ways() {
    if skip_unless_root("sequential_short_connections_both_ways") {
        return;
    }
    const N: usize = 1000;
    let mut net = start(1, ThreadMode::Threaded, |_| {});
    let addr = net.ours(8081);
    let ctx = net.take_ctx();
    // Kernel clients to our server: 64-byte request, 64-byte response.
    let server = std::thread::spawn(move || {
        {
            let l = TcpListener::bind(&ctx, addr).unwrap();
            for _ in 0..N {
                let (mut s, _) = l.accept().unwrap();
                let mut req = [0u8; 64];
                s.read_exact(&mut req).unwrap();
                s.write_all(&req).unwrap();
                let mut end = [0u8; 1];
                assert_eq!(
                    s.read(&mut end).unwrap(),
                    0,
                    "client closes after the reply"
                );
            }
        }
        ctx
    });
    let start_t = Instant::now();
    net.pair
        .peer
        .spawn(move || {
            for i in 0..N {
                let mut s = kernel_connect(addr);
                let req = [i as u8; 64];
                s.write_all(&req).unwrap();
                let mut resp = [0u8; 64];
                s.read_exact(&mut resp).unwrap();
                assert_eq!(resp, req, "connection {i}");
            }
        })
        .join()
        .unwrap()
        .unwrap();
    let ctx = server.join().unwrap();
    eprintln!(
        "{N} kernel->ours short connections in {:?}",
        start_t.elapsed()
    );
    // Our client to a kernel server, same pattern.
    let kserver = kernel_echo_server(&net, 9002, N);
    let peer = net.peer(9002);
    let start_t = Instant::now();
    for i in 0..N {
        let mut s = TcpStream::connect(&ctx, peer).unwrap();
        let req = [(i * 3) as u8; 64];
        s.write_all(&req).unwrap();
        let mut resp = [0u8; 64];
        s.read_exact(&mut resp).unwrap();
        assert_eq!(resp, req, "connection {i}");
    }
    kserver.join().unwrap().unwrap();
    eprintln!(
        "{N} ours->kernel short connections in {:?}",
        start_t.elapsed()
    );
}

#[test]
fn concurrent_connections_served_with_epoll() {
    if skip_unless_root("concurrent_connections_served_with_epoll") {
        return;
    }
    const N: usize = 200;
    let mut net = start(1, ThreadMode::Threaded, |_| {});
    let addr = net.ours(8082);
    let ctx = net.take_ctx();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let l = ctx.socket_nonblocking().unwrap();
        ctx.setsockopt(l, runtime::SockOpt::ReuseAddr(true))
            .unwrap();
        ctx.bind(l, addr).unwrap();
        ctx.listen(l, 1024).unwrap();
        let ep = ctx.epoll_create().unwrap();
        ctx.epoll_add(ep, l, Events::IN).unwrap();
        ready_tx.send(()).unwrap();
        let mut events = vec![runtime::Event::default(); 64];
        let (mut accepted, mut closed, mut max_open) = (0, 0, 0);
        let mut open = 0;
        while closed < N {
            let n = ctx
                .epoll_wait(ep, &mut events, Some(Duration::from_secs(20)))
                .unwrap();
            assert!(
                n > 0,
                "epoll_wait timed out: {accepted} accepted, {closed} closed"
            );
            for ev in &events[..n] {
                let fd = runtime::Fd(ev.data as u32);
                if fd == l {
                    loop {
                        match ctx.accept(l) {
                            Ok((c, _)) => {
                                ctx.set_nonblocking(c, true).unwrap();
                                ctx.epoll_add(ep, c, Events::IN).unwrap();
                                accepted += 1;
                                open += 1;
                                max_open = max_open.max(open);
                            }
                            Err(e) if e.socket_errno() == Some(Errno::EAGAIN) => break,
                            Err(e) => panic!("accept: {e}"),
                        }
                    }
                    continue;
                }
                let mut buf = [0u8; 256];
                loop {
                    match ctx.read(fd, &mut buf) {
                        Ok(0) => {
                            ctx.close(fd).unwrap();
                            closed += 1;
                            open -= 1;
                            break;
                        }
                        Ok(k) => ctx.write_all(fd, &buf[..k]).unwrap(),
                        Err(e) if e.socket_errno() == Some(Errno::EAGAIN) => break,
                        Err(e) => panic!("read: {e}"),
                    }
                }
            }
        }
        max_open
    });
    ready_rx.recv().unwrap();
    net.pair
        .peer
        .spawn(move || {
            let mut conns: Vec<_> = (0..N).map(|_| kernel_connect(addr)).collect();
            for (i, s) in conns.iter_mut().enumerate() {
                s.write_all(&[i as u8; 64]).unwrap();
            }
            for (i, s) in conns.iter_mut().enumerate() {
                let mut r = [0u8; 64];
                s.read_exact(&mut r).unwrap();
                assert_eq!(r, [i as u8; 64]);
            }
        })
        .join()
        .unwrap()
        .unwrap();
    let max_open = server.join().unwrap();
    assert_eq!(max_open, N, "all {N} connections were open at once");
}

#[test]
fn bulk_256_mib_each_way_with_sha256() {
    if skip_unless_root("bulk_256_mib_each_way_with_sha256") {
        return;
    }
    // 256 MiB in release (what `cargo xtask test` runs); 32 MiB in debug
    // builds, where SHA-256 alone would take most of a minute.
    const MIB: u64 = if cfg!(debug_assertions) { 32 } else { 256 };
    const CHUNKS: u64 = (MIB << 20) / CHUNK as u64;
    let mut net = start(1, ThreadMode::Threaded, |_| {});
    let peer = net.peer(9003);
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    // Kernel side: receive 256 MiB and hash it, then send 256 MiB of its own.
    let kernel = net.pair.peer.spawn(move || {
        let l = std::net::TcpListener::bind(peer).unwrap();
        up_tx.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        while got < CHUNKS * CHUNK as u64 {
            let k = s.read(&mut buf).unwrap();
            assert!(k > 0, "early EOF after {got} bytes");
            h.update(&buf[..k]);
            got += k as u64;
        }
        let mut sent = Sha256::new();
        for i in 0..CHUNKS {
            chunk(2, i, &mut buf);
            sent.update(&buf);
            s.write_all(&buf).unwrap();
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        (h.finalize().to_vec(), sent.finalize().to_vec())
    });
    up_rx.recv().unwrap();
    let ctx = net.take_ctx();
    let mut s = TcpStream::connect(&ctx, peer).unwrap();
    let mut buf = vec![0u8; CHUNK];
    let mut sent = Sha256::new();
    let t0 = Instant::now();
    for i in 0..CHUNKS {
        chunk(1, i, &mut buf);
        sent.update(&buf);
        s.write_all(&buf).unwrap();
    }
    let up = t0.elapsed();
    let t1 = Instant::now();
    let mut got = Sha256::new();
    let mut total = 0u64;
    loop {
        let k = s.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        got.update(&buf[..k]);
        total += k as u64;
    }
    let down = t1.elapsed();
    let (kernel_got, kernel_sent) = kernel.join().unwrap().unwrap();
    assert_eq!(total, CHUNKS * CHUNK as u64);
    assert_eq!(
        kernel_got,
        sent.finalize().to_vec(),
        "kernel's hash of our data"
    );
    assert_eq!(
        got.finalize().to_vec(),
        kernel_sent,
        "our hash of the kernel's data"
    );
    let gbps = |d: Duration| (MIB << 23) as f64 / d.as_secs_f64() / 1e9;
    eprintln!(
        "{MIB} MiB ours->kernel {up:?} ({:.2} Gbit/s), kernel->ours {down:?} ({:.2} Gbit/s)",
        gbps(up),
        gbps(down)
    );
    drop(s);
    drop(ctx);
}

#[test]
fn half_close_in_both_directions() {
    if skip_unless_root("half_close_in_both_directions") {
        return;
    }
    let mut net = start(1, ThreadMode::Threaded, |_| {});
    let addr = net.ours(8083);
    let ctx = net.take_ctx();
    let server = std::thread::spawn(move || {
        {
            let l = TcpListener::bind(&ctx, addr).unwrap();
            // 1. The kernel half-closes: we read to EOF, then still send.
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"request then FIN");
            s.write_all(b"reply after your FIN").unwrap();
            drop(s);
            // 2. We half-close: the kernel sees EOF and still sends to us.
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"our data then FIN").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"kernel data after our FIN");
        }
        ctx
    });
    net.pair
        .peer
        .spawn(move || {
            let mut s = kernel_connect(addr);
            s.write_all(b"request then FIN").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"reply after your FIN");
            let mut s = kernel_connect(addr);
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"our data then FIN");
            s.write_all(b"kernel data after our FIN").unwrap();
        })
        .join()
        .unwrap()
        .unwrap();
    server.join().unwrap();
}

#[test]
fn abort_is_a_reset_for_the_kernel() {
    if skip_unless_root("abort_is_a_reset_for_the_kernel") {
        return;
    }
    let mut net = start(1, ThreadMode::Threaded, |_| {});
    let peer = net.peer(9004);
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let kernel = net.pair.peer.spawn(move || {
        let l = std::net::TcpListener::bind(peer).unwrap();
        up_tx.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"before abort");
        s.read(&mut buf).map_err(|e| e.kind())
    });
    up_rx.recv().unwrap();
    let ctx = net.take_ctx();
    let mut s = TcpStream::connect(&ctx, peer).unwrap();
    s.write_all(b"before abort").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.abort().unwrap();
    let r = kernel.join().unwrap().unwrap();
    assert_eq!(r, Err(std::io::ErrorKind::ConnectionReset));
}

#[test]
fn kernel_peer_killed_mid_transfer_is_reset_or_timeout() {
    if skip_unless_root("kernel_peer_killed_mid_transfer_is_reset_or_timeout") {
        return;
    }
    let mut net = start(1, ThreadMode::Threaded, |_| {});
    let peer = net.peer(9005);
    let script = format!(
        "import socket,time\nl=socket.socket()\nl.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\nl.bind(('{}',{}))\nl.listen(1)\nc,_=l.accept()\nc.recv(1000)\ntime.sleep(60)\n",
        peer.ip(),
        peer.port()
    );
    let mut child = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            net.pair.peer.name(),
            "python3",
            "-c",
            &script,
        ])
        .spawn()
        .expect("python3 server");
    let ctx = net.take_ctx();
    let (connected_tx, connected_rx) = std::sync::mpsc::channel();
    // Fill the pipe: the peer reads 1000 bytes and then nothing.
    let writer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut s = loop {
            match TcpStream::connect(&ctx, peer) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("connect to the python server: {e}"),
            }
        };
        connected_tx.send(()).unwrap();
        let data = vec![7u8; CHUNK];
        loop {
            if let Err(e) = s.write_all(&data) {
                break e;
            }
        }
    });
    connected_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    let _ = child.wait();
    let err = writer.join().unwrap();
    let errno = err.raw_os_error();
    assert!(
        errno == Some(Errno::ECONNRESET.errno()) || errno == Some(Errno::ETIMEDOUT.errno()),
        "{err:?}"
    );
}

#[test]
fn max_concurrency_refuses_then_recovers() {
    if skip_unless_root("max_concurrency_refuses_then_recovers") {
        return;
    }
    const MAX: usize = 8;
    let mut net = start(1, ThreadMode::Threaded, |c| c.stack.max_concurrency = MAX);
    let addr = net.ours(8084);
    let ctx = net.take_ctx();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        {
            let l = TcpListener::bind(&ctx, addr).unwrap();
            let mut held = Vec::new();
            for _ in 0..MAX {
                held.push(l.accept().unwrap().0);
            }
            // Wait for the kernel to finish its refused attempt, then serve
            // the held connections to EOF and close them.
            rx.recv().unwrap();
            for mut s in held {
                let mut b = Vec::new();
                s.read_to_end(&mut b).unwrap();
            }
            // The stack recovered: one more connection is accepted and served.
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"recovered").unwrap();
        }
        ctx
    });
    net.pair
        .peer
        .spawn(move || {
            let held: Vec<_> = (0..MAX).map(|_| kernel_connect(addr)).collect();
            // Every slot is taken: the next SYN is dropped, the connect times out.
            let r = std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_millis(700));
            assert!(r.is_err(), "connection beyond max_concurrency was accepted");
            tx.send(()).unwrap();
            drop(held);
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut s = loop {
                match std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2)) {
                    Ok(s) => break s,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "never recovered: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            };
            let mut got = String::new();
            s.read_to_string(&mut got).unwrap();
            assert_eq!(got, "recovered");
        })
        .join()
        .unwrap()
        .unwrap();
    server.join().unwrap();
}

#[test]
fn two_cores_spread_flows_and_complete_every_transfer() {
    if skip_unless_root("two_cores_spread_flows_and_complete_every_transfer") {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const N: usize = 64;
    const LEN: usize = 128 * 1024;
    let mut net = start(2, ThreadMode::Threaded, |_| {});
    let addr = net.ours(8085);
    let kserver = kernel_echo_server(&net, 9006, 2 * 10);
    let peer = net.peer(9006);
    let stop = Arc::new(AtomicBool::new(false));
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let servers: Vec<_> = (0..2)
        .map(|_| {
            let ctx = net.take_ctx();
            let stop = Arc::clone(&stop);
            let up_tx = up_tx.clone();
            std::thread::spawn(move || {
                // Our clients on this core to the kernel server first.
                for i in 0..10u8 {
                    let mut s = TcpStream::connect(&ctx, peer).unwrap();
                    let data = vec![i ^ ctx.core() as u8; 32 * 1024];
                    s.write_all(&data).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut back = Vec::new();
                    s.read_to_end(&mut back).unwrap();
                    assert_eq!(back, data);
                }
                // Then every core listens on the same port (as with mTCP) and
                // serves the passive flows it owns.
                let mut served = 0usize;
                {
                    let l = TcpListener::bind(&ctx, addr).unwrap();
                    l.set_nonblocking(true).unwrap();
                    up_tx.send(()).unwrap();
                    while !stop.load(Ordering::Acquire) {
                        match l.accept() {
                            Ok((mut s, _)) => {
                                s.set_nonblocking(false).unwrap();
                                let mut buf = vec![0u8; 65536];
                                loop {
                                    let k = s.read(&mut buf).unwrap();
                                    if k == 0 {
                                        break;
                                    }
                                    s.write_all(&buf[..k]).unwrap();
                                }
                                served += 1;
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_millis(1))
                            }
                            Err(e) => panic!("accept: {e}"),
                        }
                    }
                }
                (served, ctx.stats())
            })
        })
        .collect();
    up_rx.recv().unwrap();
    up_rx.recv().unwrap();
    net.pair
        .peer
        .spawn(move || {
            for i in 0..N {
                let mut s = kernel_connect(addr);
                let data = pattern(LEN, i as u8);
                let mut w = s.try_clone().unwrap();
                let d2 = data.clone();
                let t = std::thread::spawn(move || {
                    w.write_all(&d2).unwrap();
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut back = Vec::new();
                s.read_to_end(&mut back).unwrap();
                t.join().unwrap();
                assert_eq!(back.len(), LEN, "connection {i}");
                assert!(back == data, "connection {i} corrupted");
            }
        })
        .join()
        .unwrap()
        .unwrap();
    stop.store(true, Ordering::Release);
    let results: Vec<_> = servers.into_iter().map(|h| h.join().unwrap()).collect();
    kserver.join().unwrap().unwrap();
    let served: Vec<usize> = results.iter().map(|r| r.0).collect();
    eprintln!(
        "served per core {served:?}; stats {:?}",
        results.iter().map(|r| r.1).collect::<Vec<_>>()
    );
    assert_eq!(served.iter().sum::<usize>(), N);
    assert!(
        served.iter().all(|&s| s > 0),
        "flows on both cores: {served:?}"
    );
    assert!(
        results.iter().all(|r| r.1.rx_packets > 0),
        "both queues received"
    );
}

#[test]
fn run_to_completion_mode_against_the_kernel() {
    if skip_unless_root("run_to_completion_mode_against_the_kernel") {
        return;
    }
    let mut net = start(1, ThreadMode::RunToCompletion, |_| {});
    let kserver = kernel_echo_server(&net, 9007, 200);
    let peer = net.peer(9007);
    let ctx = net.take_ctx();
    for i in 0..200 {
        let mut s = TcpStream::connect(&ctx, peer).unwrap();
        let req = [i as u8; 64];
        s.write_all(&req).unwrap();
        let mut resp = [0u8; 64];
        s.read_exact(&mut resp).unwrap();
        assert_eq!(resp, req);
    }
    kserver.join().unwrap().unwrap();
}

#[test]
fn threaded_mode_pinned_like_mtcp() {
    if skip_unless_root("threaded_mode_pinned_like_mtcp") {
        return;
    }
    // Stack thread and application thread on the same CPU (the stack then
    // never polls: it sleeps in its wait whenever it has nothing to do).
    let mut net = start(1, ThreadMode::Threaded, |c| c.stack.pin = true);
    let kserver = kernel_echo_server(&net, 9008, 200);
    let peer = net.peer(9008);
    let ctx = net.take_ctx();
    let app = std::thread::spawn(move || {
        assert!(ctx.pin_current_thread());
        for i in 0..200 {
            let mut s = TcpStream::connect(&ctx, peer).unwrap();
            let req = [i as u8; 64];
            s.write_all(&req).unwrap();
            let mut resp = [0u8; 64];
            s.read_exact(&mut resp).unwrap();
            assert_eq!(resp, req);
        }
        ctx
    });
    let _ctx = app.join().unwrap();
    kserver.join().unwrap().unwrap();
}

/// `ping` (iputils-ping) from the kernel namespace gets our echo replies:
/// the steering program hands ICMP to our address to the stack, whose
/// netif answers echo requests (RFC 1122 section 3.2.2.6). Our namespace's
/// kernel has no address, so without ICMP steering nobody would answer.
#[test]
fn kernel_ping_gets_our_echo_replies() {
    if skip_unless_root("kernel_ping_gets_our_echo_replies") {
        return;
    }
    if std::process::Command::new("ping")
        .arg("-V")
        .output()
        .is_err()
    {
        panic!("ping not found: install iputils-ping (cargo xtask deps)");
    }
    let net = start(1, ThreadMode::Threaded, |_| {});
    let ours = net.pair.our_ip.to_string();
    let out = net
        .pair
        .peer
        .exec("ping", &["-n", "-c", "3", "-i", "0.2", "-W", "2", &ours])
        .expect("ping gets replies");
    assert!(
        out.contains("3 packets transmitted, 3 received"),
        "ping output: {out}"
    );
    // Larger payloads too (still one frame): the reply echoes them whole.
    let out = net
        .pair
        .peer
        .exec(
            "ping",
            &["-n", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1400", &ours],
        )
        .expect("ping with 1400-byte payloads gets replies");
    assert!(
        out.contains("2 packets transmitted, 2 received"),
        "ping output: {out}"
    );
}

/// An ICMP error for one of our flows reaches the engine over AF_XDP: our
/// client connects through the kernel namespace (our gateway) to an address
/// the kernel routes as `prohibit`, so the kernel answers the SYN with ICMP
/// destination unreachable, code 13 (communication administratively
/// prohibited). tcp-core treats that as a hard error in SYN-SENT (RFC 5927
/// section 4.1; RFC 9293 section 3.10.7.3 MAY-handle), so connect fails
/// with ECONNREFUSED at once instead of retrying the SYN until ETIMEDOUT.
#[test]
fn icmp_prohibited_fails_our_connect_with_econnrefused() {
    if skip_unless_root("icmp_prohibited_fails_our_connect_with_econnrefused") {
        return;
    }
    let mut net = start(1, ThreadMode::Threaded, |c| {
        let a = c.net.address.octets();
        c.net.gateway = Some(std::net::Ipv4Addr::new(a[0], a[1], a[2], 2));
    });
    assert_eq!(
        net.pair.peer_ip.octets()[3],
        2,
        "the gateway set above is the kernel's address"
    );
    // TEST-NET-2 (RFC 5737): off our subnet, so it goes to the gateway.
    let target = "198.51.100.7";
    // The kernel only sends ICMP for a prohibit route when forwarding.
    net.pair
        .peer
        .exec("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"])
        .expect("enable forwarding in the kernel namespace");
    net.pair
        .peer
        .ip(&["route", "add", "prohibit", &format!("{target}/32")])
        .expect("prohibit route");
    let ctx = net.take_ctx();
    let dst = SocketAddrV4::new(target.parse().unwrap(), 80);
    let (tx, rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        let t = Instant::now();
        let r = TcpStream::connect(&ctx, dst).map(|_| ());
        let _ = tx.send((r, t.elapsed()));
        ctx
    });
    // Without the ICMP error the SYN would be retried (first RTO 1 s) until
    // the connect timed out; with it the attempt ends within a round trip.
    let (r, took) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("connect ended within 10 s (no ICMP error seen?)");
    let e = r.expect_err("connect to a prohibited destination fails");
    assert_eq!(
        e.raw_os_error(),
        Some(Errno::ECONNREFUSED.errno()),
        "connect error: {e}"
    );
    assert!(
        took < Duration::from_millis(900),
        "refused before the first SYN retransmission, took {took:?}"
    );
    drop(client.join().unwrap());
}
