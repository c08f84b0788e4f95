//! Sans-IO TCP engine for mtcp-rs: the RFC 9293 state machine (urgent data
//! included, delivered inline per RFC 6093) with NewReno (RFC 5681, RFC
//! 6582), RFC 6298 retransmission timing, SACK (RFC 2018) with RFC 6675
//! loss recovery, window scaling and timestamps (RFC 7323), RFC 5961
//! blind-attack defences and RFC 6528 initial sequence numbers. Per-socket
//! options ([`ConnOptions`]) and BSD-compatibility switches in [`Config`]
//! (`rfc1337`, `drop_syn_fin`, `closing_resends_fin`,
//! `report_reset_after_fin`) sit on top; every default is the RFC's.
//!
//! The engine does no I/O and reads no clock: time is an argument
//! ([`time::Instant`]) and randomness comes from a generator the caller
//! supplies, so the same inputs always give the same outputs. One
//! [`Endpoint`] serves one core: it owns that core's connections (a slab of
//! transmission control blocks addressed by generation-checked
//! [`SocketHandle`]s), a flow table keyed by the 4-tuple, the listeners with
//! their bounded SYN and accept queues, and a timing wheel (crate `timers`)
//! indexing each connection's earliest deadline.
//!
//! # How things flow through it
//!
//! * **A segment** arrives: the driver parses it with
//!   [`wire::TcpRepr::parse`] and calls [`Endpoint::handle_segment`]. The flow
//!   table finds the connection (or a listener, or nobody: then a RST is
//!   queued, RFC 9293 section 3.10.7.1); `conn::input` runs the checks of RFC
//!   9293 section 3.10.7 in order (PAWS, RST, SYN, sequence acceptability,
//!   ACK, text, FIN), updates the block and only *marks* what is owed (an
//!   ACK, a retransmission). Events (readable, connected, ...) are queued.
//! * **Output**: the driver calls [`Endpoint::poll_transmit`] until it
//!   returns `None`; each call writes one complete segment (header, options,
//!   payload, checksum). Control segments of all connections come first, then
//!   data; an ACK owed for a whole batch of input is sent once (MUST-58/59).
//! * **A timeout**: the driver sleeps until [`Endpoint::poll_timeout`] and
//!   calls [`Endpoint::handle_timeout`]; the wheel yields the connections
//!   due, each runs its expired timers (retransmission, delayed ACK,
//!   persist, keep-alive, TIME-WAIT, user timeout) and the output they cause
//!   is collected by the next `poll_transmit`.
//! * **An application call** (`connect`, `send`, `recv`, `shutdown`,
//!   `close`, ...) changes the block and puts the connection on the transmit
//!   queue; again nothing is sent until `poll_transmit`.
//!
//! Every error is typed ([`ConnError`], [`SendError`], ...); no input from the
//! network and no misuse of the API panics. Resources are bounded by
//! [`Config`]: connections, SYN queue, buffers, out-of-order bytes and holes,
//! queued RSTs.
//!
//! # Overload policies
//!
//! * A SYN that finds the listener's SYN queue (`max_syn_backlog`) or accept
//!   queue (`backlog`) full, or the endpoint at `max_connections`, is dropped
//!   silently: the peer retries with backoff, where a RST would make it give
//!   up. `connect` beyond `max_connections` fails with
//!   [`ConnectError::TooManyConnections`].
//! * Every connection reserves its send and receive buffer sizes from the
//!   per-endpoint buffer budget (`buffer_budget`) when it is created; a
//!   SYN whose connection does not fit is dropped the same way, and
//!   `connect` fails with [`ConnectError::NoBufferSpace`].
//! * The ACK that would complete a handshake while the accept queue is full
//!   is dropped; the connection stays in SYN-RECEIVED and completes on a
//!   retransmission (as BSD and Linux do).
//! * Half-open connections own no data buffers; buffers are taken from a
//!   per-endpoint pool when the handshake completes and returned in
//!   TIME-WAIT, so SYN floods and TIME-WAIT populations cost little memory.
//! * With `prealloc_connections` the connection tables are allocated up
//!   front, so opening that many connections grows no table;
//!   [`Endpoint::pool_info`] reports the pools' sizes and use.
//!
//! # Layout
//!
//! `endpoint` (slots, flow table, listeners, timer index, transmit queue,
//! events; `endpoint::app` holds the application calls) drives `conn`, the
//! transmission control block: `conn::input` (segment arrival, RFC 9293
//! section 3.10.7), `conn::output` (what to send next), `conn::timers`
//! (per-connection timer table). The leaf modules [`time`], [`rtt`],
//! [`cc`], [`isn`], [`assembler`] and [`buffer`] hold the algorithms.
#![deny(unsafe_code)]

pub mod assembler;
pub mod buffer;
pub mod cc;
pub mod isn;
pub mod rtt;
pub mod time;

mod config;
mod conn;
mod endpoint;
mod error;
mod event;
mod info;
mod pool;
mod state;
mod timer_queue;

pub use config::{Config, ConnOptions, KeepAlive};
pub use endpoint::{Endpoint, SeedRng, SocketHandle, Transmit};
pub use error::{
    AcceptError, ConnError, ConnectError, ListenError, RecvError, SendError, SocketError,
};
pub use event::{Event, EventKind, IcmpError, IcmpErrorKind};
pub use info::{ConnInfo, EndpointStats};
pub use pool::PoolInfo;
pub use state::State;
pub use time::Instant;

#[cfg(test)]
mod tests;
