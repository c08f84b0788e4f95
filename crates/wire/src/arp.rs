//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! The view reads any hardware/protocol address lengths; the representation
//! handles only what a host on an Ethernet IPv4 network needs: hardware type 1
//! (Ethernet), protocol type 0x0800 (IPv4), 6- and 4-byte addresses, and the
//! request and reply operations. Everything else parses as [`Error::Unsupported`].

use std::net::Ipv4Addr;

use crate::ethernet::{EtherType, EthernetAddress};
use crate::Error;

/// Byte ranges of the fixed part of an ARP packet.
pub mod field {
    /// A byte range within the packet.
    pub type Field = core::ops::Range<usize>;
    /// Hardware type.
    pub const HTYPE: Field = 0..2;
    /// Protocol type.
    pub const PTYPE: Field = 2..4;
    /// Hardware address length.
    pub const HLEN: usize = 4;
    /// Protocol address length.
    pub const PLEN: usize = 5;
    /// Operation.
    pub const OPER: Field = 6..8;
    /// Start of the variable-length addresses (SHA, SPA, THA, TPA).
    pub const ADDRESSES: usize = 8;
}

/// Hardware type of Ethernet (RFC 826, IANA "Hardware Types").
pub const HTYPE_ETHERNET: u16 = 1;

/// Length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = 28;

/// ARP operation (RFC 826 "ar$op").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// Request, 1.
    Request,
    /// Reply, 2.
    Reply,
}

impl ArpOperation {
    /// The wire value.
    pub const fn to_u16(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// A read/write view of an ARP packet.
///
/// Accessors on a view built with [`ArpPacket::new_unchecked`] may panic on a
/// short buffer; [`ArpPacket::new_checked`] guarantees they do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }
    /// Wrap a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }
    /// [`Error::Truncated`] when the buffer is shorter than the fixed part plus
    /// the four addresses its length fields announce. Trailing bytes (Ethernet
    /// padding) are allowed.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < field::ADDRESSES {
            return Err(Error::Truncated);
        }
        let need = field::ADDRESSES + 2 * (self.hardware_len() + self.protocol_len());
        if b.len() < need {
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
    /// Hardware type.
    pub fn hardware_type(&self) -> u16 {
        self.get_u16(field::HTYPE)
    }
    /// Protocol type (an EtherType).
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(self.get_u16(field::PTYPE))
    }
    /// Hardware address length in bytes.
    pub fn hardware_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::HLEN])
    }
    /// Protocol address length in bytes.
    pub fn protocol_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::PLEN])
    }
    /// Operation as on the wire.
    pub fn operation(&self) -> u16 {
        self.get_u16(field::OPER)
    }
    fn addr(&self, index: usize) -> &[u8] {
        let (h, p) = (self.hardware_len(), self.protocol_len());
        let start = field::ADDRESSES + (index / 2) * (h + p) + (index % 2) * h;
        let len = if index % 2 == 0 { h } else { p };
        &self.buffer.as_ref()[start..start + len]
    }
    /// Sender hardware address.
    pub fn source_hardware_addr(&self) -> &[u8] {
        self.addr(0)
    }
    /// Sender protocol address.
    pub fn source_protocol_addr(&self) -> &[u8] {
        self.addr(1)
    }
    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> &[u8] {
        self.addr(2)
    }
    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> &[u8] {
        self.addr(3)
    }
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub source_hardware_addr: EthernetAddress,
    /// Sender protocol address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_hardware_addr: EthernetAddress,
    /// Target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl ArpRepr {
    /// Parse an Ethernet/IPv4 request or reply.
    ///
    /// # Errors
    /// [`Error::Truncated`] for a short buffer; [`Error::Unsupported`] for other
    /// hardware or protocol types, address lengths or operations.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr, Error> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let operation = match packet.operation() {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            _ => return Err(Error::Unsupported),
        };
        let mac = |b: &[u8]| EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]]);
        Ok(ArpRepr {
            operation,
            source_hardware_addr: mac(packet.source_hardware_addr()),
            source_protocol_addr: ipv4(packet.source_protocol_addr()),
            target_hardware_addr: mac(packet.target_hardware_addr()),
            target_protocol_addr: ipv4(packet.target_protocol_addr()),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 28.
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Write the packet at the start of `buf` and return 28.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `buf` is shorter than 28 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let b = buf
            .get_mut(..ETHERNET_IPV4_LEN)
            .ok_or(Error::BufferTooSmall)?;
        b[field::HTYPE].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        b[field::PTYPE].copy_from_slice(&u16::from(EtherType::Ipv4).to_be_bytes());
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        b[field::OPER].copy_from_slice(&self.operation.to_u16().to_be_bytes());
        b[8..14].copy_from_slice(&self.source_hardware_addr.0);
        b[14..18].copy_from_slice(&self.source_protocol_addr.octets());
        b[18..24].copy_from_slice(&self.target_hardware_addr.0);
        b[24..28].copy_from_slice(&self.target_protocol_addr.octets());
        Ok(ETHERNET_IPV4_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 192.168.1.1? Tell 192.168.1.100 (00:1b:21:3a:4f:5e).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // eth, ipv4, 6, 4, request
        0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x5e, 192, 168, 1, 100, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 168, 1, 1, // target
    ];

    fn request() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x5e]),
            source_protocol_addr: Ipv4Addr::new(192, 168, 1, 100),
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: Ipv4Addr::new(192, 168, 1, 1),
        }
    }

    #[test]
    fn parse_and_emit_known_request() {
        // With Ethernet padding after it.
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&REQUEST);
        let p = ArpPacket::new_checked(&padded[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Ok(request()));
        let mut out = [0u8; 28];
        assert_eq!(request().emit(&mut out), Ok(28));
        assert_eq!(out, REQUEST);
        assert_eq!(request().emit(&mut [0u8; 27]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn reply_round_trip() {
        let r = ArpRepr {
            operation: ArpOperation::Reply,
            target_hardware_addr: EthernetAddress([2, 4, 6, 8, 10, 12]),
            ..request()
        };
        let mut out = [0u8; 28];
        r.emit(&mut out).unwrap();
        assert_eq!(out[7], 2);
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_checked(&out[..]).unwrap()),
            Ok(r)
        );
    }

    #[test]
    fn errors_table() {
        let with = |i: usize, v: u8| {
            let mut b = REQUEST;
            b[i] = v;
            b
        };
        let rows: [([u8; 28], Error); 6] = [
            (with(1, 6), Error::Unsupported),    // IEEE 802 hardware type
            (with(2, 0x86), Error::Unsupported), // protocol type
            (with(4, 8), Error::Truncated),      // hardware length 8: 8 + 2 * 12 > 28
            (with(5, 16), Error::Truncated),     // IPv6-sized protocol address
            (with(7, 3), Error::Unsupported),    // RARP request
            (with(7, 0), Error::Unsupported),
        ];
        for (i, (bytes, want)) in rows.iter().enumerate() {
            let got = ArpPacket::new_checked(&bytes[..]).and_then(|p| ArpRepr::parse(&p));
            assert_eq!(got, Err(*want), "row {i}");
        }
        for n in 0..28 {
            assert_eq!(
                ArpPacket::new_checked(&REQUEST[..n]).err(),
                Some(Error::Truncated)
            );
        }
        // Hardware length 5, protocol length 4: fits in 28 bytes, but unsupported.
        let b = with(4, 5);
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()),
            Err(Error::Unsupported)
        );
    }
}
