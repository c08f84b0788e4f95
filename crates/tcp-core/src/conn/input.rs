//! Segment arrival: RFC 9293 section 3.10.7 ("SEGMENT ARRIVES") for the
//! states that have a TCB, with RFC 5961 (challenge ACKs), RFC 7323 (PAWS,
//! RTTM) and RFC 2018 (SACK) folded in.
//!
//! [`Conn::on_segment`] never sends anything itself: it updates the block,
//! marks what is owed (an ACK, a retransmission) and returns an [`Outcome`]
//! that tells the endpoint what else to do.

use core::time::Duration;

use wire::{SeqNumber, TcpFlags, TcpRepr};

use crate::config::Config;
use crate::error::ConnError;
use crate::pool::BufferPool;
use crate::time::Instant;
use crate::State;

use super::{Conn, Owner, TimerKind};

/// RFC 7323 section 5.5: TS.Recent older than 24 days is invalid for PAWS.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 60 * 60);

/// What the endpoint must do after a connection processed a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Consumed (possibly ignored); anything owed is marked on the block.
    Done,
    /// Reply with a RST built from the segment (RFC 9293 section 3.10.7.1
    /// rules); the connection itself is unchanged.
    Reset,
    /// A SYN-RECEIVED connection from a passive open completed the handshake:
    /// move it to its listener's accept queue.
    Established,
    /// A SYN hit a TIME-WAIT connection and may open a new incarnation (MAY-2):
    /// release this one and hand the SYN to the listener.
    Reopen,
}

/// Events the segment caused, for the endpoint to queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Signals {
    pub connected: bool,
    pub readable: bool,
    pub writable: bool,
    pub peer_fin: bool,
    pub error: Option<ConnError>,
}

impl Conn {
    /// Process one segment addressed to this connection.
    pub fn on_segment(
        &mut self,
        now: Instant,
        cfg: &Config,
        pool: &mut BufferPool,
        seg: &TcpRepr<'_>,
        sig: &mut Signals,
    ) -> Outcome {
        match self.state {
            State::Closed | State::Listen => Outcome::Done,
            State::SynSent => self.on_segment_syn_sent(now, cfg, pool, seg, sig),
            _ => self.on_segment_synchronized(now, cfg, pool, seg, sig),
        }
    }

    /// RFC 9293 section 3.10.7.3, SYN-SENT.
    fn on_segment_syn_sent(
        &mut self,
        now: Instant,
        cfg: &Config,
        pool: &mut BufferPool,
        seg: &TcpRepr<'_>,
        sig: &mut Signals,
    ) -> Outcome {
        let flags = seg.flags;
        // "first check the ACK bit: If SEG.ACK =< ISS or SEG.ACK > SND.NXT,
        // send a reset (unless the RST bit is set, if so drop the segment)".
        let ack_ok = flags.ack() && seg.ack > self.iss && seg.ack <= self.snd_max;
        if flags.ack() && !ack_ok {
            return if flags.rst() {
                Outcome::Done
            } else {
                Outcome::Reset
            };
        }
        // "second, check the RST bit: If the ACK was acceptable, then signal
        // to the user 'error: connection reset', drop the segment, enter
        // CLOSED state". Without an ACK, drop (RFC 5961 section 3.2 note).
        if flags.rst() {
            if ack_ok {
                self.enter_closed(Some(ConnError::Refused));
                sig.error = Some(ConnError::Refused);
            }
            return Outcome::Done;
        }
        // "fourth, check the SYN bit".
        if !flags.syn() {
            return Outcome::Done;
        }
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.last_recv = now;
        self.apply_syn_options(now, cfg, &seg.options);
        // RCV.WND is the buffer space, as in every other state (see
        // `emit_syn`); the window field says at most what it can express.
        let free = self.recv_buf.window();
        self.rcv_adv = self.rcv_nxt + free;
        if ack_ok {
            // "If SND.UNA > ISS (our SYN has been ACKed), change the
            // connection state to ESTABLISHED, form an ACK segment and send it".
            self.snd_una = seg.ack;
            if self.snd_nxt < self.snd_una {
                self.snd_nxt = self.snd_una;
            }
            self.update_window(seg, true);
            self.handshake_rtt(now, seg);
            self.on_established(now, cfg, pool);
            sig.connected = true;
            self.ack_now();
            // Data or FIN on the SYN-ACK ("sixth, ... continue processing").
            self.process_text_and_fin(now, cfg, seg, sig);
        } else {
            // Simultaneous open (MUST-10): "enter SYN-RECEIVED, form a
            // SYN,ACK segment and send it". Rewinding SND.NXT to ISS makes
            // the output path send the SYN-ACK.
            self.set_state(State::SynReceived);
            if !seg.payload.is_empty() {
                let n = self.recv_buf.write_at(0, seg.payload);
                self.syn_data = u32::try_from(n).unwrap_or(0);
            }
            self.snd_wnd = u32::from(seg.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq;
            self.snd_nxt = self.iss;
        }
        Outcome::Done
    }

    /// Handshake done: RFC 6298 section 5.7 fallback if the SYN was
    /// retransmitted, congestion state initialised, keep-alive armed.
    fn on_established(&mut self, now: Instant, cfg: &Config, pool: &mut BufferPool) {
        self.set_state(State::Established);
        self.ensure_buffers(cfg, pool);
        if self.syn_data > 0 {
            // Text that came with the peer's SYN, queued until now.
            let n = self.recv_buf.commit(self.syn_data as usize);
            self.rcv_nxt += n;
            self.syn_data = 0;
            // In-order text like any other: the usual delayed ACK (RFC 5681
            // section 4.2, SHLD-18/19), so it can ride on the next segment
            // (a reply, or the FIN of an immediate close).
            self.ack.pending_bytes += n;
            if self.ack.pending_bytes >= 2 * self.rmss || cfg.delayed_ack.is_zero() {
                self.ack_now();
            } else if !self.timers.is_armed(TimerKind::DelayedAck) {
                self.timers
                    .set(TimerKind::DelayedAck, now + cfg.delayed_ack);
            }
        }
        if self.retransmits > 0 {
            self.rtt.on_syn_timeout_fallback();
        }
        self.retransmits = 0;
        self.timers.cancel(TimerKind::Retransmit);
        self.oldest_unacked_since = None;
        self.timers.cancel(TimerKind::UserTimeout);
        // RFC 5681 section 3.1 / RFC 6928: initial window from the
        // negotiated MSS; ssthresh stays arbitrarily high.
        self.cc.set_mss(self.smss);
        self.recover = self.snd_una;
        self.rexmit_next = self.snd_una;
        if self.fin_queued {
            // CLOSE was called in SYN-SENT/SYN-RECEIVED: "queue for
            // processing after entering ESTABLISHED state" (3.10.4).
            self.set_state(State::FinWait1);
        }
        self.rearm_keepalive();
        let _ = now;
    }

    /// RTT sample from the handshake (RFC 6298 section 2: the SYN is timed
    /// unless it was retransmitted, Karn).
    fn handshake_rtt(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        if let (Some(_), Some((_, tsecr))) = (self.ts, seg.options.timestamps) {
            if tsecr != 0 {
                let ms = self.ts_now(now).wrapping_sub(tsecr);
                if ms < 0x8000_0000 {
                    self.rtt.on_sample(Duration::from_millis(u64::from(ms)));
                }
                return;
            }
        }
        if let Some((end, sent)) = self.rtt_probe.take() {
            if seg.ack >= end {
                self.rtt.on_sample(now.saturating_duration_since(sent));
            }
        }
    }

    /// RFC 9293 section 3.10.7.4, "Otherwise" (SYN-RECEIVED and the
    /// synchronized states), in the order PAWS, RST, SYN, sequence check, ACK,
    /// text, FIN.
    fn on_segment_synchronized(
        &mut self,
        now: Instant,
        cfg: &Config,
        pool: &mut BufferPool,
        seg: &TcpRepr<'_>,
        sig: &mut Signals,
    ) -> Outcome {
        let flags = seg.flags;

        // RFC 7323 section 5.3 R1 (PAWS): drop a non-RST segment whose TSval
        // is older than TS.Recent, and ACK it.
        if let (Some(ts), Some((tsval, _))) = (self.ts, seg.options.timestamps) {
            if !flags.rst()
                && (tsval.wrapping_sub(ts.recent) as i32) < 0
                && now.saturating_duration_since(ts.recent_at) < PAWS_IDLE
            {
                self.ack_now();
                return Outcome::Done;
            }
        }

        // RFC 5961 section 3.2 (RFC 9293 "second, check the RST bit"):
        // reset only on an exact match with RCV.NXT; anywhere else in the
        // window earns a challenge ACK; outside it, silence. MUST-66: this
        // works with a zero window too.
        if flags.rst() {
            if self.state == State::TimeWait && cfg.rfc1337 {
                // RFC 1337 section 3 (F1): "Ignore RST segments in
                // TIME-WAIT state".
                return Outcome::Done;
            }
            let wnd = self.rcv_wnd();
            let in_window = seg.seq > self.rcv_nxt && seg.seq < self.rcv_nxt + wnd;
            if seg.seq == self.rcv_nxt || (in_window && !cfg.rfc5961_rst) {
                return self.on_reset(cfg, sig);
            }
            if in_window {
                self.challenge_ack(now, cfg);
            }
            return Outcome::Done;
        }

        // RFC 5961 section 4 (RFC 9293 "fourth, check the SYN bit").
        if flags.syn() {
            return self.on_syn_synchronized(now, cfg, seg, sig);
        }

        // "first, check sequence number" (the four acceptability cases).
        if !self.acceptable(seg) {
            // RFC 9293: "If the RCV.WND is zero, no segments will be
            // acceptable, but special allowance should be made to accept
            // valid ACKs". A zero-window probe carries one.
            if self.rcv_wnd() == 0 && seg.seq == self.rcv_nxt && flags.ack() {
                self.last_recv = now;
                self.keepalives_unanswered = 0;
                let _ = self.process_ack(now, cfg, seg, sig);
            }
            // A retransmission of the peer's FIN in TIME-WAIT (it lost our
            // ACK): "Acknowledge it, and restart the 2 MSL timeout".
            if self.state == State::TimeWait
                && flags.fin()
                && seg.seq + (seg.payload.len() + 1) == self.rcv_nxt
            {
                self.timers.set(TimerKind::TimeWait, now + cfg.time_wait());
            }
            // "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" then drop.
            self.ack_now();
            return Outcome::Done;
        }
        self.last_recv = now;
        self.keepalives_unanswered = 0;
        self.rearm_keepalive();

        // RFC 7323 section 4.3: update TS.Recent when SEG.SEQ <= Last.ACK.sent.
        if let (Some(ts), Some((tsval, _))) = (self.ts.as_mut(), seg.options.timestamps) {
            if (tsval.wrapping_sub(ts.recent) as i32) >= 0 && seg.seq <= self.last_ack_sent {
                ts.recent = tsval;
                ts.recent_at = now;
            }
        }

        // "fifth, check the ACK field: if the ACK bit is off, drop the segment".
        if !flags.ack() {
            return Outcome::Done;
        }
        let mut outcome = Outcome::Done;
        if self.state == State::SynReceived {
            // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state
            // ... If the segment acknowledgment is not acceptable, form a
            // reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
            if !(seg.ack > self.snd_una && seg.ack <= self.snd_max) {
                return Outcome::Reset;
            }
            self.snd_una = seg.ack;
            if self.snd_nxt < self.snd_una {
                self.snd_nxt = self.snd_una;
            }
            self.update_window(seg, true);
            self.handshake_rtt(now, seg);
            self.on_established(now, cfg, pool);
            if matches!(self.owner, Owner::Listener(_)) {
                outcome = Outcome::Established;
            } else {
                sig.connected = true;
            }
        } else {
            match self.process_ack(now, cfg, seg, sig) {
                AckResult::Ok => {}
                AckResult::Drop => return Outcome::Done,
                AckResult::Closed => return Outcome::Done,
            }
        }

        // "sixth, check the URG bit" (ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2;
        // after the peer's FIN "this should not occur ... ignore the URG").
        if seg.flags.contains(TcpFlags::URG)
            && matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
            && !self.fin_received
        {
            self.on_urgent(seg, sig);
        }

        // "seventh, process the segment text" and "eighth, check the FIN bit".
        self.process_text_and_fin(now, cfg, seg, sig);
        outcome
    }

    /// The four acceptability cases of RFC 9293 section 3.10.7.4.
    fn acceptable(&self, seg: &TcpRepr<'_>) -> bool {
        let len = seg.seq_len();
        let wnd = self.rcv_wnd();
        let nxt = self.rcv_nxt;
        let in_window = |s: SeqNumber| s >= nxt && s < nxt + wnd;
        match (len, wnd) {
            (0, 0) => seg.seq == nxt,
            (0, _) => in_window(seg.seq),
            (_, 0) => false,
            (_, _) => in_window(seg.seq) || in_window(seg.seq + (len - 1)),
        }
    }

    /// An acceptable RST (SEG.SEQ = RCV.NXT) in a synchronized state or
    /// SYN-RECEIVED (RFC 9293 section 3.10.7.4 "second").
    fn on_reset(&mut self, cfg: &Config, sig: &mut Signals) -> Outcome {
        let error = match self.state {
            // "If this connection was initiated with a passive OPEN, then
            // return this connection to the LISTEN state" (the listener is
            // still there; this half-open connection just goes away).
            State::SynReceived if self.passive => None,
            // "If this connection was initiated with an active OPEN, then the
            // connection was refused".
            State::SynReceived => Some(ConnError::Refused),
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                Some(ConnError::Reset)
            }
            // Config::report_reset_after_fin: our FIN (and maybe data
            // before it) is unacknowledged, like an outstanding SEND that
            // section 3.10.7.4 answers with "reset" in the other states.
            State::Closing | State::LastAck if cfg.report_reset_after_fin => Some(ConnError::Reset),
            // CLOSING, LAST-ACK, TIME-WAIT: "enter the CLOSED state, delete
            // the TCB, and return".
            _ => None,
        };
        self.recv_buf_discard_on_reset();
        self.enter_closed(error);
        sig.error = error;
        Outcome::Done
    }

    /// RFC 9293: on RST "all segment queues should be flushed", for a
    /// connection nobody will read. One with a reader (the application's, or
    /// one waiting for `accept`) keeps its received data to be read before the
    /// error, as Linux does.
    fn recv_buf_discard_on_reset(&mut self) {
        if self.owner.is_orphan() {
            self.recv_buf.clear();
        }
    }

    /// SYN in SYN-RECEIVED or a synchronized state.
    fn on_syn_synchronized(
        &mut self,
        now: Instant,
        cfg: &Config,
        seg: &TcpRepr<'_>,
        sig: &mut Signals,
    ) -> Outcome {
        // Our SYN-ACK was lost and the peer retransmitted its SYN: answer with
        // the SYN-ACK again rather than a bare ACK.
        if self.state == State::SynReceived && seg.seq == self.irs && !seg.flags.ack() {
            self.snd_nxt = self.iss;
            return Outcome::Done;
        }
        // RFC 9293 section 3.10.7.4 "fourth", SYN-RECEIVED: "If the
        // connection was initiated with a passive OPEN, then return this
        // connection to the LISTEN state and return."
        if self.state == State::SynReceived && self.passive {
            self.enter_closed(None);
            return Outcome::Done;
        }
        // MAY-2: a new SYN may reopen a connection in TIME-WAIT, by the rules
        // of RFC 6191 section 2 (SHLD-4, "use timestamps to reduce
        // TIME-WAIT"): when both incarnations use timestamps, a newer
        // timestamp suffices whatever the sequence number (PAWS protects
        // the new one from old duplicates); otherwise the SYN's sequence
        // number must be above the old incarnation's.
        if self.state == State::TimeWait && !seg.flags.ack() && cfg.time_wait_reuse {
            let reopen = match (self.ts, seg.options.timestamps) {
                (Some(ts), Some((tsval, _))) if cfg.timestamps => {
                    (tsval.wrapping_sub(ts.recent) as i32) > 0
                }
                _ => seg.seq > self.rcv_nxt,
            };
            if reopen {
                return Outcome::Reopen;
            }
        }
        if !cfg.rfc5961_syn {
            // RFC 793: a SYN in the window is an error: reset the
            // connection (and tell the peer); outside it, an ordinary ACK.
            // It is the SYN's own sequence number that must be in the
            // window: a SYN left of RCV.NXT is an old part of a segment that
            // straddles the edge, and "only the new parts are processed"
            // (RFC 9293 section 3.10.7.4 "first"; RFC 793 "fourth": "If the
            // SYN is not in the window this step would not be reached and an
            // ACK would have been sent in the first step").
            let wnd = self.rcv_wnd();
            let syn_in_window = seg.seq >= self.rcv_nxt && seg.seq < self.rcv_nxt + wnd;
            if syn_in_window {
                // "the user should also receive an unsolicited general
                // 'connection reset' signal" (RFC 793, any synchronized state).
                let error = Some(ConnError::Reset);
                self.rst_due = true;
                self.error = self.error.or(error);
                sig.error = error;
            } else {
                self.ack_now();
            }
            return Outcome::Done;
        }
        // RFC 5961 section 4.2: "the receiver MUST send an ACK (challenge
        // ACK) to the remote peer", whatever the sequence number.
        self.challenge_ack(now, cfg);
        Outcome::Done
    }

    /// Apply the window of an acceptable segment if it is newer (RFC 9293
    /// section 3.10.7.4: SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2
    /// =< SEG.ACK)). `force` applies it unconditionally (handshake).
    fn update_window(&mut self, seg: &TcpRepr<'_>, force: bool) {
        let newer = self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= seg.ack);
        if !(force || newer) {
            return;
        }
        // The window field of a SYN is never scaled (RFC 7323 section 2.2).
        let shift = if seg.flags.syn() { 0 } else { self.snd_wscale };
        let wnd = u32::from(seg.window) << shift;
        let was_zero = self.snd_wnd == 0;
        self.snd_wnd = wnd;
        self.max_snd_wnd = self.max_snd_wnd.max(wnd);
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        if wnd > 0 && was_zero {
            // The window opened: leave persist mode, and send the probe byte
            // again with the rest if the peer did not take it.
            if self.timers.is_armed(TimerKind::Persist)
                && !self.timers.is_armed(TimerKind::Retransmit)
            {
                self.snd_nxt = self.snd_una;
            }
            self.timers.cancel(TimerKind::Persist);
            self.probes_unanswered = 0;
            self.rtt.reset_backoff();
        }
    }

    /// "fifth, check the ACK field" for ESTABLISHED and later states.
    fn process_ack(
        &mut self,
        now: Instant,
        cfg: &Config,
        seg: &TcpRepr<'_>,
        sig: &mut Signals,
    ) -> AckResult {
        let ack = seg.ack;
        // "If the ACK acks something not yet sent (SEG.ACK > SND.NXT), then
        // send an ACK, drop the segment".
        if ack > self.snd_max {
            self.ack_now();
            return AckResult::Drop;
        }
        // RFC 5961 section 5.2: acceptable ACKs are in
        // (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT; others get a
        // challenge ACK and are dropped.
        let max_wnd = (self.max_snd_wnd as usize).max(1);
        if ack < self.snd_una - max_wnd {
            self.challenge_ack(now, cfg);
            return AckResult::Drop;
        }
        self.probes_unanswered = 0;
        let window_before = self.snd_wnd;
        let flight_before = self.flight_size();
        if ack > self.snd_una {
            self.on_new_ack(now, seg, flight_before, sig);
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.flags.fin()
            && (u32::from(seg.window) << self.snd_wscale) == window_before
            && self.snd_max > self.snd_una
        {
            // RFC 5681 section 2 "DUPLICATE ACKNOWLEDGMENT".
            self.on_dup_ack(seg);
        }
        if self.sack_ok {
            self.record_sack(seg.options.sack());
            // RFC 6675 section 5 also enters recovery when IsLost(HighACK
            // + 1) before DupThresh duplicate ACKs; not done: with reordering
            // (netsim sweep, 5% reordered) it started spurious recoveries and
            // lowered goodput by 7-9% at 0-1% loss. Entry stays at DupThresh
            // duplicate ACKs (RFC 5681 section 3.2).
        }
        self.update_window(seg, false);
        if self.snd_wnd == 0
            && (self.unsent() > 0 || self.fin_pending_unsent())
            && self.snd_una == self.snd_max
        {
            // The peer closed its window with data waiting: persist mode
            // (MUST-36, SHLD-29: first probe after one RTO).
            if !self.timers.is_armed(TimerKind::Persist) {
                self.timers.set(TimerKind::Persist, now + self.rtt.rto());
            }
        }

        // Our FIN acknowledged?
        if self.fin_acked() {
            match self.state {
                // "In addition to the processing for the ESTABLISHED state, if
                // the FIN segment is now acknowledged, then enter FIN-WAIT-2".
                State::FinWait1 => {
                    self.set_state(State::FinWait2);
                    if self.owner.is_orphan() {
                        if let Some(t) = cfg.fin_wait2_timeout {
                            self.timers.set(TimerKind::TimeWait, now + t);
                        }
                    }
                }
                // "if the ACK acknowledges our FIN, then enter the TIME-WAIT state".
                State::Closing => {
                    self.enter_time_wait(now, cfg);
                }
                // "If our FIN is now acknowledged, delete the TCB, enter the
                // CLOSED state".
                State::LastAck => {
                    self.enter_closed(None);
                    return AckResult::Closed;
                }
                _ => {}
            }
        }
        if self.state == State::TimeWait && seg.flags.fin() {
            // "The only thing that can arrive in this state is a
            // retransmission of the remote FIN. Acknowledge it, and restart
            // the 2 MSL timeout" (handled with the FIN below).
        }
        AckResult::Ok
    }

    /// SND.UNA advances (RFC 9293 "If SND.UNA < SEG.ACK =< SND.NXT, then set
    /// SND.UNA <- SEG.ACK"), with RTT measurement, congestion control and
    /// timer updates.
    fn on_new_ack(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        flight_before: usize,
        sig: &mut Signals,
    ) {
        let ack = seg.ack;
        let data_start = self.data_start();
        let data_end = self.data_end();
        let acked_data = ack.min(data_end) - data_start.min(ack);
        let acked_total = ack - self.snd_una;
        if acked_data > 0 {
            self.send_buf.ack(acked_data);
            sig.writable = true;
        }
        self.snd_una = ack;
        if self.snd_nxt < self.snd_una {
            self.snd_nxt = self.snd_una;
        }
        if self.snd_up.is_some_and(|up| up <= ack) {
            // All urgent data acknowledged: leave urgent mode.
            self.snd_up = None;
        }
        if self.rexmit_next < self.snd_una {
            self.rexmit_next = self.snd_una;
        }
        self.trim_scoreboard();

        // RTT measurement: RFC 7323 section 4.1 (TSecr of an ACK that
        // advances the left edge) or the timed segment (RFC 6298 section 3,
        // Karn's rule MUST-18: never a retransmitted one).
        let mut sampled = false;
        if let (Some(_), Some((_, tsecr))) = (self.ts, seg.options.timestamps) {
            // Karn's rule for timestamps (RFC 6298 section 3, RFC 7323
            // section 4.1 and Appendix G): an echo of a TSval from before
            // the last retransmission timeout belongs to a transmission
            // whose ACK was lost or delayed across the timeout (the
            // receiver echoes the oldest TS.Recent, RFC 7323 section 4.3);
            // `now - TSecr` would count the whole timeout as round-trip
            // time and inflate SRTT after every lost ACK (sim-findings F3).
            let stale = self
                .rto_tsval
                .is_some_and(|t| (tsecr.wrapping_sub(t) as i32) < 0);
            if !stale {
                self.rto_tsval = None;
            }
            if tsecr != 0 && !stale {
                let ms = self.ts_now(now).wrapping_sub(tsecr);
                if ms < 0x8000_0000 {
                    self.rtt.on_sample(Duration::from_millis(u64::from(ms)));
                    sampled = true;
                }
            }
        }
        if let Some((end, sent)) = self.rtt_probe {
            if ack >= end {
                if !sampled {
                    self.rtt.on_sample(now.saturating_duration_since(sent));
                }
                self.rtt_probe = None;
            }
        }
        // New data acknowledged: R1/R2 count restarts (RFC 9293 section 3.8.3).
        self.retransmits = 0;
        if !sampled {
            // Keep a backed-off RTO only until new data is acknowledged
            // (RFC 6298 section 5.7 note, as BSD does).
            self.rtt.reset_backoff();
        }

        // Congestion control (RFC 5681 section 3, RFC 6582 section 3.2).
        if self.in_recovery {
            if ack >= self.recover {
                // Full acknowledgment: exit recovery (step 3).
                self.in_recovery = false;
                self.cc.on_exit_recovery(self.flight_size());
                // Give back heap storage of a large scoreboard.
                self.scoreboard.shrink_to_fit();
            } else {
                // Partial acknowledgment: retransmit the first unacknowledged
                // segment, deflate the window (step 4). With SACK the
                // scoreboard and pipe decide what goes next (RFC 6675
                // section 5, step C).
                self.cc.on_partial_ack(acked_total);
                if !self.sack_ok {
                    self.fast_rexmit = true;
                }
            }
        } else {
            self.cc.on_ack(now, acked_total, flight_before);
        }
        self.dup_acks = 0;

        // RFC 6298 section 5.2/5.3: stop the timer when everything is
        // acknowledged, otherwise restart it.
        if self.snd_una == self.snd_max {
            self.timers.cancel(TimerKind::Retransmit);
            self.timers.cancel(TimerKind::UserTimeout);
            self.oldest_unacked_since = None;
        } else {
            self.timers.set(TimerKind::Retransmit, now + self.rtt.rto());
            self.oldest_unacked_since = Some(now);
            if let Some(ut) = self.user_timeout {
                self.timers.set(TimerKind::UserTimeout, now + ut);
            }
        }
    }

    /// RFC 5681 section 3.2 and RFC 6582 section 3.2: three duplicate ACKs
    /// start fast retransmit / fast recovery; more inflate the window.
    fn on_dup_ack(&mut self, seg: &TcpRepr<'_>) {
        self.dup_acks = self.dup_acks.saturating_add(1);
        if self.in_recovery {
            // NewReno inflation (RFC 6582 step 3). SACK recovery sends by
            // the pipe estimate instead (RFC 6675 section 5, step C), which
            // the output path recomputes after every ACK.
            self.cc.on_dup_ack_in_recovery();
            return;
        }
        // Step 1: no new recovery while the ACK does not cover `recover`
        // (the duplicates belong to data sent before the last RTO/recovery).
        if self.dup_acks as usize == super::DUP_THRESH && seg.ack >= self.recover {
            self.enter_recovery();
        }
    }

    /// RFC 6582 section 3.2 step 2 / RFC 6675 section 5 step 4: enter fast
    /// recovery, RecoveryPoint = HighData, ssthresh from FlightSize, and
    /// retransmit the first segment presumed lost.
    fn enter_recovery(&mut self) {
        self.in_recovery = true;
        self.recover = self.snd_max;
        self.rexmit_next = self.snd_una;
        self.cc.on_enter_recovery(self.flight_size());
        self.fast_rexmit = true;
        // Karn: the timed segment may be the retransmitted one.
        self.rtt_probe = None;
    }

    /// RFC 9293 section 3.10.7.4 "sixth": "RCV.UP <- max(RCV.UP,SEG.UP),
    /// and signal the user that the remote side has urgent data if the
    /// urgent pointer (RCV.UP) is in advance of the data consumed. If the
    /// user has already been signaled (or is still in the 'urgent mode')
    /// for this continuous sequence of urgent data, do not signal the user
    /// again." The pointer is SEG.SEQ + SEG.UP, the octet following the
    /// urgent data (MUST-62, RFC 6093 section 3); it may run ahead of the
    /// data received (urgent data of any length, MUST-31). The data itself
    /// is delivered inline (RFC 6093 section 4); the signal is a Readable
    /// event (MUST-32) and `Endpoint::urgent_remaining` tells how far the
    /// urgent data reaches (MUST-33).
    fn on_urgent(&mut self, seg: &TcpRepr<'_>, sig: &mut Signals) {
        let up = seg.seq + usize::from(seg.urgent);
        let read = self.read_seq();
        if up <= read {
            return;
        }
        let in_urgent_mode = self.rcv_up.is_some_and(|old| old > read);
        if !self.rcv_up.is_some_and(|old| up <= old) {
            self.rcv_up = Some(up);
        }
        if !in_urgent_mode {
            sig.readable = true;
        }
    }

    /// "seventh, process the segment text" and "eighth, check the FIN bit".
    fn process_text_and_fin(
        &mut self,
        now: Instant,
        cfg: &Config,
        seg: &TcpRepr<'_>,
        sig: &mut Signals,
    ) {
        let mut seq = seg.seq;
        let mut payload = seg.payload;
        let mut fin = seg.flags.fin();
        if seg.flags.syn() {
            seq += 1;
        }
        if self.state == State::TimeWait {
            if fin {
                // Retransmitted FIN: ACK it and restart 2 * MSL.
                self.ack_now();
                self.timers.set(TimerKind::TimeWait, now + cfg.time_wait());
            }
            return;
        }
        if !self.state.receives_data() {
            // CLOSE-WAIT, CLOSING, LAST-ACK: the peer already sent FIN, so no
            // new text can arrive; ACK retransmissions of its FIN.
            if fin || !payload.is_empty() {
                self.ack_now();
            }
            return;
        }
        // Trim what was already received...
        if seq < self.rcv_nxt {
            let dup = self.rcv_nxt - seq;
            if dup > payload.len() {
                // Everything, FIN included, is old (cannot pass the
                // acceptability test, kept for robustness).
                payload = &[];
                fin = false;
                self.ack_now();
            } else {
                if dup == payload.len() && !payload.is_empty() {
                    // A full duplicate: RFC 5681 section 4.2 asks for an
                    // immediate ACK.
                    self.ack_now();
                }
                payload = &payload[dup..];
            }
            seq = self.rcv_nxt;
        }
        // ...and what lies beyond the window (with the FIN, which then does
        // not fit either).
        let wnd = self.rcv_wnd();
        let offset = seq - self.rcv_nxt;
        if offset + payload.len() > wnd {
            let keep = wnd.saturating_sub(offset);
            payload = &payload[..keep.min(payload.len())];
            fin = false;
            self.ack_now();
        }

        if !payload.is_empty() {
            if self.owner.is_orphan() {
                // Data after the application closed: nobody will read it.
                // RFC 9293 SHLD-3 / RFC 2525 section 2.17: reset to say data
                // was lost.
                self.rst_due = true;
                return;
            }
            self.receive_data(now, cfg, offset, payload, sig);
        }

        if fin {
            let fin_seq = seq + payload.len();
            if fin_seq == self.rcv_nxt {
                self.on_fin(now, cfg, sig);
            } else if fin_seq > self.rcv_nxt && fin_seq <= self.rcv_nxt + self.rcv_wnd() {
                self.ooo_fin = Some(fin_seq);
            }
        }
        if let Some(f) = self.ooo_fin {
            if f == self.rcv_nxt && !self.fin_received {
                self.ooo_fin = None;
                self.on_fin(now, cfg, sig);
            }
        }
        if self.state == State::FinWait2 && self.fin_received {
            self.enter_time_wait(now, cfg);
        }
    }

    /// Place payload bytes at `offset` from RCV.NXT (RFC 9293 section
    /// 3.10.7.4 "seventh"; out-of-order data is kept, SHLD-31).
    fn receive_data(
        &mut self,
        now: Instant,
        cfg: &Config,
        offset: usize,
        payload: &[u8],
        sig: &mut Signals,
    ) {
        // Write first and record only what was written, so the assembler
        // never vouches for bytes that are not there (buffer storage is
        // reused between connections without clearing).
        let had_ooo = !self.assembler.is_empty();
        let len = self.recv_buf.write_at(offset, payload);
        if len == 0 || self.assembler.insert(offset, len).is_err() {
            // Out-of-order queue full (bytes or holes): drop, the peer
            // retransmits; still send the duplicate ACK.
            tracing::trace!(remote = %self.remote, "out-of-order data dropped: assembler full");
            self.ack_now();
            return;
        }
        let ready = self.assembler.pop_contiguous();
        if ready > 0 {
            let n = self.recv_buf.commit(ready);
            self.rcv_nxt += n;
            sig.readable = true;
        }
        if offset != 0 || had_ooo {
            // Out of order (a duplicate ACK with SACK blocks, RFC 5681
            // section 4.2, MAY-13), or all or part of a gap filled ("an
            // immediate ACK SHOULD be generated when the incoming segment
            // fills in all or part of a gap"): ACK at once.
            self.ack_now();
        } else {
            self.ack.pending_bytes += ready;
            // SHLD-19: ACK at least every second full-sized segment;
            // otherwise within the delayed-ACK timeout (SHLD-18, MUST-40).
            if self.ack.pending_bytes >= 2 * self.rmss || cfg.delayed_ack.is_zero() {
                self.ack_now();
            } else if !self.timers.is_armed(TimerKind::DelayedAck) {
                self.timers
                    .set(TimerKind::DelayedAck, now + cfg.delayed_ack);
            }
        }
    }

    /// An in-order FIN: "advance RCV.NXT over the FIN, and send an
    /// acknowledgment for the FIN", then the state change of section
    /// 3.10.7.4 "eighth".
    fn on_fin(&mut self, now: Instant, cfg: &Config, sig: &mut Signals) {
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ack_now();
        sig.peer_fin = true;
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::CloseWait),
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now, cfg);
                } else {
                    self.set_state(State::Closing);
                    if cfg.closing_resends_fin && self.fin_sent() && self.snd_nxt == self.snd_max {
                        // Config::closing_resends_fin: the ACK of the
                        // peer's FIN goes out as a retransmission of ours.
                        self.snd_nxt = self.fin_at;
                    }
                }
            }
            State::FinWait2 => self.enter_time_wait(now, cfg),
            _ => {}
        }
    }
}

/// Result of ACK processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckResult {
    Ok,
    Drop,
    Closed,
}
