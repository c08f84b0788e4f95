//! The error type shared by every parser and emitter in this crate.

/// Why a packet could not be parsed or emitted.
///
/// Every parser in this crate returns one of these instead of panicking, whatever
/// the input bytes. The enum is `Copy` so that drivers can count errors per kind
/// cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the fixed header or than a length field claims.
    #[error("packet truncated")]
    Truncated,
    /// A header field holds a value the format forbids (IPv4 IHL < 5 or total length
    /// shorter than the header, TCP data offset < 5, ...).
    #[error("malformed header field")]
    Malformed,
    /// The Internet checksum does not verify.
    #[error("checksum mismatch")]
    BadChecksum,
    /// A TCP option has an illegal length: shorter than 2, running past the
    /// header, or wrong for its kind (RFC 9293 MUST-7).
    #[error("malformed TCP option")]
    BadOption,
    /// A well-formed packet of a kind this crate does not handle (IPv6, a
    /// non-Ethernet/IPv4 ARP, an ICMP type other than echo, unreachable or time exceeded).
    #[error("unsupported packet kind")]
    Unsupported,
    /// The output buffer given to an `emit` is too small for the packet.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The representation cannot be encoded: options longer than the 40 bytes the
    /// header allows, or a length that overflows its 16-bit field.
    #[error("representation cannot be encoded")]
    Unrepresentable,
}
