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
    let mut net = start(1, ThreadMode::Threaded, |_| {});
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
