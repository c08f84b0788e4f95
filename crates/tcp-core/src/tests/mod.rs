//! Conversation-style tests of the engine (smoltcp style): segment templates
//! with struct-update syntax, `send(...) -> replies`, fixtures that put a
//! connection in a given state. The "peer" is the test itself, writing the
//! segments it sends and reading the endpoint's replies.

#![allow(clippy::field_reassign_with_default)]

mod active;
mod data;
mod limits;
mod loopback;
mod options;
mod passive;
mod recovery;
mod state_table;
mod timers;

use std::net::{Ipv4Addr, SocketAddrV4};

use core::time::Duration;

use wire::tcp::TcpOptions;
use wire::{SeqNumber, TcpFlags, TcpRepr};

use crate::{Config, Endpoint, Event, EventKind, Instant, SocketHandle, State};

pub(crate) const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub(crate) const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub(crate) const LOCAL_PORT: u16 = 80;
pub(crate) const REMOTE_PORT: u16 = 49152;
pub(crate) const LOCAL: SocketAddrV4 = SocketAddrV4::new(LOCAL_IP, LOCAL_PORT);
pub(crate) const REMOTE: SocketAddrV4 = SocketAddrV4::new(REMOTE_IP, REMOTE_PORT);

/// The peer's initial sequence number in every fixture.
pub(crate) const PEER_ISS: SeqNumber = SeqNumber(10_000);

pub(crate) const NO_OPTS: TcpOptions = TcpOptions {
    mss: None,
    window_scale: None,
    sack_permitted: false,
    sack_blocks: [(SeqNumber(0), SeqNumber(0)); 4],
    sack_count: 0,
    timestamps: None,
};

/// Template of a segment from the peer to us; fill in with `..SEND`.
pub(crate) const SEND: TcpRepr<'static> = TcpRepr {
    src_port: REMOTE_PORT,
    dst_port: LOCAL_PORT,
    seq: SeqNumber(0),
    ack: SeqNumber(0),
    flags: TcpFlags::empty(),
    window: 65535,
    urgent: 0,
    options: NO_OPTS,
    payload: &[],
};

pub(crate) const SYN: TcpFlags = TcpFlags::SYN;
pub(crate) const ACK: TcpFlags = TcpFlags::ACK;
pub(crate) const FIN: TcpFlags = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);
pub(crate) const RST: TcpFlags = TcpFlags::RST;
pub(crate) const RST_ACK: TcpFlags = TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0);
pub(crate) const SYN_ACK: TcpFlags = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
pub(crate) const PSH_ACK: TcpFlags = TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0);

/// A segment the endpoint sent, parsed back from its bytes (checksum verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Out {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
    pub control: bool,
    /// Urgent pointer field.
    pub urgent: u16,
}

impl Out {
    /// Flags without PSH, for comparisons that do not care about it.
    pub fn base_flags(&self) -> TcpFlags {
        TcpFlags(self.flags.0 & !TcpFlags::PSH.0)
    }
}

/// Configuration with the RFC 7323/2018 options off, so segments in tests
/// are plain; tests of the options switch them on.
pub(crate) fn plain_config() -> Config {
    Config {
        window_scaling: false,
        timestamps: false,
        sack: false,
        ..Config::default()
    }
}

/// A test bench: the endpoint, the current time, and handles.
pub(crate) struct Bench {
    pub ep: Endpoint,
    pub now: Instant,
}

impl Bench {
    pub fn new(cfg: Config) -> Bench {
        Bench {
            ep: Endpoint::with_seed(cfg, 7),
            now: Instant::from_secs(100),
        }
    }

    /// Feed one segment from the peer and collect every reply.
    pub fn send(&mut self, seg: TcpRepr<'_>) -> Vec<Out> {
        self.ep.handle_segment(self.now, REMOTE_IP, LOCAL_IP, &seg);
        self.drain()
    }

    /// Feed several segments as one batch, then collect the replies.
    pub fn send_batch(&mut self, segs: &[TcpRepr<'_>]) -> Vec<Out> {
        for seg in segs {
            self.ep.handle_segment(self.now, REMOTE_IP, LOCAL_IP, seg);
        }
        self.drain()
    }

    /// Collect everything `poll_transmit` has.
    pub fn drain(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Some(t) = self.ep.poll_transmit(self.now, &mut buf) {
            let bytes = &buf[..t.len];
            let repr = TcpRepr::parse_bytes(bytes, t.src, t.dst, true)
                .expect("the endpoint emits valid segments");
            out.push(Out {
                src: t.src,
                dst: t.dst,
                src_port: repr.src_port,
                dst_port: repr.dst_port,
                seq: repr.seq,
                ack: repr.ack,
                flags: repr.flags,
                window: repr.window,
                options: repr.options,
                payload: repr.payload.to_vec(),
                control: t.control,
                urgent: repr.urgent,
            });
            assert!(out.len() < 10_000, "runaway transmit loop");
        }
        out
    }

    /// Advance time by `d`, firing timers on the way, and collect output.
    pub fn advance(&mut self, d: Duration) -> Vec<Out> {
        let end = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.ep.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = end;
        self.ep.handle_timeout(self.now);
        out.extend(self.drain());
        out
    }

    /// All events queued now.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    /// Event kinds for one socket.
    pub fn events_for(&mut self, h: SocketHandle) -> Vec<EventKind> {
        self.events()
            .into_iter()
            .filter(|e| e.socket == h)
            .map(|e| e.kind)
            .collect()
    }

    pub fn state(&self, h: SocketHandle) -> State {
        self.ep.state(h).expect("valid handle")
    }
}

/// An established connection created by a passive open, with sequence
/// numbers of both sides tracked for writing segments.
pub(crate) struct Established {
    pub b: Bench,
    pub h: SocketHandle,
    /// Our ISS.
    pub iss: SeqNumber,
    /// Next sequence number the peer (the test) sends.
    pub peer_nxt: SeqNumber,
    /// Next sequence number we send (as the peer last saw it).
    pub our_nxt: SeqNumber,
}

impl Established {
    /// A segment from the peer at its current sequence number, ACKing all we
    /// sent.
    pub fn seg(&self) -> TcpRepr<'static> {
        TcpRepr {
            seq: self.peer_nxt,
            ack: self.our_nxt,
            flags: ACK,
            ..SEND
        }
    }
}

/// Listen on LOCAL and return the bench and the listener.
pub(crate) fn listening(cfg: Config) -> (Bench, SocketHandle) {
    let mut b = Bench::new(cfg);
    let l = b.ep.listen(LOCAL, 8).expect("listen");
    (b, l)
}

/// Passive open up to SYN-RECEIVED: returns our ISS.
pub(crate) fn syn_received(cfg: Config) -> (Bench, SocketHandle, SeqNumber) {
    let (mut b, l) = listening(cfg);
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        options: TcpOptions {
            mss: Some(1460),
            ..NO_OPTS
        },
        ..SEND
    });
    assert_eq!(out.len(), 1, "SYN-ACK expected: {out:?}");
    assert_eq!(out[0].flags, SYN_ACK);
    assert_eq!(out[0].ack, PEER_ISS + 1);
    (b, l, out[0].seq)
}

/// Passive open, handshake completed and accepted.
pub(crate) fn established_with(cfg: Config) -> Established {
    let (mut b, l, iss) = syn_received(cfg);
    let out = b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    assert!(out.is_empty(), "no reply to the handshake ACK: {out:?}");
    let h = b.ep.accept(l).expect("accept");
    b.events();
    assert_eq!(b.state(h), State::Established);
    Established {
        b,
        h,
        iss,
        peer_nxt: PEER_ISS + 1,
        our_nxt: iss + 1,
    }
}

/// [`established_with`] the plain configuration.
pub(crate) fn established() -> Established {
    established_with(plain_config())
}

/// Active open: SYN sent. Returns the bench, handle and our ISS.
pub(crate) fn syn_sent(cfg: Config) -> (Bench, SocketHandle, SeqNumber) {
    let mut b = Bench::new(cfg);
    let h = b.ep.connect(b.now, LOCAL, REMOTE).expect("connect");
    let out = b.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, SYN);
    assert_eq!(b.state(h), State::SynSent);
    (b, h, out[0].seq)
}

/// Bytes 0, 1, 2, ... of length `n`.
pub(crate) fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// The segments of `out` that carry data.
pub(crate) fn data_segments(out: &[Out]) -> Vec<&Out> {
    out.iter().filter(|o| !o.payload.is_empty()).collect()
}

#[test]
fn fixtures_reach_their_states() {
    let e = established();
    assert_eq!(e.b.state(e.h), State::Established);
    let (b, h, _) = syn_sent(plain_config());
    assert_eq!(b.state(h), State::SynSent);
}

#[test]
fn repeated_polls_are_quiet() {
    let mut e = established();
    assert!(e.b.drain().is_empty());
    assert!(e.b.ep.poll_event().is_none());
}
