//! Typed errors, one small `Copy` enum per operation (smoltcp style).

use thiserror::Error;

/// Why a connection ended abnormally, or a soft error it recorded
/// (RFC 9293 MUST-12: the application is told about aborted connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum ConnError {
    /// The peer answered our SYN with a RST, or an ICMP port/protocol
    /// unreachable or administratively prohibited error arrived in SYN-SENT.
    #[error("connection refused")]
    Refused,
    /// The peer reset an established connection.
    #[error("connection reset by peer")]
    Reset,
    /// Retransmissions (R2, SYN retries), the user timeout, unanswered
    /// keep-alives or zero-window probes ran out.
    #[error("connection timed out")]
    TimedOut,
    /// The connection was aborted locally. The engine itself never reports
    /// it (an aborted handle is released at once); it exists for layers above
    /// that abort connections on their own, e.g. when a core shuts down.
    #[error("connection aborted locally")]
    Aborted,
    /// ICMP host unreachable or time exceeded (a soft error, or fatal in
    /// SYN-SENT for time exceeded).
    #[error("host unreachable")]
    HostUnreachable,
    /// ICMP network unreachable (a soft error).
    #[error("network unreachable")]
    NetworkUnreachable,
}

/// Errors of [`Endpoint::listen`](crate::Endpoint::listen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum ListenError {
    /// Port 0 cannot be listened on.
    #[error("port 0 is not a valid listening port")]
    Unaddressable,
    /// Another listener holds this address (MUST-41: listeners do not interfere).
    #[error("address already in use")]
    AddrInUse,
    /// The backlog must be at least 1.
    #[error("backlog must be at least 1")]
    InvalidBacklog,
}

/// Errors of [`Endpoint::accept`](crate::Endpoint::accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum AcceptError {
    /// The handle is stale or unknown.
    #[error("invalid socket handle")]
    InvalidHandle,
    /// The handle is a connection, not a listener.
    #[error("socket is not listening")]
    NotListening,
    /// No established connection is waiting.
    #[error("no connection ready")]
    WouldBlock,
}

/// Errors of [`Endpoint::connect`](crate::Endpoint::connect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum ConnectError {
    /// The remote address is unspecified, broadcast or multicast, or a port is 0
    /// (MUST-46, RFC 9293 section 3.9.1).
    #[error("invalid remote address")]
    Unaddressable,
    /// The local address is unspecified; the caller must choose the source
    /// address (MUST-44, MUST-45).
    #[error("local address must be specified")]
    NoLocalAddr,
    /// The 4-tuple is in use.
    #[error("address already in use")]
    AddrInUse,
    /// No ephemeral port is free for this remote address.
    #[error("no free ephemeral port")]
    NoFreePorts,
    /// `Config::max_connections` is reached.
    #[error("too many connections")]
    TooManyConnections,
    /// The connection's send and receive buffers do not fit in what is left
    /// of `Config::buffer_budget`.
    #[error("no buffer space for the connection")]
    NoBufferSpace,
}

/// Errors of [`Endpoint::send`](crate::Endpoint::send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum SendError {
    /// The handle is stale, unknown or a listener.
    #[error("invalid socket handle")]
    InvalidHandle,
    /// The connection is not open for sending yet (SYN-SENT, SYN-RECEIVED
    /// queue data, so this means CLOSED or LISTEN).
    #[error("not connected")]
    NotConnected,
    /// The write side was shut down (FIN queued or sent).
    #[error("write side closed")]
    Closed,
    /// The send buffer is full.
    #[error("send buffer full")]
    WouldBlock,
    /// The connection ended with this error.
    #[error("connection error: {0}")]
    Conn(ConnError),
}

/// Errors of [`Endpoint::recv`](crate::Endpoint::recv) and `peek`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum RecvError {
    /// The handle is stale, unknown or a listener.
    #[error("invalid socket handle")]
    InvalidHandle,
    /// The connection has not been established (and no data can arrive yet).
    #[error("not connected")]
    NotConnected,
    /// No data is buffered and the peer has not closed.
    #[error("no data available")]
    WouldBlock,
    /// The connection ended with this error and no buffered data remains.
    #[error("connection error: {0}")]
    Conn(ConnError),
}

/// Errors of the handle operations `shutdown`, `close`, `abort`, `state` and
/// the per-socket setters and getters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum SocketError {
    /// The handle is stale or unknown.
    #[error("invalid socket handle")]
    InvalidHandle,
    /// The operation does not apply to this kind of socket (a listener).
    #[error("operation not supported on this socket")]
    NotSupported,
    /// The connection is not in a state that allows it.
    #[error("not connected")]
    NotConnected,
}
