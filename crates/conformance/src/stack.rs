//! The interface the runner drives: a sans-IO TCP engine seen through the
//! operations the socket shim needs. [`crate::engine`] implements it for
//! tcp-core's `Endpoint`; tests implement it with small fakes.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::sysctl::Settings;

/// Virtual time in microseconds since the start of the script.
pub type Micros = u64;

/// An errno, by its FreeBSD name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Errno {
    /// Resource temporarily unavailable (`EWOULDBLOCK` is the same number).
    EAGAIN,
    /// A non-blocking connect is under way.
    EINPROGRESS,
    /// Connection refused.
    ECONNREFUSED,
    /// Connection reset by peer.
    ECONNRESET,
    /// Connection timed out.
    ETIMEDOUT,
    /// No route to host.
    EHOSTUNREACH,
    /// Network is unreachable.
    ENETUNREACH,
    /// Connection aborted locally.
    ECONNABORTED,
    /// Socket is not connected.
    ENOTCONN,
    /// Broken pipe (write after shutdown).
    EPIPE,
    /// Address already in use.
    EADDRINUSE,
    /// Invalid argument.
    EINVAL,
    /// Bad file descriptor.
    EBADF,
    /// Operation not supported.
    EOPNOTSUPP,
    /// Already connected.
    EISCONN,
    /// A connect is already under way.
    EALREADY,
    /// No buffer space.
    ENOBUFS,
}

impl Errno {
    /// All values, for name lookup.
    pub const ALL: [Errno; 17] = [
        Errno::EAGAIN,
        Errno::EINPROGRESS,
        Errno::ECONNREFUSED,
        Errno::ECONNRESET,
        Errno::ETIMEDOUT,
        Errno::EHOSTUNREACH,
        Errno::ENETUNREACH,
        Errno::ECONNABORTED,
        Errno::ENOTCONN,
        Errno::EPIPE,
        Errno::EADDRINUSE,
        Errno::EINVAL,
        Errno::EBADF,
        Errno::EOPNOTSUPP,
        Errno::EISCONN,
        Errno::EALREADY,
        Errno::ENOBUFS,
    ];

    /// The name (`EAGAIN`).
    pub fn name(self) -> &'static str {
        match self {
            Errno::EAGAIN => "EAGAIN",
            Errno::EINPROGRESS => "EINPROGRESS",
            Errno::ECONNREFUSED => "ECONNREFUSED",
            Errno::ECONNRESET => "ECONNRESET",
            Errno::ETIMEDOUT => "ETIMEDOUT",
            Errno::EHOSTUNREACH => "EHOSTUNREACH",
            Errno::ENETUNREACH => "ENETUNREACH",
            Errno::ECONNABORTED => "ECONNABORTED",
            Errno::ENOTCONN => "ENOTCONN",
            Errno::EPIPE => "EPIPE",
            Errno::EADDRINUSE => "EADDRINUSE",
            Errno::EINVAL => "EINVAL",
            Errno::EBADF => "EBADF",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::EISCONN => "EISCONN",
            Errno::EALREADY => "EALREADY",
            Errno::ENOBUFS => "ENOBUFS",
        }
    }

    /// Looks a name up; `EWOULDBLOCK` is `EAGAIN` as in FreeBSD's errno.h.
    pub fn from_name(name: &str) -> Option<Errno> {
        if name == "EWOULDBLOCK" {
            return Some(Errno::EAGAIN);
        }
        Errno::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// TCP states, with FreeBSD's names for `sockstat` and `tcpi_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// CLOSED.
    Closed,
    /// LISTEN.
    Listen,
    /// SYN-SENT.
    SynSent,
    /// SYN-RECEIVED.
    SynReceived,
    /// ESTABLISHED.
    Established,
    /// FIN-WAIT-1.
    FinWait1,
    /// FIN-WAIT-2.
    FinWait2,
    /// CLOSE-WAIT.
    CloseWait,
    /// CLOSING.
    Closing,
    /// LAST-ACK.
    LastAck,
    /// TIME-WAIT.
    TimeWait,
}

impl TcpState {
    /// The `sockstat` name (`SYN_RCVD`, `TIME_WAIT`).
    pub fn sockstat_name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynReceived => "SYN_RCVD",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }

    /// The `tcp_info` name (`TCPI_SYN_RECEIVED`).
    pub fn tcpi_name(self) -> &'static str {
        match self {
            TcpState::Closed => "TCPI_CLOSED",
            TcpState::Listen => "TCPI_LISTEN",
            TcpState::SynSent => "TCPI_SYN_SENT",
            TcpState::SynReceived => "TCPI_SYN_RECEIVED",
            TcpState::Established => "TCPI_ESTABLISHED",
            TcpState::FinWait1 => "TCPI_FIN_WAIT_1",
            TcpState::FinWait2 => "TCPI_FIN_WAIT_2",
            TcpState::CloseWait => "TCPI_CLOSE_WAIT",
            TcpState::Closing => "TCPI_CLOSING",
            TcpState::LastAck => "TCPI_LAST_ACK",
            TcpState::TimeWait => "TCPI_TIME_WAIT",
        }
    }
}

/// An ICMP error to deliver, quoting one of the stack's segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpInput {
    /// ICMP type (RFC 792).
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// Next-hop MTU for fragmentation-needed.
    pub mtu: u16,
    /// The stack's side of the quoted segment (its source).
    pub local: SocketAddrV4,
    /// The peer's side (its destination).
    pub remote: SocketAddrV4,
    /// The quoted segment's sequence number (absolute).
    pub seq: u32,
}

/// Negotiated-option bits as FreeBSD's `tcpi_options` reports them.
pub mod tcpi_options {
    /// Timestamps in use.
    pub const TIMESTAMPS: u8 = 0x01;
    /// SACK in use.
    pub const SACK: u8 = 0x02;
    /// Window scaling in use.
    pub const WSCALE: u8 = 0x04;
}

/// Socket-level options the shim passes to the stack for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketOptions {
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// Give up an unfinished open after this long (TCP_KEEPINIT, keepinit sysctl).
    pub connect_timeout: Option<Duration>,
}

/// A sans-IO TCP engine, as the runner drives it. Times are virtual
/// microseconds; handles are the engine's socket handles.
pub trait Stack {
    /// A socket handle.
    type Handle: Copy + Eq + fmt::Debug;

    /// Settings changed after the stack was built (a sysctl in mid-script):
    /// apply them, or say why they cannot be.
    fn update_settings(&mut self, settings: &Settings) -> Result<(), String>;
    /// Delivers a segment (wire bytes, checksum included).
    fn handle_segment(&mut self, now: Micros, src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]);
    /// Delivers an ICMP error.
    fn handle_icmp(&mut self, now: Micros, icmp: &IcmpInput);
    /// Runs the timers due at `now`.
    fn handle_timeout(&mut self, now: Micros);
    /// The next timer deadline.
    fn poll_timeout(&self) -> Option<Micros>;
    /// Writes the next segment to send into `buf`: `(src, dst, len)`.
    fn poll_transmit(&mut self, now: Micros, buf: &mut [u8])
        -> Option<(Ipv4Addr, Ipv4Addr, usize)>;

    /// Opens a listener.
    fn listen(&mut self, local: SocketAddrV4, backlog: usize) -> Result<Self::Handle, Errno>;
    /// Takes an established connection from a listener (`EAGAIN` when none).
    fn accept(&mut self, listener: Self::Handle) -> Result<Self::Handle, Errno>;
    /// Starts an active open (port 0: ephemeral).
    fn connect(
        &mut self,
        now: Micros,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        options: SocketOptions,
    ) -> Result<Self::Handle, Errno>;
    /// Queues data (`EAGAIN` when the buffer is full).
    fn send(&mut self, now: Micros, h: Self::Handle, data: &[u8]) -> Result<usize, Errno>;
    /// Reads data; `Ok(0)` at end of stream; `EAGAIN` when none yet.
    fn recv(&mut self, now: Micros, h: Self::Handle, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Shuts the write side (FIN after queued data).
    fn shutdown_write(&mut self, now: Micros, h: Self::Handle) -> Result<(), Errno>;
    /// Closes the socket (graceful; the handle is released).
    fn close(&mut self, now: Micros, h: Self::Handle) -> Result<(), Errno>;
    /// Drops a connection at once without sending anything (`tcpdrop`).
    fn drop_connection(&mut self, now: Micros, h: Self::Handle) -> Result<(), Errno>;
    /// The connection's state, `None` when the handle is gone.
    fn state(&self, h: Self::Handle) -> Option<TcpState>;
    /// The local address, once known.
    fn local_addr(&self, h: Self::Handle) -> Option<SocketAddrV4>;
    /// Takes the pending socket error (`SO_ERROR`).
    fn take_error(&mut self, h: Self::Handle) -> Option<Errno>;
    /// Negotiated options as `tcpi_options` bits, if the engine reports them.
    fn negotiated_options(&self, h: Self::Handle) -> Option<u8>;
    /// Number of connections in `state` (on local port `port` when given),
    /// including ones no handle reaches yet (a listener's SYN queue) and ones
    /// whose handle was closed (TIME-WAIT): `sockstat`. `None` when the
    /// engine cannot tell.
    fn count_in_state(&self, state: TcpState, port: Option<u16>) -> Option<usize>;
    /// Handles of connections in `state` that `drop_connection` can take.
    fn connections_in_state(&self, state: TcpState) -> Vec<Self::Handle>;
}
