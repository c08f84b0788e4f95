//! Endpoint configuration.
//!
//! Every knob has a default that follows the RFCs; the doc comment of each field
//! names the RFC text it comes from.

use core::ops::RangeInclusive;
use core::time::Duration;

/// Keep-alive parameters (RFC 9293 section 3.8.4, RFC 1122 section 4.2.3.6).
///
/// Keep-alives are off unless configured (MUST-25). A probe is a segment with
/// `SEQ = SND.UNA - 1` and no data (SHLD-12), which any live peer answers with an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// Idle time before the first probe (MUST-26, MUST-27; RFC 1122 asks for a
    /// default of at least two hours, MUST-28).
    pub idle: Duration,
    /// Interval between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes after which the connection is dropped with
    /// [`ConnError::TimedOut`](crate::ConnError::TimedOut). A single lost ACK
    /// never kills a connection as long as `count > 1` (MUST-29).
    pub count: u32,
}

impl Default for KeepAlive {
    /// Two hours idle (MUST-28), 75 s between probes, 9 probes (the BSD values).
    fn default() -> Self {
        KeepAlive {
            idle: Duration::from_secs(2 * 60 * 60),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// Options one connection is created with (socket options such as
/// `SO_RCVBUF`, `SO_SNDBUF`, `TCP_MAXSEG`, `TCP_NODELAY`, `SO_KEEPALIVE`,
/// `TCP_USER_TIMEOUT`), for
/// [`Endpoint::connect_with`](crate::Endpoint::connect_with) and
/// [`Endpoint::listen_with`](crate::Endpoint::listen_with). Start from
/// [`Config::conn_options`] and change fields with struct-update syntax
/// (`ConnOptions { recv_buf: 8192, ..cfg.conn_options() }`), so fields added
/// later keep their defaults. Buffer sizes and the MSS are clamped to
/// `[minimum, Config value]` when the connection is created, so the
/// endpoint's [`Config`] stays the ceiling of its memory use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnOptions {
    /// Receive buffer in bytes: the largest window advertised, and the
    /// window scale offered in the SYN (RFC 7323 section 2.3). Clamped to
    /// `[ConnOptions::MIN_BUF, Config::recv_buf]`.
    pub recv_buf: usize,
    /// Send buffer in bytes. Clamped to `[ConnOptions::MIN_BUF,
    /// Config::send_buf]`.
    pub send_buf: usize,
    /// The MSS option we send and the cap of the payload we send (RFC 9293
    /// section 3.7.1, MUST-14, MUST-16). Clamped to
    /// `[Config::MIN_PEER_MSS, Config::mss]`.
    pub mss: u16,
    /// Disable Nagle (MUST-17).
    pub nodelay: bool,
    /// Keep-alive (MUST-24, MUST-25); `None` sends none.
    pub keepalive: Option<KeepAlive>,
    /// User timeout (RFC 9293 section 3.9.1, RFC 5482).
    pub user_timeout: Option<Duration>,
    /// Send no TCP options at all, not even MSS (BSD `TCP_NOOPT`): the SYN
    /// or SYN-ACK is a bare header, and window scaling, timestamps and SACK
    /// stay off whatever the peer offers (RFC 7323 section 1.3 and RFC 2018
    /// use an option only when both SYNs carried it). The peer's MSS option
    /// is still honoured; without ours it assumes 536 (MUST-15).
    pub no_options: bool,
}

impl ConnOptions {
    /// The smallest buffer a connection gets (Linux's SO_RCVBUF floor is
    /// similar): smaller ones would make every segment a window update.
    pub const MIN_BUF: usize = 2048;

    /// These options with the buffer sizes and MSS clamped to what `cfg`
    /// allows.
    pub fn clamped(&self, cfg: &Config) -> ConnOptions {
        let clamp = |v: usize, hi: usize| v.clamp(Self::MIN_BUF.min(hi), hi);
        let mss_hi = cfg.mss.max(1);
        ConnOptions {
            recv_buf: clamp(self.recv_buf, cfg.recv_buf),
            send_buf: clamp(self.send_buf, cfg.send_buf),
            mss: self.mss.clamp(Config::MIN_PEER_MSS.min(mss_hi), mss_hi),
            ..*self
        }
    }
}

/// Configuration of an [`Endpoint`](crate::Endpoint) and the connections it creates.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest segment payload this host can receive (the MSS option value we
    /// send, RFC 9293 section 3.7.1, MUST-14, MUST-67): MTU - 40 for IPv4.
    /// Also caps the payload we send. Default 1460 (Ethernet).
    pub mss: u16,
    /// Receive buffer per connection in bytes; the largest window we advertise.
    pub recv_buf: usize,
    /// Send buffer per connection in bytes (unacknowledged plus unsent data).
    pub send_buf: usize,
    /// Most connections (in any state but LISTEN) the endpoint holds at once.
    /// `connect` beyond it fails with
    /// [`ConnectError::TooManyConnections`](crate::ConnectError::TooManyConnections);
    /// SYNs beyond it are silently dropped so the peer retries later.
    pub max_connections: usize,
    /// Most half-open (SYN-RECEIVED) connections per listener; further SYNs are
    /// dropped silently (the peer's SYN retransmission retries).
    pub max_syn_backlog: usize,
    /// Connections whose state is reserved when the endpoint is created:
    /// the slot table (plus [`Endpoint::LISTENER_SLOTS`](crate::Endpoint::LISTENER_SLOTS)
    /// slots for listeners), flow table, transmit queue, event queue and
    /// timer index are allocated for this many up front, so opening up to
    /// this many connections never grows (reallocates) a table on the
    /// packet path. Reserved memory is only touched when used. Default 0:
    /// the tables grow on demand. Raising it with
    /// [`Endpoint::set_config`](crate::Endpoint::set_config) reserves more
    /// (the timer index only while no timer is armed); lowering it frees
    /// nothing.
    pub prealloc_connections: usize,
    /// Most bytes of send plus receive buffer that the endpoint's
    /// connections may hold at once: each connection reserves its full
    /// send and receive buffer sizes when it is created (storage itself
    /// is still allocated lazily, never beyond the reservation) and gives
    /// the reservation back when its buffers are released (TIME-WAIT,
    /// CLOSED) or the connection is. When a new connection's sizes do not
    /// fit, `connect` fails with
    /// [`ConnectError::NoBufferSpace`](crate::ConnectError::NoBufferSpace)
    /// and a SYN is dropped silently (counted in
    /// [`EndpointStats::syns_dropped_buffers`](crate::EndpointStats::syns_dropped_buffers)),
    /// so the peer retries later, exactly as at
    /// [`max_connections`](Self::max_connections). Default `usize::MAX`
    /// (no bound beyond `max_connections` times the buffer sizes).
    pub buffer_budget: usize,
    /// Most bytes of released buffer storage kept per kind (send, receive)
    /// for reuse by new connections; beyond it storage is freed. Bounds
    /// the memory a burst of closed connections leaves behind. Default
    /// 8 MiB.
    pub buffer_cache_bytes: usize,
    /// Maximum segment lifetime; TIME-WAIT lasts 2 * MSL (RFC 9293 section
    /// 3.4.2, MUST-13). Default 30 s.
    pub msl: Duration,
    /// Delayed-ACK timeout (RFC 9293 section 3.8.6.3, SHLD-18; MUST-40 asks for
    /// less than 0.5 s). Default 40 ms; `Duration::ZERO` ACKs every segment at once.
    pub delayed_ack: Duration,
    /// Initial retransmission timeout (RFC 6298 section 2.1: 1 s).
    pub rto_initial: Duration,
    /// Lower bound of the RTO (RFC 6298 section 2.4: 1 s; 200 ms is common).
    pub rto_min: Duration,
    /// Upper bound of the RTO (RFC 6298 section 2.5 allows >= 60 s).
    pub rto_max: Duration,
    /// SYN (and SYN-ACK) retransmissions before the open fails with
    /// `TimedOut` (MUST-22). Default 7: 1+2+4+8+16+32+60 s of retransmissions
    /// plus a last 60 s wait with the default RTOs, just over the 3 minutes
    /// MUST-23 asks for.
    pub syn_retries: u32,
    /// Retransmissions after which the stack would give "negative advice" to IP
    /// (R1, MUST-20, SHLD-10: 3). Reported through [`ConnInfo`](crate::ConnInfo).
    pub r1: u32,
    /// Retransmissions of the same data after which the connection is dropped
    /// with `TimedOut` (R2, MUST-20, SHLD-11; MUST-21 lets the application set it
    /// through `user_timeout`). Default 15.
    pub r2: u32,
    /// Give up when data stays unacknowledged this long (RFC 9293 section 3.9.1
    /// "USER TIMEOUT", RFC 5482). `None`: only R2 applies.
    pub user_timeout: Option<Duration>,
    /// Keep-alive; `None` (the default, MUST-25) sends none.
    pub keepalive: Option<KeepAlive>,
    /// Offer and accept the window scale option (RFC 7323 section 2).
    pub window_scaling: bool,
    /// Offer and accept timestamps (RFC 7323 sections 3-5: RTTM and PAWS).
    pub timestamps: bool,
    /// Offer and accept SACK (RFC 2018).
    pub sack: bool,
    /// Disable the Nagle algorithm by default (RFC 9293 section 3.7.4, MUST-17).
    pub nodelay: bool,
    /// Most bytes held out of order beyond RCV.NXT per connection.
    pub ooo_max_bytes: usize,
    /// Most separate out-of-order ranges (holes) per connection.
    pub ooo_max_ranges: usize,
    /// Challenge ACKs per connection per second (RFC 5961 section 7).
    pub challenge_ack_limit: u32,
    /// Secret key of the RFC 6528 ISN generator (SHLD-1). Must be random and
    /// kept private in production.
    pub isn_secret: [u8; 16],
    /// Local ports `connect` picks from when asked for port 0.
    pub ephemeral_ports: RangeInclusive<u16>,
    /// How long a connection the application has closed may sit in FIN-WAIT-2
    /// waiting for the peer's FIN (not in RFC 9293; bounds orphaned state the
    /// way BSD and Linux do). `None` waits forever.
    pub fin_wait2_timeout: Option<Duration>,
    /// Let ICMP hard errors (port, protocol unreachable, administratively
    /// prohibited, time exceeded) abort a connection in SYN-SENT (RFC 5927
    /// section 4.1, FreeBSD `icmp_may_rst`). Synchronized connections only record
    /// ICMP errors as soft errors (RFC 9293 MUST-56).
    pub icmp_may_abort: bool,
    /// Count ICMP time exceeded (type 11, code 0) among the hard errors that
    /// [`icmp_may_abort`](Self::icmp_may_abort) lets abort a connection in
    /// SYN-SENT, as FreeBSD's `icmp_may_rst` does. `false` is RFC 9293
    /// MUST-56 / RFC 1122 section 4.2.3.9 (time exceeded "MUST NOT" abort a
    /// connection; it is recorded as a soft error, SHLD-25) and the default;
    /// `true` is FreeBSD's and Linux's behaviour, which the conformance
    /// runner selects with `net.inet.tcp.icmp_may_rst`.
    pub icmp_time_exceeded_aborts: bool,
    /// Most RST segments for closed ports queued at once; more are dropped
    /// (RST generation is a reflection amplifier, so it is bounded).
    pub max_pending_rsts: usize,
    /// RFC 5961 section 3 RST handling: only a RST at exactly RCV.NXT resets,
    /// one elsewhere in the window earns a challenge ACK (MAY-12). `false`
    /// gives the RFC 793 rule (any in-window RST resets; FreeBSD
    /// `insecure_rst=1`).
    pub rfc5961_rst: bool,
    /// RFC 5961 section 4 SYN handling: a SYN in a synchronized state earns a
    /// challenge ACK. `false` gives the RFC 793 rule (an in-window SYN resets
    /// the connection; FreeBSD `insecure_syn=1`).
    pub rfc5961_syn: bool,
    /// Builds the congestion controller of each new connection from the
    /// sender MSS and the initial ssthresh (RFC 5681 section 3.1: "arbitrarily
    /// high"). The default is [`NewReno`](crate::cc::NewReno) (RFC 5681, RFC
    /// 6582); any [`CongestionControl`](crate::cc::CongestionControl) fits
    /// (MAY-18).
    pub congestion_control: fn(usize, usize) -> Box<dyn crate::cc::CongestionControl>,
    /// Let a SYN with a higher sequence number (or newer timestamp) reopen a
    /// connection in TIME-WAIT (MAY-2, RFC 6191) when a listener exists.
    /// `false`: such a SYN gets the RFC 5961 challenge ACK like any other.
    pub time_wait_reuse: bool,
    /// Silently discard every segment that carries both SYN and FIN (FreeBSD
    /// `net.inet.tcp.drop_synfin`). SYN+FIN is legal in RFC 9293 (section
    /// 3.10.7.2: "any other control or text should be queued") but no real
    /// stack sends it, and port scanners use it to fingerprint hosts and
    /// slip past filters. A connection in TIME-WAIT still processes them
    /// (challenge ACK or ACK, as any SYN there): FreeBSD checks TIME-WAIT
    /// before this filter. Default `false` (RFC 9293 processing).
    pub drop_syn_fin: bool,
    /// Ignore RST segments in TIME-WAIT (RFC 1337 section 3, fix F1), so an
    /// old duplicate RST cannot cut TIME-WAIT short ("TIME-WAIT
    /// assassination", hazards H1-H3). BSD does this always, Linux with
    /// `net.ipv4.tcp_rfc1337=1`. Default `false`: RFC 9293 section 3.10.7.4
    /// ("If the RST bit is set then, enter the CLOSED state") applies.
    pub rfc1337: bool,
    /// When the peer's FIN arrives while our FIN is sent but not yet
    /// acknowledged (FIN-WAIT-1 to CLOSING, the simultaneous close of RFC
    /// 9293 section 3.6, case 2), the ACK of the peer's FIN carries our FIN
    /// again (`<SEQ=our FIN><ACK=RCV.NXT><CTL=FIN,ACK>`), as BSD stacks do.
    /// It is a retransmission of the FIN (allowed at any time, RFC 9293
    /// section 3.8.1) that repairs a lost FIN one RTO sooner. Default
    /// `false`: the plain `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` of section
    /// 3.10.7.4.
    pub closing_resends_fin: bool,
    /// Report [`ConnError::Reset`](crate::ConnError::Reset) for an
    /// acceptable RST in CLOSING and LAST-ACK, where our FIN (and perhaps
    /// data before it) is still unacknowledged, as BSD and Linux do (the
    /// application learns that the peer may not have received everything).
    /// Default `false`: RFC 9293 section 3.10.7.4 ("If the RST bit is set
    /// then, enter the CLOSED state, delete the TCB, and return"), no
    /// signal.
    pub report_reset_after_fin: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mss: 1460,
            recv_buf: 64 * 1024,
            send_buf: 64 * 1024,
            max_connections: 65_536,
            max_syn_backlog: 1024,
            prealloc_connections: 0,
            buffer_budget: usize::MAX,
            buffer_cache_bytes: 8 << 20,
            msl: Duration::from_secs(30),
            delayed_ack: Duration::from_millis(40),
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_secs(1),
            rto_max: Duration::from_secs(60),
            syn_retries: 7,
            r1: 3,
            r2: 15,
            user_timeout: None,
            keepalive: None,
            window_scaling: true,
            timestamps: true,
            sack: true,
            nodelay: false,
            ooo_max_bytes: 64 * 1024,
            ooo_max_ranges: 8,
            challenge_ack_limit: 10,
            isn_secret: [0x5a; 16],
            ephemeral_ports: 32768..=60999,
            fin_wait2_timeout: Some(Duration::from_secs(60)),
            icmp_may_abort: true,
            icmp_time_exceeded_aborts: false,
            max_pending_rsts: 256,
            congestion_control: new_reno,
            rfc5961_rst: true,
            rfc5961_syn: true,
            time_wait_reuse: true,
            drop_syn_fin: false,
            rfc1337: false,
            closing_resends_fin: false,
            report_reset_after_fin: false,
        }
    }
}

/// The default [`Config::congestion_control`].
pub(crate) fn new_reno(
    smss: usize,
    initial_ssthresh: usize,
) -> Box<dyn crate::cc::CongestionControl> {
    Box::new(crate::cc::NewReno::new(smss, initial_ssthresh))
}

impl Config {
    /// The smallest MSS we honour from a peer: smaller values would let a peer
    /// make us send a flood of tiny segments (Linux uses 48 for the same reason).
    pub const MIN_PEER_MSS: u16 = 64;

    /// Send MSS assumed when the peer sends no MSS option (RFC 9293 section
    /// 3.7.1, MUST-15: 536 for IPv4).
    pub const DEFAULT_PEER_MSS: u16 = 536;

    /// The options a connection gets when none are given: the defaults of
    /// [`connect`](crate::Endpoint::connect) and
    /// [`listen`](crate::Endpoint::listen).
    pub fn conn_options(&self) -> ConnOptions {
        ConnOptions {
            recv_buf: self.recv_buf,
            send_buf: self.send_buf,
            mss: self.mss,
            nodelay: self.nodelay,
            keepalive: self.keepalive,
            user_timeout: self.user_timeout,
            no_options: false,
        }
    }

    /// TIME-WAIT duration: 2 * MSL (MUST-13).
    pub fn time_wait(&self) -> Duration {
        self.msl.saturating_mul(2)
    }

    /// Window scale shift we offer: the smallest shift that lets `recv_buf` be
    /// advertised, at most 14 (RFC 7323 section 2.3).
    pub fn recv_wscale(&self) -> u8 {
        Self::wscale_for(self.recv_buf)
    }

    /// The smallest shift that lets `recv_buf` be advertised, at most 14.
    pub(crate) fn wscale_for(recv_buf: usize) -> u8 {
        let mut shift = 0u8;
        while shift < 14 && (recv_buf >> shift) > usize::from(u16::MAX) {
            shift += 1;
        }
        shift
    }
}
