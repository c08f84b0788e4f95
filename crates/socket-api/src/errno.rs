//! [`Errno`]: the typed error of every socket call, with the Linux errno it maps to.

use core::fmt;
use std::io;

use tcp_core::ConnError;

/// Why a socket call failed. Each variant is a Linux errno (x86-64/aarch64 numbering,
/// `include/uapi/asm-generic/errno*.h`); [`Errno::errno`] gives the number and
/// `Display` the text `strerror` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Errno {
    /// `EAGAIN` (= `EWOULDBLOCK`): the call would block (no data, no buffer space,
    /// no pending connection).
    EAGAIN,
    /// `EINPROGRESS`: a connection attempt started; completion is reported by
    /// writability and `SO_ERROR`.
    EINPROGRESS,
    /// `EALREADY`: a connection attempt is already in progress.
    EALREADY,
    /// `EISCONN`: the socket is already connected (or listening).
    EISCONN,
    /// `ECONNREFUSED`: the peer answered the SYN with a RST (or ICMP port unreachable).
    ECONNREFUSED,
    /// `ECONNRESET`: the peer reset the connection.
    ECONNRESET,
    /// `ECONNABORTED`: the connection was aborted locally.
    ECONNABORTED,
    /// `ETIMEDOUT`: retransmissions, the user timeout or keep-alive probes ran out.
    ETIMEDOUT,
    /// `EHOSTUNREACH`: an ICMP host unreachable ended the connection attempt.
    EHOSTUNREACH,
    /// `ENETUNREACH`: an ICMP network unreachable ended the connection attempt.
    ENETUNREACH,
    /// `EPIPE`: writing after the write side was shut down (or the connection ended).
    EPIPE,
    /// `ENOTCONN`: the socket is not connected.
    ENOTCONN,
    /// `EBADF`: not an open descriptor of this context.
    EBADF,
    /// `ENOTSOCK`: the descriptor is open but is not a socket (e.g. an epoll instance).
    ENOTSOCK,
    /// `EINVAL`: an argument is invalid or the call does not fit the socket's state.
    EINVAL,
    /// `EADDRINUSE`: the local address is in use.
    EADDRINUSE,
    /// `EADDRNOTAVAIL`: the address is not local, or no ephemeral port is free.
    EADDRNOTAVAIL,
    /// `EAFNOSUPPORT`: only `AF_INET` is supported.
    EAFNOSUPPORT,
    /// `EPROTONOSUPPORT`: only TCP is supported.
    EPROTONOSUPPORT,
    /// `ESOCKTNOSUPPORT`: only `SOCK_STREAM` is supported.
    ESOCKTNOSUPPORT,
    /// `EMFILE`: the context's descriptor table is full.
    EMFILE,
    /// `ENOBUFS`: the stack's connection pool is exhausted.
    ENOBUFS,
    /// `EOPNOTSUPP`: the operation or flag is not supported on this socket.
    EOPNOTSUPP,
    /// `ENOPROTOOPT`: unknown socket option or level.
    ENOPROTOOPT,
    /// `EEXIST`: already present (`epoll_ctl` ADD of a registered descriptor).
    EEXIST,
    /// `ENOENT`: not present (`epoll_ctl` MOD or DEL of an unregistered descriptor).
    ENOENT,
    /// `ENOSPC`: a per-instance limit was reached (`epoll_ctl` ADD past the most
    /// watched descriptors, Linux's `max_user_watches`).
    ENOSPC,
}

impl Errno {
    /// The Linux errno number.
    #[must_use]
    pub const fn errno(self) -> i32 {
        match self {
            Errno::EAGAIN => 11,
            Errno::EINPROGRESS => 115,
            Errno::EALREADY => 114,
            Errno::EISCONN => 106,
            Errno::ECONNREFUSED => 111,
            Errno::ECONNRESET => 104,
            Errno::ECONNABORTED => 103,
            Errno::ETIMEDOUT => 110,
            Errno::EHOSTUNREACH => 113,
            Errno::ENETUNREACH => 101,
            Errno::EPIPE => 32,
            Errno::ENOTCONN => 107,
            Errno::EBADF => 9,
            Errno::ENOTSOCK => 88,
            Errno::EINVAL => 22,
            Errno::EADDRINUSE => 98,
            Errno::EADDRNOTAVAIL => 99,
            Errno::EAFNOSUPPORT => 97,
            Errno::EPROTONOSUPPORT => 93,
            Errno::ESOCKTNOSUPPORT => 94,
            Errno::EMFILE => 24,
            Errno::ENOBUFS => 105,
            Errno::EOPNOTSUPP => 95,
            Errno::ENOPROTOOPT => 92,
            Errno::EEXIST => 17,
            Errno::ENOENT => 2,
            Errno::ENOSPC => 28,
        }
    }

    /// The symbolic name (`"EAGAIN"`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Errno::EAGAIN => "EAGAIN",
            Errno::EINPROGRESS => "EINPROGRESS",
            Errno::EALREADY => "EALREADY",
            Errno::EISCONN => "EISCONN",
            Errno::ECONNREFUSED => "ECONNREFUSED",
            Errno::ECONNRESET => "ECONNRESET",
            Errno::ECONNABORTED => "ECONNABORTED",
            Errno::ETIMEDOUT => "ETIMEDOUT",
            Errno::EHOSTUNREACH => "EHOSTUNREACH",
            Errno::ENETUNREACH => "ENETUNREACH",
            Errno::EPIPE => "EPIPE",
            Errno::ENOTCONN => "ENOTCONN",
            Errno::EBADF => "EBADF",
            Errno::ENOTSOCK => "ENOTSOCK",
            Errno::EINVAL => "EINVAL",
            Errno::EADDRINUSE => "EADDRINUSE",
            Errno::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            Errno::EAFNOSUPPORT => "EAFNOSUPPORT",
            Errno::EPROTONOSUPPORT => "EPROTONOSUPPORT",
            Errno::ESOCKTNOSUPPORT => "ESOCKTNOSUPPORT",
            Errno::EMFILE => "EMFILE",
            Errno::ENOBUFS => "ENOBUFS",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::ENOPROTOOPT => "ENOPROTOOPT",
            Errno::EEXIST => "EEXIST",
            Errno::ENOENT => "ENOENT",
            Errno::ENOSPC => "ENOSPC",
        }
    }

    /// The `strerror` text (glibc wording).
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Errno::EAGAIN => "Resource temporarily unavailable",
            Errno::EINPROGRESS => "Operation now in progress",
            Errno::EALREADY => "Operation already in progress",
            Errno::EISCONN => "Transport endpoint is already connected",
            Errno::ECONNREFUSED => "Connection refused",
            Errno::ECONNRESET => "Connection reset by peer",
            Errno::ECONNABORTED => "Software caused connection abort",
            Errno::ETIMEDOUT => "Connection timed out",
            Errno::EHOSTUNREACH => "No route to host",
            Errno::ENETUNREACH => "Network is unreachable",
            Errno::EPIPE => "Broken pipe",
            Errno::ENOTCONN => "Transport endpoint is not connected",
            Errno::EBADF => "Bad file descriptor",
            Errno::ENOTSOCK => "Socket operation on non-socket",
            Errno::EINVAL => "Invalid argument",
            Errno::EADDRINUSE => "Address already in use",
            Errno::EADDRNOTAVAIL => "Cannot assign requested address",
            Errno::EAFNOSUPPORT => "Address family not supported by protocol",
            Errno::EPROTONOSUPPORT => "Protocol not supported",
            Errno::ESOCKTNOSUPPORT => "Socket type not supported",
            Errno::EMFILE => "Too many open files",
            Errno::ENOBUFS => "No buffer space available",
            Errno::EOPNOTSUPP => "Operation not supported",
            Errno::ENOPROTOOPT => "Protocol not available",
            Errno::EEXIST => "File exists",
            Errno::ENOENT => "No such file or directory",
            Errno::ENOSPC => "No space left on device",
        }
    }

    /// Every variant (tests, tables).
    pub const ALL: [Errno; 27] = [
        Errno::EAGAIN,
        Errno::EINPROGRESS,
        Errno::EALREADY,
        Errno::EISCONN,
        Errno::ECONNREFUSED,
        Errno::ECONNRESET,
        Errno::ECONNABORTED,
        Errno::ETIMEDOUT,
        Errno::EHOSTUNREACH,
        Errno::ENETUNREACH,
        Errno::EPIPE,
        Errno::ENOTCONN,
        Errno::EBADF,
        Errno::ENOTSOCK,
        Errno::EINVAL,
        Errno::EADDRINUSE,
        Errno::EADDRNOTAVAIL,
        Errno::EAFNOSUPPORT,
        Errno::EPROTONOSUPPORT,
        Errno::ESOCKTNOSUPPORT,
        Errno::EMFILE,
        Errno::ENOBUFS,
        Errno::EOPNOTSUPP,
        Errno::ENOPROTOOPT,
        Errno::EEXIST,
        Errno::ENOENT,
        Errno::ENOSPC,
    ];

    /// A `std::io::ErrorKind` for this errno. Note that `io::Error::from(errno)`
    /// carries the raw OS number, whose `kind()` is std's own classification: it
    /// agrees for most errnos, but std reports `InProgress` for `EINPROGRESS`,
    /// `HostUnreachable`/`NetworkUnreachable` for those two, `StorageFull` for
    /// `ENOSPC` (here `Other`: the kind is newer than the MSRV), and `Uncategorized`
    /// for several (`EALREADY`, `EBADF`, `EMFILE`, ...).
    #[must_use]
    pub fn kind(self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Errno::EAGAIN | Errno::EINPROGRESS | Errno::EALREADY => K::WouldBlock,
            Errno::ECONNREFUSED => K::ConnectionRefused,
            Errno::ECONNRESET => K::ConnectionReset,
            Errno::ECONNABORTED => K::ConnectionAborted,
            Errno::ETIMEDOUT => K::TimedOut,
            Errno::EPIPE => K::BrokenPipe,
            Errno::ENOTCONN => K::NotConnected,
            Errno::EADDRINUSE => K::AddrInUse,
            Errno::EADDRNOTAVAIL => K::AddrNotAvailable,
            Errno::EINVAL | Errno::EBADF | Errno::ENOTSOCK => K::InvalidInput,
            Errno::EOPNOTSUPP
            | Errno::ENOPROTOOPT
            | Errno::EAFNOSUPPORT
            | Errno::EPROTONOSUPPORT
            | Errno::ESOCKTNOSUPPORT => K::Unsupported,
            Errno::ENOBUFS | Errno::EMFILE => K::OutOfMemory,
            Errno::EEXIST => K::AlreadyExists,
            Errno::ENOENT => K::NotFound,
            // `StorageFull` (std's kind for 28) is newer than the MSRV.
            Errno::EISCONN | Errno::ENOSPC | Errno::EHOSTUNREACH | Errno::ENETUNREACH => K::Other,
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.name())
    }
}

impl std::error::Error for Errno {}

impl From<ConnError> for Errno {
    /// The errno `SO_ERROR`, `read` and `write` report for a connection that ended.
    fn from(e: ConnError) -> Errno {
        match e {
            ConnError::Refused => Errno::ECONNREFUSED,
            ConnError::Reset => Errno::ECONNRESET,
            ConnError::TimedOut => Errno::ETIMEDOUT,
            ConnError::Aborted => Errno::ECONNABORTED,
            ConnError::HostUnreachable => Errno::EHOSTUNREACH,
            ConnError::NetworkUnreachable => Errno::ENETUNREACH,
        }
    }
}

impl From<Errno> for io::Error {
    /// An `io::Error` carrying the raw OS error number, so `raw_os_error()` and
    /// `kind()` agree with what the kernel's sockets report.
    fn from(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.errno())
    }
}
