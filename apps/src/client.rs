//! The request/response load engine shared by epwget and perf's short and
//! ping-pong clients: per core, a fixed number of connection slots, each
//! looping connect, send request, receive response (timed), then either the
//! next request on the same connection (persistent) or wait for the
//! server's close and start over. Event-driven on one [`NetContext`], like
//! mTCP's epwget.
//!
//! The server closes first in the short-connection workloads, so its side
//! holds TIME-WAIT and the client's ephemeral ports are free at once.

use crate::hist::Histogram;
use crate::net::{would_block, Event, Fd, NetContext, StopFlag};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What a response parser says after new bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// The response needs more bytes.
    More,
    /// The response is complete; `keep_alive` says whether the server keeps
    /// the connection open; `ok` whether it counts as a success.
    Done {
        /// The server keeps the connection.
        keep_alive: bool,
        /// A successful answer (2xx for HTTP).
        ok: bool,
    },
    /// Malformed response: the connection is dropped and counted as an error.
    Bad,
}

/// A request/response protocol spoken by the load engine.
pub trait Protocol: Sync {
    /// Per-response parser state, reset for each response.
    type Parser: Default;
    /// The bytes of one request.
    fn request(&self) -> &[u8];
    /// Feeds received bytes to the parser. Bytes past the end of the
    /// response are ignored (no pipelining).
    fn feed(&self, parser: &mut Self::Parser, data: &[u8]) -> Feed;
    /// Whether the client asks to reuse connections.
    fn persistent(&self) -> bool;
}

/// A fixed-size request and a response of exactly `response_len` bytes
/// (perf's short connections and ping-pong).
#[derive(Clone, Debug)]
pub struct FixedSize {
    request: Vec<u8>,
    response_len: usize,
    persistent: bool,
}

impl FixedSize {
    /// `request_len` bytes out, `response_len` back, over new connections
    /// (`persistent == false`, the server closes) or one connection per slot.
    pub fn new(request_len: usize, response_len: usize, persistent: bool) -> Self {
        FixedSize {
            request: vec![b'q'; request_len],
            response_len: response_len.max(1),
            persistent,
        }
    }
}

impl Protocol for FixedSize {
    type Parser = usize;

    fn request(&self) -> &[u8] {
        &self.request
    }

    fn feed(&self, got: &mut usize, data: &[u8]) -> Feed {
        *got += data.len();
        if *got >= self.response_len {
            Feed::Done {
                keep_alive: self.persistent,
                ok: true,
            }
        } else {
            Feed::More
        }
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

/// Load parameters for one core.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// The server.
    pub target: SocketAddr,
    /// Connection slots on this core.
    pub concurrency: usize,
    /// Responses to complete on this core (`None`: until the deadline).
    pub requests: Option<u64>,
    /// How long to run (`None`: until the request count is reached).
    pub duration: Option<Duration>,
    /// TCP_NODELAY on every connection.
    pub nodelay: bool,
}

/// What one core's load engine measured.
#[derive(Clone, Debug, Default)]
pub struct LoadStats {
    /// Responses completed.
    pub completed: u64,
    /// Completed responses that were not successes (non-2xx).
    pub failed_status: u64,
    /// Connections that failed (refused, reset, malformed answer, early close).
    pub errors: u64,
    /// Connections opened.
    pub connects: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Time from the first connect to the end of the run.
    pub elapsed: Duration,
    /// Round-trip latency in nanoseconds: from connect start (new
    /// connections) or from the request (persistent) to the last response byte.
    pub latency_ns: Histogram,
}

impl LoadStats {
    /// Adds another core's figures (elapsed becomes the longest).
    pub fn merge(&mut self, o: &LoadStats) {
        self.completed += o.completed;
        self.failed_status += o.failed_status;
        self.errors += o.errors;
        self.connects += o.connects;
        self.bytes_in += o.bytes_in;
        self.elapsed = self.elapsed.max(o.elapsed);
        self.latency_ns.merge(&o.latency_ns);
    }

    /// Completed responses per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Sending(usize),
    Receiving,
    /// Response complete; waiting for the server's FIN before closing.
    Draining,
}

struct Slot<P> {
    fd: Option<Fd>,
    phase: Phase,
    start: Instant,
    parser: P,
}

/// Splits `total` over `parts` as evenly as possible: share of part `i`.
pub fn share(total: u64, parts: usize, i: usize) -> u64 {
    let parts = parts.max(1) as u64;
    total / parts + u64::from((i as u64) < total % parts)
}

const NONE: usize = usize::MAX;

/// Runs the load engine on one core until the plan is done or `stop` is raised.
pub fn run_load<C: NetContext, P: Protocol>(
    ctx: &mut C,
    proto: &P,
    plan: &LoadPlan,
    stop: &StopFlag,
) -> io::Result<LoadStats> {
    let mut stats = LoadStats::default();
    let start = Instant::now();
    let deadline = plan.duration.map(|d| start + d);
    let mut slots: Vec<Slot<P::Parser>> = (0..plan.concurrency.max(1))
        .map(|_| Slot {
            fd: None,
            phase: Phase::Connecting,
            start,
            parser: P::Parser::default(),
        })
        .collect();
    // Descriptor -> slot.
    let mut owner: Vec<usize> = Vec::new();
    let mut issued: u64 = 0;
    let mut scratch = vec![0u8; 64 * 1024];
    let mut events = Vec::with_capacity(1024);
    let budget = plan.requests.unwrap_or(u64::MAX);

    let mut engine = Engine {
        proto,
        plan,
        stats: &mut stats,
        owner: &mut owner,
        issued: &mut issued,
        budget,
        scratch: &mut scratch,
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        engine.open(ctx, slot, i);
    }
    loop {
        let now = Instant::now();
        if stop.is_stopped() || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if engine.stats.completed >= budget {
            break;
        }
        if slots.iter().all(|s| s.fd.is_none()) {
            break;
        }
        let timeout = deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        ctx.wait(&mut events, Some(timeout))?;
        for ev in events.iter() {
            let Some(&i) = engine.owner.get(ev.fd.0) else {
                continue;
            };
            if i == NONE {
                continue;
            }
            engine.drive(ctx, &mut slots[i], i, ev);
        }
    }
    stats.elapsed = start.elapsed();
    for slot in &mut slots {
        if let Some(fd) = slot.fd.take() {
            let _ = ctx.close(fd);
        }
    }
    Ok(stats)
}

struct Engine<'a, P: Protocol> {
    proto: &'a P,
    plan: &'a LoadPlan,
    stats: &'a mut LoadStats,
    owner: &'a mut Vec<usize>,
    issued: &'a mut u64,
    budget: u64,
    scratch: &'a mut [u8],
}

impl<P: Protocol> Engine<'_, P> {
    /// Opens a new connection for slot `i` if the request budget allows.
    fn open<C: NetContext>(&mut self, ctx: &mut C, slot: &mut Slot<P::Parser>, i: usize) {
        if *self.issued >= self.budget {
            return;
        }
        slot.start = Instant::now();
        match ctx.connect(self.plan.target) {
            Ok(fd) => {
                *self.issued += 1;
                self.stats.connects += 1;
                if self.owner.len() <= fd.0 {
                    self.owner.resize(fd.0 + 1, NONE);
                }
                self.owner[fd.0] = i;
                slot.fd = Some(fd);
                slot.phase = Phase::Connecting;
                slot.parser = P::Parser::default();
                if self.plan.nodelay {
                    let _ = ctx.set_nodelay(fd, true);
                }
            }
            Err(_) => {
                // Out of ports or descriptors: count it; the slot retries
                // when another slot's connection ends.
                self.stats.errors += 1;
            }
        }
    }

    fn close<C: NetContext>(&mut self, ctx: &mut C, slot: &mut Slot<P::Parser>) {
        if let Some(fd) = slot.fd.take() {
            if let Some(o) = self.owner.get_mut(fd.0) {
                *o = NONE;
            }
            let _ = ctx.close(fd);
        }
    }

    fn fail<C: NetContext>(&mut self, ctx: &mut C, slot: &mut Slot<P::Parser>, i: usize) {
        self.stats.errors += 1;
        self.close(ctx, slot);
        self.open(ctx, slot, i);
    }

    fn drive<C: NetContext>(
        &mut self,
        ctx: &mut C,
        slot: &mut Slot<P::Parser>,
        i: usize,
        ev: &Event,
    ) {
        let Some(fd) = slot.fd else { return };
        loop {
            match slot.phase {
                Phase::Connecting => match ctx.connected(fd) {
                    Ok(true) => slot.phase = Phase::Sending(0),
                    Ok(false) if !ev.error => return,
                    Ok(false) | Err(_) => return self.fail(ctx, slot, i),
                },
                Phase::Sending(off) => {
                    let req = self.proto.request();
                    match ctx.write(fd, &req[off..]) {
                        Ok(n) if off + n >= req.len() => slot.phase = Phase::Receiving,
                        Ok(n) => slot.phase = Phase::Sending(off + n),
                        Err(e) if would_block(&e) => return,
                        Err(_) => return self.fail(ctx, slot, i),
                    }
                }
                Phase::Receiving => match ctx.read(fd, self.scratch) {
                    Ok(0) => return self.fail(ctx, slot, i),
                    Ok(n) => {
                        self.stats.bytes_in += n as u64;
                        match self.proto.feed(&mut slot.parser, &self.scratch[..n]) {
                            Feed::More => {}
                            Feed::Bad => return self.fail(ctx, slot, i),
                            Feed::Done { keep_alive, ok } => {
                                let rtt = slot.start.elapsed();
                                self.stats.completed += 1;
                                self.stats.failed_status += u64::from(!ok);
                                self.stats
                                    .latency_ns
                                    .record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
                                slot.parser = P::Parser::default();
                                if keep_alive && self.proto.persistent() {
                                    if *self.issued >= self.budget {
                                        return self.close(ctx, slot);
                                    }
                                    *self.issued += 1;
                                    slot.start = Instant::now();
                                    slot.phase = Phase::Sending(0);
                                } else {
                                    slot.phase = Phase::Draining;
                                }
                            }
                        }
                    }
                    Err(e) if would_block(&e) => return,
                    Err(_) => return self.fail(ctx, slot, i),
                },
                Phase::Draining => match ctx.read(fd, self.scratch) {
                    // The server closed: our close completes the handshake
                    // without leaving TIME-WAIT on this side.
                    Ok(0) => {
                        self.close(ctx, slot);
                        return self.open(ctx, slot, i);
                    }
                    Ok(_) => {}
                    Err(e) if would_block(&e) => return,
                    Err(_) => {
                        // A reset after a complete answer still ends it.
                        self.close(ctx, slot);
                        return self.open(ctx, slot, i);
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, parts) in [(10u64, 3usize), (0, 2), (7, 7), (1000, 64), (5, 8)] {
            let sum: u64 = (0..parts).map(|i| share(total, parts, i)).sum();
            assert_eq!(sum, total, "{total}/{parts}");
            let max = (0..parts).map(|i| share(total, parts, i)).max().unwrap();
            let min = (0..parts).map(|i| share(total, parts, i)).min().unwrap();
            assert!(max - min <= 1);
        }
    }

    #[test]
    fn fixed_size_parser_counts_bytes() {
        let p = FixedSize::new(64, 64, true);
        assert_eq!(p.request().len(), 64);
        let mut got = 0;
        assert_eq!(p.feed(&mut got, &[0; 30]), Feed::More);
        assert_eq!(
            p.feed(&mut got, &[0; 34]),
            Feed::Done {
                keep_alive: true,
                ok: true
            }
        );
    }

    #[test]
    fn stats_merge_and_rate() {
        let mut a = LoadStats {
            completed: 100,
            elapsed: Duration::from_secs(2),
            ..Default::default()
        };
        a.latency_ns.record(10);
        let mut b = LoadStats {
            completed: 50,
            errors: 2,
            elapsed: Duration::from_secs(1),
            ..Default::default()
        };
        b.latency_ns.record(20);
        a.merge(&b);
        assert_eq!(a.completed, 150);
        assert_eq!(a.errors, 2);
        assert_eq!(a.latency_ns.count(), 2);
        assert!((a.rate() - 75.0).abs() < 1e-9);
    }
}
