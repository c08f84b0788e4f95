//! Read-only views: per-connection [`ConnInfo`] and per-endpoint
//! [`EndpointStats`].

use core::time::Duration;

use crate::{ConnError, State};

/// A snapshot of one connection's transmission state (like Linux `tcp_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Current state.
    pub state: State,
    /// Congestion window in bytes.
    pub cwnd: usize,
    /// Slow-start threshold in bytes.
    pub ssthresh: usize,
    /// Smoothed RTT, once measured.
    pub srtt: Option<Duration>,
    /// RTT variation.
    pub rttvar: Duration,
    /// Current retransmission timeout (with backoff).
    pub rto: Duration,
    /// Effective send MSS (payload bytes per segment).
    pub smss: usize,
    /// Peer's receive window (scaled).
    pub snd_wnd: u32,
    /// Window we advertise.
    pub rcv_wnd: usize,
    /// Bytes in flight.
    pub bytes_in_flight: usize,
    /// Consecutive retransmission timeouts of the current data (R1 is
    /// reached when this equals `Config::r1`; SHLD-9).
    pub retransmits: u32,
    /// Segments retransmitted over the connection's life.
    pub total_retransmits: u64,
    /// In NewReno fast recovery.
    pub in_recovery: bool,
    /// Timestamps negotiated.
    pub timestamps: bool,
    /// SACK negotiated.
    pub sack: bool,
    /// Window scale shifts (ours, peer's), when negotiated.
    pub wscale: Option<(u8, u8)>,
    /// Last soft error (ICMP) recorded, if any.
    pub soft_error: Option<ConnError>,
}

/// Counters of one endpoint. All monotonically increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Segments handed to `handle_segment`.
    pub segments_in: u64,
    /// Segments written by `poll_transmit`.
    pub segments_out: u64,
    /// Segments dropped before reaching a connection (bad addresses).
    pub dropped_invalid: u64,
    /// RSTs sent for segments that matched no connection or listener
    /// (RFC 9293 section 3.10.7.1) or were unacceptable in LISTEN/SYN-SENT.
    pub rsts_sent: u64,
    /// RST replies dropped because the RST queue was full.
    pub rsts_dropped: u64,
    /// SYNs dropped because the listener's SYN queue or accept queue was full.
    pub syns_dropped_backlog: u64,
    /// SYNs dropped because `max_connections` was reached.
    pub syns_dropped_limit: u64,
    /// SYNs dropped because the connection's buffers did not fit in
    /// [`Config::buffer_budget`](crate::Config::buffer_budget).
    pub syns_dropped_buffers: u64,
    /// Handshake-completing ACKs dropped because the accept queue was full.
    pub acks_dropped_accept_queue: u64,
    /// Connections opened actively.
    pub active_opens: u64,
    /// Connections opened passively (SYN-RECEIVED created).
    pub passive_opens: u64,
    /// Connections that ended with an error (reset, timeout, ICMP).
    pub failed: u64,
    /// ICMP errors that matched a connection.
    pub icmp_errors: u64,
    /// Connection resources released.
    pub released: u64,
    /// Segments with both SYN and FIN discarded because
    /// [`Config::drop_syn_fin`](crate::Config::drop_syn_fin) is set.
    pub dropped_syn_fin: u64,
    /// Segments sent again, of all connections: retransmission timeouts
    /// (RFC 6298), fast retransmit and recovery (RFC 5681, RFC 6582, RFC
    /// 6675), SYN and SYN-ACK retransmissions. The sum of every
    /// connection's [`ConnInfo::total_retransmits`].
    pub retransmits: u64,
}
