//! epserver's per-core loop: one listener and one epoll set per core
//! (mTCP's epserver shape), answering GET and HEAD from the in-memory
//! [`FileCache`], with keep-alive and pipelined requests taken in order.

use crate::http::{parse_request, Answer, FileCache, MAX_HEAD};
use crate::net::{would_block, Fd, NetContext, StopFlag};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Per-core figures of the server.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Requests answered (any status).
    pub requests: u64,
    /// 2xx answers.
    pub ok: u64,
    /// 404 answers.
    pub not_found: u64,
    /// 400, 405 and 505 answers.
    pub bad: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Connections that ended with an error (reset, timeout).
    pub errors: u64,
    /// Accept failures (out of descriptors or memory).
    pub accept_errors: u64,
}

impl ServerStats {
    /// Adds another core's figures.
    pub fn merge(&mut self, o: &ServerStats) {
        self.accepted += o.accepted;
        self.requests += o.requests;
        self.ok += o.ok;
        self.not_found += o.not_found;
        self.bad += o.bad;
        self.bytes_out += o.bytes_out;
        self.errors += o.errors;
        self.accept_errors += o.accept_errors;
    }
}

/// Input buffer per connection: one head at most, plus one byte to tell a
/// too-long head.
const IN_BUF: usize = MAX_HEAD + 1;

struct Out {
    answer: Answer,
    off: usize,
}

struct Conn {
    buf: Box<[u8]>,
    len: usize,
    skip: usize,
    out: Option<Out>,
    close_after: bool,
    eof: bool,
    linger: bool,
    drained: usize,
}

/// Input discarded after a bad request before the connection is closed anyway.
const LINGER_MAX: usize = 1 << 20;

/// Whether a connection stays after being driven.
enum Next {
    Keep,
    Close,
    Failed,
}

/// Serves on `ctx` until `stop` is raised. `ready` is called with the bound
/// address once the listener is up.
pub fn serve<C: NetContext>(
    ctx: &mut C,
    addr: SocketAddr,
    backlog: u32,
    cache: &FileCache,
    stop: &StopFlag,
    ready: &(dyn Fn(SocketAddr) + Sync),
) -> io::Result<ServerStats> {
    let listener = ctx.listen(addr, backlog)?;
    ready(ctx.local_addr(listener)?);
    let mut stats = ServerStats::default();
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut pool: Vec<Box<[u8]>> = Vec::new();
    let mut events = Vec::with_capacity(1024);
    while !stop.is_stopped() {
        ctx.wait(&mut events, Some(Duration::from_millis(100)))?;
        for ev in events.iter() {
            if ev.fd == listener {
                accept_all(ctx, listener, &mut conns, &mut pool, cache, &mut stats);
                continue;
            }
            let Some(Some(conn)) = conns.get_mut(ev.fd.0) else {
                continue;
            };
            let next = drive(ctx, ev.fd, conn, cache, &mut stats);
            finish(ctx, ev.fd, next, &mut conns, &mut pool, &mut stats);
        }
    }
    for (i, c) in conns.iter_mut().enumerate() {
        if c.take().is_some() {
            let _ = ctx.close(Fd(i));
        }
    }
    let _ = ctx.close(listener);
    Ok(stats)
}

fn accept_all<C: NetContext>(
    ctx: &mut C,
    listener: Fd,
    conns: &mut Vec<Option<Conn>>,
    pool: &mut Vec<Box<[u8]>>,
    cache: &FileCache,
    stats: &mut ServerStats,
) {
    loop {
        let fd = match ctx.accept(listener) {
            Ok(fd) => fd,
            Err(e) if would_block(&e) => return,
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(_) => {
                stats.accept_errors += 1;
                return;
            }
        };
        stats.accepted += 1;
        if conns.len() <= fd.0 {
            conns.resize_with(fd.0 + 1, || None);
        }
        let buf = pool
            .pop()
            .unwrap_or_else(|| vec![0; IN_BUF].into_boxed_slice());
        let conn = conns[fd.0].insert(Conn {
            buf,
            len: 0,
            skip: 0,
            out: None,
            close_after: false,
            eof: false,
            linger: false,
            drained: 0,
        });
        // The request may already be there; edge-triggered readiness
        // reported before we looked would be lost otherwise.
        let next = drive(ctx, fd, conn, cache, stats);
        finish(ctx, fd, next, conns, pool, stats);
    }
}

fn finish<C: NetContext>(
    ctx: &mut C,
    fd: Fd,
    next: Next,
    conns: &mut [Option<Conn>],
    pool: &mut Vec<Box<[u8]>>,
    stats: &mut ServerStats,
) {
    match next {
        Next::Keep => return,
        Next::Close => {}
        Next::Failed => stats.errors += 1,
    }
    if let Some(conn) = conns.get_mut(fd.0).and_then(Option::take) {
        pool.push(conn.buf);
    }
    let _ = ctx.close(fd);
}

/// Writes pending output, parses and answers requests, reads more: until a
/// call would block or the connection is done.
fn drive<C: NetContext>(
    ctx: &mut C,
    fd: Fd,
    c: &mut Conn,
    cache: &FileCache,
    stats: &mut ServerStats,
) -> Next {
    loop {
        if let Some(out) = c.out.as_mut() {
            let head = out.answer.head.len();
            let total = head + out.answer.body.len();
            while out.off < total {
                let r = if out.off < head {
                    // Head and body in one call.
                    ctx.writev(
                        fd,
                        &[
                            io::IoSlice::new(&out.answer.head[out.off..]),
                            io::IoSlice::new(&out.answer.body),
                        ],
                    )
                } else {
                    ctx.write(fd, &out.answer.body[out.off - head..])
                };
                match r {
                    Ok(n) => {
                        out.off += n;
                        stats.bytes_out += n as u64;
                    }
                    Err(e) if would_block(&e) => return Next::Keep,
                    Err(_) => return Next::Failed,
                }
            }
            c.out = None;
            if c.close_after && !c.linger {
                return Next::Close;
            }
            if c.linger {
                // Closing with unread input would send a reset that can
                // destroy the answer in flight (RFC 9112 section 9.6): send
                // FIN, then drain until the peer closes or LINGER_MAX bytes.
                if ctx.shutdown_write(fd).is_err() {
                    return Next::Close;
                }
                loop {
                    match ctx.read(fd, &mut c.buf[..]) {
                        Ok(0) => return Next::Close,
                        Ok(n) => {
                            c.drained += n;
                            if c.drained > LINGER_MAX {
                                return Next::Close;
                            }
                        }
                        Err(e) if would_block(&e) => return Next::Keep,
                        Err(_) => return Next::Close,
                    }
                }
            }
        }
        if c.skip > 0 {
            let n = c.skip.min(c.len);
            c.buf.copy_within(n..c.len, 0);
            c.len -= n;
            c.skip -= n;
        }
        if c.skip == 0 && c.len > 0 {
            let answered = match parse_request(&c.buf[..c.len]) {
                Ok(None) => None,
                Ok(Some(req)) => {
                    let (code, answer) = cache.answer(&req);
                    Some((code, answer, req.head_len, req.body_len, !req.keep_alive))
                }
                Err(e) => {
                    // Whatever follows a bad head cannot be framed: answer,
                    // then discard input until the peer closes.
                    let (code, answer) = cache.error_answer(e);
                    c.linger = true;
                    Some((code, answer, c.len, 0, true))
                }
            };
            if let Some((code, answer, used, skip, close)) = answered {
                stats.requests += 1;
                match code {
                    200..=299 => stats.ok += 1,
                    404 => stats.not_found += 1,
                    _ => stats.bad += 1,
                }
                c.buf.copy_within(used..c.len, 0);
                c.len -= used;
                c.skip = skip;
                c.close_after = close;
                c.out = Some(Out { answer, off: 0 });
                continue;
            }
        }
        if c.eof {
            // The peer finished sending and every complete request is
            // answered; a partial request left at EOF is dropped.
            return Next::Close;
        }
        let space = if c.skip > 0 {
            // Discarding a body: reuse the whole buffer.
            c.len = 0;
            &mut c.buf[..]
        } else {
            &mut c.buf[c.len..]
        };
        match ctx.read(fd, space) {
            Ok(0) => c.eof = true,
            Ok(n) => c.len += n,
            Err(e) if would_block(&e) => return Next::Keep,
            Err(_) => return Next::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::KernelContext;
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpStream};
    use std::sync::mpsc;

    fn cache() -> FileCache {
        FileCache::from_files([
            ("/index.html".to_string(), b"<p>index</p>".to_vec()),
            (
                "/big.bin".to_string(),
                (0..300_000u32).map(|i| i as u8).collect(),
            ),
        ])
    }

    /// Runs a one-core kernel-socket server on loopback for the duration of `f`.
    fn with_server(f: impl FnOnce(SocketAddr)) -> ServerStats {
        let stop = StopFlag::new();
        let (tx, rx) = mpsc::channel();
        let cache = cache();
        std::thread::scope(|s| {
            let server = s.spawn(|| {
                let mut ctx = KernelContext::new().unwrap();
                let tx = std::sync::Mutex::new(tx);
                serve(
                    &mut ctx,
                    (Ipv4Addr::LOCALHOST, 0).into(),
                    128,
                    &cache,
                    &stop,
                    &move |a| tx.lock().unwrap().send(a).unwrap(),
                )
                .unwrap()
            });
            let addr = rx.recv().unwrap();
            f(addr);
            stop.stop();
            server.join().unwrap()
        })
    }

    fn read_response(s: &mut TcpStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok(Some(h)) = crate::http::parse_response(&buf) {
                let want = h.head_len + h.content_length.unwrap();
                if buf.len() >= want {
                    let head = String::from_utf8(buf[..h.head_len].to_vec()).unwrap();
                    return (head, buf[h.head_len..want].to_vec());
                }
            }
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed early");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    }

    #[test]
    fn two_kernel_cores_share_one_port() {
        use crate::client::LoadPlan;
        use crate::http::HttpGet;
        use crate::kernel::KernelStack;
        use crate::run::{load, serve_http};
        // A free port for both cores' SO_REUSEPORT listeners.
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();
        let stack = KernelStack::new(2, &[]);
        let stop = StopFlag::new();
        let cache = cache();
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        std::thread::scope(|s| {
            let srv = s.spawn(|| {
                serve_http(&stack, addr, 128, &cache, &stop, &|core, _| {
                    tx.lock().unwrap().send(core).unwrap()
                })
            });
            let mut up: Vec<usize> = (0..2).map(|_| rx.recv().unwrap()).collect();
            up.sort();
            assert_eq!(up, [0, 1]);
            let plan = LoadPlan {
                target: addr,
                concurrency: 16,
                requests: Some(1000),
                duration: None,
                nodelay: true,
            };
            let client = KernelStack::new(2, &[]);
            let get = HttpGet::new("t", "/index.html", false);
            let per_core = load(&client, &get, &plan, &StopFlag::new()).unwrap();
            assert_eq!(per_core.iter().map(|c| c.completed).sum::<u64>(), 1000);
            std::thread::sleep(Duration::from_millis(100));
            stop.stop();
            let stats = srv.join().unwrap().unwrap();
            assert_eq!(stats.iter().map(|s| s.ok).sum::<u64>(), 1000);
            // SO_REUSEPORT spread the connections over both listeners.
            assert!(stats.iter().all(|s| s.accepted > 0), "{stats:?}");
        });
    }

    #[test]
    fn epwget_engine_counts_requests_and_connections() {
        use crate::client::{run_load, LoadPlan};
        use crate::http::HttpGet;
        for (keep_alive, want_accepts) in [(false, 300), (true, 8)] {
            let stats = with_server(|addr| {
                let mut ctx = KernelContext::new().unwrap();
                let plan = LoadPlan {
                    target: addr,
                    concurrency: 8,
                    requests: Some(300),
                    duration: None,
                    nodelay: true,
                };
                let get = HttpGet::new("t", "/index.html", keep_alive);
                let load = run_load(&mut ctx, &get, &plan, &StopFlag::new()).unwrap();
                assert_eq!(load.completed, 300);
                assert_eq!(load.errors, 0);
                assert_eq!(load.failed_status, 0);
                assert_eq!(load.latency_ns.count(), 300);
                assert_eq!(load.connects, want_accepts);
                // Missing page: completes, counted as not successful.
                let get = HttpGet::new("t", "/missing", keep_alive);
                let plan = LoadPlan {
                    requests: Some(10),
                    concurrency: 2,
                    ..plan
                };
                let load = run_load(&mut ctx, &get, &plan, &StopFlag::new()).unwrap();
                assert_eq!((load.completed, load.failed_status), (10, 10));
                std::thread::sleep(Duration::from_millis(100));
            });
            assert_eq!(stats.ok, 300, "keep_alive {keep_alive}");
            assert_eq!(stats.not_found, 10);
            if !keep_alive {
                assert_eq!(stats.accepted, 310);
            }
        }
    }

    #[test]
    fn get_head_keep_alive_404_400() {
        let stats = with_server(|addr| {
            let mut s = TcpStream::connect(addr).unwrap();
            // Keep-alive: three requests on one connection, one pipelined pair.
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let (head, body) = read_response(&mut s);
            assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
            assert_eq!(body, b"<p>index</p>");
            s.write_all(b"HEAD /big.bin HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
                .unwrap();
            let mut buf = vec![0u8; 0];
            let mut chunk = [0u8; 1024];
            while !String::from_utf8_lossy(&buf).contains("404 Not Found\n") {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&chunk[..n]);
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let head_part = text.split("\r\n\r\n").next().unwrap();
            assert!(head_part.contains("Content-Length: 300000"), "{text}");
            assert!(text.contains("HTTP/1.1 404 Not Found"));
            // HEAD had no body: the 404 head follows right after.
            assert!(text[head_part.len() + 4..].starts_with("HTTP/1.1 404"));

            // Big file, whole, then close requested.
            s.write_all(b"GET /big.bin HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap();
            let (head, body) = read_response(&mut s);
            assert!(head.contains("Connection: close"));
            assert_eq!(body.len(), 300_000);
            assert!(body.iter().enumerate().all(|(i, &b)| b == i as u8));
            assert!(read_to_close(&mut s).is_empty());

            // Malformed: 400 then close.
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GARBAGE\r\n\r\n").unwrap();
            let all = read_to_close(&mut s);
            assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 400 Bad Request"));

            // Version: 505.
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/3.0\r\n\r\n").unwrap();
            let all = read_to_close(&mut s);
            assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 505"));

            // HTTP/1.0 without keep-alive closes after the answer.
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
            let all = read_to_close(&mut s);
            assert!(String::from_utf8_lossy(&all).ends_with("<p>index</p>"));

            // A request split over several writes.
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            for part in [&b"GE"[..], b"T /index.h", b"tml HTTP/1.1\r", b"\n\r\n"] {
                s.write_all(part).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
            let (_, body) = read_response(&mut s);
            assert_eq!(body, b"<p>index</p>");

            // A head that never ends: 400 once it passes the limit.
            let mut s = TcpStream::connect(addr).unwrap();
            let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
            long.resize(MAX_HEAD + 100, b'a');
            s.write_all(&long).unwrap();
            let all = read_to_close(&mut s);
            assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 400"));
        });
        assert_eq!(stats.accepted, 6);
        assert_eq!(stats.ok, 5); // GET /, HEAD, big, 1.0, split
        assert_eq!(stats.not_found, 1);
        assert_eq!(stats.bad, 3);
        assert_eq!(stats.requests, 9);
    }
}
