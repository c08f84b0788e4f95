//! mTCP-style BSD socket API for one per-core context of mtcp-rs.
//!
//! # What it does
//! A [`SocketTable`] wraps the context's sans-IO [`tcp_core::Endpoint`] and gives the
//! application BSD-like calls under mTCP's names, on small-integer descriptors
//! ([`Fd`]) local to the context: [`socket`](SocketTable::socket),
//! [`bind`](SocketTable::bind), [`listen`](SocketTable::listen),
//! [`accept`](SocketTable::accept), [`connect`](SocketTable::connect),
//! [`read`](SocketTable::read), [`recv`](SocketTable::recv) (with `MSG_PEEK`),
//! [`readv`](SocketTable::readv), [`write`](SocketTable::write),
//! [`send`](SocketTable::send), [`writev`](SocketTable::writev),
//! [`shutdown`](SocketTable::shutdown), [`close`](SocketTable::close),
//! [`abort`](SocketTable::abort), [`getsockname`](SocketTable::getsockname),
//! [`getpeername`](SocketTable::getpeername), non-blocking mode
//! ([`fcntl`](SocketTable::fcntl)), `FIONREAD` ([`ioctl`](SocketTable::ioctl)) and
//! [`getsockopt`](SocketTable::getsockopt)/[`setsockopt`](SocketTable::setsockopt)
//! whose options act on the engine. Every failure is an [`Errno`] with the Linux errno
//! number it maps to; no call panics and none blocks.
//!
//! It also tracks what each descriptor is ready for ([`Readiness`], Linux's
//! `tcp_poll` rules) and which descriptors changed, so that the runtime can feed
//! epoll. This crate knows nothing of packet I/O, timers, epoll or threads: it
//! depends on `tcp-core` and `wire` only.
//!
//! # Data flow
//! ```text
//!   runtime stack loop                          application calls (no time argument:
//!   handle_segment / handle_timeout /           the table uses the driver's last `now`)
//!   handle_icmp_error / poll_transmit           read / write / connect / accept / ...
//!              |                                            |
//!              v                                            v
//!        tcp_core::Endpoint  <------ engine handles ------  SocketTable: fd -> socket
//!              | poll_event (Readable, Writable, Connected,   (fresh / listener / conn),
//!              |  PeerFin, Error, AcceptReady, Closed)        options, port holds
//!              v                                            |
//!        drain_changes: events mark fds dirty with a wake;  | calls mark fds dirty too
//!        each dirty fd's level is recomputed from the engine (state, bytes readable,
//!        send room) and reported once: f(fd, level, wake) -> epoll_events notify
//! ```
//! Events are hints: the level is always recomputed from the engine, so a lost or
//! merged event cannot leave a wrong level. The dirty list is sized for every
//! descriptor, so reporting allocates nothing.
//!
//! # Semantics worth knowing
//! * `connect` always returns [`Errno::EINPROGRESS`]; completion is `EPOLLOUT` and the
//!   result `SO_ERROR` (`EPOLLERR` too on failure). Blocking mode is recorded
//!   ([`SocketTable::is_nonblocking`]) for the runtime, which waits and retries.
//! * Ephemeral ports come from [`SocketConfig::ephemeral_ports`] filtered by a
//!   [`PortPolicy`], so `connect` picks a source port the calling core owns.
//! * `SO_REUSEADDR`: without it `bind` to a port whose connections are closing or in
//!   TIME-WAIT fails with `EADDRINUSE`; with it, it succeeds. Closed connections are
//!   tracked until the engine reports their release.
//! * Options set before `connect`/`listen` go to the engine as per-connection
//!   options (`tcp_core::ConnOptions`): `SO_RCVBUF` sizes the receive buffer and
//!   window, `SO_SNDBUF` the send buffer, `TCP_MAXSEG` the MSS offered and used,
//!   plus Nagle, keep-alive and user timeout; accepted connections inherit the
//!   listener's. After the handshake `SO_RCVBUF` and `TCP_MAXSEG` are only
//!   recorded; `SO_SNDBUF` still caps the bytes queued.
//! * A listener's `EPOLLIN` level is the engine's accept queue being non-empty, and
//!   its backlog is exact. A queued connection that is reset before `accept` stays
//!   queued, as on Linux: `accept` returns it, reads give its data, then the error.
//! * Freed send space (an ACK of our data) wakes `EPOLLOUT` watchers only after a
//!   writer ran out of room (`EAGAIN`, a partial write, or a level computed without
//!   `OUT`), once, as Linux's `SOCK_NOSPACE`; otherwise it only updates the level.
//!   Linux also waits for a third of the buffer to be free; here any room counts.
//! * Differences from Linux, on purpose or for lack of engine support: `write` on a
//!   socket that never connected is `ENOTCONN` (Linux says `EPIPE`); `shutdown`
//!   during the handshake is `ENOTCONN` (Linux aborts the attempt); `SO_LINGER` with a
//!   non-zero time does not make [`SocketTable::close`] wait, since no call here
//!   blocks: the runtime's blocking `close` lingers itself (`shutdown(SHUT_WR)`, then
//!   waits, descriptor still open, until the engine state shows the data and FIN
//!   acknowledged or the time is up, then closes); `SO_RCVBUF`/`SO_SNDBUF` are not
//!   doubled; a listener queues at most `backlog` connections (Linux one more).
//! * The runtime must call [`SocketTable::drain_changes`] regularly: it also learns
//!   there when closed connections are released, which frees their ports for `bind`.
//!
//! # Idiomatic types
//! `TcpListener`/`TcpStream` implementing `std::io::Read`/`Write` need blocking, hence
//! a thread model and a way to carry calls to the stack thread: they belong to the
//! runtime. This crate gives them `From<Errno> for std::io::Error` (the raw OS error,
//! so `kind()` is right) and the calls they wrap.
#![deny(unsafe_code)]

mod errno;
pub mod options;
mod ports;
mod readiness;
mod table;

pub use errno::Errno;
pub use options::{MsgFlags, Shutdown, SockOpt, SockOptName};
pub use ports::PortPolicy;
pub use readiness::Readiness;
pub use table::{Fd, SocketConfig, SocketTable};

#[cfg(test)]
mod tests;
