//! Property tests that cross-check our parsers and emitters against `etherparse`
//! 0.16, an independent implementation, on random packets:
//!
//! - reprs emitted by us parse identically with etherparse;
//! - packets built by etherparse parse identically with ours;
//! - on random bytes and random mutations of valid packets both libraries agree
//!   on acceptance and on every field whenever both accept (up to documented
//!   differences: we skip unknown TCP options, etherparse stops at them), and
//!   our parsers never panic;
//! - repr -> emit -> parse is the identity.

use std::net::Ipv4Addr;

use etherparse::{
    icmpv4::{DestUnreachableHeader, TimeExceededCode},
    Ethernet2Header, IcmpEchoHeader, Icmpv4Header, Icmpv4Slice, Icmpv4Type, IpFragOffset, IpNumber,
    Ipv4Dscp, Ipv4Ecn, Ipv4Header, Ipv4HeaderSlice, Ipv4Slice, LinkHeader, NetHeaders,
    PacketBuilder, PacketHeaders, TcpHeader, TcpOptionElement, TcpOptionReadError, TransportHeader,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use wire::ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
use wire::icmp::{DstUnreachable, IcmpPacket, IcmpQuote, IcmpRepr, TimeExceeded};
use wire::ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
use wire::tcp::{TcpPacket, MAX_SACK_BLOCKS};
use wire::{Error, SeqNumber, TcpFlags, TcpOptions, TcpRepr};

/// `n` cases, or `PROPTEST_CASES` when set (for long runs).
fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        // Filtered strategies (options that fit in 40 bytes) reject some inputs.
        max_global_rejects: n.saturating_mul(4).max(100_000),
        max_local_rejects: n.saturating_mul(4).max(100_000),
        ..ProptestConfig::default()
    }
}

fn arb_addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

// ---------------------------------------------------------------- TCP ----

/// Our options, restricted to those that fit in 40 bytes.
fn arb_tcp_options() -> impl Strategy<Value = TcpOptions> {
    (
        option::of(any::<u16>()),
        option::of(0u8..=14),
        any::<bool>(),
        option::of(any::<(u32, u32)>()),
        vec(any::<(u32, u32)>(), 0..=MAX_SACK_BLOCKS),
    )
        .prop_map(|(mss, window_scale, sack_permitted, timestamps, blocks)| {
            let mut o = TcpOptions {
                mss,
                window_scale,
                sack_permitted,
                timestamps,
                ..TcpOptions::default()
            };
            for (slot, (l, r)) in o.sack_blocks.iter_mut().zip(&blocks) {
                *slot = (SeqNumber(*l), SeqNumber(*r));
            }
            o.sack_count = blocks.len() as u8;
            o
        })
        .prop_filter("options fit in 40 bytes", |o| o.emitted_len() <= 40)
}

/// A TCP repr with an empty payload, plus the payload to put in it.
fn arb_tcp_repr() -> impl Strategy<Value = (TcpRepr<'static>, Vec<u8>)> {
    (
        any::<(u16, u16, u32, u32, u8, u16, u16)>(),
        arb_tcp_options(),
        vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |((src_port, dst_port, seq, ack, flags, window, urgent), options, payload)| {
                (
                    TcpRepr {
                        src_port,
                        dst_port,
                        seq: SeqNumber(seq),
                        ack: SeqNumber(ack),
                        flags: TcpFlags(flags),
                        window,
                        urgent,
                        options,
                        payload: &[],
                    },
                    payload,
                )
            },
        )
}

fn arb_ep_option() -> impl Strategy<Value = TcpOptionElement> {
    prop_oneof![
        Just(TcpOptionElement::Noop),
        any::<u16>().prop_map(TcpOptionElement::MaximumSegmentSize),
        // Any shift, so that clamping to 14 is exercised.
        any::<u8>().prop_map(TcpOptionElement::WindowScale),
        Just(TcpOptionElement::SelectiveAcknowledgementPermitted),
        (any::<(u32, u32)>(), vec(any::<(u32, u32)>(), 0..=3)).prop_map(|(first, rest)| {
            let mut more = [None; 3];
            for (slot, b) in more.iter_mut().zip(rest) {
                *slot = Some(b);
            }
            TcpOptionElement::SelectiveAcknowledgement(first, more)
        }),
        any::<(u32, u32)>().prop_map(|(v, e)| TcpOptionElement::Timestamp(v, e)),
    ]
}

/// An etherparse TCP header with random fields and options that fit.
fn arb_ep_tcp() -> impl Strategy<Value = TcpHeader> {
    (
        any::<(u16, u16, u32, u32, u8, bool, u16, u16)>(),
        vec(arb_ep_option(), 0..6),
    )
        .prop_filter_map(
            "options fit in 40 bytes",
            |((sp, dp, seq, ack, flags, ns, window, urgent), opts)| {
                let mut h = TcpHeader::new(sp, dp, seq, window);
                h.acknowledgment_number = ack;
                h.urgent_pointer = urgent;
                set_ep_flags(&mut h, TcpFlags(flags));
                h.ns = ns; // ignored by us: not part of TcpFlags
                h.set_options(&opts).ok()?;
                Some(h)
            },
        )
}

fn set_ep_flags(h: &mut TcpHeader, f: TcpFlags) {
    h.fin = f.contains(TcpFlags::FIN);
    h.syn = f.contains(TcpFlags::SYN);
    h.rst = f.contains(TcpFlags::RST);
    h.psh = f.contains(TcpFlags::PSH);
    h.ack = f.contains(TcpFlags::ACK);
    h.urg = f.contains(TcpFlags::URG);
    h.ece = f.contains(TcpFlags::ECE);
    h.cwr = f.contains(TcpFlags::CWR);
}

fn ep_flags(h: &TcpHeader) -> TcpFlags {
    let mut f = TcpFlags::empty();
    for (on, bit) in [
        (h.fin, TcpFlags::FIN),
        (h.syn, TcpFlags::SYN),
        (h.rst, TcpFlags::RST),
        (h.psh, TcpFlags::PSH),
        (h.ack, TcpFlags::ACK),
        (h.urg, TcpFlags::URG),
        (h.ece, TcpFlags::ECE),
        (h.cwr, TcpFlags::CWR),
    ] {
        if on {
            f |= bit;
        }
    }
    f
}

/// What our parser should make of a list of etherparse option elements: the
/// last of each kind wins, window scale clamped to 14 (RFC 7323 section 2.3).
fn expected_options(elems: &[TcpOptionElement]) -> TcpOptions {
    let mut o = TcpOptions::default();
    for e in elems {
        match *e {
            TcpOptionElement::Noop => {}
            TcpOptionElement::MaximumSegmentSize(m) => o.mss = Some(m),
            TcpOptionElement::WindowScale(s) => o.window_scale = Some(s.min(14)),
            TcpOptionElement::SelectiveAcknowledgementPermitted => o.sack_permitted = true,
            TcpOptionElement::SelectiveAcknowledgement(first, more) => {
                let mut blocks = [(SeqNumber(0), SeqNumber(0)); MAX_SACK_BLOCKS];
                let mut n = 0;
                for (l, r) in core::iter::once(first).chain(more.iter().flatten().copied()) {
                    blocks[n] = (SeqNumber(l), SeqNumber(r));
                    n += 1;
                }
                o.sack_blocks = blocks;
                o.sack_count = n as u8;
            }
            TcpOptionElement::Timestamp(v, e) => o.timestamps = Some((v, e)),
        }
    }
    o
}

/// The repr our parser should produce for an etherparse header and payload.
fn expected_tcp<'a>(h: &TcpHeader, elems: &[TcpOptionElement], payload: &'a [u8]) -> TcpRepr<'a> {
    TcpRepr {
        src_port: h.source_port,
        dst_port: h.destination_port,
        seq: SeqNumber(h.sequence_number),
        ack: SeqNumber(h.acknowledgment_number),
        flags: ep_flags(h),
        window: h.window_size,
        urgent: h.urgent_pointer,
        options: expected_options(elems),
        payload,
    }
}

fn ep_tcp_bytes(h: &mut TcpHeader, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    h.checksum = h
        .calc_checksum_ipv4_raw(src.octets(), dst.octets(), payload)
        .unwrap();
    let mut v = h.to_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// Both parsers on the same bytes: they must agree on acceptance and fields.
fn tcp_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let src = Ipv4Addr::new(1, 2, 3, 4);
    let ours = TcpRepr::parse_bytes(bytes, src, src, false);
    let theirs = TcpHeader::from_slice(bytes);
    match (ours, theirs) {
        (Ok(r), Ok((h, payload))) => {
            let elems: Result<Vec<_>, _> = h.options_iterator().collect();
            match elems {
                Ok(elems) => prop_assert_eq!(r, expected_tcp(&h, &elems, payload)),
                // etherparse stops at unknown kinds; we skip them by length.
                Err(TcpOptionReadError::UnknownId(_)) => {
                    let mut r2 = r;
                    r2.options = TcpOptions::default();
                    prop_assert_eq!(r2, expected_tcp(&h, &[], payload));
                }
                Err(e) => prop_assert!(false, "we accept options etherparse rejects: {e:?}"),
            }
        }
        (Err(Error::BadOption), Ok((h, _))) => {
            prop_assert!(
                h.options_iterator().any(|o| o.is_err()),
                "we reject options etherparse accepts"
            );
        }
        (Err(Error::Truncated | Error::Malformed), Err(_)) => {}
        (ours, theirs) => prop_assert!(false, "disagree: ours {ours:?} theirs {theirs:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn tcp_round_trip((repr, payload) in arb_tcp_repr(), src in arb_addr(), dst in arb_addr()) {
        let repr = TcpRepr { payload: &payload, ..repr };
        let mut buf = vec![0u8; repr.buffer_len() + 7];
        let n = repr.emit(&mut buf, src, dst).unwrap();
        prop_assert_eq!(n, repr.buffer_len());
        prop_assert_eq!(n % 4, payload.len() % 4);
        prop_assert_eq!(TcpRepr::parse_bytes(&buf[..n], src, dst, true), Ok(repr));
        // Any shorter buffer is an error, never a panic.
        prop_assert_eq!(repr.emit(&mut buf[..n - 1], src, dst), Err(Error::BufferTooSmall));
    }

    #[test]
    fn tcp_ours_parsed_by_etherparse((repr, payload) in arb_tcp_repr(), src in arb_addr(), dst in arb_addr()) {
        let repr = TcpRepr { payload: &payload, ..repr };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf, src, dst).unwrap();
        let (h, their_payload) = TcpHeader::from_slice(&buf).unwrap();
        let elems: Vec<_> = h.options_iterator().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(expected_tcp(&h, &elems, their_payload), repr);
        prop_assert!(!h.ns);
        prop_assert_eq!(
            h.calc_checksum_ipv4_raw(src.octets(), dst.octets(), their_payload).unwrap(),
            h.checksum
        );
    }

    #[test]
    fn tcp_etherparse_parsed_by_ours(mut h in arb_ep_tcp(), payload in vec(any::<u8>(), 0..300),
                                     src in arb_addr(), dst in arb_addr()) {
        let bytes = ep_tcp_bytes(&mut h, src, dst, &payload);
        let elems: Vec<_> = h.options_iterator().collect::<Result<_, _>>().unwrap();
        let ours = TcpRepr::parse_bytes(&bytes, src, dst, true).unwrap();
        prop_assert_eq!(ours, expected_tcp(&h, &elems, &payload));
        // The view agrees with the repr.
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(p.header_len(), h.header_len());
        prop_assert_eq!(p.checksum(), h.checksum);
        prop_assert_eq!(p.payload(), &payload[..]);
        // A wrong address breaks the checksum, unless it sums the same.
        let other = Ipv4Addr::from(u32::from(src) ^ 0x0100_0000);
        prop_assert_eq!(TcpRepr::parse_bytes(&bytes, other, dst, true), Err(Error::BadChecksum));
    }

    #[test]
    fn tcp_random_bytes_agree(bytes in vec(any::<u8>(), 0..100)) {
        tcp_agree(&bytes)?;
    }

    #[test]
    fn tcp_random_options_agree(head in any::<[u8; 20]>(), opts in vec(
        prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(4), Just(5), Just(8), 0u8..12, any::<u8>()],
        0..=40usize), payload in vec(any::<u8>(), 0..8)) {
        // A valid data offset covering the random options area, biased towards
        // kinds and small lengths so that option parsing is exercised.
        let words = opts.len().div_ceil(4);
        let mut bytes = head.to_vec();
        bytes[12] = ((5 + words) as u8) << 4 | (bytes[12] & 0x0f);
        bytes.extend_from_slice(&opts);
        bytes.resize(20 + words * 4, 0);
        bytes.extend_from_slice(&payload);
        tcp_agree(&bytes)?;
    }

    #[test]
    fn tcp_mutations_agree(mut h in arb_ep_tcp(), payload in vec(any::<u8>(), 0..40),
                           edits in vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let src = Ipv4Addr::new(1, 2, 3, 4);
        let mut bytes = ep_tcp_bytes(&mut h, src, src, &payload);
        let hl = h.header_len();
        for (i, v) in edits {
            // Mostly inside the header, where the structure is.
            let i = i % if i % 4 == 0 { bytes.len() } else { hl };
            bytes[i] = v;
        }
        if cut % 5 == 0 {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        tcp_agree(&bytes)?;
        // With checksum verification: never a panic, and a mutated segment whose
        // checksum no longer holds is rejected.
        let verified = TcpRepr::parse_bytes(&bytes, src, src, true);
        if TcpPacket::new_checked(&bytes[..]).is_ok_and(|p| !p.verify_checksum(src, src)) {
            prop_assert_eq!(verified, Err(Error::BadChecksum));
        }
    }
}

// --------------------------------------------------------------- IPv4 ----

fn arb_ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
    (
        arb_addr(),
        arb_addr(),
        any::<u8>(),
        0usize..2000,
        any::<(u8, u8, u16, bool, bool)>(),
        0u16..8192,
    )
        .prop_map(
            |(src_addr, dst_addr, proto, payload_len, (ttl, dscp_ecn, ident, df, mf), off)| {
                Ipv4Repr {
                    src_addr,
                    dst_addr,
                    protocol: IpProtocol::from(proto),
                    payload_len,
                    ttl,
                    dscp_ecn,
                    ident,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset: off * 8,
                }
            },
        )
}

fn arb_ep_ipv4() -> impl Strategy<Value = Ipv4Header> {
    (
        any::<([u8; 4], [u8; 4], u8, u8, u16, bool, bool)>(),
        (0u8..64, 0u8..4, 0u16..8192),
        0usize..11,
        any::<[u8; 40]>(),
    )
        .prop_map(
            |((source, destination, ttl, proto, ident, df, mf), (dscp, ecn, off), words, opts)| {
                let mut h = Ipv4Header {
                    dscp: Ipv4Dscp::try_new(dscp).unwrap(),
                    ecn: Ipv4Ecn::try_new(ecn).unwrap(),
                    identification: ident,
                    dont_fragment: df,
                    more_fragments: mf,
                    fragment_offset: IpFragOffset::try_new(off).unwrap(),
                    time_to_live: ttl,
                    protocol: IpNumber(proto),
                    source,
                    destination,
                    ..Ipv4Header::default()
                };
                h.options = opts[..words * 4].try_into().unwrap();
                h
            },
        )
}

fn expected_ipv4(h: &Ipv4Header) -> Ipv4Repr {
    Ipv4Repr {
        src_addr: Ipv4Addr::from(h.source),
        dst_addr: Ipv4Addr::from(h.destination),
        protocol: IpProtocol::from(h.protocol.0),
        payload_len: usize::from(h.total_len) - h.header_len(),
        ttl: h.time_to_live,
        dscp_ecn: h.dscp.value() << 2 | h.ecn.value(),
        ident: h.identification,
        dont_frag: h.dont_fragment,
        more_frags: h.more_fragments,
        frag_offset: h.fragment_offset.byte_offset(),
    }
}

/// IP protocol 51 (AH): etherparse's `Ipv4Slice` also parses the extension.
const AUTH: u8 = 51;

fn ipv4_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let ours = Ipv4Packet::new_checked(bytes).and_then(|p| Ipv4Repr::parse(&p, false));
    if bytes.get(9) == Some(&AUTH) {
        return Ok(());
    }
    match (ours, Ipv4Slice::from_slice(bytes)) {
        (Ok(r), Ok(s)) => {
            let h = s.header().to_header();
            prop_assert_eq!(r, expected_ipv4(&h));
            let p = Ipv4Packet::new_checked(bytes).unwrap();
            prop_assert_eq!(p.payload(), s.payload().payload);
            prop_assert_eq!(p.options(), &h.options[..]);
            // Checksum verdicts agree, up to the two encodings of zero. etherparse
            // recomputes from its header struct, which has no reserved flag bit,
            // so that case is left out.
            if bytes[6] & 0x80 == 0 {
                let calc = h.calc_header_checksum();
                let ep_ok = calc == h.header_checksum || (calc == 0 && h.header_checksum == 0xffff);
                prop_assert_eq!(Ipv4Repr::parse(&p, true).is_ok(), ep_ok);
            }
        }
        (Err(_), Err(_)) => {}
        (ours, theirs) => prop_assert!(false, "disagree: ours {ours:?} theirs {theirs:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn ipv4_round_trip(repr in arb_ipv4_repr()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        prop_assert_eq!(repr.emit(&mut buf), Ok(20));
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&p, true), Ok(repr));
        prop_assert_eq!(repr.is_fragment(), repr.more_frags || repr.frag_offset != 0);
    }

    #[test]
    fn ipv4_ours_parsed_by_etherparse(repr in arb_ipv4_repr()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        let h = Ipv4HeaderSlice::from_slice(&buf).unwrap().to_header();
        prop_assert_eq!(expected_ipv4(&h), repr);
        prop_assert_eq!(h.calc_header_checksum(), h.header_checksum);
        prop_assert!(&h.options[..].is_empty());
        if repr.protocol != IpProtocol::Unknown(AUTH) {
            prop_assert!(Ipv4Slice::from_slice(&buf).is_ok());
        }
    }

    #[test]
    fn ipv4_etherparse_parsed_by_ours(mut h in arb_ep_ipv4(), payload in vec(any::<u8>(), 0..100),
                                      padding in 0usize..20) {
        h.set_payload_len(payload.len()).unwrap();
        let mut bytes = Vec::new();
        h.write(&mut bytes).unwrap();
        bytes.extend_from_slice(&payload);
        bytes.resize(bytes.len() + padding, 0xee); // link-layer padding
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        let r = Ipv4Repr::parse(&p, true).unwrap();
        prop_assert_eq!(r, expected_ipv4(&h));
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_eq!(p.options(), &h.options[..]);
    }

    #[test]
    fn ipv4_random_bytes_agree(mut bytes in vec(any::<u8>(), 0..80), fix_version in any::<bool>()) {
        if fix_version && !bytes.is_empty() {
            bytes[0] = 0x40 | (bytes[0] & 0x0f);
        }
        ipv4_agree(&bytes)?;
    }

    #[test]
    fn ipv4_mutations_agree(mut h in arb_ep_ipv4(), payload in vec(any::<u8>(), 0..40),
                            edits in vec((0usize..60, any::<u8>()), 1..4), cut in any::<usize>()) {
        h.set_payload_len(payload.len()).unwrap();
        let mut bytes = Vec::new();
        h.write(&mut bytes).unwrap();
        bytes.extend_from_slice(&payload);
        for (i, v) in edits {
            let i = i % bytes.len();
            bytes[i] = v;
        }
        if cut % 4 == 0 {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        ipv4_agree(&bytes)?;
    }
}

// --------------------------------------------------------------- ICMP ----

fn arb_quote_parts() -> impl Strategy<Value = (Ipv4Repr, Vec<u8>)> {
    (
        arb_ipv4_repr().prop_map(|r| Ipv4Repr {
            payload_len: r.payload_len.min(65515),
            ..r
        }),
        vec(any::<u8>(), 8..40),
    )
}

/// An ICMP repr kind and its parts; the test builds the borrowed repr.
#[derive(Debug, Clone)]
enum IcmpCase {
    Echo {
        request: bool,
        ident: u16,
        seq_no: u16,
        data: Vec<u8>,
    },
    Unreachable {
        code: u8,
        mtu: u16,
        quote: (Ipv4Repr, Vec<u8>),
    },
    TimeExceeded {
        code: u8,
        quote: (Ipv4Repr, Vec<u8>),
    },
}

impl IcmpCase {
    fn repr(&self) -> IcmpRepr<'_> {
        match self {
            IcmpCase::Echo {
                request,
                ident,
                seq_no,
                data,
            } => {
                let (ident, seq_no, data) = (*ident, *seq_no, &data[..]);
                if *request {
                    IcmpRepr::EchoRequest {
                        ident,
                        seq_no,
                        data,
                    }
                } else {
                    IcmpRepr::EchoReply {
                        ident,
                        seq_no,
                        data,
                    }
                }
            }
            IcmpCase::Unreachable { code, mtu, quote } => IcmpRepr::DstUnreachable {
                reason: DstUnreachable::from_code(*code).unwrap(),
                next_hop_mtu: if *code == 4 { *mtu } else { 0 },
                quote: IcmpQuote {
                    header: quote.0,
                    data: &quote.1,
                },
            },
            IcmpCase::TimeExceeded { code, quote } => IcmpRepr::TimeExceeded {
                reason: TimeExceeded::from_code(*code).unwrap(),
                quote: IcmpQuote {
                    header: quote.0,
                    data: &quote.1,
                },
            },
        }
    }
}

fn arb_icmp_case() -> impl Strategy<Value = IcmpCase> {
    prop_oneof![
        (any::<(bool, u16, u16)>(), vec(any::<u8>(), 0..100)).prop_map(
            |((request, ident, seq_no), data)| IcmpCase::Echo {
                request,
                ident,
                seq_no,
                data
            }
        ),
        (0u8..16, any::<u16>(), arb_quote_parts())
            .prop_map(|(code, mtu, quote)| IcmpCase::Unreachable { code, mtu, quote }),
        (0u8..2, arb_quote_parts())
            .prop_map(|(code, quote)| IcmpCase::TimeExceeded { code, quote }),
    ]
}

/// Our view of an etherparse ICMP type, or `None` for types we do not handle.
fn icmp_matches(ours: &IcmpRepr<'_>, t: &Icmpv4Type) -> bool {
    match (ours, t) {
        (
            IcmpRepr::EchoRequest { ident, seq_no, .. },
            Icmpv4Type::EchoRequest(IcmpEchoHeader { id, seq }),
        )
        | (
            IcmpRepr::EchoReply { ident, seq_no, .. },
            Icmpv4Type::EchoReply(IcmpEchoHeader { id, seq }),
        ) => ident == id && seq_no == seq,
        (
            IcmpRepr::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            },
            Icmpv4Type::DestinationUnreachable(d),
        ) => {
            reason.code() == d.code_u8()
                && match d {
                    DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: m } => {
                        m == next_hop_mtu
                    }
                    _ => true,
                }
        }
        (IcmpRepr::TimeExceeded { reason, .. }, Icmpv4Type::TimeExceeded(c)) => {
            reason.code() == c.code_u8()
        }
        _ => false,
    }
}

fn icmp_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let ours = IcmpRepr::parse_bytes(bytes, false);
    match Icmpv4Slice::from_slice(bytes) {
        // etherparse also checks the fixed length of timestamp messages (types
        // 13 and 14), which we do not handle at all.
        Err(_) if bytes.len() >= 8 => {
            prop_assert!(matches!(bytes[0], 13 | 14));
            prop_assert_eq!(ours, Err(Error::Unsupported));
        }
        Err(_) => prop_assert_eq!(ours, Err(Error::Truncated)),
        Ok(s) => {
            let t = s.icmp_type();
            let handled = matches!(
                t,
                Icmpv4Type::EchoRequest(_)
                    | Icmpv4Type::EchoReply(_)
                    | Icmpv4Type::DestinationUnreachable(_)
                    | Icmpv4Type::TimeExceeded(_)
            );
            match ours {
                Ok(r) => {
                    prop_assert!(icmp_matches(&r, &t), "ours {r:?} theirs {t:?}");
                    match r {
                        IcmpRepr::EchoRequest { data, .. } | IcmpRepr::EchoReply { data, .. } => {
                            prop_assert_eq!(data, s.payload())
                        }
                        IcmpRepr::DstUnreachable { quote, .. }
                        | IcmpRepr::TimeExceeded { quote, .. } => {
                            let qh = Ipv4HeaderSlice::from_slice(s.payload()).unwrap();
                            let qh = qh.to_header();
                            prop_assert_eq!(quote.header.src_addr, Ipv4Addr::from(qh.source));
                            prop_assert_eq!(quote.header.dst_addr, Ipv4Addr::from(qh.destination));
                            prop_assert_eq!(quote.header.protocol, IpProtocol::from(qh.protocol.0));
                            prop_assert_eq!(quote.data, &s.payload()[qh.header_len()..]);
                        }
                    }
                }
                Err(Error::Unsupported) => prop_assert!(!handled, "we reject {t:?}"),
                // A handled type whose quote is not an IPv4 header plus 8 bytes.
                Err(Error::Truncated | Error::Malformed) => {
                    prop_assert!(handled && bytes.len() >= 8)
                }
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn icmp_round_trip(case in arb_icmp_case()) {
        let repr = case.repr();
        let mut buf = vec![0u8; repr.buffer_len()];
        prop_assert_eq!(repr.emit(&mut buf), Ok(buf.len()));
        prop_assert_eq!(IcmpRepr::parse_bytes(&buf, true), Ok(repr));
        let n = buf.len();
        prop_assert_eq!(repr.emit(&mut buf[..n - 1]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn icmp_ours_parsed_by_etherparse(case in arb_icmp_case()) {
        let repr = case.repr();
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        let s = Icmpv4Slice::from_slice(&buf).unwrap();
        prop_assert!(icmp_matches(&repr, &s.icmp_type()), "{:?} vs {:?}", repr, s.icmp_type());
        let with_sum = Icmpv4Header::with_checksum(s.icmp_type(), s.payload());
        prop_assert_eq!(with_sum.checksum, s.checksum());
        icmp_agree(&buf)?;
    }

    #[test]
    fn icmp_etherparse_parsed_by_ours(kind in 0u8..4, a in any::<u16>(), b in any::<u16>(),
                                      code in any::<u8>(), mut ip in arb_ep_ipv4(),
                                      rest in vec(any::<u8>(), 8..40)) {
        let (t, payload) = match kind {
            0 | 1 => {
                let echo = IcmpEchoHeader { id: a, seq: b };
                let t = if kind == 0 { Icmpv4Type::EchoRequest(echo) } else { Icmpv4Type::EchoReply(echo) };
                (t, rest.clone())
            }
            _ => {
                ip.total_len = ip.header_len() as u16 + a % 1000;
                let mut q = Vec::new();
                ip.write(&mut q).unwrap();
                q.extend_from_slice(&rest);
                let t = if kind == 2 {
                    let d = DestUnreachableHeader::from_values(code % 16, b).unwrap();
                    Icmpv4Type::DestinationUnreachable(d)
                } else {
                    Icmpv4Type::TimeExceeded(TimeExceededCode::from_u8(code % 2).unwrap())
                };
                (t, q)
            }
        };
        let h = Icmpv4Header::with_checksum(t.clone(), &payload);
        let mut bytes = Vec::new();
        h.write(&mut bytes).unwrap();
        bytes.extend_from_slice(&payload);
        let r = IcmpRepr::parse_bytes(&bytes, true).unwrap();
        prop_assert!(icmp_matches(&r, &t), "ours {r:?} theirs {t:?}");
        if let Some(q) = r.quote() {
            prop_assert_eq!(q.header, expected_ipv4(&ip));
            prop_assert_eq!(q.data, &rest[..]);
            let tcp = q.tcp();
            prop_assert_eq!(tcp.is_some(), ip.protocol == IpNumber::TCP && ip.fragment_offset.value() == 0);
            if let Some(t) = tcp {
                prop_assert_eq!(t.src_port, u16::from_be_bytes([rest[0], rest[1]]));
                prop_assert_eq!(t.seq, SeqNumber(u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]])));
            }
        }
        icmp_agree(&bytes)?;
    }

    #[test]
    fn icmp_random_bytes_agree(mut bytes in vec(any::<u8>(), 0..80), ty in prop_oneof![Just(0u8), Just(3), Just(8), Just(11), any::<u8>()]) {
        if !bytes.is_empty() {
            bytes[0] = ty;
        }
        icmp_agree(&bytes)?;
        let _ = IcmpRepr::parse_bytes(&bytes, true);
    }

    #[test]
    fn icmp_mutations_agree(case in arb_icmp_case(), edits in vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
        let repr = case.repr();
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        for (i, v) in edits {
            let i = i % buf.len().min(40);
            buf[i] = v;
        }
        if cut % 4 == 0 {
            buf.truncate(cut % (buf.len() + 1));
        }
        icmp_agree(&buf)?;
        let verified = IcmpRepr::parse_bytes(&buf, true);
        if IcmpPacket::new_checked(&buf[..]).is_ok_and(|p| !p.verify_checksum()) {
            prop_assert_eq!(verified, Err(Error::BadChecksum));
        }
    }
}

// ------------------------------------------------- Ethernet, ARP, stack ----

fn arb_mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn ethernet_agrees_and_round_trips(bytes in vec(any::<u8>(), 0..40)) {
        let ours = EthernetFrame::new_checked(&bytes[..]).and_then(|f| EthernetRepr::parse(&f));
        match (ours, Ethernet2Header::from_slice(&bytes)) {
            (Ok(r), Ok((h, rest))) => {
                prop_assert_eq!(r.src_addr.0, h.source);
                prop_assert_eq!(r.dst_addr.0, h.destination);
                prop_assert_eq!(u16::from(r.ethertype), h.ether_type.0);
                prop_assert_eq!(EthernetFrame::new_checked(&bytes[..]).unwrap().payload(), rest);
                let mut out = [0u8; 14];
                prop_assert_eq!(r.emit(&mut out), Ok(14));
                prop_assert_eq!(&out[..], &bytes[..14]);
            }
            (Err(Error::Truncated), Err(_)) => prop_assert!(bytes.len() < 14),
            (ours, theirs) => prop_assert!(false, "disagree: {ours:?} {theirs:?}"),
        }
    }

    #[test]
    fn arp_round_trip(request in any::<bool>(), sha in arb_mac(), spa in arb_addr(), tha in arb_mac(), tpa in arb_addr()) {
        let r = ArpRepr {
            operation: if request { ArpOperation::Request } else { ArpOperation::Reply },
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        };
        let mut buf = [0u8; 28];
        prop_assert_eq!(r.emit(&mut buf), Ok(28));
        let p = ArpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(ArpRepr::parse(&p), Ok(r));
        prop_assert_eq!(p.source_hardware_addr(), &sha.0[..]);
        prop_assert_eq!(p.target_protocol_addr(), &tpa.octets()[..]);
    }

    #[test]
    fn arp_random_bytes_model(mut bytes in vec(any::<u8>(), 0..40), fix in any::<bool>()) {
        if fix && bytes.len() >= 8 {
            bytes[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
            bytes[6] = 0;
            bytes[7] %= 4;
        }
        // A direct reading of RFC 826 as the model.
        let model = if bytes.len() < 8
            || bytes.len() < 8 + 2 * (usize::from(bytes[4]) + usize::from(bytes[5]))
        {
            Err(Error::Truncated)
        } else if bytes[..6] != [0, 1, 8, 0, 6, 4] || bytes[6] != 0 || !(1..=2).contains(&bytes[7]) {
            Err(Error::Unsupported)
        } else {
            Ok((bytes[7], &bytes[8..14], &bytes[14..18], &bytes[18..24], &bytes[24..28]))
        };
        let ours = ArpPacket::new_checked(&bytes[..]).and_then(|p| ArpRepr::parse(&p));
        match (ours, model) {
            (Ok(r), Ok((op, sha, spa, tha, tpa))) => {
                prop_assert_eq!(r.operation.to_u16(), u16::from(op));
                prop_assert_eq!(&r.source_hardware_addr.0[..], sha);
                prop_assert_eq!(&r.source_protocol_addr.octets()[..], spa);
                prop_assert_eq!(&r.target_hardware_addr.0[..], tha);
                prop_assert_eq!(&r.target_protocol_addr.octets()[..], tpa);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (ours, model) => prop_assert!(false, "ours {ours:?} model {model:?}"),
        }
    }

    /// A whole frame built by etherparse parses layer by layer with ours.
    #[test]
    fn stack_etherparse_built_parsed_by_ours(src_mac in any::<[u8; 6]>(), dst_mac in any::<[u8; 6]>(),
                                             src in arb_addr(), dst in arb_addr(), ttl in any::<u8>(),
                                             h in arb_ep_tcp(), payload in vec(any::<u8>(), 0..200)) {
        let elems: Vec<_> = h.options_iterator().collect::<Result<_, _>>().unwrap();
        let builder = PacketBuilder::ethernet2(src_mac, dst_mac)
            .ipv4(src.octets(), dst.octets(), ttl)
            .tcp_header(h.clone());
        let mut frame = Vec::new();
        builder.write(&mut frame, &payload).unwrap();
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        let er = EthernetRepr::parse(&eth).unwrap();
        prop_assert_eq!(er.src_addr.0, src_mac);
        prop_assert_eq!(er.ethertype, EtherType::Ipv4);
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let ir = Ipv4Repr::parse(&ip, true).unwrap();
        prop_assert_eq!((ir.src_addr, ir.dst_addr, ir.ttl, ir.protocol), (src, dst, ttl, IpProtocol::Tcp));
        let tr = TcpRepr::parse_bytes(ip.payload(), src, dst, true).unwrap();
        let want = expected_tcp(&h, &elems, &payload);
        prop_assert_eq!(tr, want);
    }

    /// A whole frame built by us parses with etherparse.
    #[test]
    fn stack_ours_parsed_by_etherparse(src_mac in arb_mac(), dst_mac in arb_mac(),
                                       ip in arb_ipv4_repr(), (tcp, payload) in arb_tcp_repr()) {
        let tcp = TcpRepr { payload: &payload, ..tcp };
        let ip = Ipv4Repr { protocol: IpProtocol::Tcp, payload_len: tcp.buffer_len(),
                            more_frags: false, frag_offset: 0, ..ip };
        let mut frame = vec![0u8; 14 + ip.buffer_len()];
        let eth = EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, ethertype: EtherType::Ipv4 };
        let mut n = eth.emit(&mut frame).unwrap();
        n += ip.emit(&mut frame[n..]).unwrap();
        n += tcp.emit(&mut frame[n..], ip.src_addr, ip.dst_addr).unwrap();
        prop_assert_eq!(n, frame.len());
        let ph = PacketHeaders::from_ethernet_slice(&frame).unwrap();
        match ph.link {
            Some(LinkHeader::Ethernet2(e)) => prop_assert_eq!(e.destination, dst_mac.0),
            other => prop_assert!(false, "link {other:?}"),
        }
        let iph = match ph.net {
            Some(NetHeaders::Ipv4(h, _)) => h,
            other => return Err(TestCaseError::fail(format!("net {other:?}"))),
        };
        prop_assert_eq!(expected_ipv4(&iph), ip);
        match ph.transport {
            Some(TransportHeader::Tcp(h)) => {
                let elems: Vec<_> = h.options_iterator().collect::<Result<_, _>>().unwrap();
                prop_assert_eq!(expected_tcp(&h, &elems, &payload), tcp);
                prop_assert_eq!(
                    h.calc_checksum_ipv4(&iph, &payload).unwrap(),
                    h.checksum
                );
            }
            other => prop_assert!(false, "transport {other:?}"),
        }
    }
}

// -------------------------------------------------------- never panic ----

proptest! {
    #![proptest_config(cases(2048))]

    /// Every parser and every accessor of a checked view, on arbitrary bytes.
    #[test]
    fn parsers_never_panic(bytes in vec(any::<u8>(), 0..128)) {
        let a = Ipv4Addr::new(9, 9, 9, 9);
        let _ = TcpRepr::parse_bytes(&bytes, a, a, true);
        if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
            let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags(),
                     p.window_len(), p.checksum(), p.urgent_at(), p.payload(), p.options(),
                     p.payload_len(), p.verify_checksum(a, a));
            for o in p.options_iter() { let _ = o; }
        }
        let _ = TcpOptions::parse(&bytes);
        if let Ok(p) = Ipv4Packet::new_checked(&bytes[..]) {
            let _ = Ipv4Repr::parse(&p, true);
            let _ = (p.payload(), p.options(), p.frag_offset(), p.verify_checksum());
        }
        let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&bytes[..]), true);
        let _ = Ipv4Repr::parse_quoted(&bytes);
        let _ = IcmpRepr::parse_bytes(&bytes, true);
        let _ = IcmpRepr::parse_bytes(&bytes, false).map(|r| r.quote().map(|q| q.tcp()));
        if let Ok(p) = ArpPacket::new_checked(&bytes[..]) {
            let _ = ArpRepr::parse(&p);
            let _ = (p.source_hardware_addr(), p.source_protocol_addr(),
                     p.target_hardware_addr(), p.target_protocol_addr());
        }
        let _ = ArpRepr::parse(&ArpPacket::new_unchecked(&bytes[..]));
        let _ = EthernetRepr::parse(&EthernetFrame::new_unchecked(&bytes[..]));
    }

    /// Emitting into any buffer size returns an error instead of panicking.
    #[test]
    fn emit_never_panics((repr, payload) in arb_tcp_repr(), extra in any::<TcpOptions2>(), len in 0usize..400) {
        let mut repr = TcpRepr { payload: &payload, ..repr };
        repr.options.sack_count = extra.0;
        repr.options.window_scale = extra.1;
        let mut buf = vec![0u8; len];
        let a = Ipv4Addr::new(1, 1, 1, 1);
        match repr.emit(&mut buf, a, a) {
            Ok(n) => prop_assert!(n <= len && n == repr.buffer_len()),
            Err(Error::BufferTooSmall) => prop_assert!(len < repr.buffer_len()),
            Err(Error::Unrepresentable) => prop_assert!(repr.header_len() > 60),
            Err(e) => prop_assert!(false, "{e:?}"),
        }
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    /// IPv4, ICMP, Ethernet and ARP emitters on any repr and any buffer size.
    #[test]
    fn other_emitters_never_panic(repr in arb_ipv4_repr(), payload_len in any::<usize>(),
                                  frag_offset in any::<u16>(), case in arb_icmp_case(),
                                  len in 0usize..120) {
        let mut buf = vec![0u8; len];
        let ip = Ipv4Repr { payload_len, frag_offset, ..repr };
        match ip.emit(&mut buf) {
            Ok(n) => prop_assert!(n == 20 && len >= 20),
            Err(Error::Unrepresentable) => {
                prop_assert!(ip.buffer_len() > 65535 || frag_offset % 8 != 0)
            }
            Err(e) => prop_assert!(e == Error::BufferTooSmall && len < 20),
        }
        let mut icmp = case.repr();
        if let IcmpRepr::DstUnreachable { quote, .. } | IcmpRepr::TimeExceeded { quote, .. } =
            &mut icmp
        {
            quote.header.payload_len = payload_len;
        }
        match icmp.emit(&mut buf) {
            Ok(n) => prop_assert_eq!(n, icmp.buffer_len()),
            Err(Error::BufferTooSmall) => prop_assert!(len < icmp.buffer_len()),
            Err(e) => prop_assert!(e == Error::Unrepresentable && icmp.quote().is_some()),
        }
        let eth = EthernetRepr {
            src_addr: EthernetAddress::BROADCAST,
            dst_addr: EthernetAddress::UNSPECIFIED,
            ethertype: EtherType::Arp,
        };
        prop_assert_eq!(eth.emit(&mut buf).is_ok(), len >= 14);
        let arp = ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: eth.src_addr,
            source_protocol_addr: ip.src_addr,
            target_hardware_addr: eth.dst_addr,
            target_protocol_addr: ip.dst_addr,
        };
        prop_assert_eq!(arp.emit(&mut buf).is_ok(), len >= 28);
    }
}

/// Out-of-range option values for `emit_never_panics`: any SACK count, any shift.
#[derive(Debug, Clone, Copy)]
struct TcpOptions2(u8, Option<u8>);

impl Arbitrary for TcpOptions2 {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        (any::<u8>(), option::of(any::<u8>()))
            .prop_map(|(c, s)| TcpOptions2(c, s))
            .boxed()
    }
}
