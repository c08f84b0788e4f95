//! Per-connection timers: a small table indexed by [`TimerKind`] (quinn
//! style). The endpoint keeps one entry per connection in its timer queue, at
//! the table's earliest deadline.

use crate::config::Config;
use crate::error::ConnError;
use crate::time::Instant;
use crate::State;

use super::Conn;

/// The timers a connection can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum TimerKind {
    /// Retransmission timeout, RFC 6298 section 5 (also for SYN and FIN).
    Retransmit = 0,
    /// Delayed ACK, RFC 9293 section 3.8.6.3 (MUST-40: under 0.5 s).
    DelayedAck = 1,
    /// Zero-window probe and sender-SWS override (RFC 9293 sections
    /// 3.8.6.1 and 3.8.6.2.1).
    Persist = 2,
    /// Keep-alive (RFC 9293 section 3.8.4).
    KeepAlive = 3,
    /// 2 * MSL in TIME-WAIT (MUST-13), or the orphan FIN-WAIT-2 limit.
    TimeWait = 4,
    /// User timeout (RFC 9293 section 3.9.1, RFC 5482).
    UserTimeout = 5,
}

const KINDS: [TimerKind; 6] = [
    TimerKind::Retransmit,
    TimerKind::DelayedAck,
    TimerKind::Persist,
    TimerKind::KeepAlive,
    TimerKind::TimeWait,
    TimerKind::UserTimeout,
];

/// Deadlines per timer kind; `Instant::MAX` means "not armed".
#[derive(Debug, Clone)]
pub(crate) struct TimerTable {
    deadlines: [Instant; KINDS.len()],
}

impl Default for TimerTable {
    fn default() -> Self {
        TimerTable {
            deadlines: [Instant::MAX; KINDS.len()],
        }
    }
}

impl TimerTable {
    /// Arm (or re-arm) `kind` for `at`.
    pub fn set(&mut self, kind: TimerKind, at: Instant) {
        self.deadlines[kind as usize] = at;
    }

    /// Disarm `kind`.
    pub fn cancel(&mut self, kind: TimerKind) {
        self.deadlines[kind as usize] = Instant::MAX;
    }

    /// Whether `kind` is armed.
    pub fn is_armed(&self, kind: TimerKind) -> bool {
        self.deadlines[kind as usize] != Instant::MAX
    }

    /// Disarm everything.
    pub fn clear(&mut self) {
        self.deadlines = [Instant::MAX; KINDS.len()];
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        let d = self.deadlines.iter().copied().min().unwrap_or(Instant::MAX);
        (d != Instant::MAX).then_some(d)
    }

    /// Disarm and return the first kind due at `now`.
    fn pop_expired(&mut self, now: Instant) -> Option<TimerKind> {
        let kind = KINDS
            .iter()
            .copied()
            .find(|&k| self.deadlines[k as usize] <= now)?;
        self.cancel(kind);
        Some(kind)
    }
}

impl Conn {
    /// Run every timer due at `now`.
    pub fn on_timeout(&mut self, now: Instant, cfg: &Config) {
        while let Some(kind) = self.timers.pop_expired(now) {
            if self.state == State::Closed {
                return;
            }
            match kind {
                TimerKind::Retransmit => self.on_retransmit_timeout(now, cfg),
                TimerKind::DelayedAck => {
                    if self.ack.pending_bytes > 0 {
                        self.ack_now();
                    }
                }
                TimerKind::Persist => self.on_persist_timeout(now, cfg),
                TimerKind::KeepAlive => self.on_keepalive_timeout(now),
                TimerKind::TimeWait => {
                    // TIME-WAIT over (MUST-13), or an orphan gave up waiting
                    // in FIN-WAIT-2 for the peer's FIN.
                    self.enter_closed(None);
                }
                TimerKind::UserTimeout => {
                    if self.snd_una != self.snd_max {
                        tracing::debug!(remote = %self.remote, "user timeout");
                        self.timeout_abort();
                    }
                }
            }
        }
    }

    /// Give up on the connection: RFC 9293 section 3.8.3 (R2) and 3.9.1
    /// (user timeout) say "close the connection"; a RST tells the peer.
    fn timeout_abort(&mut self) {
        if self.state.is_synchronized() || self.state == State::SynReceived {
            self.rst_due = true;
        } else {
            self.enter_closed(Some(ConnError::TimedOut));
        }
        self.error.get_or_insert(ConnError::TimedOut);
    }

    /// RFC 6298 section 5.4 to 5.7, with RFC 5681 section 3.1 (loss window)
    /// and R1/R2 (RFC 9293 section 3.8.3, MUST-20, MUST-22).
    fn on_retransmit_timeout(&mut self, now: Instant, cfg: &Config) {
        if self.snd_una == self.snd_max {
            return;
        }
        if self.snd_wnd == 0 && self.state.sends_data() {
            // The peer's window is closed: zero-window probing takes over,
            // which never gives up on a peer that answers (MUST-37).
            self.snd_nxt = self.snd_una;
            if !self.timers.is_armed(TimerKind::Persist) {
                self.timers.set(TimerKind::Persist, now + self.rtt.rto());
            }
            return;
        }
        let limit = match self.state {
            State::SynSent | State::SynReceived => cfg.syn_retries,
            _ => cfg.r2,
        };
        if self.retransmits >= limit {
            tracing::debug!(remote = %self.remote, retransmits = self.retransmits, "retransmission limit reached");
            self.timeout_abort();
            return;
        }
        self.retransmits += 1;
        if self.retransmits == cfg.r1 {
            tracing::debug!(remote = %self.remote, "R1 retransmissions reached");
        }
        if self.state.is_synchronized() {
            self.cc.on_rto(self.flight_size());
        }
        self.rtt.backoff();
        // Karn's rule (MUST-18): no RTT sample from retransmitted data.
        self.rtt_probe = None;
        if self.ts.is_some() {
            self.rto_tsval = Some(self.ts_now(now));
        }
        // RFC 6582 section 3.2 step 4 / RFC 2018 section 8: leave recovery,
        // remember the highest sequence sent, forget SACK information.
        self.recover = self.snd_max;
        self.in_recovery = false;
        self.dup_acks = 0;
        self.fast_rexmit = false;
        self.scoreboard.clear();
        self.scoreboard.shrink_to_fit();
        // Go back to SND.UNA: the output path resends from there (the SYN,
        // SYN-ACK or FIN too when those are what is unacknowledged).
        self.snd_nxt = self.snd_una;
        self.timers
            .set(super::TimerKind::Retransmit, now + self.rtt.rto());
    }

    /// A zero-window probe or the sender-SWS override is due (SHLD-29: the
    /// first probe after one RTO; SHLD-30: exponential backoff; MUST-37:
    /// never time out a peer that keeps answering).
    fn on_persist_timeout(&mut self, now: Instant, cfg: &Config) {
        if !self.state.sends_data() || (self.unsent() == 0 && !self.fin_pending_unsent()) {
            return;
        }
        if self.probes_unanswered >= cfg.r2 {
            tracing::debug!(remote = %self.remote, "zero-window probes unanswered");
            self.timeout_abort();
            return;
        }
        self.force_send = true;
        if self.snd_wnd == 0 {
            self.probes_unanswered += 1;
        }
        self.rtt.backoff();
        self.timers.set(TimerKind::Persist, now + self.rtt.rto());
    }

    /// Whether a FIN is queued and not yet sent.
    pub(crate) fn fin_pending_unsent(&self) -> bool {
        self.fin_seq().is_some_and(|f| self.snd_nxt <= f)
    }

    /// RFC 9293 section 3.8.4: probe after `idle`, then every `interval`,
    /// drop after `count` unanswered probes.
    fn on_keepalive_timeout(&mut self, now: Instant) {
        let Some(ka) = self.keepalive else { return };
        if !self.state.is_synchronized() || self.state == State::TimeWait {
            return;
        }
        if self.snd_una != self.snd_max || self.unsent() > 0 {
            // Not idle: the retransmission machinery watches the peer.
            self.timers.set(TimerKind::KeepAlive, now + ka.idle());
            return;
        }
        if self.keepalives_unanswered >= ka.count {
            tracing::debug!(remote = %self.remote, "keep-alive unanswered");
            self.timeout_abort();
            return;
        }
        self.keepalives_unanswered += 1;
        self.keepalive_due = true;
        self.timers.set(TimerKind::KeepAlive, now + ka.interval());
    }
}
