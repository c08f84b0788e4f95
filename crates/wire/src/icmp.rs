//! ICMP for IPv4 (RFC 792): echo request and reply, destination unreachable,
//! time exceeded.
//!
//! Error messages quote the IP header and at least the first 8 bytes of the
//! datagram that caused them (RFC 792; RFC 1812 section 4.3.2.3 lets routers
//! quote more). [`IcmpQuote`] gives both to the caller, and
//! [`IcmpQuote::tcp`] extracts the ports and sequence number that TCP needs to
//! find the connection (RFC 9293 section 3.9.1.4 and RFC 5927 on validating
//! them). Other ICMP types parse as [`Error::Unsupported`]: RFC 1122 section
//! 3.2.2 says unknown types MUST be silently discarded.

use crate::checksum;
use crate::ipv4::{IpProtocol, Ipv4Repr};
use crate::tcp::SeqNumber;
use crate::Error;

/// Byte ranges of the ICMP header.
pub mod field {
    /// A byte range within the message.
    pub type Field = core::ops::Range<usize>;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Message code.
    pub const CODE: usize = 1;
    /// Checksum over the whole message.
    pub const CHECKSUM: Field = 2..4;
    /// Echo identifier.
    pub const ECHO_IDENT: Field = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Field = 6..8;
    /// Next-hop MTU of "fragmentation needed" (RFC 1191 section 4).
    pub const MTU: Field = 6..8;
    /// Start of the data (echo data, or the quoted datagram).
    pub const DATA: usize = 8;
}

/// Length of the ICMP header.
pub const HEADER_LEN: usize = 8;

/// Bytes of the original datagram after its IP header that RFC 792 error
/// messages carry at least.
pub const QUOTED_DATA_LEN: usize = 8;

/// ICMP message types this crate handles.
pub mod msg_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
}

/// Destination unreachable codes (RFC 792, RFC 1122 section 3.2.2.1, RFC 1812
/// section 5.2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0: net unreachable.
    NetUnreachable,
    /// 1: host unreachable.
    HostUnreachable,
    /// 2: protocol unreachable.
    ProtoUnreachable,
    /// 3: port unreachable.
    PortUnreachable,
    /// 4: fragmentation needed and DF set (carries the next-hop MTU, RFC 1191).
    FragRequired,
    /// 5: source route failed.
    SrcRouteFailed,
    /// 6: destination network unknown.
    DstNetUnknown,
    /// 7: destination host unknown.
    DstHostUnknown,
    /// 8: source host isolated.
    SrcHostIsolated,
    /// 9: network administratively prohibited.
    NetProhibited,
    /// 10: host administratively prohibited.
    HostProhibited,
    /// 11: network unreachable for type of service.
    NetUnreachToS,
    /// 12: host unreachable for type of service.
    HostUnreachToS,
    /// 13: communication administratively prohibited.
    CommProhibited,
    /// 14: host precedence violation.
    HostPrecedenceViolation,
    /// 15: precedence cutoff in effect.
    PrecedenceCutoff,
}

impl DstUnreachable {
    const ALL: [DstUnreachable; 16] = [
        DstUnreachable::NetUnreachable,
        DstUnreachable::HostUnreachable,
        DstUnreachable::ProtoUnreachable,
        DstUnreachable::PortUnreachable,
        DstUnreachable::FragRequired,
        DstUnreachable::SrcRouteFailed,
        DstUnreachable::DstNetUnknown,
        DstUnreachable::DstHostUnknown,
        DstUnreachable::SrcHostIsolated,
        DstUnreachable::NetProhibited,
        DstUnreachable::HostProhibited,
        DstUnreachable::NetUnreachToS,
        DstUnreachable::HostUnreachToS,
        DstUnreachable::CommProhibited,
        DstUnreachable::HostPrecedenceViolation,
        DstUnreachable::PrecedenceCutoff,
    ];

    /// The code for a wire value, or `None` for an unassigned one.
    pub fn from_code(code: u8) -> Option<DstUnreachable> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The wire value.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// True for the codes RFC 1122 section 4.2.3.9 calls hard errors for TCP
    /// (protocol unreachable, port unreachable, fragmentation needed); the
    /// others are soft errors a connection attempt survives (RFC 5461).
    pub const fn is_hard_error(self) -> bool {
        matches!(
            self,
            DstUnreachable::ProtoUnreachable
                | DstUnreachable::PortUnreachable
                | DstUnreachable::FragRequired
        )
    }
}

/// Time exceeded codes (RFC 792).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// 0: time to live exceeded in transit.
    TtlExpired,
    /// 1: fragment reassembly time exceeded.
    FragExpired,
}

impl TimeExceeded {
    /// The code for a wire value, or `None` for an unassigned one.
    pub const fn from_code(code: u8) -> Option<TimeExceeded> {
        match code {
            0 => Some(TimeExceeded::TtlExpired),
            1 => Some(TimeExceeded::FragExpired),
            _ => None,
        }
    }
    /// The wire value.
    pub const fn code(self) -> u8 {
        self as u8
    }
}

/// A read/write view of an ICMP message.
///
/// The buffer must hold exactly the message (the IPv4 payload). Accessors on a
/// view built with [`IcmpPacket::new_unchecked`] may panic on a short buffer;
/// [`IcmpPacket::new_checked`] guarantees they do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        IcmpPacket { buffer }
    }
    /// Wrap a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }
    /// [`Error::Truncated`] when the buffer is shorter than the 8-byte header.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }
    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    fn get_u16(&self, f: field::Field) -> u16 {
        let b = &self.buffer.as_ref()[f];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.get_u16(field::CHECKSUM)
    }
    /// Echo identifier (meaningful for echo messages).
    pub fn echo_ident(&self) -> u16 {
        self.get_u16(field::ECHO_IDENT)
    }
    /// Echo sequence number (meaningful for echo messages).
    pub fn echo_seq_no(&self) -> u16 {
        self.get_u16(field::ECHO_SEQNO)
    }
    /// Next-hop MTU (meaningful for "fragmentation needed"; 0 from routers
    /// that predate RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        self.get_u16(field::MTU)
    }
    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> IcmpPacket<&'a T> {
    /// The data after the 8-byte header, borrowed for the buffer's lifetime.
    pub fn data(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer.as_ref();
        &b[field::DATA..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    fn set_u16(&mut self, f: field::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }
    /// Set the message type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }
    /// Set the message code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }
    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM, v);
    }
    /// Set the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        self.set_u16(field::ECHO_IDENT, v);
    }
    /// Set the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.set_u16(field::ECHO_SEQNO, v);
    }
    /// Set bytes 4..8 of the header ("unused" in most error messages).
    pub fn set_rest_of_header(&mut self, v: u32) {
        self.buffer.as_mut()[4..8].copy_from_slice(&v.to_be_bytes());
    }
    /// The data after the header, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }
    /// Compute and write the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// The part of the offending datagram an ICMP error message quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpQuote<'a> {
    /// The quoted IPv4 header (its `payload_len` is the original datagram's).
    pub header: Ipv4Repr,
    /// The bytes after the quoted header: at least 8.
    pub data: &'a [u8],
}

/// What TCP needs from a quoted TCP header to find the connection an ICMP error
/// is about and to check it is plausible (RFC 5927 section 4.1: the sequence
/// number should lie in SND.UNA..SND.NXT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotedTcp {
    /// Source port of the original segment (our local port).
    pub src_port: u16,
    /// Destination port of the original segment (the peer's port).
    pub dst_port: u16,
    /// Sequence number of the original segment.
    pub seq: SeqNumber,
}

impl IcmpQuote<'_> {
    /// Ports and sequence number when the quoted datagram is TCP; `None`
    /// otherwise (or for a non-first fragment, whose data is not a TCP header).
    pub fn tcp(&self) -> Option<QuotedTcp> {
        if self.header.protocol != IpProtocol::Tcp || self.header.frag_offset != 0 {
            return None;
        }
        let d = self.data.get(..QUOTED_DATA_LEN)?;
        Some(QuotedTcp {
            src_port: u16::from_be_bytes([d[0], d[1]]),
            dst_port: u16::from_be_bytes([d[2], d[3]]),
            seq: SeqNumber(u32::from_be_bytes([d[4], d[5], d[6], d[7]])),
        })
    }

    fn parse(bytes: &[u8]) -> Result<IcmpQuote<'_>, Error> {
        let (header, data) = Ipv4Repr::parse_quoted(bytes)?;
        if data.len() < QUOTED_DATA_LEN {
            return Err(Error::Truncated);
        }
        Ok(IcmpQuote { header, data })
    }

    fn emitted_len(&self) -> usize {
        self.header.header_len() + self.data.len()
    }

    /// The quoted header is re-emitted without options; the total length is
    /// the original's, which may exceed what is quoted.
    fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let hl = self.header.emit(buf)?;
        buf[hl..hl + self.data.len()].copy_from_slice(self.data);
        Ok(())
    }
}

/// An ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpRepr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data to be echoed.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier, copied from the request.
        ident: u16,
        /// Sequence number, copied from the request.
        seq_no: u16,
        /// Data, copied from the request.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// The code.
        reason: DstUnreachable,
        /// Next-hop MTU for [`DstUnreachable::FragRequired`] (RFC 1191; 0
        /// from routers that predate it). Always 0 for other codes: their
        /// field is unused, ignored on parse and written as zero (RFC 792).
        next_hop_mtu: u16,
        /// The offending datagram's header and first bytes.
        quote: IcmpQuote<'a>,
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// The code.
        reason: TimeExceeded,
        /// The offending datagram's header and first bytes.
        quote: IcmpQuote<'a>,
    },
}

impl<'a> IcmpRepr<'a> {
    /// Parse a message. With `verify_checksum` the checksum over the whole
    /// message is verified.
    ///
    /// # Errors
    /// [`Error::Truncated`] for a short message or a quote shorter than an IPv4
    /// header plus 8 bytes; [`Error::BadChecksum`]; [`Error::Unsupported`] for
    /// other types or unassigned codes; the quoted header's errors.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &IcmpPacket<&'a T>,
        verify_checksum: bool,
    ) -> Result<IcmpRepr<'a>, Error> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        match (packet.msg_type(), packet.msg_code()) {
            (msg_type::ECHO_REQUEST, 0) => Ok(IcmpRepr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            }),
            (msg_type::ECHO_REPLY, 0) => Ok(IcmpRepr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            }),
            (msg_type::DST_UNREACHABLE, code) => {
                let reason = DstUnreachable::from_code(code).ok_or(Error::Unsupported)?;
                let next_hop_mtu = if reason == DstUnreachable::FragRequired {
                    packet.next_hop_mtu()
                } else {
                    0
                };
                Ok(IcmpRepr::DstUnreachable {
                    reason,
                    next_hop_mtu,
                    quote: IcmpQuote::parse(packet.data())?,
                })
            }
            (msg_type::TIME_EXCEEDED, code) => {
                let reason = TimeExceeded::from_code(code).ok_or(Error::Unsupported)?;
                Ok(IcmpRepr::TimeExceeded {
                    reason,
                    quote: IcmpQuote::parse(packet.data())?,
                })
            }
            _ => Err(Error::Unsupported),
        }
    }

    /// Convenience: [`IcmpPacket::new_checked`] then [`IcmpRepr::parse`].
    pub fn parse_bytes(bytes: &'a [u8], verify_checksum: bool) -> Result<IcmpRepr<'a>, Error> {
        Self::parse(&IcmpPacket::new_checked(bytes)?, verify_checksum)
    }

    /// The quote of an error message, `None` for echo messages.
    pub fn quote(&self) -> Option<&IcmpQuote<'a>> {
        match self {
            IcmpRepr::DstUnreachable { quote, .. } | IcmpRepr::TimeExceeded { quote, .. } => {
                Some(quote)
            }
            _ => None,
        }
    }

    /// Bytes [`emit`](Self::emit) writes: header plus data or quote.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                IcmpRepr::EchoRequest { data, .. } | IcmpRepr::EchoReply { data, .. } => data.len(),
                IcmpRepr::DstUnreachable { quote, .. } | IcmpRepr::TimeExceeded { quote, .. } => {
                    quote.emitted_len()
                }
            }
    }

    /// Write the whole message with its checksum at the start of `buf` and
    /// return its length.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `buf` is shorter than
    /// [`buffer_len`](Self::buffer_len); [`Error::Unrepresentable`] when the
    /// message would not fit in an IPv4 datagram, or a quoted header cannot be
    /// emitted.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        if len > crate::ipv4::MAX_PACKET_LEN - crate::ipv4::HEADER_LEN {
            return Err(Error::Unrepresentable);
        }
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let mut p = IcmpPacket::new_unchecked(buf);
        match *self {
            IcmpRepr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | IcmpRepr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let t = if matches!(self, IcmpRepr::EchoRequest { .. }) {
                    msg_type::ECHO_REQUEST
                } else {
                    msg_type::ECHO_REPLY
                };
                p.set_msg_type(t);
                p.set_msg_code(0);
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                p.data_mut().copy_from_slice(data);
            }
            IcmpRepr::DstUnreachable {
                reason,
                next_hop_mtu,
                quote,
            } => {
                p.set_msg_type(msg_type::DST_UNREACHABLE);
                p.set_msg_code(reason.code());
                let mtu = if reason == DstUnreachable::FragRequired {
                    next_hop_mtu
                } else {
                    0
                };
                p.set_rest_of_header(u32::from(mtu));
                quote.emit(p.data_mut())?;
            }
            IcmpRepr::TimeExceeded { reason, quote } => {
                p.set_msg_type(msg_type::TIME_EXCEEDED);
                p.set_msg_code(reason.code());
                p.set_rest_of_header(0);
                quote.emit(p.data_mut())?;
            }
        }
        p.fill_checksum();
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// `ping` echo request: id 0x1234, seq 1, data "abcd", checksum computed by hand.
    const ECHO: [u8; 12] = [
        0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    fn echo_bytes() -> [u8; 12] {
        // 0x0800 + 0x1234 + 0x0001 + 0x6162 + 0x6364 = 0xdefb; complement 0x2104.
        let mut b = ECHO;
        b[2] = 0x21;
        b[3] = 0x04;
        b
    }

    #[test]
    fn parse_and_emit_known_echo() {
        let b = echo_bytes();
        let r = IcmpRepr::parse_bytes(&b, true).unwrap();
        assert_eq!(
            r,
            IcmpRepr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcd"
            }
        );
        let mut out = [0u8; 12];
        assert_eq!(r.emit(&mut out), Ok(12));
        assert_eq!(out, b);
        assert_eq!(r.emit(&mut [0u8; 11]), Err(Error::BufferTooSmall));
        let reply = IcmpRepr::EchoReply {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcd",
        };
        reply.emit(&mut out).unwrap();
        assert_eq!(out[0], 0);
        assert_eq!(IcmpRepr::parse_bytes(&out, true), Ok(reply));
    }

    /// A port unreachable quoting a TCP SYN from 10.0.0.1:40000 to 10.0.0.2:80.
    fn port_unreachable() -> Vec<u8> {
        let quoted_ip = Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::Tcp,
            payload_len: 40,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let mut msg = vec![3, 3, 0, 0, 0, 0, 0, 0];
        let mut hdr = [0u8; 20];
        quoted_ip.emit(&mut hdr).unwrap();
        msg.extend_from_slice(&hdr);
        msg.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50, 0xde, 0xad, 0xbe, 0xef]);
        let mut p = IcmpPacket::new_unchecked(&mut msg[..]);
        p.fill_checksum();
        msg
    }

    #[test]
    fn unreachable_quote_gives_tcp_tuple() {
        let m = port_unreachable();
        let r = IcmpRepr::parse_bytes(&m, true).unwrap();
        let IcmpRepr::DstUnreachable {
            reason, quote: q, ..
        } = r
        else {
            panic!("wrong kind {r:?}");
        };
        assert_eq!(reason, DstUnreachable::PortUnreachable);
        assert!(reason.is_hard_error());
        assert_eq!(q.header.dst_addr, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            q.tcp(),
            Some(QuotedTcp {
                src_port: 40000,
                dst_port: 80,
                seq: SeqNumber(0xdead_beef)
            })
        );
        let mut out = vec![0u8; r.buffer_len()];
        assert_eq!(r.emit(&mut out), Ok(m.len()));
        assert_eq!(out, m);
    }

    #[test]
    fn time_exceeded_and_frag_needed_round_trip() {
        let m = port_unreachable();
        let IcmpRepr::DstUnreachable { quote, .. } = IcmpRepr::parse_bytes(&m, true).unwrap()
        else {
            unreachable!()
        };
        for r in [
            IcmpRepr::TimeExceeded {
                reason: TimeExceeded::FragExpired,
                quote,
            },
            IcmpRepr::DstUnreachable {
                reason: DstUnreachable::FragRequired,
                next_hop_mtu: 1400,
                quote,
            },
        ] {
            let mut out = [0u8; 64];
            let n = r.emit(&mut out).unwrap();
            assert_eq!(IcmpRepr::parse_bytes(&out[..n], true), Ok(r));
        }
    }

    #[test]
    fn errors_table() {
        let m = port_unreachable();
        let with = |i: usize, v: u8| {
            let mut b = m.clone();
            b[i] = v;
            IcmpPacket::new_unchecked(&mut b[..]).fill_checksum();
            b
        };
        let trunc = |n: usize| {
            let mut b = m[..n].to_vec();
            if n >= HEADER_LEN {
                IcmpPacket::new_unchecked(&mut b[..]).fill_checksum();
            }
            b
        };
        let rows: Vec<(Vec<u8>, Error)> = vec![
            (trunc(7), Error::Truncated),
            (trunc(35), Error::Truncated), // 7 bytes after the quoted header
            (trunc(27), Error::Truncated), // quoted header cut short
            (with(1, 16), Error::Unsupported), // unassigned unreachable code
            (with(0, 5), Error::Unsupported), // redirect
            (with(0, 11), Error::Unsupported), // time exceeded code 3
            (with(8, 0x60), Error::Malformed), // quoted version 6
            (with(8, 0x4f), Error::Truncated), // quoted IHL 15 > what is quoted
            (
                {
                    let mut b = m.clone();
                    b[30] ^= 1;
                    b
                },
                Error::BadChecksum,
            ),
        ];
        for (i, (bytes, want)) in rows.iter().enumerate() {
            assert_eq!(IcmpRepr::parse_bytes(bytes, true), Err(*want), "row {i}");
        }
        // Echo with a non-zero code is not an echo.
        let mut e = echo_bytes();
        e[1] = 1;
        assert_eq!(IcmpRepr::parse_bytes(&e, false), Err(Error::Unsupported));
    }

    #[test]
    fn quote_tcp_only_for_first_tcp_fragment() {
        let m = port_unreachable();
        let IcmpRepr::DstUnreachable { mut quote, .. } = IcmpRepr::parse_bytes(&m, true).unwrap()
        else {
            unreachable!()
        };
        quote.header.frag_offset = 8;
        assert_eq!(quote.tcp(), None);
        quote.header.frag_offset = 0;
        quote.header.protocol = IpProtocol::Udp;
        assert_eq!(quote.tcp(), None);
    }

    #[test]
    fn codes_round_trip() {
        for c in 0..=255u8 {
            if let Some(d) = DstUnreachable::from_code(c) {
                assert_eq!(d.code(), c);
            } else {
                assert!(c > 15);
            }
            if let Some(t) = TimeExceeded::from_code(c) {
                assert_eq!(t.code(), c);
            }
        }
    }
}
