//! Wire formats for mtcp-rs.
//!
//! Every format comes as two types, in the smoltcp manner: a zero-copy view over
//! bytes (`XxxPacket<T: AsRef<[u8]>>`, field offsets as named byte ranges) and an
//! owned, validated `XxxRepr` that parses from and emits into such a view.
//! Parsing never panics: malformed input returns a typed [`Error`]. Neither
//! parsing nor emitting allocates; reprs borrow payloads from the input buffer.
//!
//! | module | format | reference |
//! |---|---|---|
//! | [`ethernet`] | Ethernet II header, MAC addresses, EtherType | IEEE 802.3, RFC 894 |
//! | [`arp`] | ARP request/reply for IPv4 over Ethernet | RFC 826 |
//! | [`ipv4`] | IPv4 header (options skipped, fragments flagged) | RFC 791, RFC 1122 3.2.1 |
//! | [`icmp`] | echo, destination unreachable, time exceeded | RFC 792, RFC 1122 3.2.2 |
//! | [`tcp`] | TCP header and options, sequence numbers | RFC 9293 3.1, RFC 7323, RFC 2018 |
//! | [`checksum`] | Internet checksum, IPv4 pseudo-header | RFC 1071 |
//!
//! Data flow: the runtime receives a frame and parses it layer by layer:
//! [`EthernetFrame`] -> [`EthernetRepr`] (by EtherType) -> [`ArpRepr`], or
//! [`Ipv4Packet`] -> [`Ipv4Repr`] (header checksum verified, total length
//! delimiting the payload, fragments flagged for the caller to drop) -> by
//! protocol, [`TcpRepr::parse_bytes`] on the IPv4 payload (checksum over the
//! pseudo-header) or [`IcmpRepr`], whose error messages carry the quoted IPv4
//! header and the first 8 bytes of the offending segment ([`QuotedTcp`]: ports
//! and sequence number). The [`TcpRepr`], borrowing its payload from the frame,
//! goes to `tcp-core`. On the way out, `tcp-core` emits a complete TCP segment
//! with [`TcpRepr::emit`] (options, payload and checksum) and the runtime writes
//! the IPv4 header ([`Ipv4Repr::emit`]) and the Ethernet header
//! ([`EthernetRepr::emit`]) in front of it. Emitters write into caller-provided
//! buffers and return [`Error::BufferTooSmall`] rather than panic.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use wire::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};
//!
//! let (src, dst) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
//! let syn = TcpRepr {
//!     src_port: 40000,
//!     dst_port: 80,
//!     seq: SeqNumber(1),
//!     ack: SeqNumber(0),
//!     flags: TcpFlags::SYN,
//!     window: 65535,
//!     urgent: 0,
//!     options: TcpOptions { mss: Some(1460), ..TcpOptions::default() },
//!     payload: &[],
//! };
//! let mut buf = [0u8; 64];
//! let n = syn.emit(&mut buf, src, dst)?;
//! assert_eq!(n, syn.buffer_len());
//! assert_eq!(TcpRepr::parse_bytes(&buf[..n], src, dst, true)?, syn);
//! // Corrupted input is an error, never a panic.
//! buf[12] = 0x10; // data offset 1
//! assert_eq!(TcpRepr::parse_bytes(&buf[..n], src, dst, true), Err(wire::Error::Malformed));
//! # Ok::<(), wire::Error>(())
//! ```
#![deny(unsafe_code)]

pub mod arp;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod tcp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use error::Error;
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use icmp::{IcmpPacket, IcmpQuote, IcmpRepr, QuotedTcp};
pub use ipv4::{IpProtocol, Ipv4Packet, Ipv4Repr};
pub use tcp::{SeqNumber, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
