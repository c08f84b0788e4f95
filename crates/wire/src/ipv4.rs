//! IPv4 headers (RFC 791, with the host requirements of RFC 1122 section 3.2.1).
//!
//! Options are tolerated on input and skipped (RFC 1122 section 3.2.1.8 lets a
//! host ignore options it does not implement); [`Ipv4Repr::emit`] never writes
//! any. Fragments are not reassembled here: the repr exposes the more-fragments
//! flag and the offset ([`Ipv4Repr::is_fragment`]) so that the caller can drop
//! or reassemble them.

use std::net::Ipv4Addr;

use crate::checksum;
use crate::Error;

/// Byte ranges of the IPv4 header fields (RFC 791 section 3.1).
pub mod field {
    /// A byte range within the header.
    pub type Field = core::ops::Range<usize>;
    /// Version (high 4 bits) and IHL (low 4 bits, header length in words).
    pub const VER_IHL: usize = 0;
    /// DSCP (high 6 bits) and ECN (low 2 bits), formerly Type of Service.
    pub const DSCP_ECN: usize = 1;
    /// Total length of the datagram, header included.
    pub const LENGTH: Field = 2..4;
    /// Identification.
    pub const IDENT: Field = 4..6;
    /// Flags (reserved, DF, MF) and fragment offset in 8-byte units.
    pub const FLG_OFF: Field = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    /// Source address.
    pub const SRC_ADDR: Field = 12..16;
    /// Destination address.
    pub const DST_ADDR: Field = 16..20;
    /// Start of the options.
    pub const OPTIONS: usize = 20;
}

/// Length of a header without options (IHL 5).
pub const HEADER_LEN: usize = 20;

/// Largest datagram: the total length field is 16 bits.
pub const MAX_PACKET_LEN: usize = 65535;

/// Don't-fragment flag bit in the flags/offset field.
const DF: u16 = 0x4000;
/// More-fragments flag bit in the flags/offset field.
const MF: u16 = 0x2000;
/// Fragment offset mask (in 8-byte units).
const OFFSET_MASK: u16 = 0x1fff;

/// The protocol field (IANA "Assigned Internet Protocol Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// ICMP, 1.
    Icmp,
    /// TCP, 6.
    Tcp,
    /// UDP, 17.
    Udp,
    /// Any other protocol.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> u8 {
        match v {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(other) => other,
        }
    }
}

/// A read/write view of an IPv4 datagram.
///
/// The buffer may extend beyond the datagram (Ethernet padding); the total
/// length field delimits it. Accessors on a view built with
/// [`Ipv4Packet::new_unchecked`] may panic on a short buffer;
/// [`Ipv4Packet::new_checked`] guarantees they do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wrap a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check version, header length and total length against the buffer.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 20 bytes, than the
    /// header length or than the total length; [`Error::Malformed`] when the
    /// version is not 4, the IHL is below 5, or the total length is shorter
    /// than the header.
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_header_len()?;
        let total = usize::from(self.total_len());
        if total < self.header_len() {
            Err(Error::Malformed)
        } else if total > self.buffer.as_ref().len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The checks of [`check_len`](Self::check_len) that do not involve the
    /// total length: what a header quoted in an ICMP error can satisfy.
    pub fn check_header_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 || self.header_len() < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if self.header_len() > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn get_u16(&self, f: field::Field) -> u16 {
        let b = &self.buffer.as_ref()[f];
        u16::from_be_bytes([b[0], b[1]])
    }
    fn get_addr(&self, f: field::Field) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[f];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL times 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    /// DSCP and ECN byte.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }
    /// Total length field.
    pub fn total_len(&self) -> u16 {
        self.get_u16(field::LENGTH)
    }
    /// Identification.
    pub fn ident(&self) -> u16 {
        self.get_u16(field::IDENT)
    }
    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.get_u16(field::FLG_OFF) & DF != 0
    }
    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        self.get_u16(field::FLG_OFF) & MF != 0
    }
    /// Fragment offset in bytes (the field times 8).
    pub fn frag_offset(&self) -> u16 {
        (self.get_u16(field::FLG_OFF) & OFFSET_MASK) << 3
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }
    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        self.get_u16(field::CHECKSUM)
    }
    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        self.get_addr(field::SRC_ADDR)
    }
    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        self.get_addr(field::DST_ADDR)
    }
    /// True when the header checksum (options included) verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The options area, borrowed for the buffer's lifetime.
    pub fn options(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer.as_ref();
        &b[field::OPTIONS..self.header_len()]
    }
    /// The payload up to the total length, borrowed for the buffer's lifetime.
    pub fn payload(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer.as_ref();
        &b[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn set_u16(&mut self, f: field::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }
    /// Set version 4 and the header length in bytes (rounded down to words).
    pub fn set_version_and_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | (len / 4).min(15) as u8;
    }
    /// Set the DSCP and ECN byte.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }
    /// Set the total length.
    pub fn set_total_len(&mut self, v: u16) {
        self.set_u16(field::LENGTH, v);
    }
    /// Set the identification.
    pub fn set_ident(&mut self, v: u16) {
        self.set_u16(field::IDENT, v);
    }
    /// Set the flags and fragment offset (in bytes; the low 3 bits are
    /// dropped). The reserved flag is written as zero (RFC 791 section 3.1).
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            v |= DF;
        }
        if more_frags {
            v |= MF;
        }
        self.set_u16(field::FLG_OFF, v);
    }
    /// Set the time to live.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    /// Set the protocol.
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = u8::from(v);
    }
    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM, v);
    }
    /// Set the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }
    /// Set the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }
    /// Compute and write the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
}

/// An IPv4 header, without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: IpProtocol,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP (high 6 bits) and ECN (low 2 bits).
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub dont_frag: bool,
    /// More-fragments flag.
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Parse a checked view. Options are skipped. With `verify_checksum` the
    /// header checksum is verified (RFC 1122 section 3.2.1.2: a datagram with a
    /// bad checksum MUST be discarded); pass `false` only when the NIC did it.
    ///
    /// # Errors
    /// Those of [`Ipv4Packet::check_len`], and [`Error::BadChecksum`].
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        verify_checksum: bool,
    ) -> Result<Ipv4Repr, Error> {
        packet.check_len()?;
        Self::parse_fields(packet, verify_checksum)
    }

    /// Parse the IPv4 header quoted in an ICMP error message (RFC 792: "Internet
    /// Header + 64 bits of Original Data Datagram"). The total length is the
    /// original datagram's and is not checked against the buffer, nor is the
    /// checksum verified (routers may have rewritten fields). Returns the header
    /// and the bytes after it.
    ///
    /// # Errors
    /// Those of [`Ipv4Packet::check_header_len`]; [`Error::Malformed`] when the
    /// quoted total length is shorter than the quoted header.
    pub fn parse_quoted(bytes: &[u8]) -> Result<(Ipv4Repr, &[u8]), Error> {
        let packet = Ipv4Packet::new_unchecked(bytes);
        packet.check_header_len()?;
        if usize::from(packet.total_len()) < packet.header_len() {
            return Err(Error::Malformed);
        }
        let repr = Self::parse_fields(&packet, false)?;
        Ok((repr, &bytes[packet.header_len()..]))
    }

    fn parse_fields<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        verify_checksum: bool,
    ) -> Result<Ipv4Repr, Error> {
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// True when the datagram is a fragment (more fragments follow or the
    /// offset is non-zero). This crate does not reassemble; callers drop or
    /// reassemble such datagrams.
    pub const fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Header length when emitted: 20 (no options).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload (saturating, so that an absurd `payload_len` gives
    /// [`Error::Unrepresentable`] on emit rather than an overflow).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload_len)
    }

    /// Write the 20-byte header (no options, checksum filled) at the start of
    /// `buf` and return 20; the caller writes the payload after it.
    ///
    /// # Errors
    /// [`Error::Unrepresentable`] when the total length exceeds 65535 or the
    /// fragment offset is not a multiple of 8; [`Error::BufferTooSmall`] when
    /// `buf` is shorter than 20 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.buffer_len() > MAX_PACKET_LEN || self.frag_offset % 8 != 0 {
            return Err(Error::Unrepresentable);
        }
        let buf = buf.get_mut(..HEADER_LEN).ok_or(Error::BufferTooSmall)?;
        let mut p = Ipv4Packet::new_unchecked(buf);
        p.set_version_and_header_len(HEADER_LEN);
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len(self.buffer_len() as u16);
        p.set_ident(self.ident);
        p.set_flags_and_offset(self.dont_frag, self.more_frags, self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP datagram header (the RFC 1071 style example): total length 0x73,
    /// DF, TTL 64, 192.168.0.1 -> 192.168.0.199, checksum 0xb861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn datagram() -> Vec<u8> {
        let mut v = HEADER.to_vec();
        v.resize(0x73, 0xaa);
        v
    }

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 168, 0, 1),
            dst_addr: Ipv4Addr::new(192, 168, 0, 199),
            protocol: IpProtocol::Udp,
            payload_len: 0x73 - 20,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn parse_and_emit_known_header() {
        let mut d = datagram();
        d.extend_from_slice(&[0; 6]); // link padding is not payload
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p, true), Ok(repr()));
        assert_eq!(p.payload().len(), 0x73 - 20);
        assert!(!repr().is_fragment());
        let mut out = [0u8; 20];
        assert_eq!(repr().emit(&mut out), Ok(20));
        assert_eq!(out, HEADER);
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6 with one 4-byte option (NOP NOP NOP EOL).
        let mut d = vec![
            0x46, 0, 0, 28, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        d.extend_from_slice(&[1, 1, 1, 0]);
        d.extend_from_slice(&[9, 9, 9, 9]);
        let mut p = Ipv4Packet::new_checked(&mut d[..]).unwrap();
        p.fill_checksum();
        let p = Ipv4Packet::new_checked(&d[..]).unwrap();
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(r.payload_len, 4);
        assert_eq!(r.protocol, IpProtocol::Tcp);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[9, 9, 9, 9]);
    }

    #[test]
    fn errors_table() {
        let d = datagram();
        let with = |i: usize, v: u8| {
            let mut b = d.clone();
            b[i] = v;
            b
        };
        let rows: Vec<(Vec<u8>, Error)> = vec![
            (d[..19].to_vec(), Error::Truncated),
            (d[..0x72].to_vec(), Error::Truncated), // total length > buffer
            (with(0, 0x65), Error::Malformed),      // version 6
            (with(0, 0x44), Error::Malformed),      // IHL 4
            (with(0, 0x4f), Error::BadChecksum),    // IHL 15: fits, checksum wrong
            (with(3, 19), Error::Malformed),        // total length < header
            (with(11, 0x62), Error::BadChecksum),
            (with(8, 63), Error::BadChecksum),
        ];
        for (i, (bytes, want)) in rows.iter().enumerate() {
            let got = Ipv4Packet::new_checked(&bytes[..]).and_then(|p| Ipv4Repr::parse(&p, true));
            assert_eq!(got, Err(*want), "row {i}");
        }
        // Without verification the checksum is not looked at.
        let b = with(11, 0x62);
        assert!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).unwrap(), false).is_ok());
        // An unchecked view is checked by parse.
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&d[..30]), false),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn fragments_flagged_and_round_trip() {
        let r = Ipv4Repr {
            more_frags: true,
            dont_frag: false,
            frag_offset: 1480,
            ident: 0xbeef,
            dscp_ecn: 0xb9,
            protocol: IpProtocol::Unknown(253),
            payload_len: 8,
            ..repr()
        };
        assert!(r.is_fragment());
        let mut buf = [0u8; 28];
        r.emit(&mut buf).unwrap();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(Ipv4Repr::parse(&p, true), Ok(r));
        let last = Ipv4Repr {
            more_frags: false,
            ..r
        };
        assert!(last.is_fragment());
    }

    #[test]
    fn emit_errors() {
        let mut buf = [0u8; 20];
        assert_eq!(repr().emit(&mut buf[..19]), Err(Error::BufferTooSmall));
        let big = Ipv4Repr {
            payload_len: 65516,
            ..repr()
        };
        assert_eq!(big.emit(&mut buf), Err(Error::Unrepresentable));
        let odd = Ipv4Repr {
            frag_offset: 3,
            ..repr()
        };
        assert_eq!(odd.emit(&mut buf), Err(Error::Unrepresentable));
        let absurd = Ipv4Repr {
            payload_len: usize::MAX,
            ..repr()
        };
        assert_eq!(absurd.emit(&mut buf), Err(Error::Unrepresentable));
        let max = Ipv4Repr {
            payload_len: 65515,
            ..repr()
        };
        assert_eq!(max.emit(&mut buf), Ok(20));
    }

    #[test]
    fn quoted_header() {
        // Header claims 0x73 bytes but only 8 follow: fine for a quote.
        let d = datagram();
        let (r, rest) = Ipv4Repr::parse_quoted(&d[..28]).unwrap();
        assert_eq!(r, repr());
        assert_eq!(rest.len(), 8);
        assert_eq!(
            Ipv4Repr::parse_quoted(&d[..19]).err(),
            Some(Error::Truncated)
        );
        let mut bad = d.clone();
        bad[3] = 10;
        assert_eq!(
            Ipv4Repr::parse_quoted(&bad[..28]).err(),
            Some(Error::Malformed)
        );
    }
}
