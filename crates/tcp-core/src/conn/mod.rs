//! One connection's transmission control block (RFC 9293 section 3.3.1) and the
//! application operations on it (section 3.10.1 to 3.10.6).
//!
//! The block is split by direction of flow:
//! * [`input`]: segment arrival, RFC 9293 section 3.10.7, returning an
//!   [`input::Outcome`];
//! * [`output`]: what to send next, control segments before data;
//! * [`timers`]: the per-connection timer table and what each expiry does.
//!
//! A `Conn` never touches other connections. After creation it allocates
//! only when its data buffers grow toward their configured size (a bounded
//! number of times, see [`crate::buffer`]) and when out-of-order data or a
//! long SACK scoreboard first needs a table (released again when empty).

pub(crate) mod input;
pub(crate) mod output;
pub(crate) mod timers;

use core::net::SocketAddrV4;
use core::time::Duration;

use smallvec::SmallVec;
use wire::SeqNumber;

use crate::assembler::Assembler;
use crate::buffer::{RecvBuffer, SendBuffer};
use crate::cc::Controller;
use crate::config::{Config, ConnOptions, KeepAlive};
use crate::error::ConnError;
use crate::pool::BufferPool;
use crate::rtt::RttEstimator;
use crate::time::Instant;
use crate::State;

pub(crate) use timers::{TimerKind, TimerTable};

/// SACK scoreboard ranges stored inline in the connection (no allocation
/// for the common case of a few holes).
pub(crate) const SCOREBOARD_RANGES: usize = 4;

/// Most SACK scoreboard ranges remembered per connection (bounded; RFC 6675
/// section 3 assumes the whole scoreboard, and a burst loss makes many holes;
/// beyond the inline ones they live on the heap until recovery ends).
pub(crate) const SCOREBOARD_MAX: usize = 64;

/// DupThresh (RFC 6675 section 2, RFC 5681 section 3.2): duplicate ACKs, or
/// SACKed segments above a hole, that mark it lost.
pub(crate) const DUP_THRESH: usize = 3;

/// Who holds the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Created by a listener and not yet accepted: the slot index of the
    /// listener (its handle generation is checked by the endpoint).
    Listener(usize),
    /// The application holds the handle.
    App,
    /// The application closed or aborted; the connection finishes on its own
    /// and is released when it reaches CLOSED (with an
    /// [`EventKind::Closed`](crate::EventKind::Closed) for the handle).
    Orphan,
    /// Like `Orphan`, for a connection the application never held (its
    /// listener was closed before `accept`): released silently, since no
    /// handle of it was ever given out.
    Detached,
}

impl Owner {
    /// Nobody will read or write this connection any more.
    pub fn is_orphan(self) -> bool {
        matches!(self, Owner::Orphan | Owner::Detached)
    }
}

/// [`KeepAlive`] stored in 12 bytes (milliseconds; longer durations
/// saturate at 49 days), to keep idle connections small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeepAliveMs {
    idle_ms: u32,
    interval_ms: u32,
    pub count: u32,
}

impl From<KeepAlive> for KeepAliveMs {
    fn from(ka: KeepAlive) -> Self {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        KeepAliveMs {
            idle_ms: ms(ka.idle),
            interval_ms: ms(ka.interval),
            count: ka.count,
        }
    }
}

impl KeepAliveMs {
    /// Idle time before the first probe.
    pub fn idle(self) -> Duration {
        Duration::from_millis(u64::from(self.idle_ms))
    }
    /// Time between probes.
    pub fn interval(self) -> Duration {
        Duration::from_millis(u64::from(self.interval_ms))
    }
}

/// RFC 7323 timestamp state of a connection that negotiated timestamps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timestamps {
    /// TS.Recent (RFC 7323 section 4.3).
    pub recent: u32,
    /// When TS.Recent was last updated (PAWS 24-day rule, section 5.5).
    pub recent_at: Instant,
}

/// Delayed-ACK bookkeeping (RFC 9293 section 3.8.6.3, RFC 5681 section 4.2).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AckState {
    /// An ACK must go out at the next `poll_transmit` (out-of-order data, hole
    /// fill, FIN, window update, unacceptable segment, every second full
    /// segment). Setting it only marks: one ACK per connection per batch
    /// (MUST-58, MUST-59).
    pub now: bool,
    /// In-order bytes received since the last ACK we sent.
    pub pending_bytes: usize,
}

/// The transmission control block.
#[derive(Debug)]
pub(crate) struct Conn {
    pub state: State,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub owner: Owner,
    /// Created by a passive open (from LISTEN); governs RST in SYN-RECEIVED.
    pub passive: bool,

    // ---- send sequence space (RFC 9293 section 3.3.1) ----
    pub iss: SeqNumber,
    pub snd_una: SeqNumber,
    /// Next sequence number to send; below `snd_max` while retransmitting.
    pub snd_nxt: SeqNumber,
    /// One past the highest sequence number ever sent.
    pub snd_max: SeqNumber,
    /// Send window in bytes, already scaled.
    pub snd_wnd: u32,
    /// Largest window the peer ever offered (sender SWS, RFC 5961 section 5.2).
    pub max_snd_wnd: u32,
    pub snd_wl1: SeqNumber,
    pub snd_wl2: SeqNumber,
    /// Shift applied to the peer's window field (0 without window scaling).
    pub snd_wscale: u8,
    pub send_buf: SendBuffer,
    /// The application shut down the write side: FIN follows the queued data.
    pub fin_queued: bool,
    /// End of the last less-than-full-sized segment sent (Minshall's Nagle
    /// variant: a small segment may go when no small segment is unacknowledged).
    pub snd_sml: SeqNumber,
    /// Sequence number of our FIN, fixed when it was queued.
    pub fin_at: SeqNumber,
    /// SND.UP (RFC 9293 section 3.3.1): one past our last urgent byte while
    /// it is unacknowledged (MUST-62).
    pub snd_up: Option<SeqNumber>,

    // ---- receive sequence space ----
    pub irs: SeqNumber,
    pub rcv_nxt: SeqNumber,
    /// Right edge of the window we last advertised (never moves left, RFC
    /// 9293 section 3.8.6.2.2, SHLD-14).
    pub rcv_adv: SeqNumber,
    /// The largest window (RCV.ADV - RCV.NXT) advertised so far: the peer
    /// may be held back by our window once it is under half of this.
    pub rcv_wnd_max: u32,
    /// Bytes read out of the receive buffer ahead of the application, not
    /// yet consumed by it (see [`Endpoint::recv_ahead`](crate::Endpoint::recv_ahead)):
    /// they still count against the window. (u32: a receive buffer is far
    /// smaller, and the field fits the connection's padding.)
    pub rcv_held: u32,
    /// Shift applied to our window field.
    pub rcv_wscale: u8,
    pub recv_buf: RecvBuffer,
    pub assembler: Assembler,
    /// Sequence number of a FIN that arrived out of order (its data is held
    /// by the assembler); processed when RCV.NXT reaches it.
    pub ooo_fin: Option<SeqNumber>,
    /// The peer's FIN was received: the read side is at EOF after the buffer.
    pub fin_received: bool,
    /// RCV.UP (RFC 9293 section 3.3.1): the peer's urgent pointer, the
    /// sequence number following its urgent data (MUST-62), once it sent one.
    pub rcv_up: Option<SeqNumber>,
    /// Bytes that came on the peer's SYN in SYN-SENT (simultaneous open),
    /// written at RCV.NXT but not yet acknowledged: "queue them for
    /// processing after the ESTABLISHED state has been reached" (RFC 9293
    /// section 3.10.7.3).
    pub syn_data: u32,

    // ---- negotiated options ----
    /// Effective send MSS: most payload bytes per segment, options excluded
    /// (RFC 9293 section 3.7.1, MUST-16).
    pub smss: usize,
    /// MSS we advertised (our receive MSS).
    pub rmss: usize,
    /// Capacities the data buffers get when allocated (per connection,
    /// [`ConnOptions`]).
    pub recv_buf_size: u32,
    pub send_buf_size: u32,
    pub ts: Option<Timestamps>,
    /// TSval to use as TSecr, and the offset for our clock, before the
    /// handshake decided whether timestamps are in use.
    pub ts_offset: u32,
    pub sack_ok: bool,
    /// Send no options at all ([`ConnOptions::no_options`]).
    pub no_options: bool,
    /// Window scaling was negotiated (both SYNs carried the option).
    pub wscale_ok: bool,
    /// SACKed ranges above SND.UNA reported by the peer (RFC 2018), sorted.
    pub scoreboard: SmallVec<[(SeqNumber, SeqNumber); SCOREBOARD_RANGES]>,
    /// Last ACK number we sent (RFC 7323 Last.ACK.sent).
    pub last_ack_sent: SeqNumber,

    // ---- retransmission and congestion control ----
    pub rtt: RttEstimator,
    /// Karn's rule (MUST-18): the one segment being timed, when no
    /// timestamps: (sequence number it ends at, when it was sent). Cleared
    /// when anything is retransmitted.
    pub rtt_probe: Option<(SeqNumber, Instant)>,
    /// Our timestamp clock when the last retransmission timeout fired
    /// (timestamps only): an ACK echoing an older TSval acknowledges a
    /// transmission from before the timeout and gives no RTT sample.
    pub rto_tsval: Option<u32>,
    pub cc: Controller,
    pub dup_acks: u32,
    /// RFC 6582 "recover": one past the highest sequence number sent when
    /// the last recovery or RTO began.
    pub recover: SeqNumber,
    pub in_recovery: bool,
    /// Retransmit the segment at SND.UNA (fast retransmit or partial ACK).
    pub fast_rexmit: bool,
    /// In SACK recovery, where the next hole retransmission may start.
    pub rexmit_next: SeqNumber,
    /// Consecutive retransmission timeouts of the same data (R1/R2).
    pub retransmits: u32,
    /// All retransmitted segments over the connection's life (u32: the
    /// user timeout and retry limits end a connection long before it
    /// wraps; [`ConnInfo`](crate::ConnInfo) reports it as u64).
    pub total_retransmits: u32,
    /// Send-side silly-window or zero-window probe due (persist expiry).
    pub force_send: bool,
    /// Zero-window probes sent since the last ACK.
    pub probes_unanswered: u32,
    /// Keep-alive probes sent since the peer was last heard from.
    pub keepalives_unanswered: u32,
    /// A keep-alive probe is due.
    pub keepalive_due: bool,
    pub ack: AckState,
    /// RFC 5961 section 7 rate limit: challenge ACKs sent in the current
    /// one-second window and when the window started.
    pub challenge_count: u32,
    pub challenge_window: Instant,
    /// Send a RST (abort) and then go to CLOSED.
    pub rst_due: bool,
    pub timers: TimerTable,
    /// When the peer was last heard from (keep-alive idle time).
    pub last_recv: Instant,
    /// When we last sent something (RFC 5681 section 4.1 restart window).
    pub last_send: Instant,
    /// When the oldest unacknowledged data was last acknowledged or first
    /// sent (user timeout).
    pub oldest_unacked_since: Option<Instant>,

    // ---- application view ----
    pub error: Option<ConnError>,
    pub soft_error: Option<ConnError>,
    pub nodelay: bool,
    pub keepalive: Option<KeepAliveMs>,
    pub user_timeout: Option<Duration>,
    /// Event kinds queued on the endpoint and not yet polled (bit per kind).
    pub events_queued: u8,
    /// In the endpoint's transmit queue.
    pub tx_queued: bool,
}

/// Copy of the configuration values a connection consults after creation,
/// kept by the endpoint and passed by reference to avoid a copy per connection.
pub(crate) type ConnConfig = Config;

impl Conn {
    /// A new connection in `state` (SYN-SENT for an active open,
    /// SYN-RECEIVED for a passive one), with its buffers allocated.
    pub fn new(
        now: Instant,
        cfg: &ConnConfig,
        state: State,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        ts_offset: u32,
    ) -> Conn {
        let rmss = usize::from(cfg.mss.max(1));
        // ssthresh "MAY be arbitrarily high" initially (RFC 5681 section 3.1).
        let smss = usize::from(Config::DEFAULT_PEER_MSS).min(rmss);
        Conn {
            state,
            local,
            remote,
            owner: Owner::App,
            passive: false,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: iss,
            snd_wscale: 0,
            // Buffers come from the endpoint's pool: at once for an active
            // open, when the handshake completes for a passive one (so a SYN
            // flood costs no buffer memory).
            send_buf: SendBuffer::new(0),
            fin_queued: false,
            fin_at: iss,
            snd_up: None,
            snd_sml: iss,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_adv: SeqNumber(0),
            rcv_wnd_max: 0,
            rcv_held: 0,
            rcv_wscale: 0,
            recv_buf: RecvBuffer::new(0),
            assembler: Assembler::new(cfg.ooo_max_bytes, cfg.ooo_max_ranges),
            ooo_fin: None,
            fin_received: false,
            rcv_up: None,
            syn_data: 0,
            smss,
            rmss,
            recv_buf_size: u32::try_from(cfg.recv_buf).unwrap_or(u32::MAX),
            send_buf_size: u32::try_from(cfg.send_buf).unwrap_or(u32::MAX),
            ts: None,
            ts_offset,
            sack_ok: false,
            no_options: false,
            wscale_ok: false,
            scoreboard: SmallVec::new(),
            last_ack_sent: SeqNumber(0),
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            rtt_probe: None,
            rto_tsval: None,
            cc: Controller::new(cfg.congestion_control, smss, u32::MAX as usize),
            dup_acks: 0,
            recover: iss,
            in_recovery: false,
            fast_rexmit: false,
            rexmit_next: iss,
            retransmits: 0,
            total_retransmits: 0,
            force_send: false,
            probes_unanswered: 0,
            keepalives_unanswered: 0,
            keepalive_due: false,
            ack: AckState::default(),
            challenge_count: 0,
            challenge_window: now,
            rst_due: false,
            timers: TimerTable::default(),
            last_recv: now,
            last_send: now,
            oldest_unacked_since: None,
            error: None,
            soft_error: None,
            nodelay: cfg.nodelay,
            keepalive: cfg.keepalive.map(KeepAliveMs::from),
            user_timeout: cfg.user_timeout,
            events_queued: 0,
            tx_queued: false,
        }
    }

    /// Apply per-connection options (already clamped, see
    /// [`ConnOptions::clamped`]); before the SYN is sent and before buffers
    /// are allocated.
    pub fn apply_options(&mut self, opts: &ConnOptions) {
        self.rmss = usize::from(opts.mss.max(1));
        self.smss = usize::from(Config::DEFAULT_PEER_MSS).min(self.rmss);
        self.cc.set_mss(self.smss);
        self.recv_buf_size = u32::try_from(opts.recv_buf).unwrap_or(u32::MAX);
        self.send_buf_size = u32::try_from(opts.send_buf).unwrap_or(u32::MAX);
        self.nodelay = opts.nodelay;
        self.keepalive = opts.keepalive.map(KeepAliveMs::from);
        self.user_timeout = opts.user_timeout;
        self.no_options = opts.no_options;
    }

    /// Window scale shift we offer: from this connection's receive buffer
    /// (RFC 7323 section 2.3).
    pub fn recv_wscale(&self) -> u8 {
        Config::wscale_for(self.recv_buf_size as usize)
    }

    /// Our timestamp clock: milliseconds plus the per-connection offset
    /// (RFC 7323 section 5.4 asks for a random offset per connection).
    pub fn ts_now(&self, now: Instant) -> u32 {
        (now.as_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// Sequence number one past the last data byte queued.
    pub fn data_end(&self) -> SeqNumber {
        self.data_start() + self.send_buf.len()
    }

    /// Sequence number of the first byte in the send buffer: SND.UNA, or
    /// one after the SYN while the SYN is unacknowledged.
    pub fn data_start(&self) -> SeqNumber {
        if self.snd_una == self.iss {
            self.iss + 1
        } else {
            self.snd_una
        }
    }

    /// Sequence number of our FIN, once the application shut down writing.
    pub fn fin_seq(&self) -> Option<SeqNumber> {
        self.fin_queued.then_some(self.fin_at)
    }

    /// Shut down the write side: the FIN goes after the data queued so far.
    pub fn queue_fin(&mut self) {
        if !self.fin_queued {
            self.fin_at = self.data_end();
            self.fin_queued = true;
        }
    }

    /// Whether our FIN has been sent at least once.
    pub fn fin_sent(&self) -> bool {
        self.fin_seq().is_some_and(|f| self.snd_max > f)
    }

    /// Whether our FIN has been acknowledged.
    pub fn fin_acked(&self) -> bool {
        self.fin_seq().is_some_and(|f| self.snd_una > f)
    }

    /// Bytes sent and not yet acknowledged (FlightSize, RFC 5681 section 2).
    pub fn flight_size(&self) -> usize {
        self.snd_nxt - self.snd_una
    }

    /// The receive window we are advertising now: RCV.WND.
    pub fn rcv_wnd(&self) -> usize {
        self.rcv_adv - self.rcv_nxt
    }

    /// Data queued and not yet sent, in bytes.
    pub fn unsent(&self) -> usize {
        let sent = self.snd_nxt.max(self.data_start()) - self.data_start();
        self.send_buf.len().saturating_sub(sent)
    }

    /// Move to `state`, logging the transition.
    pub fn set_state(&mut self, state: State) {
        if self.state != state {
            tracing::trace!(local = %self.local, remote = %self.remote, from = %self.state, to = %state, "tcp state");
            self.state = state;
        }
    }

    /// End the connection: CLOSED, buffers emptied, timers stopped. `error`
    /// is reported to the application (MUST-12) unless `None`.
    pub fn enter_closed(&mut self, error: Option<ConnError>) {
        self.set_state(State::Closed);
        if error.is_some() && self.error.is_none() {
            self.error = error;
        }
        self.timers.clear();
        self.send_buf.clear();
        self.ack = AckState::default();
        self.fast_rexmit = false;
        self.force_send = false;
        self.keepalive_due = false;
    }

    /// Give the connection its data buffers if it has none yet (active open,
    /// or end of the handshake of a passive one).
    pub fn ensure_buffers(&mut self, cfg: &ConnConfig, pool: &mut BufferPool) {
        let _ = cfg;
        let (send, recv) = (self.send_buf_size as usize, self.recv_buf_size as usize);
        if self.send_buf.capacity() == 0 && send > 0 {
            self.send_buf = pool.send_buf(send);
        }
        if self.recv_buf.capacity() == 0 && recv > 0 {
            self.recv_buf = pool.recv_buf(recv);
        }
    }

    /// Return the data buffers to `pool` once they can hold nothing more: in
    /// TIME-WAIT and CLOSED nothing is sent, and nothing more is received once
    /// the application read up to the end (or released the handle). Keeps
    /// TIME-WAIT connections small.
    pub fn release_buffers(&mut self, pool: &mut BufferPool) {
        if !matches!(self.state, State::TimeWait | State::Closed) {
            return;
        }
        if self.send_buf.capacity() > 0 {
            pool.put_send(core::mem::replace(&mut self.send_buf, SendBuffer::new(0)));
        }
        if self.recv_buf.capacity() > 0 && (self.recv_buf.readable() == 0 || self.owner.is_orphan())
        {
            pool.put_recv(core::mem::replace(&mut self.recv_buf, RecvBuffer::new(0)));
            self.assembler.clear();
            // Without a buffer RCV.WND is what the window field says (as in
            // a passive SYN-RECEIVED): the buffer space beyond 65535 (no
            // window scaling) was never advertised and is gone now.
            let max = usize::from(u16::MAX) << self.rcv_wscale;
            if self.rcv_wnd() > max {
                self.rcv_adv = self.rcv_nxt + max;
            }
        }
    }

    /// Enter TIME-WAIT for 2 * MSL (MUST-13).
    pub fn enter_time_wait(&mut self, now: Instant, cfg: &ConnConfig) {
        self.set_state(State::TimeWait);
        self.timers.clear();
        self.timers.set(TimerKind::TimeWait, now + cfg.time_wait());
        self.send_buf.clear();
        self.fast_rexmit = false;
        self.force_send = false;
    }

    /// Mark that an ACK must be sent at the next transmit opportunity.
    pub fn ack_now(&mut self) {
        self.ack.now = true;
    }

    /// RFC 5961 section 7: send a challenge ACK unless this connection already
    /// sent `challenge_ack_limit` of them in the current second. Returns
    /// whether one was scheduled.
    pub fn challenge_ack(&mut self, now: Instant, cfg: &ConnConfig) -> bool {
        if now.saturating_duration_since(self.challenge_window) >= Duration::from_secs(1) {
            self.challenge_window = now;
            self.challenge_count = 0;
        }
        if self.challenge_count >= cfg.challenge_ack_limit {
            return false;
        }
        self.challenge_count += 1;
        self.ack_now();
        true
    }

    /// The URG bit and urgent pointer for a segment starting at `seq`
    /// (RFC 9293 section 3.8.5): while SND.UP is ahead of it, SEG.UP =
    /// SND.UP - SEG.SEQ, the offset of the first non-urgent octet (MUST-62),
    /// capped at 65535 when the urgent data reaches beyond what the field can
    /// express (urgent data of any length, MUST-31; RFC 6093 section 4).
    pub fn urgent_for(&self, seq: SeqNumber) -> Option<u16> {
        let up = self.snd_up?;
        (up > seq).then(|| u16::try_from(up - seq).unwrap_or(u16::MAX))
    }

    /// Sequence number of the next byte the application will read.
    pub fn read_seq(&self) -> SeqNumber {
        self.rcv_nxt - self.recv_buf.readable() - usize::from(self.fin_received)
    }

    /// Bytes to read before the end of the peer's urgent data, while its
    /// urgent pointer is ahead of what was read (RFC 9293 MUST-33).
    pub fn urgent_remaining(&self) -> Option<usize> {
        let up = self.rcv_up?;
        let read = self.read_seq();
        (up > read).then(|| up - read)
    }

    /// Bytes the application may still queue.
    pub fn writable(&self) -> usize {
        if matches!(
            self.state,
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        ) && !self.fin_queued
        {
            self.send_buf.free()
        } else {
            0
        }
    }

    /// Apply the options of the peer's SYN (or SYN-ACK): MSS (MUST-14,
    /// MUST-15: 536 when absent), window scale, SACK-permitted, timestamps
    /// (RFC 7323: each used only when both sides offered it).
    pub fn apply_syn_options(&mut self, now: Instant, cfg: &ConnConfig, opts: &wire::TcpOptions) {
        let peer_mss = opts
            .mss
            .unwrap_or(Config::DEFAULT_PEER_MSS)
            .max(Config::MIN_PEER_MSS);
        // Eff.snd.MSS = min(SendMSS, MMS_S - headers) (MUST-16); our own MSS
        // stands for MMS_S since both ends share the link.
        let mut smss = usize::from(peer_mss).min(self.rmss);
        let ours = !self.no_options;
        match (cfg.window_scaling && ours, opts.window_scale) {
            (true, Some(shift)) => {
                self.wscale_ok = true;
                self.snd_wscale = shift.min(wire::tcp::MAX_WINDOW_SCALE);
                self.rcv_wscale = self.recv_wscale();
            }
            _ => {
                self.wscale_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.sack_ok = cfg.sack && ours && opts.sack_permitted;
        self.ts = match (cfg.timestamps && ours, opts.timestamps) {
            (true, Some((tsval, _))) => {
                // The timestamp option takes 12 bytes of every segment
                // (RFC 9293 section 3.7.1: options reduce the payload).
                smss = smss.saturating_sub(12).max(1);
                Some(Timestamps {
                    recent: tsval,
                    recent_at: now,
                })
            }
            _ => None,
        };
        self.smss = smss;
        self.cc.set_mss(smss);
    }

    /// The advertised window field value for a non-SYN segment, with receiver
    /// silly-window avoidance (RFC 9293 section 3.8.6.2.2, MUST-39): the right
    /// edge moves forward only by at least min(buffer / 2, MSS), and never
    /// moves back (SHLD-14).
    pub fn window_to_advertise(&mut self) -> u16 {
        let free = self.free_window();
        let current = self.rcv_wnd();
        let threshold = (self.recv_buf.capacity() / 2).min(self.rmss).max(1);
        if free >= current + threshold || (free > current && free == self.recv_buf.capacity()) {
            // Round the new edge down to what the scaled field can express.
            let unit = 1usize << self.rcv_wscale;
            let wnd = (free / unit) * unit;
            if wnd > current {
                self.rcv_adv = self.rcv_nxt + wnd;
            }
        }
        self.note_advertised();
        let wnd = self.rcv_wnd() >> self.rcv_wscale;
        u16::try_from(wnd).unwrap_or(u16::MAX)
    }

    /// The room the window may offer: the receive buffer's free space less
    /// the bytes read ahead of the application and not yet consumed, so
    /// that the peer is offered only what the buffer and that copy hold
    /// together (RCV.WND is the buffer space, RFC 9293 section 3.3.1).
    fn free_window(&self) -> usize {
        self.recv_buf
            .window()
            .saturating_sub(self.rcv_held as usize)
    }

    /// Records the window just advertised in [`rcv_wnd_max`](Self::rcv_wnd_max).
    pub fn note_advertised(&mut self) {
        let wnd = u32::try_from(self.rcv_wnd()).unwrap_or(u32::MAX);
        self.rcv_wnd_max = self.rcv_wnd_max.max(wnd);
    }

    /// Whether reading freed enough space that the peer should hear about
    /// it now rather than at the next ACK (window update after a read): the
    /// right edge can move by the receiver-SWS threshold and the window the
    /// peer knows has shrunk below half of the largest one it was offered,
    /// so it may be waiting for room.
    ///
    /// Measured against the largest window offered, not the buffer: a
    /// passive open offers at most 65535 bytes in its SYN-ACK (the field is
    /// never scaled there, RFC 7323 section 2.2), so against a larger buffer
    /// the first read of a short request would owe an ACK of its own
    /// instead of letting the reply carry the wider window.
    pub fn window_update_due(&self) -> bool {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return false;
        }
        let free = self.free_window();
        let current = self.rcv_wnd();
        let threshold = (self.recv_buf.capacity() / 2).min(self.rmss).max(1);
        let offered = (self.rcv_wnd_max as usize).min(self.recv_buf.capacity());
        current < offered / 2 && free >= current + threshold
    }

    /// Remove scoreboard ranges at or below SND.UNA.
    pub fn trim_scoreboard(&mut self) {
        let una = self.snd_una;
        self.scoreboard.retain(|(_, r)| *r > una);
        for range in self.scoreboard.iter_mut() {
            if range.0 < una {
                range.0 = una;
            }
        }
    }

    /// Record the SACK blocks of an ACK (RFC 2018 section 4), ignoring blocks
    /// outside SND.UNA..SND.MAX (they are stale or forged).
    pub fn record_sack(&mut self, blocks: &[(SeqNumber, SeqNumber)]) {
        for &(l, r) in blocks {
            if !(l < r && l >= self.snd_una && r <= self.snd_max) {
                continue;
            }
            let (mut l, mut r) = (l, r);
            // Merge every overlapping or adjacent range into (l, r).
            self.scoreboard.retain(|&mut (a, b)| {
                if b < l || a > r {
                    true
                } else {
                    l = l.min(a);
                    r = r.max(b);
                    false
                }
            });
            if self.scoreboard.len() == SCOREBOARD_MAX {
                // Bounded: forget the highest range (it will be re-reported).
                self.scoreboard.pop();
            }
            let pos = self
                .scoreboard
                .iter()
                .position(|&(a, _)| a > l)
                .unwrap_or(self.scoreboard.len());
            self.scoreboard.insert(pos, (l, r));
        }
    }

    /// RFC 6675 section 4 IsLost, as a boundary: every un-SACKed byte below
    /// the returned sequence number has more than (DupThresh - 1) * SMSS
    /// SACKed bytes, or DupThresh discontiguous SACKed ranges, above it, and
    /// is considered lost. SND.UNA when nothing is.
    pub fn lost_below(&self) -> SeqNumber {
        let limit = (DUP_THRESH - 1) * self.smss;
        let mut bytes = 0usize;
        for (n, &(l, r)) in self.scoreboard.iter().rev().enumerate() {
            bytes += r - l;
            if bytes > limit || n + 1 >= DUP_THRESH {
                return l;
            }
        }
        self.snd_una
    }

    /// Bytes of `a..b` covered by SACKed ranges.
    fn sacked_in(&self, a: SeqNumber, b: SeqNumber) -> usize {
        self.scoreboard
            .iter()
            .map(|&(l, r)| {
                let (lo, hi) = (l.max(a), r.min(b));
                if hi > lo {
                    hi - lo
                } else {
                    0
                }
            })
            .sum()
    }

    /// Un-SACKed bytes of `a..b`.
    fn unsacked_in(&self, a: SeqNumber, b: SeqNumber) -> usize {
        if b <= a {
            return 0;
        }
        (b - a).saturating_sub(self.sacked_in(a, b))
    }

    /// RFC 6675 section 4 SetPipe: the bytes the sender believes are still
    /// in the network. Of the un-SACKed bytes in SND.UNA..SND.MAX, those
    /// below HighRxt (retransmitted in this recovery) count once, those
    /// above it that IsLost marks count zero, the rest once.
    pub fn pipe(&self) -> usize {
        let (una, high) = (self.snd_una, self.snd_max);
        if high <= una {
            return 0;
        }
        let high_rxt = self.rexmit_next.max(una).min(high);
        let lost = self.lost_below().max(high_rxt).min(high);
        self.unsacked_in(una, high)
            .saturating_sub(self.unsacked_in(high_rxt, lost))
    }

    /// In loss recovery driven by the SACK scoreboard (RFC 6675); without
    /// SACK, recovery is NewReno's (RFC 6582).
    pub fn sack_recovery(&self) -> bool {
        self.in_recovery && self.sack_ok
    }

    /// If `seq` is inside a SACKed range, the end of that range.
    pub fn sacked_until(&self, seq: SeqNumber) -> Option<SeqNumber> {
        self.scoreboard
            .iter()
            .find(|&&(l, r)| l <= seq && seq < r)
            .map(|&(_, r)| r)
    }

    /// Start of the next SACKed range at or after `seq`, if any.
    pub fn next_sacked(&self, seq: SeqNumber) -> Option<SeqNumber> {
        self.scoreboard
            .iter()
            .find(|&&(l, _)| l >= seq)
            .map(|&(l, _)| l)
    }

    /// The retransmission and user timeouts to arm after sending data.
    pub fn arm_retransmit(&mut self, now: Instant) {
        if !self.timers.is_armed(TimerKind::Retransmit) {
            self.timers.set(TimerKind::Retransmit, now + self.rtt.rto());
        }
        if self.oldest_unacked_since.is_none() {
            self.oldest_unacked_since = Some(now);
        }
        if let Some(ut) = self.user_timeout {
            if !self.timers.is_armed(TimerKind::UserTimeout) {
                let since = self.oldest_unacked_since.unwrap_or(now);
                self.timers.set(TimerKind::UserTimeout, since + ut);
            }
        }
    }

    /// Re-arm the keep-alive timer: `idle` after the peer was last heard
    /// from (MUST-26: probes only after an idle interval).
    pub fn rearm_keepalive(&mut self) {
        match self.keepalive {
            Some(ka) if self.state.is_synchronized() && self.state != State::TimeWait => {
                if self.keepalives_unanswered == 0 {
                    self.timers
                        .set(TimerKind::KeepAlive, self.last_recv + ka.idle());
                }
            }
            _ => self.timers.cancel(TimerKind::KeepAlive),
        }
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod size_tests {
    use core::mem::size_of;

    /// Issue 2 budget: at most 1 KiB per idle established connection besides
    /// data buffers, which includes the slab's growth slack (up to a third
    /// more at 100,000 connections) and the flow table. An idle connection
    /// owns no heap memory besides its buffers (congestion controller
    /// inline; the out-of-order table only once it saw reordering, at most
    /// `ooo_max_ranges` entries, freed with the receive buffer), so its
    /// inline size is the budget.
    #[test]
    fn idle_connection_fits_the_memory_budget() {
        let conn = size_of::<super::Conn>();
        assert!(conn <= 656, "size_of::<Conn>() = {conn}");
        assert_eq!(size_of::<crate::cc::Controller>(), 40);
        assert_eq!(size_of::<crate::buffer::SendBuffer>(), 40);
        assert_eq!(size_of::<crate::buffer::RecvBuffer>(), 40);
    }
}
