//! Two socket tables wired back to back through a tiny in-test link with a
//! virtual clock: every segment one side transmits is parsed and handed to the
//! other (unless the link is cut), and time only moves when a test says so.

#![allow(clippy::field_reassign_with_default)]

mod api;
mod misuse;
mod options;
mod readiness;

use std::net::{Ipv4Addr, SocketAddrV4};

use core::time::Duration;

use tcp_core::{Config, Endpoint, Instant};
use wire::{TcpFlags, TcpRepr};

use crate::{Errno, Fd, Readiness, SocketConfig, SocketTable};

pub(crate) const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub(crate) const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub(crate) const PORT: u16 = 80;
pub(crate) const SERVER: SocketAddrV4 = SocketAddrV4::new(IP_B, PORT);

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    A,
    B,
}

/// A segment that crossed (or tried to cross) the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seg {
    pub from: Side,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub payload: usize,
    pub mss: Option<u16>,
    pub delivered: bool,
}

impl Seg {
    pub fn is_rst(&self) -> bool {
        self.flags.contains(TcpFlags::RST)
    }
}

pub(crate) struct Net {
    pub a: SocketTable,
    pub b: SocketTable,
    pub now: Instant,
    /// Segments in each direction are dropped while set.
    pub cut_a_to_b: bool,
    pub cut_b_to_a: bool,
    pub log: Vec<Seg>,
    buf: Vec<u8>,
}

pub(crate) fn engine_config() -> Config {
    let mut cfg = Config::default();
    cfg.rto_min = Duration::from_millis(200);
    cfg.rto_initial = Duration::from_millis(500);
    cfg.msl = Duration::from_secs(5);
    cfg
}

pub(crate) fn table(ip: Ipv4Addr, cfg: Config, max_fds: u32, seed: u64) -> SocketTable {
    let mut sc = SocketConfig::default();
    sc.max_fds = max_fds;
    sc.local_ips = vec![ip];
    sc.port_seed = seed as u32;
    SocketTable::new(Endpoint::with_seed(cfg, seed), sc)
}

impl Net {
    pub fn new() -> Net {
        Net::with_configs(engine_config(), engine_config(), 64)
    }

    pub fn with_configs(a: Config, b: Config, max_fds: u32) -> Net {
        Net {
            a: table(IP_A, a, max_fds, 1),
            b: table(IP_B, b, max_fds, 2),
            now: Instant::from_secs(1),
            cut_a_to_b: false,
            cut_b_to_a: false,
            log: Vec::new(),
            buf: vec![0; 70_000],
        }
    }

    pub fn side(&mut self, s: Side) -> &mut SocketTable {
        match s {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    /// Move one segment from `from` to the other side; false when `from` has
    /// nothing to send.
    fn step(&mut self, from: Side) -> bool {
        let now = self.now;
        let (tx, rx, cut) = match from {
            Side::A => (&mut self.a, &mut self.b, self.cut_a_to_b),
            Side::B => (&mut self.b, &mut self.a, self.cut_b_to_a),
        };
        let Some(t) = tx.poll_transmit(now, &mut self.buf) else {
            return false;
        };
        let bytes = &self.buf[..t.len];
        let repr = TcpRepr::parse_bytes(bytes, t.src, t.dst, true).expect("engine emits valid TCP");
        self.log.push(Seg {
            from,
            flags: repr.flags,
            seq: repr.seq.0,
            ack: repr.ack.0,
            window: repr.window,
            payload: repr.payload.len(),
            mss: repr.options.mss,
            delivered: !cut,
        });
        if !cut {
            rx.handle_segment(now, t.src, t.dst, &repr);
        }
        true
    }

    /// Deliver segments both ways until both sides are quiet.
    pub fn pump(&mut self) {
        for _ in 0..100_000 {
            let a = self.step(Side::A);
            let b = self.step(Side::B);
            if !a && !b {
                return;
            }
        }
        panic!("link never went quiet");
    }

    /// Let `d` of virtual time pass, running timers when due and pumping.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        self.pump();
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next else { break };
            // A deadline already handled at `now` fires on the next tick.
            let t = if t <= self.now {
                self.now + Duration::from_millis(1)
            } else {
                t
            };
            if t > end {
                break;
            }
            self.now = t;
            self.a.handle_timeout(t);
            self.b.handle_timeout(t);
            self.pump();
        }
        self.now = end;
        self.a.handle_timeout(end);
        self.b.handle_timeout(end);
        self.pump();
    }

    /// Readiness of `fd` on side `s`.
    pub fn ready(&mut self, s: Side, fd: Fd) -> Readiness {
        self.side(s).readiness(fd).expect("open fd")
    }

    /// A listener on B:80 and a connection from A, accepted; returns
    /// (client fd on A, listener fd on B, server fd on B).
    pub fn connected(&mut self) -> (Fd, Fd, Fd) {
        let l = self.b.tcp_socket().unwrap();
        self.b.bind(l, SERVER).unwrap();
        self.b.listen(l, 16).unwrap();
        let c = self.a.tcp_socket().unwrap();
        assert_eq!(self.a.connect(c, SERVER), Err(Errno::EINPROGRESS));
        self.pump();
        let (s, peer) = self.b.accept(l).unwrap();
        assert_eq!(peer, self.a.getsockname(c).unwrap());
        (c, l, s)
    }

    /// Segments sent by `from` carrying data.
    pub fn data_segments(&self, from: Side) -> Vec<&Seg> {
        self.log
            .iter()
            .filter(|s| s.from == from && s.payload > 0)
            .collect()
    }
}

/// Read everything currently readable.
pub(crate) fn read_all(t: &mut SocketTable, fd: Fd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match t.read(fd, &mut buf) {
            Ok(0) | Err(Errno::EAGAIN) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

pub(crate) fn rd(readable: bool, writable: bool, rdhup: bool, hup: bool, err: bool) -> Readiness {
    Readiness {
        readable,
        writable,
        rdhup,
        hup,
        err,
    }
}
