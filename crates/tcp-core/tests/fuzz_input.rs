//! Hostile input: random bytes, mutated valid segments (bit flips, field
//! changes, mangled options, wrong ports, sequence and acknowledgment
//! numbers) and raw random `TcpRepr` values (which bypass the parser) fed to
//! `Endpoint::handle_segment` must never panic, and must never change a
//! connection they do not validly belong to (RFC 9293 section 3.10.7.4,
//! RFC 5961).
//!
//! The test plays the peer of one endpoint by hand, so it knows the
//! connection's SND.UNA, SND.NXT and RCV.NXT exactly. After each hostile
//! segment it checks what the endpoint sent back and that the connection's
//! observable state (state, `ConnInfo`, buffered data) is unchanged, then
//! proves the sequence variables are unchanged by continuing the
//! conversation: data at the old RCV.NXT must be accepted and an ACK of the
//! old SND.NXT must acknowledge everything.

use std::net::{Ipv4Addr, SocketAddrV4};

use core::time::Duration;

use proptest::prelude::*;
use tcp_core::{Config, ConnInfo, Endpoint, Instant, SocketHandle, State};
use wire::tcp::TcpOptions;
use wire::{SeqNumber, TcpFlags, TcpRepr};

const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const LOCAL_PORT: u16 = 80;
const PEER_PORT: u16 = 40_000;
const PEER_ISS: u32 = 1_000_000;
/// Bytes the endpoint has sent and the peer has not acknowledged.
const UNACKED: usize = 1000;
/// Bytes the peer sent in order (unread by the application).
const BUFFERED: usize = 500;
/// Offset beyond RCV.NXT of an out-of-order block the peer sent.
const OOO_OFFSET: usize = 3000;
const OOO_LEN: usize = 700;

/// A segment the endpoint sent, parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: SeqNumber,
    ack: SeqNumber,
    flags: TcpFlags,
    len: usize,
}

/// The endpoint under attack with one established connection whose peer is
/// the test.
struct Harness {
    ep: Endpoint,
    now: Instant,
    h: SocketHandle,
    /// RCV.NXT of the endpoint (the peer's next sequence number).
    rcv_nxt: SeqNumber,
    /// SND.UNA and SND.NXT of the endpoint.
    snd_una: SeqNumber,
    snd_nxt: SeqNumber,
    timestamps: bool,
    peer_ts: u32,
}

fn plain(timestamps: bool) -> Config {
    Config {
        window_scaling: false,
        timestamps,
        sack: true,
        delayed_ack: Duration::ZERO,
        nodelay: true,
        ..Config::default()
    }
}

fn drain(ep: &mut Endpoint, now: Instant) -> Vec<Out> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(t) = ep.poll_transmit(now, &mut buf) {
        let repr = TcpRepr::parse_bytes(&buf[..t.len], t.src, t.dst, true)
            .expect("the endpoint emits valid segments");
        out.push(Out {
            src: SocketAddrV4::new(t.src, repr.src_port),
            dst: SocketAddrV4::new(t.dst, repr.dst_port),
            seq: repr.seq,
            ack: repr.ack,
            flags: repr.flags,
            len: repr.payload.len(),
        });
        assert!(out.len() < 1000, "runaway transmit loop");
    }
    out
}

fn local() -> SocketAddrV4 {
    SocketAddrV4::new(LOCAL_IP, LOCAL_PORT)
}

fn peer() -> SocketAddrV4 {
    SocketAddrV4::new(PEER_IP, PEER_PORT)
}

impl Harness {
    /// Handshake by hand, then: the endpoint sends `UNACKED` bytes (not
    /// acknowledged), the peer sends `BUFFERED` bytes in order and an
    /// out-of-order block.
    fn new(timestamps: bool) -> Harness {
        let mut ep = Endpoint::with_seed(plain(timestamps), 42);
        let now = Instant::from_secs(10);
        let l = ep.listen(local(), 8).expect("listen");
        let mut h = Harness {
            ep,
            now,
            h: l,
            rcv_nxt: SeqNumber(PEER_ISS + 1),
            snd_una: SeqNumber(0),
            snd_nxt: SeqNumber(0),
            timestamps,
            peer_ts: 5_000,
        };
        let syn = TcpRepr {
            seq: SeqNumber(PEER_ISS),
            flags: TcpFlags::SYN,
            options: TcpOptions {
                mss: Some(1460),
                sack_permitted: true,
                ..h.opts()
            },
            ..h.template()
        };
        let out = h.feed(&syn);
        assert_eq!(out.len(), 1, "SYN-ACK: {out:?}");
        let iss = out[0].seq;
        h.snd_una = iss + 1;
        h.snd_nxt = iss + 1;
        let ack = h.valid_ack();
        assert!(h.feed(&ack).is_empty());
        h.h = h.ep.accept(l).expect("accept");
        let data = vec![7u8; UNACKED];
        assert_eq!(h.ep.send(h.now, h.h, &data), Ok(UNACKED));
        let out = drain(&mut h.ep, h.now);
        let sent: usize = out.iter().map(|o| o.len).sum();
        assert_eq!(sent, UNACKED);
        h.snd_nxt += UNACKED;
        let payload = vec![1u8; BUFFERED];
        let seg = TcpRepr {
            payload: &payload,
            ..h.valid_ack()
        };
        let out = h.feed(&seg);
        h.rcv_nxt += BUFFERED;
        assert!(out.iter().any(|o| o.ack == h.rcv_nxt), "{out:?}");
        let ooo = vec![2u8; OOO_LEN];
        let seg = TcpRepr {
            seq: h.rcv_nxt + OOO_OFFSET,
            payload: &ooo,
            ..h.valid_ack()
        };
        let out = h.feed(&seg);
        assert!(out.iter().all(|o| o.ack == h.rcv_nxt), "{out:?}");
        while h.ep.poll_event().is_some() {}
        h
    }

    fn opts(&self) -> TcpOptions {
        TcpOptions {
            timestamps: self.timestamps.then_some((self.peer_ts, 0)),
            ..TcpOptions::default()
        }
    }

    fn template(&self) -> TcpRepr<'static> {
        TcpRepr {
            src_port: PEER_PORT,
            dst_port: LOCAL_PORT,
            seq: self.rcv_nxt,
            ack: SeqNumber(0),
            flags: TcpFlags::empty(),
            window: 65_535,
            urgent: 0,
            options: self.opts(),
            payload: &[],
        }
    }

    /// An in-window ACK from the peer acknowledging SND.UNA (nothing new).
    fn valid_ack(&self) -> TcpRepr<'static> {
        TcpRepr {
            seq: self.rcv_nxt,
            ack: self.snd_una,
            flags: TcpFlags::ACK,
            ..self.template()
        }
    }

    fn feed(&mut self, seg: &TcpRepr<'_>) -> Vec<Out> {
        self.feed_from(PEER_IP, LOCAL_IP, seg)
    }

    fn feed_from(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpRepr<'_>) -> Vec<Out> {
        self.ep.handle_segment(self.now, src, dst, seg);
        drain(&mut self.ep, self.now)
    }

    fn snapshot(&mut self) -> Snapshot {
        let mut data = vec![0u8; 1 << 16];
        let n = self.ep.peek(self.h, &mut data).expect("peek");
        data.truncate(n);
        Snapshot {
            state: self.ep.state(self.h).expect("state"),
            info: self.ep.info(self.h).expect("info"),
            data,
            writable: self.ep.writable(self.h).expect("writable"),
        }
    }

    /// The ACK the endpoint must send for an unacceptable segment and as a
    /// challenge: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`.
    fn is_pure_ack(&self, o: &Out) -> bool {
        o.src == local()
            && o.dst == peer()
            && o.flags.ack()
            && !o.flags.syn()
            && !o.flags.rst()
            && !o.flags.fin()
            && o.len == 0
            && o.seq == self.snd_nxt
            && o.ack == self.rcv_nxt
    }

    /// Continue the conversation: the connection must still be in step.
    fn check_in_step(&mut self) -> Result<(), TestCaseError> {
        self.now += Duration::from_millis(1);
        self.peer_ts = self.peer_ts.wrapping_add(10);
        // Fill the gap before the out-of-order block and acknowledge all.
        let fill = vec![3u8; OOO_OFFSET];
        let seg = TcpRepr {
            ack: self.snd_nxt,
            payload: &fill,
            ..self.valid_ack()
        };
        let out = self.feed(&seg);
        let expect = self.rcv_nxt + OOO_OFFSET + OOO_LEN;
        prop_assert!(
            out.iter().any(|o| o.flags.ack() && o.ack == expect),
            "data at the old RCV.NXT not accepted: {out:?}"
        );
        let info = self.ep.info(self.h).expect("info");
        prop_assert_eq!(
            info.bytes_in_flight,
            0,
            "ACK of the old SND.NXT did not ack all"
        );
        prop_assert_eq!(
            self.ep.readable(self.h).expect("readable"),
            BUFFERED + OOO_OFFSET + OOO_LEN
        );
        prop_assert_eq!(self.ep.state(self.h).expect("state"), State::Established);
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    state: State,
    info: ConnInfo,
    data: Vec<u8>,
    writable: usize,
}

// ----------------------------------------------------------------------
// Strategies
// ----------------------------------------------------------------------

fn any_flags() -> impl Strategy<Value = TcpFlags> {
    any::<u8>().prop_map(TcpFlags)
}

/// Flags without RST and SYN (those have their own rules).
fn plain_flags() -> impl Strategy<Value = TcpFlags> {
    any::<u8>().prop_map(|f| TcpFlags(f & !(TcpFlags::RST.0 | TcpFlags::SYN.0)))
}

fn any_options() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        any::<bool>(),
        proptest::array::uniform4((any::<u32>(), any::<u32>())),
        any::<u8>(),
        proptest::option::of((any::<u32>(), any::<u32>())),
    )
        .prop_map(|(mss, ws, sp, blocks, count, ts)| TcpOptions {
            mss,
            window_scale: ws,
            sack_permitted: sp,
            sack_blocks: blocks.map(|(a, b)| (SeqNumber(a), SeqNumber(b))),
            sack_count: count,
            timestamps: ts,
        })
}

#[derive(Debug, Clone)]
struct RawSeg {
    src_ip: u32,
    dst_ip: u32,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    urgent: u16,
    options: TcpOptions,
    payload: Vec<u8>,
}

impl RawSeg {
    fn repr(&self) -> TcpRepr<'_> {
        TcpRepr {
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: SeqNumber(self.seq),
            ack: SeqNumber(self.ack),
            flags: self.flags,
            window: self.window,
            urgent: self.urgent,
            options: self.options,
            payload: &self.payload,
        }
    }
}

/// Any segment at all; addresses and ports biased towards the connection's
/// so that some land on it.
fn raw_seg() -> impl Strategy<Value = RawSeg> {
    let ip = prop_oneof![
        3 => Just(u32::from(PEER_IP)),
        3 => Just(u32::from(LOCAL_IP)),
        1 => any::<u32>(),
    ];
    let port = prop_oneof![
        3 => Just(PEER_PORT),
        1 => Just(PEER_PORT + 1),
        1 => Just(LOCAL_PORT + 1),
        3 => Just(LOCAL_PORT),
        1 => any::<u16>(),
    ];
    (
        (ip.clone(), ip, port.clone(), port),
        (
            any::<u32>(),
            any::<u32>(),
            any_flags(),
            any::<u16>(),
            any::<u16>(),
        ),
        any_options(),
        proptest::collection::vec(any::<u8>(), 0..1600),
    )
        .prop_map(
            |(
                (src_ip, dst_ip, src_port, dst_port),
                (seq, ack, flags, window, urgent),
                options,
                payload,
            )| RawSeg {
                src_ip,
                dst_ip,
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                urgent,
                options,
                payload,
            },
        )
}

fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Everything the endpoint sent that belongs to our connection's 4-tuple.
fn ours(out: &[Out]) -> Vec<&Out> {
    out.iter()
        .filter(|o| o.src == local() && o.dst == peer())
        .collect()
}

proptest! {
    #![proptest_config(cases(2000))]

    /// Random bytes through the parser (with and without checksum
    /// verification) into every kind of socket: no panic; if the bytes do
    /// not name our 4-tuple, the connection is untouched.
    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        verify in any::<bool>(),
        ts in any::<bool>(),
    ) {
        let mut h = Harness::new(ts);
        let before = h.snapshot();
        if let Ok(seg) = TcpRepr::parse_bytes(&bytes, PEER_IP, LOCAL_IP, verify) {
            let foreign = seg.src_port != PEER_PORT || seg.dst_port != LOCAL_PORT;
            let out = h.feed(&seg);
            if foreign {
                prop_assert_eq!(h.snapshot(), before);
                prop_assert!(ours(&out).is_empty(), "{:?}", out);
                h.check_in_step()?;
            }
        }
    }

    /// Raw `TcpRepr` values (any flags, options with impossible values such
    /// as 200 SACK blocks or a window scale of 255) straight into
    /// `handle_segment`: no panic, and a segment for another 4-tuple leaves
    /// the connection alone.
    #[test]
    fn raw_reprs_never_panic(
        segs in proptest::collection::vec(raw_seg(), 1..6),
        ts in any::<bool>(),
        prep in 0u8..4,
    ) {
        let mut h = Harness::new(ts);
        // Put the connection in another state first: FIN-WAIT-1 (we shut
        // down), CLOSE-WAIT (the peer sent FIN), or CLOSING / TIME-WAIT
        // (both, with our FIN acknowledged).
        if prep & 1 != 0 {
            h.ep.shutdown(h.now, h.h).expect("shutdown");
            let _ = drain(&mut h.ep, h.now);
        }
        if prep & 2 != 0 {
            let ack = if prep & 1 != 0 { h.snd_nxt + 1 } else { h.snd_una };
            let fin = TcpRepr {
                ack,
                flags: TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0),
                ..h.valid_ack()
            };
            let _ = h.feed(&fin);
        }
        // A second connection in SYN-SENT for the segments to hit as well.
        let syn_sent = h
            .ep
            .connect(h.now, SocketAddrV4::new(LOCAL_IP, LOCAL_PORT + 1), SocketAddrV4::new(PEER_IP, PEER_PORT + 1))
            .expect("connect");
        let _ = drain(&mut h.ep, h.now);
        for s in &segs {
            let before = h.snapshot();
            let src = Ipv4Addr::from(s.src_ip);
            let dst = Ipv4Addr::from(s.dst_ip);
            let foreign = src != PEER_IP || dst != LOCAL_IP || s.src_port != PEER_PORT || s.dst_port != LOCAL_PORT;
            let out = h.feed_from(src, dst, &s.repr());
            if foreign {
                prop_assert_eq!(h.snapshot(), before, "foreign segment changed the connection");
                prop_assert!(ours(&out).is_empty(), "{:?}", out);
            } else {
                // Whatever it did to our connection, the handle keeps working.
                let _ = h.ep.state(h.h);
                let _ = h.ep.info(h.h);
            }
        }
        // Every socket API call still behaves on whatever state remains.
        let mut buf = [0u8; 64];
        for sock in [h.h, syn_sent] {
            let _ = h.ep.recv(sock, &mut buf);
            let _ = h.ep.send(h.now, sock, b"x");
            let _ = h.ep.shutdown(h.now, sock);
            let _ = h.ep.state(sock);
        }
        let now = h.now + Duration::from_secs(1);
        h.ep.handle_timeout(now);
        let _ = drain(&mut h.ep, now);
    }

    /// A valid segment of the connection with random bit flips: with the
    /// checksum verified, the parser rejects every corrupted copy; without
    /// verification, whatever parses never panics the endpoint.
    #[test]
    fn bit_flipped_segments(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
        ts in any::<bool>(),
    ) {
        let mut h = Harness::new(ts);
        let payload = [9u8; 100];
        let seg = TcpRepr { payload: &payload, ..h.valid_ack() };
        let mut bytes = vec![0u8; 200];
        let n = seg.emit(&mut bytes, PEER_IP, LOCAL_IP).expect("emit");
        bytes.truncate(n);
        let orig = bytes.clone();
        for (i, bit) in &flips {
            let i = i.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        if bytes != orig && flips.len() == 1 {
            prop_assert!(TcpRepr::parse_bytes(&bytes, PEER_IP, LOCAL_IP, true).is_err(),
                "a single bit flip passed the checksum");
        }
        if let Ok(seg) = TcpRepr::parse_bytes(&bytes, PEER_IP, LOCAL_IP, false) {
            let _ = h.feed(&seg);
        }
    }

    /// Segments of another 4-tuple (one of the addresses or ports differs)
    /// with any flags, numbers and data leave the connection untouched.
    #[test]
    fn other_four_tuple_leaves_connection_alone(
        which in 0u8..4,
        other_ip in any::<u32>(),
        other_port in 1u16..,
        seq_off in any::<u32>(),
        ack_off in any::<u32>(),
        flags in any_flags(),
        len in 0usize..1500,
        ts in any::<bool>(),
    ) {
        let mut h = Harness::new(ts);
        let before = h.snapshot();
        let payload = vec![5u8; len];
        let mut src = PEER_IP;
        let mut dst = LOCAL_IP;
        let mut seg = TcpRepr {
            seq: h.rcv_nxt + (seq_off % 4096) as usize,
            ack: h.snd_una + (ack_off % 2048) as usize,
            flags,
            payload: &payload,
            ..h.template()
        };
        match which {
            0 => src = Ipv4Addr::from(other_ip | 1),
            1 => dst = Ipv4Addr::from(other_ip | 1),
            2 => seg.src_port = other_port,
            _ => seg.dst_port = other_port,
        }
        prop_assume!(src != PEER_IP || dst != LOCAL_IP || seg.src_port != PEER_PORT || seg.dst_port != LOCAL_PORT);
        let out = h.feed_from(src, dst, &seg);
        prop_assert_eq!(h.snapshot(), before);
        prop_assert!(ours(&out).is_empty(), "{:?}", out);
        h.check_in_step()?;
    }

    /// RFC 9293 section 3.10.7.4 "first": a segment (no RST, no SYN) that
    /// fails the acceptability test, with any ACK field and data, earns
    /// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` and is dropped: nothing else
    /// changes (MUST-66 for the ACK field of unacceptable segments).
    #[test]
    fn out_of_window_segment_only_earns_an_ack(
        beyond in any::<bool>(),
        dist in 0u32..0x3fff_ffff,
        ack in any::<u32>(),
        flags in plain_flags(),
        len in 1usize..1400,
        window in any::<u16>(),
        ts in any::<bool>(),
    ) {
        let mut h = Harness::new(ts);
        let before = h.snapshot();
        let rcv_wnd = before.info.rcv_wnd;
        let payload = vec![6u8; len];
        let seg_len = len + usize::from(flags.fin());
        let seq = if beyond {
            h.rcv_nxt + rcv_wnd + dist as usize
        } else {
            // Entirely old: ends at or before RCV.NXT - 1.
            SeqNumber(h.rcv_nxt.0.wrapping_sub(seg_len as u32).wrapping_sub(dist + 1))
        };
        let seg = TcpRepr {
            seq,
            ack: SeqNumber(ack),
            flags,
            window,
            payload: &payload,
            ..h.template()
        };
        let out = h.feed(&seg);
        prop_assert!(out.len() <= 1, "{:?}", out);
        for o in &out {
            prop_assert!(h.is_pure_ack(o), "expected <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>: {:?}", o);
        }
        prop_assert_eq!(h.snapshot(), before);
        h.check_in_step()?;
    }

    /// RFC 5961 section 3.2: a RST outside the window is silently dropped.
    #[test]
    fn rst_out_of_window_is_ignored(
        beyond in any::<bool>(),
        dist in 1u32..0x3fff_ffff,
        with_ack in any::<bool>(),
        ack in any::<u32>(),
        ts in any::<bool>(),
    ) {
        let mut h = Harness::new(ts);
        let before = h.snapshot();
        let seq = if beyond {
            h.rcv_nxt + before.info.rcv_wnd + (dist - 1) as usize
        } else {
            SeqNumber(h.rcv_nxt.0.wrapping_sub(dist))
        };
        let flags = if with_ack { TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0) } else { TcpFlags::RST };
        let seg = TcpRepr { seq, ack: SeqNumber(ack), flags, ..h.template() };
        let out = h.feed(&seg);
        prop_assert!(out.is_empty(), "{:?}", out);
        prop_assert_eq!(h.snapshot(), before);
        h.check_in_step()?;
    }

    /// RFC 5961 section 3.2: a RST inside the window but not exactly at
    /// RCV.NXT gets a challenge ACK, not a reset.
    #[test]
    fn rst_in_window_not_exact_gets_challenge_ack(
        off in 1usize..65_535,
        with_ack in any::<bool>(),
        ack in any::<u32>(),
        ts in any::<bool>(),
    ) {
        let mut h = Harness::new(ts);
        let before = h.snapshot();
        prop_assume!(off < before.info.rcv_wnd);
        let flags = if with_ack { TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0) } else { TcpFlags::RST };
        let seg = TcpRepr { seq: h.rcv_nxt + off, ack: SeqNumber(ack), flags, ..h.template() };
        let out = h.feed(&seg);
        prop_assert_eq!(out.len(), 1, "challenge ACK expected: {:?}", out);
        prop_assert!(h.is_pure_ack(&out[0]), "{:?}", out);
        prop_assert_eq!(h.snapshot(), before);
        h.check_in_step()?;
    }

    /// RFC 5961 section 4.2: a SYN in a synchronized state, whatever its
    /// sequence number, gets a challenge ACK and changes nothing.
    #[test]
    fn syn_in_established_gets_challenge_ack(
        seq in any::<u32>(),
        with_ack in any::<bool>(),
        ack in any::<u32>(),
        len in 0usize..100,
        ts in any::<bool>(),
    ) {
        let mut h = Harness::new(ts);
        let before = h.snapshot();
        let payload = vec![8u8; len];
        let flags = if with_ack { TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0) } else { TcpFlags::SYN };
        let seg = TcpRepr { seq: SeqNumber(seq), ack: SeqNumber(ack), flags, payload: &payload, ..h.template() };
        let out = h.feed(&seg);
        prop_assert!(out.len() <= 1, "{:?}", out);
        for o in &out {
            prop_assert!(h.is_pure_ack(o), "challenge ACK expected: {:?}", o);
        }
        prop_assert_eq!(h.snapshot(), before);
        h.check_in_step()?;
    }

    /// RFC 9293 section 3.10.7.4 "fifth" and RFC 5961 section 5.2: an
    /// in-window segment whose ACK acknowledges data not yet sent, or data
    /// older than SND.UNA - MAX.SND.WND, is dropped with an ACK (its data
    /// is not accepted).
    #[test]
    fn unacceptable_ack_is_dropped(
        future in any::<bool>(),
        dist in 1u32..0x3fff_ffff,
        len in 0usize..1000,
        ts in any::<bool>(),
    ) {
        let mut h = Harness::new(ts);
        let before = h.snapshot();
        let ack = if future {
            h.snd_nxt + dist as usize
        } else {
            // Older than SND.UNA - MAX.SND.WND (the peer's window is 65535).
            SeqNumber(h.snd_una.0.wrapping_sub(65_536).wrapping_sub(dist))
        };
        let payload = vec![4u8; len];
        let seg = TcpRepr { ack, payload: &payload, ..h.valid_ack() };
        let out = h.feed(&seg);
        prop_assert!(out.len() <= 1, "{:?}", out);
        for o in &out {
            prop_assert!(h.is_pure_ack(o), "{:?}", o);
        }
        prop_assert_eq!(h.snapshot(), before);
        h.check_in_step()?;
    }

    /// Mangled option bytes in an otherwise valid segment of the
    /// connection (random kinds and lengths, lengths past the header,
    /// zero lengths): parsing either fails with an error or yields options
    /// the endpoint copes with; no panic.
    #[test]
    fn mangled_options_never_panic(
        opt_bytes in proptest::collection::vec(any::<u8>(), 0..=40),
        ts in any::<bool>(),
        syn in any::<bool>(),
    ) {
        let mut h = Harness::new(ts);
        let mut opts = opt_bytes.clone();
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let base = TcpRepr { options: TcpOptions::default(), ..h.valid_ack() };
        let mut bytes = vec![0u8; 100];
        let n = base.emit(&mut bytes, PEER_IP, LOCAL_IP).expect("emit");
        bytes.truncate(n);
        // Rebuild with the mangled option bytes after the 20-byte header.
        let mut pkt = bytes[..20].to_vec();
        pkt.extend_from_slice(&opts);
        let hl = pkt.len() / 4;
        pkt[12] = (hl as u8) << 4;
        if syn {
            pkt[13] |= TcpFlags::SYN.0;
        }
        if let Ok(seg) = TcpRepr::parse_bytes(&pkt, PEER_IP, LOCAL_IP, false) {
            let _ = h.feed(&seg);
            let _ = h.ep.info(h.h);
        }
    }
}

/// RFC 5681 section 4.2: "an immediate ACK SHOULD be generated when a
/// segment fills in all or part of a gap in the sequence space". Here a
/// segment at RCV.NXT fills only the first part of a 3-segment gap.
#[test]
fn partial_hole_fill_is_acked_at_once() {
    let mut cfg = plain(false);
    cfg.delayed_ack = Duration::from_millis(40);
    let mut ep = Endpoint::with_seed(cfg, 1);
    let now = Instant::from_secs(1);
    let l = ep.listen(local(), 8).unwrap();
    let mut seg = TcpRepr {
        src_port: PEER_PORT,
        dst_port: LOCAL_PORT,
        seq: SeqNumber(PEER_ISS),
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 65_535,
        urgent: 0,
        options: TcpOptions::default(),
        payload: &[],
    };
    ep.handle_segment(now, PEER_IP, LOCAL_IP, &seg);
    let out = drain(&mut ep, now);
    let iss = out[0].seq;
    seg.flags = TcpFlags::ACK;
    seg.seq = SeqNumber(PEER_ISS + 1);
    seg.ack = iss + 1;
    ep.handle_segment(now, PEER_IP, LOCAL_IP, &seg);
    let _h = ep.accept(l).unwrap();
    let rcv_nxt = SeqNumber(PEER_ISS + 1);
    let data = [1u8; 1000];
    // Out of order: [R+3000, R+4000) -> immediate duplicate ACK.
    let ooo = TcpRepr {
        seq: rcv_nxt + 3000,
        payload: &data,
        ..seg
    };
    ep.handle_segment(now, PEER_IP, LOCAL_IP, &ooo);
    let out = drain(&mut ep, now);
    assert!(out.iter().any(|o| o.ack == rcv_nxt), "dup ACK: {out:?}");
    // [R, R+1000) fills part of the gap [R, R+3000).
    let fill = TcpRepr {
        seq: rcv_nxt,
        payload: &data,
        ..seg
    };
    ep.handle_segment(now, PEER_IP, LOCAL_IP, &fill);
    let out = drain(&mut ep, now);
    assert!(
        out.iter().any(|o| o.ack == rcv_nxt + 1000),
        "a partial gap fill must be ACKed at once (RFC 5681 section 4.2), got {out:?}"
    );
}
