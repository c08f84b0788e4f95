//! Events the endpoint reports to its driver, and ICMP error input.

use core::net::SocketAddrV4;

use wire::SeqNumber;

use crate::{ConnError, SocketHandle};

/// Something the application should know about a socket.
///
/// Each kind is queued at most once per socket until it is polled, so the event
/// queue is bounded by a small multiple of the number of sockets. Events are
/// edge triggered hints: after `Readable`, read until `WouldBlock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The socket concerned (a listener for `AcceptReady`).
    pub socket: SocketHandle,
    /// What happened.
    pub kind: EventKind,
}

/// What happened to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An active open completed (SYN-SENT to ESTABLISHED).
    Connected,
    /// A listener has a connection ready for `accept`.
    AcceptReady,
    /// New data can be read.
    Readable,
    /// Send buffer space became free.
    Writable,
    /// The peer sent FIN: after the buffered data, `recv` returns `Ok(0)`.
    PeerFin,
    /// The connection failed (MUST-12); the handle stays valid until `close`.
    Error(ConnError),
    /// The connection's resources were released; the handle is now invalid.
    Closed,
}

/// An ICMP error that quotes one of our TCP segments (RFC 9293 section 3.9.2.2
/// "Receiving ICMP messages from IP", RFC 1122 section 4.2.3.9, RFC 5927).
///
/// The driver parses the ICMP message and the quoted IPv4 + first 8 TCP bytes
/// and hands the result to [`Endpoint::handle_icmp_error`](crate::Endpoint::handle_icmp_error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// What the ICMP message says.
    pub kind: IcmpErrorKind,
    /// Our address and port: the source of the quoted segment.
    pub local: SocketAddrV4,
    /// The peer's address and port: the destination of the quoted segment.
    pub remote: SocketAddrV4,
    /// The sequence number of the quoted segment. Errors quoting a sequence
    /// number outside `SND.UNA..SND.NXT` are ignored (RFC 5927 section 4.1).
    pub seq: SeqNumber,
}

/// ICMP error types and codes that matter to TCP (RFC 792, RFC 1812).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination unreachable, code 0 (soft).
    NetUnreachable,
    /// Destination unreachable, code 1 (soft).
    HostUnreachable,
    /// Destination unreachable, code 2 (hard).
    ProtocolUnreachable,
    /// Destination unreachable, code 3 (hard).
    PortUnreachable,
    /// Destination unreachable, code 4: the path MTU is smaller than our
    /// segment (RFC 1191); `next_hop_mtu` is 0 when the router did not say.
    FragmentationNeeded {
        /// The MTU of the next hop.
        next_hop_mtu: u16,
    },
    /// Destination unreachable, code 5 (soft).
    SourceRouteFailed,
    /// Destination unreachable, codes 9, 10, 13 (administratively prohibited; hard).
    AdminProhibited,
    /// Any other destination unreachable code (soft).
    OtherUnreachable(u8),
    /// Time exceeded in transit (type 11, code 0): hard in SYN-SENT while
    /// [`Config::icmp_time_exceeded_aborts`](crate::Config::icmp_time_exceeded_aborts)
    /// (the default) and `icmp_may_abort` are set, soft otherwise (MUST-56).
    TimeExceeded,
    /// Time exceeded, code 1: fragment reassembly time exceeded. Always soft:
    /// it says a datagram lost a fragment, nothing about whether the port or
    /// host is reachable (RFC 792; RFC 5927 section 4.1 lists only
    /// unreachable codes 2-4 as hard; FreeBSD treats only code 0 as hard).
    ReassemblyTimeExceeded,
    /// Parameter problem (type 12; soft, MUST-56).
    ParameterProblem,
    /// Source quench (type 4; silently discarded, MUST-55).
    SourceQuench,
}

impl IcmpErrorKind {
    /// Classify an ICMP type and code; `None` for types that are not errors.
    pub fn from_type_code(ty: u8, code: u8, next_hop_mtu: u16) -> Option<Self> {
        Some(match (ty, code) {
            (3, 0) | (3, 6) => IcmpErrorKind::NetUnreachable,
            (3, 1) | (3, 7) => IcmpErrorKind::HostUnreachable,
            (3, 2) => IcmpErrorKind::ProtocolUnreachable,
            (3, 3) => IcmpErrorKind::PortUnreachable,
            (3, 4) => IcmpErrorKind::FragmentationNeeded { next_hop_mtu },
            (3, 5) => IcmpErrorKind::SourceRouteFailed,
            (3, 9) | (3, 10) | (3, 13) => IcmpErrorKind::AdminProhibited,
            (3, c) => IcmpErrorKind::OtherUnreachable(c),
            (4, _) => IcmpErrorKind::SourceQuench,
            (11, 1) => IcmpErrorKind::ReassemblyTimeExceeded,
            (11, _) => IcmpErrorKind::TimeExceeded,
            (12, _) => IcmpErrorKind::ParameterProblem,
            _ => return None,
        })
    }

    /// Hard errors end a connection attempt in SYN-SENT (RFC 5927 section 4.1;
    /// RFC 9293 SHLD-26 for codes 2-4, minus fragmentation-needed which is PMTUD).
    /// `TimeExceeded` is listed, but the endpoint treats it as hard only with
    /// [`Config::icmp_time_exceeded_aborts`](crate::Config::icmp_time_exceeded_aborts)
    /// (MUST-56).
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            IcmpErrorKind::ProtocolUnreachable
                | IcmpErrorKind::PortUnreachable
                | IcmpErrorKind::AdminProhibited
                | IcmpErrorKind::TimeExceeded
        )
    }

    /// The error the application sees for this ICMP message.
    pub fn conn_error(self) -> Option<ConnError> {
        match self {
            IcmpErrorKind::ProtocolUnreachable
            | IcmpErrorKind::PortUnreachable
            | IcmpErrorKind::AdminProhibited => Some(ConnError::Refused),
            IcmpErrorKind::NetUnreachable => Some(ConnError::NetworkUnreachable),
            IcmpErrorKind::HostUnreachable
            | IcmpErrorKind::SourceRouteFailed
            | IcmpErrorKind::OtherUnreachable(_)
            | IcmpErrorKind::TimeExceeded
            | IcmpErrorKind::ReassemblyTimeExceeded
            | IcmpErrorKind::ParameterProblem => Some(ConnError::HostUnreachable),
            IcmpErrorKind::FragmentationNeeded { .. } | IcmpErrorKind::SourceQuench => None,
        }
    }
}
