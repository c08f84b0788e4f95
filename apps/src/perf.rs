//! perf's workloads, server and client side:
//!
//! - `short`: connect, send a `size`-byte request, receive a `size`-byte
//!   response, the server closes (mTCP's headline 64 B transactions);
//! - `pingpong`: persistent connections, one `size`-byte message in flight
//!   each, echoed;
//! - `bulk`: the client writes as fast as it can, the server discards.
//!
//! The request/response clients are the shared [`client`](crate::client)
//! engine with [`FixedSize`]; bulk has its own small loop here.

use crate::client::{run_load, FixedSize, LoadPlan, LoadStats};
use crate::net::{would_block, Fd, NetContext, StopFlag};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The three workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// One request and response per connection; the server closes.
    Short,
    /// Persistent connections, one message in flight, echoed.
    Pingpong,
    /// One-way stream, client to server.
    Bulk,
}

impl Workload {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Short => "short",
            Workload::Pingpong => "pingpong",
            Workload::Bulk => "bulk",
        }
    }
}

/// Per-core figures of the perf server.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PerfServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Connections that ended with an error.
    pub errors: u64,
}

impl PerfServerStats {
    /// Adds another core's figures.
    pub fn merge(&mut self, o: &PerfServerStats) {
        self.accepted += o.accepted;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.errors += o.errors;
    }
}

/// Largest write or read per call.
const CHUNK: usize = 64 * 1024;
/// Echo owed beyond this stops reading until it is written (bounded memory).
const MAX_OWED: usize = 4 * CHUNK;

#[derive(Default)]
struct Conn {
    got: usize,
    owed: usize,
    close_after: bool,
}

/// Serves `workload` with `size`-byte messages on `ctx` until `stop`.
pub fn serve<C: NetContext>(
    ctx: &mut C,
    workload: Workload,
    size: usize,
    addr: SocketAddr,
    stop: &StopFlag,
    ready: &(dyn Fn(SocketAddr) + Sync),
) -> io::Result<PerfServerStats> {
    let listener = ctx.listen(addr, 4096)?;
    ready(ctx.local_addr(listener)?);
    let size = size.max(1);
    let mut stats = PerfServerStats::default();
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut buf = vec![b'r'; CHUNK];
    let out = vec![b'r'; CHUNK];
    let mut events = Vec::with_capacity(1024);
    while !stop.is_stopped() {
        ctx.wait(&mut events, Some(Duration::from_millis(100)))?;
        for ev in events.iter() {
            if ev.fd == listener {
                loop {
                    let fd = match ctx.accept(listener) {
                        Ok(fd) => fd,
                        Err(e) if would_block(&e) => break,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                        Err(_) => {
                            stats.errors += 1;
                            break;
                        }
                    };
                    stats.accepted += 1;
                    if conns.len() <= fd.0 {
                        conns.resize_with(fd.0 + 1, || None);
                    }
                    let conn = conns[fd.0].insert(Conn::default());
                    let r = drive(ctx, fd, conn, workload, size, &mut buf, &out, &mut stats);
                    end(ctx, fd, r, &mut conns, &mut stats);
                }
                continue;
            }
            let Some(Some(conn)) = conns.get_mut(ev.fd.0) else {
                continue;
            };
            let r = drive(ctx, ev.fd, conn, workload, size, &mut buf, &out, &mut stats);
            end(ctx, ev.fd, r, &mut conns, &mut stats);
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

/// `Ok(true)`: keep; `Ok(false)`: close cleanly; `Err`: close, count an error.
fn end<C: NetContext>(
    ctx: &mut C,
    fd: Fd,
    r: io::Result<bool>,
    conns: &mut [Option<Conn>],
    stats: &mut PerfServerStats,
) {
    match r {
        Ok(true) => return,
        Ok(false) => {}
        Err(_) => stats.errors += 1,
    }
    if let Some(slot) = conns.get_mut(fd.0) {
        *slot = None;
    }
    let _ = ctx.close(fd);
}

#[allow(clippy::too_many_arguments)]
fn drive<C: NetContext>(
    ctx: &mut C,
    fd: Fd,
    c: &mut Conn,
    workload: Workload,
    size: usize,
    buf: &mut [u8],
    out: &[u8],
    stats: &mut PerfServerStats,
) -> io::Result<bool> {
    loop {
        while c.owed > 0 {
            match ctx.write(fd, &out[..c.owed.min(out.len())]) {
                Ok(n) => {
                    c.owed -= n;
                    stats.bytes_out += n as u64;
                }
                Err(e) if would_block(&e) => return Ok(true),
                Err(e) => return Err(e),
            }
        }
        if c.close_after {
            return Ok(false);
        }
        if c.owed > MAX_OWED {
            return Ok(true);
        }
        let n = match ctx.read(fd, buf) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if would_block(&e) => return Ok(true),
            Err(e) => return Err(e),
        };
        stats.bytes_in += n as u64;
        match workload {
            Workload::Short => {
                c.got += n;
                if c.got >= size {
                    c.owed = size;
                    c.close_after = true;
                }
            }
            Workload::Pingpong => c.owed += n,
            Workload::Bulk => {}
        }
    }
}

/// The request/response client of `short` and `pingpong` on one core.
pub fn run_client<C: NetContext>(
    ctx: &mut C,
    workload: Workload,
    size: usize,
    plan: &LoadPlan,
    stop: &StopFlag,
) -> io::Result<LoadStats> {
    match workload {
        Workload::Short => run_load(ctx, &FixedSize::new(size, size, false), plan, stop),
        Workload::Pingpong => run_load(ctx, &FixedSize::new(size, size, true), plan, stop),
        Workload::Bulk => run_bulk(ctx, plan, stop),
    }
}

/// The bulk client on one core: `plan.concurrency` connections writing
/// until the deadline (or `plan.requests` chunks of 64 KiB each, if given).
/// `completed` counts chunks written; `bytes_in` holds bytes *sent*.
pub fn run_bulk<C: NetContext>(
    ctx: &mut C,
    plan: &LoadPlan,
    stop: &StopFlag,
) -> io::Result<LoadStats> {
    let mut stats = LoadStats::default();
    let data = vec![b'b'; CHUNK];
    let mut fds = Vec::new();
    let mut open = Vec::new();
    for _ in 0..plan.concurrency.max(1) {
        let fd = ctx.connect(plan.target)?;
        stats.connects += 1;
        fds.push(fd);
        open.push(false);
    }
    let start = Instant::now();
    let deadline = plan.duration.map(|d| start + d);
    let budget = plan.requests.map(|r| r * CHUNK as u64);
    let mut events = Vec::with_capacity(256);
    let mut sent: u64 = 0;
    'run: while !stop.is_stopped() && !deadline.is_some_and(|d| Instant::now() >= d) {
        ctx.wait(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let Some(i) = fds.iter().position(|&f| f == ev.fd) else {
                continue;
            };
            if !open[i] {
                match ctx.connected(ev.fd) {
                    Ok(true) => open[i] = true,
                    Ok(false) => continue,
                    Err(e) => return Err(e),
                }
            }
            loop {
                if budget.is_some_and(|b| sent >= b) {
                    break 'run;
                }
                match ctx.write(ev.fd, &data) {
                    Ok(n) => sent += n as u64,
                    Err(e) if would_block(&e) => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    stats.elapsed = start.elapsed();
    stats.bytes_in = sent;
    stats.completed = sent / CHUNK as u64;
    for fd in fds {
        let _ = ctx.close(fd);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::KernelContext;
    use std::net::Ipv4Addr;
    use std::sync::{mpsc, Mutex};

    /// A one-core kernel perf server on loopback and a client run against it.
    fn run(
        workload: Workload,
        plan: impl Fn(SocketAddr) -> LoadPlan,
    ) -> (LoadStats, PerfServerStats) {
        let stop = StopFlag::new();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        std::thread::scope(|s| {
            let server = s.spawn(|| {
                let mut ctx = KernelContext::new().unwrap();
                serve(
                    &mut ctx,
                    workload,
                    64,
                    (Ipv4Addr::LOCALHOST, 0).into(),
                    &stop,
                    &|a| tx.lock().unwrap().send(a).unwrap(),
                )
                .unwrap()
            });
            let addr = rx.recv().unwrap();
            let mut ctx = KernelContext::new().unwrap();
            let load = run_client(&mut ctx, workload, 64, &plan(addr), &StopFlag::new()).unwrap();
            // Let the server see the last closes.
            std::thread::sleep(Duration::from_millis(200));
            stop.stop();
            (load, server.join().unwrap())
        })
    }

    #[test]
    fn short_connections_count_exactly() {
        let (load, server) = run(Workload::Short, |target| LoadPlan {
            target,
            concurrency: 8,
            requests: Some(500),
            duration: None,
            nodelay: true,
        });
        assert_eq!(load.completed, 500);
        assert_eq!(load.errors, 0);
        assert_eq!(load.connects, 500);
        assert_eq!(load.bytes_in, 500 * 64);
        assert_eq!(load.latency_ns.count(), 500);
        assert_eq!(server.accepted, 500);
        assert_eq!(server.bytes_in, 500 * 64);
        assert_eq!(server.bytes_out, 500 * 64);
        assert!(load.latency_ns.percentile(50.0) > 0);
    }

    #[test]
    fn pingpong_reuses_connections() {
        let (load, server) = run(Workload::Pingpong, |target| LoadPlan {
            target,
            concurrency: 4,
            requests: Some(2000),
            duration: None,
            nodelay: true,
        });
        assert_eq!(load.completed, 2000);
        assert_eq!(load.connects, 4);
        assert_eq!(server.accepted, 4);
        assert_eq!(server.bytes_out, 2000 * 64);
        assert!(load.latency_ns.percentile(99.0) >= load.latency_ns.percentile(50.0));
    }

    #[test]
    fn bulk_delivers_what_it_counts() {
        let (load, server) = run(Workload::Bulk, |target| LoadPlan {
            target,
            concurrency: 1,
            requests: Some(200),
            duration: Some(Duration::from_secs(20)),
            nodelay: false,
        });
        assert!(load.bytes_in >= 200 * CHUNK as u64);
        assert_eq!(server.bytes_in, load.bytes_in);
    }

    #[test]
    fn duration_bounds_the_run() {
        let t = Instant::now();
        let (load, _) = run(Workload::Pingpong, |target| LoadPlan {
            target,
            concurrency: 2,
            requests: None,
            duration: Some(Duration::from_millis(300)),
            nodelay: true,
        });
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(load.completed > 0);
        assert!(load.elapsed >= Duration::from_millis(300));
    }
}
