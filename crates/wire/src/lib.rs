//! Wire formats for mtcp-rs.
//!
//! Every format comes as two types, in the smoltcp manner: a zero-copy view over
//! bytes (`XxxPacket<T: AsRef<[u8]>>`, field offsets as named byte ranges) and an
//! owned, validated `XxxRepr` that parses from and emits into such a view.
//! Parsing never panics: malformed input returns a typed [`Error`]. Neither
//! parsing nor emitting allocates.
//!
//! Data flow: the runtime receives a frame, parses Ethernet -> IPv4 (or ARP) ->
//! TCP/ICMP with these types, and hands a [`tcp::TcpRepr`] (which borrows its
//! payload from the frame) to `tcp-core`. On the way out, `tcp-core` emits a TCP
//! segment with [`tcp::TcpRepr::emit`] and the runtime wraps it in IPv4 and
//! Ethernet headers. Checksums ([`checksum`]) follow RFC 1071, with the IPv4
//! pseudo-header for TCP.
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
